"""The KPI engine: performance of a stand, a partner, a rep's territory or the whole program.

How it works. For one scope and one period it reads, in a handful of aggregate queries,
the window made of the prior period and the period itself (both in local days, see
:mod:`app.kpi.period`): orders per stand and local day, order lines per stand × SKU and
period, stock movements per stand × SKU and local day, refills, loyalty points and payouts.
SQL does the summing where the rows are; what comes back is one row per stand × SKU × day at
most. The daily stock walk (closing stock of every SKU on every day, to know when it was out)
then runs as numpy arrays of shape (SKUs, days), so a 500-stand program over a year costs
arrays, not Python loops. Every KPI is derived from additive partials, so the same
definitions give the scope's figure, each stand's figure (ranking, map) and the prior
period's figure.

Definitions (``KPI_DEFS`` below holds them as data, with the sentence shown to users):

- **Revenue**: the sum of order totals in the period; a void is its own (negative) order on
  the day it was recorded, so a sale voided next week lowers next week's revenue (the ledger
  is never rewritten).
- **Units**: units on order lines (voids negative). **Orders**: sales minus voids.
- **Average order value**: revenue ÷ orders.
- **Gross margin**: revenue − Σ units × the unit cost recorded on each line; **gross margin
  %** = gross margin ÷ revenue.
- **Sell-through**: units sold ÷ (opening on-hand + units received), where opening is the
  stock at the start of the first day (negative stock counts as 0), received is refill
  deliveries and delivery corrections in the period, and units sold is the sale and void
  movements of the stock ledger.
- **Out-of-stock day**: a day on which a SKU the stand carries *closed* with no stock (on
  hand ≤ 0 at the end of the local day). Days before the stand carried the SKU, and SKUs it
  no longer carries, are not counted, nor are the shelves of stands that are not active
  today (paused or removed: their sales count, their stock days do not; planned stands are
  left out of wider scopes altogether). **Stock-out days** is the number of such SKU-days;
  **in-stock rate** = 1 − stock-out SKU-days ÷ carried SKU-days.
- **In-stock average daily sales (ADS)**: for each SKU, units sold on days that closed in
  stock ÷ the number of those days (a sell-out day is left out: its demand was cut short);
  the scope's ADS is the sum over its SKUs (units per day when everything is in stock).
- **Days of cover**: units on hand at the end of the period ÷ in-stock ADS.
- **Shrink %**: units lost at counts (the net of count adjustments, a loss positive) ÷ units
  sold in the period.
- **Refill fill rate**: units delivered ÷ units requested, over the refills whose delivery
  was completed in the period (a refill delivered in parts counts once, when complete).
- **Refill cycle time**: the median time from request to the partner's confirmation, over
  refills confirmed in the period.
- **On time in full (OTIF)**: share of the refills completed in the period that arrived on or
  before the scheduled day (the stand's local day) *and* with every approved unit.
- **Inventory turnover**: cost of goods sold ÷ average inventory at cost (the mean of the
  daily closing stock valued at the catalog's unit cost), for the period, not annualised.
- **GMROI**: gross margin ÷ average inventory at cost.
- **Revenue per SKU slot**: revenue ÷ the average number of SKUs carried per day.
- **Points earned / redeemed**: loyalty points booked in the period (earn, activation and
  bonus; redemptions), **points liability**: the open balance at the end of the period,
  **payouts due**: commission for periods ended by then and not paid by then. These four
  belong to partners: for a stand they are its partner's, for a territory the partners
  with a stand in it. Partner-level days are the program's days (Europe/Berlin).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import and_, case, func, or_, select, type_coerce
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.errors import NotFound, ValidationError
from app.kpi.model import (
    FunnelStage,
    Kpi,
    KpiReport,
    RefillFlow,
    RevenueSeries,
    Scope,
    ScopeKind,
    SellThroughHeatmap,
    SkuUnits,
    StandRanking,
    StandValue,
    StockEvent,
    StockSeries,
    Unit,
)
from app.kpi.period import Period
from app.kpi.sql import day_index
from app.models import (
    InventoryMovement,
    LoyaltyKind,
    MovementKind,
    OrderKind,
    Payout,
    Product,
    RefillStatus,
    StandInventory,
    StandInventorySnapshot,
    StandInventorySnapshotLine,
    StandLocation,
    StandLoyaltyLedger,
    StandOrder,
    StandOrderItem,
    StandPartner,
    StandRefillOrder,
    StandRefillOrderItem,
    StandStatus,
)
from app.rules import PROGRAM_TIMEZONE, local_date, round_money
from app.services.base import transactional
from app.types import Money

CURRENCY = "EUR"
#: Unit costs are summed as integers of 1/10,000 (the Money column's scale), exactly.
_COST_SCALE = 10_000
_SOLD_KINDS = (MovementKind.SALE, MovementKind.SALE_VOID)
_RECEIVED_KINDS = (MovementKind.REFILL_DELIVERY, MovementKind.REFILL_CORRECTION)


@dataclass(frozen=True)
class KpiDef:
    key: str
    label: str
    unit: Unit
    higher_is_better: bool | None
    formula: str
    #: Partner-level (loyalty, payouts): not ranked per stand.
    partner_level: bool = False


KPI_DEFS: tuple[KpiDef, ...] = (
    KpiDef("revenue", "Revenue", Unit.MONEY, True, "Sum of order totals; voids count negative."),
    KpiDef("units", "Units sold", Unit.COUNT, True, "Units on order lines; voids negative."),
    KpiDef("orders", "Orders", Unit.COUNT, True, "Sales minus voids."),
    KpiDef("aov", "Avg order value", Unit.MONEY, True, "Revenue ÷ orders."),
    KpiDef(
        "gross_margin", "Gross margin", Unit.MONEY, True, "Revenue − units × unit cost per line."
    ),
    KpiDef("gross_margin_pct", "Gross margin %", Unit.RATIO, True, "Gross margin ÷ revenue."),
    KpiDef(
        "sell_through",
        "Sell-through",
        Unit.RATIO,
        True,
        "Units sold ÷ (opening on-hand + units received).",
    ),
    KpiDef(
        "ads",
        "In-stock daily sales",
        Unit.RATE,
        True,
        "Per SKU: units sold on days that closed in stock ÷ those days; summed over SKUs.",
    ),
    KpiDef(
        "days_of_cover",
        "Days of cover",
        Unit.DAYS,
        None,
        "Units on hand at the end ÷ in-stock daily sales.",
    ),
    KpiDef(
        "stockout_days",
        "Stock-out days",
        Unit.COUNT,
        False,
        "SKU-days that closed with nothing on hand.",
    ),
    KpiDef(
        "in_stock_rate",
        "In-stock rate",
        Unit.RATIO,
        True,
        "1 − stock-out SKU-days ÷ SKU-days carried.",
    ),
    KpiDef(
        "shrink_pct",
        "Shrink",
        Unit.RATIO,
        False,
        "Units lost at counts (net) ÷ units sold.",
    ),
    KpiDef(
        "fill_rate",
        "Refill fill rate",
        Unit.RATIO,
        True,
        "Units delivered ÷ units requested, refills completed in the period.",
    ),
    KpiDef(
        "cycle_time",
        "Refill cycle time",
        Unit.HOURS,
        False,
        "Median hours from request to confirmation, refills confirmed in the period.",
    ),
    KpiDef(
        "otif",
        "On time in full",
        Unit.RATIO,
        True,
        "Refills delivered by the scheduled day with every approved unit ÷ refills completed.",
    ),
    KpiDef(
        "turnover",
        "Inventory turnover",
        Unit.MULTIPLE,
        True,
        "Cost of goods sold ÷ average stock at cost (not annualised).",
    ),
    KpiDef("gmroi", "GMROI", Unit.MULTIPLE, True, "Gross margin ÷ average stock at cost."),
    KpiDef(
        "revenue_per_slot",
        "Revenue per SKU slot",
        Unit.MONEY,
        True,
        "Revenue ÷ average number of SKUs carried per day.",
    ),
    KpiDef("stock_on_hand", "Units on hand", Unit.COUNT, None, "Units on hand at the end."),
    KpiDef(
        "points_earned",
        "Points earned",
        Unit.COUNT,
        True,
        "Loyalty points earned (sales, activation, bonus).",
        partner_level=True,
    ),
    KpiDef(
        "points_redeemed",
        "Points redeemed",
        Unit.COUNT,
        None,
        "Loyalty points redeemed.",
        partner_level=True,
    ),
    KpiDef(
        "points_liability",
        "Open points",
        Unit.COUNT,
        None,
        "Partners' unredeemed points at the end of the period.",
        partner_level=True,
    ),
    KpiDef(
        "payouts_due",
        "Payouts due",
        Unit.MONEY,
        None,
        "Commission for ended periods not yet paid at the end of the period.",
        partner_level=True,
    ),
)
KPI_BY_KEY = {d.key: d for d in KPI_DEFS}
#: KPIs that make sense per stand (ranking, map colour).
STAND_KPIS = tuple(d.key for d in KPI_DEFS if not d.partner_level)

_QUANTUM = {
    Unit.RATIO: Decimal("0.0001"),
    Unit.RATE: Decimal("0.01"),
    Unit.DAYS: Decimal("0.1"),
    Unit.HOURS: Decimal("0.1"),
    Unit.MULTIPLE: Decimal("0.01"),
    Unit.COUNT: Decimal(1),
}


# ------------------------------------------------------------------ partials


@dataclass
class Totals:
    """Additive partials of one period for some set of stands (or one stand)."""

    days: int
    revenue: Decimal = Decimal(0)
    cogs: Decimal = Decimal(0)
    units: int = 0
    orders: int = 0
    sold: int = 0
    received: int = 0
    opening: int = 0
    closing: int = 0
    adjust: int = 0
    tracked_days: int = 0
    oos_days: int = 0
    ads: float = 0.0
    inv_cost_days: int = 0  # Σ daily closing stock × unit cost, in 1/10,000
    refills_completed: int = 0
    requested: int = 0
    delivered: int = 0
    otif: int = 0
    cycle_hours: list[float] = field(default_factory=list)
    points_earned: int = 0
    points_redeemed: int = 0
    points_liability: int = 0
    payouts_due: Decimal = Decimal(0)

    def add(self, other: Totals) -> None:
        for f in fields(self):
            if f.name not in ("days", "cycle_hours"):
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        self.cycle_hours.extend(other.cycle_hours)


def _ratio(num: Decimal | int, den: Decimal | int) -> Decimal | None:
    if not den:
        return None
    return Decimal(num) / Decimal(den)


def derive(t: Totals) -> dict[str, Decimal | None]:
    """Every KPI from one period's partials (unrounded; :func:`rounded` rounds for show)."""
    gm = t.revenue - t.cogs
    avg_inv_cost = Decimal(t.inv_cost_days) / _COST_SCALE / t.days if t.days else Decimal(0)
    avg_slots = Decimal(t.tracked_days) / t.days if t.days else Decimal(0)
    ads = Decimal(repr(t.ads)) if t.tracked_days else None
    return {
        "revenue": t.revenue,
        "units": Decimal(t.units),
        "orders": Decimal(t.orders),
        "aov": _ratio(t.revenue, t.orders) if t.orders > 0 else None,
        "gross_margin": gm,
        "gross_margin_pct": _ratio(gm, t.revenue),
        "sell_through": _ratio(t.sold, t.opening + t.received),
        "ads": ads,
        "days_of_cover": _ratio(t.closing, ads) if ads else None,
        "stockout_days": Decimal(t.oos_days) if t.tracked_days else None,
        "in_stock_rate": (1 - Decimal(t.oos_days) / t.tracked_days if t.tracked_days else None),
        "shrink_pct": _ratio(-t.adjust, t.sold) if t.sold > 0 else None,
        "fill_rate": _ratio(t.delivered, t.requested),
        "cycle_time": (Decimal(repr(statistics.median(t.cycle_hours))) if t.cycle_hours else None),
        "otif": _ratio(t.otif, t.refills_completed),
        "turnover": _ratio(t.cogs, avg_inv_cost),
        "gmroi": _ratio(gm, avg_inv_cost),
        "revenue_per_slot": _ratio(t.revenue, avg_slots),
        "stock_on_hand": Decimal(t.closing) if t.tracked_days else None,
        "points_earned": Decimal(t.points_earned),
        "points_redeemed": Decimal(t.points_redeemed),
        "points_liability": Decimal(t.points_liability),
        "payouts_due": t.payouts_due,
    }


