"""Sales and stock ops: sales and their voids, counts, stock levels, write-offs and returns.

Sales, voids, write-offs and returns are **facts**: ``write`` stores them as recorded (the
payload's totals, prices and points; no re-pricing, no stand-status, guardrail or oversell
check, since the goods moved), and ``check`` refuses only what cannot be stored: an unknown
stand or product, a product the stand does not carry, an id already used for other content,
a sale already voided.

A count is a fact too, but the server computes its adjustment (docs/sync-design.md §1.5):
``check`` works out what the counting device had seen, amends each line's ``adjustment``
(and its movement id), and holds a line for review when another device's count of the same
stand and product arrived unseen in between. Only ``check`` writes review rows, so a device
applying the feed never does.

Stock levels are **descriptive**: the triple (par level, reorder point, capacity) is one
value, last writer wins by server order. The server keeps the triple an op overwrites in
``sync_field_history``; that row is written by ``check`` (server only), so devices applying
the feed write no history.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, NoReturn

from sqlalchemy import or_, select, true
from sqlalchemy.orm import Session

from app.clock import ensure_utc, utcnow
from app.errors import Conflict, NotFound, PermissionDenied, ValidationError
from app.ids import new_id
from app.models import (
    Base,
    ChangeLog,
    InventoryMovement,
    LoyaltyKind,
    MovementKind,
    OrderKind,
    PaymentMethod,
    Product,
    RefillDiscrepancy,
    SnapshotSource,
    StandInventory,
    StandInventorySnapshot,
    StandInventorySnapshotLine,
    StandLocation,
    StandLoyaltyLedger,
    StandOrder,
    StandOrderItem,
    StandPartner,
    StandRefillOrder,
    SyncFieldHistory,
    SyncReceivedOp,
    SyncReview,
)
from app.services.apply import Op, OpClass, bulk, dec, spec, ts
from app.services.base import STAFF, get_or_404, to_int, to_json, unused_id
from app.services.inventory import MAX_QTY, check_levels, inventory_line, post_movement
from app.services.loyalty import add_entry
from app.services.sales import (
    MAX_LINE_QTY,
    VOID_POINTS_NOTE,
    order_id_used,
    void_order_row,
    voidable_order,
)

# --------------------------------------------------------------------------- shared


def _require(op: Op, action: str) -> None:
    """The op's person must be staff (the services' role guard and text)."""
    actor = op.as_actor()
    if actor is None:
        raise PermissionDenied(f"Only a signed-in person may {action}.")
    actor.require(STAFF, action)


def _stand_scope(
    session: Session, stand_id: str | None, partner_id: str | None = None
) -> tuple[str | None, str | None]:
    stand = session.get(StandLocation, stand_id) if stand_id else None
    return stand_id, stand.partner_id if stand is not None else partner_id


def _payload_stand_scope(session: Session, op: Op) -> tuple[str | None, str | None]:
    return _stand_scope(session, op.payload.get("stand_id"))


def _reused(
    session: Session, model: type[Base], record_id: str, field: str, label: str
) -> NoReturn:
    """Refuse ``record_id``, which another record of ``model`` already uses, with the text of
    the services' own guard (:func:`~app.services.base.unused_id`) as a conflict."""
    try:
        unused_id(session, model, record_id, field, label)
    except ValidationError as exc:
        raise Conflict(exc.message, field=exc.field) from None
    raise Conflict(f"Id {record_id} is already used by another record.", field=field)


def _fresh(session: Session, model: type[Base], ids: Sequence[str], field: str) -> None:
    """The new rows' ids are free (and not repeated): an id in use would otherwise fail the
    whole push on the primary key instead of refusing this op."""
    column = model.__table__.c.id
    seen: set[str] = set()
    for record_id in ids:
        if record_id in seen:
            raise Conflict(f"Id {record_id} is already used by another record.", field=field)
        seen.add(record_id)
    taken = session.scalar(select(column).where(column.in_(list(ids))).limit(1)) if ids else None
    if taken is not None:
        if model is InventoryMovement:
            _reused(session, model, str(taken), field, "stock movement")
        raise Conflict(f"Id {taken} is already used by another record.", field=field)


def _same_time(a: Any, b: Any) -> bool:
    return ensure_utc(a) == ts(b)


# --------------------------------------------------------------------------- sale.record


