"""Each insight rule on a small program built through the real services.

The world (:func:`build_world`): six kiosk stands of Growth partners, opened on Monday
5 January 2026, refilled every Monday morning (request, approval, schedule, delivery),
counted on 26 March, and selling the same units every day — except where a rule should
fire:

- K1 never sells product D, though it sits on the shelf and sells a unit a day at the
  other stands (slow mover); K1 does not carry E, which sells at the others (the swap);
- K2's A sells 4 a day but is refilled to only 10 a week, in a capacity of 12 (under-faced
  best seller), and K2 got no refill this week, so A is out now (stock-out risk);
- K3's B sold 3 a day until 15 March, then nothing for the last 14 days (trend break);
- K4 has not been counted since the opening (count overdue);
- K6 sells a tenth of what the others sell (below its peers);
- K5's partner is put a few points below the Silver threshold (tier within reach).

"Now" is Monday 30 March 2026, 12:00 in Berlin; the history is the 91 days before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.coach import insights as rules
from app.coach.agent import run_coach
from app.coach.data import load_coach_data
from app.coach.insights import Insight, Thresholds, eb_shrink
from app.db import SessionFactory
from app.models import LoyaltyTier, Product, Severity
from app.reference import reference_id, seed_reference_data
from app.services import inventory, loyalty, onboarding, refills, sales
from app.services.sales import SaleLine
from tests.conftest import MANAGER, REP

BERLIN = ZoneInfo("Europe/Berlin")
OPENED = date(2026, 1, 5)  # a Monday
NOW = datetime(2026, 3, 30, 10, 0, tzinfo=UTC)  # Monday 12:00 in Berlin
TREND_FROM = date(2026, 3, 16)
COUNTED = date(2026, 3, 26)
STANDS = ("K1", "K2", "K3", "K4", "K5", "K6")


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=BERLIN).astimezone(UTC)


@dataclass
class World:
    stand: dict[str, str] = field(default_factory=dict)
    partner: dict[str, str] = field(default_factory=dict)
    product: dict[str, str] = field(default_factory=dict)
    price: dict[str, Decimal] = field(default_factory=dict)
    #: What the test did: units sold per (stand, product, day).
    sold: dict[tuple[str, str, date], int] = field(default_factory=dict)


def _demand(stand: str, product: str, day: date) -> int:
    """Units asked for at ``stand`` of ``product`` on ``day`` (sold if on the shelf)."""
    n = (day - OPENED).days
    if stand == "K6":
        return 1 if (product == "A" and n % 5 == 0) or n % 10 == 0 else 0
    if stand == "K1" and product == "D":
        return 0
    if stand == "K2" and product == "A":
        return 4
    if stand == "K3" and product == "B":
        return 3 if day < TREND_FROM else 0
    return 2 if product == "A" else 1


def _assortment(stand: str) -> tuple[str, ...]:
    return ("A", "B", "C", "D") if stand in ("K1", "K6") else ("A", "B", "C", "D", "E")


def _refill_to(stand: str, product: str) -> int:
    return 10 if (stand, product) == ("K2", "A") else 20


def build_world(session: Session) -> World:
    w = World()
    with session.begin():
        seed_reference_data(session)
        w = _products(session, w)
    return _stands_and_history(session, w)


def _products(session: Session, w: World) -> World:
    for code, price in (("A", "1.50"), ("B", "2.00"), ("C", "2.50"), ("D", "3.00"), ("E", "3.50")):
        p = Product(
            sku=f"SKU-{code}",
            gtin=None,
            name=f"Product {code}",
            category="snacks",
            list_price=Decimal(price),
            unit_cost=Decimal(price) / 2,
            pack_size=1,
        )
        session.add(p)
        session.flush()
        w.product[code] = p.id
        w.price[code] = Decimal(price)
    return w


def _stands_and_history(session: Session, w: World) -> World:
    opened = at(OPENED, 8)
    for name in STANDS:
        result = onboarding.onboard_partner(
            session,
            REP,
            onboarding.PartnerInput(name=f"{name} GmbH", contact_name="Eva", package_code="growth"),
            onboarding.StandInput(
                name=f"Kiosk {name}",
                address="Hauptstr. 1",
                city="Berlin",
                location_type="kiosk",
                capacity_units=250,
                assigned_rep=REP.user,
                products=[w.product[c] for c in _assortment(name)],
            ),
            now=opened,
        )
        assert result.stand is not None
        loyalty.activate_partner(session, REP, result.partner_id, now=opened)
        w.stand[name], w.partner[name] = result.stand.stand_id, result.partner_id
    inventory.set_levels(session, REP, w.stand["K2"], w.product["A"], par_level=10, capacity=12)

    stock = {(s, c): 0 for s in STANDS for c in _assortment(s)}
    day = OPENED
    while day < NOW.astimezone(BERLIN).date() + timedelta(days=1):
        if day.weekday() == 0:  # Monday: the weekly refill
            for s in STANDS:
                if s == "K2" and day == date(2026, 3, 30):
                    continue  # K2's refill this week has not come
                qty = {
                    w.product[c]: _refill_to(s, c) - stock[(s, c)]
                    for c in _assortment(s)
                    if stock[(s, c)] < _refill_to(s, c)
                }
                if not qty:
                    continue
                r = refills.request_refill(session, REP, w.stand[s], qty, now=at(day, 7))
                refills.approve_refill(session, MANAGER, r.refill_id, now=at(day, 7, 10))
                refills.schedule_refill(
                    session, MANAGER, r.refill_id, day, "Dealer", now=at(day, 7, 20)
                )
                refills.deliver_refill(session, REP, r.refill_id, now=at(day, 8))
                for c in _assortment(s):
                    stock[(s, c)] = max(stock[(s, c)], _refill_to(s, c))
        if day == COUNTED:
            for s in STANDS:
                if s != "K4":
                    inventory.record_count(
                        session,
                        REP,
                        w.stand[s],
                        {w.product[c]: stock[(s, c)] for c in _assortment(s)},
                        counted_at=at(day, 9),
                    )
        if day < NOW.astimezone(BERLIN).date():
            for s in STANDS:
                lines = []
                for c in _assortment(s):
                    q = min(_demand(s, c, day), stock[(s, c)])
                    if q:
                        lines.append(SaleLine(w.product[c], q))
                        stock[(s, c)] -= q
                        w.sold[(s, c, day)] = q
                if lines:
                    sales.record_sale(
                        session, REP, w.stand[s], lines, "cash", occurred_at=at(day, 15)
                    )
        day += timedelta(days=1)
    return w


def _found(found: list[Insight], kind: str) -> list[Insight]:
    return [i for i in found if i.kind == kind]


def _run(sm: SessionFactory) -> list[Insight]:
    with sm() as s:
        return list(run_coach(s, now=NOW).insights)


# --------------------------------------------------------------------------- the data


def test_history_marks_out_of_stock_days_missing(world: tuple[SessionFactory, World]) -> None:
    sm, w = world
    with sm() as s, s.begin():
        data = load_coach_data(s, now=NOW)
    assert data.days == 91
    k = next(
        i
        for i in range(data.n)
        if data.stands[data.stand_idx[i]].id == w.stand["K2"]
        and data.product_ids[i] == w.product["A"]
    )
    last = date(2026, 3, 29)
    days = [last - timedelta(days=data.days - 1 - j) for j in range(data.days)]
    for j, day in enumerate(days):
        if day < OPENED:
            assert np.isnan(data.demand[k, j])
            assert not data.tracked[k, j]
            continue
        # Refilled to 10 on Mondays and 4 sold a day: out from Wednesday on.
        sold = w.sold.get(("K2", "A", day), 0)
        assert data.sold[k, j] == sold, day
        if day.weekday() in (0, 1) and day <= date(2026, 3, 24):
            assert data.demand[k, j] == 4, day
        if day.weekday() >= 2:
            assert np.isnan(data.demand[k, j]), day
    assert data.on_hand[k] == 0
    assert data.capacity[k] == 12
    stand = data.stands[data.stand_idx[k]]
    # Last visit: the count of Thursday 26 March (after the delivery of Monday 23 March);
    # Growth refills weekly: next Thursday.
    assert stand.last_visit == at(COUNTED, 9)
    assert stand.next_visit == date(2026, 4, 2)
    assert stand.days_to_visit == 3
    assert stand.today == date(2026, 3, 30)
    # A peer rate: A at the other kiosks, 2 a day (K6's one every five days pulls it down).
    assert 1.5 < data.peer_rate[k] < 2.0


def test_on_order_and_arrivals(world: tuple[SessionFactory, World]) -> None:
    sm, w = world
    with sm() as s:
        requested = refills.request_refill(
            s, REP, w.stand["K2"], {w.product["A"]: 8}, now=NOW - timedelta(hours=1)
        )
        other = refills.request_refill(
            s, REP, w.stand["K3"], {w.product["C"]: 5}, now=NOW - timedelta(hours=1)
        )
        refills.approve_refill(s, MANAGER, other.refill_id, {w.product["C"]: 4}, now=NOW)
        refills.schedule_refill(s, MANAGER, other.refill_id, date(2026, 4, 2), "Dealer", now=NOW)
    with sm() as s, s.begin():
        data = load_coach_data(s, now=NOW)

    def series(stand: str, product: str) -> int:
        return next(
            i
            for i in range(data.n)
            if data.stands[data.stand_idx[i]].id == w.stand[stand]
            and data.product_ids[i] == w.product[product]
        )

    assert requested.status.value == "requested"
    k2a = series("K2", "A")
    assert data.on_order[k2a] == 8
    # Requested, no date yet: expected in 2 days, before the visit in 3 days.
    assert data.arriving[k2a] == 8
    assert data.arrival_days[k2a] == 2
    k3c = series("K3", "C")
    assert data.on_order[k3c] == 4  # the approved quantity
    k3 = data.stands[data.stand_idx[k3c]]
    # K3 was refilled this morning: next round in 7 days, but the scheduled delivery of
    # 2 April comes first.
    assert k3.next_visit == date(2026, 4, 2)
    assert k3.days_to_visit == 3
    assert data.arriving[k3c] == 0  # arrives at that visit, not before


# --------------------------------------------------------------------------- the rules


def test_slow_mover_found_with_a_swap_candidate(world: tuple[SessionFactory, World]) -> None:
    sm, w = world
    slow = _found(_run(sm), rules.SLOW_MOVER)
    assert [(i.stand_id, i.product_id) for i in slow] == [(w.stand["K1"], w.product["D"])]
    (ins,) = slow
    assert ins.severity == Severity.WARNING  # nothing sold at all
    assert ins.action["type"] == "swap_sku"
    assert [c["product_id"] for c in ins.action["candidates"]] == [w.product["E"]]
    assert ins.evidence["units_sold"] == 0
    assert ins.evidence["on_hand"] == 20
    assert ins.evidence["peer_rate_per_day"] == pytest.approx(0.82, abs=0.02)
    assert ins.message.startswith("Product D (SKU-D) sold nothing in 56 days in stock; 20 on hand")
    assert ins.message.endswith("→ swap it for Product E (SKU-E)")
    quarter = "2026-Q1"
    assert ins.dedup_key == f"slow_mover:{w.stand['K1']}:{w.product['D']}:{quarter}"


def test_quiet_stand_is_not_a_stand_of_slow_movers(world: tuple[SessionFactory, World]) -> None:
    sm, w = world
    found = _run(sm)
    assert not [i for i in found if i.kind == rules.SLOW_MOVER and i.stand_id == w.stand["K6"]]


def test_under_faced_best_seller(world: tuple[SessionFactory, World]) -> None:
    sm, w = world
    under = _found(_run(sm), rules.UNDER_FACED)
    assert [(i.stand_id, i.product_id) for i in under] == [(w.stand["K2"], w.product["A"])]
    (ins,) = under
    assert ins.severity == Severity.CRITICAL  # out on more than 30 % of the days
    e = ins.evidence
    # Eight weeks: out Wednesday to Sunday, and Monday to now of the last week.
    assert e["out_of_stock_days"] >= 5 * 7
    assert e["carried_days"] == 56
    assert e["rate_per_day"] == pytest.approx(4.0)
    assert ins.action["type"] == "more_facings"
    assert ins.action["capacity"] == 12
    assert ins.action["suggested_capacity"] > 12 + 1
    assert "more facings: capacity 12 →" in ins.message


def test_trend_break_when_sales_stop(world: tuple[SessionFactory, World]) -> None:
    sm, w = world
    trends = _found(_run(sm), rules.TREND_BREAK)
    assert [(i.stand_id, i.product_id) for i in trends] == [(w.stand["K3"], w.product["B"])]
    (ins,) = trends
    assert ins.severity == Severity.CRITICAL  # nothing sold against 10+ expected
    assert ins.evidence["observed"] == 0
    assert ins.evidence["expected"] > 30
    assert ins.evidence["tracking_signal"] == pytest.approx(-14)
    assert ins.action["type"] == "check_shelf"
    assert ins.dedup_key.endswith(":down:2026-03")


def test_stand_below_its_peers(world: tuple[SessionFactory, World]) -> None:
    sm, w = world
    below = _found(_run(sm), rules.BELOW_PEERS)
    assert [i.stand_id for i in below] == [w.stand["K6"]]
    (ins,) = below
    assert ins.severity == Severity.CRITICAL
    assert ins.evidence["peer_group"] == "kiosk/growth"
    assert ins.evidence["peer_group_size"] == 6
    assert ins.evidence["ratio_to_peers"] < 0.4
    assert ins.action["type"] == "review_assortment"


def test_empirical_bayes_spares_a_noisy_small_stand() -> None:
    means = np.array([1.0, 1.1, 0.9, 1.05, 0.95, 0.5, 0.5])
    # The sixth stand is steady (its low mean is real); the seventh had one bad week in a
    # very noisy month, so its low mean says little.
    noise = np.array([0.002, 0.002, 0.002, 0.002, 0.002, 0.002, 2.0])
    shrunk, mu, weight = eb_shrink(means, noise)
    assert 0.85 < mu < 1.0  # weighted towards the steady stands
    assert shrunk[5] / mu < 0.6  # flagged
    assert shrunk[6] / mu > 0.9  # shrunk almost to the peers
    assert weight[6] < 0.05 < 0.9 < weight[5]


def test_count_overdue(world: tuple[SessionFactory, World]) -> None:
    sm, w = world
    overdue = _found(_run(sm), rules.COUNT_OVERDUE)
    assert [i.stand_id for i in overdue] == [w.stand["K4"]]
    (ins,) = overdue
    # Counted when the refill of 5 January was... never: K4 was only ever refilled.
    assert ins.message == "Never counted, open for 84 days → count the stand"
    assert ins.dedup_key == f"count_overdue:{w.stand['K4']}:never"
    assert ins.action == {"type": "count", "stand_id": w.stand["K4"]}


def test_count_overdue_after_an_old_count(world: tuple[SessionFactory, World]) -> None:
    sm, w = world
    with sm() as s:
        inventory.record_count(
            s, REP, w.stand["K4"], {w.product["A"]: 20}, counted_at=at(date(2026, 1, 20), 9)
        )
    overdue = _found(_run(sm), rules.COUNT_OVERDUE)
    (ins,) = overdue
    assert ins.severity == Severity.CRITICAL  # 69 days: more than twice the 28
    assert ins.message == "Last count 69 days ago (due every 28 days) → count the stand"
    assert ins.dedup_key == f"count_overdue:{w.stand['K4']}:2026-01-20"


def test_tier_within_reach(world: tuple[SessionFactory, World]) -> None:
    sm, w = world
    with sm() as s:
        status = loyalty.tier_status(s, w.partner["K5"], now=NOW)
    earned = status.earned_in_window
    with sm() as s, s.begin():
        s.execute(
            update(LoyaltyTier)
            .where(LoyaltyTier.id == reference_id("tier", "silver"))
            .values(threshold_points=earned + 40)
        )
    tiers = _found(_run(sm), rules.TIER_WITHIN_REACH)
    mine = [i for i in tiers if i.action["partner_id"] == w.partner["K5"]]
    (ins,) = mine
    assert ins.stand_id == w.stand["K5"]
    assert ins.evidence["points_needed"] == 40
    assert ins.action == {
        "type": "loyalty_nudge",
        "partner_id": w.partner["K5"],
        "tier": "silver",
        "points_needed": 40,
    }
    assert ins.message.startswith("40 points from Silver")
    assert not [i for i in tiers if i.action["partner_id"] == w.partner["K6"]]


def test_stockout_risk_with_the_refill_to_make(world: tuple[SessionFactory, World]) -> None:
    sm, w = world
    risks = _found(_run(sm), rules.STOCKOUT_RISK)
    mine = [i for i in risks if i.stand_id == w.stand["K2"]]
    (ins,) = mine
    assert ins.severity == Severity.CRITICAL
    assert ins.action["type"] == "refill"
    quantities = ins.action["quantities"]
    assert quantities[w.product["A"]] == 12  # up to the capacity of 12, nothing on hand
    at_risk = {r["product_id"]: r for r in ins.evidence["at_risk"]}
    assert at_risk[w.product["A"]]["risk"] > 0.95
    assert ins.dedup_key == f"stockout_risk:{w.stand['K2']}:2026-W14"


def test_nothing_flagged_with_everything_switched_off(world: tuple[SessionFactory, World]) -> None:
    sm, _ = world
    off = Thresholds(
        risk_warning=1.01,
        slow_peer_ratio=0.0,
        slow_units_per_review=0.0,
        oos_share=2.0,
        trend_sigmas=1e9,
        peers_warning=0.0,
        count_overdue_days=10_000,
        tier_reach=0.0,
    )
    with sm() as s:
        run = run_coach(s, now=NOW, thresholds=off)
    assert run.insights == ()


def test_history_as_of_an_earlier_moment(world: tuple[SessionFactory, World]) -> None:
    sm, w = world
    then = at(date(2026, 3, 23), 12)  # after Monday's delivery, before Monday's sale
    with sm() as s, s.begin():
        data = load_coach_data(s, now=then)
    k = next(
        i
        for i in range(data.n)
        if data.stands[data.stand_idx[i]].id == w.stand["K2"]
        and data.product_ids[i] == w.product["A"]
    )
    assert data.on_hand[k] == 10  # not today's 0
    stand = data.stands[data.stand_idx[k]]
    assert stand.today == date(2026, 3, 23)
    assert stand.last_visit == at(date(2026, 3, 23), 8)  # the delivery; the count came later
    # The window ends on Sunday 22 March: Wednesday 18th sold out, Tuesday 17th sold 4.
    assert np.isnan(data.demand[k, -1])
    assert data.demand[k, -6] == 4
