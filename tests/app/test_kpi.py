"""KPIs against an independent computation on a hand-built data set.

The data set is made through the real services (sales, a void, counts, refills including
one delivered in two parts, loyalty, payouts) with explicit times, and every event is also
written down here as plain Python. The expected KPI values are then computed from those
notes by the definitions, day by day with ``zoneinfo`` — no SQL, no numpy, none of the
engine's code — and compared with what :mod:`app.kpi` computes in SQL.

Two stands, two time zones. The period is 23..29 March 2026 (Berlin changes to summer time
on 29 March, inside the period); the prior period 16..22 March. Sales sit right at the
local midnights that bound the period, so a UTC day would put them on the wrong side.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from app.db import SessionFactory
from app.errors import NotFound, ValidationError
from app.kpi import Period, Scope, ScopeKind, dashboard, kpi_report, parse_period
from app.kpi.engine import rounded, stand_performance
from app.kpi.period import utc_offsets
from app.models import Product
from app.services import inventory, loyalty, onboarding, payouts, refills, sales
from app.services.sales import SaleLine
from tests.conftest import MANAGER, PARTNER, REP, CatalogProduct

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"
PERIOD = Period(date(2026, 3, 23), date(2026, 3, 29))
PRIOR = Period(date(2026, 3, 16), date(2026, 3, 22))
NOW = datetime(2026, 3, 30, 10, 0, tzinfo=UTC)


def local(tz: str, text: str) -> datetime:
    """A wall-clock time in ``tz`` as an aware UTC instant."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)


@dataclass
class Order:
    stand: str
    at: datetime
    sign: int  # +1 sale, -1 void
    lines: list[tuple[str, int, Decimal, Decimal]]  # product, qty, price, cost
    points: int

    @property
    def total(self) -> Decimal:
        return self.sign * sum((q * p for _, q, p, _ in self.lines), Decimal(0))


@dataclass
class Move:
    stand: str
    product: str
    at: datetime
    qty: int
    kind: str  # sale, delivery, count


@dataclass
class Refill:
    stand: str
    requested_at: datetime
    requested: int
    approved: int
    delivered: int = 0
    scheduled_for: date | None = None
    completed_at: datetime | None = None  # last delivery
    confirmed_at: datetime | None = None


@dataclass
class World:
    """What the test did, written down plainly."""

    tz: dict[str, str] = field(default_factory=dict)
    carried_from: dict[tuple[str, str], datetime] = field(default_factory=dict)
    cost: dict[str, Decimal] = field(default_factory=dict)
    partner_of: dict[str, str] = field(default_factory=dict)
    orders: list[Order] = field(default_factory=list)
    moves: list[Move] = field(default_factory=list)
    refills: list[Refill] = field(default_factory=list)
    points: list[tuple[str, datetime, int, str]] = field(default_factory=list)  # partner
    payouts: list[tuple[str, date, Decimal, datetime | None]] = field(default_factory=list)


