"""Bulk writing of the facts that make most of a sync: sales, write-offs, returns, counts and
refill requests.

A rep's outbox after a day offline is mostly ``sale.record`` ops. Written one by one through
the ORM (a savepoint, a dozen lookups and a flush each) a push of 500 of them took seconds;
here a push's plain facts are checked against a handful of set-wise reads and written with
one ``INSERT`` per table (executemany) and one ``UPDATE`` per stock line.

The rules are those of :mod:`app.services.apply.stock`, not a second copy of them: an op is
taken here only when it plainly passes (known staff actor, existing stand, partner and stock
lines, whole quantities in range, ids unused in the database and earlier in the push, in
scope), and a count only when the server applies it as sent (nothing in its window was
refused or amended, no other device's count overlaps it). Any op that does not — a reused
id, an unknown product, a malformed payload, a count the server amends — is left to the
per-op path (``check`` then ``write`` in a savepoint), which refuses it with the reason the
rep sees, amends it, or applies it. So a push's answers are the same whichever path an op
took; tests/sync/test_bulk_apply.py compares both paths on the same ops.

On a device (:func:`write_replica`) the rows of sales, write-offs and returns are written
for pulled ops whose fact is not there yet, without checks (the server has accepted them).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    bindparam,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session

from app.db import id_in, insert_many
from app.models import (
    Base,
    ChangeLog,
    InventoryMovement,
    LoyaltyKind,
    MovementKind,
    OrderKind,
    PaymentMethod,
    SnapshotSource,
    StandInventory,
    StandInventorySnapshot,
    StandInventorySnapshotLine,
    StandLocation,
    StandLoyaltyLedger,
    StandOrder,
    StandOrderItem,
    StandPartner,
    StandRefillEvent,
    StandRefillOrder,
    StandRefillOrderItem,
    SyncReceivedOp,
)
from app.models.enums import RefillAction, RefillStatus, Role
from app.rules import round_money
from app.services import refills
from app.services.apply import Op, dec, ts
from app.services.base import STAFF
from app.services.inventory import MAX_QTY
from app.services.sales import MAX_LINE_QTY
from app.services.scope import AccessScope
from app.types import UTCDateTime

#: The op types this module writes in bulk, on the server and on a device.
BULK_TYPES = frozenset({"sale.record", "stock.write_off", "stock.return"})
#: On the server also counts, when one applies as sent: no earlier op of the device that
#: the server refused or amended moves stock inside its window, and no other device's count
#: of the same stand and product arrived unseen (app/services/apply/stock.py, ``_check_count``).
#: And refill requests (app/services/apply/refills.py, ``_check_request``): a new refill of
#: carried products with its lines and its request event.
PLANNED_TYPES = BULK_TYPES | {"count.record", "refill.request"}
#: Op types whose stock movements a count's known set may have to correct for.
STOCK_TYPES = frozenset(
    {
        "sale.record",
        "sale.void",
        "stock.write_off",
        "stock.return",
        "count.record",
        "refill.deliver",
        "refill.resolve_discrepancy",
    }
)
#: Bound parameters per IN list (SQLite allows 32,766 per statement; stay well below).
_CHUNK = 900

_MALFORMED = (KeyError, TypeError, ValueError, InvalidOperation, AttributeError)


class _Slow(Exception):
    """This op needs the per-op path (its check may refuse it with a reason)."""


@dataclass
class Rows:
    """The rows a run of ops writes, and how each stock line moves."""

    orders: list[dict[str, Any]] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    movements: list[dict[str, Any]] = field(default_factory=list)
    loyalty: list[dict[str, Any]] = field(default_factory=list)
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    lines: list[dict[str, Any]] = field(default_factory=list)
    deltas: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    counted: dict[tuple[str, str], datetime] = field(default_factory=dict)
    refills: list[dict[str, Any]] = field(default_factory=list)
    refill_items: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.orders or self.movements or self.loyalty or self.snapshots or self.refills)


@dataclass
class Piece:
    """One op's rows, before they join the run (so a refused op leaves nothing behind)."""

    order: dict[str, Any] | None
    items: list[dict[str, Any]]
    movements: list[dict[str, Any]]
    loyalty: dict[str, Any] | None
    snapshot: dict[str, Any] | None = None
    lines: list[dict[str, Any]] = field(default_factory=list)
    # A refill request: the refill, its lines and its event.
    refill: dict[str, Any] | None = None
    refill_items: list[dict[str, Any]] = field(default_factory=list)
    event: dict[str, Any] | None = None

    @property
    def stand_id(self) -> str:
        if self.order is not None:
            return str(self.order["stand_id"])
        if self.snapshot is not None:
            return str(self.snapshot["stand_id"])
        if self.refill is not None:
            return str(self.refill["stand_id"])
        return str(self.movements[0]["stand_id"])

    @property
    def products(self) -> list[str]:
        """The products whose stock lines at the stand the op needs."""
        out = [x["product_id"] for x in self.lines]
        out += [x["product_id"] for x in self.refill_items]
        return out

    @property
    def fact_id(self) -> str:
        """The id a device checks to skip a fact it holds (as ``write_sale`` and the
        write-off writer do): the order's, the snapshot's, else the movement's."""
        if self.order is not None:
            return str(self.order["id"])
        if self.snapshot is not None:
            return str(self.snapshot["id"])
        return str(self.movements[0]["id"])

    def ids(self) -> Iterable[tuple[str, str]]:
        if self.order is not None:
            yield "order", self.order["id"]
        if self.snapshot is not None:
            yield "snapshot", self.snapshot["id"]
        moved = {m["id"] for m in self.movements}
        for x in self.lines:
            yield "line", x["id"]
            # A line without variance may name a movement id it does not create.
            if x["adjustment_movement_id"] and x["adjustment_movement_id"] not in moved:
                yield "movement", x["adjustment_movement_id"]
        for i in self.items:
            yield "item", i["id"]
        for m in self.movements:
            yield "movement", m["id"]
        if self.loyalty is not None:
            yield "loyalty", self.loyalty["id"]
        if self.refill is not None:
            yield "refill", self.refill["id"]
        for i in self.refill_items:
            yield "refill_item", i["id"]
        if self.event is not None:
            yield "refill_event", self.event["id"]

    def add_to(self, rows: Rows) -> None:
        if self.order is not None:
            rows.orders.append(self.order)
        rows.items.extend(self.items)
        rows.movements.extend(self.movements)
        if self.loyalty is not None:
            rows.loyalty.append(self.loyalty)
        if self.snapshot is not None:
            rows.snapshots.append(self.snapshot)
            rows.lines.extend(self.lines)
            at = self.snapshot["counted_at"]
            for x in self.lines:
                key = (self.snapshot["stand_id"], x["product_id"])
                if key not in rows.counted or rows.counted[key] < at:
                    rows.counted[key] = at
        for m in self.movements:
            rows.deltas[(m["stand_id"], m["product_id"])] += m["quantity"]
        if self.refill is not None:
            rows.refills.append(self.refill)
            rows.refill_items.extend(self.refill_items)
        if self.event is not None:
            rows.events.append(self.event)


