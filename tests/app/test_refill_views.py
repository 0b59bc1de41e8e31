"""Read models of refills for the screens (app/services/refill_views.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from app.clock import utcnow
from app.db import SessionFactory
from app.errors import NotFound, ValidationError
from app.models import DiscrepancyStatus, RefillStatus, StandStatus
from app.services import inventory, refills
from app.services.refill_views import (
    STATE_FILTERS,
    known_dealers,
    refill_detail,
    refill_form,
    refill_list,
    refillable_stands,
)
from tests.conftest import MANAGER, PARTNER, REP, CatalogProduct, StandFixture, make_stand


def _tomorrow() -> date:
    return (utcnow() + timedelta(days=2)).date()


@pytest.fixture
def two(factory: SessionFactory, catalog: list[CatalogProduct]) -> tuple[StandFixture, ...]:
    with factory() as s:
        return (
            make_stand(s, name="Kiosk am Markt", products=[c.id for c in catalog[:4]]),
            make_stand(s, name="Café Central", products=[c.id for c in catalog[4:8]]),
        )


def _through_confirm(s, stand: StandFixture, received: dict[str, int] | None = None) -> str:
    p = stand.product_ids
    rid = refills.request_refill(s, REP, stand.stand_id, {p[0]: 10, p[1]: 6}).refill_id
    refills.approve_refill(s, MANAGER, rid, {p[1]: 4})
    refills.schedule_refill(s, MANAGER, rid, _tomorrow(), "Spree Frischdienst")
    refills.deliver_refill(s, REP, rid)
    refills.confirm_refill(s, PARTNER, rid, received or {})
    return rid


def test_detail_has_lines_stamps_discrepancies_and_timeline(factory, two) -> None:
    stand = two[0]
    p = stand.product_ids
    with factory() as s:
        rid = _through_confirm(s, stand, {p[0]: 8})
        d = refill_detail(s, rid)
    assert d.stand_name == "Kiosk am Markt"
    assert d.partner_name == "Kiosk am Markt GmbH"
    assert d.status == RefillStatus.CONFIRMED
    assert (d.requested_by, d.approved_by, d.scheduled_by) == (REP.user, MANAGER.user, MANAGER.user)
    assert (d.delivered_by, d.confirmed_by) == (REP.user, PARTNER.user)
    assert d.dealer == "Spree Frischdienst"
    assert d.scheduled_for == _tomorrow()
    first, second = d.lines
    assert (first.product_id, first.requested, first.approved) == (p[0], 10, 10)
    assert (first.delivered, first.received, first.current) == (10, 8, 8)
    assert (second.requested, second.approved, second.delivered, second.received) == (6, 4, 4, 4)
    assert first.sku
    assert first.name
    (disc,) = d.discrepancies
    assert (disc.product_id, disc.delivered, disc.received, disc.difference) == (p[0], 10, 8, -2)
    assert disc.status == DiscrepancyStatus.OPEN
    assert disc.is_open
    assert d.open_discrepancies == (disc,)
    assert [e.action for e in d.events] == ["request", "approve", "schedule", "deliver", "confirm"]
    assert d.events[2].scheduled_for == _tomorrow()
    assert d.events[2].dealer == "Spree Frischdienst"
    assert d.events[4].discrepancies == 1
    assert d.events[4].actor == PARTNER.user
    assert d.events[4].role == "partner"
    assert all(e.occurred_at.tzinfo is not None for e in d.events)

    with factory() as s:
        refills.resolve_discrepancy(s, MANAGER, disc.id, accept_received=True, note="Driver")
        after = refill_detail(s, rid)
    assert after.open_discrepancies == ()
    assert after.discrepancies[0].status == DiscrepancyStatus.ACCEPTED_RECEIVED
    assert after.discrepancies[0].resolved_by == MANAGER.user
    assert after.discrepancies[0].resolution_note == "Driver"


def test_detail_gives_the_stands_own_date(factory, two) -> None:
    """The earliest delivery date is the stand's date (Berlin), which late in the UTC
    evening is already the next day; the service accepts that date and no earlier one."""
    with factory() as s:
        rid = refills.request_refill(s, REP, two[0].stand_id, {two[0].product_ids[0]: 5}).refill_id
        refills.approve_refill(s, MANAGER, rid)
        late = datetime.combine(utcnow().date() + timedelta(days=1), time(23, 30), tzinfo=UTC)
        early = late.replace(hour=12)
        assert refill_detail(s, rid, now=early).stand_today == early.date()
        day = refill_detail(s, rid, now=late).stand_today
        assert day == late.date() + timedelta(days=1)
        with pytest.raises(ValidationError, match="in the past"):
            refills.schedule_refill(s, MANAGER, rid, day - timedelta(days=1), "Depot", now=late)
        refills.schedule_refill(s, MANAGER, rid, day, "Depot", now=late)
        assert refill_detail(s, rid).scheduled_for == day


def test_a_refill_delivered_in_parts_shows_what_arrived_and_what_is_to_come(factory, two) -> None:
    stand = two[0]
    p = stand.product_ids
    with factory() as s:
        rid = refills.request_refill(s, REP, stand.stand_id, {p[0]: 10, p[1]: 6}).refill_id
        refills.approve_refill(s, MANAGER, rid)
        refills.schedule_refill(s, MANAGER, rid, _tomorrow(), "Spree Frischdienst")
        refills.deliver_refill(s, REP, rid, {p[0]: 6, p[1]: 0}, more_to_come=True)
        part = refill_detail(s, rid)
        (row,) = [r for r in refill_list(s) if r.id == rid]
        refills.deliver_refill(s, REP, rid, {p[0]: 4, p[1]: 6})
        done = refill_detail(s, rid)
        (row_done,) = [r for r in refill_list(s) if r.id == rid]

    assert part.status == RefillStatus.SCHEDULED
    assert part.partly_delivered
    assert (part.delivered_units, part.approved_units, part.units) == (6, 16, 16)
    assert part.delivered_by is None
    first, second = part.lines
    assert (first.approved, first.delivered, first.to_come, first.current) == (10, 6, 4, 10)
    assert (second.approved, second.delivered, second.to_come, second.current) == (6, 0, 6, 6)
    (delivery,) = part.deliveries
    assert (delivery.to_status, delivery.units, delivery.units_total) == (
        RefillStatus.SCHEDULED,
        6,
        6,
    )
    assert delivery.partial
    assert row.partly_delivered
    assert (row.delivered_units, row.units) == (6, 16)

    assert done.status == RefillStatus.DELIVERED
    assert not done.partly_delivered
    assert [line.to_come for line in done.lines] == [None, None]
    assert [line.current for line in done.lines] == [10, 6]
    assert [(e.to_status, e.units, e.units_total, e.partial) for e in done.deliveries] == [
        (RefillStatus.SCHEDULED, 6, 6, True),
        (RefillStatus.DELIVERED, 10, 16, False),
    ]
    assert done.delivered_by == REP.user
    assert not row_done.partly_delivered
    assert row_done.delivered_units == 16


def test_a_delivery_in_one_go_reads_as_before(factory, two) -> None:
    with factory() as s:
        rid = _through_confirm(s, two[0])
        d = refill_detail(s, rid)
    (delivery,) = d.deliveries
    assert (delivery.units, delivery.units_total, delivery.partial) == (14, 14, False)
    assert not d.partly_delivered
    assert all(line.to_come is None for line in d.lines)


def test_closed_refills_keep_their_reason(factory, two) -> None:
    p = two[0].product_ids
    with factory() as s:
        rid = refills.request_refill(s, REP, two[0].stand_id, {p[0]: 3}).refill_id
        refills.reject_refill(s, MANAGER, rid, "Stand closes next week")
        d = refill_detail(s, rid)
    assert d.status == RefillStatus.REJECTED
    assert (d.closed_by, d.close_reason) == (MANAGER.user, "Stand closes next week")
    assert d.events[-1].reason == "Stand closes next week"


def test_detail_of_an_unknown_refill_is_not_found(factory, two) -> None:
    with factory() as s, pytest.raises(NotFound):
        refill_detail(s, "01890000-0000-7000-8000-000000000000")


def test_list_filters_by_state_stand_and_text(factory, two) -> None:
    kiosk, cafe = two
    with factory() as s:
        confirmed = _through_confirm(s, kiosk, {kiosk.product_ids[0]: 9})
        requested = refills.request_refill(
            s, REP, cafe.stand_id, {cafe.product_ids[0]: 5}
        ).refill_id
        cancelled = refills.request_refill(
            s, REP, cafe.stand_id, {cafe.product_ids[1]: 5}
        ).refill_id
        refills.cancel_refill(s, REP, cancelled, "Asked twice")

        def ids(**kw: object) -> list[str]:
            return [r.id for r in refill_list(s, **kw)]

        assert ids() == [cancelled, requested, confirmed]  # newest request first
        assert ids(state="open") == [requested]
        assert ids(state="confirmed") == [confirmed]
        assert ids(state="cancelled") == [cancelled]
        assert ids(state="discrepancy") == [confirmed]
        assert ids(stand_id=kiosk.stand_id) == [confirmed]
        assert ids(search="café") == [cancelled, requested]
        assert ids(search="FRISCH") == [confirmed]  # the dealer
        assert ids(search="nothing like it") == []
        rows = {r.id: r for r in refill_list(s)}
    row = rows[confirmed]
    assert (row.stand_name, row.city, row.line_count, row.units) == (
        "Kiosk am Markt",
        "Berlin",
        2,
        14,
    )
    assert row.open_discrepancies == 1
    assert row.dealer == "Spree Frischdienst"
    assert row.scheduled_for == _tomorrow()
    assert rows[requested].units == 5
    assert rows[requested].scheduled_for is None
    assert set(STATE_FILTERS) >= {s.value for s in RefillStatus}


def test_list_refuses_an_unknown_state(factory, two) -> None:
    with factory() as s, pytest.raises(ValidationError) as exc:
        refill_list(s, state="lost")
    assert exc.value.field == "state"


def test_form_prefills_the_suggestion_and_lists_open_refills(factory, two) -> None:
    stand = two[0]
    p = stand.product_ids
    with factory() as s:
        inventory.record_count(s, REP, stand.stand_id, {p[0]: 0, p[1]: 2, p[2]: 60, p[3]: 1})
        form = refill_form(s, stand.stand_id)
        suggestion = refills.suggest_refill(s, stand.stand_id)
        rid = refills.request_refill(s, REP, stand.stand_id, {p[0]: 4}).refill_id
        again = refill_form(s, stand.stand_id)
    assert form.stand_name == "Kiosk am Markt"
    assert form.can_request
    assert {line.product_id for line in form.lines} == set(p)
    assert {line.product_id: line.suggested for line in form.lines if line.suggested} == suggestion
    by_id = {line.product_id: line for line in form.lines}
    assert by_id[p[2]].suggested == 0
    assert by_id[p[2]].on_hand == 60
    assert by_id[p[0]].pack_size >= 1
    assert by_id[p[0]].par_level >= by_id[p[0]].reorder_point
    assert form.open_refills == ()
    (open_refill,) = again.open_refills
    assert (open_refill.id, open_refill.status, open_refill.units) == (
        rid,
        RefillStatus.REQUESTED,
        4,
    )


def test_refillable_stands_and_dealers(factory, two, catalog) -> None:
    with factory() as s:
        planned = make_stand(s, name="Apotheke Nord", activate=False, products=[catalog[9].id])
        _through_confirm(s, two[0])
        names = [c.name for c in refillable_stands(s)]
        form = refill_form(s, planned.stand_id)
        dealers = known_dealers(s)
    assert names == ["Apotheke Nord", "Café Central", "Kiosk am Markt"]
    assert form.stand_status == StandStatus.PLANNED
    assert form.can_request
    assert dealers == ["Spree Frischdienst"]