def rounded(key: str, value: Decimal | None) -> Decimal | None:
    """A KPI value as shown and returned: money to the cent, ratios to 0.01 %, ..."""
    if value is None:
        return None
    unit = KPI_BY_KEY[key].unit
    if unit == Unit.MONEY:
        return round_money(value)
    return value.quantize(_QUANTUM[unit])


# ------------------------------------------------------------------ loading


@dataclass(frozen=True)
class _Stand:
    id: str
    name: str
    city: str
    latitude: float | None
    longitude: float | None
    tz: str
    partner_id: str
    status: str


@dataclass
class _Pairs:
    """Stand × SKU rows of one time-zone group, with their daily stock walk."""

    stand_idx: np.ndarray[Any, Any]
    product_ids: list[str]
    # per pair and period (shape (P, 2)): opening (≥ 0), closing (≥ 0), sold, received,
    # adjust, tracked days, out-of-stock days, Σ sold on in-stock days, in-stock days,
    # Σ closing × cost (scaled)
    per_period: dict[str, np.ndarray[Any, Any]]
    closing_daily: np.ndarray[Any, Any]  # (P, 2N) closing stock (only when kept)
    received_rows: tuple[np.ndarray[Any, Any], ...]  # (pair, day, units received), sparse
    par: list[int]
    reorder: list[int]


