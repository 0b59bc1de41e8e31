"""The device's side of sync, without the network: what to push, storing the server's
answers, applying pulled pages, and the status the app shows.

Every function here runs in one local transaction of the caller's (``BEGIN IMMEDIATE`` on
the device), so the client (``sync/client.py``) can be killed at any point: an op is marked
only together with the server's answer to it, and a pulled page is applied together with
its cursor. See docs/sync-design.md §5.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.models import ChangeLog, LocalDevice, OpStatus, StandLocation, SyncRefresh, SyncState
from app.services import apply, snapshot
from app.services.apply import bulk
from app.services.base import device_id
from app.types import UTCDateTime

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


#: The change-log columns an envelope is made of (read without loading ORM objects).
_ENVELOPE_COLUMNS = (
    ChangeLog.op_id,
    ChangeLog.device_seq,
    ChangeLog.op_type,
    ChangeLog.entity_id,
    ChangeLog.payload,
    ChangeLog.schema_version,
    ChangeLog.actor,
    ChangeLog.actor_role,
    ChangeLog.created_at,
    ChangeLog.base_seq,
    ChangeLog.pending_from_seq,
)


def envelope(op: Any) -> dict[str, Any]:
    """An op as it is pushed (and exported): from a ``ChangeLog`` or a row of
    ``_ENVELOPE_COLUMNS``."""
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
    after_seq: int | None = None,
    limit: int = 500,
    max_bytes: int = 3_500_000,
) -> list[dict[str, Any]]:
    """The oldest pending ops, as envelopes: at most ``limit`` of them and about
    ``max_bytes`` of JSON (at least one). Read in seq order, so a long outbox is streamed
    batch by batch, never loaded whole. ``after_seq``: the oldest pending ops after that
    number (the batch after one still in flight). ``from_seq`` resends every op from that
    number on, answered or not (the server lost them: it was restored from a backup)."""
    stmt = select(*_ENVELOPE_COLUMNS).order_by(ChangeLog.device_seq).limit(limit)
    if from_seq is None:
        stmt = stmt.where(ChangeLog.status == OpStatus.PENDING)
        if after_seq is not None:
            stmt = stmt.where(ChangeLog.device_seq > after_seq)
    else:
        stmt = stmt.where(ChangeLog.device_seq >= from_seq)
    rows = session.execute(stmt)
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

    @property
    def applied_as(self) -> OpStatus:
        """The op's status when the server applied it (now or the first time)."""
        return OpStatus.DUPLICATE if self.status == "duplicate" else OpStatus.APPLIED


_PLAIN_ANSWER = (
    update(cast(Table, ChangeLog.__table__))
    .where(ChangeLog.__table__.c.op_id == bindparam("a_id"))
    .values(
        status=bindparam("a_status"),
        status_reason=None,
        server_seq=bindparam("a_seq"),
        amended=False,
        acknowledged_at=bindparam("a_at", type_=UTCDateTime()),
    )
)


def store_answers(session: Session, answers: Iterable[Answer]) -> int:
    """Store the server's answers (the only way an op stops being pending). A duplicate
    takes the outcome it had the first time. Returns how many were rejected.

    Most answers say "applied as sent": those are stored with one UPDATE; a rejected or
    amended op is loaded, as its answer changes more than its status."""
    now = utcnow()
    rejected = 0
    by_id: dict[str, Answer] = {}
    plain: list[dict[str, Any]] = []
    for a in answers:
        if a.outcome == "rejected" or a.amended:
            by_id[a.op_id] = a
        else:
            plain.append(
                {"a_id": a.op_id, "a_status": a.applied_as, "a_seq": a.server_seq, "a_at": now}
            )
    if plain:
        session.connection().execute(_PLAIN_ANSWER, plain)
        stored = {row["a_id"] for row in plain}
        for obj in list(session.identity_map.values()):
            if isinstance(obj, ChangeLog) and obj.op_id in stored:
                session.expire(obj)  # loaded before: read its answer again
    if not by_id:
        return 0
    for op in session.scalars(select(ChangeLog).where(ChangeLog.op_id.in_(list(by_id)))):
        a = by_id[op.op_id]
        if a.outcome == "rejected":
            op.status = OpStatus.REJECTED
            op.status_reason = a.reason
            rejected += 1
        else:
            op.status = a.applied_as
            op.status_reason = None
        op.server_seq = a.server_seq
        op.amended = a.amended
        op.acknowledged_at = now
        if a.amended and a.payload is not None:
            if a.outcome != "rejected" and _held_for_review(a.payload):
                op.status_reason = REVIEW_REASON
            _adopt_amended(session, op, a.payload)
        if a.outcome == "rejected" or (
            a.amended and apply.get_spec(op.op_type).op_class == apply.OpClass.FACT
        ):
            _ask_refresh(session, op)
    return rejected


