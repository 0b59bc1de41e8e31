"""The product catalog service."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.errors import NotFound, PermissionDenied, ValidationError
from app.models import ChangeLog, Product, StandOrderItem
from app.services import catalog as catalog_service
from app.services import inventory, onboarding, sales
from tests.conftest import MANAGER, REP, StandFixture


def _count(session: Session, model: type) -> int:
    with session.begin():
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_add_product_and_find_it_by_sku_or_barcode(session: Session) -> None:
    row = catalog_service.add_product(
        session,
        MANAGER,
        sku=" COLA-033 ",
        name="Cola",
        category="drinks",
        list_price="1.90",
        unit_cost=Decimal("0.8"),
        gtin="4006381333931",
        min_price="1.50",
        max_price="2.50",
        pack_size="24",
    )
    assert (row.sku, row.list_price, row.pack_size) == ("COLA-033", Decimal("1.9000"), 24)
    with session.begin():
        assert onboarding.resolve_product(session, "4006381333931").id == row.id
        assert onboarding.resolve_product(session, "COLA-033").id == row.id
        op = session.scalars(select(ChangeLog)).one()
    assert (op.op_type, op.entity_id) == ("product.add", row.id)


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"sku": ""}, "sku", "SKU is required."),
        ({"gtin": "4006381333932"}, "gtin", "is not a valid GTIN"),
        ({"gtin": "12345"}, "gtin", "is not a valid GTIN"),
        ({"list_price": "-1"}, "list_price", "at least 0"),
        ({"list_price": 1.9}, "list_price", "decimal"),
        ({"unit_cost": "1.23456"}, "unit_cost", "more than 4 decimal places"),
        ({"min_price": "3.00"}, "list_price", "below the minimum"),
        ({"max_price": "1.00"}, "list_price", "above the maximum"),
        ({"min_price": "2", "max_price": "1", "list_price": "1.5"}, "min_price", "above the"),
        ({"pack_size": 0}, "pack_size", "at least 1"),
        ({"pack_size": "2.5"}, "pack_size", "whole number"),
    ],
)
def test_add_product_rejects_bad_input(
    session: Session, kwargs: dict[str, object], field: str, message: str
) -> None:
    base: dict[str, object] = {
        "sku": "A-1",
        "name": "A",
        "category": "c",
        "list_price": "1.90",
        "unit_cost": "0.80",
    }
    with pytest.raises(ValidationError) as err:
        catalog_service.add_product(session, MANAGER, **{**base, **kwargs})
    assert err.value.field == field
    assert message in err.value.message
    assert _count(session, Product) == 0
    assert _count(session, ChangeLog) == 0


def test_duplicate_sku_or_barcode_is_refused(session: Session) -> None:
    catalog_service.add_product(
        session,
        MANAGER,
        sku="A",
        name="A",
        category="c",
        list_price="1",
        unit_cost="0.5",
        gtin="4006381333931",
    )
    for kwargs in ({"sku": "A"}, {"sku": "B", "gtin": "4006381333931"}):
        with pytest.raises(ValidationError, match="exists"):
            catalog_service.add_product(
                session, MANAGER, name="X", category="c", list_price="1", unit_cost="0.5", **kwargs
            )
    assert _count(session, Product) == 1


def test_only_managers_change_the_catalog(session: Session) -> None:
    with pytest.raises(PermissionDenied):
        catalog_service.add_product(
            session, REP, sku="A", name="A", category="c", list_price="1", unit_cost="0.5"
        )


def test_discontinued_product_cannot_be_sold_but_can_be_counted(
    session: Session, stand: StandFixture
) -> None:
    pid = stand.product_ids[0]
    row = catalog_service.update_product(session, MANAGER, pid, active=False)
    assert row.active is False
    with pytest.raises(ValidationError, match="no longer sold"):
        sales.record_sale(session, REP, stand.stand_id, [sales.SaleLine(pid, 1)], "cash")
    result = inventory.record_count(session, REP, stand.stand_id, {row.sku: 0})
    assert result.lines[0].sku == row.sku
    assert catalog_service.list_products(session, search=row.sku) == []
    found = catalog_service.list_products(session, search=row.sku, include_inactive=True)
    assert [p.id for p in found] == [pid]


def test_price_change_keeps_history(session: Session, stand: StandFixture) -> None:
    pid = stand.product_ids[0]
    with session.begin():
        old_price = session.get_one(Product, pid).list_price
    inventory.record_count(session, REP, stand.stand_id, {pid: 10})
    sale = sales.record_sale(session, REP, stand.stand_id, [sales.SaleLine(pid, 1)], "cash")
    catalog_service.update_product(session, MANAGER, pid, list_price=old_price + 1)
    with session.begin():
        item = session.scalars(
            select(StandOrderItem).where(StandOrderItem.order_id == sale.order_id)
        ).one()
    assert item.unit_price == old_price


def test_update_unknown_product(session: Session) -> None:
    with pytest.raises(NotFound):
        catalog_service.update_product(session, MANAGER, "NOPE", list_price="1")