def _whole(value: Any, low: int, high: int) -> int:
    """A quantity as :func:`~app.services.base.to_int` takes it, within ``[low, high]``;
    anything else goes to the per-op path for its message."""
    if isinstance(value, bool):
        raise _Slow
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        number = int(value.strip())
    else:
        raise _Slow
    if not low <= number <= high:
        raise _Slow
    return number


_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _text_id(value: Any) -> str:
    """A record id as devices make them (canonical UUID text): only such ids are taken here,
    so :func:`ids_in` finds every mention of them in another op's payload."""
    if not isinstance(value, str) or _ID.fullmatch(value) is None:
        raise _Slow
    return value


def ids_in(payload_json: str) -> set[str]:
    """The record ids an op's payload (as JSON text) mentions."""
    return set(_ID.findall(payload_json))


def _sale(op: Op, now: datetime) -> Piece:
    p = op.payload
    o = p["order"]
    oid = _text_id(o["id"])
    at = ts(o["occurred_at"])
    points = int(o["points_earned"])
    items = p["items"]
    if not items:
        raise _Slow
    stand_id = _text_id(o["stand_id"])
    order = {
        "id": oid,
        "stand_id": stand_id,
        "partner_id": _text_id(o["partner_id"]),
        "kind": OrderKind.SALE,
        "voided_order_id": None,
        "occurred_at": at,
        "payment_method": PaymentMethod(o["payment_method"]),
        "total": dec(o["total"]),
        "points_earned": points,
        "oversold": bool(o.get("oversold", False)),
        "actor": op.actor,
        "created_at": at,
    }
    rows_items, rows_moves = [], []
    for item in items:
        qty = _whole(item["quantity"], 1, MAX_LINE_QTY)
        rows_items.append(
            {
                "id": _text_id(item["id"]),
                "order_id": oid,
                "line_no": int(item["line_no"]),
                "product_id": _text_id(item["product_id"]),
                "quantity": qty,
                "unit_price": dec(item["unit_price"]),
                "unit_cost": dec(item["unit_cost"]),
                "line_total": dec(item["line_total"]),
                "price_overridden": bool(item.get("price_overridden", False)),
            }
        )
        rows_moves.append(
            movement_row(
                _text_id(item["movement_id"]),
                stand_id,
                item["product_id"],
                -qty,
                MovementKind.SALE,
                at,
                now,
                op.actor,
                ref=("stand_order", oid),
            )
        )
    loyalty = None
    if p.get("loyalty_entry_id"):
        loyalty = {
            "id": _text_id(p["loyalty_entry_id"]),
            "partner_id": order["partner_id"],
            "kind": LoyaltyKind.EARN,
            "points": points,
            "occurred_at": at,
            "ref_type": "stand_order",
            "ref_id": oid,
            "actor": op.actor,
            "note": None,
        }
    return Piece(order, rows_items, rows_moves, loyalty)


