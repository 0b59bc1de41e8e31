"""Applying change-log ops from their payloads: how the server applies a device's op, and
how a device applies the ops it pulls from the server's feed.

Every op type has an :class:`OpSpec`:

``write(session, op)``
    Makes the database hold what the op says, using **the payload's ids** for every row. It
    is idempotent and sets state: writing an op twice, or an op whose rows already exist
    (the device's own fact coming back in the feed), changes nothing the second time. It
    writes no change-log row and checks no business rule: on a device it runs in replica
    mode, for ops the server has already accepted. Caches move only with rows actually
    inserted (``on_hand`` with a new movement, a refill's total with a new line).

``check(session, op)``
    Server only, before ``write``: the guards of the op type (the actor's role, the
    from-state of a transition, a referenced row that must exist, an id already used for
    other content). It raises a :class:`~app.errors.DomainError` whose message is the reason
    the rep sees, or returns the payload **as it will be applied** when the server amends
    it (``None``: as sent).

``scope(session, op)``
    The stand and partner the op is about, for pull scoping: ``(stand_id, partner_id)``;
    either may be ``None`` (a catalog change is about no stand).

The modules of this package register their specs with :func:`spec`; :data:`SPECS` maps
every op type a service writes to its spec.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from app.clock import ensure_utc
from app.models import ChangeLog, Role
from app.services.base import Actor


class OpClass(StrEnum):
    """How the server merges an op type (docs/sync-design.md §1.2)."""

    FACT = "fact"
    TRANSITION = "transition"
    DESCRIPTIVE = "descriptive"
    SERVER_DERIVED = "server_derived"


@dataclass(frozen=True)
class Op:
    """One op as it travels: the envelope fields that matter for applying it, and its payload
    parsed from JSON (money and times are still strings there)."""

    op_id: str
    op_type: str
    entity_id: str
    payload: Mapping[str, Any]
    actor: str | None = None
    actor_role: str | None = None
    created_at: datetime | None = None
    base_seq: int = 0
    pending_from_seq: int | None = None
    device_id: str | None = None
    device_seq: int | None = None

    @classmethod
    def from_row(cls, row: ChangeLog) -> Op:
        return cls(
            op_id=row.op_id,
            op_type=row.op_type,
            entity_id=row.entity_id,
            payload=json.loads(row.payload),
            actor=row.actor,
            actor_role=row.actor_role,
            created_at=row.created_at,
            base_seq=row.base_seq,
            pending_from_seq=row.pending_from_seq,
            device_id=row.device_id,
            device_seq=row.device_seq,
        )

    def as_actor(self) -> Actor | None:
        """The acting person as services know them (``None`` for the system)."""
        if not self.actor:
            return None
        return Actor(self.actor, Role(self.actor_role) if self.actor_role else Role.REP)


Writer = Callable[[Session, Op], None]
Checker = Callable[[Session, Op], Mapping[str, Any] | None]
Scoper = Callable[[Session, Op], tuple[str | None, str | None]]


@dataclass(frozen=True)
class OpSpec:
    op_type: str
    op_class: OpClass
    write: Writer
    check: Checker
    scope: Scoper
    # Documentation for the Sync view and the contract: what the op does, in one line.
    summary: str = field(default="")


SPECS: dict[str, OpSpec] = {}


def spec(
    op_type: str,
    op_class: OpClass,
    *,
    check: Checker,
    scope: Scoper,
    summary: str = "",
) -> Callable[[Writer], Writer]:
    """Register the decorated function as ``op_type``'s writer, with its check and scope."""

    def register(fn: Writer) -> Writer:
        if op_type in SPECS:
            raise RuntimeError(f"op type {op_type} is registered twice")
        SPECS[op_type] = OpSpec(op_type, op_class, fn, check, scope, summary)
        return fn

    return register


class UnknownOpType(Exception):
    """An op type this version does not know (a newer device, or a damaged op)."""


def get_spec(op_type: str) -> OpSpec:
    _load()
    try:
        return SPECS[op_type]
    except KeyError:
        raise UnknownOpType(f"Unknown change type {op_type!r}.") from None


def write(session: Session, op: Op) -> None:
    """Apply ``op`` in replica mode (no checks, idempotent)."""
    get_spec(op.op_type).write(session, op)


# --------------------------------------------------------------------------- payload helpers


def dec(value: Any) -> Decimal:
    """A money or figure value from a payload (written as a string)."""
    return Decimal(str(value))


def opt_dec(value: Any) -> Decimal | None:
    return None if value is None else dec(value)


def ts(value: Any) -> datetime:
    """A time from a payload (ISO 8601 with zone), as an aware UTC datetime."""
    if isinstance(value, datetime):
        return ensure_utc(value)
    return ensure_utc(datetime.fromisoformat(str(value)))


def opt_ts(value: Any) -> datetime | None:
    return None if value is None else ts(value)


def no_check(session: Session, op: Op) -> None:
    """For op types whose only guards are the generic ones the push applies to every op."""
    return None


_loaded = False


def _load() -> None:
    """Import the modules that register specs (once; they import services, which import
    this package's helpers)."""
    global _loaded
    if _loaded:
        return
    from app.services.apply import (  # noqa: F401 - imported for their registrations
        coach,
        partners,
        refills,
        stock,
    )

    _loaded = True


def all_specs() -> dict[str, OpSpec]:
    _load()
    return dict(SPECS)
