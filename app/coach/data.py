"""What the coach reads: daily demand per stand × SKU, and everything around it.

:func:`load_coach_data` reads, for a set of stands (by default every active stand), the
last ``days`` complete local days of every SKU they carry, and returns them as numpy arrays
of shape (series, days) — one series per stand × SKU — with the series' metadata beside
them. SQL sums the stock ledger per stand × SKU × local day (as the KPI engine does, with
:func:`app.kpi.sql.day_index` over :class:`app.kpi.period.Period` windows, one query per
time zone); numpy does the rest.

Definitions

- **As of** ``now`` (default: the clock): stock is the on-hand cache less the movements
  after ``now``; counts, deliveries and loyalty points after ``now`` are ignored; open
  refills are the ones open at the time of reading.
- **Window**: the ``days`` complete local days of the stand ending *yesterday*; today is
  the first day of the forecast horizon. Today's sales so far are already out of on-hand,
  and the forecast still counts today in full: a small overestimate of demand that errs on
  the side of stock.
- **Demand** of a day: units sold (sale movements net of voids). A day that *closed* with
  no stock (on hand ≤ 0 at the end of the local day, the stock walked back from today's
  on-hand through the ledger) is missing data (NaN), not zero demand: sales were cut short
  or impossible. Days before the stand carried the SKU are NaN too.
- **On order**: units of open refills (requested, approved, scheduled) not yet delivered —
  the approved quantity where a manager approved one, else the requested one, less what
  part deliveries already brought. A delivered refill's units are already on hand.
- **Next planned visit**: the earliest of (a) the rep's regular round, the last visit plus
  the package's refill cadence, where the last visit is the later of the stand's last
  completed refill delivery and its last count (the stand's creation if neither), and (b)
  the date a scheduled refill is due. ``days_to_visit`` counts local days from today, at
  least 1: a visit due today or overdue still has today's demand ahead of it.
- **Arriving before the visit**: units of requested or approved refills that have no date
  yet are expected ``lead_days`` after today; those arrive before the visit when that is
  sooner than the visit. A scheduled refill arrives *at* its visit (the visit is the
  delivery), so its units do not count as arriving before.
- **Peer rate** of a series: the mean daily units of the same SKU at the *other* loaded
  stands of the same location type, over their in-stock days (units sold on days that
  closed in stock ÷ those days); the program-wide rate of the SKU when no stand of that type
  carries it; NaN when no other stand does. When the coach runs for some stands only, the
  active stands of the same location types are loaded as well (``focus`` marks the ones
  asked for), so peers are always the whole peer group.

Speed: a 500-stand × 40-SKU program over 91 days is a handful of aggregate queries and
arrays of 20,000 × 91; no Python loop runs per day.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy import String, case, cast, func, select
from sqlalchemy.orm import Session

from app.clock import ensure_utc, utcnow
from app.coach.policy import DEFAULT_LEAD_DAYS
from app.errors import NotFound, ValidationError
from app.kpi.period import Period
from app.kpi.sql import day_index
from app.models import (
    InventoryMovement,
    LocationType,
    LoyaltyKind,
    LoyaltyTier,
    MovementKind,
    Package,
    Product,
    RefillStatus,
    StandInventory,
    StandLocation,
    StandLoyaltyLedger,
    StandPartner,
    StandRefillOrder,
    StandRefillOrderItem,
    StandStatus,
)
from app.rules import TIER_WINDOW_DAYS, local_date

#: Days of history the coach reads by default (13 weeks).
DEFAULT_DAYS = 91
MAX_DAYS = 3 * 366

_SOLD_KINDS = (MovementKind.SALE, MovementKind.SALE_VOID)
_ON_ORDER_STATES = (RefillStatus.REQUESTED, RefillStatus.APPROVED, RefillStatus.SCHEDULED)

Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class StandInfo:
    """One loaded stand and its visit plan."""

    id: str
    name: str
    partner_id: str
    location_type: str
    package_code: str
    status: str
    timezone: str
    created_at: datetime
    #: Days between regular visits: the package's refill cadence (the review period).
    cadence_days: int
    #: The stand's local today.
    today: date
    last_visit: datetime | None
    last_count: datetime | None
    next_visit: date
    days_to_visit: int
    #: Asked for (True) or loaded only as a peer (False).
    focus: bool


@dataclass(frozen=True)
class PartnerLoyalty:
    partner_id: str
    tier_code: str
    tier_name: str
    tier_rank: int
    earned_in_window: int
    #: Earned over the last 28 days (the pace).
    earned_recent: int


@dataclass(frozen=True)
class TierInfo:
    code: str
    name: str
    rank: int
    threshold_points: int


@dataclass(frozen=True)
class CoachData:
    """Series (stand × SKU) arrays and their metadata; see the module docstring."""

    now: datetime
    days: int
    lead_days: int
    stands: tuple[StandInfo, ...]
    # ---- per series (n,)
    stand_idx: Array  # int index into ``stands``
    product_ids: tuple[str, ...]
    skus: tuple[str, ...]
    names: tuple[str, ...]
    on_hand: Array  # int, may be negative (oversold)
    par: Array
    reorder: Array
    capacity: Array
    pack_size: Array
    list_price: tuple[Decimal, ...]
    unit_cost: tuple[Decimal, ...]
    price: Array  # float list price, for scoring only (money stays Decimal)
    on_order: Array  # int
    arriving: Array  # int: of on_order, expected before the next visit
    arrival_days: Array  # int: days until those units arrive (0 when none)
    days_to_visit: Array  # int ≥ 1 (the stand's)
    review_days: Array  # int ≥ 1 (the stand's cadence)
    first_day: Array  # int: window index of the first day carried (≤ 0: before the window)
    last_counted: tuple[datetime | None, ...]
    peer_rate: Array  # float, NaN when no peer carries the SKU
    # ---- per series and day (n, days); day days-1 is yesterday
    demand: Array  # float, NaN on out-of-stock days and days not carried
    sold: Array  # int, units sold (also on out-of-stock days)
    tracked: Array  # bool, the SKU was carried that day
    # ---- loyalty
    partners: dict[str, PartnerLoyalty]
    tiers: tuple[TierInfo, ...]
    # ---- rate of every SKU per location type (in-stock days), for swap suggestions
    type_rates: dict[str, dict[str, float]]

    @property
    def n(self) -> int:
        return len(self.product_ids)

    @property
    def focus(self) -> Array:
        """Series of the stands asked for (bool, (n,))."""
        mask = np.array([s.focus for s in self.stands], dtype=bool)
        return mask[self.stand_idx] if self.n else np.zeros(0, dtype=bool)

    @property
    def instock(self) -> Array:
        return ~np.isnan(self.demand)


def _window(days: int, today: date) -> Period:
    """The ``days`` local days ending the day before ``today``."""
    return Period.last(days, today - timedelta(days=1))


def load_coach_data(
    session: Session,
    *,
    stand_ids: Sequence[str] | None = None,
    now: datetime | None = None,
    days: int = DEFAULT_DAYS,
    lead_days: int = DEFAULT_LEAD_DAYS,
    with_peers: bool = True,
    with_loyalty: bool = True,
) -> CoachData:
    """Load the coach's inputs (see the module docstring) in the caller's transaction.
    ``with_peers=False`` skips the peer stands of a subset; ``with_loyalty=False`` skips
    the partners' points (a year of ledger: a third of the time of a whole program)."""
    if days < 14 or days > MAX_DAYS:
        raise ValidationError(f"The coach reads 14 to {MAX_DAYS} days of history.", field="days")
    if lead_days < 0:
        raise ValidationError("The lead time cannot be negative.", field="lead_days")
    at = ensure_utc(now) if now is not None else utcnow()
    stands = _load_stands(session, stand_ids, with_peers=with_peers)
    return _load(
        session,
        stands,
        at,
        days,
        lead_days,
        all_active=stand_ids is None,
        with_loyalty=with_loyalty,
    )