def _build(session: Session, catalog: list[CatalogProduct]) -> tuple[World, dict[str, str]]:
    w = World()
    p1, p2 = catalog[0], catalog[1]
    for p in (p1, p2):
        w.cost[p.id] = session.get_one(Product, p.id).unit_cost
    price = {p1.id: p1.list_price, p2.id: p2.list_price}
    created = local(BERLIN, "2026-03-10 09:00")
    ids: dict[str, str] = {}

    def onboard(name: str, tz: str, products: list[str]) -> tuple[str, str]:
        result = onboarding.onboard_partner(
            session,
            REP,
            onboarding.PartnerInput(name=f"{name} GmbH", contact_name="Eva", package_code="pro"),
            onboarding.StandInput(
                name=name,
                address="Hauptstr. 1",
                city="Berlin" if tz == BERLIN else "New York",
                location_type="kiosk",
                capacity_units=200,
                latitude=52.5,
                longitude=13.4,
                assigned_rep=REP.user,
                timezone=tz,
                products=products,
            ),
            now=created,
        )
        assert result.stand is not None
        activation = loyalty.activate_partner(session, REP, result.partner_id, now=created)
        w.points.append((result.partner_id, created, activation.points, "activation"))
        sid = result.stand.stand_id
        w.tz[sid] = tz
        w.partner_of[sid] = result.partner_id
        for pid in products:
            w.carried_from[(sid, pid)] = created
        return result.partner_id, sid

    partner_a, a = onboard("Kiosk Alex", BERLIN, [p1.id, p2.id])
    partner_b, b = onboard("Deli Brooklyn", NEW_YORK, [p1.id])
    # A partner still being signed up: their stand is planned, not live, and stays out of
    # the territory's and the program's figures (the oracle never hears of it).
    onboarding.onboard_partner(
        session,
        REP,
        onboarding.PartnerInput(name="Not Yet GmbH", contact_name="Ida", package_code="pro"),
        onboarding.StandInput(
            name="Not Yet",
            address="Weg 2",
            city="Berlin",
            location_type="kiosk",
            capacity_units=100,
            assigned_rep=REP.user,
            products=[p1.id, p2.id],
        ),
        now=created,
    )
    ids.update(a=a, b=b, partner_a=partner_a, partner_b=partner_b, p1=p1.id, p2=p2.id)

    def refill(
        stand: str,
        qty: dict[str, int],
        requested: datetime,
        scheduled_for: date,
        deliveries: list[tuple[datetime, dict[str, int] | None, bool]],
        confirmed: datetime | None,
    ) -> None:
        r = refills.request_refill(session, REP, stand, qty, now=requested)
        refills.approve_refill(session, MANAGER, r.refill_id, now=requested + timedelta(hours=1))
        refills.schedule_refill(
            session,
            MANAGER,
            r.refill_id,
            scheduled_for,
            "Dealer",
            now=requested + timedelta(hours=2),
        )
        note = Refill(stand, requested, sum(qty.values()), sum(qty.values()))
        note.scheduled_for = scheduled_for
        so_far = dict.fromkeys(qty, 0)
        for at, part, more in deliveries:
            refills.deliver_refill(session, REP, r.refill_id, part, more_to_come=more, now=at)
            # ``None`` delivers the rest.
            units = part if part is not None else {k: v - so_far[k] for k, v in qty.items()}
            for pid, q in units.items():
                so_far[pid] += q
                if q:
                    w.moves.append(Move(stand, pid, at, q, "delivery"))
                    note.delivered += q
            note.completed_at = at
        if confirmed is not None:
            refills.confirm_refill(session, PARTNER, r.refill_id, now=confirmed)
            note.confirmed_at = confirmed
        w.refills.append(note)

    def sell(stand: str, at: datetime, lines: dict[str, int]) -> str:
        result = sales.record_sale(
            session,
            REP,
            stand,
            [SaleLine(pid, q) for pid, q in lines.items()],
            "cash",
            occurred_at=at,
        )
        w.orders.append(
            Order(
                stand,
                at,
                1,
                [(pid, q, price[pid], w.cost[pid]) for pid, q in lines.items()],
                result.points_earned,
            )
        )
        for pid, q in lines.items():
            w.moves.append(Move(stand, pid, at, -q, "sale"))
        w.points.append((w.partner_of[stand], at, result.points_earned, "earn"))
        return result.order_id

    # Stock arrives before the window.
    refill(
        a,
        {p1.id: 12, p2.id: 5},
        local(BERLIN, "2026-03-12 10:00"),
        date(2026, 3, 14),
        [(local(BERLIN, "2026-03-14 10:00"), None, False)],
        local(BERLIN, "2026-03-14 10:30"),
    )
    refill(
        b,
        {p1.id: 6},
        local(NEW_YORK, "2026-03-12 10:00"),
        date(2026, 3, 14),
        [(local(NEW_YORK, "2026-03-14 10:00"), None, False)],
        local(NEW_YORK, "2026-03-14 11:00"),
    )

    # A sale before the window, so a payout is owed for 1..15 March.
    sell(a, local(BERLIN, "2026-03-14 15:00"), {p1.id: 1})
    # Prior period.
    sell(a, local(BERLIN, "2026-03-18 12:00"), {p1.id: 2})
    # 22 March 22:00 in New York is already 23 March in UTC: still the prior period there.
    sell(b, local(NEW_YORK, "2026-03-22 22:00"), {p1.id: 1})

    # The period. 00:15 on the 23rd in Berlin is 22 March 23:15 UTC.
    sell(a, local(BERLIN, "2026-03-23 00:15"), {p1.id: 3, p2.id: 1})
    # P2 sells out on the 24th, and is out on the 25th and 26th.
    sell(a, local(BERLIN, "2026-03-24 18:00"), {p2.id: 4})
    # 00:30 on the 25th in Berlin is still the 24th in UTC.
    voided = sell(a, local(BERLIN, "2026-03-25 00:30"), {p1.id: 2})
    void_at = local(BERLIN, "2026-03-26 09:00")
    void = sales.void_sale(session, REP, voided, reason="wrong product", occurred_at=void_at)
    w.orders.append(
        Order(a, void_at, -1, [(p1.id, 2, price[p1.id], w.cost[p1.id])], -void.points_reversed)
    )
    w.moves.append(Move(a, p1.id, void_at, 2, "sale"))
    if void.points_reversed:
        w.points.append((partner_a, void_at, -void.points_reversed, "reverse"))
    # A refill of P2 in two deliveries; the second is a day later than scheduled.
    refill(
        a,
        {p2.id: 5},
        local(BERLIN, "2026-03-25 08:00"),
        date(2026, 3, 27),
        [
            (local(BERLIN, "2026-03-27 11:00"), {p2.id: 3}, True),
            (local(BERLIN, "2026-03-28 11:00"), None, False),
        ],
        local(BERLIN, "2026-03-29 10:00"),
    )
    # The count finds one P1 missing.
    count_at = local(BERLIN, "2026-03-28 17:00")
    on_hand_p1 = sum(m.qty for m in w.moves if m.stand == a and m.product == p1.id)
    inventory.record_count(session, REP, a, {p1.id: on_hand_p1 - 1, p2.id: 5}, counted_at=count_at)
    w.moves.append(Move(a, p1.id, count_at, -1, "count"))
    # 23:45 on the 29th (summer time, UTC+2) is in; 00:30 on the 30th is out.
    sell(a, local(BERLIN, "2026-03-29 23:45"), {p1.id: 1})
    sell(a, local(BERLIN, "2026-03-30 00:30"), {p2.id: 1})
    # New York: 23 March 21:00 local is 24 March 01:00 UTC, still the 23rd there.
    sell(b, local(NEW_YORK, "2026-03-23 21:00"), {p1.id: 2})
    sell(b, local(NEW_YORK, "2026-03-27 12:00"), {p1.id: 3})  # B is out of P1 from here

    # Points redeemed in the period; a payout owed at the end of the prior period and paid
    # during this one.
    redeem_at = local(BERLIN, "2026-03-26 12:00")
    loyalty.redeem_points(session, REP, partner_a, 100, now=redeem_at)
    w.points.append((partner_a, redeem_at, -100, "redeem"))
    computed = payouts.compute_payouts(
        session,
        MANAGER,
        date(2026, 3, 1),
        date(2026, 3, 15),
        partner_id=partner_a,
        now=local(BERLIN, "2026-03-20 09:00"),
    )
    (payout,) = computed
    payouts.schedule_payout(
        session, MANAGER, payout.payout_id, date(2026, 3, 25), now=local(BERLIN, "2026-03-21 09:00")
    )
    paid_at = local(BERLIN, "2026-03-25 15:00")
    payouts.mark_payout_paid(session, MANAGER, payout.payout_id, "BANK-1", now=paid_at)
    w.payouts.append((partner_a, date(2026, 3, 15), payout.amount, paid_at))
    return w, ids