def refresh_targets_of(session: Session, op: ChangeLog) -> list[str]:
    """What to re-read from the server after it rejected (or amended) ``op``: the stand and
    partner it touched, or the product or candidate it is about."""
    if op.op_type.startswith("product."):
        return [f"product:{op.entity_id}"]
    if op.op_type.startswith("expansion.candidate"):
        payload = json.loads(op.payload)
        cid = (payload.get("candidate") or {}).get("id") or payload.get("candidate_id")
        return [f"candidate:{cid or op.entity_id}"]
    if op.op_type.startswith("insight."):
        return []  # the coach's advice is made on each device; the feed brings decisions
    try:
        stand_id, partner_id = apply.get_spec(op.op_type).scope(session, apply.Op.from_row(op))
    except apply.UnknownOpType:
        return []
    if stand_id and not partner_id:
        partner_id = session.scalar(
            select(StandLocation.partner_id).where(StandLocation.id == stand_id)
        )
    # The partner with all its stands, read in one transaction: every change touches one
    # partner's rows, so the group holds each change whole (a stand alone would not hold
    # the loyalty entries of its sales, the partner alone not the sales of its entries).
    return [f"group:{partner_id}"] if partner_id else []


def _ask_refresh(session: Session, op: ChangeLog) -> None:
    for target in refresh_targets_of(session, op):
        if session.get(SyncRefresh, target) is None:
            session.add(SyncRefresh(target=target, op_id=op.op_id))
    session.flush()


#: Refreshes run children before parents: the candidates that name a stand or partner
#: before the group, the groups before the products their rows refer to.
_REFRESH_ORDER = {"candidate": 0, "stand": 1, "partner": 1, "group": 1, "product": 2}


def pending_refreshes(session: Session) -> list[str]:
    targets = list(session.scalars(select(SyncRefresh.target)))
    return sorted(targets, key=lambda t: (_REFRESH_ORDER.get(t.split(":", 1)[0], 9), t))


@dataclass(frozen=True)
class RefreshResult:
    written: int
    withdrawn: dict[str, int]


def apply_refresh(
    session: Session, target: str, pages: Sequence[tuple[str, Sequence[Mapping[str, Any]]]]
) -> RefreshResult | None:
    """Replace the device's rows of ``target`` by the server's (``pages``: the whole scoped
    snapshot, as (table, rows)) in the caller's transaction: upsert what the server holds,
    withdraw the provisional rows it does not (a rejected change's), and set the stock
    caches from the movements. Refuses (None) while own ops are unanswered: push first."""
    if has_unanswered(session):
        return None
    parsed = snapshot.Target.parse(target)
    # The coach's advice rows are made on each device (their decisions come by the feed).
    pages = [(name, rows) for name, rows in pages if name not in snapshot.KEEP_ON_REFRESH]
    seen: dict[str, set[str]] = {}
    for name, rows in pages:
        seen.setdefault(name, set()).update(str(r["id"]) for r in rows)
    # Withdraw first: a provisional row may hold a unique value the server's row has too
    # (two devices voiding one sale: one void per sale).
    withdrawn = snapshot.withdraw(session, parsed, seen)
    written = 0
    for name, rows in pages:
        written += snapshot.apply_rows(session, name, rows)
    if parsed.kind == "stand" and parsed.id:
        snapshot.recompute_on_hand(session, [parsed.id])
    elif parsed.kind == "group" and parsed.id:
        stands = session.scalars(
            select(StandLocation.id).where(StandLocation.partner_id == parsed.id)
        ).all()
        snapshot.recompute_on_hand(session, stands)
    row = session.get(SyncRefresh, target)
    if row is not None:
        session.delete(row)
    return RefreshResult(written, withdrawn)


