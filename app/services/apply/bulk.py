"""Bulk writing of the plain facts that make most of a sync: sales, write-offs and returns.

A rep's outbox after a day offline is mostly ``sale.record`` ops. Written one by one through
the ORM (a savepoint, a dozen lookups and a flush each) a push of 500 of them took seconds;
here a run of consecutive plain facts is checked against a handful of set-wise reads and
written with one ``INSERT`` per table (executemany) and one ``UPDATE`` per stock line.

The rules are those of :mod:`app.services.apply.stock`, not a second copy of them: an op is
taken here only when it plainly passes (known staff actor, existing stand, partner and stock
lines, whole quantities in range, ids unused in the database and in the run, in scope). Any
op that does not — a reused id, an unknown product, a malformed payload — is left to the
per-op path (``check`` then ``write`` in a savepoint), which refuses it with the reason the
rep sees, or applies it. So a batch's answers are the same whichever path an op took; the
tests in tests/sync/test_bulk_apply.py compare both paths on the same ops.

On a device (:func:`write_replica`) the same rows are written for pulled ops whose fact is not
there yet, without checks (the server has accepted them).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import InvalidOperation
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from app.models import (
    Base,
    InventoryMovement,
    LoyaltyKind,
    MovementKind,
    OrderKind,
    PaymentMethod,
    StandInventory,
    StandLocation,
    StandLoyaltyLedger,
    StandOrder,
    StandOrderItem,
    StandPartner,
)
from app.models.enums import Role
from app.services.apply import Op, dec, ts
from app.services.base import STAFF
from app.services.inventory import MAX_QTY
from app.services.sales import MAX_LINE_QTY
from app.services.scope import AccessScope

#: The op types this module writes in bulk.
BULK_TYPES = frozenset({"sale.record", "stock.write_off", "stock.return"})
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
    deltas: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))

    def __bool__(self) -> bool:
        return bool(self.orders or self.movements or self.loyalty)


@dataclass
class Piece:
    """One op's rows, before they join the run (so a refused op leaves nothing behind)."""

    order: dict[str, Any] | None
    items: list[dict[str, Any]]
    movements: list[dict[str, Any]]
    loyalty: dict[str, Any] | None

    def ids(self) -> Iterable[tuple[str, str]]:
        if self.order is not None:
            yield "order", self.order["id"]
        for i in self.items:
            yield "item", i["id"]
        for m in self.movements:
            yield "movement", m["id"]
        if self.loyalty is not None:
            yield "loyalty", self.loyalty["id"]

    def add_to(self, rows: Rows) -> None:
        if self.order is not None:
            rows.orders.append(self.order)
        rows.items.extend(self.items)
        rows.movements.extend(self.movements)
        if self.loyalty is not None:
            rows.loyalty.append(self.loyalty)
        for m in self.movements:
            rows.deltas[(m["stand_id"], m["product_id"])] += m["quantity"]


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


def piece(op: Op, now: datetime) -> Piece:
    """The rows ``op`` writes. Raises :class:`_Slow` (or a payload error) when the op is
    not plainly writable here."""
    if op.op_type == "sale.record":
        return _sale(op, now)
    return _stock_change(op, now)


# --------------------------------------------------------------------------- reads


def _chunks(values: Sequence[str]) -> Iterable[list[str]]:
    for n in range(0, len(values), _CHUNK):
        yield list(values[n : n + _CHUNK])


def existing(session: Session, model: type[Base], ids: Iterable[str]) -> set[str]:
    """Which of ``ids`` ``model``'s table holds."""
    table = cast(Table, model.__table__)
    wanted = sorted(set(ids))
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


def _stand_ids(pieces: Iterable[Piece]) -> set[str]:
    out = set()
    for pc in pieces:
        for m in pc.movements:
            out.add(m["stand_id"])
        if pc.order is not None:
            out.add(pc.order["stand_id"])
    return out


