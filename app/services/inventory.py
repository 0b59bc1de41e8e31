"""Stock at stands. On-hand is the sum of movements; ``StandInventory.on_hand`` caches it and
is kept in the same transaction as each movement; :func:`verify_on_hand` proves the cache."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session

from app.clock import ensure_utc, utcnow
from app.errors import NotFound, ValidationError
from app.ids import new_id
from app.models import (
    InventoryMovement,
    MovementKind,
    Product,
    SnapshotSource,
    StandInventory,
    StandInventorySnapshot,
    StandInventorySnapshotLine,
    StandLocation,
    StandStatus,
)
from app.services.base import (
    STAFF,
    Actor,
    client_id,
    get_or_404,
    optional_text,
    record_op,
    to_int,
    to_time,
    transactional,
    unused_id,
)
from app.services.onboarding import resolve_product

MAX_QTY = 100_000


@dataclass(frozen=True)
class CountLine:
    product_id: str
    expected: int
    counted: int
    variance: int
    sku: str = ""
    name: str = ""


@dataclass(frozen=True)
class CountResult:
    snapshot_id: str
    stand_id: str
    lines: tuple[CountLine, ...]

    @property
    def total_variance(self) -> int:
        return sum(line.variance for line in self.lines)


@dataclass(frozen=True)
class LevelsResult:
    stand_id: str
    product_id: str
    par_level: int
    reorder_point: int
    capacity: int


@dataclass(frozen=True)
class Mismatch:
    stand_id: str
    product_id: str
    cached: int
    ledger: int


def open_stand(session: Session, stand_id: str) -> StandLocation:
    """A stand that can take stock and sales (not removed)."""
    stand = get_or_404(session, StandLocation, stand_id, "stand")
    if stand.status == StandStatus.REMOVED:
        raise ValidationError(f"{stand.name} has been removed from the program.", field="stand_id")
    return stand


def inventory_line(session: Session, stand_id: str, product_id: str) -> StandInventory:
    line = session.scalars(
        select(StandInventory).where(
            StandInventory.stand_id == stand_id, StandInventory.product_id == product_id
        )
    ).first()
    if line is None:
        product = session.get(Product, product_id)
        name = product.name if product else product_id
        raise NotFound(f"{name} is not carried at this stand.", field="product")
    return line


def post_movement(
    session: Session,
    *,
    stand_id: str,
    product_id: str,
    quantity: int,
    kind: MovementKind,
    occurred_at: datetime,
    actor: Actor | None,
    ref_type: str | None = None,
    ref_id: str | None = None,
    note: str | None = None,
    movement_id: str | None = None,
) -> InventoryMovement:
    """Append one movement and move the on-hand cache with it (same transaction).

    Internal to services: callers have validated the stand, product and quantity.
    """
    if quantity == 0:
        raise ValueError("a movement of zero is not a fact")
    movement = InventoryMovement(
        id=movement_id or new_id(),
        stand_id=stand_id,
        product_id=product_id,
        quantity=quantity,
        kind=kind,
        occurred_at=occurred_at,
        recorded_at=utcnow(),
        ref_type=ref_type,
        ref_id=ref_id,
        actor=actor.user if actor else None,
        note=note,
    )
    session.add(movement)
    result = session.execute(
        update(StandInventory)
        .where(StandInventory.stand_id == stand_id, StandInventory.product_id == product_id)
        .values(on_hand=StandInventory.on_hand + quantity)
    )
    if cast("CursorResult[Any]", result).rowcount != 1:
        raise NotFound("This product is not carried at this stand.", field="product")
    return movement


def on_hand(session: Session, stand_id: str, product_id: str) -> int:
    """On-hand from the cache (equal to the ledger sum; see :func:`verify_on_hand`)."""
    value = session.scalar(
        select(StandInventory.on_hand).where(
            StandInventory.stand_id == stand_id, StandInventory.product_id == product_id
        )
    )
    if value is None:
        raise NotFound("This product is not carried at this stand.", field="product")
    return value


def ledger_on_hand(session: Session, stand_id: str, product_id: str) -> int:
    """On-hand as the sum of movements (the definition)."""
    return int(
        session.scalar(
            select(func.coalesce(func.sum(InventoryMovement.quantity), 0)).where(
                InventoryMovement.stand_id == stand_id, InventoryMovement.product_id == product_id
            )
        )
        or 0
    )


@transactional
def verify_on_hand(session: Session, stand_id: str | None = None) -> list[Mismatch]:
    """Every stand x SKU whose cached on-hand differs from the sum of its movements."""
    sums = (
        select(
            InventoryMovement.stand_id,
            InventoryMovement.product_id,
            func.sum(InventoryMovement.quantity).label("qty"),
        )
        .group_by(InventoryMovement.stand_id, InventoryMovement.product_id)
        .subquery()
    )
    stmt = (
        select(
            StandInventory.stand_id,
            StandInventory.product_id,
            StandInventory.on_hand,
            func.coalesce(sums.c.qty, 0),
        )
        .outerjoin(
            sums,
            (sums.c.stand_id == StandInventory.stand_id)
            & (sums.c.product_id == StandInventory.product_id),
        )
        .where(StandInventory.on_hand != func.coalesce(sums.c.qty, 0))
    )
    if stand_id is not None:
        stmt = stmt.where(StandInventory.stand_id == stand_id)
    return [Mismatch(s, p, c, int(q)) for s, p, c, q in session.execute(stmt)]


@transactional
def record_count(
    session: Session,
    actor: Actor,
    stand_id: str,
    counts: Mapping[str, object],
    *,
    counted_at: datetime | None = None,
    snapshot_id: str | None = None,
    note: str | None = None,
    source: SnapshotSource = SnapshotSource.COUNT,
) -> CountResult:
    """Record a physical count: a snapshot with expected, counted and variance per SKU, and an
    adjustment movement for each variance. ``counts`` maps product id to the counted quantity;
    keys may also be SKUs or barcodes. SKUs not listed were not counted and keep their stock."""
    actor.require(STAFF, "count stock")
    stand = open_stand(session, stand_id)
    if not counts:
        raise ValidationError("Enter at least one counted quantity.", field="counts")
    at = to_time(counted_at, "counted_at")
    sid = client_id(snapshot_id, "snapshot_id")
    if session.get(StandInventorySnapshot, sid) is not None:
        raise ValidationError(f"A count with id {sid} already exists.", field="snapshot_id")
    lines_by_product = {
        line.product_id: line
        for line in session.scalars(
            select(StandInventory).where(StandInventory.stand_id == stand.id)
        )
    }
    parsed: list[tuple[StandInventory, int]] = []
    for key, raw in counts.items():
        field = f"count:{key}"
        product = resolve_product(session, key, include_inactive=True, field=field)
        line = lines_by_product.get(product.id)
        if line is None:
            raise NotFound(f"{product.name} is not carried at {stand.name}.", field=field)
        if any(seen.product_id == product.id for seen, _ in parsed):
            raise ValidationError(f"{product.name} is counted twice.", field=field)
        parsed.append(
            (line, to_int(raw, field, f"Count of {product.name}", minimum=0, maximum=MAX_QTY))
        )
    snapshot = StandInventorySnapshot(
        id=sid,
        stand_id=stand.id,
        source=source,
        counted_at=at,
        actor=actor.user,
        note=optional_text(note, "note", "Note", max_len=500),
    )
    session.add(snapshot)
    session.flush()
    result_lines = []
    op_lines = []
    for inv, counted in sorted(parsed, key=lambda t: t[0].product_id):
        expected = inv.on_hand
        variance = counted - expected
        movement_id = None
        if variance:
            movement_id = new_id()
            post_movement(
                session,
                stand_id=stand.id,
                product_id=inv.product_id,
                quantity=variance,
                kind=MovementKind.COUNT_ADJUSTMENT,
                occurred_at=at,
                actor=actor,
                ref_type="stand_inventory_snapshot",
                ref_id=sid,
                movement_id=movement_id,
            )
        session.add(
            StandInventorySnapshotLine(
                id=(line_id := new_id()),
                snapshot_id=sid,
                product_id=inv.product_id,
                expected_qty=expected,
                counted_qty=counted,
                variance=variance,
                adjustment_movement_id=movement_id,
            )
        )
        # The latest count wins, whatever order counts are recorded in (a count entered late
        # for an earlier day does not make the stand look less recently counted).
        if inv.last_counted_at is None or ensure_utc(inv.last_counted_at) < at:
            inv.last_counted_at = at
        product = session.get_one(Product, inv.product_id)
        result_lines.append(
            CountLine(inv.product_id, expected, counted, variance, product.sku, product.name)
        )
        op_lines.append(
            {
                "id": line_id,
                "product_id": inv.product_id,
                "expected": expected,
                "counted": counted,
                "movement_id": movement_id,
            }
        )
    session.flush()
    record_op(
        session,
        "count.record",
        sid,
        {
            "snapshot_id": sid,
            "stand_id": stand.id,
            "counted_at": at,
            "source": source,
            "note": snapshot.note,
            "lines": op_lines,
        },
        actor,
    )
    return CountResult(sid, stand.id, tuple(result_lines))


def check_levels(par: int, rop: int, cap: int, *, rop_field: str | None = None) -> None:
    """Refuse levels that break their constraints: par level within the capacity, reorder
    point within the par level (``rop_field`` names the input blamed for the latter)."""
    if par > cap:
        raise ValidationError(f"Par level {par} is above the capacity of {cap}.", field="par_level")
    if rop > par:
        raise ValidationError(
            f"Reorder point {rop} is above the par level of {par}.",
            field=rop_field or "reorder_point",
        )


@transactional
def set_levels(
    session: Session,
    actor: Actor,
    stand_id: str,
    product_id: str,
    *,
    par_level: object | None = None,
    reorder_point: object | None = None,
    capacity: object | None = None,
) -> LevelsResult:
    """Change a SKU's par level, reorder point or capacity at a stand."""
    actor.require(STAFF, "change stock levels")
    open_stand(session, stand_id)
    line = inventory_line(session, stand_id, product_id)
    cap = (
        line.capacity
        if capacity is None
        else to_int(capacity, "capacity", "Capacity", minimum=1, maximum=MAX_QTY)
    )
    par = (
        line.par_level
        if par_level is None
        else to_int(par_level, "par_level", "Par level", minimum=0, maximum=MAX_QTY)
    )
    rop = (
        line.reorder_point
        if reorder_point is None
        else to_int(reorder_point, "reorder_point", "Reorder point", minimum=0, maximum=MAX_QTY)
    )
    check_levels(par, rop, cap, rop_field="par_level" if reorder_point is None else None)
    before = {
        "par_level": line.par_level,
        "reorder_point": line.reorder_point,
        "capacity": line.capacity,
    }
    line.par_level, line.reorder_point, line.capacity = par, rop, cap
    session.flush()
    record_op(
        session,
        "inventory.set_levels",
        line.id,
        {
            "inventory_id": line.id,
            "stand_id": stand_id,
            "product_id": product_id,
            "before": before,
            "after": {"par_level": par, "reorder_point": rop, "capacity": cap},
        },
        actor,
    )
    return LevelsResult(stand_id, product_id, par, rop, cap)


