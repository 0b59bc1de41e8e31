"""The device's side of sync, without the network: what to push, storing the server's
answers, applying pulled pages, and the status the app shows.

Every function here runs in one local transaction of the caller's (``BEGIN IMMEDIATE`` on
the device), so the client (``sync/client.py``) can be killed at any point: an op is marked
only together with the server's answer to it, and a pulled page is applied together with
its cursor. See docs/sync-design.md §5.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.models import ChangeLog, LocalDevice, OpStatus, SyncState
from app.services import apply
from app.services.base import device_id

#: What an op's outcome means for the device.
FINAL = (OpStatus.APPLIED, OpStatus.DUPLICATE, OpStatus.REJECTED)


def state(session: Session) -> SyncState:
    """The device's sync state row (made on first use)."""
    row = session.get(SyncState, 1)
    if row is None:
        row = SyncState(id=1, cursor=0)
        session.add(row)
        session.flush()
    return row


def envelope(op: ChangeLog) -> dict[str, Any]:
    """An op as it is pushed (and exported)."""
    return {
        "op_id": op.op_id,
        "device_seq": op.device_seq,
        "op_type": op.op_type,
        "entity_id": op.entity_id,
        "payload": json.loads(op.payload),
        "schema_version": op.schema_version,
        "actor": op.actor,
        "actor_role": op.actor_role,
        "created_at": op.created_at.isoformat(),
        "base_seq": op.base_seq,
        "pending_from_seq": op.pending_from_seq,
    }


def next_batch(
    session: Session,
    *,
    from_seq: int | None = None,
    limit: int = 500,
    max_bytes: int = 3_500_000,
) -> list[dict[str, Any]]:
    """The oldest pending ops, as envelopes: at most ``limit`` of them and about
    ``max_bytes`` of JSON (at least one). Read in seq order, so a long outbox is streamed
    batch by batch, never loaded whole. ``from_seq`` resends every op from that number on,
    answered or not (the server lost them: it was restored from a backup)."""
    stmt = select(ChangeLog).order_by(ChangeLog.device_seq).limit(limit)
    if from_seq is None:
        stmt = stmt.where(ChangeLog.status == OpStatus.PENDING)
    else:
        stmt = stmt.where(ChangeLog.device_seq >= from_seq)
    rows = session.scalars(stmt)
    out: list[dict[str, Any]] = []
    size = 0
    for row in rows:
        env = envelope(row)
        size += len(row.payload) + 400
        if out and size > max_bytes:
            break
        if out and env["device_seq"] != out[-1]["device_seq"] + 1:
            break  # push consecutive numbers only (answered ops in between are not resent)
        out.append(env)
    return out


def mark_attempt(session: Session, op_ids: Sequence[str]) -> None:
    session.execute(
        update(ChangeLog)
        .where(ChangeLog.op_id.in_(op_ids))
        .values(attempts=ChangeLog.attempts + 1, last_attempt_at=utcnow())
    )


@dataclass(frozen=True)
class Answer:
    op_id: str
    status: str  # applied | duplicate | rejected
    outcome: str  # applied | rejected
    server_seq: int | None
    reason: str | None
    amended: bool
    payload: Mapping[str, Any] | None


def store_answers(session: Session, answers: Iterable[Answer]) -> int:
    """Store the server's answers (the only way an op stops being pending). A duplicate
    takes the outcome it had the first time. Returns how many were rejected."""
    now = utcnow()
    rejected = 0
    by_id = {a.op_id: a for a in answers}
    for op in session.scalars(select(ChangeLog).where(ChangeLog.op_id.in_(list(by_id)))):
        a = by_id[op.op_id]
        if a.outcome == "rejected":
            op.status = OpStatus.REJECTED
            op.status_reason = a.reason
            rejected += 1
        else:
            op.status = OpStatus.APPLIED if a.status != "duplicate" else OpStatus.DUPLICATE
            op.status_reason = None
        op.server_seq = a.server_seq
        op.amended = a.amended
        op.acknowledged_at = now
        if a.amended and a.payload is not None:
            _adopt_amended(session, op, a.payload)
    return rejected