def _same_sale(order: StandOrder, payload: Mapping[str, Any]) -> bool:
    o = payload["order"]
    if (
        order.kind != OrderKind.SALE
        or order.stand_id != o["stand_id"]
        or order.partner_id != o["partner_id"]
        or not _same_time(order.occurred_at, o["occurred_at"])
        or order.payment_method != o["payment_method"]
        or order.total != dec(o["total"])
        or order.points_earned != int(o["points_earned"])
    ):
        return False
    mine = sorted((i.id, i.product_id, i.quantity, i.unit_price) for i in order.items)
    theirs = sorted(
        (i["id"], i["product_id"], int(i["quantity"]), dec(i["unit_price"]))
        for i in payload["items"]
    )
    return mine == theirs


def _check_sale(session: Session, op: Op) -> Mapping[str, Any] | None:
    _require(op, "record sales")
    p = op.payload
    o = p["order"]
    oid = str(o["id"])
    existing = session.get(StandOrder, oid)
    if existing is not None:
        if _same_sale(existing, p):
            return None
        raise order_id_used(oid, Conflict)
    stand = get_or_404(session, StandLocation, o["stand_id"], "stand")
    get_or_404(session, StandPartner, o["partner_id"], "partner")
    items = p["items"]
    if not items:
        raise ValidationError("Add at least one product to the sale.", field="lines")
    for n, item in enumerate(items, start=1):
        inventory_line(session, stand.id, item["product_id"])
        to_int(
            item["quantity"], f"lines[{n}].quantity", "Quantity", minimum=1, maximum=MAX_LINE_QTY
        )
    _fresh(session, StandOrderItem, [i["id"] for i in items], "items")
    _fresh(session, InventoryMovement, [i["movement_id"] for i in items], "movement_id")
    if p.get("loyalty_entry_id"):
        _fresh(session, StandLoyaltyLedger, [p["loyalty_entry_id"]], "loyalty_entry_id")
    return None


def _scope_sale(session: Session, op: Op) -> tuple[str | None, str | None]:
    o = op.payload["order"]
    return _stand_scope(session, o.get("stand_id"), o.get("partner_id"))


@spec(
    "sale.record",
    OpClass.FACT,
    check=_check_sale,
    scope=_scope_sale,
    summary="A sale at a stand: the order and its items as recorded, a sale movement per "
    "item and the points it earned.",
)
def write_sale(session: Session, op: Op) -> None:
    p = op.payload
    o = p["order"]
    oid = str(o["id"])
    if session.get(StandOrder, oid) is not None:
        return
    at = ts(o["occurred_at"])
    actor = op.as_actor()
    points = int(o["points_earned"])
    session.add(
        StandOrder(
            id=oid,
            stand_id=o["stand_id"],
            partner_id=o["partner_id"],
            kind=OrderKind.SALE,
            occurred_at=at,
            payment_method=PaymentMethod(o["payment_method"]),
            total=dec(o["total"]),
            points_earned=points,
            oversold=bool(o.get("oversold", False)),
            actor=op.actor,
            created_at=at,
        )
    )
    session.flush()
    for item in p["items"]:
        qty = int(item["quantity"])
        session.add(
            StandOrderItem(
                id=item["id"],
                order_id=oid,
                line_no=int(item["line_no"]),
                product_id=item["product_id"],
                quantity=qty,
                unit_price=dec(item["unit_price"]),
                unit_cost=dec(item["unit_cost"]),
                line_total=dec(item["line_total"]),
                price_overridden=bool(item.get("price_overridden", False)),
            )
        )
        post_movement(
            session,
            stand_id=o["stand_id"],
            product_id=item["product_id"],
            quantity=-qty,
            kind=MovementKind.SALE,
            occurred_at=at,
            actor=actor,
            ref_type="stand_order",
            ref_id=oid,
            movement_id=item["movement_id"],
        )
    if p.get("loyalty_entry_id"):
        add_entry(
            session,
            partner_id=o["partner_id"],
            kind=LoyaltyKind.EARN,
            points=points,
            occurred_at=at,
            actor=actor,
            ref_type="stand_order",
            ref_id=oid,
            entry_id=p["loyalty_entry_id"],
        )


# --------------------------------------------------------------------------- sale.void


