"""One stand for the details endpoint: inventory with sales pace and days of cover, open
refills, 7- and 28-day sales (voids netted), open insights; scope; and what it costs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.db import SessionFactory
from app.errors import NotFound
from app.ids import new_id
from app.models import InsightStatus, Role, Severity, StandAIInsight
from app.services import inventory, refills, sales
from app.services.sales import SaleLine
from app.services.scope import AccessScope
from app.services.stand_api import stand_details
from tests.conftest import MANAGER, REP, CatalogProduct, StandFixture

NOW = utcnow().replace(microsecond=0)


@dataclass(frozen=True)
class Story:
    stand_id: str
    p0: str
    p1: str
    totals: dict[str, Decimal]  # sale name -> total
    points: dict[str, int]
    refills: dict[str, str]  # name -> refill id
    insight: str


@pytest.fixture
def story(session: Session, stand: StandFixture, catalog: list[CatalogProduct]) -> Story:
    """On a stand counted full 30 days ago (8 of each):

    ======  ==========  ==========================  ============
    sale    when        lines                       window
    ======  ==========  ==========================  ============
    s1      NOW − 29 d  p0 × 3                      neither
    s2      NOW − 20 d  p0 × 2, p1 × 1              28 d
    s3      NOW − 3 d   p0 × 1                      7 d and 28 d
    s4      NOW − 2 d   p1 × 2, voided at NOW − 1 d  7 d and 28 d
    ======  ==========  ==========================  ============
    """
    sid = stand.stand_id
    p0, p1 = stand.product_ids[:2]
    inventory.record_count(session, REP, sid, {p0: 8, p1: 8}, counted_at=NOW - timedelta(days=30))
    totals, points = {}, {}
    for name, days, lines in (
        ("s1", 29, [SaleLine(p0, 3)]),
        ("s2", 20, [SaleLine(p0, 2), SaleLine(p1, 1)]),
        ("s3", 3, [SaleLine(p0, 1)]),
        ("s4", 2, [SaleLine(p1, 2)]),
    ):
        sale = sales.record_sale(
            session, REP, sid, lines, "cash", occurred_at=NOW - timedelta(days=days)
        )
        totals[name], points[name] = sale.total, sale.points_earned
        if name == "s4":
            sales.void_sale(session, REP, sale.order_id, occurred_at=NOW - timedelta(days=1))
    made = {}
    for name, days in (("old", 5), ("rejected", 4), ("approved", 1)):
        made[name] = refills.request_refill(
            session, REP, sid, {p0: 2}, now=NOW - timedelta(days=days)
        ).refill_id
    refills.reject_refill(session, MANAGER, made["rejected"], "Not needed", now=NOW)
    refills.approve_refill(session, MANAGER, made["approved"], now=NOW)
    insight = new_id()
    with session.begin():
        for iid, status in ((insight, InsightStatus.NEW), (new_id(), InsightStatus.DISMISSED)):
            session.add(
                StandAIInsight(
                    id=iid,
                    stand_id=sid,
                    product_id=p0,
                    kind="stockout_risk",
                    severity=Severity.WARNING,
                    message="Runs out soon.",
                    model_version="test",
                    dedup_key=f"test:{iid}",
                    status=status,
                    created_at=NOW,
                    updated_at=NOW,
                )
            )
    return Story(sid, p0, p1, totals, points, made, insight)


def test_inventory_pace_and_days_of_cover(session: Session, story: Story) -> None:
    d = stand_details(session, story.stand_id, now=NOW)
    lines = {line.product_id: line for line in d.inventory}
    p0, p1 = lines[story.p0], lines[story.p1]
    # p0: 8 − 3 − 2 − 1 = 2 on hand; 3 sold in 28 days (s1 is older).
    assert (p0.on_hand, p0.units_sold_28d) == (2, 3)
    assert p0.avg_daily_sales == Decimal("0.11")  # 3 / 28 = 0.107
    assert p0.days_of_cover == Decimal("18.7")  # 2 / (3 / 28) = 18.67
    assert p0.state == "low"  # reorder point 3
    # p1: 8 − 1 − 2 + 2 = 7 on hand; 1 sold net (the void takes s4 back).
    assert (p1.on_hand, p1.units_sold_28d) == (7, 1)
    assert p1.avg_daily_sales == Decimal("0.04")
    assert p1.days_of_cover == Decimal("196.0")
    assert p1.state == "ok"
    # Nothing sold: no pace, no days of cover; nothing on hand: out.
    others = [line for pid, line in lines.items() if pid not in (story.p0, story.p1)]
    assert others
    for line in others:
        assert (line.units_sold_28d, line.avg_daily_sales, line.days_of_cover) == (
            0,
            Decimal("0.00"),
            None,
        )
        assert line.state == "out"
    # The lines are the detail's, in its order, with its figures.
    assert [line.product_id for line in d.inventory] == [
        row.product_id for row in d.detail.inventory
    ]
    assert all(
        (line.sku, line.par_level, line.list_price) == (row.sku, row.par_level, row.list_price)
        for line, row in zip(d.inventory, d.detail.inventory, strict=True)
    )


def test_sales_windows_net_voids(session: Session, story: Story) -> None:
    d = stand_details(session, story.stand_id, now=NOW)
    t, pts = story.totals, story.points
    assert d.sales_7d.orders == 1  # s3, s4 and the void of s4
    assert d.sales_7d.units == 1
    assert d.sales_7d.revenue == t["s3"]
    assert d.sales_7d.points_earned == pts["s3"]
    assert d.sales_28d.orders == 2  # s2, s3 (s4 voided)
    assert d.sales_28d.units == 4
    assert d.sales_28d.revenue == t["s2"] + t["s3"]
    assert d.sales_28d.points_earned == pts["s2"] + pts["s3"]
    assert isinstance(d.sales_28d.revenue, Decimal)
    assert d.as_of == NOW
    # Later, s2 drops out of the 28 days and s3 out of the 7.
    later = stand_details(session, story.stand_id, now=NOW + timedelta(days=9))
    assert (later.sales_7d.orders, later.sales_7d.units, later.sales_7d.revenue) == (
        0,
        0,
        Decimal(0),
    )
    assert later.sales_28d.revenue == t["s3"]


def test_open_refills_newest_first_and_open_insights(session: Session, story: Story) -> None:
    d = stand_details(session, story.stand_id, now=NOW)
    assert [r.id for r in d.open_refills] == [story.refills["approved"], story.refills["old"]]
    assert [r.status for r in d.open_refills] == ["approved", "requested"]
    assert all(r.line_count == 1 and r.stand_name == "Kiosk am Markt" for r in d.open_refills)
    assert [i.id for i in d.insights] == [story.insight]
    assert d.detail.stand.open_refills == 2


def test_a_stand_without_history(session: Session, stand: StandFixture) -> None:
    d = stand_details(session, stand.stand_id, now=NOW)
    assert d.sales_7d == d.sales_28d
    assert (d.sales_28d.orders, d.sales_28d.units, d.sales_28d.points_earned) == (0, 0, 0)
    assert d.sales_28d.revenue == Decimal(0)
    assert d.open_refills == ()
    assert d.insights == ()
    assert all(line.days_of_cover is None for line in d.inventory)


def test_scope_hides_the_stand(session: Session, stand: StandFixture) -> None:
    sid = stand.stand_id
    assert stand_details(session, sid, access=AccessScope(Role.REP, territory=REP.user))
    assert stand_details(
        session, sid, access=AccessScope(Role.PARTNER, partner_id=stand.partner_id)
    )
    for access in (
        AccessScope(Role.REP, territory="rep.ben"),
        AccessScope(Role.REP),
        AccessScope(Role.MANAGER, region="north"),
        AccessScope(Role.PARTNER, partner_id=new_id()),
    ):
        with pytest.raises(NotFound) as exc:
            stand_details(session, sid, access=access)
        assert exc.value.field == "stand_id"
    with pytest.raises(NotFound):
        stand_details(session, new_id())


@contextmanager
def counting(factory: SessionFactory) -> Iterator[list[str]]:
    engine = factory.kw["bind"]
    statements: list[str] = []

    def before(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)


def test_it_is_a_handful_of_queries(factory: SessionFactory, story: Story) -> None:
    with factory() as s, counting(factory) as statements:
        stand_details(s, story.stand_id, access=AccessScope(Role.REP, territory=REP.user), now=NOW)
    queries = [q for q in statements if q.lstrip().upper().startswith("SELECT")]
    assert len(queries) <= 14, queries  # 12 today: one per table it reads
