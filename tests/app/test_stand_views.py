"""Queries behind the stand list and stand detail: ids for filters and sort, rows by id in
the ids' order, filter choices, recent orders with items, counts with lines, loyalty."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.db import SessionFactory
from app.demo import generate_demo
from app.errors import NotFound, ValidationError
from app.models import LoyaltyKind
from app.services import inventory, loyalty, onboarding, queries, refills, sales
from app.services.stand_views import (
    SORT_KEYS,
    StandFilters,
    count_snapshots,
    filter_choices,
    loyalty_overview,
    recent_orders,
    rows_for_ids,
    stand_ids,
)
from tests.conftest import MANAGER, OTHER_REP, REP, CatalogProduct, StandFixture


def _onboard(
    session: Session,
    name: str,
    *,
    city: str = "Berlin",
    location_type: str = "kiosk",
    rep: str | None = REP.user,
    activate: bool = True,
) -> StandFixture:
    result = onboarding.onboard_partner(
        session,
        REP,
        onboarding.PartnerInput(name=f"{name} GmbH", contact_name="Eva", package_code="growth"),
        onboarding.StandInput(
            name=name,
            address=f"{name}straße 1",
            city=city,
            location_type=location_type,
            capacity_units=240,
            assigned_rep=rep,
        ),
    )
    if activate:
        loyalty.activate_partner(session, REP, result.partner_id)
    assert result.stand is not None
    return StandFixture(result.partner_id, result.stand.stand_id, result.stand.product_ids)


def _fill(session: Session, stand_id: str) -> None:
    """Count every SKU at par: stocked, counted today, needs nothing."""
    detail = queries.stand_detail(session, stand_id)
    inventory.record_count(
        session, REP, stand_id, {line.product_id: line.par_level for line in detail.inventory}
    )


@pytest.fixture
def four(session: Session, catalog: list[CatalogProduct]) -> dict[str, StandFixture]:
    stands = {
        "Kiosk Nord": _onboard(session, "Kiosk Nord"),
        "Café Süd": _onboard(session, "Café Süd", city="München", location_type="cafe"),
        "Apotheke West": _onboard(
            session, "Apotheke West", location_type="pharmacy", rep=OTHER_REP.user, activate=False
        ),
        "Bäckerei Ost": _onboard(session, "Bäckerei Ost", city="Hamburg", rep=None),
    }
    _fill(session, stands["Kiosk Nord"].stand_id)
    _fill(session, stands["Bäckerei Ost"].stand_id)
    return stands


def _names(session: Session, ids: tuple[str, ...]) -> list[str]:
    return [r.name for r in rows_for_ids(session, ids)]


# --------------------------------------------------------------------------- the id list


def test_ids_follow_sort_and_count_attention(
    session: Session, four: dict[str, StandFixture]
) -> None:
    result = stand_ids(session)
    assert _names(session, result.ids) == sorted(four)
    assert (result.total, result.program_total) == (4, 4)
    assert result.attention == 1  # Café Süd: active and empty
    desc = stand_ids(session, order_by="name", descending=True)
    assert desc.ids == tuple(reversed(result.ids))
    by_city = stand_ids(session, order_by="city")
    assert [r.city for r in rows_for_ids(session, by_city.ids)] == sorted(
        ["Berlin", "München", "Berlin", "Hamburg"]
    )


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (StandFilters(search="süd"), {"Café Süd"}),
        (StandFilters(search="  NORD gmbh "), {"Kiosk Nord"}),
        (StandFilters(search="oststraße"), {"Bäckerei Ost"}),  # address
        (StandFilters(search="hamburg"), {"Bäckerei Ost"}),  # city
        (StandFilters(status="planned"), {"Apotheke West"}),
        (StandFilters(location_type="cafe"), {"Café Süd"}),
        (StandFilters(rep="rep.ben"), {"Apotheke West"}),
        (StandFilters(needs_attention=True), {"Café Süd"}),
        (StandFilters(needs_attention=False), {"Kiosk Nord", "Apotheke West", "Bäckerei Ost"}),
        (StandFilters(status="active", location_type="kiosk"), {"Kiosk Nord", "Bäckerei Ost"}),
        (StandFilters(search="nothing like this"), set()),
        (StandFilters(status="", rep="", search=""), None),  # empty means any
    ],
)
def test_filters(
    session: Session,
    four: dict[str, StandFixture],
    filters: StandFilters,
    expected: set[str] | None,
) -> None:
    result = stand_ids(session, filters)
    assert set(_names(session, result.ids)) == (set(four) if expected is None else expected)
    assert result.program_total == 4


def test_partner_filter_and_active_flag(session: Session, four: dict[str, StandFixture]) -> None:
    cafe = four["Café Süd"]
    result = stand_ids(session, StandFilters(partner_id=cafe.partner_id))
    assert result.ids == (cafe.stand_id,)
    assert StandFilters(partner_id=cafe.partner_id).active
    assert not StandFilters().active
    assert not StandFilters(search="   ").active
    assert StandFilters(needs_attention=False).active


def test_sort_by_stock_figures(session: Session, four: dict[str, StandFixture]) -> None:
    kiosk = four["Kiosk Nord"]
    line = queries.stand_detail(session, kiosk.stand_id).inventory[0]
    sales.record_sale(
        session, REP, kiosk.stand_id, [sales.SaleLine(line.product_id, line.on_hand)], "cash"
    )
    refills.request_refill(session, REP, four["Café Süd"].stand_id)
    rows = {r.id: r for r in queries.list_stands(session)}
    for key, attr in [
        ("units", "units_on_hand"),
        ("low", "low_count"),
        ("out", "out_count"),
        ("open_refills", "open_refills"),
    ]:
        for descending in (False, True):
            ids = stand_ids(session, order_by=key, descending=descending).ids
            values = [getattr(rows[i], attr) for i in ids]
            assert values == sorted(values, reverse=descending), key
    # Never counted (no date) sorts as the smallest value.
    ids = stand_ids(session, order_by="last_count").ids
    dates = [rows[i].last_counted_at for i in ids]
    assert dates[:2] == [None, None]
    assert all(d is not None for d in dates[2:])
    # ... and the largest when the order is reversed.
    assert set(stand_ids(session, order_by="last_count", descending=True).ids[-2:]) == set(ids[:2])


def test_every_sort_key_is_total_and_refuses_unknown(
    session: Session, four: dict[str, StandFixture]
) -> None:
    for key in SORT_KEYS:
        for descending in (False, True):
            ids = stand_ids(session, order_by=key, descending=descending).ids
            assert sorted(ids) == sorted(f.stand_id for f in four.values())
            assert ids == stand_ids(session, order_by=key, descending=descending).ids
    with pytest.raises(ValidationError) as err:
        stand_ids(session, order_by="id; drop table stand_location")
    assert err.value.field == "order_by"
    with pytest.raises(ValidationError):
        stand_ids(session, StandFilters(status="burning"))
    with pytest.raises(ValidationError):
        stand_ids(session, StandFilters(location_type="moon"))


def test_attention_follows_count_age_and_low_stock(
    session: Session, four: dict[str, StandFixture]
) -> None:
    later = utcnow() + timedelta(days=queries.COUNT_OVERDUE_DAYS + 1)
    result = stand_ids(session, StandFilters(needs_attention=True), now=later)
    assert set(_names(session, result.ids)) == {"Kiosk Nord", "Café Süd", "Bäckerei Ost"}
    kiosk = four["Kiosk Nord"]
    line = queries.stand_detail(session, kiosk.stand_id).inventory[0]
    sales.record_sale(
        session,
        REP,
        kiosk.stand_id,
        [sales.SaleLine(line.product_id, line.on_hand - line.reorder_point)],
        "cash",
    )
    result = stand_ids(session, StandFilters(needs_attention=True))
    assert set(_names(session, result.ids)) == {"Kiosk Nord", "Café Süd"}
    assert result.attention == 2


# --------------------------------------------------------------------------- rows by id


def test_rows_for_ids_keep_the_order_asked(session: Session, four: dict[str, StandFixture]) -> None:
    ids = [four[n].stand_id for n in ("Café Süd", "Kiosk Nord", "Apotheke West")]
    rows = rows_for_ids(session, ids)
    assert [r.id for r in rows] == ids
    # Same rows as the list query gives.
    full = {r.id: r for r in queries.list_stands(session)}
    assert rows == [full[i] for i in ids]
    # Unknown ids are left out; repeats are given once; nothing asked, nothing given.
    assert [r.id for r in rows_for_ids(session, [ids[1], "nope", ids[1]])] == [ids[1]]
    assert rows_for_ids(session, []) == []
    with pytest.raises(ValidationError):
        rows_for_ids(session, [f"id-{i}" for i in range(5000)])


def test_filter_choices(session: Session, four: dict[str, StandFixture]) -> None:
    onboarding.onboard_partner(
        session,
        REP,
        onboarding.PartnerInput(
            name="Lead Without Stand", contact_name="X", package_code="starter"
        ),
    )
    choices = filter_choices(session)
    assert choices.reps == ("rep.anna", "rep.ben")
    assert [p.name for p in choices.partners] == sorted(f"{n} GmbH" for n in four)
    assert {p.id for p in choices.partners} == {f.partner_id for f in four.values()}
    cafe = next(p for p in choices.partners if p.id == four["Café Süd"].partner_id)
    assert (cafe.city, cafe.stands) == ("München", 1)


def test_matches_list_stands_on_a_demo_program(factory: SessionFactory) -> None:
    """Same ids, order and attention as ``queries.list_stands`` on realistic data (counts of
    every age, stock-outs, paused and planned stands), for each sort and filter."""
    generate_demo(factory, stands=40, days=60, seed=3)
    with factory() as s:
        now = utcnow()
        for key in ("name", "city", "partner", "status", "type", "rep"):
            for descending in (False, True):
                expected = queries.list_stands(s, order_by=key, descending=descending, now=now)
                got = stand_ids(s, order_by=key, descending=descending, now=now)
                assert list(got.ids) == [r.id for r in expected], key
                assert got.attention == sum(r.needs_attention for r in expected)
        for flag in (True, False):
            expected = queries.list_stands(s, needs_attention=flag, now=now)
            got = stand_ids(s, StandFilters(needs_attention=flag), now=now)
            assert list(got.ids) == [r.id for r in expected]
        everything = queries.list_stands(s, now=now)
        assert 0 < sum(r.needs_attention for r in everything) < len(everything)
        ids = [r.id for r in everything]
        assert rows_for_ids(s, ids[::-1], now=now) == everything[::-1]


# --------------------------------------------------------------------------- sales tab


def test_recent_orders_with_items_and_voids(
    session: Session, four: dict[str, StandFixture]
) -> None:
    kiosk = four["Kiosk Nord"]
    lines = queries.stand_detail(session, kiosk.stand_id).inventory
    t0 = utcnow() - timedelta(hours=3)
    first = sales.record_sale(
        session,
        REP,
        kiosk.stand_id,
        [sales.SaleLine(lines[0].product_id, 2), sales.SaleLine(lines[1].product_id, 1)],
        "cash",
        occurred_at=t0,
    )
    second = sales.record_sale(
        session,
        REP,
        kiosk.stand_id,
        [sales.SaleLine(lines[2].product_id, 1, Decimal("3.00"))],
        "qr",
        occurred_at=t0 + timedelta(hours=1),
    )
    void = sales.void_sale(session, REP, first.order_id, occurred_at=t0 + timedelta(hours=2))
    orders = recent_orders(session, kiosk.stand_id)
    assert [o.id for o in orders] == [void.void_order_id, second.order_id, first.order_id]
    v, s2, s1 = orders
    assert (v.kind, v.is_void, v.voided_order_id) == ("void", True, first.order_id)
    assert v.total == -first.total
    assert (s1.voided, s1.voided_by, s2.voided) == (True, void.void_order_id, False)
    assert s1.payment_method == "cash"
    assert s2.payment_method == "qr"
    assert [(i.name, i.quantity) for i in s1.items] == [
        (lines[0].name, 2),
        (lines[1].name, 1),
    ]
    assert s1.units == 3
    assert v.units == -3
    item = s2.items[0]
    assert (item.unit_price, item.line_total, item.price_overridden) == (
        Decimal("3.00"),
        Decimal("3.00"),
        True,
    )
    assert item.sku.startswith("SKU-")
    assert [o.id for o in recent_orders(session, kiosk.stand_id, limit=1)] == [void.void_order_id]
    assert recent_orders(session, four["Café Süd"].stand_id) == []
    with pytest.raises(NotFound):
        recent_orders(session, "01234567-89ab-7def-8123-456789abcdef")


# --------------------------------------------------------------------------- counts tab


def test_count_snapshots_with_variance(session: Session, four: dict[str, StandFixture]) -> None:
    kiosk = four["Kiosk Nord"]
    lines = queries.stand_detail(session, kiosk.stand_id).inventory
    counted = {lines[0].product_id: lines[0].on_hand - 3, lines[1].product_id: lines[1].on_hand}
    later = utcnow() + timedelta(minutes=5)
    result = inventory.record_count(session, REP, kiosk.stand_id, counted, counted_at=later)
    snaps = count_snapshots(session, kiosk.stand_id)
    assert len(snaps) == 2
    newest = snaps[0]
    assert newest.id == result.snapshot_id
    assert newest.source == "count"
    assert newest.actor == REP.user
    assert len(newest.lines) == 2
    # The largest variance comes first.
    top = newest.lines[0]
    assert (top.product_id, top.expected, top.counted, top.variance) == (
        lines[0].product_id,
        lines[0].on_hand,
        lines[0].on_hand - 3,
        -3,
    )
    assert top.name == lines[0].name
    assert top.variance_value == -3 * lines[0].list_price
    assert (newest.total_variance, newest.lines_off) == (-3, 1)
    assert newest.variance_value == -3 * lines[0].list_price
    # The first count (from nothing to par) is older and complete.
    assert len(snaps[1].lines) == len(lines)
    assert snaps[1].total_variance == sum(line.par_level for line in lines)
    assert [s.id for s in count_snapshots(session, kiosk.stand_id, limit=1)] == [newest.id]
    assert count_snapshots(session, four["Café Süd"].stand_id) == []


# --------------------------------------------------------------------------- loyalty tab


def test_loyalty_overview(session: Session, four: dict[str, StandFixture]) -> None:
    kiosk = four["Kiosk Nord"]
    lines = queries.stand_detail(session, kiosk.stand_id).inventory
    sales.record_sale(
        session, REP, kiosk.stand_id, [sales.SaleLine(lines[0].product_id, 5)], "card"
    )
    loyalty.adjust_points(session, MANAGER, kiosk.partner_id, 40, note="Launch bonus", bonus=True)
    overview = loyalty_overview(session, kiosk.partner_id)
    assert overview.balance == loyalty.balance(session, kiosk.partner_id)
    assert overview.tier == loyalty.tier_status(session, kiosk.partner_id)
    assert overview.entries == tuple(loyalty.ledger(session, kiosk.partner_id))
    assert overview.entries[0].kind == LoyaltyKind.BONUS
    assert overview.tier_threshold == 0  # the entry tier
    assert overview.next_threshold is not None
    assert overview.next_threshold > overview.tier.earned_in_window
    expected = overview.tier.earned_in_window / overview.next_threshold
    assert overview.progress == pytest.approx(expected)
    assert overview.window_days > 0
    assert len(loyalty_overview(session, kiosk.partner_id, limit=1).entries) == 1
    with pytest.raises(NotFound):
        loyalty_overview(session, "01234567-89ab-7def-8123-456789abcdef")
