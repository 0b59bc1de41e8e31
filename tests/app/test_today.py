"""The rep's visit list (app/services/today.py) on a hand-built program whose order is known.

Every stand below is built so that one reason, or a known pair, applies; the expected scores
are worked out by hand from the rule in ``visit_list``'s docstring, not from the code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.db import SessionFactory
from app.ids import new_id
from app.models import InsightStatus, Severity, StandAIInsight, StandInventory, StandLocation
from app.rules import PROGRAM_TIMEZONE, local_date
from app.services import inventory, refills, sales
from app.services.base import Actor
from app.services.today import STOCKOUT_RISK_KIND, visit_list
from tests.conftest import MANAGER, OTHER_REP, REP, CatalogProduct, make_stand

NOW = utcnow().replace(microsecond=0)
PAR, REORDER, CAPACITY = 20, 5, 40


@dataclass(frozen=True)
class Program:
    ids: dict[str, str]  # stand name -> id
    p0: str
    p1: str
    refills: dict[str, str]


def _at(days: float) -> datetime:
    return NOW - timedelta(days=days)


def _stand(
    s: Session, name: str, p0: str, p1: str, *, rep: Actor = REP, activate: bool = True
) -> str:
    stand = make_stand(s, name=name, products=[p0, p1], activate=activate)
    # Placed two months ago (onboarding stamps the real clock), so a full window of sales.
    with s.begin():
        s.execute(
            update(StandLocation)
            .where(StandLocation.id == stand.stand_id)
            .values(assigned_rep=rep.user, created_at=_at(60))
        )
        s.execute(
            update(StandInventory)
            .where(StandInventory.stand_id == stand.stand_id)
            .values(created_at=_at(60))
        )
    for pid in (p0, p1):
        inventory.set_levels(
            s, rep, stand.stand_id, pid, capacity=CAPACITY, par_level=PAR, reorder_point=REORDER
        )
    return stand.stand_id


def _sell(s: Session, stand_id: str, product: str, units: int, *, days_ago: float) -> str:
    return sales.record_sale(
        s, REP, stand_id, [sales.SaleLine(product, units)], "cash", occurred_at=_at(days_ago)
    ).order_id


def _count(s: Session, stand_id: str, counts: dict[str, int], *, days_ago: float) -> None:
    inventory.record_count(s, REP, stand_id, counts, counted_at=_at(days_ago))


def _scheduled(s: Session, stand_id: str, product: str, *, days_ago: int = 0) -> str:
    """A refill scheduled for the stand's local day ``days_ago`` days back (0: today)."""
    when = _at(days_ago)
    rid = refills.request_refill(s, REP, stand_id, {product: 5}, now=when).refill_id
    refills.approve_refill(s, MANAGER, rid, now=when)
    refills.schedule_refill(s, MANAGER, rid, local_date(when), "Depot", now=when)
    return rid