def _same_void(void: StandOrder, payload: Mapping[str, Any]) -> bool:
    if void.kind != OrderKind.VOID or void.voided_order_id != payload["order_id"]:
        return False
    if not _same_time(void.occurred_at, payload["occurred_at"]):
        return False
    mine = sorted((i.id, i.product_id, i.quantity) for i in void.items)
    theirs = sorted((i["id"], i["product_id"], int(i["quantity"])) for i in payload["items"])
    return mine == theirs


def _check_void(session: Session, op: Op) -> Mapping[str, Any] | None:
    _require(op, "void sales")
    p = op.payload
    vid = str(p["void_id"])
    existing = session.get(StandOrder, vid)
    if existing is not None:
        if _same_void(existing, p):
            return None
        raise order_id_used(vid, Conflict)
    order = voidable_order(session, p["order_id"], ts(p["occurred_at"]))
    sold = sorted((i.product_id, -i.quantity) for i in order.items)
    undone = sorted((i["product_id"], int(i["quantity"])) for i in p["items"])
    if sold != undone:
        raise ValidationError("This void does not match the sale it undoes.", field="items")
    _fresh(session, StandOrderItem, [i["id"] for i in p["items"]], "items")
    _fresh(session, InventoryMovement, [i["movement_id"] for i in p["items"]], "movement_id")
    if p.get("loyalty_entry_id"):
        _fresh(session, StandLoyaltyLedger, [p["loyalty_entry_id"]], "loyalty_entry_id")
    return None


@spec(
    "sale.void",
    OpClass.FACT,
    check=_check_void,
    scope=_payload_stand_scope,
    summary="The void of a sale: a compensating order with negated items, the stock back "
    "and the points taken back.",
)
def write_void(session: Session, op: Op) -> None:
    p = op.payload
    vid = str(p["void_id"])
    if session.get(StandOrder, vid) is not None:
        return
    order = get_or_404(session, StandOrder, p["order_id"], "order")
    at = ts(p["occurred_at"])
    actor = op.as_actor()
    reason = p.get("reason")
    session.add(void_order_row(order, vid, at, op.actor))
    session.flush()
    sold = {i.product_id: i for i in order.items}
    for item in p["items"]:
        line = sold[item["product_id"]]
        qty = int(item["quantity"])  # negative: the sale's quantity undone
        session.add(
            StandOrderItem(
                id=item["id"],
                order_id=vid,
                line_no=int(item.get("line_no", line.line_no)),
                product_id=line.product_id,
                quantity=qty,
                unit_price=line.unit_price,
                unit_cost=line.unit_cost,
                line_total=-line.line_total,
                price_overridden=line.price_overridden,
            )
        )
        post_movement(
            session,
            stand_id=order.stand_id,
            product_id=line.product_id,
            quantity=-qty,
            kind=MovementKind.SALE_VOID,
            occurred_at=at,
            actor=actor,
            ref_type="stand_order",
            ref_id=vid,
            movement_id=item["movement_id"],
            note=reason,
        )
    if p.get("loyalty_entry_id"):
        add_entry(
            session,
            partner_id=order.partner_id,
            kind=LoyaltyKind.ADJUST,
            points=-order.points_earned,
            occurred_at=at,
            actor=actor,
            ref_type="stand_order",
            ref_id=vid,
            note=VOID_POINTS_NOTE,
            entry_id=p["loyalty_entry_id"],
        )


# --------------------------------------------------------------------------- stock.*


def _check_stock_change(session: Session, op: Op) -> Mapping[str, Any] | None:
    _require(op, "record write-offs and returns")
    p = op.payload
    kind = MovementKind(p["kind"])
    if kind not in (MovementKind.WRITE_OFF, MovementKind.RETURN) or op.op_type != (
        f"stock.{kind.value}"
    ):
        raise ValidationError("Only write-offs and returns are recorded this way.", field="kind")
    mid = str(p["movement_id"])
    existing = session.get(InventoryMovement, mid)
    if existing is not None:
        if (
            existing.stand_id == p["stand_id"]
            and existing.product_id == p["product_id"]
            and existing.kind == kind
            and existing.quantity == int(p["quantity"])
            and _same_time(existing.occurred_at, p["occurred_at"])
        ):
            return None
        _reused(session, InventoryMovement, mid, "movement_id", "stock movement")
    get_or_404(session, StandLocation, p["stand_id"], "stand")
    inventory_line(session, p["stand_id"], p["product_id"])
    signed = to_int(p["quantity"], "quantity", "Quantity")
    to_int(
        -signed if kind == MovementKind.WRITE_OFF else signed,
        "quantity",
        "Quantity",
        minimum=1,
        maximum=MAX_QTY,
    )
    return None