@transactional
def record_stock_change(
    session: Session,
    actor: Actor,
    stand_id: str,
    product_id: str,
    quantity: object,
    kind: MovementKind,
    *,
    note: str | None = None,
    occurred_at: datetime | None = None,
    movement_id: str | None = None,
) -> str:
    """A write-off (damaged, expired: stock leaves) or a return (stock comes back)."""
    actor.require(STAFF, "record write-offs and returns")
    if kind not in (MovementKind.WRITE_OFF, MovementKind.RETURN):
        raise ValidationError("Only write-offs and returns are recorded this way.", field="kind")
    qty = to_int(quantity, "quantity", "Quantity", minimum=1, maximum=MAX_QTY)
    open_stand(session, stand_id)
    inventory_line(session, stand_id, product_id)
    signed = -qty if kind == MovementKind.WRITE_OFF else qty
    at = to_time(occurred_at)
    mid = unused_id(session, InventoryMovement, movement_id, "movement_id", "stock movement")
    text = optional_text(note, "note", "Note", max_len=500)
    post_movement(
        session,
        stand_id=stand_id,
        product_id=product_id,
        quantity=signed,
        kind=kind,
        occurred_at=at,
        actor=actor,
        note=text,
        movement_id=mid,
    )
    record_op(
        session,
        f"stock.{kind.value}",
        mid,
        {
            "movement_id": mid,
            "stand_id": stand_id,
            "product_id": product_id,
            "quantity": signed,
            "kind": kind,
            "occurred_at": at,
            "note": text,
        },
        actor,
    )
    return mid