# ---------------------------------------------------------------- the oracle


def expected(w: World, stands: list[str], period: Period) -> dict[str, Decimal | None]:
    """Every KPI by its definition, from the notes, one calendar day at a time."""

    def day_of(stand: str, at: datetime) -> date:
        return at.astimezone(ZoneInfo(w.tz[stand])).date()

    def within(stand: str, at: datetime | None) -> bool:
        return at is not None and period.start <= day_of(stand, at) <= period.end

    days = [period.day(i) for i in range(period.days)]
    orders = [o for o in w.orders if o.stand in stands and within(o.stand, o.at)]
    revenue = sum((o.total for o in orders), Decimal(0))
    cogs = sum((o.sign * q * c for o in orders for _, q, _, c in o.lines), Decimal(0))
    units = sum(o.sign * q for o in orders for _, q, _, _ in o.lines)
    n_orders = sum(o.sign for o in orders)

    sold = received = adjust = opening = closing_end = 0
    tracked = oos = 0
    ads = 0.0
    inv_cost = Decimal(0)
    for (stand, pid), since in w.carried_from.items():
        if stand not in stands:
            continue
        moves = [m for m in w.moves if m.stand == stand and m.product == pid]

        def close(d: date, moves: list[Move] = moves, stand: str = stand) -> int:
            return sum(m.qty for m in moves if day_of(stand, m.at) <= d)

        first = day_of(stand, since)
        if first <= period.start:
            opening += max(close(period.start - timedelta(days=1)), 0)
        in_days = 0
        sold_in = 0
        for d in days:
            today = [m for m in moves if day_of(stand, m.at) == d]
            sold_today = -sum(m.qty for m in today if m.kind == "sale")
            sold += sold_today
            received += sum(m.qty for m in today if m.kind == "delivery")
            adjust += sum(m.qty for m in today if m.kind == "count")
            if d < first:
                continue
            tracked += 1
            c = close(d)
            inv_cost += max(c, 0) * w.cost[pid]
            if c <= 0:
                oos += 1
            else:
                in_days += 1
                sold_in += sold_today
        if in_days:
            ads += sold_in / in_days
        closing_end += max(close(period.end), 0)

    done = [r for r in w.refills if r.stand in stands and within(r.stand, r.completed_at)]
    confirmed = [r for r in w.refills if r.stand in stands and within(r.stand, r.confirmed_at)]
    on_time = [
        r
        for r in done
        if r.completed_at is not None
        and r.scheduled_for is not None
        and day_of(r.stand, r.completed_at) <= r.scheduled_for
        and r.delivered >= r.approved
    ]
    partners = {w.partner_of[s] for s in stands}
    lo = datetime.combine(period.start, datetime.min.time(), ZoneInfo(BERLIN))
    hi = datetime.combine(period.end + timedelta(days=1), datetime.min.time(), ZoneInfo(BERLIN))
    pts = [p for p in w.points if p[0] in partners]
    gm = revenue - cogs
    avg_inv = inv_cost / period.days
    avg_slots = Decimal(tracked) / period.days
    out: dict[str, Decimal | None] = {
        "revenue": revenue,
        "units": Decimal(units),
        "orders": Decimal(n_orders),
        "aov": revenue / n_orders if n_orders > 0 else None,
        "gross_margin": gm,
        "gross_margin_pct": gm / revenue if revenue else None,
        "sell_through": Decimal(sold) / (opening + received) if opening + received else None,
        "ads": Decimal(repr(ads)) if tracked else None,
        "days_of_cover": Decimal(closing_end) / Decimal(repr(ads)) if ads else None,
        "stockout_days": Decimal(oos) if tracked else None,
        "in_stock_rate": 1 - Decimal(oos) / tracked if tracked else None,
        "shrink_pct": Decimal(-adjust) / sold if sold > 0 else None,
        "fill_rate": (
            Decimal(sum(r.delivered for r in done)) / sum(r.requested for r in done)
            if done
            else None
        ),
        "cycle_time": (
            Decimal(
                repr(
                    statistics.median(
                        (r.confirmed_at - r.requested_at).total_seconds() / 3600
                        for r in confirmed
                        if r.confirmed_at is not None
                    )
                )
            )
            if confirmed
            else None
        ),
        "otif": Decimal(len(on_time)) / len(done) if done else None,
        "turnover": cogs / avg_inv if avg_inv else None,
        "gmroi": gm / avg_inv if avg_inv else None,
        "revenue_per_slot": revenue / avg_slots if avg_slots else None,
        "stock_on_hand": Decimal(closing_end) if tracked else None,
        "points_earned": Decimal(
            sum(p for _, at, p, kind in pts if lo <= at < hi and kind in ("earn", "activation"))
        ),
        "points_redeemed": Decimal(
            -sum(p for _, at, p, kind in pts if lo <= at < hi and kind == "redeem")
        ),
        "points_liability": Decimal(sum(p for _, at, p, _ in pts if at < hi)),
        "payouts_due": sum(
            (
                amount
                for partner, end, amount, paid in w.payouts
                if partner in partners and end <= period.end and (paid is None or paid >= hi)
            ),
            Decimal(0),
        ),
    }
    return {k: rounded(k, v) for k, v in out.items()}