def _write_stock_change(session: Session, op: Op) -> None:
    p = op.payload
    mid = str(p["movement_id"])
    if session.get(InventoryMovement, mid) is not None:
        return
    post_movement(
        session,
        stand_id=p["stand_id"],
        product_id=p["product_id"],
        quantity=int(p["quantity"]),
        kind=MovementKind(p["kind"]),
        occurred_at=ts(p["occurred_at"]),
        actor=op.as_actor(),
        note=p.get("note"),
        movement_id=mid,
    )


spec(
    "stock.write_off",
    OpClass.FACT,
    check=_check_stock_change,
    scope=_payload_stand_scope,
    summary="Damaged or expired stock leaves a stand: one write-off movement.",
)(_write_stock_change)
spec(
    "stock.return",
    OpClass.FACT,
    check=_check_stock_change,
    scope=_payload_stand_scope,
    summary="Stock comes back to a stand: one return movement.",
)(_write_stock_change)


# --------------------------------------------------------------------------- inventory.set_levels

_LEVELS = ("par_level", "reorder_point", "capacity")


def _levels(values: Mapping[str, Any]) -> dict[str, int]:
    return {k: int(values[k]) for k in _LEVELS}


def _check_levels(session: Session, op: Op) -> Mapping[str, Any] | None:
    """Server: the levels must hold together; the triple this op overwrites goes to
    ``sync_field_history`` when it differs from the op's ``after``, marked concurrent when
    the writer had not seen it (it differs from the op's ``before``)."""
    _require(op, "change stock levels")
    p = op.payload
    line = inventory_line(session, p["stand_id"], p["product_id"])
    if line.id != p["inventory_id"]:
        raise NotFound(f"No stock line with id {p['inventory_id']!r}.", field="inventory_id")
    line = get_or_404(session, StandInventory, line.id, "stock line", for_update=True)
    after = p["after"]
    par = to_int(after["par_level"], "par_level", "Par level", minimum=0, maximum=MAX_QTY)
    rop = to_int(
        after["reorder_point"], "reorder_point", "Reorder point", minimum=0, maximum=MAX_QTY
    )
    cap = to_int(after["capacity"], "capacity", "Capacity", minimum=1, maximum=MAX_QTY)
    check_levels(par, rop, cap)
    current = {k: int(getattr(line, k)) for k in _LEVELS}
    new = {"par_level": par, "reorder_point": rop, "capacity": cap}
    if current != new:
        session.add(
            SyncFieldHistory(
                entity_type="stand_inventory",
                entity_id=line.id,
                field_group="levels",
                old_value=to_json(current),
                new_value=to_json(new),
                op_id=op.op_id,
                concurrent=current != _levels(p["before"]),
                actor=op.actor,
                at=utcnow(),
            )
        )
    return None


@spec(
    "inventory.set_levels",
    OpClass.DESCRIPTIVE,
    check=_check_levels,
    scope=_payload_stand_scope,
    summary="A SKU's par level, reorder point and capacity at a stand, set as one value.",
)
def write_levels(session: Session, op: Op) -> None:
    line = get_or_404(session, StandInventory, op.payload["inventory_id"], "stock line")
    after = _levels(op.payload["after"])
    line.par_level = after["par_level"]
    line.reorder_point = after["reorder_point"]
    line.capacity = after["capacity"]


# --------------------------------------------------------------------------- count.record


def _line_adjustment(line: Mapping[str, Any]) -> int:
    """A count line's movement quantity: the server's (amended) figure, else the device's
    variance."""
    if "adjustment" in line:
        return int(line["adjustment"])
    return int(line["counted"]) - int(line["expected"])


def _same_count(snapshot: StandInventorySnapshot, payload: Mapping[str, Any]) -> bool:
    if snapshot.stand_id != payload["stand_id"]:
        return False
    if not _same_time(snapshot.counted_at, payload["counted_at"]):
        return False
    mine = sorted((x.id, x.product_id, x.expected_qty, x.counted_qty) for x in snapshot.lines)
    theirs = sorted(
        (x["id"], x["product_id"], int(x["expected"]), int(x["counted"])) for x in payload["lines"]
    )
    return mine == theirs


