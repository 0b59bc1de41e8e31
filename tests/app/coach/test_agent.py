"""The coach agent end to end on the small program of test_insights: the run, keeping the
stored insights current, the stand outlook, and what a person does with an insight."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from app.coach import insights as rules
from app.coach.agent import (
    RETIRED_REASON,
    acknowledge_insight,
    dismiss_insight,
    get_insight,
    list_insights,
    mark_insight_done,
    run_coach,
    stand_outlook,
)
from app.coach.insights import Thresholds
from app.db import SessionFactory
from app.errors import InvalidTransition, NotFound, PermissionDenied, ValidationError
from app.models import ChangeLog, InsightStatus, LoyaltyTier, Severity, StandAIInsight
from app.reference import reference_id
from app.services import inventory, loyalty, onboarding, sales
from app.services.sales import SaleLine
from tests.app.coach.test_insights import (
    NOW,
    World,
)
from tests.conftest import MANAGER, PARTNER, REP

World_ = tuple[SessionFactory, World]


def _rows(sm: SessionFactory) -> dict[str, StandAIInsight]:
    with sm() as s, s.begin():
        return {r.dedup_key: r for r in s.scalars(select(StandAIInsight))}


def _ops(sm: SessionFactory) -> int:
    with sm() as s, s.begin():
        return int(s.scalar(select(func.count()).select_from(ChangeLog)) or 0)


def _one(sm: SessionFactory, kind: str, stand_id: str) -> StandAIInsight:
    (row,) = [r for r in _rows(sm).values() if r.kind == kind and r.stand_id == stand_id]
    return row


def test_run_stores_what_it_finds(world: World_) -> None:
    sm, w = world
    ops = _ops(sm)
    with sm() as s:
        run = run_coach(s, now=NOW)
    assert run.stands == 6
    assert run.series == 28
    assert run.at == NOW
    assert run.created == len(run.insights) > 0
    assert (run.updated, run.unchanged, run.retired, run.kept_closed) == (0, 0, 0, 0)
    assert [name for name, _ in run.timings] == ["load", "forecast", "policy", "insights", "store"]
    kinds = {i.kind for i in run.insights}
    assert {
        rules.SLOW_MOVER,
        rules.TREND_BREAK,
        rules.BELOW_PEERS,
        rules.COUNT_OVERDUE,
    } <= kinds
    # Critical first.
    order = [i.severity for i in run.insights]
    rank = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
    assert order == sorted(order, key=rank.__getitem__)

    rows = _rows(sm)
    assert set(rows) == {i.dedup_key for i in run.insights}
    for i in run.insights:
        row = rows[i.dedup_key]
        assert row.status == InsightStatus.NEW
        assert row.model_version == run.model_version
        assert (row.kind, row.severity, row.message) == (i.kind, i.severity, i.message)
        assert (row.stand_id, row.product_id) == (i.stand_id, i.product_id)
    # Derived data: a coach run writes nothing to the change log.
    assert _ops(sm) == ops

    # Refills: only what to refill, riskiest first, within capacity, in whole packs.
    recs = run.recommendations
    assert recs
    assert all(r.quantity > 0 for r in recs)
    risks = [r.reason.stockout_risk for r in recs]
    assert risks == sorted(risks, reverse=True)
    for r in recs:
        assert r.quantity <= r.reason.capacity - max(r.reason.on_hand, 0) - r.reason.on_order
        assert r.quantity % r.reason.pack_size == 0
        assert r.value == (r.unit_price * r.quantity).quantize(Decimal("0.01"))
        assert r.message.startswith("Expected ")
    # K1's D is dead: nothing for it.
    assert not [r for r in recs if r.stand_id == w.stand["K1"] and r.product_id == w.product["D"]]
    assert {r.stand_id for r in run.stand_risks} == set(w.stand.values())
    assert run.stand_names[w.stand["K3"]] == "Kiosk K3"


def test_a_second_run_updates_instead_of_duplicating(world: World_) -> None:
    sm, w = world
    with sm() as s:
        first = run_coach(s, now=NOW)
    ids = {k: r.id for k, r in _rows(sm).items()}
    with sm() as s:
        again = run_coach(s, now=NOW)
    assert (again.created, again.updated, again.retired) == (0, 0, 0)
    assert again.unchanged == len(first.insights)
    assert {k: r.id for k, r in _rows(sm).items()} == ids

    # One of K1's D goes missing today: the slow mover's evidence changes, same row.
    with sm() as s:
        sales.record_sale(
            s, REP, w.stand["K1"], [SaleLine(w.product["D"], 1)], "cash", occurred_at=NOW
        )
    key = f"slow_mover:{w.stand['K1']}:{w.product['D']}:2026-Q1"
    before = _rows(sm)[key]
    later = NOW + timedelta(hours=1)
    with sm() as s:
        third = run_coach(s, now=later)
    assert third.created == 0
    assert third.updated >= 1
    after = _rows(sm)[key]
    assert after.id == before.id
    assert "19 on hand" in after.message
    assert '"on_hand":19' in after.evidence
    assert after.updated_at == later
    assert after.created_at == before.created_at
    assert len(_rows(sm)) == len(ids)


def test_dismissed_and_done_insights_stay_closed(world: World_) -> None:
    sm, w = world
    with sm() as s:
        run_coach(s, now=NOW)
    slow = _one(sm, rules.SLOW_MOVER, w.stand["K1"])
    trend = _one(sm, rules.TREND_BREAK, w.stand["K3"])
    with sm() as s:
        dismiss_insight(s, REP, slow.id, "Seasonal: keeps its slot until summer", now=NOW)
        mark_insight_done(s, MANAGER, trend.id, "Shelf fixed", now=NOW)
    later = NOW + timedelta(hours=1)
    with sm() as s:
        # K1's D changes on hand, so the coach would have new numbers to write.
        sales.record_sale(
            s, REP, w.stand["K1"], [SaleLine(w.product["D"], 1)], "cash", occurred_at=NOW
        )
        run = run_coach(s, now=later)
    assert run.kept_closed == 2
    rows = _rows(sm)
    assert rows[slow.dedup_key].status == InsightStatus.DISMISSED
    assert rows[slow.dedup_key].status_reason == "Seasonal: keeps its slot until summer"
    assert rows[slow.dedup_key].message == slow.message  # not rewritten
    assert rows[trend.dedup_key].status == InsightStatus.DONE
    assert rows[trend.dedup_key].status_reason == "Shelf fixed"
    with sm() as s:
        open_ids = {v.id for v in list_insights(s)}
    assert slow.id not in open_ids
    assert trend.id not in open_ids


def test_insights_that_no_longer_apply_are_retired(world: World_) -> None:
    sm, w = world
    with sm() as s:
        run_coach(s, now=NOW)
    count = _one(sm, rules.COUNT_OVERDUE, w.stand["K4"])
    peers = _one(sm, rules.BELOW_PEERS, w.stand["K6"])
    with sm() as s:
        acknowledge_insight(s, REP, count.id, now=NOW)
        # K4 gets counted: its overdue count no longer applies.
        inventory.record_count(s, REP, w.stand["K4"], {w.product["A"]: 20}, counted_at=NOW)
        # Nobody looked at K6's insight; with the peer rule off it no longer holds.
        run = run_coach(s, now=NOW + timedelta(hours=1), thresholds=Thresholds(peers_warning=0.0))
    assert run.retired == 2
    rows = _rows(sm)
    # The acknowledged one is closed as done, with the coach's reason...
    assert rows[count.dedup_key].status == InsightStatus.DONE
    assert rows[count.dedup_key].status_reason == RETIRED_REASON
    # ...the new one is gone.
    assert peers.dedup_key not in rows
    assert [r.status for r in rows.values() if r.kind == rules.COUNT_OVERDUE] == [
        InsightStatus.DONE
    ]


def test_an_insight_the_coach_closed_reopens_when_it_returns(world: World_) -> None:
    sm, w = world
    with sm() as s:
        earned = loyalty.tier_status(s, w.partner["K5"], now=NOW).earned_in_window

    def silver(threshold: int) -> None:
        with sm() as s, s.begin():
            s.execute(
                update(LoyaltyTier)
                .where(LoyaltyTier.id == reference_id("tier", "silver"))
                .values(threshold_points=threshold)
            )

    def tier_row() -> StandAIInsight:
        (row,) = [
            r
            for r in _rows(sm).values()
            if r.kind == rules.TIER_WITHIN_REACH and w.partner["K5"] in r.dedup_key
        ]
        return row

    silver(earned + 30)
    with sm() as s:
        run_coach(s, now=NOW)
    first = tier_row()
    with sm() as s:
        acknowledge_insight(s, REP, first.id, now=NOW)
    silver(earned + 5000)  # out of reach: the coach closes it
    with sm() as s:
        run_coach(s, now=NOW + timedelta(hours=1))
    assert tier_row().status == InsightStatus.DONE
    assert tier_row().status_reason == RETIRED_REASON
    silver(earned + 30)  # within reach again, the same month: the same insight, open again
    with sm() as s:
        run = run_coach(s, now=NOW + timedelta(hours=2))
    assert run.reopened == 1
    row = tier_row()
    assert row.id == first.id
    assert row.status == InsightStatus.NEW
    assert row.status_reason is None


def test_one_stand_runs_alone_and_leaves_the_others(world: World_) -> None:
    sm, w = world
    with sm() as s:
        everything = run_coach(s, now=NOW)
    with sm() as s:
        one = run_coach(s, stand_ids=[w.stand["K1"]], now=NOW)
    assert one.stands == 1
    assert {i.stand_id for i in one.insights} <= {w.stand["K1"]}
    assert one.retired == 0
    assert len(_rows(sm)) == len(everything.insights)
    # Peers still count for a single stand: K1's slow mover is found the same way.
    assert [i.dedup_key for i in one.insights if i.kind == rules.SLOW_MOVER] == [
        i.dedup_key
        for i in everything.insights
        if i.kind == rules.SLOW_MOVER and i.stand_id == w.stand["K1"]
    ]
    with sm() as s, pytest.raises(NotFound, match="No stand with id"):
        run_coach(s, stand_ids=["nope"], now=NOW)
    with sm() as s, pytest.raises(ValidationError, match="service level"):
        run_coach(s, now=NOW, service=1.5)


def test_stand_outlook(world: World_) -> None:
    sm, w = world
    with sm() as s:
        outlook = stand_outlook(s, w.stand["K1"], now=NOW)
        run = run_coach(s, stand_ids=[w.stand["K1"]], now=NOW)
    assert outlook.stand_name == "Kiosk K1"
    assert outlook.today == date(2026, 3, 30)
    assert outlook.review_days == 7
    assert outlook.lead_days == 2
    assert outlook.horizon >= 14
    assert len(outlook.skus) == 4
    by_sku = {x.sku: x for x in outlook.skus}
    a, d = by_sku["SKU-A"], by_sku["SKU-D"]
    assert len(a.forecast) == outlook.horizon
    assert sum(a.forecast[:7]) == pytest.approx(14, rel=0.1)  # two a day
    assert a.days_of_cover == pytest.approx(10, abs=0.6)  # 20 on hand
    assert d.demand_class == "dead"
    assert d.days_of_cover is None
    assert d.recommendation.quantity == 0
    # The same recommendations as the run.
    assert outlook.quantities == {r.product_id: r.quantity for r in run.recommendations}
    assert outlook.refill_units == sum(outlook.quantities.values())
    assert outlook.refill_value == sum(r.value for r in run.recommendations)
    risks = [x.stockout_risk for x in outlook.skus]
    assert risks == sorted(risks, reverse=True)
    with sm() as s, pytest.raises(NotFound):
        stand_outlook(s, "nope", now=NOW)


def test_listing_filters_and_validates(world: World_) -> None:
    sm, w = world
    with sm() as s:
        run_coach(s, now=NOW)
    with sm() as s:
        every = list_insights(s)
        critical = list_insights(s, severity="critical")
        slow = list_insights(s, kind=rules.SLOW_MOVER)
        k1 = list_insights(s, stand_id=w.stand["K1"])
        all_statuses = list_insights(s, status=None)
        limited = list_insights(s, limit=2)
    assert len(every) == len(all_statuses) == len(_rows(sm))
    assert {v.severity for v in critical} == {Severity.CRITICAL}
    assert every[: len(critical)] == critical  # critical first
    assert [(v.stand_name, v.sku, v.product_name) for v in slow] == [
        ("Kiosk K1", "SKU-D", "Product D")
    ]
    assert slow[0].action["type"] == "swap_sku"
    assert slow[0].evidence["units_sold"] == 0
    assert {v.stand_id for v in k1} == {w.stand["K1"]}
    assert limited == every[:2]
    with sm() as s:
        with pytest.raises(ValidationError, match="not an insight kind"):
            list_insights(s, kind="gossip")
        with pytest.raises(ValidationError, match="not an insight severity"):
            list_insights(s, severity="dire")
        with pytest.raises(ValidationError, match="not an insight status"):
            list_insights(s, status="open")


def test_acting_on_an_insight(world: World_) -> None:
    sm, w = world
    with sm() as s:
        run_coach(s, now=NOW)
    slow = _one(sm, rules.SLOW_MOVER, w.stand["K1"])
    count = _one(sm, rules.COUNT_OVERDUE, w.stand["K4"])
    ops = _ops(sm)
    with sm() as s:
        with pytest.raises(PermissionDenied, match="A partner may not"):
            acknowledge_insight(s, PARTNER, slow.id)
        with pytest.raises(NotFound, match="No insight with id"):
            acknowledge_insight(s, REP, "nope")
        with pytest.raises(ValidationError, match="reason for dismissing is required"):
            dismiss_insight(s, REP, slow.id, "  ")
        seen = acknowledge_insight(s, REP, slow.id, now=NOW)
        assert seen.status == InsightStatus.ACKNOWLEDGED
        with pytest.raises(InvalidTransition, match="already acknowledged"):
            acknowledge_insight(s, REP, slow.id)
        done = mark_insight_done(s, MANAGER, slow.id, now=NOW)
        assert (done.status, done.status_reason) == (InsightStatus.DONE, None)
        with pytest.raises(InvalidTransition, match="already done; it cannot be dismissed"):
            dismiss_insight(s, REP, slow.id, "changed my mind")
        gone = dismiss_insight(s, REP, count.id, "Counted on paper", now=NOW)
        assert gone.status == InsightStatus.DISMISSED
        assert get_insight(s, count.id).status_reason == "Counted on paper"
    # One op per action, with the dedup key so other devices find their own row.
    with sm() as s, s.begin():
        logged = list(s.scalars(select(ChangeLog).order_by(ChangeLog.device_seq).offset(ops)))
    assert [op.op_type for op in logged] == [
        "insight.acknowledge",
        "insight.done",
        "insight.dismiss",
    ]
    assert logged[0].entity_id == slow.id
    assert f'"dedup_key":"{slow.dedup_key}"' in logged[0].payload
    assert '"reason":"Counted on paper"' in logged[2].payload
    assert logged[1].actor == MANAGER.user


def test_a_new_stand_borrows_its_peers_rates(world: World_) -> None:
    sm, w = world
    opened = NOW - timedelta(days=2)
    with sm() as s:
        result = onboarding.onboard_partner(
            s,
            REP,
            onboarding.PartnerInput(name="New GmbH", contact_name="Ida", package_code="growth"),
            onboarding.StandInput(
                name="Kiosk New",
                address="Weg 1",
                city="Berlin",
                location_type="kiosk",
                capacity_units=100,
                products=[w.product["A"], w.product["E"]],
            ),
            now=opened,
        )
        assert result.stand is not None
        loyalty.activate_partner(s, REP, result.partner_id, now=opened)
        new_id = result.stand.stand_id
        outlook = stand_outlook(s, new_id, now=NOW)
        run = run_coach(s, now=NOW)
    by_sku = {x.sku: x for x in outlook.skus}
    a, e = by_sku["SKU-A"], by_sku["SKU-E"]
    assert (a.demand_class, a.method.split("+")[0]) == ("new", "peer_rate")
    # Nothing of its own yet: the rate A and E sell at the other kiosks.
    assert a.forecast[0] == pytest.approx(1.64, abs=0.15)
    assert e.forecast[0] == pytest.approx(1.0, abs=0.1)
    assert a.on_hand == 0
    assert a.stockout_risk > 0.9
    assert outlook.quantities[w.product["A"]] > 0
    assert not [i for i in run.insights if i.stand_id == new_id and i.product_id is not None]