def _read(session: Session, pieces: Sequence[Piece], access: AccessScope | None) -> _Known:
    ids: dict[str, list[str]] = defaultdict(list)
    for pc in pieces:
        for kind, value in pc.ids():
            ids[kind].append(value)
    taken = {
        "order": existing(session, StandOrder, ids["order"]),
        "item": existing(session, StandOrderItem, ids["item"]),
        "movement": existing(
            session,
            InventoryMovement,
            ids["movement"],
        ),
        "loyalty": existing(
            session,
            StandLoyaltyLedger,
            ids["loyalty"],
        ),
    }
    stand_ids = sorted(_stand_ids(pieces))
    stands: dict[str, str] = {}
    lines: set[tuple[str, str]] = set()
    visible: set[str] | None = None if access is None or access.unrestricted else set()
    clause = None if visible is None or access is None else access.stand_clause()
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
    session: Session, ops: Sequence[Op], access: AccessScope, role: Role, now: datetime
) -> Planned:
    """Which of ``ops`` (bulk types, in device order) plainly pass their checks against the
    database as it is (see the module docstring). An id is claimed by the first op that
    passes with it; a later op with the same id is left to the per-op path, which refuses
    it as the per-op order would."""
    out = Planned()
    if role not in STAFF:
        return out
    pieces: dict[int, Piece] = {}
    for n, op in enumerate(ops):
        try:
            pieces[n] = piece(op, now)
        except (_Slow, *_MALFORMED):
            continue
    known = _read(session, list(pieces.values()), access)
    claimed: dict[str, set[str]] = defaultdict(set)
    for n, pc in pieces.items():
        op = ops[n]
        stand_id = pc.order["stand_id"] if pc.order is not None else pc.movements[0]["stand_id"]
        ok = (
            bool(op.actor)
            and stand_id in known.stands
            and (known.visible is None or stand_id in known.visible)
            and (pc.order is None or pc.order["partner_id"] in known.partners)
            and all((m["stand_id"], m["product_id"]) in known.lines for m in pc.movements)
            and _fresh(pc, known.taken, claimed)
        )
        if not ok:
            continue
        for kind, value in pc.ids():
            claimed[kind].add(value)
            out.claims[value] = n
        out.pieces[n] = (pc, stand_id, known.stands[stand_id])
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


def insert_rows(session: Session, model: type[Base], rows: list[dict[str, Any]]) -> None:
    """One INSERT of ``rows`` (all with the same keys) into ``model``'s table."""
    if rows:
        session.connection().execute(insert(cast(Table, model.__table__)), rows)


def move_stock(session: Session, deltas: Mapping[tuple[str, str], int]) -> None:
    """Move the on-hand cache of each (stand, product) line by its delta (the movements
    are the caller's rows, in the same transaction), and make the session read the lines
    it holds again."""
    moved = [{"s_id": s, "p_id": p, "delta": d} for (s, p), d in sorted(deltas.items()) if d]
    if moved:
        session.connection().execute(_ON_HAND, moved)
    for obj in list(session.identity_map.values()):
        if isinstance(obj, StandInventory):
            session.expire(obj, ["on_hand"])


def write(session: Session, rows: Rows) -> None:
    """Insert the run's rows (one statement per table) and move each stock line once."""
    if not rows:
        return
    session.flush()
    insert_rows(session, StandOrder, rows.orders)
    insert_rows(session, StandOrderItem, rows.items)
    insert_rows(session, InventoryMovement, rows.movements)
    insert_rows(session, StandLoyaltyLedger, rows.loyalty)
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
    orders = existing(
        session,
        StandOrder,
        [pc.order["id"] for pc in pieces if pc.order is not None],
    )
    moves = existing(
        session,
        InventoryMovement,
        [pc.movements[0]["id"] for pc in pieces if pc.order is None],
    )
    rows = Rows()
    seen: set[str] = set()
    for pc in pieces:
        key = pc.order["id"] if pc.order is not None else pc.movements[0]["id"]
        if key in seen or key in (orders if pc.order is not None else moves):
            continue  # already here (write_sale and write-offs skip it the same way)
        seen.add(key)
        pc.add_to(rows)
    write(session, rows)
    return rest


def run_end(ops: Sequence[Op], start: int) -> int:
    """The end (exclusive) of the run of bulk-type ops that begins at ``start``."""
    end = start
    while end < len(ops) and ops[end].op_type in BULK_TYPES:
        end += 1
    return end
