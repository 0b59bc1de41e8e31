"""Read-side queries: the stand list (filters, sorting, attention), stand detail, refills."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.errors import NotFound, ValidationError
from app.services import inventory, loyalty, queries, refills, sales
from tests.conftest import MANAGER, OTHER_REP, REP, CatalogProduct, StandFixture, make_stand


def _by_name(rows: list[queries.StandRow]) -> dict[str, queries.StandRow]:
    return {r.name: r for r in rows}


@pytest.fixture
def three(session: Session, catalog: list[CatalogProduct]) -> dict[str, StandFixture]:
    stands = {
        "Kiosk Nord": make_stand(session, name="Kiosk Nord"),
        "Café Süd": make_stand(session, name="Café Süd"),
        "Apotheke West": make_stand(session, name="Apotheke West", activate=False),
    }
    # Count Kiosk Nord full (par for every SKU) so it needs nothing; Café Süd stays empty.
    kiosk = stands["Kiosk Nord"]
    detail = queries.stand_detail(session, kiosk.stand_id)
    inventory.record_count(
        session, REP, kiosk.stand_id, {line.product_id: line.par_level for line in detail.inventory}
    )
    return stands


def test_list_shows_stock_summary(session: Session, three: dict[str, StandFixture]) -> None:
    rows = _by_name(queries.list_stands(session))
    kiosk, cafe, pharmacy = rows["Kiosk Nord"], rows["Café Süd"], rows["Apotheke West"]
    assert kiosk.sku_count == cafe.sku_count > 0
    assert kiosk.out_count == 0
    assert kiosk.units_on_hand > 0
    assert kiosk.last_counted_at is not None
    assert cafe.out_count == cafe.sku_count
    assert cafe.units_on_hand == 0
    assert (kiosk.status, pharmacy.status) == ("active", "planned")
    assert kiosk.partner_name == "Kiosk Nord GmbH"


def test_needs_attention(session: Session, three: dict[str, StandFixture]) -> None:
    rows = _by_name(queries.list_stands(session))
    assert rows["Kiosk Nord"].needs_attention is False  # full and just counted
    assert rows["Café Süd"].needs_attention is True  # everything out
    assert rows["Apotheke West"].needs_attention is False  # planned, not live yet
    # A count older than the overdue limit makes even a full stand need a visit.
    later = utcnow() + timedelta(days=queries.COUNT_OVERDUE_DAYS + 1)
    rows = _by_name(queries.list_stands(session, now=later))
    assert rows["Kiosk Nord"].needs_attention is True
    # Selling a SKU down to its reorder point flags it as low.
    kiosk = three["Kiosk Nord"]
    line = queries.stand_detail(session, kiosk.stand_id).inventory[0]
    sales.record_sale(
        session,
        REP,
        kiosk.stand_id,
        [sales.SaleLine(line.product_id, line.on_hand - line.reorder_point)],
        "cash",
    )
    row = _by_name(queries.list_stands(session))["Kiosk Nord"]
    assert (row.low_count, row.needs_attention) == (1, True)
    attention = queries.list_stands(session, needs_attention=True)
    assert {r.name for r in attention} == {"Kiosk Nord", "Café Süd"}
    calm = queries.list_stands(session, needs_attention=False)
    assert {r.name for r in calm} == {"Apotheke West"}


def test_filters_and_search(session: Session, three: dict[str, StandFixture]) -> None:
    assert [r.name for r in queries.list_stands(session, search="süd")] == ["Café Süd"]
    assert [r.name for r in queries.list_stands(session, search="NORD gmbh")] == ["Kiosk Nord"]
    assert [r.name for r in queries.list_stands(session, search="berlin")] == sorted(three)
    assert [r.name for r in queries.list_stands(session, status="planned")] == ["Apotheke West"]
    pid = three["Café Süd"].partner_id
    assert [r.name for r in queries.list_stands(session, partner_id=pid)] == ["Café Süd"]
    assert len(queries.list_stands(session, rep=REP.user)) == 3
    assert queries.list_stands(session, rep=OTHER_REP.user) == []
    assert len(queries.list_stands(session, location_type="kiosk")) == 3
    assert queries.list_stands(session, location_type="cafe") == []


def test_sorting_and_paging(session: Session, three: dict[str, StandFixture]) -> None:
    names = [r.name for r in queries.list_stands(session)]
    assert names == sorted(names)
    desc = [r.name for r in queries.list_stands(session, descending=True)]
    assert desc == sorted(names, reverse=True)
    by_status = [r.status for r in queries.list_stands(session, order_by="status")]
    assert by_status == sorted(by_status)
    page1 = queries.list_stands(session, limit=2)
    page2 = queries.list_stands(session, limit=2, offset=2)
    assert [r.name for r in page1 + page2] == names


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"status": "open"}, "status"),
        ({"location_type": "castle"}, "location_type"),
        ({"order_by": "revenue"}, "order_by"),
    ],
)
def test_unknown_filter_values_are_refused(
    session: Session, three: dict[str, StandFixture], kwargs: dict[str, str], field: str
) -> None:
    with pytest.raises(ValidationError) as err:
        queries.list_stands(session, **kwargs)
    assert err.value.field == field
    assert "use one of" in err.value.message


def test_stand_detail(session: Session, three: dict[str, StandFixture]) -> None:
    kiosk = three["Kiosk Nord"]
    detail = queries.stand_detail(session, kiosk.stand_id)
    assert detail.stand.name == "Kiosk Nord"
    assert (detail.package_code, detail.tier_code) == ("growth", "bronze")
    assert detail.loyalty_balance == loyalty.balance(session, kiosk.partner_id) > 0
    assert detail.qr_payload.endswith(detail.payment_reference)
    assert {line.state for line in detail.inventory} == {"ok"}
    cafe = queries.stand_detail(session, three["Café Süd"].stand_id)
    assert {line.state for line in cafe.inventory} == {"out"}
    with pytest.raises(NotFound):
        queries.stand_detail(session, "01a20b3f-0000-7000-8000-000000000000")


def test_list_refills(session: Session, three: dict[str, StandFixture]) -> None:
    cafe = three["Café Süd"]
    first = refills.request_refill(session, REP, cafe.stand_id)
    second = refills.request_refill(
        session, REP, three["Kiosk Nord"].stand_id, {three["Kiosk Nord"].product_ids[0]: 3}
    )
    refills.reject_refill(session, MANAGER, second.refill_id, "Stand is full")
    rows = queries.list_refills(session)
    assert {r.id for r in rows} == {first.refill_id, second.refill_id}
    assert [r.id for r in queries.list_refills(session, status="requested")] == [first.refill_id]
    assert [r.id for r in queries.list_refills(session, stand_id=cafe.stand_id)] == [
        first.refill_id
    ]
    row = next(r for r in rows if r.id == first.refill_id)
    assert (row.stand_name, row.line_count, row.total) == (
        "Café Süd",
        len(first.lines),
        first.total,
    )
    assert _by_name(queries.list_stands(session))["Café Süd"].open_refills == 1
    with pytest.raises(ValidationError):
        queries.list_refills(session, status="lost")


def test_list_partners(session: Session, three: dict[str, StandFixture]) -> None:
    rows = {r.name: r for r in queries.list_partners(session)}
    assert set(rows) == {"Kiosk Nord GmbH", "Café Süd GmbH", "Apotheke West GmbH"}
    kiosk = rows["Kiosk Nord GmbH"]
    assert (kiosk.package_code, kiosk.tier_code, kiosk.stand_count) == ("growth", "bronze", 1)
    assert kiosk.loyalty_balance == loyalty.balance(session, kiosk.id)
    assert rows["Apotheke West GmbH"].status == "onboarding"
    assert rows["Apotheke West GmbH"].loyalty_balance == 0
    assert [r.name for r in queries.list_partners(session, search="süd")] == ["Café Süd GmbH"]
    assert [r.name for r in queries.list_partners(session, status="onboarding")] == [
        "Apotheke West GmbH"
    ]
    with pytest.raises(ValidationError):
        queries.list_partners(session, status="gone")
