"""The change log (outbox): one row per local fact, in device order, for sync and events.

``device_seq`` counts this device's ops from 1 with no gaps: it is allocated from
``local_device.last_seq`` inside the same write transaction as the fact, so a rolled-back
action leaves no hole and two writers can never take the same number.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import ID, Base, created_at_col, enum_column
from app.models.enums import OpStatus


class LocalDevice(Base):
    """This database's device identity. Exactly one row, made when the database is created."""

    __tablename__ = "local_device"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    last_seq: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = created_at_col()


class ChangeLog(Base):
    __tablename__ = "change_log"
    __table_args__ = (
        UniqueConstraint("device_id", "device_seq"),
        Index("ix_change_log_status_seq", "status", "device_seq"),
        # The server's feed: pull pages by sequence (migration 0007), a count's look for
        # other devices' counts of its stand (0009: the device column in the index, so the
        # counting device's own counts are skipped without reading their rows).
        Index("ix_change_log_seq", "device_seq"),
        Index(
            "ix_change_log_stand_type_seq_origin",
            "scope_stand_id",
            "op_type",
            "device_seq",
            "origin_device_id",
        ),
    )

    op_id: Mapped[str] = mapped_column(ID, primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("local_device.id"))
    device_seq: Mapped[int]
    op_type: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str] = mapped_column(ID, index=True)
    payload: Mapped[str] = mapped_column(Text)
    schema_version: Mapped[int]
    actor: Mapped[str | None] = mapped_column(String(60))
    created_at: Mapped[datetime] = created_at_col()
    # Sync bookkeeping, written only from the server's answer.
    status: Mapped[OpStatus] = mapped_column(
        enum_column(OpStatus, "op_status"), default=OpStatus.PENDING
    )
    server_seq: Mapped[int | None]
    status_reason: Mapped[str | None] = mapped_column(Text)
    acknowledged_at: Mapped[datetime | None]
    # Envelope v2: the writer's role, the feed cursor it had applied (``base_seq``) and its
    # oldest own op still waiting for the server's answer (``pending_from_seq``) when it wrote.
    actor_role: Mapped[str | None] = mapped_column(String(24))
    base_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    pending_from_seq: Mapped[int | None] = mapped_column(BigInteger)
    # The server changed the payload when it applied it (the feed row holds the applied one).
    amended: Mapped[bool] = mapped_column(default=False)
    # Device: push attempts, for backoff and the Sync view.
    attempts: Mapped[int] = mapped_column(default=0)
    last_attempt_at: Mapped[datetime | None]
    # Server feed: the device that wrote the op (NULL: the server itself) and who may see it.
    origin_device_id: Mapped[str | None] = mapped_column(String(36))
    scope_stand_id: Mapped[str | None] = mapped_column(String(36))
    scope_partner_id: Mapped[str | None] = mapped_column(String(36))