def _movement_qty(session: Session, movement_id: str | None) -> int:
    if not movement_id:
        return 0
    qty = session.scalar(
        select(InventoryMovement.quantity).where(InventoryMovement.id == movement_id)
    )
    return int(qty or 0)


Effect = tuple[str, str, int, int]  # stand, product, quantity on the device, on the server


def _effects(
    session: Session, op_type: str, p: Mapping[str, Any], refill_stands: dict[str, str]
) -> Iterator[Effect]:
    """The stock movements a received op made on its device, each with what the server holds
    of it (0 when it was not created: the op was rejected, or the server amended it away)."""
    if op_type == "sale.record":
        o = p["order"]
        for item in p["items"]:
            yield (
                o["stand_id"],
                item["product_id"],
                -int(item["quantity"]),
                _movement_qty(session, item.get("movement_id")),
            )
    elif op_type == "sale.void":
        for item in p["items"]:
            yield (
                p["stand_id"],
                item["product_id"],
                -int(item["quantity"]),
                _movement_qty(session, item.get("movement_id")),
            )
    elif op_type in ("stock.write_off", "stock.return"):
        yield (
            p["stand_id"],
            p["product_id"],
            int(p["quantity"]),
            _movement_qty(session, p.get("movement_id")),
        )
    elif op_type == "count.record":
        # The server may have amended the adjustment (another quantity, a new movement id,
        # none): compare with the movement its own line of that count names.
        for line in p["lines"]:
            device_qty = _line_adjustment(line) if line.get("movement_id") else 0
            server_mid = session.scalar(
                select(StandInventorySnapshotLine.adjustment_movement_id).where(
                    StandInventorySnapshotLine.snapshot_id == p["snapshot_id"],
                    StandInventorySnapshotLine.product_id == line["product_id"],
                )
            )
            yield p["stand_id"], line["product_id"], device_qty, _movement_qty(session, server_mid)
    elif op_type == "refill.request":
        refill_stands[p["refill_id"]] = p["stand_id"]
    elif op_type == "refill.deliver":
        stand_id = refill_stands.get(p["refill_id"]) or session.scalar(
            select(StandRefillOrder.stand_id).where(StandRefillOrder.id == p["refill_id"])
        )
        if stand_id is None:
            return
        for pid, mid in (p.get("movements") or {}).items():
            yield stand_id, pid, int(p["delivered"][pid]), _movement_qty(session, mid)
    elif op_type == "refill.resolve_discrepancy":
        mid = p.get("movement_id")
        disc = session.get(RefillDiscrepancy, p["discrepancy_id"]) if mid else None
        if disc is not None:
            yield (
                disc.stand_id,
                disc.product_id,
                disc.received_qty - disc.delivered_qty,
                _movement_qty(session, mid),
            )


def _unconfirmed(
    session: Session, op: Op, stand_id: str, products: Iterable[str]
) -> dict[str, int]:
    """Per product: Σ (quantity on the device − quantity on the server) over the movements of
    the counting device's ops that were still unanswered when it counted (device sequence in
    ``[pending_from_seq, op's seq)``). The count's ``expected`` minus this is what the same
    movements sum to on the server.

    Only ops the server rejected or amended can differ: one applied as sent moved the same
    quantities on both sides. Reading just those keeps a long offline outbox linear to push
    (reading every earlier op made each count re-read the whole outbox)."""
    out: dict[str, int] = defaultdict(int)
    if op.device_id is None or op.device_seq is None:
        return out
    # A v1 op (no envelope fields) had seen nothing of the server: its window starts at 1.
    start = op.pending_from_seq if op.pending_from_seq is not None else 1
    wanted = set(products)
    refill_stands: dict[str, str] = {}
    # Two reads, each along its index (device, status | amended, sequence): one read with
    # "rejected OR amended" walked the device's whole window of ops.
    window = (
        SyncReceivedOp.device_id == op.device_id,
        SyncReceivedOp.device_seq >= start,
        SyncReceivedOp.device_seq < op.device_seq,
    )
    columns = (SyncReceivedOp.device_seq, SyncReceivedOp.op_type, SyncReceivedOp.payload)
    received = sorted(
        {
            *session.execute(select(*columns).where(*window, SyncReceivedOp.status == "rejected")),
            *session.execute(select(*columns).where(*window, SyncReceivedOp.amended == true())),
        }
    )
    for _seq, op_type, raw in received:
        try:
            effects = list(_effects(session, op_type, json.loads(raw), refill_stands))
        except (KeyError, TypeError, ValueError, AttributeError):
            continue  # a malformed op (rejected as such) moved nothing on the server
        for st, pid, device_qty, server_qty in effects:
            if st == stand_id and pid in wanted:
                out[pid] += device_qty - server_qty
    return out