# ------------------------------------------------------------------ bootstrap


def needs_bootstrap(session: Session) -> bool:
    """A device that has never synced, or whose bootstrap was interrupted."""
    sync = state(session)
    return sync.bootstrap is not None or (sync.cursor == 0 and sync.last_ok_at is None)


def bootstrap_progress(session: Session) -> dict[str, Any]:
    """Where an unfinished bootstrap stands: {after_partner, snapshot_seq} (started now when
    there is none)."""
    sync = state(session)
    if sync.bootstrap is None:
        sync.bootstrap = json.dumps({"after_partner": None, "snapshot_seq": None})
    progress: dict[str, Any] = json.loads(sync.bootstrap)
    return progress


def apply_bootstrap_page(session: Session, name: str, rows: Sequence[Mapping[str, Any]]) -> int:
    """Write one page of the snapshot (an upsert by id) in the caller's transaction."""
    return snapshot.apply_rows(session, name, rows)


def bootstrap_partner_done(session: Session, partner_id: str) -> None:
    """A partner and everything of its stands are here: a resumed download starts after it."""
    progress = bootstrap_progress(session)
    progress["after_partner"] = partner_id
    state(session).bootstrap = json.dumps(progress)


def note_snapshot(session: Session, snapshot_seq: int) -> None:
    """The stream's header: keep the oldest snapshot sequence of this bootstrap (after a
    resume the rows come from two snapshots; pulling from the older one brings both up to
    date)."""
    progress = bootstrap_progress(session)
    old = progress.get("snapshot_seq")
    progress["snapshot_seq"] = snapshot_seq if old is None else min(int(old), snapshot_seq)
    state(session).bootstrap = json.dumps(progress)


def finish_bootstrap(session: Session) -> int:
    """The whole snapshot is here: set the stock caches from the movements (the tables may
    come from several snapshots) and start pulling from the oldest snapshot. Returns the
    cursor."""
    sync = state(session)
    progress = bootstrap_progress(session)
    snapshot.recompute_on_hand(session)
    seq = int(progress.get("snapshot_seq") or 0)
    # Replaying the feed from an older cursor is safe (writes are idempotent and set
    # state); from a newer one it would skip changes.
    sync.cursor = min(sync.cursor, seq) if sync.cursor else seq
    sync.bootstrap = None
    return sync.cursor


def _adopt_amended(session: Session, op: ChangeLog, payload: Mapping[str, Any]) -> None:
    """The server applied ``op`` with another payload: write that one too, so the device
    holds what the server holds (transitions and descriptive changes set state; the feed
    brings the as-applied op again and it is written in server order)."""
    spec = apply.get_spec(op.op_type)
    if spec.op_class != apply.OpClass.FACT:
        spec.write(session, replace(apply.Op.from_row(op), payload=dict(payload)))


def _held_for_review(payload: Mapping[str, Any]) -> bool:
    lines = payload.get("lines")
    return isinstance(lines, list) and any(
        isinstance(x, Mapping) and x.get("review") for x in lines
    )


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
    todo = [p.op for p in ops if p.op.op_id not in own_facts or p.amended]
    # Runs of plain facts (most of a page) are written in bulk; the rest op by op, in order.
    now = utcnow()
    n = 0
    while n < len(todo):
        end = bulk.run_end(todo, n)
        if end > n:
            for op in bulk.write_replica(session, todo[n:end], now):
                apply.write(session, op)  # a payload the bulk writer leaves (it raises)
            n = end
            continue
        apply.write(session, todo[n])
        n += 1
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


