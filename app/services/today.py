"""The rep's day: which active stands to visit, most urgent first, and why.

:func:`visit_list` gathers, per active stand, what makes a visit worthwhile and turns it into
an urgency score and short reasons a rep can read at a glance ("2 products out",
"3 days of cover", "count 35 days ago", "refill scheduled for today — deliver",
"85 % risk Cola runs out before the next visit (coach)").

The aggregates come from SQL in four queries, whatever the number of stands: stock states
and the last count per stand, units sold per stand × SKU over the last
:data:`ADS_WINDOW_DAYS` days (sale movements net of voids), the refills waiting for a
delivery or a confirmation, and the coach's open stock-out insights (plus one small look-up
of the names of the products they point at, when there are any). Python then divides,
scores and sorts; the date arithmetic (a SKU's age in the window, a stand's local "today")
and the coach's JSON evidence stay out of the SQL so the same code runs on SQLite and
PostgreSQL.

The coach's part is read from what its last run stored (:mod:`app.coach.agent` keeps one
open ``stockout_risk`` insight per stand at risk and retires the ones that no longer hold),
never computed here: the visit list stays a few cheap queries and does not import numpy.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from app.clock import ensure_utc, utcnow
from app.models import (
    InsightStatus,
    InventoryMovement,
    MovementKind,
    Product,
    RefillStatus,
    StandAIInsight,
    StandInventory,
    StandLocation,
    StandPartner,
    StandRefillOrder,
    StandStatus,
)
from app.rules import local_date
from app.services.base import transactional
from app.services.queries import COUNT_OVERDUE_DAYS

#: Average daily sales are taken over this many days (or the SKU's time on the stand, if
#: shorter).
ADS_WINDOW_DAYS = 28
#: Below this many days of cover a stand is worth a visit.
COVER_ALERT_DAYS = 7
DEFAULT_LIMIT = 50

# Score weights (see visit_list).
REFILL_DUE_POINTS = 100
REFILL_LATE_POINTS_PER_DAY = 10
REFILL_LATE_MAX_DAYS = 5
COVER_POINTS_PER_DAY = 10
OUT_POINTS = 15
LOW_POINTS = 5
COUNT_OVERDUE_POINTS = 20
COUNT_LATE_MAX_POINTS = 20
NEVER_COUNTED_POINTS = 40
CONFIRM_POINTS = 10
#: Points for the coach's stock-out risk: this many × the highest probability that a SKU
#: runs out before the next visit (an 85 % risk: 85 points; the coach reports from 50 %).
COACH_RISK_POINTS = 100

#: The coach's insight kind read here (:data:`app.coach.insights.STOCKOUT_RISK`; spelled out
#: so that the visit list does not import the coach and numpy with it).
STOCKOUT_RISK_KIND = "stockout_risk"
_OPEN_INSIGHTS = (InsightStatus.NEW, InsightStatus.ACKNOWLEDGED)


@dataclass(frozen=True)
class Reason:
    """One reason to visit: a kind for icons and colour, the text, and its share of the
    score."""

    kind: str  # "refill_due", "risk", "cover", "out", "low", "count", "confirm"
    text: str
    points: int

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class VisitRow:
    stand_id: str
    stand_name: str
    partner_name: str
    city: str
    address: str
    assigned_rep: str | None
    score: int
    reasons: tuple[Reason, ...]
    #: Lowest days of cover over the SKUs that sold in the window (None: nothing sold).
    days_of_cover: float | None
    out_count: int
    low_count: int
    last_counted_at: datetime | None
    count_overdue: bool
    #: Refills scheduled for the stand's today or earlier and not delivered yet.
    refills_due: tuple[str, ...]
    #: Delivered refills the partner has not confirmed yet.
    refills_to_confirm: tuple[str, ...]
    #: The coach's highest probability that a SKU runs out before the next visit, from its
    #: open stock-out insight (None: the coach reported no risk for this stand).
    stockout_risk: float | None = None

    @property
    def reason_texts(self) -> tuple[str, ...]:
        return tuple(r.text for r in self.reasons)


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _cover_text(cover: float) -> str:
    if cover < 1:
        return "less than a day of cover"
    return f"{_plural(math.floor(cover), 'day', 'days')} of cover"


def _day_text(day: date) -> str:
    return f"{day.day} {day.strftime('%b')}"


@dataclass(frozen=True)
class _Risk:
    """The riskiest SKU of a stand's open stock-out insight."""

    probability: float
    product_id: str | None
    sku: str
    #: SKUs the insight lists as at risk (this one included).
    at_risk: int
    #: The product's name when the evidence carries it (else looked up by id).
    name: str | None = None