@pytest.fixture
def world(
    factory: SessionFactory, catalog: list[CatalogProduct]
) -> tuple[SessionFactory, World, dict[str, str]]:
    with factory() as s, s.begin():
        w, ids = _build(s, catalog)
    return factory, w, ids


def _report(factory: SessionFactory, scope: Scope, period: Period = PERIOD) -> dict[str, tuple]:
    with factory() as s:
        report = kpi_report(s, scope, period, now=NOW)
    assert (report.start, report.end) == (period.start, period.end)
    assert (report.prior_start, report.prior_end) == (
        period.prior().start,
        period.prior().end,
    )
    return {k.key: (k.value, k.prior) for k in report.kpis}


SCOPES: dict[str, Callable[[dict[str, str]], tuple[Scope, list[str]]]] = {
    "stand in Berlin": lambda ids: (Scope(ScopeKind.STAND, ids["a"]), ["a"]),
    "stand in New York": lambda ids: (Scope(ScopeKind.STAND, ids["b"]), ["b"]),
    "partner": lambda ids: (Scope(ScopeKind.PARTNER, ids["partner_a"]), ["a"]),
    "territory": lambda ids: (Scope(ScopeKind.TERRITORY, REP.user), ["a", "b"]),
    "program": lambda ids: (Scope(ScopeKind.PROGRAM), ["a", "b"]),
}