@dataclass
class _Loaded:
    scope: Scope
    period: Period
    prior: Period
    stands: list[_Stand]
    # [stand index][period] -> Totals
    totals: list[list[Totals]]
    # scope-wide partner-level figures per period
    partner_totals: list[Totals]
    revenue_daily: list[Decimal]  # 2N days, scope-wide
    # (stand index, product id, period) -> units, revenue, cogs
    items: dict[tuple[int, str, int], tuple[int, Decimal, Decimal]]
    # (stand index, product id) -> (sold, opening + received) of the current period
    sell: dict[tuple[int, str], tuple[int, int]]
    pairs: list[tuple[_Pairs, list[int]]]  # per zone group: pairs and stand index map
    product_names: dict[str, str]
    funnel: dict[str, int]
    rejected: int
    cancelled: int
    cycle_hours: list[float]


def resolve_scope(session: Session, scope: Scope) -> tuple[Scope, list[_Stand]]:
    """The stands a scope covers, and the scope with its label filled in."""
    q = select(
        StandLocation.id,
        StandLocation.name,
        StandLocation.city,
        StandLocation.latitude,
        StandLocation.longitude,
        StandLocation.timezone,
        StandLocation.partner_id,
        StandLocation.status,
    ).order_by(StandLocation.name, StandLocation.id)
    label = scope.label
    if scope.kind == ScopeKind.STAND:
        stand = session.get(StandLocation, scope.key or "")
        if stand is None:
            raise NotFound(f"No stand with id {scope.key!r}.", field="stand")
        q = q.where(StandLocation.id == stand.id)
        label = label or stand.name
    elif scope.kind == ScopeKind.PARTNER:
        partner = session.get(StandPartner, scope.key or "")
        if partner is None:
            raise NotFound(f"No partner with id {scope.key!r}.", field="partner")
        q = q.where(StandLocation.partner_id == partner.id)
        label = label or partner.name
    elif scope.kind == ScopeKind.TERRITORY:
        if not scope.key:
            raise ValidationError("Name the rep whose territory to show.", field="rep")
        q = q.where(StandLocation.assigned_rep == scope.key)
        label = label or f"Territory of {scope.key}"
    else:
        label = label or "Whole program"
    if scope.kind != ScopeKind.STAND:
        # A planned stand is not live yet: no shelf, no sales, nothing to rank.
        q = q.where(StandLocation.status != StandStatus.PLANNED)
    stands = [_Stand(*row) for row in session.execute(q)]
    return Scope(scope.kind, scope.key, label), stands


