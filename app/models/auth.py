"""Who may call the server: users with a role and a scope, their devices, bearer tokens, and
the replies remembered for idempotent requests.

Secrets are never stored: a password is kept as an argon2 hash, a device secret and a bearer
token as the SHA-256 hex digest of the random value (both are long random strings, so a fast
hash is enough and a lookup by digest finds them). See :mod:`app.services.users`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import ID, Base, created_at_col, enum_column, id_pk, updated_at_col
from app.models.enums import Role


class ApiUser(Base):
    """A person (or a partner shop) who signs in to the server.

    The scope depends on the role: a manager sees the stands of partners in ``region``
    (``StandPartner.region``), a rep the stands whose ``StandLocation.assigned_rep`` is
    ``territory``, a partner the stands of ``partner_id``; an admin sees everything.
    """

    __tablename__ = "api_user"

    id: Mapped[str] = id_pk()
    # Stored lower-case; unique.
    username: Mapped[str] = mapped_column(String(60), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    role: Mapped[Role] = mapped_column(enum_column(Role, "user_role"))
    region: Mapped[str | None] = mapped_column(String(60))
    territory: Mapped[str | None] = mapped_column(String(60))
    partner_id: Mapped[str | None] = mapped_column(ForeignKey("stand_partner.id"), index=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = created_at_col()
    updated_at: Mapped[datetime] = updated_at_col()
    disabled_at: Mapped[datetime | None]


class ApiDevice(Base):
    """A device (a rep's tablet, another service) that signs in with its own secret."""

    __tablename__ = "api_device"

    id: Mapped[str] = id_pk()
    user_id: Mapped[str] = mapped_column(ForeignKey("api_user.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    # SHA-256 hex of the device secret.
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = created_at_col()
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class ApiToken(Base):
    """An opaque bearer token, issued for a password or a device secret."""

    __tablename__ = "api_token"

    id: Mapped[str] = id_pk()
    user_id: Mapped[str] = mapped_column(ForeignKey("api_user.id"), index=True)
    device_id: Mapped[str | None] = mapped_column(ForeignKey("api_device.id"), index=True)
    # SHA-256 hex of the token; the unique constraint's index serves the lookup.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # "password" or "device": what the token was issued for.
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = created_at_col()
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class IdempotencyRecord(Base):
    """The reply to a write request sent with an ``Idempotency-Key``, per user and key, so a
    retried request gets the same reply instead of doing the work twice."""

    __tablename__ = "idempotency_record"

    user_id: Mapped[str] = mapped_column(ID, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(300))
    # SHA-256 hex of the request body: the same key with another body is a conflict.
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int]
    response_body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_col()