@pytest.mark.parametrize("name", list(SCOPES))
def test_every_kpi_matches_the_independent_computation(
    world: tuple[SessionFactory, World, dict[str, str]], name: str
) -> None:
    factory, w, ids = world
    scope, keys = SCOPES[name](ids)
    stands = [ids[k] for k in keys]
    got = _report(factory, scope)
    want_now = expected(w, stands, PERIOD)
    want_prior = expected(w, stands, PRIOR)
    assert set(got) == set(want_now)
    mismatches = {
        key: {"got": got[key], "want": (want_now[key], want_prior[key])}
        for key in got
        if got[key] != (want_now[key], want_prior[key])
    }
    assert not mismatches


def test_the_data_set_exercises_what_it_claims(
    world: tuple[SessionFactory, World, dict[str, str]],
) -> None:
    """Guard against an easy data set: the figures the edge cases produce are not trivial."""
    factory, _w, ids = world
    a = _report(factory, Scope(ScopeKind.STAND, ids["a"]))
    # Sales at 00:15 on the 23rd and 23:45 on the 29th count; 00:30 on the 30th does not;
    # the void on the 26th takes back the sale of the 25th.
    assert a["orders"][0] == Decimal(1 + 1 + 1 - 1 + 1)  # 00:15, 24th, 25th, void, 23:45
    assert a["units"][0] == Decimal(4 + 4 + 2 - 2 + 1)
    # P2 closed at zero on the 24th, 25th and 26th; the split refill is late -> OTIF 0.
    assert a["stockout_days"][0] == Decimal(3)
    assert a["otif"][0] == Decimal(0)
    assert a["fill_rate"][0] == Decimal(1)
    assert a["shrink_pct"][0] is not None
    assert a["shrink_pct"][0] > 0
    # The payout owed at the end of the prior period was paid during this one.
    assert a["payouts_due"][0] == Decimal("0.00")
    assert a["payouts_due"][1] is not None
    assert a["payouts_due"][1] > 0
    b = _report(factory, Scope(ScopeKind.STAND, ids["b"]))
    assert b["units"] == (Decimal(5), Decimal(1))
    assert b["stockout_days"][0] == Decimal(3)  # out from the 27th