def _overlapping(
    session: Session, op: Op, stand_id: str, products: Iterable[str]
) -> dict[str, str]:
    """Per product: the latest count of this stand in the feed that the counting device had
    not seen (feed seq after its ``base_seq``, made by another device or by the server)."""
    wanted = set(products)
    stmt = select(ChangeLog.payload).where(
        ChangeLog.op_type == "count.record",
        ChangeLog.device_seq > op.base_seq,
        or_(ChangeLog.scope_stand_id == stand_id, ChangeLog.scope_stand_id.is_(None)),
    )
    if op.device_id is not None:
        stmt = stmt.where(
            or_(ChangeLog.origin_device_id.is_(None), ChangeLog.origin_device_id != op.device_id)
        )
    out: dict[str, str] = {}
    for raw in session.scalars(stmt.order_by(ChangeLog.device_seq)):
        other = json.loads(raw)
        if other.get("stand_id") != stand_id:
            continue
        for line in other.get("lines", ()):
            if line.get("product_id") in wanted:
                out[line["product_id"]] = other["snapshot_id"]
    return out


def _check_count(session: Session, op: Op) -> Mapping[str, Any] | None:
    """Server (docs/sync-design.md §1.5): per line, ``known = expected − Σ(device − server)``
    over the device's unanswered ops when it counted, and the adjustment is
    ``counted − known``, so movements the device had not seen still apply after the count.
    A line that another unseen count of the same stand and product overlaps is stored, but
    moves no stock and opens a ``count_overlap`` review. When any line's adjustment differs
    from the device's variance, the payload is amended: every line gets ``adjustment``, and
    a movement id only when it is not 0."""
    _require(op, "count stock")
    p = op.payload
    sid = str(p["snapshot_id"])
    existing = session.get(StandInventorySnapshot, sid)
    if existing is not None:
        if _same_count(existing, p):
            return None
        _reused(session, StandInventorySnapshot, sid, "snapshot_id", "count")
    stand = get_or_404(session, StandLocation, p["stand_id"], "stand")
    lines = p["lines"]
    if not lines:
        raise ValidationError("Enter at least one counted quantity.", field="counts")
    # The stand's stock lines and products of the count, read once (a count has a line per
    # product of the stand).
    wanted = {str(x["product_id"]) for x in lines}
    carried = set(
        session.scalars(
            select(StandInventory.product_id).where(
                StandInventory.stand_id == stand.id, StandInventory.product_id.in_(wanted)
            )
        )
    )
    names: dict[str, str] = dict(
        session.execute(select(Product.id, Product.name).where(Product.id.in_(wanted))).all()
    )
    products: list[str] = []
    for line in lines:
        pid = line["product_id"]
        field = f"count:{pid}"
        if pid not in carried:
            raise NotFound(f"{names.get(pid, pid)} is not carried at this stand.", field="product")
        name = names[pid]
        if pid in products:
            raise ValidationError(f"{name} is counted twice.", field=field)
        products.append(pid)
        to_int(line["counted"], field, f"Count of {name}", minimum=0, maximum=MAX_QTY)
        to_int(line["expected"], field, f"Expected count of {name}")
    _fresh(session, StandInventorySnapshotLine, [x["id"] for x in lines], "lines")
    _fresh(
        session,
        InventoryMovement,
        [x["movement_id"] for x in lines if x.get("movement_id")],
        "movement_id",
    )
    # The stock rows, locked in product order (as sales take them), so the sums below are
    # read against committed data and a concurrent sale waits.
    session.scalars(
        select(StandInventory.id)
        .where(StandInventory.stand_id == stand.id, StandInventory.product_id.in_(products))
        .order_by(StandInventory.product_id)
        .with_for_update()
    ).all()
    corrections = _unconfirmed(session, op, stand.id, products)
    overlaps = _overlapping(session, op, stand.id, products)
    amended = False
    out_lines = []
    for line in lines:
        pid = line["product_id"]
        counted, expected = int(line["counted"]), int(line["expected"])
        adjust = counted - (expected - corrections.get(pid, 0))
        out = dict(line)
        other = overlaps.get(pid)
        if other is not None:
            session.add(
                SyncReview(
                    kind="count_overlap",
                    stand_id=stand.id,
                    product_id=pid,
                    partner_id=stand.partner_id,
                    refs=json.dumps(
                        {
                            "snapshot_id": sid,
                            "line_id": line["id"],
                            "other_snapshot_id": other,
                            "proposed_adjustment": adjust,
                        },
                        sort_keys=True,
                    ),
                    status="open",
                )
            )
            out["adjustment"], out["movement_id"], out["review"] = 0, None, True
            amended = True
        else:
            out["adjustment"] = adjust
            if adjust == 0:
                out["movement_id"] = None
            elif not out.get("movement_id"):
                out["movement_id"] = new_id()
            amended = amended or adjust != counted - expected
        out_lines.append(out)
    if not amended:
        return None
    return {**p, "lines": out_lines}