def _adopt_amended(session: Session, op: ChangeLog, payload: Mapping[str, Any]) -> None:
    """The server applied ``op`` with another payload: write that one too, so the device
    holds what the server holds (transitions and descriptive changes set state; the feed
    brings the as-applied op again and it is written in server order)."""
    spec = apply.get_spec(op.op_type)
    if spec.op_class != apply.OpClass.FACT:
        spec.write(session, replace(apply.Op.from_row(op), payload=dict(payload)))


def has_unanswered(session: Session) -> bool:
    return (
        session.scalar(select(ChangeLog.op_id).where(ChangeLog.status == OpStatus.PENDING).limit(1))
        is not None
    )


@dataclass(frozen=True)
class PulledOp:
    seq: int
    op: apply.Op
    origin_device_id: str | None
    amended: bool


def apply_page(session: Session, ops: Sequence[PulledOp], cursor: int) -> bool:
    """Apply one pulled page and move the cursor, in the caller's transaction. Refuses
    (returns False, writing nothing) while the device has unanswered ops of its own: a
    pulled change would overwrite a local one not yet pushed; push first."""
    if has_unanswered(session):
        return False
    me = device_id(session)
    own_facts = _own_applied_facts(session, [p.op.op_id for p in ops if p.origin_device_id == me])
    for pulled in ops:
        if pulled.op.op_id in own_facts and not pulled.amended:
            continue  # our own fact, already here as it was applied
        apply.write(session, pulled.op)
    sync = state(session)
    sync.cursor = max(sync.cursor, cursor)
    return True


def _own_applied_facts(session: Session, op_ids: list[str]) -> set[str]:
    if not op_ids:
        return set()
    found = set()
    for op_id, op_type in session.execute(
        select(ChangeLog.op_id, ChangeLog.op_type).where(ChangeLog.op_id.in_(op_ids))
    ):
        if apply.get_spec(op_type).op_class == apply.OpClass.FACT:
            found.add(op_id)
    return found


def record_success(session: Session, server_url: str | None = None) -> None:
    sync = state(session)
    sync.last_ok_at = utcnow()
    sync.last_error = None
    if server_url:
        sync.server_url = server_url


def record_failure(session: Session, message: str, next_attempt_at: datetime | None) -> None:
    sync = state(session)
    sync.last_error = message
    sync.next_attempt_at = next_attempt_at


@dataclass(frozen=True)
class SyncStatus:
    unsent: int
    oldest_unsent_at: datetime | None
    rejected: int
    cursor: int
    last_ok_at: datetime | None
    last_error: str | None
    device_id: str


def status(session: Session) -> SyncStatus:
    unsent, oldest = session.execute(
        select(func.count(), func.min(ChangeLog.created_at)).where(
            ChangeLog.status == OpStatus.PENDING
        )
    ).one()
    rejected = session.scalar(
        select(func.count()).select_from(ChangeLog).where(ChangeLog.status == OpStatus.REJECTED)
    )
    sync = session.get(SyncState, 1)
    return SyncStatus(
        unsent=int(unsent or 0),
        oldest_unsent_at=oldest,
        rejected=int(rejected or 0),
        cursor=sync.cursor if sync else 0,
        last_ok_at=sync.last_ok_at if sync else None,
        last_error=sync.last_error if sync else None,
        device_id=str(session.scalar(select(LocalDevice.id))),
    )


def unsent_and_rejected(session: Session) -> list[dict[str, Any]]:
    """Every pending and rejected op as a full envelope (with status and reason), oldest
    first: what "Export unsent changes" writes."""
    rows = session.scalars(
        select(ChangeLog)
        .where(ChangeLog.status.in_([OpStatus.PENDING, OpStatus.REJECTED]))
        .order_by(ChangeLog.device_seq)
    )
    out = []
    for row in rows:
        env = envelope(row)
        env["device_id"] = row.device_id
        env["status"] = row.status.value
        env["reason"] = row.status_reason
        out.append(env)
    return out