def test_a_utc_day_would_give_different_answers(
    world: tuple[SessionFactory, World, dict[str, str]],
) -> None:
    """The oracle is sensitive to the time zone: with UTC days its answer changes."""
    _factory, w, ids = world
    utc_world = World(**{**w.__dict__, "tz": dict.fromkeys(w.tz, "UTC")})
    in_utc = expected(utc_world, [ids["a"]], PERIOD)
    in_berlin = expected(w, [ids["a"]], PERIOD)
    assert in_utc["units"] != in_berlin["units"]
    assert in_utc["revenue"] != in_berlin["revenue"]


def test_dashboard_and_performance_carry_the_same_figures(
    world: tuple[SessionFactory, World, dict[str, str]],
) -> None:
    factory, w, ids = world
    with factory() as s:
        dash = dashboard(s, Scope(ScopeKind.PROGRAM), PERIOD, now=NOW)
    with factory() as s:
        perf = stand_performance(s, ids["a"], PERIOD, now=NOW)
    assert dash.report.stand_count == 2  # the planned stand is not live yet
    assert dash.report["revenue"].value == expected(w, [ids["a"], ids["b"]], PERIOD)["revenue"]
    # Revenue per day sums to the period's revenue; the prior series to the prior's.
    assert sum(dash.revenue.revenue) == dash.report["revenue"].value
    assert sum(dash.revenue.prior) == dash.report["revenue"].prior
    assert len(dash.revenue.days) == PERIOD.days
    # Per-stand figures add up to the program's.
    assert sum(s.values["revenue"] or 0 for s in dash.stands) == dash.report["revenue"].value
    ranking = dash.ranking("revenue")
    assert [v.value for v in ranking.stands] == sorted(
        (v.value for v in ranking.stands), reverse=True
    )
    stockouts = dash.ranking("stockout_days")  # lower is better: fewest first
    assert [v.value for v in stockouts.stands] == sorted(v.value for v in stockouts.stands)
    # Stock series of stand A: P2 closes at 0 on 24..26 March, deliveries on 27 and 28.
    p2 = next(x for x in perf.stock if x.product_id == ids["p2"])
    assert p2.on_hand[1:4] == (0, 0, 0)
    assert [(e.day, e.quantity) for e in p2.deliveries] == [
        (date(2026, 3, 27), 3),
        (date(2026, 3, 28), 2),
    ]
    p1 = next(x for x in perf.stock if x.product_id == ids["p1"])
    assert [(e.day, e.quantity) for e in p1.counts] == [(date(2026, 3, 28), -1)]
    units = {u.product_id: u.units for u in perf.sku_units}
    assert units == {ids["p1"]: 3 + 2 - 2 + 1, ids["p2"]: 1 + 4}
    # The split refill was requested in the period and went all the way.
    funnel = {f.status: f.count for f in perf.refills.funnel}
    assert funnel == dict.fromkeys(
        ("requested", "approved", "scheduled", "delivered", "confirmed"), 1
    )
    heat = dash.heatmap
    assert set(heat.stand_ids) == {ids["a"], ids["b"]}
    assert len(heat.values) == 2
    assert all(len(r) == len(heat.product_ids) for r in heat.values)