def _stock_change(op: Op, now: datetime) -> Piece:
    p = op.payload
    kind = MovementKind(p["kind"])
    if kind not in (MovementKind.WRITE_OFF, MovementKind.RETURN) or op.op_type != (
        f"stock.{kind.value}"
    ):
        raise _Slow
    qty = _whole(p["quantity"], -MAX_QTY, MAX_QTY)
    if (-qty if kind == MovementKind.WRITE_OFF else qty) < 1:
        raise _Slow
    note = p.get("note")
    if note is not None and not isinstance(note, str):
        raise _Slow
    move = movement_row(
        _text_id(p["movement_id"]),
        _text_id(p["stand_id"]),
        _text_id(p["product_id"]),
        qty,
        kind,
        ts(p["occurred_at"]),
        now,
        op.actor,
        note=note,
    )
    return Piece(None, [], [move], None)


def movement_row(
    movement_id: str,
    stand_id: str,
    product_id: str,
    quantity: int,
    kind: MovementKind,
    at: datetime,
    now: datetime,
    actor: str | None,
    *,
    ref: tuple[str, str] | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    # The columns :func:`app.services.inventory.post_movement` fills.
    return {
        "id": movement_id,
        "stand_id": stand_id,
        "product_id": product_id,
        "quantity": quantity,
        "kind": kind,
        "occurred_at": at,
        "recorded_at": now,
        "ref_type": ref[0] if ref else None,
        "ref_id": ref[1] if ref else None,
        "actor": actor,
        "note": note,
    }


def _count(op: Op, now: datetime) -> Piece:
    """A count as ``write_count`` stores it when the server applies it as sent."""
    p = op.payload
    sid = _text_id(p["snapshot_id"])
    stand_id = _text_id(p["stand_id"])
    at = ts(p["counted_at"])
    note = p.get("note")
    if note is not None and not isinstance(note, str):
        raise _Slow
    snapshot = {
        "id": sid,
        "stand_id": stand_id,
        "source": SnapshotSource(p.get("source") or SnapshotSource.COUNT),
        "counted_at": at,
        "actor": op.actor,
        "note": note,
    }
    if not p["lines"]:
        raise _Slow
    lines, moves, seen = [], [], set()
    for line in p["lines"]:
        pid = _text_id(line["product_id"])
        if pid in seen or "adjustment" in line or line.get("review"):
            raise _Slow
        seen.add(pid)
        counted = _whole(line["counted"], 0, MAX_QTY)
        expected = _whole(line["expected"], -(10**12), 10**12)
        mid = line.get("movement_id")
        if mid is not None:
            mid = _text_id(mid)
        if counted != expected:
            if mid is None:
                raise _Slow  # the server would give the adjustment an id: amended
            moves.append(
                movement_row(
                    mid,
                    stand_id,
                    pid,
                    counted - expected,
                    MovementKind.COUNT_ADJUSTMENT,
                    at,
                    now,
                    op.actor,
                    ref=("stand_inventory_snapshot", sid),
                )
            )
        lines.append(
            {
                "id": _text_id(line["id"]),
                "snapshot_id": sid,
                "product_id": pid,
                "expected_qty": expected,
                "counted_qty": counted,
                "variance": counted - expected,
                "adjustment_movement_id": mid,
            }
        )
    return Piece(None, [], moves, None, snapshot, lines)


def _refill(op: Op) -> Piece:
    """A refill request as ``write_refill_request`` stores it (the event's role is the
    op's ``actor_role``: the server sets it to the pushing user's)."""
    p = op.payload
    rid = _text_id(p["refill_id"])
    at = ts(p["at"])
    note = p.get("note")
    if note is not None and not isinstance(note, str):
        raise _Slow
    if not p["items"] or not op.actor or not op.actor_role:
        raise _Slow
    items, seen, total = [], set(), Decimal(0)
    for line in p["items"]:
        pid = _text_id(line["product_id"])
        if pid in seen:
            raise _Slow  # listed twice: refused with the product's name
        seen.add(pid)
        qty = _whole(line["requested_qty"], 1, refills.MAX_QTY)
        price = dec(line["unit_price"])
        if not price.is_finite():
            raise _Slow
        total += round_money(price * qty)
        items.append(
            {
                "id": _text_id(line["id"]),
                "refill_id": rid,
                "line_no": int(line["line_no"]),
                "product_id": pid,
                "requested_qty": qty,
                "unit_price": price,
            }
        )
    refill = {
        "id": rid,
        "stand_id": _text_id(p["stand_id"]),
        "status": RefillStatus.REQUESTED,
        "total": total,
        "requested_by": op.actor,
        "requested_at": at,
        "note": note or "",
        "created_at": at,
        "updated_at": at,
    }
    event = {
        "id": _text_id(p["event_id"]),
        "refill_id": rid,
        "action": RefillAction.REQUEST,
        "from_status": None,
        "to_status": RefillStatus.REQUESTED,
        "actor": op.actor,
        "role": Role(op.actor_role).value,
        "occurred_at": at,
        "detail": "{}",
    }
    return Piece(None, [], [], None, refill=refill, refill_items=items, event=event)


def piece(op: Op, now: datetime) -> Piece:
    """The rows ``op`` writes. Raises :class:`_Slow` (or a payload error) when the op is
    not plainly writable here."""
    if op.op_type == "sale.record":
        return _sale(op, now)
    if op.op_type == "count.record":
        return _count(op, now)
    if op.op_type == "refill.request":
        return _refill(op)
    return _stock_change(op, now)


# --------------------------------------------------------------------------- reads


def _chunks(values: Sequence[str]) -> Iterable[list[str]]:
    for n in range(0, len(values), _CHUNK):
        yield list(values[n : n + _CHUNK])


def existing(session: Session, model: type[Base], ids: Iterable[str]) -> set[str]:
    """Which of ``ids`` ``model``'s table holds."""
    table = cast(Table, model.__table__)
    wanted = sorted(set(ids))
    dialect = session.get_bind().dialect.name
    if wanted and dialect == "postgresql":
        return set(session.scalars(select(table.c.id).where(id_in(table.c.id, wanted, dialect))))
    found: set[str] = set()
    for chunk in _chunks(wanted):
        found.update(session.scalars(select(table.c.id).where(table.c.id.in_(chunk))))
    return found


@dataclass
class _Known:
    """What the database holds about a run's ops, read set-wise."""

    taken: dict[str, set[str]]
    stands: dict[str, str]  # stand id -> partner id
    partners: set[str]
    lines: set[tuple[str, str]]
    visible: set[str] | None  # stands in the caller's scope (None: all)


def _fresh(pc: Piece, taken: dict[str, set[str]], claimed: dict[str, set[str]]) -> bool:
    """The piece's ids are unused: in the database, earlier in the run, and within itself."""
    ids = list(pc.ids())
    if len(set(ids)) != len(ids):
        return False
    return not any(value in taken[kind] or value in claimed[kind] for kind, value in ids)


#: The table of each kind of id a piece writes (see :meth:`Piece.ids`).
_ID_TABLES: dict[str, type[Base]] = {
    "order": StandOrder,
    "item": StandOrderItem,
    "movement": InventoryMovement,
    "loyalty": StandLoyaltyLedger,
    "snapshot": StandInventorySnapshot,
    "line": StandInventorySnapshotLine,
    "refill": StandRefillOrder,
    "refill_item": StandRefillOrderItem,
    "refill_event": StandRefillEvent,
}


def _read(session: Session, pieces: Sequence[Piece], access: AccessScope) -> _Known:
    ids: dict[str, list[str]] = defaultdict(list)
    for pc in pieces:
        for kind, value in pc.ids():
            ids[kind].append(value)
    taken = {kind: existing(session, model, ids[kind]) for kind, model in _ID_TABLES.items()}
    stand_ids = sorted({pc.stand_id for pc in pieces})
    stands: dict[str, str] = {}
    lines: set[tuple[str, str]] = set()
    visible: set[str] | None = None if access.unrestricted else set()
    clause = None if visible is None else access.stand_clause()
    for chunk in _chunks(stand_ids):
        for s_id, p_id in session.execute(
            select(StandLocation.id, StandLocation.partner_id).where(StandLocation.id.in_(chunk))
        ):
            stands[s_id] = p_id
        for s_id, p_id in session.execute(
            select(StandInventory.stand_id, StandInventory.product_id).where(
                StandInventory.stand_id.in_(chunk)
            )
        ):
            lines.add((s_id, p_id))
        if visible is not None and clause is not None:
            visible.update(
                session.scalars(select(StandLocation.id).where(StandLocation.id.in_(chunk), clause))
            )
    partners: set[str] = set()
    wanted = sorted({pc.order["partner_id"] for pc in pieces if pc.order is not None})
    for chunk in _chunks(wanted):
        partners.update(session.scalars(select(StandPartner.id).where(StandPartner.id.in_(chunk))))
    return _Known(taken, stands, partners, lines, visible)


# --------------------------------------------------------------------------- the server


@dataclass
class Planned:
    """The ops of a batch this module writes: by position, the op's rows and its scope
    (stand, partner); and which op claims each of their ids."""

    pieces: dict[int, tuple[Piece, str, str]] = field(default_factory=dict)
    claims: dict[str, int] = field(default_factory=dict)


def plan(
    session: Session,
    ops: Sequence[Op],
    eligible: Sequence[bool],
    access: AccessScope,
    role: Role,
    now: datetime,
) -> Planned:
    """Which of ``ops`` (a push's ops from some point on, in device order; ``eligible``
    marks those of :data:`PLANNED_TYPES` this module may take) plainly pass their checks
    against the database as it is (see the module docstring). An id is claimed by the first
    op that passes with it; a later op with the same id is left to the per-op path, which
    refuses it as the per-op order would. A count is taken only while no earlier op of the
    push that moves its stand's stock has been left to the per-op path (the server may
    refuse or amend that op, and the count's known set would have to correct for it)."""
    out = Planned()
    if role not in STAFF:
        return out
    pieces: dict[int, Piece] = {}
    for n, op in enumerate(ops):
        if not eligible[n]:
            continue
        if op.op_type == "refill.request":
            op = replace(op, actor_role=role.value)  # as the per-op path records it
        try:
            pieces[n] = piece(op, now)
        except (_Slow, *_MALFORMED):
            continue
    known = _read(session, list(pieces.values()), access)
    counts = {n: ops[n] for n, pc in pieces.items() if pc.snapshot is not None}
    unanswered = _refused_or_amended(session, list(counts.values()))
    overlapping = _other_counts(session, {n: pieces[n] for n in counts}, counts)
    claimed: dict[str, set[str]] = defaultdict(set)
    # Stands where an earlier op that moves stock went to the per-op path ("*": any stand).
    left: set[str] = set()
    for n, op in enumerate(ops):
        pc = pieces.get(n)
        ok = pc is not None and _passes(op, pc, known, claimed)
        if ok and pc is not None and pc.snapshot is not None:
            ok = (
                "*" not in left
                and pc.stand_id not in left
                and not _in_window(op, unanswered)
                and n not in overlapping
            )
        if not ok or pc is None:
            if op.op_type in STOCK_TYPES:
                left.add(_stock_stand(op))
            continue
        for kind, value in pc.ids():
            claimed[kind].add(value)
            out.claims[value] = n
        out.pieces[n] = (pc, pc.stand_id, known.stands[pc.stand_id])
    return out


def _stock_stand(op: Op) -> str:
    """The stand whose stock ``op`` moves, as far as its payload says ("*": not known
    without reading the database, or a payload that does not say)."""
    p = op.payload
    try:
        stand = p["order"]["stand_id"] if op.op_type == "sale.record" else p.get("stand_id")
    except (*_MALFORMED,):
        return "*"
    return stand if isinstance(stand, str) else "*"


def _passes(op: Op, pc: Piece, known: _Known, claimed: dict[str, set[str]]) -> bool:
    stand_id = pc.stand_id
    carried = [(m["stand_id"], m["product_id"]) for m in pc.movements]
    carried += [(stand_id, product) for product in pc.products]
    return (
        bool(op.actor)
        and stand_id in known.stands
        and (known.visible is None or stand_id in known.visible)
        and (pc.order is None or pc.order["partner_id"] in known.partners)
        and all(key in known.lines for key in carried)
        and _fresh(pc, known.taken, claimed)
    )


def _refused_or_amended(session: Session, counts: Sequence[Op]) -> dict[str, list[int]]:
    """Per device: the sequence numbers of its received ops the server refused or amended,
    from the oldest window of ``counts`` on (as ``_unconfirmed`` reads them)."""
    out: dict[str, list[int]] = defaultdict(list)
    starts: dict[str, int] = {}
    for op in counts:
        if op.device_id is not None and op.device_seq is not None:
            start = op.pending_from_seq if op.pending_from_seq is not None else 1
            starts[op.device_id] = min(start, starts.get(op.device_id, start))
    for device, start in starts.items():
        for condition in (SyncReceivedOp.status == "rejected", SyncReceivedOp.amended == true()):
            out[device].extend(
                session.scalars(
                    select(SyncReceivedOp.device_seq).where(
                        SyncReceivedOp.device_id == device,
                        SyncReceivedOp.device_seq >= start,
                        condition,
                    )
                )
            )
    return out


def _in_window(op: Op, unanswered: dict[str, list[int]]) -> bool:
    """Whether one of the counting device's refused or amended ops lies in the count's
    window (its ops still unanswered when it counted)."""
    if op.device_id is None or op.device_seq is None:
        return False
    start = op.pending_from_seq if op.pending_from_seq is not None else 1
    return any(start <= seq < op.device_seq for seq in unanswered.get(op.device_id, ()))


def _other_counts(session: Session, pieces: dict[int, Piece], counts: dict[int, Op]) -> set[int]:
    """The counts (by position) that another device's or the server's count of the same
    stand and product overlaps: one in the feed after the count's ``base_seq`` (as
    ``_overlapping`` finds them, read once for the push)."""
    if not counts:
        return set()
    stands = sorted({pc.stand_id for pc in pieces.values()})
    since = min(op.base_seq for op in counts.values())
    # A push's counts are one device's: its own earlier counts (already in the feed when a
    # long outbox goes in batches) never overlap them, so they are not read at all.
    devices = {op.device_id for op in counts.values()}
    not_own: ColumnElement[bool] = true()
    if len(devices) == 1 and None not in devices:
        not_own = or_(
            ChangeLog.origin_device_id.is_(None), ChangeLog.origin_device_id != devices.pop()
        )
    found: list[tuple[int, str | None, str, set[str]]] = []
    for chunk in _chunks(stands):
        rows = session.execute(
            select(ChangeLog.device_seq, ChangeLog.origin_device_id, ChangeLog.payload).where(
                ChangeLog.op_type == "count.record",
                ChangeLog.device_seq > since,
                or_(ChangeLog.scope_stand_id.in_(chunk), ChangeLog.scope_stand_id.is_(None)),
                not_own,
            )
        )
        for seq, origin, raw in rows:
            other = json.loads(raw)
            found.append(
                (
                    seq,
                    origin,
                    str(other.get("stand_id")),
                    {str(x.get("product_id")) for x in other.get("lines", ())},
                )
            )
    out = set()
    for n, op in counts.items():
        pc = pieces[n]
        products = {x["product_id"] for x in pc.lines}
        for seq, origin, stand_id, others in found:
            if (
                seq > op.base_seq
                and stand_id == pc.stand_id
                and (op.device_id is None or origin is None or origin != op.device_id)
                and products & others
            ):
                out.add(n)
                break
    return out


# --------------------------------------------------------------------------- writing


_ON_HAND = (
    update(StandInventory)
    .where(
        StandInventory.stand_id == bindparam("s_id"),
        StandInventory.product_id == bindparam("p_id"),
    )
    .values(on_hand=StandInventory.on_hand + bindparam("delta"))
)


_COUNTED = (
    update(StandInventory)
    .where(
        StandInventory.stand_id == bindparam("s_id"),
        StandInventory.product_id == bindparam("p_id"),
        or_(
            StandInventory.last_counted_at.is_(None),
            StandInventory.last_counted_at < bindparam("at", type_=UTCDateTime()),
        ),
    )
    .values(last_counted_at=bindparam("at", type_=UTCDateTime()))
)


def insert_rows(session: Session, model: type[Base], rows: list[dict[str, Any]]) -> None:
    """One INSERT of ``rows`` (all with the same keys) into ``model``'s table."""
    insert_many(session.connection(), cast(Table, model.__table__), rows)


def move_stock(session: Session, deltas: Mapping[tuple[str, str], int]) -> None:
    """Move the on-hand cache of each (stand, product) line by its delta (the movements
    are the caller's rows, in the same transaction), and make the session read the lines
    it holds again."""
    moved = [{"s_id": s, "p_id": p, "delta": d} for (s, p), d in sorted(deltas.items()) if d]
    if moved:
        session.connection().execute(_ON_HAND, moved)
    for obj in list(session.identity_map.values()):
        if isinstance(obj, StandInventory):
            session.expire(obj, ["on_hand", "last_counted_at"])


def write(session: Session, rows: Rows) -> None:
    """Insert the run's rows (one statement per table) and move each stock line once."""
    if not rows:
        return
    session.flush()
    insert_rows(session, StandOrder, rows.orders)
    insert_rows(session, StandOrderItem, rows.items)
    insert_rows(session, InventoryMovement, rows.movements)
    insert_rows(session, StandLoyaltyLedger, rows.loyalty)
    insert_rows(session, StandInventorySnapshot, rows.snapshots)
    insert_rows(session, StandInventorySnapshotLine, rows.lines)
    insert_rows(session, StandRefillOrder, rows.refills)
    insert_rows(session, StandRefillOrderItem, rows.refill_items)
    insert_rows(session, StandRefillEvent, rows.events)
    if rows.counted:
        # Arrival order is not count order: the latest count time wins.
        session.connection().execute(
            _COUNTED,
            [{"s_id": s, "p_id": p, "at": at} for (s, p), at in sorted(rows.counted.items())],
        )
    move_stock(session, rows.deltas)


# --------------------------------------------------------------------------- a device


def write_replica(session: Session, ops: Sequence[Op], now: datetime) -> list[Op]:
    """Write the pulled ``ops`` whose fact the device does not hold yet, in bulk. Returns the
    ops left for the per-op writer (a payload this module does not take)."""
    pieces: list[Piece] = []
    rest: list[Op] = []
    for op in ops:
        try:
            pieces.append(piece(op, now))
        except (_Slow, *_MALFORMED):
            rest.append(op)
    held = existing(session, StandOrder, [pc.fact_id for pc in pieces if pc.order is not None])
    held |= existing(session, InventoryMovement, [pc.fact_id for pc in pieces if pc.order is None])
    rows = Rows()
    for pc in pieces:
        if pc.fact_id in held:
            continue  # already here (write_sale and the write-off writer skip it the same way)
        held.add(pc.fact_id)
        pc.add_to(rows)
    write(session, rows)
    return rest


def run_end(ops: Sequence[Op], start: int) -> int:
    """The end (exclusive) of the run of bulk-type ops that begins at ``start``."""
    end = start
    while end < len(ops) and ops[end].op_type in BULK_TYPES:
        end += 1
    return end