@pytest.fixture
def program(factory: SessionFactory, catalog: list[CatalogProduct]) -> Program:
    p0, p1 = catalog[0].id, catalog[1].id  # pack sizes 1 and 6
    ids: dict[str, str] = {}
    due: dict[str, str] = {}
    with factory() as s:
        fine = {p0: 20, p1: 20}

        # Alpha: 14 units of p0 in the window (0.5 a day), 2 left: 4 days of cover, p0 low.
        ids["Alpha"] = a = _stand(s, "Alpha", p0, p1)
        _sell(s, a, p0, 7, days_ago=20)
        _sell(s, a, p0, 7, days_ago=5)
        _sell(s, a, p0, 9, days_ago=40)  # outside the 28-day window: ignored
        _count(s, a, {p0: 2, p1: 30}, days_ago=1)

        # Bravo: a refill scheduled for today, waiting to be delivered.
        ids["Bravo"] = b = _stand(s, "Bravo", p0, p1)
        _count(s, b, fine, days_ago=1)
        due["Bravo"] = _scheduled(s, b, p0)

        # Charlie: last counted 35 days ago; nothing sold.
        ids["Charlie"] = c = _stand(s, "Charlie", p0, p1)
        _count(s, c, fine, days_ago=35)

        # Delta: p0 sells 1 a day and is out: zero cover, one product out.
        ids["Delta"] = d = _stand(s, "Delta", p0, p1)
        _sell(s, d, p0, 28, days_ago=10)
        _count(s, d, {p0: 0, p1: 20}, days_ago=1)

        # Echo (the other rep's): 30 sold, one sale of 2 voided = 28 net; 3 left: 3 days.
        ids["Echo"] = e = _stand(s, "Echo", p0, p1, rep=OTHER_REP)
        _sell(s, e, p0, 28, days_ago=12)
        voided = _sell(s, e, p0, 2, days_ago=11)
        sales.void_sale(s, REP, voided, occurred_at=_at(11))
        _count(s, e, {p0: 3, p1: 20}, days_ago=1)

        # Foxtrot: planned, not live yet: never listed, however empty.
        ids["Foxtrot"] = _stand(s, "Foxtrot", p0, p1, activate=False)

        # Golf: all fine; its refill is scheduled for tomorrow, so not due.
        ids["Golf"] = g = _stand(s, "Golf", p0, p1)
        _count(s, g, fine, days_ago=1)
        rid = refills.request_refill(s, REP, g, {p0: 5}).refill_id
        refills.approve_refill(s, MANAGER, rid)
        refills.schedule_refill(s, MANAGER, rid, local_date(NOW) + timedelta(days=1), "Depot")

        # Hotel: delivered, waiting for the partner's confirmation.
        ids["Hotel"] = h = _stand(s, "Hotel", p0, p1)
        _count(s, h, fine, days_ago=1)
        rid = _scheduled(s, h, p0)
        refills.deliver_refill(s, REP, rid)

        # India (the other rep's): a refill scheduled two days ago and not delivered.
        ids["India"] = i = _stand(s, "India", p0, p1, rep=OTHER_REP)
        _count(s, i, fine, days_ago=1)
        due["India"] = _scheduled(s, i, p0, days_ago=2)
    return Program(ids, p0, p1, due)


def _names(rows: list, program: Program) -> list[str]:
    by_id = {v: k for k, v in program.ids.items()}
    return [by_id[r.stand_id] for r in rows]


def test_a_reps_list_is_their_stands_most_urgent_first(factory, program: Program) -> None:
    with factory() as s:
        rows = visit_list(s, rep=REP.user, now=NOW)
    assert _names(rows, program) == ["Bravo", "Delta", "Alpha", "Charlie", "Hotel"]
    by = dict(zip(_names(rows, program), rows, strict=True))
    assert by["Bravo"].score == 100
    assert by["Bravo"].reason_texts == ("refill scheduled for today — deliver",)
    assert by["Bravo"].refills_due == (program.refills["Bravo"],)
    assert by["Delta"].score == 85  # 15 for the product out + 70 for zero cover
    assert by["Delta"].reason_texts == ("1 product out",)
    assert by["Delta"].days_of_cover == 0
    assert by["Alpha"].score == 35  # 10 x (7 - 4) + 5 for the low product
    assert by["Alpha"].reason_texts == ("4 days of cover", "1 product low")
    assert by["Alpha"].days_of_cover == pytest.approx(4.0)
    assert by["Charlie"].score == 27  # 20 + 7 days beyond the 28
    assert by["Charlie"].reason_texts == ("count 35 days ago",)
    assert by["Charlie"].count_overdue
    assert by["Charlie"].days_of_cover is None  # nothing sold: no cover to speak of
    assert by["Hotel"].score == 10
    assert by["Hotel"].reason_texts == ("delivery to confirm with the partner",)
    assert len(by["Hotel"].refills_to_confirm) == 1


def test_managers_see_every_rep_and_late_refills_come_first(factory, program: Program) -> None:
    with factory() as s:
        rows = visit_list(s, rep=None, now=NOW)
    assert _names(rows, program) == [
        "India",
        "Bravo",
        "Delta",
        "Echo",
        "Alpha",
        "Charlie",
        "Hotel",
    ]
    india, echo = rows[0], rows[3]
    day = local_date(_at(2))
    assert india.score == 120  # 100 + 2 days late x 10
    assert india.reason_texts == (f"refill due since {day.day} {day.strftime('%b')} — deliver",)
    assert echo.score == 45  # 3 days of cover: 40; one product low: 5
    assert echo.days_of_cover == pytest.approx(3.0)  # the voided units did not sell
    assert echo.assigned_rep == OTHER_REP.user