def test_a_paused_stand_counts_its_sales_but_not_its_shelf_days(
    world: tuple[SessionFactory, World, dict[str, str]],
) -> None:
    from sqlalchemy import update

    from app.models import StandLocation, StandStatus

    factory, w, ids = world
    with factory() as s, s.begin():
        s.execute(
            update(StandLocation)
            .where(StandLocation.id == ids["b"])
            .values(status=StandStatus.PAUSED)
        )
    got = _report(factory, Scope(ScopeKind.PROGRAM))
    both, only_a = expected(w, [ids["a"], ids["b"]], PERIOD), expected(w, [ids["a"]], PERIOD)
    assert got["revenue"][0] == both["revenue"]
    assert got["stockout_days"][0] == only_a["stockout_days"]
    assert got["in_stock_rate"][0] == only_a["in_stock_rate"]
    assert got["stockout_days"][0] != both["stockout_days"]


def test_unknown_scopes_and_bad_periods_are_refused(factory: SessionFactory) -> None:
    with factory() as s, pytest.raises(NotFound, match="No stand"):
        kpi_report(s, Scope(ScopeKind.STAND, "nope"), PERIOD, now=NOW)
    with factory() as s, pytest.raises(NotFound, match="No partner"):
        kpi_report(s, Scope(ScopeKind.PARTNER, "nope"), PERIOD, now=NOW)
    with pytest.raises(ValidationError, match="not understood"):
        parse_period("last month", now=NOW)
    with pytest.raises(ValidationError, match="ends before"):
        parse_period("2026-03-10..2026-03-01", now=NOW)
    assert parse_period("7d", now=NOW) == Period(date(2026, 3, 24), date(2026, 3, 30))
    assert parse_period("2026-01-01..2026-01-31", now=NOW).days == 31


def test_an_empty_program_has_no_ratios(factory: SessionFactory, catalog: object) -> None:
    with factory() as s:
        report = kpi_report(s, Scope(ScopeKind.PROGRAM), PERIOD, now=NOW)
    assert report.stand_count == 0
    assert report["revenue"].value == Decimal("0.00")
    assert report["aov"].value is None
    assert report["sell_through"].value is None
    assert report["revenue"].change is None


def test_daylight_saving_changes_are_found_to_the_second() -> None:
    lo = datetime(2026, 1, 1, tzinfo=UTC)
    hi = datetime(2027, 1, 1, tzinfo=UTC)
    assert utc_offsets(BERLIN, lo, hi) == [
        (lo, 3600),
        (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), 7200),
        (datetime(2026, 10, 25, 1, 0, tzinfo=UTC), 3600),
    ]
    assert utc_offsets("UTC", lo, hi) == [(lo, 0)]


def test_the_same_figures_on_postgresql(pg_server_url: str) -> None:
    """PostgreSQL finds local days with AT TIME ZONE instead of the SQLite offset table."""
    from sqlalchemy import text

    from app.db import open_db
    from app.reference import seed_reference_data

    factory = open_db(pg_server_url)
    try:
        with factory() as s, s.begin():
            seed_reference_data(s)
            products = []
            for i in range(2):
                p = Product(
                    sku=f"SKU-{i:03d}",
                    name=f"Product {i:02d}",
                    category="snacks",
                    list_price=Decimal("1.50") + Decimal(i) / 2,
                    unit_cost=Decimal("0.9000") + Decimal(i) / 4,
                    pack_size=1,
                )
                s.add(p)
                s.flush()
                products.append(CatalogProduct(p.id, p.sku, "", p.name, p.list_price, 1))
        with factory() as s, s.begin():
            w, ids = _build(s, products)
        for name, make in SCOPES.items():
            scope, keys = make(ids)
            stands = [ids[k] for k in keys]
            got = _report(factory, scope)
            want = {
                k: (v, expected(w, stands, PRIOR)[k])
                for k, v in expected(w, stands, PERIOD).items()
            }
            assert got == want, name
    finally:
        engine = factory.kw["bind"]
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