def _load(
    session: Session, scope: Scope, period: Period, now: datetime, *, with_stock: bool = True
) -> _Loaded:
    scope, stands = resolve_scope(session, scope)
    prior = period.prior()
    window = Period(prior.start, period.end)
    n = period.days
    dialect = session.get_bind().dialect
    totals = [[Totals(n), Totals(n)] for _ in stands]
    revenue_daily = [Decimal(0)] * (2 * n)
    items: dict[tuple[int, str, int], tuple[int, Decimal, Decimal]] = {}
    sell: dict[tuple[int, str], tuple[int, int]] = {}
    groups: list[tuple[_Pairs, list[int]]] = []
    funnel: dict[str, int] = defaultdict(int)
    rejected = cancelled = 0
    cycle_all: list[float] = []

    by_zone: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(stands):
        by_zone[s.tz].append(i)

    for tz, members in by_zone.items():
        lo, hi = window.utc_bounds(tz)
        index = {stands[i].id: i for i in members}
        ids = list(index)

        def day(col: Any, tz: str = tz, lo: datetime = lo, hi: datetime = hi) -> Any:
            return day_index(col, dialect=dialect, tz=tz, start=window.start, lo=lo, hi=hi)

        def stand_in(col: Any, ids: list[str] = ids) -> Any:
            # A whole program is "all stands": no list to send.
            return col.in_(ids) if scope.kind != ScopeKind.PROGRAM or len(by_zone) > 1 else True

        # Orders per stand and local day.
        d = day(StandOrder.occurred_at).label("d")
        rows = session.connection().execute(
            select(
                StandOrder.stand_id,
                d,
                type_coerce(func.sum(StandOrder.total), Money()),
                func.sum(case((StandOrder.kind == OrderKind.SALE, 1), else_=-1)),
            )
            .where(
                stand_in(StandOrder.stand_id),
                StandOrder.occurred_at >= lo,
                StandOrder.occurred_at < hi,
            )
            .group_by(d, StandOrder.stand_id)
        )
        for stand_id, di, revenue, orders in rows:
            si = index.get(stand_id)
            if si is None:
                continue
            t = totals[si][1 if di >= n else 0]
            t.revenue += revenue
            t.orders += orders
            revenue_daily[di] += revenue

        # Order lines per stand, SKU and period.
        # Which period a line is in needs no local-day arithmetic: one boundary instant.
        boundary = period.utc_bounds(tz)[0]
        p = case((StandOrder.occurred_at >= boundary, 1), else_=0).label("p")
        rows = session.connection().execute(
            select(
                StandOrder.stand_id,
                StandOrderItem.product_id,
                p,
                func.sum(StandOrderItem.quantity),
                type_coerce(func.sum(StandOrderItem.line_total), Money()),
                type_coerce(func.sum(StandOrderItem.quantity * StandOrderItem.unit_cost), Money()),
            )
            .join(StandOrder, StandOrder.id == StandOrderItem.order_id)
            .where(
                stand_in(StandOrder.stand_id),
                StandOrder.occurred_at >= lo,
                StandOrder.occurred_at < hi,
            )
            .group_by(StandOrder.stand_id, StandOrderItem.product_id, p)
        )
        for stand_id, product_id, pi, units, revenue, cogs in rows:
            si = index.get(stand_id)
            if si is None:
                continue
            t = totals[si][pi]
            t.units += units
            t.cogs += cogs
            items[(si, product_id, pi)] = (units, revenue, cogs)

        if with_stock:
            pairs = _stock_walk(
                session,
                tz,
                members,
                stands,
                window,
                n,
                day,
                stand_in,
                lo,
                hi,
                keep_daily=scope.kind == ScopeKind.STAND,
            )
            groups.append((pairs, members))
            pp = pairs.per_period
            count = len(members)
            ads = np.divide(
                pp["sold_instock"],
                pp["instock"],
                out=np.zeros(pp["instock"].shape, dtype=np.float64),
                where=pp["instock"] > 0,
            )
            sums: dict[str, list[list[Any]]] = {}
            for key in ("opening", "closing", "sold", "received", "adjust", "tracked", "oos"):
                acc = np.zeros((count, 2), dtype=np.int64)
                np.add.at(acc, pairs.stand_idx, pp[key])
                sums[key] = acc.tolist()
            acc = np.zeros((count, 2), dtype=np.int64)
            np.add.at(acc, pairs.stand_idx, pp["inv_cost"])
            sums["inv_cost"] = acc.tolist()
            acc_f = np.zeros((count, 2), dtype=np.float64)
            np.add.at(acc_f, pairs.stand_idx, ads)
            sums["ads"] = acc_f.tolist()
            for local_i, si in enumerate(members):
                for pi in (0, 1):
                    t = totals[si][pi]
                    t.opening += sums["opening"][local_i][pi]
                    t.closing += sums["closing"][local_i][pi]
                    t.sold += sums["sold"][local_i][pi]
                    t.received += sums["received"][local_i][pi]
                    t.adjust += sums["adjust"][local_i][pi]
                    t.tracked_days += sums["tracked"][local_i][pi]
                    t.oos_days += sums["oos"][local_i][pi]
                    t.inv_cost_days += sums["inv_cost"][local_i][pi]
                    t.ads += sums["ads"][local_i][pi]
            available = (pp["opening"][:, 1] + pp["received"][:, 1]).tolist()
            for si_local, pid, sold_k, avail_k in zip(
                pairs.stand_idx.tolist(),
                pairs.product_ids,
                pp["sold"][:, 1].tolist(),
                available,
                strict=True,
            ):
                sell[(members[si_local], pid)] = (sold_k, avail_k)

        # Refills: completed, confirmed and requested in the window.
        zone = ZoneInfo(tz)

        def local_index(
            moment: datetime | None, zone: ZoneInfo = zone, lo: datetime = lo, hi: datetime = hi
        ) -> int | None:
            if moment is None or moment < lo or moment >= hi:
                return None
            return (moment.astimezone(zone).date() - window.start).days

        items_q = (
            select(
                StandRefillOrderItem.refill_id,
                func.sum(StandRefillOrderItem.requested_qty).label("req"),
                func.sum(func.coalesce(StandRefillOrderItem.delivered_qty, 0)).label("dlv"),
                func.min(
                    func.coalesce(StandRefillOrderItem.delivered_qty, 0)
                    - func.coalesce(
                        StandRefillOrderItem.approved_qty, StandRefillOrderItem.requested_qty
                    )
                ).label("short"),
            )
            .group_by(StandRefillOrderItem.refill_id)
            .subquery()
        )
        rows = session.connection().execute(
            select(
                StandRefillOrder.stand_id,
                StandRefillOrder.status,
                StandRefillOrder.requested_at,
                StandRefillOrder.approved_at,
                StandRefillOrder.scheduled_at,
                StandRefillOrder.delivered_at,
                StandRefillOrder.confirmed_at,
                StandRefillOrder.scheduled_for,
                items_q.c.req,
                items_q.c.dlv,
                items_q.c.short,
            )
            .join(items_q, items_q.c.refill_id == StandRefillOrder.id)
            .where(
                stand_in(StandRefillOrder.stand_id),
                or_(
                    and_(StandRefillOrder.requested_at >= lo, StandRefillOrder.requested_at < hi),
                    and_(StandRefillOrder.delivered_at >= lo, StandRefillOrder.delivered_at < hi),
                    and_(StandRefillOrder.confirmed_at >= lo, StandRefillOrder.confirmed_at < hi),
                ),
            )
        )
        for (
            stand_id,
            status,
            requested_at,
            approved_at,
            scheduled_at,
            delivered_at,
            confirmed_at,
            scheduled_for,
            req,
            dlv,
            short,
        ) in rows:
            si = index.get(stand_id)
            if si is None:
                continue
            di = local_index(delivered_at)
            if di is not None:
                t = totals[si][1 if di >= n else 0]
                t.refills_completed += 1
                t.requested += int(req)
                t.delivered += int(dlv)
                on_time = scheduled_for is None or window.day(di) <= scheduled_for
                if on_time and int(short) >= 0:
                    t.otif += 1
            ci = local_index(confirmed_at)
            if ci is not None and requested_at is not None:
                hours = (confirmed_at - requested_at).total_seconds() / 3600
                totals[si][1 if ci >= n else 0].cycle_hours.append(hours)
                if ci >= n:
                    cycle_all.append(hours)
            ri = local_index(requested_at)
            if ri is not None and ri >= n:
                funnel["requested"] += 1
                funnel["approved"] += approved_at is not None
                funnel["scheduled"] += scheduled_at is not None
                funnel["delivered"] += delivered_at is not None
                funnel["confirmed"] += confirmed_at is not None
                rejected += status == RefillStatus.REJECTED
                cancelled += status == RefillStatus.CANCELLED

    partner_totals = _partner_level(session, scope, stands, period, prior)
    names = {r.id: r.name for r in session.execute(select(Product.id, Product.name))}
    return _Loaded(
        scope=scope,
        period=period,
        prior=prior,
        stands=stands,
        totals=totals,
        partner_totals=partner_totals,
        revenue_daily=revenue_daily,
        items=items,
        sell=sell,
        pairs=groups,
        product_names=names,
        funnel=dict(funnel),
        rejected=int(rejected),
        cancelled=int(cancelled),
        cycle_hours=cycle_all,
    )