def test_limit_and_a_rep_without_stands(factory, program: Program) -> None:
    with factory() as s:
        assert _names(visit_list(s, rep=None, now=NOW, limit=2), program) == ["India", "Bravo"]
        assert visit_list(s, rep="rep.nobody", now=NOW) == []


def test_a_stand_never_counted_is_overdue_after_the_grace_period(
    factory, catalog: list[CatalogProduct]
) -> None:
    with factory() as s:
        make_stand(s, name="Newcomer", products=[catalog[0].id])  # created now, never counted

    def reasons(days_later: int) -> tuple[str, ...]:
        with factory() as s:
            (row,) = visit_list(s, rep=REP.user, now=utcnow() + timedelta(days=days_later))
        return row.reason_texts

    assert reasons(0) == ("1 product out",)  # new: not overdue yet
    assert reasons(29) == ("never counted", "1 product out")  # 40 points beat 15


# --------------------------------------------------------------------------- the coach's risk


def _insight(
    s: Session,
    stand_id: str,
    at_risk: list[tuple[str, str, float]],
    *,
    status: InsightStatus = InsightStatus.NEW,
    kind: str = STOCKOUT_RISK_KIND,
) -> None:
    """A stored coach insight shaped as :func:`app.coach.insights.stockout_risk` stores it:
    ``at_risk`` is (product id, SKU, probability), riskiest first."""
    evidence = {
        "days_to_visit": 4,
        "next_visit": (NOW + timedelta(days=4)).date().isoformat(),
        "service": 0.95,
        "at_risk": [
            {"product_id": pid, "sku": sku, "risk": p, "expected_before_visit": 3.0}
            for pid, sku, p in at_risk
        ],
    }
    with s.begin():
        s.add(
            StandAIInsight(
                id=new_id(),
                stand_id=stand_id,
                product_id=None,
                kind=kind,
                severity=Severity.CRITICAL,
                message="may run out",
                action="{}",
                evidence=json.dumps(evidence),
                model_version="test",
                dedup_key=f"{kind}:{stand_id}:{status}",
                status=status,
                created_at=NOW,
                updated_at=NOW,
            )
        )


def test_the_coachs_stockout_risk_moves_a_stand_up(
    factory, program: Program, catalog: list[CatalogProduct]
) -> None:
    ids, p0, p1 = program.ids, program.p0, program.p1
    with factory() as s:
        # Charlie (27 points for its count) is 85 % likely to run out of Product 00.
        _insight(s, ids["Charlie"], [(p0, catalog[0].sku, 0.85)])
        # Golf had nothing to do; the coach sees two products at risk (acknowledged: open).
        _insight(
            s,
            ids["Golf"],
            [(p1, catalog[1].sku, 0.6), (p0, catalog[0].sku, 0.55)],
            status=InsightStatus.ACKNOWLEDGED,
        )
        # Closed insights and other kinds do not count.
        _insight(s, ids["Hotel"], [(p0, catalog[0].sku, 0.99)], status=InsightStatus.DISMISSED)
        _insight(s, ids["Alpha"], [(p0, catalog[0].sku, 0.99)], status=InsightStatus.DONE)
        _insight(s, ids["Delta"], [(p0, catalog[0].sku, 0.99)], kind="slow_mover")
        # The other rep's stand stays off this rep's list.
        _insight(s, ids["Echo"], [(p0, catalog[0].sku, 0.9)])
        rows = visit_list(s, rep=REP.user, now=NOW)
    assert _names(rows, program) == ["Charlie", "Bravo", "Delta", "Golf", "Alpha", "Hotel"]
    by = dict(zip(_names(rows, program), rows, strict=True))
    assert by["Charlie"].score == 27 + 85
    assert by["Charlie"].reason_texts == (
        "85 % risk Product 00 runs out before the next visit (coach)",
        "count 35 days ago",
    )
    assert by["Charlie"].reasons[0].kind == "risk"
    assert by["Charlie"].stockout_risk == pytest.approx(0.85)
    assert by["Golf"].score == 60
    assert by["Golf"].reason_texts == (
        "60 % risk Product 01 runs out before the next visit (coach; 2 products at risk)",
    )
    # Unchanged where the coach said nothing (or someone closed what it said).
    assert (by["Bravo"].score, by["Bravo"].stockout_risk) == (100, None)
    assert by["Delta"].score == 85
    assert by["Alpha"].score == 35
    assert by["Hotel"].score == 10
    assert by["Hotel"].stockout_risk is None


