"""Sync bookkeeping: the device's sync state, and on the server the registered devices, the
ops they pushed (with the answer each got), dead letters and the review list.

The feed itself is the server's own ``change_log`` (see :mod:`app.models.changelog`): every
change the server accepts is one row there, numbered by the server's device sequence.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import ID, Base, created_at_col, id_pk


class SyncState(Base):
    """On a device: where its sync stands. One row (id 1), made by the first sync."""

    __tablename__ = "sync_state"

    id: Mapped[int] = mapped_column(primary_key=True, default=1)
    server_url: Mapped[str | None] = mapped_column(String(300))
    # The feed sequence of the last pulled page this device applied (0: nothing pulled).
    cursor: Mapped[int] = mapped_column(BigInteger, default=0)
    # An unfinished bootstrap: {"table", "after", "snapshot_seq"} as JSON, or NULL.
    bootstrap: Mapped[str | None] = mapped_column(Text)
    last_ok_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None]


class SyncRefresh(Base):
    """On a device: a stand, partner, product or candidate to re-read from the server,
    because the server rejected or amended a change of this device that touched it (its
    provisional rows are replaced by the server's). Written with the answer, cleared when
    the refresh is applied, so a kill in between loses nothing."""

    __tablename__ = "sync_refresh"

    target: Mapped[str] = mapped_column(String(80), primary_key=True)  # e.g. "stand:<id>"
    op_id: Mapped[str] = mapped_column(ID)
    created_at: Mapped[datetime] = created_at_col()


class SyncDevice(Base):
    """On the server: a device that pushes, bound to the registration that may push for it."""

    __tablename__ = "sync_device"

    device_id: Mapped[str] = mapped_column(ID, primary_key=True)
    api_device_id: Mapped[str | None] = mapped_column(ForeignKey("api_device.id"), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("api_user.id"), index=True)
    # The largest device sequence received with no gap before it (applied or rejected).
    high_water: Mapped[int] = mapped_column(BigInteger, default=0)
    last_push_at: Mapped[datetime | None]
    last_pull_at: Mapped[datetime | None]
    last_cursor: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = created_at_col()


class SyncReceivedOp(Base):
    """On the server: every op a device pushed, once, with the answer it got."""

    __tablename__ = "sync_received_op"
    __table_args__ = (
        UniqueConstraint("device_id", "device_seq"),
        # A count reads the device's earlier ops that were rejected or amended (migration 0008).
        Index("ix_sync_received_op_device_status_seq", "device_id", "status", "device_seq"),
        Index("ix_sync_received_op_device_amended_seq", "device_id", "amended", "device_seq"),
    )

    op_id: Mapped[str] = mapped_column(ID, primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("sync_device.device_id"))
    device_seq: Mapped[int] = mapped_column(BigInteger)
    # Its feed row; NULL when rejected.
    server_seq: Mapped[int | None] = mapped_column(BigInteger)
    op_type: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str] = mapped_column(ID)
    schema_version: Mapped[int]
    # As received, for an op rejected or amended; NULL for one applied as sent, whose feed
    # row holds the same text (migration 0010: one copy of the payload, not two).
    payload: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12))  # applied | rejected
    reason: Mapped[str | None] = mapped_column(Text)
    reason_code: Mapped[str | None] = mapped_column(String(40))
    field: Mapped[str | None] = mapped_column(String(120))
    amended: Mapped[bool] = mapped_column(default=False)
    actor: Mapped[str | None] = mapped_column(String(60))
    actor_role: Mapped[str | None] = mapped_column(String(24))
    base_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    pending_from_seq: Mapped[int | None] = mapped_column(BigInteger)
    received_at: Mapped[datetime] = created_at_col()


class SyncDeadLetter(Base):
    """On the server: a rejected op, kept until a person has dealt with it (never dropped)."""

    __tablename__ = "sync_dead_letter"
    __table_args__ = (Index("ix_sync_dead_letter_state_device", "state", "device_id"),)

    op_id: Mapped[str] = mapped_column(ForeignKey("sync_received_op.op_id"), primary_key=True)
    device_id: Mapped[str] = mapped_column(ID)
    device_seq: Mapped[int] = mapped_column(BigInteger)
    op_type: Mapped[str] = mapped_column(String(40))
    reason_code: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text)
    # JSON: {"field": ..., "depends_on": op id}
    detail: Mapped[str] = mapped_column(Text, default="{}")
    state: Mapped[str] = mapped_column(String(16), default="open")  # open|acknowledged|resubmitted
    handled_by: Mapped[str | None] = mapped_column(String(60))
    handled_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_col()


class SyncReview(Base):
    """An item a manager must decide: two overlapping counts, or an overdrawn loyalty balance."""

    __tablename__ = "sync_review"
    __table_args__ = (Index("ix_sync_review_status_stand", "status", "stand_id"),)

    id: Mapped[str] = id_pk()
    kind: Mapped[str] = mapped_column(String(24))  # count_overlap | loyalty_overdrawn
    stand_id: Mapped[str | None] = mapped_column(ID)
    product_id: Mapped[str | None] = mapped_column(ID)
    partner_id: Mapped[str | None] = mapped_column(ID)
    # JSON: the snapshot, line and entry ids involved and the proposed adjustment.
    refs: Mapped[str] = mapped_column(Text, default="{}")
    status: Mapped[str] = mapped_column(String(12), default="open")  # open | resolved
    decision: Mapped[str | None] = mapped_column(String(24))
    resolution_movement_id: Mapped[str | None] = mapped_column(ID)
    opened_seq: Mapped[int | None] = mapped_column(BigInteger)
    resolved_by: Mapped[str | None] = mapped_column(String(60))
    resolved_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at_col()


class SyncFieldHistory(Base):
    """A descriptive value that a later change overwrote (last writer wins by server order):
    the losing value is kept here, with whether its writer had seen it (``concurrent``)."""

    __tablename__ = "sync_field_history"
    __table_args__ = (Index("ix_sync_field_history_entity", "entity_type", "entity_id"),)

    id: Mapped[str] = id_pk()
    entity_type: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str] = mapped_column(ID)
    field_group: Mapped[str] = mapped_column(String(60))
    # JSON objects: the fields of the group before and after.
    old_value: Mapped[str] = mapped_column(Text)
    new_value: Mapped[str] = mapped_column(Text)
    # The op that overwrote it; True when its writer had not seen the overwritten value.
    op_id: Mapped[str] = mapped_column(ID)
    concurrent: Mapped[bool] = mapped_column(default=False)
    actor: Mapped[str | None] = mapped_column(String(60))
    at: Mapped[datetime]