def _stock_walk(
    session: Session,
    tz: str,
    members: list[int],
    stands: list[_Stand],
    window: Period,
    n: int,
    day: Any,
    stand_in: Any,
    lo: datetime,
    hi: datetime,
    *,
    keep_daily: bool,
) -> _Pairs:
    """Closing stock of every stand × SKU on every local day of the window, and the
    per-period partials that follow from it (see the module docstring for definitions)."""
    local = {stands[i].id: k for k, i in enumerate(members)}
    zone = ZoneInfo(tz)
    rows = session.execute(
        select(
            StandInventory.stand_id,
            StandInventory.product_id,
            StandInventory.on_hand,
            StandInventory.created_at,
            StandInventory.active,
            StandInventory.par_level,
            StandInventory.reorder_point,
            Product.unit_cost,
        )
        .join(Product, Product.id == StandInventory.product_id)
        .where(stand_in(StandInventory.stand_id))
        .order_by(StandInventory.stand_id, Product.name)
    ).all()
    rows = [r for r in rows if r[0] in local]
    count = len(rows)
    days = 2 * n
    pair_of = {(r[0], r[1]): k for k, r in enumerate(rows)}
    stand_idx = np.array([local[r[0]] for r in rows], dtype=np.int64)
    on_hand = np.array([r[2] for r in rows], dtype=np.int64)
    first_day = np.array(
        [(r[3].astimezone(zone).date() - window.start).days for r in rows], dtype=np.int64
    )
    # Shelves of stands that are not active today (planned, paused, removed) are not for
    # sale: their days count neither as in stock nor as out (their sales still count).
    live = {stands[i].id for i in members if stands[i].status == StandStatus.ACTIVE}
    active = np.array([bool(r[4]) and r[0] in live for r in rows], dtype=bool)
    cost = np.array([int(r[7] * _COST_SCALE) for r in rows], dtype=np.int64)

    # Stock movements per pair and local day; one extra day collects everything after the
    # window (to wind the stock back from today's on-hand). What SQL returns is sparse (a
    # pair has movements on some days); only the closing stock is a full (pairs, days)
    # array, of int32, so a year of 10,000 SKU slots stays within a few tens of MB.
    mv = InventoryMovement
    d = case((mv.occurred_at >= hi, days), else_=day(mv.occurred_at)).label("d")
    result = session.connection().execute(
        select(
            mv.stand_id,
            mv.product_id,
            d,
            func.sum(mv.quantity),
            func.sum(case((mv.kind.in_(_SOLD_KINDS), -mv.quantity), else_=0)),
            func.sum(case((mv.kind.in_(_RECEIVED_KINDS), mv.quantity), else_=0)),
            func.sum(case((mv.kind == MovementKind.COUNT_ADJUSTMENT, mv.quantity), else_=0)),
        )
        .where(stand_in(mv.stand_id), mv.occurred_at >= lo)
        .group_by(d, mv.stand_id, mv.product_id)
    )
    # Read in slices straight into arrays: a year of a big program is ~10^6 rows, which as
    # Python tuples would cost hundreds of MB.
    chunks: list[np.ndarray[Any, Any]] = []
    for part in result.partitions(65_536):
        keys = [pair_of.get((row[0], row[1]), -1) for row in part]
        block = np.array([row[2:] for row in part], dtype=np.int64).reshape(-1, 5)
        block = np.column_stack([np.array(keys, dtype=np.int64), block])
        chunks.append(block[block[:, 0] >= 0])
    table = np.concatenate(chunks) if chunks else np.zeros((0, 6), dtype=np.int64)
    del chunks
    k_, d_, q_, s_, r_, a_ = (table[:, i] for i in range(6))

    net = np.zeros((count, days + 1), dtype=np.int32)
    np.add.at(net, (k_, d_), q_.astype(np.int32))
    opening_window = on_hand - net.sum(axis=1, dtype=np.int64)
    closing = np.cumsum(net[:, :days], axis=1, dtype=np.int32)
    del net
    closing += opening_window.astype(np.int32)[:, None]

    day_no = np.arange(days, dtype=np.int32)[None, :]
    tracked = (day_no >= first_day[:, None]) & active[:, None]
    instock = tracked & (closing > 0)

    def per_period(a: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return np.stack(
            [a[:, :n].sum(axis=1, dtype=np.int64), a[:, n:].sum(axis=1, dtype=np.int64)], axis=1
        )

    tracked_pp = per_period(tracked)
    instock_pp = per_period(instock)
    units_held = per_period(np.where(tracked, np.maximum(closing, 0), 0))

    # The sparse figures, summed per pair and period (and, for sales, on in-stock days).
    inside = d_ < days
    ki, di, pi = k_[inside], d_[inside], (d_[inside] >= n).astype(np.int64)
    sums = {}
    for name, values in (("sold", s_), ("received", r_), ("adjust", a_)):
        acc = np.zeros((count, 2), dtype=np.int64)
        np.add.at(acc, (ki, pi), values[inside])
        sums[name] = acc
    on_instock_day = instock[ki, di]
    sold_instock = np.zeros((count, 2), dtype=np.int64)
    np.add.at(sold_instock, (ki[on_instock_day], pi[on_instock_day]), s_[inside][on_instock_day])

    opening_prior = np.maximum(opening_window, 0)
    opening_current = np.maximum(closing[:, n - 1], 0).astype(np.int64)
    # A SKU not yet carried at the start of a period has no opening stock to sell through.
    opening = np.stack(
        [
            np.where(first_day <= 0, opening_prior, 0),
            np.where(first_day <= n, opening_current, 0),
        ],
        axis=1,
    )
    closing_end = np.stack(
        [
            np.where(tracked[:, n - 1], np.maximum(closing[:, n - 1], 0), 0),
            np.where(tracked[:, -1], np.maximum(closing[:, -1], 0), 0),
        ],
        axis=1,
    ).astype(np.int64)
    received_rows = (ki, di, r_[inside])
    return _Pairs(
        stand_idx=stand_idx,
        product_ids=[r[1] for r in rows],
        per_period={
            "opening": opening,
            "closing": closing_end,
            "sold": sums["sold"],
            "received": sums["received"],
            "adjust": sums["adjust"],
            "tracked": tracked_pp,
            "oos": tracked_pp - instock_pp,
            "instock": instock_pp,
            "sold_instock": sold_instock,
            "inv_cost": units_held * cost[:, None],
        },
        closing_daily=closing if keep_daily else np.zeros((count, 0), dtype=np.int32),
        received_rows=received_rows,
        par=[int(r[5]) for r in rows],
        reorder=[int(r[6]) for r in rows],
    )


def _partner_level(
    session: Session, scope: Scope, stands: list[_Stand], period: Period, prior: Period
) -> list[Totals]:
    """Loyalty points and payouts of the partners in scope, for each period."""
    out = [Totals(period.days), Totals(period.days)]
    partner_ids = sorted({s.partner_id for s in stands})
    if not partner_ids:
        return out
    everyone = scope.kind == ScopeKind.PROGRAM

    def partner_in(col: Any) -> Any:
        return True if everyone else col.in_(partner_ids)

    led = StandLoyaltyLedger
    earned_kinds = (LoyaltyKind.EARN, LoyaltyKind.ACTIVATION, LoyaltyKind.BONUS)
    bounds = [per.utc_bounds(PROGRAM_TIMEZONE) for per in (prior, period)]
    columns = []
    for lo, hi in bounds:
        inside = and_(led.occurred_at >= lo, led.occurred_at < hi)
        columns += [
            func.sum(case((and_(inside, led.kind.in_(earned_kinds)), led.points), else_=0)),
            func.sum(case((and_(inside, led.kind == LoyaltyKind.REDEEM), -led.points), else_=0)),
            func.sum(case((led.occurred_at < hi, led.points), else_=0)),
        ]
    sums = session.execute(select(*columns).where(partner_in(led.partner_id))).one()
    for pi, per in enumerate((prior, period)):
        t = out[pi]
        t.points_earned = int(sums[3 * pi] or 0)
        t.points_redeemed = int(sums[3 * pi + 1] or 0)
        t.points_liability = int(sums[3 * pi + 2] or 0)
        due = session.execute(
            select(type_coerce(func.sum(Payout.amount), Money())).where(
                partner_in(Payout.partner_id),
                Payout.period_end <= per.end,
                or_(Payout.paid_at.is_(None), Payout.paid_at >= bounds[pi][1]),
            )
        ).scalar_one()
        t.payouts_due = due or Decimal(0)
    return out


# ------------------------------------------------------------------ results


def _scope_totals(loaded: _Loaded) -> list[Totals]:
    out = [Totals(loaded.period.days), Totals(loaded.period.days)]
    for per_stand in loaded.totals:
        for pi in (0, 1):
            out[pi].add(per_stand[pi])
    for pi in (0, 1):
        pt = loaded.partner_totals[pi]
        out[pi].points_earned = pt.points_earned
        out[pi].points_redeemed = pt.points_redeemed
        out[pi].points_liability = pt.points_liability
        out[pi].payouts_due = pt.payouts_due
    return out


def _report(loaded: _Loaded, now: datetime) -> KpiReport:
    prior_t, cur_t = _scope_totals(loaded)
    cur, pri = derive(cur_t), derive(prior_t)
    kpis = []
    for d in KPI_DEFS:
        label = d.label
        if d.partner_level and loaded.scope.kind == ScopeKind.STAND:
            label = f"{d.label} (partner)"
        kpis.append(
            Kpi(
                key=d.key,
                label=label,
                unit=d.unit,
                value=rounded(d.key, cur[d.key]),
                prior=rounded(d.key, pri[d.key]),
                higher_is_better=d.higher_is_better,
                formula=d.formula,
            )
        )
    return KpiReport(
        scope=loaded.scope,
        start=loaded.period.start,
        end=loaded.period.end,
        prior_start=loaded.prior.start,
        prior_end=loaded.prior.end,
        currency=CURRENCY,
        stand_count=len(loaded.stands),
        kpis=tuple(kpis),
        computed_at=now,
    )


def _revenue_series(loaded: _Loaded) -> RevenueSeries:
    n = loaded.period.days
    return RevenueSeries(
        days=tuple(loaded.period.day(i) for i in range(n)),
        revenue=tuple(loaded.revenue_daily[n:]),
        prior=tuple(loaded.revenue_daily[:n]),
        currency=CURRENCY,
    )


def _sku_units(loaded: _Loaded, stand_filter: int | None = None) -> tuple[SkuUnits, ...]:
    units: dict[str, int] = defaultdict(int)
    revenue: dict[str, Decimal] = defaultdict(Decimal)
    sold: dict[str, int] = defaultdict(int)
    avail: dict[str, int] = defaultdict(int)
    for (si, pid, pi), (u, r, _c) in loaded.items.items():
        if pi == 1 and (stand_filter is None or si == stand_filter):
            units[pid] += u
            revenue[pid] += r
    for (si, pid), (s, a) in loaded.sell.items():
        if stand_filter is None or si == stand_filter:
            sold[pid] += s
            avail[pid] += a
    out = [
        SkuUnits(
            product_id=pid,
            product_name=loaded.product_names.get(pid, pid),
            units=units.get(pid, 0),
            revenue=revenue.get(pid, Decimal(0)),
            sell_through=rounded("sell_through", _ratio(sold[pid], avail[pid])),
        )
        for pid in set(units) | set(avail)
    ]
    out.sort(key=lambda s: (-s.units, s.product_name))
    return tuple(out)


def _refill_flow(loaded: _Loaded) -> RefillFlow:
    labels = (
        ("requested", "Requested"),
        ("approved", "Approved"),
        ("scheduled", "Scheduled"),
        ("delivered", "Delivered"),
        ("confirmed", "Confirmed"),
    )
    return RefillFlow(
        funnel=tuple(FunnelStage(k, label, loaded.funnel.get(k, 0)) for k, label in labels),
        rejected=loaded.rejected,
        cancelled=loaded.cancelled,
        cycle_hours=tuple(loaded.cycle_hours),
    )


@dataclass(frozen=True)
class StandKpis:
    """One stand's KPI values over the current period (for ranking and the map)."""

    stand_id: str
    stand_name: str
    city: str
    latitude: float | None
    longitude: float | None
    values: Mapping[str, Decimal | None]


def _stand_kpis(loaded: _Loaded) -> tuple[StandKpis, ...]:
    out = []
    for s, (_prior, cur) in zip(loaded.stands, loaded.totals, strict=True):
        values = derive(cur)
        out.append(
            StandKpis(
                s.id,
                s.name,
                s.city,
                s.latitude,
                s.longitude,
                {k: rounded(k, values[k]) for k in STAND_KPIS},
            )
        )
    return tuple(out)


def ranking(stands: Sequence[StandKpis], key: str, *, currency: str = CURRENCY) -> StandRanking:
    """Stands ordered best first by one KPI (those without a value last)."""
    d = KPI_BY_KEY[key]
    if d.partner_level:
        raise ValidationError(f"{d.label} is a partner figure; stands are not ranked by it.")
    values = [
        StandValue(s.stand_id, s.stand_name, s.city, s.latitude, s.longitude, s.values.get(key))
        for s in stands
    ]
    reverse = d.higher_is_better is not False

    def sort_key(v: StandValue) -> tuple[int, Decimal, str]:
        if v.value is None:
            return (1, Decimal(0), v.stand_name)
        return (0, -v.value if reverse else v.value, v.stand_name)

    values.sort(key=sort_key)
    return StandRanking(key, d.label, d.unit, currency, tuple(values))


def _heatmap(loaded: _Loaded, max_stands: int = 25, max_products: int = 20) -> SellThroughHeatmap:
    """Sell-through per stand × SKU: the stands with the most revenue and the SKUs sold most
    (at most ``max_stands`` × ``max_products``, so the grid stays readable)."""
    by_revenue = sorted(
        range(len(loaded.stands)),
        key=lambda i: (-loaded.totals[i][1].revenue, loaded.stands[i].name),
    )[:max_stands]
    skus = [s.product_id for s in _sku_units(loaded)][:max_products]
    values = []
    for si in by_revenue:
        row = []
        for pid in skus:
            cell = loaded.sell.get((si, pid))
            row.append(rounded("sell_through", _ratio(*cell)) if cell else None)
        values.append(tuple(row))
    return SellThroughHeatmap(
        stand_ids=tuple(loaded.stands[i].id for i in by_revenue),
        stand_names=tuple(loaded.stands[i].name for i in by_revenue),
        product_ids=tuple(skus),
        product_names=tuple(loaded.product_names.get(p, p) for p in skus),
        values=tuple(values),
    )


def _stock_series(session: Session, loaded: _Loaded) -> tuple[StockSeries, ...]:
    """Daily closing stock per SKU of the (one) stand in scope, with deliveries and counts."""
    if not loaded.pairs:
        return ()
    pairs, _members = loaded.pairs[0]
    stand = loaded.stands[0]
    n = loaded.period.days
    days = tuple(loaded.period.day(i) for i in range(n))
    lo, hi = loaded.period.utc_bounds(stand.tz)
    counts: dict[str, list[StockEvent]] = defaultdict(list)
    rows = session.execute(
        select(
            StandInventorySnapshot.counted_at,
            StandInventorySnapshotLine.product_id,
            StandInventorySnapshotLine.counted_qty,
            StandInventorySnapshotLine.variance,
        )
        .join(StandInventorySnapshotLine.snapshot)
        .where(
            StandInventorySnapshot.stand_id == stand.id,
            StandInventorySnapshot.counted_at >= lo,
            StandInventorySnapshot.counted_at < hi,
        )
        .order_by(StandInventorySnapshot.counted_at)
    )
    for counted_at, pid, counted, variance in rows:
        counts[pid].append(
            StockEvent(local_date(counted_at, stand.tz), int(variance), int(counted))
        )
    out = []
    received: dict[int, dict[int, int]] = defaultdict(dict)
    for k, di, q in zip(*(a.tolist() for a in pairs.received_rows), strict=True):
        if di >= n and q > 0:
            received[k][di - n] = q
    for k, pid in enumerate(pairs.product_ids):
        out.append(
            StockSeries(
                product_id=pid,
                product_name=loaded.product_names.get(pid, pid),
                days=days,
                on_hand=tuple(int(v) for v in pairs.closing_daily[k, n:]),
                par_level=pairs.par[k],
                reorder_point=pairs.reorder[k],
                deliveries=tuple(StockEvent(days[i], q) for i, q in sorted(received[k].items())),
                counts=tuple(counts.get(pid, ())),
            )
        )
    out.sort(key=lambda s: s.product_name)
    return tuple(out)


# ------------------------------------------------------------------ public API


@dataclass(frozen=True)
class Dashboard:
    """Everything the manager dashboard shows for one scope and period (one read)."""

    report: KpiReport
    revenue: RevenueSeries
    sku_units: tuple[SkuUnits, ...]
    stands: tuple[StandKpis, ...]
    heatmap: SellThroughHeatmap
    refills: RefillFlow

    def ranking(self, key: str) -> StandRanking:
        return ranking(self.stands, key, currency=self.report.currency)


@dataclass(frozen=True)
class StandPerformance:
    """Everything a stand's Performance tab shows (one read)."""

    report: KpiReport
    revenue: RevenueSeries
    stock: tuple[StockSeries, ...]
    sku_units: tuple[SkuUnits, ...]
    refills: RefillFlow


@transactional
def kpi_report(
    session: Session, scope: Scope, period: Period, *, now: datetime | None = None
) -> KpiReport:
    at = now or utcnow()
    return _report(_load(session, scope, period, at), at)


@transactional
def dashboard(
    session: Session, scope: Scope, period: Period, *, now: datetime | None = None
) -> Dashboard:
    at = now or utcnow()
    loaded = _load(session, scope, period, at)
    return Dashboard(
        report=_report(loaded, at),
        revenue=_revenue_series(loaded),
        sku_units=_sku_units(loaded),
        stands=_stand_kpis(loaded),
        heatmap=_heatmap(loaded),
        refills=_refill_flow(loaded),
    )


@transactional
def stand_performance(
    session: Session, stand_id: str, period: Period, *, now: datetime | None = None
) -> StandPerformance:
    at = now or utcnow()
    loaded = _load(session, Scope(ScopeKind.STAND, stand_id), period, at)
    return StandPerformance(
        report=_report(loaded, at),
        revenue=_revenue_series(loaded),
        stock=_stock_series(session, loaded),
        sku_units=_sku_units(loaded),
        refills=_refill_flow(loaded),
    )


@transactional
def scopes(session: Session) -> tuple[list[tuple[str, str]], list[str]]:
    """What a dashboard can be narrowed to: partners (id, name) and reps with stands."""
    partners = [
        (pid, name)
        for pid, name in session.execute(
            select(StandPartner.id, StandPartner.name).order_by(StandPartner.name)
        )
    ]
    reps = [
        str(r)
        for (r,) in session.execute(
            select(StandLocation.assigned_rep)
            .where(StandLocation.assigned_rep.is_not(None))
            .distinct()
            .order_by(StandLocation.assigned_rep)
        )
    ]
    return partners, reps
