"""Sales at stands: prices, rounding, stock, loyalty points, idempotency and voids."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.db import SessionFactory
from app.errors import (
    DomainError,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from app.ids import new_id
from app.models import (
    InventoryMovement,
    LoyaltyKind,
    LoyaltyTier,
    MovementKind,
    OrderKind,
    PaymentMethod,
    Product,
    StandLocation,
    StandLoyaltyLedger,
    StandOrder,
    StandOrderItem,
    StandPartner,
    StandStatus,
)
from app.rules import sale_points
from app.services import inventory, loyalty, sales
from app.services.sales import OversoldLine, SaleLine
from tests.conftest import MANAGER, PARTNER, REP, CatalogProduct, make_stand
from tests.helpers import Watch, assert_readable, reading

T0 = datetime(2024, 6, 3, 10, 15, tzinfo=UTC)

# Products made for these tests: (sku, list price, min price, max price, unit cost).
EXTRA = [
    ("P-THIRD", "0.3333", None, None, "0.1111"),
    ("P-2675", "2.675", None, None, "1.2000"),
    ("P-2665", "2.665", None, None, "1.2000"),
    ("P-2380", "23.80", "20.00", "30.00", "11.9000"),
    ("P-1000", "10.00", "8.00", "12.00", "4.5000"),
]


@dataclass(frozen=True)
class Shop:
    partner_id: str
    stand_id: str
    ids: dict[str, str]  # SKU -> product id


@pytest.fixture
def shop(factory: SessionFactory, catalog: list[CatalogProduct]) -> Shop:
    """An active Growth partner whose stand carries the EXTRA products and SKU-001..SKU-003."""
    ids = {p.sku: p.id for p in catalog}
    with factory() as s, s.begin():
        for sku, price, lo, hi, cost in EXTRA:
            p = Product(
                sku=sku,
                name=f"Test {sku}",
                category="snacks",
                list_price=Decimal(price),
                unit_cost=Decimal(cost),
                min_price=None if lo is None else Decimal(lo),
                max_price=None if hi is None else Decimal(hi),
            )
            s.add(p)
            s.flush()
            ids[sku] = p.id
    carried = [sku for sku, *_ in EXTRA] + ["SKU-001", catalog[2].gtin, "SKU-003"]
    with factory() as s:
        st = make_stand(s, "growth", name="Kiosk Süd", products=carried)
    return Shop(st.partner_id, st.stand_id, ids)


def stock_up(session: Session, shop: Shop, **counts: int) -> None:
    """Count stock onto the stand: stock_up(s, shop, P_1000=10) counts SKU P-1000."""
    inventory.record_count(
        session,
        REP,
        shop.stand_id,
        {shop.ids[k.replace("_", "-")]: v for k, v in counts.items()},
        counted_at=T0 - timedelta(days=1),
    )


def on_hand(factory: SessionFactory, shop: Shop, sku: str) -> int:
    with reading(factory) as s:
        cached = inventory.on_hand(s, shop.stand_id, shop.ids[sku])
        assert cached == inventory.ledger_on_hand(s, shop.stand_id, shop.ids[sku])
        return cached


def balance(factory: SessionFactory, partner_id: str) -> int:
    with reading(factory) as s:
        return loyalty.balance(s, partner_id)


def raw_rows(factory: SessionFactory, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """Rows exactly as stored (no type conversion), to prove a fact was never edited."""
    with reading(factory) as s:
        return [tuple(r) for r in s.connection().exec_driver_sql(sql, params).fetchall()]


# --------------------------------------------------------------------------- recording sales


def test_sale_at_catalog_prices(factory: SessionFactory, shop: Shop, session: Session) -> None:
    stock_up(session, shop, P_1000=10, P_2380=5)
    before_points = balance(factory, shop.partner_id)
    watch = Watch(factory)
    result = sales.record_sale(
        session,
        REP,
        shop.stand_id,
        [SaleLine("P-1000", 2), SaleLine(shop.ids["P-2380"], "1")],
        "cash",
        occurred_at=T0,
    )

    # 2 x 10.00 + 23.80 = 43.80; Growth (x1.25), Bronze (x1.00): floor(54.75) = 54.
    assert result.total == Decimal("43.80")
    assert (
        result.points_earned
        == 54
        == sale_points(Decimal("43.80"), Decimal("1.25"), Decimal("1.00"))
    )
    assert result.oversold == ()
    assert result.duplicate is False
    assert result.stock_after == {shop.ids["P-1000"]: 8, shop.ids["P-2380"]: 4}

    with reading(factory) as s:
        order = s.get_one(StandOrder, result.order_id)
        assert (
            order.stand_id,
            order.partner_id,
            order.kind,
            order.occurred_at,
            order.payment_method,
            order.total,
            order.points_earned,
            order.oversold,
            order.actor,
            order.voided_order_id,
        ) == (
            shop.stand_id,
            shop.partner_id,
            OrderKind.SALE,
            T0,
            PaymentMethod.CASH,
            Decimal("43.80"),
            54,
            False,
            REP.user,
            None,
        )
        items = [
            (
                i.line_no,
                i.product_id,
                i.quantity,
                i.unit_price,
                i.unit_cost,
                i.line_total,
                i.price_overridden,
            )
            for i in order.items
        ]
        assert items == [
            (1, shop.ids["P-1000"], 2, Decimal("10.00"), Decimal("4.5"), Decimal("20.00"), False),
            (2, shop.ids["P-2380"], 1, Decimal("23.80"), Decimal("11.9"), Decimal("23.80"), False),
        ]
        moves = s.scalars(
            select(InventoryMovement)
            .where(InventoryMovement.ref_id == result.order_id)
            .order_by(InventoryMovement.quantity)
        ).all()
        assert [(m.product_id, m.quantity, m.kind, m.ref_type, m.occurred_at) for m in moves] == [
            (shop.ids["P-1000"], -2, MovementKind.SALE, "stand_order", T0),
            (shop.ids["P-2380"], -1, MovementKind.SALE, "stand_order", T0),
        ]
        (earn,) = s.scalars(
            select(StandLoyaltyLedger).where(StandLoyaltyLedger.ref_id == result.order_id)
        ).all()
        assert (earn.kind, earn.points, earn.partner_id, earn.occurred_at, earn.ref_type) == (
            LoyaltyKind.EARN,
            54,
            shop.partner_id,
            T0,
            "stand_order",
        )
    assert on_hand(factory, shop, "P-1000") == 8
    assert on_hand(factory, shop, "P-2380") == 4
    assert balance(factory, shop.partner_id) == before_points + 54

    ops = watch.ops()
    assert [o.op_type for o in ops] == ["sale.record"]
    (op,) = ops
    assert op.entity_id == result.order_id
    assert op.actor == REP.user
    assert op.payload["order"]["total"] == "43.80"
    assert op.payload["order"]["points_earned"] == 54
    assert op.payload["order"]["payment_method"] == "cash"
    assert [(i["product_id"], i["quantity"], i["line_total"]) for i in op.payload["items"]] == [
        (shop.ids["P-1000"], 2, "20.00"),
        (shop.ids["P-2380"], 1, "23.80"),
    ]
    assert op.payload["loyalty_entry_id"] == earn.id
    assert watch.added() == {
        "stand_order": 1,
        "stand_order_item": 2,
        "inventory_movement": 2,
        "stand_loyalty_ledger": 1,
        "change_log": 1,
    }


def test_sale_by_barcode_and_client_order_id(
    factory: SessionFactory, catalog: list[CatalogProduct], shop: Shop, session: Session
) -> None:
    oid = new_id()
    result = sales.record_sale(
        session, REP, shop.stand_id, [SaleLine(catalog[2].gtin, 1)], "qr", order_id=oid
    )
    assert result.order_id == oid
    with reading(factory) as s:
        order = s.get_one(StandOrder, oid)
        assert order.payment_method == PaymentMethod.QR
        assert [i.product_id for i in order.items] == [catalog[2].id]


@pytest.mark.parametrize(
    ("price", "expected", "overridden"),
    [
        pytest.param("9.50", Decimal("9.50"), True, id="discount"),
        pytest.param(Decimal("12.00"), Decimal("12.00"), True, id="at-max"),
        pytest.param("8", Decimal("8.00"), True, id="at-min"),
        pytest.param("10.00", Decimal("10.00"), False, id="same-as-list"),
    ],
)
def test_price_override_within_guardrails(
    factory: SessionFactory,
    shop: Shop,
    session: Session,
    price: object,
    expected: Decimal,
    overridden: bool,
) -> None:
    result = sales.record_sale(
        session, REP, shop.stand_id, [SaleLine("P-1000", 3, unit_price=price)], "card"
    )
    assert result.total == expected * 3
    with reading(factory) as s:
        (item,) = s.get_one(StandOrder, result.order_id).items
        assert (item.unit_price, item.line_total, item.price_overridden) == (
            expected,
            expected * 3,
            overridden,
        )


@pytest.mark.parametrize(
    ("price", "words"),
    [
        pytest.param("7.99", "below 8.00", id="below-min"),
        pytest.param("12.01", "above 12.00", id="above-max"),
        pytest.param("0", "below 8.00", id="zero"),
        pytest.param("-9.50", "at least 0", id="negative"),
        pytest.param(9.5, "decimal", id="float"),
        pytest.param("nine", "amount like", id="text"),
        pytest.param("9.12345", "4 decimal places", id="five-places"),
        pytest.param("NaN", "finite", id="nan"),
    ],
)
def test_price_override_outside_guardrails_is_refused(
    factory: SessionFactory, shop: Shop, session: Session, price: object, words: str
) -> None:
    watch = Watch(factory)
    with pytest.raises(ValidationError) as err:
        sales.record_sale(
            session,
            REP,
            shop.stand_id,
            [SaleLine("SKU-001", 1), SaleLine("P-1000", 1, unit_price=price)],
            "cash",
        )
    assert err.value.field == "lines[2].unit_price"
    assert words in str(err.value)
    assert_readable(err.value)
    watch.assert_nothing_saved()


def test_repeated_products_are_merged(
    factory: SessionFactory, shop: Shop, session: Session
) -> None:
    watch = Watch(factory)
    result = sales.record_sale(
        session,
        REP,
        shop.stand_id,
        [
            SaleLine("P-1000", 1),
            SaleLine("P-2380", 1),
            SaleLine(shop.ids["P-1000"], 2),
            SaleLine("P-1000", "1"),
        ],
        "cash",
    )
    assert result.total == Decimal("63.80")
    with reading(factory) as s:
        items = [
            (i.line_no, i.product_id, i.quantity, i.line_total)
            for i in s.get_one(StandOrder, result.order_id).items
        ]
    assert items == [
        (1, shop.ids["P-1000"], 4, Decimal("40.00")),
        (2, shop.ids["P-2380"], 1, Decimal("23.80")),
    ]
    assert watch.added()["inventory_movement"] == 2
    assert on_hand(factory, shop, "P-1000") == -4


def test_same_product_at_two_prices_is_refused(
    factory: SessionFactory, shop: Shop, session: Session
) -> None:
    watch = Watch(factory)
    with pytest.raises(ValidationError) as err:
        sales.record_sale(
            session,
            REP,
            shop.stand_id,
            [
                SaleLine("P-1000", 1),
                SaleLine("P-2380", 1),
                SaleLine("P-1000", 1, unit_price="9.00"),
            ],
            "cash",
        )
    assert err.value.field == "lines[3].unit_price"
    assert "twice" in str(err.value)
    watch.assert_nothing_saved()


@pytest.mark.parametrize(
    ("quantity", "words"),
    [
        pytest.param(0, "at least 1", id="zero"),
        pytest.param(-1, "at least 1", id="negative"),
        pytest.param("-2", "at least 1", id="negative-text"),
        pytest.param("two", "whole number", id="text"),
        pytest.param("", "whole number", id="empty"),
        pytest.param(1.5, "whole number", id="fraction"),
        pytest.param(2.0, "whole number", id="float"),
        pytest.param(Decimal("1.5"), "whole number", id="decimal-fraction"),
        pytest.param(None, "whole number", id="none"),
        pytest.param(True, "whole number", id="bool"),
        pytest.param(10_001, "at most", id="too-many"),
    ],
)
def test_bad_quantity_is_refused(
    factory: SessionFactory, shop: Shop, session: Session, quantity: object, words: str
) -> None:
    watch = Watch(factory)
    with pytest.raises(ValidationError) as err:
        sales.record_sale(
            session,
            REP,
            shop.stand_id,
            [SaleLine("P-2380", 1), SaleLine("P-1000", quantity)],
            "cash",
        )
    assert err.value.field == "lines[2].quantity"
    assert words in str(err.value)
    assert "Test P-1000" in str(err.value)
    assert_readable(err.value)
    watch.assert_nothing_saved()


def test_unknown_product_is_refused(factory: SessionFactory, shop: Shop, session: Session) -> None:
    watch = Watch(factory)
    with pytest.raises(NotFound) as err:
        sales.record_sale(
            session, REP, shop.stand_id, [SaleLine("P-1000", 1), SaleLine("NO-SUCH-SKU", 1)], "cash"
        )
    assert "NO-SUCH-SKU" in str(err.value)
    assert_readable(err.value)
    watch.assert_nothing_saved()
    # The form shows the message next to the line that was wrong, as for every other line error.
    assert err.value.field == "lines[2].product"


def test_product_not_carried_at_stand_is_refused(
    factory: SessionFactory, shop: Shop, session: Session
) -> None:
    watch = Watch(factory)
    with pytest.raises(ValidationError) as err:
        sales.record_sale(
            session, REP, shop.stand_id, [SaleLine("P-1000", 1), SaleLine("SKU-020", 1)], "cash"
        )
    assert err.value.field == "lines[2].product"
    assert "not carried" in str(err.value)
    assert "Kiosk Süd" in str(err.value)
    watch.assert_nothing_saved()


@pytest.mark.parametrize("method", ["bitcoin", "", "cheque"])
def test_unknown_payment_method_is_refused(
    factory: SessionFactory, shop: Shop, session: Session, method: str
) -> None:
    watch = Watch(factory)
    with pytest.raises(ValidationError) as err:
        sales.record_sale(session, REP, shop.stand_id, [SaleLine("P-1000", 1)], method)
    assert err.value.field == "payment_method"
    assert "cash, qr or card" in str(err.value)
    watch.assert_nothing_saved()


def test_sale_without_lines_is_refused(
    factory: SessionFactory, shop: Shop, session: Session
) -> None:
    watch = Watch(factory)
    with pytest.raises(ValidationError) as err:
        sales.record_sale(session, REP, shop.stand_id, [], "cash")
    assert err.value.field == "lines"
    watch.assert_nothing_saved()


def test_sale_at_planned_stand_is_refused(
    factory: SessionFactory, catalog: list[CatalogProduct], session: Session
) -> None:
    planned = make_stand(session, "starter", activate=False)
    watch = Watch(factory)
    with pytest.raises(ValidationError) as err:
        sales.record_sale(
            session, REP, planned.stand_id, [SaleLine(planned.product_ids[0], 1)], "cash"
        )
    assert err.value.field == "stand_id"
    assert "planned" in str(err.value)
    assert_readable(err.value)
    watch.assert_nothing_saved()


@pytest.mark.parametrize("status", [StandStatus.PAUSED, StandStatus.REMOVED])
def test_sale_at_paused_or_removed_stand_is_refused(
    factory: SessionFactory, shop: Shop, session: Session, status: StandStatus
) -> None:
    with session.begin():
        session.execute(
            update(StandLocation).where(StandLocation.id == shop.stand_id).values(status=status)
        )
    watch = Watch(factory)
    with pytest.raises(ValidationError) as err:
        sales.record_sale(session, REP, shop.stand_id, [SaleLine("P-1000", 1)], "cash")
    assert err.value.field == "stand_id"
    watch.assert_nothing_saved()


def test_sale_at_unknown_stand_and_roles(
    factory: SessionFactory, shop: Shop, session: Session
) -> None:
    watch = Watch(factory)
    with pytest.raises(NotFound) as err:
        sales.record_sale(session, REP, new_id(), [SaleLine("P-1000", 1)], "cash")
    assert err.value.field == "stand_id"
    with pytest.raises(PermissionDenied):
        sales.record_sale(session, PARTNER, shop.stand_id, [SaleLine("P-1000", 1)], "cash")
    with pytest.raises(ValidationError) as bad_id:
        sales.record_sale(
            session, REP, shop.stand_id, [SaleLine("P-1000", 1)], "cash", order_id="order-1"
        )
    assert bad_id.value.field == "order_id"
    with pytest.raises(ValidationError):
        sales.record_sale(
            session,
            REP,
            shop.stand_id,
            [SaleLine("P-1000", 1)],
            "cash",
            occurred_at=datetime(2024, 6, 3, 10, 15),
        )
    watch.assert_nothing_saved()


# --------------------------------------------------------------------------- oversold


def test_oversold_sale_is_recorded_and_flagged(
    factory: SessionFactory, shop: Shop, session: Session
) -> None:
    stock_up(session, shop, P_1000=2, P_2380=5)
    watch = Watch(factory)
    result = sales.record_sale(
        session, REP, shop.stand_id, [SaleLine("P-2380", 1), SaleLine("P-1000", 3)], "cash"
    )
    assert result.oversold == (OversoldLine(shop.ids["P-1000"], "Test P-1000", 3, 2),)
    assert result.stock_after == {shop.ids["P-2380"]: 4, shop.ids["P-1000"]: -1}
    assert on_hand(factory, shop, "P-1000") == -1
    with reading(factory) as s:
        assert s.get_one(StandOrder, result.order_id).oversold is True
    ops = watch.ops()
    assert [o.op_type for o in ops] == ["sale.record"]
    assert ops[0].payload["order"]["oversold"] is True


def test_sale_within_stock_is_not_flagged(
    factory: SessionFactory, shop: Shop, session: Session
) -> None:
    stock_up(session, shop, P_1000=3)
    result = sales.record_sale(session, REP, shop.stand_id, [SaleLine("P-1000", 3)], "cash")
    assert result.oversold == ()
    with reading(factory) as s:
        assert s.get_one(StandOrder, result.order_id).oversold is False
    assert on_hand(factory, shop, "P-1000") == 0


# --------------------------------------------------------------------------- idempotency


def test_replayed_order_id_is_a_duplicate(
    factory: SessionFactory, shop: Shop, session: Session
) -> None:
    stock_up(session, shop, P_1000=10)
    oid = new_id()
    first = sales.record_sale(
        session, REP, shop.stand_id, [SaleLine("P-1000", 2)], "cash", order_id=oid, occurred_at=T0
    )
    watch = Watch(factory)
    again = sales.record_sale(
        session, REP, shop.stand_id, [SaleLine("P-1000", 2)], "cash", order_id=oid, occurred_at=T0
    )
    assert again.duplicate is True
    assert (again.order_id, again.total, again.points_earned) == (
        first.order_id,
        first.total,
        first.points_earned,
    )
    assert again.stock_after == {shop.ids["P-1000"]: 8}
    # Even with other lines, a replay is the first recording, never a second sale.
    other = sales.record_sale(
        session, MANAGER, shop.stand_id, [SaleLine("P-2380", 5)], "card", order_id=oid
    )
    assert other.duplicate is True
    assert other.total == Decimal("20.00")
    watch.assert_nothing_saved()
    assert on_hand(factory, shop, "P-1000") == 8


def test_order_id_of_another_stand_is_refused(
    factory: SessionFactory, catalog: list[CatalogProduct], shop: Shop, session: Session
) -> None:
    other = make_stand(session, "pro", name="Späti Nord")
    oid = new_id()
    sales.record_sale(session, REP, shop.stand_id, [SaleLine("P-1000", 1)], "cash", order_id=oid)
    watch = Watch(factory)
    with pytest.raises(ValidationError) as err:
        sales.record_sale(
            session, REP, other.stand_id, [SaleLine(other.product_ids[0], 1)], "cash", order_id=oid
        )
    assert err.value.field == "order_id"
    assert_readable(err.value)
    watch.assert_nothing_saved()


def test_order_id_of_a_void_is_refused(
    factory: SessionFactory, shop: Shop, session: Session
) -> None:
    sale = sales.record_sale(session, REP, shop.stand_id, [SaleLine("P-1000", 1)], "cash")
    void = sales.void_sale(session, REP, sale.order_id)
    watch = Watch(factory)
    with pytest.raises(ValidationError) as err:
        sales.record_sale(
            session,
            REP,
            shop.stand_id,
            [SaleLine("P-1000", 1)],
            "cash",
            order_id=void.void_order_id,
        )
    assert err.value.field == "order_id"
    watch.assert_nothing_saved()


# --------------------------------------------------------------------------- money and points


@pytest.mark.parametrize(
    ("sku", "qty", "price", "line_total"),
    [
        pytest.param("P-THIRD", 3, None, Decimal("1.00"), id="0.3333x3"),
        pytest.param("P-THIRD", 1, None, Decimal("0.33"), id="0.3333x1"),
        pytest.param("P-2675", 1, None, Decimal("2.68"), id="2.675"),
        pytest.param("P-2665", 1, None, Decimal("2.67"), id="2.665-half-up"),
        pytest.param("P-THIRD", 2, "0.0625", Decimal("0.13"), id="0.125-half-up"),
        pytest.param("P-THIRD", 1, "0.0050", Decimal("0.01"), id="half-cent"),
        pytest.param("P-THIRD", 1, "0.0049", Decimal("0.00"), id="under-half-cent"),
        pytest.param("P-2665", 7, None, Decimal("18.66"), id="18.655"),
    ],
)
def test_line_total_rounds_half_up_to_cents(
    factory: SessionFactory,
    shop: Shop,
    session: Session,
    sku: str,
    qty: int,
    price: str | None,
    line_total: Decimal,
) -> None:
    result = sales.record_sale(session, REP, shop.stand_id, [SaleLine(sku, qty, price)], "cash")
    assert result.total == line_total
    with reading(factory) as s:
        order = s.get_one(StandOrder, result.order_id)
        (item,) = order.items
        assert item.line_total == line_total
        list_price = next(Decimal(p) for k, p, *_ in EXTRA if k == sku)
        assert item.unit_price == (Decimal(price) if price else list_price)
        assert order.total == line_total


def test_order_total_is_the_exact_sum_of_rounded_lines(
    factory: SessionFactory, shop: Shop, session: Session
) -> None:
    result = sales.record_sale(
        session,
        REP,
        shop.stand_id,
        [SaleLine("P-THIRD", 3), SaleLine("P-2675", 1), SaleLine("P-2665", 1)],
        "cash",
    )
    # 1.00 + 2.68 + 2.67 (not 0.9999 + 2.675 + 2.665 = 6.3399 rounded).
    assert result.total == Decimal("6.35")
    with reading(factory) as s:
        order = s.get_one(StandOrder, result.order_id)
        assert order.total == Decimal("6.35")
        assert [i.unit_price for i in order.items] == [
            Decimal("0.3333"),
            Decimal("2.675"),
            Decimal("2.665"),
        ]
        assert sum(i.line_total for i in order.items) == order.total
    # Growth x1.25, Bronze: floor(6.35 x 1.25) = floor(7.9375) = 7.
    assert result.points_earned == 7


def test_points_for_growth_partner_in_silver(
    factory: SessionFactory, shop: Shop, session: Session
) -> None:
    bronze = sales.record_sale(session, REP, shop.stand_id, [SaleLine("P-2380", 1)], "cash")
    # floor(23.80 x 1.25 x 1.00) = floor(29.75) = 29
    assert bronze.points_earned == 29

    loyalty.adjust_points(session, MANAGER, shop.partner_id, 2000, note="Launch bonus", bonus=True)
    (change,) = loyalty.reevaluate_tiers(session, MANAGER, partner_id=shop.partner_id)
    assert (change.old_tier, change.new_tier) == ("bronze", "silver")

    silver = sales.record_sale(session, REP, shop.stand_id, [SaleLine("P-2380", 1)], "cash")
    # floor(23.80 x 1.25 x 1.10) = floor(32.725) = 32, the example of app.rules.
    assert silver.points_earned == 32
    with reading(factory) as s:
        partner = s.get_one(StandPartner, shop.partner_id)
        assert s.get_one(LoyaltyTier, partner.loyalty_tier_id).code == "silver"
        entry = s.scalars(
            select(StandLoyaltyLedger).where(StandLoyaltyLedger.ref_id == silver.order_id)
        ).one()
        assert (entry.kind, entry.points) == (LoyaltyKind.EARN, 32)


def test_points_for_pro_partner_in_gold(
    factory: SessionFactory, catalog: list[CatalogProduct], session: Session
) -> None:
    st = make_stand(session, "pro", name="Pro Shop")
    loyalty.adjust_points(session, MANAGER, st.partner_id, 6000, note="Migration", bonus=True)
    loyalty.reevaluate_tiers(session, MANAGER, partner_id=st.partner_id)
    pid = st.product_ids[0]
    price = next(p.list_price for p in catalog if p.id == pid)
    result = sales.record_sale(session, REP, st.stand_id, [SaleLine(pid, 3)], "cash")
    total = price * 3
    assert result.total == total
    # Pro x1.50, Gold x1.25 -> x1.875 per unit of currency.
    expected = int((total * Decimal("1.875")).to_integral_value(rounding="ROUND_FLOOR"))
    assert result.points_earned == expected == sale_points(total, Decimal("1.5"), Decimal("1.25"))


def test_sale_below_one_point_writes_no_ledger_entry(
    factory: SessionFactory, shop: Shop, session: Session
) -> None:
    watch = Watch(factory)
    result = sales.record_sale(session, REP, shop.stand_id, [SaleLine("P-THIRD", 1)], "cash")
    assert result.points_earned == 0  # floor(0.33 x 1.25) = 0
    assert "stand_loyalty_ledger" not in watch.added()
    (op,) = watch.ops()
    assert op.payload["loyalty_entry_id"] is None


# --------------------------------------------------------------------------- voids


def test_void_is_a_compensating_order(
    factory: SessionFactory, shop: Shop, session: Session
) -> None:
    stock_up(session, shop, P_1000=10, P_2380=5)
    sale = sales.record_sale(
        session,
        REP,
        shop.stand_id,
        [SaleLine("P-1000", 2), SaleLine("P-2380", 1)],
        "card",
        occurred_at=T0,
    )
    points_before_void = balance(factory, shop.partner_id)
    watch = Watch(factory)
    at = T0 + timedelta(minutes=5)
    result = sales.void_sale(
        session, MANAGER, sale.order_id, reason="Customer returned it", occurred_at=at
    )
    assert result.voided_order_id == sale.order_id
    assert result.total == Decimal("-43.80")
    assert result.points_reversed == 54

    with reading(factory) as s:
        void = s.get_one(StandOrder, result.void_order_id)
        assert (
            void.kind,
            void.voided_order_id,
            void.stand_id,
            void.partner_id,
            void.total,
            void.points_earned,
            void.payment_method,
            void.occurred_at,
            void.actor,
        ) == (
            OrderKind.VOID,
            sale.order_id,
            shop.stand_id,
            shop.partner_id,
            Decimal("-43.80"),
            -54,
            PaymentMethod.CARD,
            at,
            MANAGER.user,
        )
        assert [
            (i.line_no, i.product_id, i.quantity, i.unit_price, i.line_total) for i in void.items
        ] == [
            (1, shop.ids["P-1000"], -2, Decimal("10.00"), Decimal("-20.00")),
            (2, shop.ids["P-2380"], -1, Decimal("23.80"), Decimal("-23.80")),
        ]
        moves = s.scalars(
            select(InventoryMovement)
            .where(InventoryMovement.ref_id == void.id)
            .order_by(InventoryMovement.quantity)
        ).all()
        assert [(m.product_id, m.quantity, m.kind, m.note) for m in moves] == [
            (shop.ids["P-2380"], 1, MovementKind.SALE_VOID, "Customer returned it"),
            (shop.ids["P-1000"], 2, MovementKind.SALE_VOID, "Customer returned it"),
        ]
        (reversal,) = s.scalars(
            select(StandLoyaltyLedger).where(StandLoyaltyLedger.ref_id == void.id)
        ).all()
        assert (reversal.kind, reversal.points, reversal.ref_type, reversal.occurred_at) == (
            LoyaltyKind.ADJUST,
            -54,
            "stand_order",
            at,
        )
    assert on_hand(factory, shop, "P-1000") == 10
    assert on_hand(factory, shop, "P-2380") == 5
    assert balance(factory, shop.partner_id) == points_before_void - 54

    ops = watch.ops()
    assert [o.op_type for o in ops] == ["sale.void"]
    assert ops[0].entity_id == result.void_order_id
    assert ops[0].payload["order_id"] == sale.order_id
    assert ops[0].payload["reason"] == "Customer returned it"
    assert ops[0].payload["loyalty_entry_id"] == reversal.id
    assert watch.added() == {
        "stand_order": 1,
        "stand_order_item": 2,
        "inventory_movement": 2,
        "stand_loyalty_ledger": 1,
        "change_log": 1,
    }


def test_void_never_edits_the_original_facts(
    factory: SessionFactory, shop: Shop, session: Session
) -> None:
    sale = sales.record_sale(
        session, REP, shop.stand_id, [SaleLine("P-1000", 2), SaleLine("P-THIRD", 3)], "cash"
    )
    queries = [
        ("SELECT * FROM stand_order WHERE id = ?", sale.order_id),
        ("SELECT * FROM stand_order_item WHERE order_id = ? ORDER BY id", sale.order_id),
        ("SELECT * FROM inventory_movement WHERE ref_id = ? ORDER BY id", sale.order_id),
        ("SELECT * FROM stand_loyalty_ledger WHERE ref_id = ? ORDER BY id", sale.order_id),
    ]
    before = [raw_rows(factory, q, p) for q, p in queries]
    assert all(before)
    sales.void_sale(session, REP, sale.order_id)
    assert [raw_rows(factory, q, p) for q, p in queries] == before


def test_void_of_sale_without_points(factory: SessionFactory, shop: Shop, session: Session) -> None:
    sale = sales.record_sale(session, REP, shop.stand_id, [SaleLine("P-THIRD", 1)], "cash")
    watch = Watch(factory)
    result = sales.void_sale(session, REP, sale.order_id)
    assert result.points_reversed == 0
    assert "stand_loyalty_ledger" not in watch.added()


def test_double_void_and_void_of_void_are_refused(
    factory: SessionFactory, shop: Shop, session: Session
) -> None:
    sale = sales.record_sale(session, REP, shop.stand_id, [SaleLine("P-1000", 1)], "cash")
    void = sales.void_sale(session, REP, sale.order_id)
    watch = Watch(factory)
    with pytest.raises(InvalidTransition) as twice:
        sales.void_sale(session, REP, sale.order_id)
    assert twice.value.field == "order_id"
    assert "already been voided" in str(twice.value)
    assert_readable(twice.value)
    with pytest.raises(InvalidTransition) as of_void:
        sales.void_sale(session, MANAGER, void.void_order_id)
    assert of_void.value.field == "order_id"
    assert "void cannot itself be voided" in str(of_void.value)
    watch.assert_nothing_saved()
    assert on_hand(factory, shop, "P-1000") == 0


def test_void_refusals(factory: SessionFactory, shop: Shop, session: Session) -> None:
    sale = sales.record_sale(session, REP, shop.stand_id, [SaleLine("P-1000", 1)], "cash")
    watch = Watch(factory)
    with pytest.raises(NotFound) as nf:
        sales.void_sale(session, REP, new_id())
    assert nf.value.field == "order_id"
    with pytest.raises(NotFound):
        sales.void_sale(session, REP, "nonsense")
    with pytest.raises(PermissionDenied):
        sales.void_sale(session, PARTNER, sale.order_id)
    with pytest.raises(ValidationError) as bad_id:
        sales.void_sale(session, REP, sale.order_id, void_id="void-1")
    assert bad_id.value.field == "void_id"
    with pytest.raises(ValidationError):
        sales.void_sale(session, REP, sale.order_id, reason="x" * 501)
    watch.assert_nothing_saved()


def test_void_with_an_id_already_taken_is_refused_cleanly(
    factory: SessionFactory, shop: Shop, session: Session
) -> None:
    """A void id that is already another order's id is a readable refusal, not a crash."""
    first = sales.record_sale(session, REP, shop.stand_id, [SaleLine("P-1000", 1)], "cash")
    second = sales.record_sale(session, REP, shop.stand_id, [SaleLine("P-2380", 1)], "cash")
    watch = Watch(factory)
    with pytest.raises(DomainError) as err:
        sales.void_sale(session, REP, second.order_id, void_id=first.order_id)
    assert err.value.field == "void_id"
    watch.assert_nothing_saved()


def test_voided_order_counts_with_orders(
    factory: SessionFactory, shop: Shop, session: Session
) -> None:
    """The ledger of orders nets to the live sales: sale + void sum to zero."""
    a = sales.record_sale(session, REP, shop.stand_id, [SaleLine("P-1000", 2)], "cash")
    sales.record_sale(session, REP, shop.stand_id, [SaleLine("P-2380", 1)], "cash")
    sales.void_sale(session, REP, a.order_id)
    with reading(factory) as s:
        net = s.scalar(
            select(func.sum(StandOrder.total)).where(StandOrder.stand_id == shop.stand_id)
        )
        units = s.scalar(select(func.sum(StandOrderItem.quantity)))
    assert net == Decimal("23.80")
    assert units == 1