def test_unreadable_evidence_is_ignored(factory, program: Program) -> None:
    ids, p0 = program.ids, program.p0
    with factory() as s:
        _insight(s, ids["Charlie"], [(p0, "SKU-000", float("nan"))])
        _insight(s, ids["Alpha"], [(p0, "SKU-000", 0.9)])
        with s.begin():
            s.execute(
                update(StandAIInsight)
                .where(StandAIInsight.stand_id == ids["Alpha"])
                .values(evidence="not json")
            )
        rows = visit_list(s, rep=REP.user, now=NOW)
    by = dict(zip(_names(rows, program), rows, strict=True))
    assert (by["Charlie"].score, by["Charlie"].stockout_risk) == (27, None)
    assert (by["Alpha"].score, by["Alpha"].stockout_risk) == (35, None)


def sell_daily(
    s: Session,
    stand_id: str,
    plan: dict[str, tuple[int, int]],
    *,
    now: datetime,
    days: int = 42,
) -> None:
    """A sales history the coach can forecast: the stand and its SKUs placed ``days`` + 7
    days before ``now``, stocked and counted, then each SKU of ``plan`` (product id ->
    (units sold a day, units left)) sold every day, and a count yesterday leaving the units
    left (the last visit: the next one is a refill cadence later)."""
    start = now - timedelta(days=days + 7)
    with s.begin():
        s.execute(
            update(StandLocation).where(StandLocation.id == stand_id).values(created_at=start)
        )
        s.execute(
            update(StandInventory)
            .where(StandInventory.stand_id == stand_id)
            .values(created_at=start)
        )
    stock = {pid: rate * days + left + 20 for pid, (rate, left) in plan.items()}
    inventory.record_count(s, REP, stand_id, stock, counted_at=now - timedelta(days=days + 1))
    today = local_date(now)
    for d in range(days, 1, -1):
        lines = [sales.SaleLine(pid, rate) for pid, (rate, _left) in plan.items() if rate]
        if lines:
            # At noon of each of the stand's own days (the program's time zone), so every
            # one of those days has its sale whatever the hour of ``now`` in UTC.
            noon = datetime.combine(today - timedelta(days=d), time(12), ZoneInfo(PROGRAM_TIMEZONE))
            sales.record_sale(s, REP, stand_id, lines, "cash", occurred_at=noon.astimezone(UTC))
    inventory.record_count(
        s,
        REP,
        stand_id,
        {pid: left for pid, (_rate, left) in plan.items()},
        counted_at=now - timedelta(days=1),
    )


def test_the_visit_list_reads_what_the_coach_stores(factory, catalog: list[CatalogProduct]) -> None:
    """End to end: a coach run's stock-out insight orders the list, with its numbers."""
    from app.coach import insights as rules
    from app.coach.agent import list_insights, run_coach

    assert rules.STOCKOUT_RISK == STOCKOUT_RISK_KIND
    p = [c.id for c in catalog[:3]]
    with factory() as s:
        risky = make_stand(s, name="Risky", products=p).stand_id
        calm = make_stand(s, name="Calm", products=p).stand_id
        # 4 a day of Product 00 and 2 left: out long before the visit in 6 days.
        sell_daily(s, risky, {p[0]: (4, 2), p[1]: (1, 30), p[2]: (0, 10)}, now=NOW)
        sell_daily(s, calm, {p[0]: (1, 60), p[1]: (1, 60), p[2]: (1, 60)}, now=NOW)
        run_coach(s, now=NOW)
        stored = list_insights(s, kind=rules.STOCKOUT_RISK)
        rows = visit_list(s, rep=None, now=NOW)
    (insight,) = stored
    assert insight.stand_id == risky
    top = max(item["risk"] for item in insight.evidence["at_risk"])
    assert top > 0.9
    by_stand = {r.stand_id: r for r in rows}
    row = by_stand[risky]
    assert row.reasons[0].kind == "risk"
    assert row.reasons[0].points == round(100 * top)
    assert row.reason_texts[0] == (
        f"{round(100 * top)} % risk Product 00 runs out before the next visit (coach)"
    )
    assert row.stockout_risk == pytest.approx(top)
    assert calm not in by_stand or by_stand[calm].stockout_risk is None
    assert rows[0].stand_id == risky