#: How the Sync view names each kind of change (op type → words a rep knows).
OP_LABELS: dict[str, str] = {
    "sale.record": "Sale",
    "sale.void": "Voided sale",
    "count.record": "Stock count",
    "stock.write_off": "Write-off",
    "stock.return": "Return",
    "stock.adjust": "Stock adjustment",
    "inventory.set_levels": "Stock levels",
    "refill.request": "Refill request",
    "refill.add_line": "Product added to a refill",
    "refill.approve": "Refill approval",
    "refill.schedule": "Refill scheduling",
    "refill.deliver": "Refill delivery",
    "refill.confirm": "Refill confirmation",
    "refill.reject": "Refill rejection",
    "refill.cancel": "Refill cancellation",
    "refill.resolve_discrepancy": "Refill discrepancy resolved",
    "partner.onboard": "New partner",
    "partner.activate": "Partner activation",
    "partner.tier_change": "Loyalty tier change",
    "stand.create": "New stand",
    "loyalty.redeem": "Points redeemed",
    "loyalty.adjust": "Points adjusted",
    "loyalty.bonus": "Bonus points",
    "loyalty.expire": "Points expired",
    "product.add": "New product",
    "product.update": "Product change",
    "payout.compute": "Payout computed",
    "payout.schedule": "Payout scheduled",
    "payout.paid": "Payout paid",
    "insight.acknowledge": "Coach advice acknowledged",
    "insight.dismiss": "Coach advice dismissed",
    "insight.done": "Coach advice done",
    "expansion.candidate_add": "Expansion candidate",
    "expansion.candidate_status": "Expansion candidate decision",
}


@dataclass(frozen=True)
class SyncItem:
    """One line of the Sync view."""

    kind: str  # unsent | rejected | review
    op_id: str
    device_seq: int
    op_type: str
    label: str
    created_at: datetime
    stand_id: str | None
    stand_name: str | None
    reason: str | None
    attempts: int


REVIEW_REASON = (
    "Held for review: another count of the same stand and product arrived at the same time, "
    "so a manager decides which one stands. No stock was adjusted for it yet."
)


def items(session: Session, *, limit: int = 2000) -> list[SyncItem]:
    """The Sync view's lists, oldest first: unsent changes (waiting for the server),
    rejected ones (with the server's reason) and the ones the server holds for a manager's
    review."""
    rows = session.scalars(
        select(ChangeLog)
        .where(
            (ChangeLog.status.in_([OpStatus.PENDING, OpStatus.REJECTED]))
            | ((ChangeLog.amended.is_(True)) & (ChangeLog.status_reason.is_not(None)))
        )
        .order_by(ChangeLog.device_seq)
        .limit(limit)
    ).all()
    stand_ids: dict[str, str | None] = {}
    for row in rows:
        sid = json.loads(row.payload).get("stand_id")
        if not isinstance(sid, str):
            try:  # e.g. a refill step names only its refill: ask its op type
                sid = apply.get_spec(row.op_type).scope(session, apply.Op.from_row(row))[0]
            except Exception:  # an op this version cannot read: listed without a stand
                sid = None
        stand_ids[row.op_id] = sid
    wanted = {s for s in stand_ids.values() if s}
    names = (
        dict(
            session.execute(
                select(StandLocation.id, StandLocation.name).where(StandLocation.id.in_(wanted))
            ).all()
        )
        if wanted
        else {}
    )
    out = []
    for row in rows:
        if row.status == OpStatus.PENDING:
            kind = "unsent"
        elif row.status == OpStatus.REJECTED:
            kind = "rejected"
        else:
            kind = "review"
        sid = stand_ids[row.op_id]
        out.append(
            SyncItem(
                kind=kind,
                op_id=row.op_id,
                device_seq=row.device_seq,
                op_type=row.op_type,
                label=OP_LABELS.get(row.op_type, row.op_type),
                created_at=row.created_at,
                stand_id=sid,
                stand_name=names.get(sid) if sid else None,
                reason=row.status_reason,
                attempts=row.attempts,
            )
        )
    return out


def write_export(session: Session, path: str) -> int:
    """Write every unsent and rejected change to ``path`` (JSON lines, full envelopes),
    through a temporary file so a crash never leaves half a backup. Returns the count."""
    rows = unsent_and_rejected(session)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return len(rows)