@dataclass
class _Acc:
    stand_id: str
    name: str
    partner: str
    city: str
    address: str
    rep: str | None
    timezone: str
    created_at: datetime
    out: int = 0
    low: int = 0
    last_count: datetime | None = None
    cover: float | None = None
    due: tuple[tuple[date, str], ...] = ()
    to_confirm: tuple[str, ...] = ()
    risk: _Risk | None = None


@transactional
def visit_list(
    session: Session,
    *,
    rep: str | None,
    now: datetime | None = None,
    limit: int | None = DEFAULT_LIMIT,
) -> list[VisitRow]:
    """Active stands that need a visit, most urgent first (only ``rep``'s stands if given;
    ``None`` for managers and admins, who see all). Stands with nothing to do are left out.

    The urgency score adds up, per stand:

    - a refill scheduled for the stand's local today or earlier and not delivered:
      100 points, plus 10 per day late (up to 5 days): the goods are waiting;
    - days of cover, the lowest over the SKUs that sold in the window (on hand ÷ average
      daily sales; SKUs without sales are ignored): 10 points per day below 7,
      so 0 days is 70 points and 6.5 days is 5;
    - 15 points per SKU out of stock (on hand ≤ 0) and 5 per SKU low (at or below its
      reorder point);
    - a count older than :data:`~app.services.queries.COUNT_OVERDUE_DAYS` days: 20 points
      plus 1 per day beyond (up to 20 more); a stand never counted after that long: 40;
    - a delivered refill waiting for the partner's confirmation: 10 points;
    - the coach's stock-out risk: 100 × the highest probability that a SKU runs out before
      the next visit, from the stand's open (new or acknowledged) ``stockout_risk`` insight
      of the coach's last run (the coach reports from 50 %, so 50 to 100 points: a SKU
      almost sure to run out weighs as much as a refill waiting to be delivered). Stands
      without one score as above; dismissed and done insights do not count.

    Rows are ordered by score (highest first), then by the lowest days of cover, then by
    stand name. ``limit=None`` returns every stand that needs a visit.
    """
    at = ensure_utc(now) if now is not None else utcnow()
    since = at - timedelta(days=ADS_WINDOW_DAYS)
    stands = _stands(session, rep)
    if not stands:
        return []
    _add_stock(session, stands, rep)
    _add_cover(session, stands, rep, at, since)
    _add_refills(session, stands, rep)
    _add_coach_risk(session, stands, rep)
    rows = [row for acc in stands.values() if (row := _score(acc, at)) is not None]
    rows.sort(
        key=lambda r: (
            -r.score,
            math.inf if r.days_of_cover is None else r.days_of_cover,
            r.stand_name.casefold(),
            r.stand_id,
        )
    )
    return rows if limit is None else rows[:limit]


def _stands(session: Session, rep: str | None) -> dict[str, _Acc]:
    stmt = (
        select(
            StandLocation.id,
            StandLocation.name,
            StandPartner.name,
            StandLocation.city,
            StandLocation.address,
            StandLocation.assigned_rep,
            StandLocation.timezone,
            StandLocation.created_at,
        )
        .join(StandPartner, StandPartner.id == StandLocation.partner_id)
        .where(StandLocation.status == StandStatus.ACTIVE)
    )
    if rep is not None:
        stmt = stmt.where(StandLocation.assigned_rep == rep)
    return {
        sid: _Acc(sid, name, partner, city, address, assigned, tz, ensure_utc(created))
        for sid, name, partner, city, address, assigned, tz, created in session.execute(stmt)
    }


def _add_stock(session: Session, stands: dict[str, _Acc], rep: str | None) -> None:
    stmt = (
        select(
            StandInventory.stand_id,
            func.sum(case((StandInventory.on_hand <= 0, 1), else_=0)),
            func.sum(
                case(
                    (
                        and_(
                            StandInventory.on_hand > 0,
                            StandInventory.on_hand <= StandInventory.reorder_point,
                        ),
                        1,
                    ),
                    else_=0,
                )
            ),
            func.max(StandInventory.last_counted_at),
        )
        .join(StandLocation, StandLocation.id == StandInventory.stand_id)
        .where(StandInventory.active, StandLocation.status == StandStatus.ACTIVE)
        .group_by(StandInventory.stand_id)
    )
    if rep is not None:
        stmt = stmt.where(StandLocation.assigned_rep == rep)
    for sid, out, low, last in session.execute(stmt):
        acc = stands.get(sid)
        if acc is not None:
            acc.out, acc.low = int(out or 0), int(low or 0)
            acc.last_count = ensure_utc(last) if isinstance(last, datetime) else None


