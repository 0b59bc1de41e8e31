"""The server's side of sync: applying a device's pushed ops, and the pages it pulls.

A push is applied in **one transaction** (the caller's). Plain facts (sales, write-offs,
returns, counts applied as sent, new refill requests) that plainly pass their checks are
written together by :mod:`app.services.apply.bulk`; every other op gets a savepoint of its
own: an op that its type's ``check`` refuses is rolled back alone, kept with its reason
(``sync_received_op`` and ``sync_dead_letter``, never dropped) and answered ``rejected``;
the others apply. A repeated op id is answered ``duplicate`` with the outcome it had the
first time, and has no second effect. A batch that skips device sequence numbers is refused whole
(:class:`~app.errors.SequenceGap`). Database errors (a unique race, a serialization
failure) abort the batch, so the caller's retry re-runs it against the winner's rows
instead of dead-lettering a race.

Each applied op becomes one feed row (:mod:`app.services.feed`) with **the device's op id**
and the payload as applied; pull reads the feed in sequence order, keeping the rows the
caller's role and scope may see (evaluated at pull time, against current assignments).
See docs/sync-design.md §1–§3.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import InvalidOperation
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, exists, not_, or_, select, true
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.db import id_in
from app.errors import (
    DeviceIdentityConflict,
    DomainError,
    PermissionDenied,
    SequenceGap,
    ValidationError,
)
from app.models import (
    ChangeLog,
    Role,
    StandLocation,
    StandPartner,
    SyncDeadLetter,
    SyncDevice,
    SyncReceivedOp,
)
from app.services import apply, feed
from app.services.apply import bulk
from app.services.base import SCHEMA_VERSION, to_json
from app.services.scope import AccessScope
from app.services.users import Principal

#: The most ops one push may carry (the answer says so: devices with a long backlog grow
#: their batches up to it, since a batch's fixed costs then count less per op; see
#: docs/sync-design.md §6).
MAX_PUSH_OPS = 2000
#: How many feed rows one pull scans at most (filtered rows included), so a rep does not
#: rescan other territories' rows on every pull.
PULL_SCAN = 50_000
MAX_PULL_LIMIT = 5_000
#: Roles that push (partners have no device; they use the REST contract).
PUSHING_ROLES = (Role.REP, Role.MANAGER, Role.ADMIN)


@dataclass(frozen=True)
class PushedOp:
    """One op as a device sends it."""

    op: apply.Op
    schema_version: int


class ReceivedRow:
    """A received op stored as a plain row (an op applied in bulk): what an answer reads."""

    __slots__ = ("values",)

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    @property
    def status(self) -> str:
        return str(self.values["status"])

    def _text(self, key: str) -> str | None:
        value = self.values[key]
        return None if value is None else str(value)

    @property
    def server_seq(self) -> int | None:
        return self.values.get("server_seq")

    @property
    def reason(self) -> str | None:
        return self._text("reason")

    @property
    def reason_code(self) -> str | None:
        return self._text("reason_code")

    @property
    def field(self) -> str | None:
        return self._text("field")

    @property
    def amended(self) -> bool:
        return bool(self.values["amended"])


@dataclass
class Answer:
    """The server's answer to one op. ``received`` is the stored row; its ``server_seq``
    is known once the transaction has committed (see :meth:`PushResult.answers`)."""

    op_id: str
    device_seq: int
    status: Literal["applied", "duplicate", "rejected"]
    received: SyncReceivedOp | ReceivedRow
    payload: Mapping[str, Any] | None = None  # as applied, when amended

    @property
    def outcome(self) -> Literal["applied", "rejected"]:
        return "rejected" if self.received.status == "rejected" else "applied"


@dataclass
class PushResult:
    answers: list[Answer] = field(default_factory=list)
    high_water: int = 0


def _access(principal: Principal) -> AccessScope:
    return AccessScope(
        principal.role,
        region=principal.region,
        territory=principal.territory,
        partner_id=principal.partner_id,
    )


def _device(session: Session, principal: Principal, device_id: str) -> SyncDevice:
    """The device's sync row, locked for this push (a second push of the same device waits
    and then answers duplicates); made on its first push, bound to the signed-in user."""
    stmt = select(SyncDevice).where(SyncDevice.device_id == device_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    device = session.scalars(stmt).first()
    if device is None:
        device = SyncDevice(
            device_id=device_id,
            api_device_id=principal.device_id,
            user_id=principal.user_id,
            high_water=0,
        )
        session.add(device)
        session.flush()
        return device
    if device.user_id != principal.user_id:
        raise PermissionDenied(
            "This device is linked to another user; sign in on it as that user, or link it "
            "again as a new device."
        )
    return device


def _in_scope(
    session: Session, access: AccessScope, stand_id: str | None, partner_id: str | None
) -> bool:
    if access.unrestricted:
        return True
    if stand_id is not None:
        return access.sees_stand(session, stand_id)
    if partner_id is not None:
        clause = access.partner_clause()
        visible = session.scalar(
            select(StandPartner.id).where(
                StandPartner.id == partner_id, true() if clause is None else clause
            )
        )
        if visible is not None:
            return True
        # A partner just onboarded has no stand yet: any staff member may work with it
        # until its first stand places it in a territory.
        has_stand = session.scalar(select(exists().where(StandLocation.partner_id == partner_id)))
        return not has_stand
    return True


def _apply_one(
    session: Session, batch: _Batch, item: PushedOp
) -> tuple[Mapping[str, Any], bool, ChangeLog]:
    """Check and write one op (inside the caller's savepoint); returns the payload as
    applied, whether it was amended, and its feed row (buffered)."""
    op = item.op
    if item.schema_version > SCHEMA_VERSION:
        raise ValidationError(
            f"This change was made by a newer version of the app (format {item.schema_version}); "
            "update the server.",
            field="schema_version",
        )
    spec = apply.get_spec(op.op_type)
    op = replace(op, actor_role=batch.principal.role.value)
    amended_payload = spec.check(session, op)
    amended = amended_payload is not None and dict(amended_payload) != dict(op.payload)
    if amended_payload is not None:
        op = replace(op, payload=dict(amended_payload))
    spec.write(session, op)
    session.flush()
    stand_id, partner_id = spec.scope(session, op)
    if not batch.in_scope(stand_id, partner_id):
        raise PermissionDenied(
            "This stand is not in your territory (it may have been moved); ask your manager.",
            field="stand_id",
        )
    values = _feed_values(op, to_json(op.payload), amended, batch.device_id, stand_id, partner_id)
    return op.payload, amended, ChangeLog(**values)


def _feed_values(
    op: apply.Op,
    payload: str,
    amended: bool,
    device_id: str,
    stand_id: str | None,
    partner_id: str | None,
    actor_role: str | None = None,
) -> dict[str, Any]:
    """An applied op's feed row (``device_id`` and ``device_seq`` are set when numbered;
    ``actor_role``: the pusher's, else the op's own)."""
    return {
        "op_id": op.op_id,
        "op_type": op.op_type,
        "entity_id": op.entity_id,
        "payload": payload,
        "schema_version": SCHEMA_VERSION,
        "actor": op.actor,
        "actor_role": actor_role or op.actor_role,
        "base_seq": op.base_seq,
        "pending_from_seq": op.pending_from_seq,
        "amended": amended,
        "origin_device_id": device_id,
        "scope_stand_id": stand_id,
        "scope_partner_id": partner_id,
        "created_at": op.created_at or utcnow(),
    }


_MALFORMED = (KeyError, TypeError, ValueError, InvalidOperation, AttributeError)


def push(
    session: Session,
    principal: Principal,
    device_id: str,
    ops: Sequence[PushedOp],
    *,
    bulk_apply: bool = True,
) -> PushResult:
    """Apply ``ops`` (one device's, consecutive device sequence numbers) in the caller's
    transaction. See the module docstring for the rules. Runs of plain facts are written by
    :mod:`app.services.apply.bulk` (``bulk_apply=False``: every op by the per-op path, which
    the tests compare it with)."""
    if principal.role not in PUSHING_ROLES:
        raise PermissionDenied(f"A {principal.role.value} cannot push changes; use the stand API.")
    if not ops:
        raise ValidationError("A push needs at least one change.", field="ops")
    if len(ops) > MAX_PUSH_OPS:
        raise ValidationError(f"A push carries at most {MAX_PUSH_OPS} changes.", field="ops")
    ordered = sorted(ops, key=lambda o: o.op.device_seq or 0)
    seqs = [o.op.device_seq or 0 for o in ordered]
    if seqs[0] < 1 or seqs != list(range(seqs[0], seqs[0] + len(seqs))):
        raise ValidationError(
            "The changes of one push must have consecutive device sequence numbers.", field="ops"
        )
    if len({o.op.op_id for o in ordered}) != len(ordered):
        raise ValidationError("A change appears twice in this push.", field="ops")
    device = _device(session, principal, device_id)
    access = _access(principal)
    ids = [o.op.op_id for o in ordered]
    dialect = session.get_bind().dialect.name
    known = {
        r.op_id: r
        for r in session.scalars(
            select(SyncReceivedOp).where(id_in(SyncReceivedOp.op_id, ids, dialect))
        )
    }
    taken = {
        r.device_seq: r.op_id
        for r in session.execute(
            select(SyncReceivedOp.device_seq, SyncReceivedOp.op_id).where(
                SyncReceivedOp.device_id == device_id,
                SyncReceivedOp.device_seq.between(seqs[0], seqs[-1]),
            )
        )
    }
    result = PushResult()
    now = utcnow()
    # The device sequence rules first: a batch they refuse has no effect at all.
    fresh: list[PushedOp] = []
    high = device.high_water
    for item in ordered:
        op = item.op
        seq = op.device_seq or 0
        previous = known.get(op.op_id)
        if previous is not None:
            if previous.device_id != device_id or previous.device_seq != seq:
                raise DeviceIdentityConflict(
                    f"Change {op.op_id} was already received as another device's change "
                    f"#{previous.device_seq}: this database was restored from a backup or "
                    "copied. Its unsent changes cannot be sent from it; export them on the "
                    "Sync screen and give the file to your manager."
                )
            result.answers.append(Answer(op.op_id, seq, "duplicate", previous))
            continue
        if seq in taken or seq <= high:
            raise DeviceIdentityConflict(
                f"This device's change #{seq} was already received with another id: its "
                "database was restored from a backup or copied. Its unsent changes cannot be "
                "sent from it; export them on the Sync screen and give the file to your "
                "manager."
            )
        if seq != high + 1:
            raise SequenceGap(high + 1)
        high = seq
        fresh.append(item)
    batch = _Batch(session, principal, access, device_id, now)
    n = 0
    while n < len(fresh):
        n = batch.apply_from(fresh, n, bulk_apply, result.answers)
    device.high_water = high
    device.last_push_at = now
    session.flush()
    result.high_water = device.high_water
    return result


#: Op types whose check and write read nothing a waiting bulk row changes (see
#: :meth:`_Batch.apply_from`).
_BESIDE_WAITING_ROWS = bulk.BULK_TYPES | {"count.record", "refill.request"}


@dataclass
class _Batch:
    """What the ops of one push share."""

    session: Session
    principal: Principal
    access: AccessScope
    device_id: str
    now: datetime
    scopes: dict[tuple[str | None, str | None], bool] = field(default_factory=dict)
    # Feed rows and received ops of bulk-applied ops not yet handed to the feed buffer.
    plain_feed: list[dict[str, Any]] = field(default_factory=list)
    plain_received: list[dict[str, Any]] = field(default_factory=list)

    def received(self, item: PushedOp, payload: str | None) -> dict[str, Any]:
        """The received op's row as stored (its status and reason are the caller's;
        ``payload``: as received, or None for an op applied as sent, see :meth:`one`)."""
        op = item.op
        return {
            "op_id": op.op_id,
            "device_id": self.device_id,
            "device_seq": op.device_seq or 0,
            "op_type": op.op_type[:40],
            "entity_id": op.entity_id,
            "schema_version": item.schema_version,
            "payload": payload,
            "status": "applied",
            "reason": None,
            "reason_code": None,
            "field": None,
            "amended": False,
            "actor": op.actor,
            "actor_role": self.principal.role.value,
            "base_seq": op.base_seq,
            "pending_from_seq": op.pending_from_seq,
            "received_at": self.now,
        }

    def applied_in_bulk(self, item: PushedOp, stand_id: str, partner_id: str) -> Answer:
        """The answer of an op :mod:`~app.services.apply.bulk` wrote; its feed row and
        received op wait as plain rows (:meth:`hand_over`)."""
        op = item.op
        # Applied as sent: the feed row's payload is the one copy kept.
        received = self.received(item, None)
        self.plain_received.append(received)
        self.plain_feed.append(
            _feed_values(
                op,
                to_json(op.payload),
                False,
                self.device_id,
                stand_id,
                partner_id,
                self.principal.role.value,
            )
        )
        return Answer(op.op_id, received["device_seq"], "applied", ReceivedRow(received))

    def hand_over(self) -> None:
        """Buffer the waiting plain rows in the feed (before the next per-op op's row, so
        the feed keeps device order)."""
        if self.plain_feed:
            feed.buffer_rows(self.session, self.plain_feed, SyncReceivedOp, self.plain_received)
            self.plain_feed, self.plain_received = [], []

    def apply_from(
        self, fresh: list[PushedOp], start: int, bulk_apply: bool, answers: list[Answer]
    ) -> int:
        """Apply ``fresh[start:]`` in device order, answering each; returns where to go on
        (``len(fresh)``: done; earlier when an op took an id a later op had claimed, so the
        rest is planned again against the database with that op in it).

        The facts :func:`bulk.plan` takes are written together; their rows may wait
        while other ops run, as long as those ops cannot see the difference: a count or a
        refill request (their checks read no sales, stock levels or points) or a fact the
        plan left, and only when none of them mentions an id of a waiting row. Before any
        other op the waiting rows are written."""
        session = self.session
        rest = fresh[start:]
        eligible = [
            bulk_apply
            and item.op.op_type in bulk.PLANNED_TYPES
            and item.schema_version <= SCHEMA_VERSION
            for item in rest
        ]
        planned = bulk.plan(
            session,
            [item.op for item in rest],
            eligible,
            self.access,
            self.principal.role,
            self.now,
        )
        taken = {start + k: v for k, v in planned.pieces.items()}
        owner = {value: start + k for value, k in planned.claims.items()}
        waiting = bulk.Rows()
        for i in range(start, len(fresh)):
            item = fresh[i]
            if i in taken:
                pc, stand_id, partner_id = taken[i]
                pc.add_to(waiting)
                answers.append(self.applied_in_bulk(item, stand_id, partner_id))
                continue
            sent = to_json(item.op.payload)
            mentioned = bulk.ids_in(sent) & owner.keys() if owner else set()
            if mentioned or item.op.op_type not in _BESIDE_WAITING_ROWS:
                bulk.write(session, waiting)
                waiting = bulk.Rows()
            answers.append(self.one(item, sent))
            if any(owner[x] > i for x in mentioned):
                return i + 1
        bulk.write(session, waiting)
        self.hand_over()
        return len(fresh)

    def in_scope(self, stand_id: str | None, partner_id: str | None) -> bool:
        key = (stand_id, partner_id)
        if key not in self.scopes:
            self.scopes[key] = _in_scope(self.session, self.access, stand_id, partner_id)
        return self.scopes[key]

    def one(self, item: PushedOp, sent: str) -> Answer:
        """Check and apply one op in a savepoint: applied, or rejected and kept (``sent``:
        its payload as JSON text)."""
        session, op = self.session, item.op
        seq = op.device_seq or 0
        self.hand_over()
        received = SyncReceivedOp(**self.received(item, sent))
        answer = Answer(op.op_id, seq, "applied", received)
        try:
            with session.begin_nested():
                payload, amended, row = _apply_one(session, self, item)
                feed.buffer(session, row, stamp=[received])
        except (DomainError, apply.UnknownOpType, *_MALFORMED) as exc:
            code, reason, fld = _reason(exc)
            received.status = "rejected"
            received.reason, received.reason_code, received.field = reason, code, fld
            received.amended = False
            session.add(received)
            session.flush()  # the dead letter refers to it
            session.add(
                SyncDeadLetter(
                    op_id=op.op_id,
                    device_id=self.device_id,
                    device_seq=seq,
                    op_type=op.op_type[:40],
                    reason_code=code,
                    reason=reason,
                    detail=json.dumps({"field": fld}),
                    state="open",
                    created_at=self.now,
                )
            )
            answer.status = "rejected"
        else:
            received.status = "applied"
            received.amended = amended
            if amended:
                answer.payload = payload
            else:
                received.payload = None  # applied as sent: the feed row holds the same text
            session.add(received)
        return answer


def _reason(exc: Exception) -> tuple[str, str, str | None]:
    if isinstance(exc, DomainError):
        return exc.code, exc.message, exc.field
    if isinstance(exc, apply.UnknownOpType):
        return "unknown_op_type", str(exc), "op_type"
    return "malformed_op", f"This change could not be read ({type(exc).__name__}: {exc}).", None


# --------------------------------------------------------------------------- pull


@dataclass(frozen=True)
class PullPage:
    ops: list[ChangeLog]
    cursor: int
    more: bool
    head: int


def pull_scope(principal: Principal) -> AccessScope:
    """What ``principal`` may download (partners have no device: 403)."""
    if principal.role == Role.PARTNER:
        raise PermissionDenied("A partner cannot pull the program's changes; use the stand API.")
    return _access(principal)


def visible_clause(principal: Principal) -> ColumnElement[bool] | None:
    """The feed rows ``principal`` may pull (None: all of them)."""
    if principal.role == Role.PARTNER:
        raise PermissionDenied("A partner cannot pull the program's changes; use the stand API.")
    access = _access(principal)
    if access.unrestricted:
        return None
    stands = access.stand_clause()
    partners = access.partner_clause()
    stand_ids = select(StandLocation.id).where(true() if stands is None else stands)
    partner_ids = select(StandPartner.id).where(true() if partners is None else partners)
    clause = or_(
        ChangeLog.scope_stand_id.in_(stand_ids),
        and_(
            ChangeLog.scope_stand_id.is_(None),
            or_(ChangeLog.scope_partner_id.is_(None), ChangeLog.scope_partner_id.in_(partner_ids)),
        ),
    )
    if principal.role == Role.REP:
        clause = and_(clause, not_(ChangeLog.op_type.like("payout.%")))
    return clause


def pull(session: Session, principal: Principal, since: int, limit: int) -> PullPage:
    """Up to ``limit`` feed rows after ``since`` that ``principal`` may see, in feed order.

    The next cursor is the last **scanned** sequence (rows filtered out included), and never
    passes the feed head read in this transaction, so no row committed later can be skipped.
    """
    if since < 0:
        raise ValidationError("The cursor cannot be negative.", field="since")
    limit = max(1, min(limit, MAX_PULL_LIMIT))
    top = feed.head(session)
    upper = min(top, since + PULL_SCAN)
    clause = visible_clause(principal)
    stmt = (
        select(ChangeLog)
        .where(ChangeLog.device_seq > since, ChangeLog.device_seq <= upper)
        .order_by(ChangeLog.device_seq)
        .limit(limit)
    )
    if clause is not None:
        stmt = stmt.where(clause)
    rows = list(session.scalars(stmt))
    cursor = rows[-1].device_seq if len(rows) == limit else upper
    return PullPage(rows, max(cursor, since), cursor < top, top)