@spec(
    "count.record",
    OpClass.FACT,
    check=_check_count,
    scope=_payload_stand_scope,
    summary="A physical count of a stand: the snapshot and its lines as observed, an "
    "adjustment movement per line the server did not hold, and the stand's last count time.",
)
def write_count(session: Session, op: Op) -> None:
    p = op.payload
    sid = str(p["snapshot_id"])
    if session.get(StandInventorySnapshot, sid) is not None:
        return
    at = ts(p["counted_at"])
    stand_id = p["stand_id"]
    session.add(
        StandInventorySnapshot(
            id=sid,
            stand_id=stand_id,
            source=SnapshotSource(p.get("source") or SnapshotSource.COUNT),
            counted_at=at,
            actor=op.actor,
            note=p.get("note"),
        )
    )
    session.flush()
    lines = p["lines"]
    moving = [x["movement_id"] for x in lines if x.get("movement_id") and _line_adjustment(x)]
    done = bulk.existing(session, InventoryMovement, moving)
    carried = set(
        session.scalars(
            select(StandInventory.product_id).where(
                StandInventory.stand_id == stand_id,
                StandInventory.product_id.in_([x["product_id"] for x in lines]),
            )
        )
    )
    now = utcnow()
    moves: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    deltas: dict[tuple[str, str], int] = defaultdict(int)
    for line in lines:
        counted, expected = int(line["counted"]), int(line["expected"])
        mid = line.get("movement_id")
        qty = _line_adjustment(line)
        pid = line["product_id"]
        if mid and qty and mid not in done:
            if pid not in carried:
                raise NotFound("This product is not carried at this stand.", field="product")
            done.add(mid)
            moves.append(
                bulk.movement_row(
                    mid,
                    stand_id,
                    pid,
                    qty,
                    MovementKind.COUNT_ADJUSTMENT,
                    at,
                    now,
                    op.actor,
                    ref=("stand_inventory_snapshot", sid),
                )
            )
            deltas[(stand_id, pid)] += qty
        rows.append(
            {
                "id": line["id"],
                "snapshot_id": sid,
                "product_id": pid,
                "expected_qty": expected,
                "counted_qty": counted,
                "variance": counted - expected,
                "adjustment_movement_id": mid or None,
            }
        )
    # One statement per table (a count has a line per product of the stand).
    bulk.insert_rows(session, InventoryMovement, moves)
    bulk.move_stock(session, deltas)
    bulk.insert_rows(session, StandInventorySnapshotLine, rows)
    # Arrival order is not count order: the latest count time wins.
    for inv in session.scalars(
        select(StandInventory).where(
            StandInventory.stand_id == stand_id,
            StandInventory.product_id.in_([x["product_id"] for x in p["lines"]]),
        )
    ):
        if inv.last_counted_at is None or ensure_utc(inv.last_counted_at) < at:
            inv.last_counted_at = at