def _add_cover(
    session: Session, stands: dict[str, _Acc], rep: str | None, at: datetime, since: datetime
) -> None:
    sold = (
        select(
            InventoryMovement.stand_id.label("stand_id"),
            InventoryMovement.product_id.label("product_id"),
            (-func.sum(InventoryMovement.quantity)).label("units"),
        )
        .where(
            InventoryMovement.kind.in_((MovementKind.SALE, MovementKind.SALE_VOID)),
            InventoryMovement.occurred_at >= since,
            InventoryMovement.occurred_at <= at,
        )
        .group_by(InventoryMovement.stand_id, InventoryMovement.product_id)
        .subquery()
    )
    stmt = (
        select(
            StandInventory.stand_id,
            StandInventory.on_hand,
            StandInventory.created_at,
            sold.c.units,
        )
        .join(
            sold,
            and_(
                sold.c.stand_id == StandInventory.stand_id,
                sold.c.product_id == StandInventory.product_id,
            ),
        )
        .join(StandLocation, StandLocation.id == StandInventory.stand_id)
        .where(
            StandInventory.active,
            StandLocation.status == StandStatus.ACTIVE,
            sold.c.units > 0,
        )
    )
    if rep is not None:
        stmt = stmt.where(StandLocation.assigned_rep == rep)
    full = timedelta(days=ADS_WINDOW_DAYS)
    for sid, on_hand, created, units in session.execute(stmt):
        acc = stands.get(sid)
        if acc is None:
            continue
        # A SKU placed a week ago has sold over a week, not over the whole window.
        span = min(full, at - ensure_utc(created))
        days = max(span.total_seconds() / 86400, 1.0)
        ads = int(units) / days
        cover = max(int(on_hand), 0) / ads
        if acc.cover is None or cover < acc.cover:
            acc.cover = cover


def _add_refills(session: Session, stands: dict[str, _Acc], rep: str | None) -> None:
    stmt = (
        select(
            StandRefillOrder.id,
            StandRefillOrder.stand_id,
            StandRefillOrder.status,
            StandRefillOrder.scheduled_for,
        )
        .join(StandLocation, StandLocation.id == StandRefillOrder.stand_id)
        .where(
            StandLocation.status == StandStatus.ACTIVE,
            StandRefillOrder.status.in_((RefillStatus.SCHEDULED, RefillStatus.DELIVERED)),
        )
        .order_by(StandRefillOrder.scheduled_for, StandRefillOrder.id)
    )
    if rep is not None:
        stmt = stmt.where(StandLocation.assigned_rep == rep)
    for rid, sid, status, day in session.execute(stmt):
        acc = stands.get(sid)
        if acc is None:
            continue
        if status == RefillStatus.DELIVERED:
            acc.to_confirm = (*acc.to_confirm, rid)
        elif day is not None:
            acc.due = (*acc.due, (day, rid))


def _add_coach_risk(session: Session, stands: dict[str, _Acc], rep: str | None) -> None:
    stmt = (
        select(StandAIInsight.stand_id, StandAIInsight.evidence)
        .join(StandLocation, StandLocation.id == StandAIInsight.stand_id)
        .where(
            StandAIInsight.kind == STOCKOUT_RISK_KIND,
            StandAIInsight.status.in_(_OPEN_INSIGHTS),
            StandLocation.status == StandStatus.ACTIVE,
        )
    )
    if rep is not None:
        stmt = stmt.where(StandLocation.assigned_rep == rep)
    for sid, evidence in session.execute(stmt):
        acc = stands.get(sid)
        risk = _top_risk(evidence)
        if acc is None or risk is None:
            continue
        if acc.risk is None or risk.probability > acc.risk.probability:
            acc.risk = risk
    ids = {
        a.risk.product_id
        for a in stands.values()
        if a.risk and a.risk.product_id and not a.risk.name
    }
    if not ids:
        return
    # A list, not the Result: dict() would take the Result's keys() for a mapping's.
    found = session.execute(select(Product.id, Product.name).where(Product.id.in_(ids))).all()
    names = dict(found)
    for acc in stands.values():
        if acc.risk is not None and not acc.risk.name and acc.risk.product_id in names:
            acc.risk = replace(acc.risk, name=names[acc.risk.product_id])


