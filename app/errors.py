"""Domain exceptions whose messages are written for the person at the screen.

Every service raises a subclass of :class:`DomainError` for anything the user can fix or
should know about. The message is one sentence a rep can read; ``field`` names the input
that was wrong, so a form can show the message next to it.
"""

from __future__ import annotations


class DomainError(Exception):
    """A user-facing error: the action was refused and nothing was saved."""

    code = "domain_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


class ValidationError(DomainError):
    """Input is malformed or out of range."""

    code = "validation_error"


class NotFound(DomainError):
    """A referenced record (stand, product, partner, refill...) does not exist."""

    code = "not_found"


class InvalidTransition(DomainError):
    """A lifecycle step is not allowed from the record's current state."""

    code = "invalid_transition"


class PermissionDenied(DomainError):
    """The acting role may not perform this action."""

    code = "permission_denied"


class LimitExceeded(DomainError):
    """A package limit (stands, SKU slots) or a balance would be exceeded."""

    code = "limit_exceeded"


class AuthenticationFailed(DomainError):
    """A sign-in or a bearer token was refused. The message never says which part was wrong
    (user name or password) nor whose token it was."""

    code = "authentication_failed"


class Conflict(DomainError):
    """The request contradicts an earlier one, e.g. an idempotency key reused with another
    request body."""

    code = "conflict"


class SequenceGap(Conflict):
    """A push skipped device sequence numbers the server has not received: nothing was
    applied; the device sends again from ``expected_seq``."""

    code = "sequence_gap"

    def __init__(self, expected_seq: int) -> None:
        super().__init__(
            f"The server expected this device's change #{expected_seq} next; "
            "send again from there.",
            field="ops",
        )
        self.expected_seq = expected_seq


class DeviceIdentityConflict(Conflict):
    """Another change already holds this device id and sequence number: the device's
    database was restored from a backup or copied. Its unsent changes can only leave it as an
    export (starting such a copy as a new device is not built yet)."""

    code = "device_identity_conflict"
