"""Stock at stands: counts, levels, write-offs and returns, and the on-hand cache."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from app.db import SessionFactory
from app.errors import DomainError, NotFound, PermissionDenied, ValidationError
from app.ids import new_id
from app.models import (
    InventoryMovement,
    MovementKind,
    StandInventory,
    StandInventorySnapshot,
    StandInventorySnapshotLine,
    StandLocation,
    StandStatus,
)
from app.services import inventory, sales
from app.services.inventory import Mismatch
from tests.conftest import MANAGER, PARTNER, REP, CatalogProduct, StandFixture, make_stand
from tests.helpers import Watch, assert_readable, reading

T0 = datetime(2024, 4, 2, 9, 30, tzinfo=UTC)


def stock(factory: SessionFactory, stand_id: str, product_id: str) -> tuple[int, int]:
    """(cached on-hand, sum of movements) for one stand x SKU."""
    with reading(factory) as s:
        return inventory.on_hand(s, stand_id, product_id), inventory.ledger_on_hand(
            s, stand_id, product_id
        )


def inv_row(factory: SessionFactory, stand_id: str, product_id: str) -> StandInventory:
    with reading(factory) as s:
        return s.scalars(
            select(StandInventory).where(
                StandInventory.stand_id == stand_id, StandInventory.product_id == product_id
            )
        ).one()


def remove_stand(session: Session, stand_id: str) -> None:
    with session.begin():
        session.execute(
            update(StandLocation)
            .where(StandLocation.id == stand_id)
            .values(status=StandStatus.REMOVED)
        )


def not_carried(stand: StandFixture, catalog: list[CatalogProduct]) -> CatalogProduct:
    return next(p for p in catalog if p.id not in stand.product_ids)


# --------------------------------------------------------------------------- counts


def test_count_writes_snapshot_lines_and_adjustments(
    factory: SessionFactory, stand: StandFixture, session: Session
) -> None:
    a, b, c = stand.product_ids[:3]
    watch = Watch(factory)
    result = inventory.record_count(
        session, REP, stand.stand_id, {a: 5, b: 0, c: "3"}, counted_at=T0, note="  first visit  "
    )

    assert result.stand_id == stand.stand_id
    assert {(ln.product_id, ln.expected, ln.counted, ln.variance) for ln in result.lines} == {
        (a, 0, 5, 5),
        (b, 0, 0, 0),
        (c, 0, 3, 3),
    }
    assert result.total_variance == 8

    with reading(factory) as s:
        snap = s.get_one(StandInventorySnapshot, result.snapshot_id)
        assert (snap.stand_id, snap.counted_at, snap.actor, snap.note) == (
            stand.stand_id,
            T0,
            REP.user,
            "first visit",
        )
        lines = {
            ln.product_id: ln
            for ln in s.scalars(
                select(StandInventorySnapshotLine).where(
                    StandInventorySnapshotLine.snapshot_id == snap.id
                )
            )
        }
        assert {p: (ln.expected_qty, ln.counted_qty, ln.variance) for p, ln in lines.items()} == {
            a: (0, 5, 5),
            b: (0, 0, 0),
            c: (0, 3, 3),
        }
        assert lines[b].adjustment_movement_id is None
        moves = {m.id: m for m in s.scalars(select(InventoryMovement))}
        assert len(moves) == 2
        for pid, qty in ((a, 5), (c, 3)):
            m = moves[lines[pid].adjustment_movement_id or ""]
            assert (m.product_id, m.quantity, m.kind, m.occurred_at, m.ref_type, m.ref_id) == (
                pid,
                qty,
                MovementKind.COUNT_ADJUSTMENT,
                T0,
                "stand_inventory_snapshot",
                snap.id,
            )
        counted = {
            i.product_id: i
            for i in s.scalars(
                select(StandInventory).where(StandInventory.stand_id == stand.stand_id)
            )
        }
        assert (counted[a].on_hand, counted[b].on_hand, counted[c].on_hand) == (5, 0, 3)
        assert counted[a].last_counted_at == T0
        assert counted[stand.product_ids[3]].last_counted_at is None

    ops = watch.ops()
    assert [o.op_type for o in ops] == ["count.record"]
    assert ops[0].entity_id == result.snapshot_id
    assert ops[0].payload["stand_id"] == stand.stand_id
    assert {
        (ln["product_id"], ln["expected"], ln["counted"]) for ln in ops[0].payload["lines"]
    } == {(a, 0, 5), (b, 0, 0), (c, 0, 3)}
    assert ops[0].payload["counted_at"] == T0.isoformat()
    assert watch.added() == {
        "stand_inventory_snapshot": 1,
        "stand_inventory_snapshot_line": 3,
        "inventory_movement": 2,
        "change_log": 1,
    }


def test_count_expected_is_on_hand_at_count_time(
    factory: SessionFactory, stand: StandFixture, session: Session
) -> None:
    a = stand.product_ids[0]
    inventory.record_count(session, REP, stand.stand_id, {a: 10}, counted_at=T0)
    sales.record_sale(
        session,
        REP,
        stand.stand_id,
        [sales.SaleLine(a, 3)],
        "cash",
        occurred_at=T0 + timedelta(hours=1),
    )
    inventory.record_stock_change(
        session,
        REP,
        stand.stand_id,
        a,
        1,
        MovementKind.WRITE_OFF,
        occurred_at=T0 + timedelta(hours=2),
    )
    assert stock(factory, stand.stand_id, a) == (6, 6)

    result = inventory.record_count(
        session, REP, stand.stand_id, {a: 4}, counted_at=T0 + timedelta(days=1)
    )
    (line,) = result.lines
    assert (line.expected, line.counted, line.variance) == (6, 4, -2)
    assert stock(factory, stand.stand_id, a) == (4, 4)
    with reading(factory) as s:
        m = s.scalars(
            select(InventoryMovement).where(InventoryMovement.ref_id == result.snapshot_id)
        ).one()
        assert (m.quantity, m.kind) == (-2, MovementKind.COUNT_ADJUSTMENT)


def test_zero_variance_count_posts_no_movement(
    factory: SessionFactory, stand: StandFixture, session: Session
) -> None:
    a, b = stand.product_ids[:2]
    inventory.record_count(session, REP, stand.stand_id, {a: 4, b: 2}, counted_at=T0)
    watch = Watch(factory)
    result = inventory.record_count(
        session, REP, stand.stand_id, {a: 4, b: 2}, counted_at=T0 + timedelta(days=7)
    )
    assert result.total_variance == 0
    assert all(ln.variance == 0 for ln in result.lines)
    assert watch.added() == {
        "stand_inventory_snapshot": 1,
        "stand_inventory_snapshot_line": 2,
        "change_log": 1,
    }
    assert [o.op_type for o in watch.ops()] == ["count.record"]
    assert inv_row(factory, stand.stand_id, a).last_counted_at == T0 + timedelta(days=7)


def test_count_keeps_client_snapshot_id_and_refuses_reuse(
    factory: SessionFactory, stand: StandFixture, session: Session
) -> None:
    a = stand.product_ids[0]
    sid = new_id()
    result = inventory.record_count(session, REP, stand.stand_id, {a: 2}, snapshot_id=sid)
    assert result.snapshot_id == sid
    watch = Watch(factory)
    with pytest.raises(ValidationError) as err:
        inventory.record_count(session, REP, stand.stand_id, {a: 3}, snapshot_id=sid)
    assert err.value.field == "snapshot_id"
    watch.assert_nothing_saved()
    assert stock(factory, stand.stand_id, a) == (2, 2)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        pytest.param(-1, "at least 0", id="negative"),
        pytest.param("-3", "at least 0", id="negative-text"),
        pytest.param("five", "whole number", id="text"),
        pytest.param("", "whole number", id="empty"),
        pytest.param(2.5, "whole number", id="fraction"),
        pytest.param(3.0, "whole number", id="float"),
        pytest.param(Decimal("2.5"), "whole number", id="decimal-fraction"),
        pytest.param("2.5", "whole number", id="text-fraction"),
        pytest.param(True, "whole number", id="bool"),
        pytest.param(None, "whole number", id="none"),
        pytest.param(100_001, "at most", id="too-many"),
    ],
)
def test_bad_counted_quantity_saves_nothing(
    factory: SessionFactory, stand: StandFixture, session: Session, value: object, words: str
) -> None:
    a, b = stand.product_ids[:2]
    watch = Watch(factory)
    with pytest.raises(ValidationError) as err:
        # The good line first: nothing of it may be kept when the second is refused.
        inventory.record_count(session, REP, stand.stand_id, {a: 4, b: value})
    assert err.value.field == f"count:{b}"
    assert words in str(err.value)
    assert_readable(err.value)
    watch.assert_nothing_saved()


def test_count_of_product_not_carried(
    factory: SessionFactory, catalog: list[CatalogProduct], stand: StandFixture, session: Session
) -> None:
    other = not_carried(stand, catalog)
    watch = Watch(factory)
    with pytest.raises(NotFound) as err:
        inventory.record_count(session, REP, stand.stand_id, {stand.product_ids[0]: 1, other.id: 2})
    assert err.value.field == f"count:{other.id}"
    assert "not carried" in str(err.value)
    assert_readable(err.value)
    with pytest.raises(NotFound) as sku:
        inventory.record_count(session, REP, stand.stand_id, {other.sku: 2})
    assert sku.value.field == f"count:{other.sku}"
    with pytest.raises(NotFound) as unknown:
        inventory.record_count(session, REP, stand.stand_id, {"NO-SUCH-SKU": 2})
    assert "NO-SUCH-SKU" in str(unknown.value)
    assert_readable(unknown.value)
    watch.assert_nothing_saved()
    # Shown next to the line that was wrong, like every other count error.
    assert unknown.value.field == "count:NO-SUCH-SKU"


def test_count_by_sku_and_barcode(
    factory: SessionFactory,
    catalog: list[CatalogProduct],
    stand: StandFixture,
    session: Session,
) -> None:
    by_id = {p.id: p for p in catalog}
    a, b = (by_id[pid] for pid in stand.product_ids[:2])
    result = inventory.record_count(session, REP, stand.stand_id, {a.sku: 4, b.gtin: "2"})
    assert {(ln.product_id, ln.counted) for ln in result.lines} == {(a.id, 4), (b.id, 2)}
    assert stock(factory, stand.stand_id, a.id) == (4, 4)
    assert stock(factory, stand.stand_id, b.id) == (2, 2)


def test_same_product_counted_twice_is_refused(
    factory: SessionFactory,
    catalog: list[CatalogProduct],
    stand: StandFixture,
    session: Session,
) -> None:
    a = next(p for p in catalog if p.id == stand.product_ids[0])
    watch = Watch(factory)
    with pytest.raises(ValidationError) as err:
        inventory.record_count(session, REP, stand.stand_id, {a.id: 4, a.sku: 5})
    assert err.value.field == f"count:{a.sku}"
    assert "twice" in str(err.value)
    watch.assert_nothing_saved()


def test_empty_count_is_refused(
    factory: SessionFactory, stand: StandFixture, session: Session
) -> None:
    watch = Watch(factory)
    with pytest.raises(ValidationError) as err:
        inventory.record_count(session, REP, stand.stand_id, {})
    assert err.value.field == "counts"
    watch.assert_nothing_saved()


def test_count_at_unknown_or_removed_stand(
    factory: SessionFactory, stand: StandFixture, session: Session
) -> None:
    a = stand.product_ids[0]
    watch = Watch(factory)
    with pytest.raises(NotFound) as nf:
        inventory.record_count(session, REP, new_id(), {a: 1})
    assert nf.value.field == "stand_id"
    remove_stand(session, stand.stand_id)
    watch = Watch(factory)
    with pytest.raises(ValidationError) as err:
        inventory.record_count(session, REP, stand.stand_id, {a: 1})
    assert err.value.field == "stand_id"
    assert "removed" in str(err.value)
    watch.assert_nothing_saved()


def test_partner_may_not_count(
    factory: SessionFactory, stand: StandFixture, session: Session
) -> None:
    watch = Watch(factory)
    with pytest.raises(PermissionDenied):
        inventory.record_count(session, PARTNER, stand.stand_id, {stand.product_ids[0]: 1})
    watch.assert_nothing_saved()


def test_naive_count_time_is_refused(
    factory: SessionFactory, stand: StandFixture, session: Session
) -> None:
    watch = Watch(factory)
    with pytest.raises(ValidationError):
        inventory.record_count(
            session,
            REP,
            stand.stand_id,
            {stand.product_ids[0]: 1},
            counted_at=datetime(2024, 4, 2, 9, 30),
        )
    watch.assert_nothing_saved()


# --------------------------------------------------------------------------- the on-hand cache


def test_verify_on_hand_is_empty_after_many_actions(
    factory: SessionFactory,
    catalog: list[CatalogProduct],
    stand: StandFixture,
    session: Session,
) -> None:
    other = make_stand(session, "pro", name="Späti Eck")
    pids = stand.product_ids[:6]
    inventory.record_count(session, REP, stand.stand_id, dict.fromkeys(pids, 12), counted_at=T0)
    inventory.record_count(session, REP, other.stand_id, {other.product_ids[0]: 3}, counted_at=T0)
    order_ids = []
    for n in range(15):
        pid = pids[n % len(pids)]
        r = sales.record_sale(
            session,
            REP,
            stand.stand_id,
            [sales.SaleLine(pid, 1 + n % 3), sales.SaleLine(pids[0], 1)],
            ("cash", "qr", "card")[n % 3],
            occurred_at=T0 + timedelta(minutes=n),
        )
        order_ids.append(r.order_id)
    sales.void_sale(session, REP, order_ids[3])
    sales.void_sale(session, MANAGER, order_ids[7])
    inventory.record_stock_change(session, REP, stand.stand_id, pids[1], 2, MovementKind.WRITE_OFF)
    inventory.record_stock_change(session, REP, stand.stand_id, pids[2], 1, MovementKind.RETURN)
    sales.record_sale(
        session, REP, other.stand_id, [sales.SaleLine(other.product_ids[0], 5)], "cash"
    )  # oversold: negative on-hand must still agree
    inventory.record_count(
        session, REP, stand.stand_id, {pids[0]: 1, pids[3]: 20}, counted_at=T0 + timedelta(days=1)
    )

    with reading(factory) as s:
        assert inventory.verify_on_hand(s) == []
        assert inventory.verify_on_hand(s, stand.stand_id) == []
        for inv in s.scalars(select(StandInventory)):
            assert inv.on_hand == inventory.ledger_on_hand(s, inv.stand_id, inv.product_id)
    assert stock(factory, other.stand_id, other.product_ids[0]) == (-2, -2)
    assert stock(factory, stand.stand_id, pids[0])[0] == 1
    assert stock(factory, stand.stand_id, pids[3])[0] == 20


def test_verify_on_hand_detects_a_tampered_cache(
    factory: SessionFactory, stand: StandFixture, session: Session
) -> None:
    a, b = stand.product_ids[:2]
    inventory.record_count(session, REP, stand.stand_id, {a: 5, b: 2})
    with session.begin():
        session.execute(
            text(
                "UPDATE stand_inventory SET on_hand = on_hand + 7 "
                "WHERE stand_id = :s AND product_id = :p"
            ),
            {"s": stand.stand_id, "p": a},
        )
        # A row with no movements at all whose cache says otherwise.
        session.execute(
            text("UPDATE stand_inventory SET on_hand = 3 WHERE stand_id = :s AND product_id = :p"),
            {"s": stand.stand_id, "p": stand.product_ids[5]},
        )
    with reading(factory) as s:
        found = inventory.verify_on_hand(s, stand.stand_id)
    assert sorted(found, key=lambda m: m.cached) == [
        Mismatch(stand.stand_id, stand.product_ids[5], 3, 0),
        Mismatch(stand.stand_id, a, 12, 5),
    ]
    with reading(factory) as s:
        assert inventory.verify_on_hand(s, new_id()) == []


# --------------------------------------------------------------------------- levels


def test_set_levels(factory: SessionFactory, stand: StandFixture, session: Session) -> None:
    a = stand.product_ids[0]
    before = inv_row(factory, stand.stand_id, a)
    watch = Watch(factory)
    result = inventory.set_levels(
        session, MANAGER, stand.stand_id, a, par_level=12, reorder_point="4", capacity=20
    )
    assert (result.par_level, result.reorder_point, result.capacity) == (12, 4, 20)
    after = inv_row(factory, stand.stand_id, a)
    assert (after.par_level, after.reorder_point, after.capacity) == (12, 4, 20)
    ops = watch.ops()
    assert [o.op_type for o in ops] == ["inventory.set_levels"]
    assert ops[0].entity_id == before.id
    assert ops[0].payload["before"] == {
        "par_level": before.par_level,
        "reorder_point": before.reorder_point,
        "capacity": before.capacity,
    }
    assert ops[0].payload["after"] == {"par_level": 12, "reorder_point": 4, "capacity": 20}
    assert watch.added() == {"change_log": 1}

    # Leaving a value out keeps it.
    inventory.set_levels(session, REP, stand.stand_id, a, reorder_point=0)
    row = inv_row(factory, stand.stand_id, a)
    assert (row.par_level, row.reorder_point, row.capacity) == (12, 0, 20)


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        pytest.param({"reorder_point": 9}, "reorder_point", "above the par level", id="rop>par"),
        pytest.param({"par_level": 11}, "par_level", "above the capacity", id="par>capacity"),
        pytest.param(
            {"par_level": 2, "reorder_point": 3}, "reorder_point", "above the par", id="rop>new-par"
        ),
        pytest.param({"capacity": 5}, "par_level", "above the capacity", id="capacity<par"),
        pytest.param({"capacity": 0}, "capacity", "at least 1", id="capacity-0"),
        pytest.param({"par_level": -1}, "par_level", "at least 0", id="par-negative"),
        pytest.param({"par_level": "ten"}, "par_level", "whole number", id="par-text"),
        pytest.param({"reorder_point": 1.5}, "reorder_point", "whole number", id="rop-fraction"),
    ],
)
def test_set_levels_refuses_bad_levels(
    factory: SessionFactory,
    stand: StandFixture,
    session: Session,
    kwargs: dict[str, object],
    field: str,
    words: str,
) -> None:
    a = stand.product_ids[0]  # par 8, reorder 3, capacity 10
    before = inv_row(factory, stand.stand_id, a)
    watch = Watch(factory)
    with pytest.raises(ValidationError) as err:
        inventory.set_levels(session, MANAGER, stand.stand_id, a, **kwargs)
    assert err.value.field == field
    assert words in str(err.value)
    assert_readable(err.value)
    watch.assert_nothing_saved()
    after = inv_row(factory, stand.stand_id, a)
    assert (after.par_level, after.reorder_point, after.capacity) == (
        before.par_level,
        before.reorder_point,
        before.capacity,
    )


def test_set_levels_for_product_not_carried_and_roles(
    factory: SessionFactory,
    catalog: list[CatalogProduct],
    stand: StandFixture,
    session: Session,
) -> None:
    watch = Watch(factory)
    with pytest.raises(NotFound) as err:
        inventory.set_levels(
            session, MANAGER, stand.stand_id, not_carried(stand, catalog).id, par_level=1
        )
    assert err.value.field == "product"
    with pytest.raises(PermissionDenied):
        inventory.set_levels(session, PARTNER, stand.stand_id, stand.product_ids[0], par_level=1)
    remove_stand(session, stand.stand_id)
    watch = Watch(factory)
    with pytest.raises(ValidationError) as removed:
        inventory.set_levels(session, MANAGER, stand.stand_id, stand.product_ids[0], par_level=1)
    assert removed.value.field == "stand_id"
    watch.assert_nothing_saved()


# --------------------------------------------------------------------------- write-offs, returns


@pytest.mark.parametrize(
    ("kind", "signed"),
    [
        (MovementKind.WRITE_OFF, -3),
        (MovementKind.RETURN, 3),
    ],
)
def test_record_stock_change(
    factory: SessionFactory,
    stand: StandFixture,
    session: Session,
    kind: MovementKind,
    signed: int,
) -> None:
    a = stand.product_ids[0]
    inventory.record_count(session, REP, stand.stand_id, {a: 5})
    watch = Watch(factory)
    mid = inventory.record_stock_change(
        session, REP, stand.stand_id, a, "3", kind, note="crushed box", occurred_at=T0
    )
    assert stock(factory, stand.stand_id, a) == (5 + signed, 5 + signed)
    with reading(factory) as s:
        m = s.get_one(InventoryMovement, mid)
        assert (m.stand_id, m.product_id, m.quantity, m.kind, m.occurred_at, m.note, m.actor) == (
            stand.stand_id,
            a,
            signed,
            kind,
            T0,
            "crushed box",
            REP.user,
        )
    ops = watch.ops()
    assert [o.op_type for o in ops] == [f"stock.{kind.value}"]
    assert ops[0].entity_id == mid
    assert ops[0].payload["quantity"] == signed
    assert ops[0].payload["kind"] == kind.value
    assert watch.added() == {"inventory_movement": 1, "change_log": 1}


@pytest.mark.parametrize(
    ("quantity", "words"),
    [
        pytest.param(0, "at least 1", id="zero"),
        pytest.param(-2, "at least 1", id="negative"),
        pytest.param("two", "whole number", id="text"),
        pytest.param(1.5, "whole number", id="fraction"),
        pytest.param(None, "whole number", id="none"),
    ],
)
def test_record_stock_change_bad_quantity(
    factory: SessionFactory, stand: StandFixture, session: Session, quantity: object, words: str
) -> None:
    watch = Watch(factory)
    with pytest.raises(ValidationError) as err:
        inventory.record_stock_change(
            session, REP, stand.stand_id, stand.product_ids[0], quantity, MovementKind.WRITE_OFF
        )
    assert err.value.field == "quantity"
    assert words in str(err.value)
    assert_readable(err.value)
    watch.assert_nothing_saved()


@pytest.mark.parametrize(
    "kind", [MovementKind.SALE, MovementKind.COUNT_ADJUSTMENT, MovementKind.REFILL_DELIVERY]
)
def test_record_stock_change_only_write_offs_and_returns(
    factory: SessionFactory, stand: StandFixture, session: Session, kind: MovementKind
) -> None:
    watch = Watch(factory)
    with pytest.raises(ValidationError) as err:
        inventory.record_stock_change(session, REP, stand.stand_id, stand.product_ids[0], 1, kind)
    assert err.value.field == "kind"
    watch.assert_nothing_saved()


def test_record_stock_change_refusals(
    factory: SessionFactory,
    catalog: list[CatalogProduct],
    stand: StandFixture,
    session: Session,
) -> None:
    a = stand.product_ids[0]
    watch = Watch(factory)
    with pytest.raises(NotFound) as nf:
        inventory.record_stock_change(
            session, REP, stand.stand_id, not_carried(stand, catalog).id, 1, MovementKind.RETURN
        )
    assert nf.value.field == "product"
    with pytest.raises(PermissionDenied):
        inventory.record_stock_change(session, PARTNER, stand.stand_id, a, 1, MovementKind.RETURN)
    with pytest.raises(ValidationError) as bad_id:
        inventory.record_stock_change(
            session, REP, stand.stand_id, a, 1, MovementKind.RETURN, movement_id="abc"
        )
    assert bad_id.value.field == "movement_id"
    watch.assert_nothing_saved()

    remove_stand(session, stand.stand_id)
    watch = Watch(factory)
    with pytest.raises(ValidationError) as err:
        inventory.record_stock_change(session, REP, stand.stand_id, a, 1, MovementKind.WRITE_OFF)
    assert err.value.field == "stand_id"
    assert "removed" in str(err.value)
    watch.assert_nothing_saved()


def test_record_stock_change_replayed_movement_id_is_not_a_second_fact(
    factory: SessionFactory, stand: StandFixture, session: Session
) -> None:
    """Movements are facts keyed by their client id: a replay is refused or a no-op, never a
    second effect and never a raw database error."""
    a = stand.product_ids[0]
    mid = new_id()
    inventory.record_stock_change(
        session, REP, stand.stand_id, a, 2, MovementKind.RETURN, movement_id=mid
    )
    watch = Watch(factory)
    outcome: object
    try:
        outcome = inventory.record_stock_change(
            session, REP, stand.stand_id, a, 2, MovementKind.RETURN, movement_id=mid
        )
    except DomainError as exc:
        outcome = exc
    if isinstance(outcome, DomainError):
        assert outcome.field == "movement_id"
        assert_readable(outcome)
    else:
        assert outcome == mid
    watch.assert_nothing_saved()
    assert stock(factory, stand.stand_id, a) == (2, 2)