# --------------------------------------------------------------------------- stands


@dataclass
class _StandRow:
    id: str
    name: str
    partner_id: str
    location_type: str
    package_code: str
    status: str
    timezone: str
    created_at: datetime
    cadence: int
    focus: bool


def _load_stands(
    session: Session, stand_ids: Sequence[str] | None, *, with_peers: bool
) -> list[_StandRow]:
    q = (
        select(
            StandLocation.id,
            StandLocation.name,
            StandLocation.partner_id,
            StandLocation.location_type,
            Package.code,
            StandLocation.status,
            StandLocation.timezone,
            StandLocation.created_at,
            Package.refill_cadence_days,
        )
        .join(StandPartner, StandPartner.id == StandLocation.partner_id)
        .join(Package, Package.id == StandPartner.package_id)
        .order_by(StandLocation.name, StandLocation.id)
    )
    if stand_ids is None:
        rows = session.execute(q.where(StandLocation.status == StandStatus.ACTIVE)).all()
        return [_StandRow(*r[:7], ensure_utc(r[7]), int(r[8]), True) for r in rows]
    wanted = list(dict.fromkeys(stand_ids))
    rows = session.execute(q.where(StandLocation.id.in_(wanted))).all() if wanted else []
    found = {r[0] for r in rows}
    missing = [sid for sid in wanted if sid not in found]
    if missing:
        raise NotFound(f"No stand with id {missing[0]!r}.", field="stand")
    out = [_StandRow(*r[:7], ensure_utc(r[7]), int(r[8]), True) for r in rows]
    if with_peers and out:
        types = sorted({str(r.location_type) for r in out})
        peers = session.execute(
            q.where(
                StandLocation.status == StandStatus.ACTIVE,
                StandLocation.location_type.in_([LocationType(t) for t in types]),
                StandLocation.id.not_in(wanted),
            )
        ).all()
        out += [_StandRow(*r[:7], ensure_utc(r[7]), int(r[8]), False) for r in peers]
    return out