def _top_risk(evidence: str | None) -> _Risk | None:
    """The riskiest SKU in a stock-out insight's evidence, ``{"at_risk": [{"product_id",
    "sku", "risk", ...}, ...]}`` (see :func:`app.coach.insights.stockout_risk`; a "name"
    there, should the coach add one, saves the look-up of the product's name); None when
    the evidence says nothing usable."""
    try:
        data = json.loads(evidence or "{}")
    except ValueError:
        return None
    items = data.get("at_risk") if isinstance(data, dict) else None
    best: _Risk | None = None
    count = 0
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, dict):
            continue
        p = item.get("risk")
        if not isinstance(p, int | float) or isinstance(p, bool) or not math.isfinite(p):
            continue
        count += 1
        p = min(max(float(p), 0.0), 1.0)
        if best is None or p > best.probability:
            pid, name = item.get("product_id"), item.get("name")
            best = _Risk(
                p,
                str(pid) if pid else None,
                str(item.get("sku") or ""),
                0,
                str(name) if isinstance(name, str) and name else None,
            )
    if best is None:
        return None
    return _Risk(best.probability, best.product_id, best.sku, count, best.name)


def _risk_text(risk: _Risk) -> str:
    what = risk.name or risk.sku or "a product"
    text = f"{round(100 * risk.probability)} % risk {what} runs out before the next visit"
    if risk.at_risk > 1:
        return f"{text} (coach; {risk.at_risk} products at risk)"
    return f"{text} (coach)"


def _score(acc: _Acc, at: datetime) -> VisitRow | None:
    reasons: list[Reason] = []
    today = local_date(at, acc.timezone)
    due = [(day, rid) for day, rid in acc.due if day <= today]
    if due:
        first = min(day for day, _ in due)
        late = (today - first).days
        points = REFILL_DUE_POINTS + REFILL_LATE_POINTS_PER_DAY * min(late, REFILL_LATE_MAX_DAYS)
        what = "refill" if len(due) == 1 else f"{len(due)} refills"
        when = "today" if late == 0 else f"{_day_text(first)}"
        verb = "scheduled for" if late == 0 else "due since"
        reasons.append(Reason("refill_due", f"{what} {verb} {when} — deliver", points))
    cover_points = 0
    if acc.cover is not None and acc.cover < COVER_ALERT_DAYS:
        cover_points = round(COVER_POINTS_PER_DAY * (COVER_ALERT_DAYS - acc.cover))
        if acc.cover > 0 and cover_points > 0:
            reasons.append(Reason("cover", _cover_text(acc.cover), cover_points))
            cover_points = 0
    if acc.out:
        # At zero cover a selling SKU is out: "products out" says it, and carries the points.
        points = OUT_POINTS * acc.out + cover_points
        reasons.append(Reason("out", f"{_plural(acc.out, 'product', 'products')} out", points))
    if acc.low:
        reasons.append(
            Reason("low", f"{_plural(acc.low, 'product', 'products')} low", LOW_POINTS * acc.low)
        )
    overdue_after = timedelta(days=COUNT_OVERDUE_DAYS)
    count_overdue = False
    if acc.last_count is None:
        if at - acc.created_at > overdue_after:
            count_overdue = True
            reasons.append(Reason("count", "never counted", NEVER_COUNTED_POINTS))
    elif at - acc.last_count > overdue_after:
        count_overdue = True
        ago = (at - acc.last_count).days
        extra = min(ago - COUNT_OVERDUE_DAYS, COUNT_LATE_MAX_POINTS)
        reasons.append(Reason("count", f"count {ago} days ago", COUNT_OVERDUE_POINTS + extra))
    if acc.risk is not None:
        points = round(COACH_RISK_POINTS * acc.risk.probability)
        if points > 0:
            reasons.append(Reason("risk", _risk_text(acc.risk), points))
    if acc.to_confirm:
        n = len(acc.to_confirm)
        text = (
            "delivery to confirm with the partner"
            if n == 1
            else f"{n} deliveries to confirm with the partner"
        )
        reasons.append(Reason("confirm", text, CONFIRM_POINTS))
    if not reasons:
        return None
    reasons.sort(key=lambda r: -r.points)
    return VisitRow(
        stand_id=acc.stand_id,
        stand_name=acc.name,
        partner_name=acc.partner,
        city=acc.city,
        address=acc.address,
        assigned_rep=acc.rep,
        score=sum(r.points for r in reasons),
        reasons=tuple(reasons),
        days_of_cover=acc.cover,
        out_count=acc.out,
        low_count=acc.low,
        last_counted_at=acc.last_count,
        count_overdue=count_overdue,
        refills_due=tuple(rid for _, rid in sorted(due)),
        refills_to_confirm=acc.to_confirm,
        stockout_risk=acc.risk.probability if acc.risk is not None else None,
    )


@transactional
def reps(session: Session) -> list[str]:
    """The reps assigned to active stands (for a manager's rep filter)."""
    return [
        str(r)
        for r in session.scalars(
            select(StandLocation.assigned_rep)
            .where(
                StandLocation.status == StandStatus.ACTIVE, StandLocation.assigned_rep.is_not(None)
            )
            .distinct()
            .order_by(StandLocation.assigned_rep)
        )
    ]
