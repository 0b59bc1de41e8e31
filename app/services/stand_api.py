"""One stand as the endpoint contract shows it (``GET /api/v1/stand/{id}/details``).

:func:`stand_details` gathers, in a handful of queries and without running the coach: the
stand's detail (as the desktop's detail screen has it), its inventory with what each SKU
sold over the last 28 days and how long the stock lasts at that pace, its open refills,
its sales over the last 7 and 28 days, and the coach's open insights about it.

Sales windows are the 7 × 24 and 28 × 24 hours up to ``now`` in UTC (a sale at exactly the
start of a window is outside it, one at ``now`` inside), not the stand's local calendar
days: the KPI screens give calendar-day figures. A void counts against the window it was
recorded in: its negated lines, total and points are netted, and it takes one order away.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import and_, case, func, select, type_coerce
from sqlalchemy.orm import Session

from app.coach.agent import InsightView, list_insights
from app.models import (
    OrderKind,
    StandOrder,
    StandOrderItem,
)
from app.services.base import to_time, transactional
from app.services.queries import RefillRow, StandDetail, list_refills, stand_detail
from app.services.scope import AccessScope, visible_stand
from app.types import Money

#: The window of the per-SKU sales pace (days).
PACE_DAYS = 28
SHORT_DAYS = 7
_CENT = Decimal("0.01")
_TENTH = Decimal("0.1")


@dataclass(frozen=True)
class InventoryLine:
    product_id: str
    sku: str
    name: str
    category: str
    on_hand: int
    par_level: int
    reorder_point: int
    capacity: int
    list_price: Decimal
    #: 'out' (nothing on hand), 'low' (at or below the reorder point) or 'ok'.
    state: str
    #: Units sold over the last 28 days, voids netted.
    units_sold_28d: int
    #: ``units_sold_28d / 28``, to 2 places.
    avg_daily_sales: Decimal
    #: Days the stock on hand lasts at that pace, to 1 place; None when nothing sold.
    days_of_cover: Decimal | None


@dataclass(frozen=True)
class SalesSummary:
    #: Sales less voids.
    orders: int
    units: int
    revenue: Decimal
    points_earned: int


@dataclass(frozen=True)
class StandDetails:
    detail: StandDetail
    inventory: tuple[InventoryLine, ...]
    #: Refills requested, approved, scheduled or delivered (not yet confirmed), newest first.
    open_refills: tuple[RefillRow, ...]
    sales_7d: SalesSummary
    sales_28d: SalesSummary
    #: The coach's open (new or acknowledged) insights, most severe first.
    insights: tuple[InsightView, ...]
    #: The end of the sales windows (UTC).
    as_of: datetime


def _pace(units: int, days: int) -> Decimal:
    return (Decimal(units) / days).quantize(_CENT, rounding=ROUND_HALF_UP)


def _cover(on_hand: int, units: int, days: int) -> Decimal | None:
    """Days the stock lasts at ``units`` per ``days``: the exact ratio, rounded once."""
    if units <= 0:
        return None
    return (Decimal(max(on_hand, 0)) * days / units).quantize(_TENTH, rounding=ROUND_HALF_UP)


@transactional
def stand_details(
    session: Session,
    stand_id: str,
    *,
    access: AccessScope | None = None,
    now: datetime | None = None,
) -> StandDetails:
    """Everything the details endpoint shows about one stand (see the module docstring).

    Reads only. A stand outside ``access`` is reported as missing
    (:class:`~app.errors.NotFound`)."""
    at = to_time(now)
    if access is not None:
        visible_stand(session, access, stand_id)
    detail = stand_detail(session, stand_id, now=at)
    sid = detail.stand.id
    start_long = at - timedelta(days=PACE_DAYS)
    start_short = at - timedelta(days=SHORT_DAYS)
    in_long = and_(
        StandOrder.stand_id == sid,
        StandOrder.occurred_at > start_long,
        StandOrder.occurred_at <= at,
    )
    recent = StandOrder.occurred_at > start_short

    # Orders, revenue and points, both windows in one pass.
    signed = case((StandOrder.kind == OrderKind.SALE, 1), else_=-1)
    orders_long, orders_short, revenue_long, revenue_short, points_long, points_short = (
        session.execute(
            select(
                func.coalesce(func.sum(signed), 0),
                func.coalesce(func.sum(case((recent, signed), else_=0)), 0),
                type_coerce(func.sum(StandOrder.total), Money()),
                type_coerce(
                    func.sum(case((recent, StandOrder.total), else_=None)),
                    Money(),
                ),
                func.coalesce(func.sum(StandOrder.points_earned), 0),
                func.coalesce(func.sum(case((recent, StandOrder.points_earned), else_=0)), 0),
            ).where(in_long)
        ).one()
    )

    # Units per product, both windows in one pass.
    units_long: dict[str, int] = {}
    units_short: dict[str, int] = {}
    for product_id, long_units, short_units in session.execute(
        select(
            StandOrderItem.product_id,
            func.sum(StandOrderItem.quantity),
            func.sum(case((recent, StandOrderItem.quantity), else_=0)),
        )
        .join(StandOrder, StandOrder.id == StandOrderItem.order_id)
        .where(in_long)
        .group_by(StandOrderItem.product_id)
    ):
        units_long[product_id] = int(long_units or 0)
        units_short[product_id] = int(short_units or 0)

    inventory = tuple(
        InventoryLine(
            product_id=row.product_id,
            sku=row.sku,
            name=row.name,
            category=row.category,
            on_hand=row.on_hand,
            par_level=row.par_level,
            reorder_point=row.reorder_point,
            capacity=row.capacity,
            list_price=row.list_price,
            state=row.state,
            units_sold_28d=(sold := units_long.get(row.product_id, 0)),
            avg_daily_sales=_pace(sold, PACE_DAYS),
            days_of_cover=_cover(row.on_hand, sold, PACE_DAYS),
        )
        for row in detail.inventory
    )
    return StandDetails(
        detail=detail,
        inventory=inventory,
        open_refills=tuple(list_refills(session, stand_id=sid, open_only=True)),
        sales_7d=SalesSummary(
            int(orders_short or 0),
            sum(units_short.values()),
            revenue_short if isinstance(revenue_short, Decimal) else Decimal("0.0000"),
            int(points_short or 0),
        ),
        sales_28d=SalesSummary(
            int(orders_long or 0),
            sum(units_long.values()),
            revenue_long if isinstance(revenue_long, Decimal) else Decimal("0.0000"),
            int(points_long or 0),
        ),
        insights=tuple(list_insights(session, stand_id=sid)),
        as_of=at,
    )