# --------------------------------------------------------------------------- loading


def _load(
    session: Session,
    stands: list[_StandRow],
    at: datetime,
    days: int,
    lead_days: int,
    *,
    all_active: bool,
    with_loyalty: bool,
) -> CoachData:
    dialect = session.get_bind().dialect
    index = {s.id: i for i, s in enumerate(stands)}
    # Every active stand: no list of ids to send (rows of other stands are dropped below).
    where = _stand_filter(stands, all_active)

    # Inventory lines (one per series), in stand order then SKU.
    inv_rows = (
        session.execute(
            select(
                StandInventory.stand_id,
                StandInventory.product_id,
                StandInventory.on_hand,
                StandInventory.par_level,
                StandInventory.reorder_point,
                StandInventory.capacity,
                StandInventory.created_at,
                StandInventory.last_counted_at,
                Product.sku,
                Product.name,
                Product.pack_size,
                Product.list_price,
                Product.unit_cost,
            )
            .join(Product, Product.id == StandInventory.product_id)
            .where(StandInventory.active, *where(StandInventory.stand_id))
        ).all()
        if stands
        else []
    )
    inv_rows = [r for r in inv_rows if r[0] in index]
    inv_rows.sort(key=lambda r: (index[r[0]], r[8]))
    n = len(inv_rows)
    pair_of = {(r[0], r[1]): k for k, r in enumerate(inv_rows)}
    stand_idx = np.array([index[r[0]] for r in inv_rows], dtype=np.int64)
    on_hand = np.array([r[2] for r in inv_rows], dtype=np.int64)
    last_counted = tuple(ensure_utc(r[7]) if r[7] is not None else None for r in inv_rows)

    # Time zones: each group has its own window (its local yesterday) and day numbers.
    by_zone: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(stands):
        by_zone[s.timezone].append(i)
    today = [local_date(at, s.timezone) for s in stands]
    first_day = np.zeros(n, dtype=np.int64)
    # Per pair and day: net stock change; column ``days`` collects [window end, at], column
    # ``days + 1`` what happened after ``at`` (a run as of a past moment).
    net = np.zeros((n, days + 2), dtype=np.int32)
    sold = np.zeros((n, days), dtype=np.int32)
    for tz, members in by_zone.items():
        window = _window(days, today[members[0]])
        lo, hi = window.utc_bounds(tz)
        zone_ids = [stands[i].id for i in members]
        for k, r in enumerate(inv_rows):
            if stands[index[r[0]]].timezone == tz:
                created_local = local_date(ensure_utc(r[6]), tz)
                first_day[k] = (created_local - window.start).days
        mv = InventoryMovement
        occurred: Any = mv.occurred_at
        d = case(
            (mv.occurred_at > at, days + 1),
            (mv.occurred_at >= hi, days),
            else_=day_index(occurred, dialect=dialect, tz=tz, start=window.start, lo=lo, hi=hi),
        ).label("d")
        stand_in = where(mv.stand_id) if len(by_zone) == 1 else (mv.stand_id.in_(zone_ids),)
        daily = (
            select(
                mv.stand_id.label("stand_id"),
                mv.product_id.label("product_id"),
                d,
                func.sum(mv.quantity).label("net"),
                func.sum(case((mv.kind.in_(_SOLD_KINDS), -mv.quantity), else_=0)).label("sold"),
            )
            .where(mv.occurred_at >= lo, *stand_in)
            # The day first: SQLite then scans the window's rows once and sorts them, rather
            # than walking the (stand, product, time) index and fetching every row from it.
            .group_by(d, mv.stand_id, mv.product_id)
            .subquery()
        )
        # One row per pair with its days packed as text "day,net,sold,day,net,sold,...":
        # 150,000 (pair, day) rows become 9,000 strings that numpy parses in one go, which
        # halves the time of this, the biggest read of the coach.
        c = daily.c
        triple = cast(c.d, String) + "," + cast(c.net, String) + "," + cast(c.sold, String)
        rows = session.connection().execute(
            select(c.stand_id, c.product_id, func.aggregate_strings(triple, ",")).group_by(
                c.stand_id, c.product_id
            )
        )
        keys_l: list[int] = []
        counts: list[int] = []
        texts: list[str] = []
        for stand_id, product_id, text in rows:
            pair = pair_of.get((stand_id, product_id))
            if pair is None or not text:
                continue
            keys_l.append(pair)
            counts.append(text.count(",") // 3 + 1)
            texts.append(text)
        if texts:
            block = np.array(",".join(texts).split(","), dtype=np.int64).reshape(-1, 3)
            keys = np.repeat(np.array(keys_l, dtype=np.int64), counts)
            np.add.at(net, (keys, block[:, 0]), block[:, 1].astype(np.int32))
            inside = block[:, 0] < days
            np.add.at(sold, (keys[inside], block[inside, 0]), block[inside, 2].astype(np.int32))

    # The stock walk: closing stock of every day, back from the on-hand cache (which is
    # the stock now; as of ``at`` it is that less what moved after ``at``).
    on_hand = on_hand - net[:, days + 1]
    opening = on_hand - net[:, : days + 1].sum(axis=1, dtype=np.int64)
    closing = np.cumsum(net[:, :days], axis=1, dtype=np.int64) + opening[:, None]
    day_no = np.arange(days, dtype=np.int64)[None, :]
    tracked = day_no >= first_day[:, None]
    instock = tracked & (closing > 0)
    demand = np.where(instock, sold.astype(np.float64), np.nan)

    # Refills on order, visits and arrivals.
    on_order, arriving, arrival_days, visit_info = _refills(
        session, stands, where, index, pair_of, n, at, lead_days, last_counted, stand_idx
    )
    infos = tuple(
        StandInfo(
            id=s.id,
            name=s.name,
            partner_id=s.partner_id,
            location_type=str(s.location_type),
            package_code=s.package_code,
            status=str(s.status),
            timezone=s.timezone,
            created_at=s.created_at,
            cadence_days=max(1, s.cadence),
            today=today[i],
            last_visit=visit_info[i][0],
            last_count=visit_info[i][1],
            next_visit=visit_info[i][2],
            days_to_visit=max(1, (visit_info[i][2] - today[i]).days),
            focus=s.focus,
        )
        for i, s in enumerate(stands)
    )
    days_to_visit = np.array([s.days_to_visit for s in infos], dtype=np.int64)[stand_idx]
    review = np.array([s.cadence_days for s in infos], dtype=np.int64)[stand_idx]
    # Units arriving at or after the visit do not count as arriving before it.
    before = arrival_days < days_to_visit
    arriving = np.where(before, arriving, 0)
    arrival_days = np.where(before & (arriving > 0), arrival_days, 0)

    types = [str(s.location_type) for s in stands]
    peer_rate, type_rates = _peer_rates(stand_idx, [r[1] for r in inv_rows], types, sold, instock)
    partners, tiers = _loyalty(session, stands, at) if with_loyalty else ({}, ())
    return CoachData(
        now=at,
        days=days,
        lead_days=lead_days,
        stands=infos,
        stand_idx=stand_idx,
        product_ids=tuple(r[1] for r in inv_rows),
        skus=tuple(r[8] for r in inv_rows),
        names=tuple(r[9] for r in inv_rows),
        on_hand=on_hand,
        par=np.array([r[3] for r in inv_rows], dtype=np.int64),
        reorder=np.array([r[4] for r in inv_rows], dtype=np.int64),
        capacity=np.array([r[5] for r in inv_rows], dtype=np.int64),
        pack_size=np.array([max(1, r[10]) for r in inv_rows], dtype=np.int64),
        list_price=tuple(r[11] for r in inv_rows),
        unit_cost=tuple(r[12] for r in inv_rows),
        price=np.array([float(r[11]) for r in inv_rows], dtype=np.float64),
        on_order=on_order,
        arriving=arriving,
        arrival_days=arrival_days,
        days_to_visit=days_to_visit,
        review_days=review,
        first_day=first_day,
        last_counted=last_counted,
        peer_rate=peer_rate,
        demand=demand,
        sold=sold.astype(np.int64),
        tracked=tracked,
        partners=partners,
        tiers=tiers,
        type_rates=type_rates,
    )


def _stand_filter(stands: list[_StandRow], all_active: bool) -> Any:
    """A function giving ``column IN (stands)``, or no condition when every active stand is
    loaded (then SQL need not be sent thousands of ids; other stands' rows are dropped)."""
    ids = [s.id for s in stands]

    def where(column: Any) -> tuple[Any, ...]:
        return () if all_active else (column.in_(ids),)

    return where


def _refills(
    session: Session,
    stands: list[_StandRow],
    where: Any,
    index: dict[str, int],
    pair_of: dict[tuple[str, str], int],
    n: int,
    at: datetime,
    lead_days: int,
    last_counted: tuple[datetime | None, ...],
    stand_idx: Array,
) -> tuple[Array, Array, Array, list[tuple[datetime | None, datetime | None, date]]]:
    on_order = np.zeros(n, dtype=np.int64)
    arriving = np.zeros(n, dtype=np.int64)
    # Days until the unscheduled units arrive (lead time); large when nothing is arriving.
    arrival_days = np.full(n, 10**6, dtype=np.int64)
    scheduled: dict[int, date] = {}
    if stands:
        item = StandRefillOrderItem
        rows = session.execute(
            select(
                StandRefillOrder.stand_id,
                StandRefillOrder.status,
                StandRefillOrder.scheduled_for,
                item.product_id,
                func.coalesce(item.approved_qty, item.requested_qty)
                - func.coalesce(item.delivered_qty, 0),
            )
            .join(item, item.refill_id == StandRefillOrder.id)
            .where(
                StandRefillOrder.status.in_(_ON_ORDER_STATES),
                *where(StandRefillOrder.stand_id),
            )
        ).all()
        for stand_id, status, scheduled_for, product_id, qty in rows:
            si = index.get(stand_id)
            if si is None:
                continue
            if status == RefillStatus.SCHEDULED and scheduled_for is not None:
                prev = scheduled.get(si)
                scheduled[si] = scheduled_for if prev is None else min(prev, scheduled_for)
            k = pair_of.get((stand_id, product_id))
            if k is None or qty is None or qty <= 0:
                continue
            on_order[k] += int(qty)
            if status != RefillStatus.SCHEDULED or scheduled_for is None:
                arriving[k] += int(qty)
                arrival_days[k] = max(1, lead_days)

    # Last delivery per stand.
    delivered: dict[str, datetime] = {}
    if stands:
        for stand_id, last in session.execute(
            select(StandRefillOrder.stand_id, func.max(StandRefillOrder.delivered_at))
            .where(
                StandRefillOrder.delivered_at.is_not(None),
                StandRefillOrder.delivered_at <= at,
                *where(StandRefillOrder.stand_id),
            )
            .group_by(StandRefillOrder.stand_id)
        ):
            if last is not None:
                delivered[stand_id] = ensure_utc(last)
    last_count: dict[int, datetime] = {}
    for k, counted in enumerate(last_counted):
        if counted is not None and counted <= at:
            si = int(stand_idx[k])
            if si not in last_count or counted > last_count[si]:
                last_count[si] = counted

    visits: list[tuple[datetime | None, datetime | None, date]] = []
    for i, s in enumerate(stands):
        seen = [t for t in (delivered.get(s.id), last_count.get(i)) if t is not None]
        last_visit = max(seen) if seen else None
        base = last_visit or s.created_at
        regular = local_date(base, s.timezone) + timedelta(days=max(1, s.cadence))
        nxt = min(regular, scheduled[i]) if i in scheduled else regular
        visits.append((last_visit, last_count.get(i), nxt))
    return on_order, arriving, arrival_days, visits


def _peer_rates(
    stand_idx: Array,
    product_ids: list[str],
    types: list[str],
    sold: Array,
    instock: Array,
) -> tuple[Array, dict[str, dict[str, float]]]:
    """Per series, the in-stock daily rate of its SKU at the other stands of its location
    type (program-wide when no other stand of the type carries it); and per location type
    the rate of every SKU carried there."""
    n = len(product_ids)
    if n == 0:
        return np.zeros(0, dtype=np.float64), {}
    units = np.where(instock, sold, 0).sum(axis=1).astype(np.float64)
    days_in = instock.sum(axis=1).astype(np.float64)
    type_codes = {t: j for j, t in enumerate(sorted(set(types)))}
    series_type = np.array([type_codes[types[int(s)]] for s in stand_idx], dtype=np.int64)
    product_codes: dict[str, int] = {}
    series_product = np.array(
        [product_codes.setdefault(p, len(product_codes)) for p in product_ids], dtype=np.int64
    )
    nt, npd = len(type_codes), len(product_codes)
    g_units = np.zeros((nt, npd))
    g_days = np.zeros((nt, npd))
    np.add.at(g_units, (series_type, series_product), units)
    np.add.at(g_days, (series_type, series_product), days_in)
    p_units = g_units.sum(axis=0)
    p_days = g_days.sum(axis=0)

    other_units = g_units[series_type, series_product] - units
    other_days = g_days[series_type, series_product] - days_in
    wide_units = p_units[series_product] - units
    wide_days = p_days[series_product] - days_in
    with np.errstate(invalid="ignore", divide="ignore"):
        by_type = np.where(other_days > 0, other_units / np.maximum(other_days, 1), np.nan)
        wide = np.where(wide_days > 0, wide_units / np.maximum(wide_days, 1), np.nan)
    peer = np.where(np.isnan(by_type), wide, by_type)

    names = {j: p for p, j in product_codes.items()}
    type_rates: dict[str, dict[str, float]] = {}
    for t, ti in type_codes.items():
        row: dict[str, float] = {}
        for pj in np.nonzero(g_days[ti] > 0)[0].tolist():
            row[names[pj]] = float(g_units[ti, pj] / g_days[ti, pj])
        type_rates[t] = row
    return peer, type_rates


def _loyalty(
    session: Session, stands: list[_StandRow], at: datetime
) -> tuple[dict[str, PartnerLoyalty], tuple[TierInfo, ...]]:
    tiers = tuple(
        TierInfo(t.code, t.name, t.rank, t.threshold_points)
        for t in session.scalars(select(LoyaltyTier).order_by(LoyaltyTier.rank))
    )
    partner_ids = sorted({s.partner_id for s in stands if s.focus})
    if not partner_ids:
        return {}, tiers
    led = StandLoyaltyLedger
    since = at - timedelta(days=TIER_WINDOW_DAYS)
    recent = at - timedelta(days=28)
    # What the tier rule counts (app.services.loyalty._earned_in_window): earn, activation
    # and bonus, less the reversals of voided sales.
    counted = (led.kind.in_((LoyaltyKind.EARN, LoyaltyKind.ACTIVATION, LoyaltyKind.BONUS))) | (
        (led.kind == LoyaltyKind.ADJUST) & (led.ref_type == "stand_order")
    )
    # Grouped by an expression: SQLite then reads the year of entries in one pass instead
    # of walking the partner index row by row (about twice as fast on the 500-stand demo).
    partner = func.coalesce(led.partner_id, "")
    # A few partners: their entries through the partner index; all of them: one pass.
    partner_in = (led.partner_id.in_(partner_ids),) if len(partner_ids) <= 50 else ()
    earned = dict.fromkeys(partner_ids, (0, 0))
    for pid, year, month in session.execute(
        select(
            partner,
            func.sum(led.points),
            func.sum(case((led.occurred_at > recent, led.points), else_=0)),
        )
        .where(counted, led.occurred_at > since, led.occurred_at <= at, *partner_in)
        .group_by(partner)
    ):
        if pid in earned:
            earned[pid] = (int(year or 0), int(month or 0))
    rows = session.execute(
        select(StandPartner.id, LoyaltyTier.code, LoyaltyTier.name, LoyaltyTier.rank)
        .join(LoyaltyTier, LoyaltyTier.id == StandPartner.loyalty_tier_id)
        .where(StandPartner.id.in_(partner_ids))
    ).all()
    return {r[0]: PartnerLoyalty(r[0], r[1], r[2], int(r[3]), *earned[r[0]]) for r in rows}, tiers
