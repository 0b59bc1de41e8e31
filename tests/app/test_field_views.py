"""Read-side queries for the sale and count screens."""

from __future__ import annotations

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.db import SessionFactory
from app.errors import NotFound
from app.models import StandInventory
from app.services import catalog as catalog_service
from app.services import field_views, inventory, queries, sales
from app.services.sales import SaleLine
from tests.conftest import MANAGER, REP, CatalogProduct, StandFixture, make_stand
from tests.helpers import Watch


def test_stand_stock_lists_every_sku_with_barcode_and_stock(
    session: Session, stand: StandFixture, catalog: list[CatalogProduct]
) -> None:
    first = stand.product_ids[0]
    inventory.record_count(session, REP, stand.stand_id, {first: 7})
    sales.record_sale(session, REP, stand.stand_id, [SaleLine(first, 2)], "cash")

    stock = field_views.stand_stock(session, stand.stand_id)

    assert stock.stand_id == stand.stand_id
    assert stock.stand_name == "Kiosk am Markt"
    assert stock.partner_name == "Kiosk am Markt GmbH"
    assert stock.accepts_sales
    assert {i.product_id for i in stock.items} == set(stand.product_ids)
    by_id = {i.product_id: i for i in stock.items}
    made = {p.id: p for p in catalog}
    item = by_id[first]
    assert item.on_hand == 5
    assert item.barcode == made[first].gtin
    assert item.sku == made[first].sku
    assert item.list_price == made[first].list_price
    assert item.sellable
    assert item.placed
    assert item.last_counted_at is not None
    assert stock.last_counted_at == item.last_counted_at
    # The same figures as the stand detail screen.
    detail = queries.stand_detail(session, stand.stand_id)
    assert {(r.product_id, r.on_hand, r.par_level) for r in detail.inventory} == {
        (i.product_id, i.on_hand, i.par_level) for i in stock.items
    }
    # Ordered by category, then name.
    keys = [(i.category, i.name.lower()) for i in stock.items]
    assert keys == sorted(keys)


def test_find_by_barcode_sku_or_id(
    session: Session, stand: StandFixture, catalog: list[CatalogProduct]
) -> None:
    stock = field_views.stand_stock(session, stand.stand_id)
    made = {p.id: p for p in catalog}
    pid = stand.product_ids[1]
    assert stock.find(made[pid].gtin) is not None
    assert stock.find(f"  {made[pid].gtin}\n") is not None  # a scanner's trailing newline
    by_sku, by_id = stock.find(made[pid].sku.lower()), stock.find(pid)
    assert by_sku is not None
    assert by_sku.product_id == pid
    assert by_id is not None
    assert by_id.product_id == pid
    assert stock.find("") is None
    assert stock.find(made[pid].name) is None  # a name is a search, not a code
    not_carried = next(p for p in catalog if p.id not in stand.product_ids)
    assert stock.find(not_carried.gtin) is None


def test_discontinued_and_removed_skus_are_flagged(
    session: Session, stand: StandFixture, catalog: list[CatalogProduct]
) -> None:
    gone, removed = stand.product_ids[0], stand.product_ids[1]
    with session.begin():
        session.execute(
            update(StandInventory)
            .where(StandInventory.stand_id == stand.stand_id)
            .where(StandInventory.product_id == removed)
            .values(active=False)
        )
    catalog_service.update_product(session, MANAGER, gone, active=False)
    stock = field_views.stand_stock(session, stand.stand_id)
    by_id = {i.product_id: i for i in stock.items}
    assert not by_id[gone].sellable
    assert by_id[gone].placed
    assert by_id[removed].sellable
    assert not by_id[removed].placed
    assert stock.items[-1].product_id == removed  # no longer placed: listed last


def test_planned_stand_does_not_accept_sales(
    session: Session, catalog: list[CatalogProduct]
) -> None:
    planned = make_stand(session, name="Apotheke West", activate=False)
    stock = field_views.stand_stock(session, planned.stand_id)
    assert stock.status == "planned"
    assert not stock.accepts_sales


def test_unknown_stand_is_refused(session: Session, catalog: list[CatalogProduct]) -> None:
    with pytest.raises(NotFound):
        field_views.stand_stock(session, "0190a0a0-0000-7000-8000-000000000000")


def test_reading_writes_nothing(factory: SessionFactory, stand: StandFixture) -> None:
    watch = Watch(factory)
    with factory() as s:
        field_views.stand_stock(s, stand.stand_id)
    watch.assert_nothing_saved()
