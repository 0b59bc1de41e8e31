"""Read-side queries behind the stand list and the stand detail screens.

The stand list holds ids and builds rows lazily (after Anki's browser table): one query
returns the ordered ids for the filters and sort, another the rows of one page of ids. Both
keep the filter, sort and "needs attention" semantics of :func:`app.services.queries.list_stands`
(``tests/app/test_stand_views.py`` compares them), but are shaped to stay fast at 10,000
stands: the id query tests attention with indexed ``EXISTS`` probes instead of aggregating all
stock, and the page query aggregates only the stock of the stands on the page.

The detail screen reads its header and inventory from :func:`app.services.queries.stand_detail`
and its tabs from here: recent orders with their items, count snapshots with their lines, and
the partner's loyalty overview.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.errors import ValidationError
from app.models import (
    LocationType,
    LoyaltyTier,
    OrderKind,
    Product,
    StandInventory,
    StandInventorySnapshot,
    StandInventorySnapshotLine,
    StandLocation,
    StandOrder,
    StandOrderItem,
    StandPartner,
    StandRefillOrder,
    StandStatus,
)
from app.rules import TIER_WINDOW_DAYS
from app.services import loyalty
from app.services.base import get_or_404, transactional
from app.services.queries import (
    COUNT_OVERDUE_DAYS,
    SORTABLE,
    StandRow,
    _choice,
    _stand_rows_query,
    _to_row,
)
from app.services.refills import OPEN_STATES

#: Most ids one :func:`rows_for_ids` call accepts (SQLite allows 32,766 bound parameters;
#: a page of the list is a few hundred).
MAX_BATCH = 2_000


# --------------------------------------------------------------------------- the stand list


@dataclass(frozen=True)
class StandFilters:
    """What the stand list is filtered by; ``None`` or empty means "any"."""

    search: str | None = None
    status: str | None = None
    partner_id: str | None = None
    rep: str | None = None
    location_type: str | None = None
    needs_attention: bool | None = None

    @property
    def active(self) -> bool:
        """True if any filter narrows the list."""
        return bool(
            (self.search or "").strip()
            or self.status
            or self.partner_id
            or self.rep
            or self.location_type
            or self.needs_attention is not None
        )


@dataclass(frozen=True)
class StandIdList:
    """The ordered ids of the stands that match, and the counts a list header shows."""

    ids: tuple[str, ...]
    #: How many of ``ids`` need attention.
    attention: int
    #: How many stands the program has, unfiltered.
    program_total: int

    @property
    def total(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class PartnerChoice:
    id: str
    name: str
    #: The city of the partner's stands (the first by name if several): chains and shops
    #: that share a name are told apart by it.
    city: str
    stands: int


@dataclass(frozen=True)
class FilterChoices:
    """Values offered by the list's filter combos: reps and partners that have stands."""

    reps: tuple[str, ...]
    partners: tuple[PartnerChoice, ...]


def _active_stock() -> ColumnElement[bool]:
    return and_(StandInventory.stand_id == StandLocation.id, StandInventory.active)


def _attention(now: datetime) -> ColumnElement[bool]:
    """``queries``' "needs attention", as one indexed probe per stand.

    There, an active stand needs attention when a SKU is low (0 < on hand <= reorder point)
    or out (on hand <= 0), or when its latest count is missing or older than the overdue
    limit. Reorder points are never negative, so "low or out" is "on hand <= reorder point".
    One correlated aggregate reads each stand's stock once (twice as fast at 10,000 stands
    as two EXISTS probes, and than aggregating all stock and joining it back).
    """
    overdue_before = now - timedelta(days=COUNT_OVERDUE_DAYS)
    short = func.coalesce(
        func.sum(case((StandInventory.on_hand <= StandInventory.reorder_point, 1), else_=0)), 0
    )
    last_count = func.max(StandInventory.last_counted_at)
    probe = (
        select(or_(short > 0, last_count.is_(None), last_count < overdue_before))
        .where(_active_stock())
        .correlate(StandLocation)
        .scalar_subquery()
    )
    return and_(StandLocation.status == StandStatus.ACTIVE, probe)


def _stock_aggregate(value: ColumnElement[Any]) -> ColumnElement[Any]:
    return select(value).where(_active_stock()).correlate(StandLocation).scalar_subquery()


def _sort_keys() -> dict[str, ColumnElement[Any]]:
    """Every sortable column of the list: ``queries.SORTABLE`` and the stock figures."""
    low = case(
        (
            and_(
                StandInventory.on_hand > 0,
                StandInventory.on_hand <= StandInventory.reorder_point,
            ),
            1,
        ),
        else_=0,
    )
    open_refills = (
        select(func.count())
        .where(
            StandRefillOrder.stand_id == StandLocation.id,
            StandRefillOrder.status.in_(OPEN_STATES),
        )
        .correlate(StandLocation)
        .scalar_subquery()
    )
    keys: dict[str, ColumnElement[Any]] = {k: v.expression for k, v in SORTABLE.items()}
    keys.update(
        units=func.coalesce(_stock_aggregate(func.sum(StandInventory.on_hand)), 0),
        low=func.coalesce(_stock_aggregate(func.sum(low)), 0),
        out=func.coalesce(
            _stock_aggregate(func.sum(case((StandInventory.on_hand <= 0, 1), else_=0))), 0
        ),
        open_refills=open_refills,
        last_count=_stock_aggregate(func.max(StandInventory.last_counted_at)),
    )
    return keys


#: Keys :func:`stand_ids` sorts by: ``queries.SORTABLE`` plus units, low, out,
#: open_refills and last_count.
SORT_KEYS = tuple(_sort_keys())


@transactional
def stand_ids(
    session: Session,
    filters: StandFilters = StandFilters(),
    *,
    order_by: str = "name",
    descending: bool = False,
    now: datetime | None = None,
) -> StandIdList:
    """The ids of the stands that match ``filters``, sorted in SQL by ``order_by`` and then by
    id (so the order is total), as :func:`queries.list_stands` sorts them."""
    status = _choice(filters.status, StandStatus, "status", "stand status")
    location_type = _choice(filters.location_type, LocationType, "location_type", "location type")
    keys = _sort_keys()
    if order_by not in keys:
        raise ValidationError(
            f"Cannot sort by {order_by!r}; use one of: {', '.join(keys)}.", field="order_by"
        )
    attention = _attention(now or utcnow())
    stmt = select(StandLocation.id, attention).join(
        StandPartner, StandPartner.id == StandLocation.partner_id
    )
    search = (filters.search or "").strip().lower()
    if search:
        like = f"%{search}%"
        stmt = stmt.where(
            or_(
                func.lower(StandLocation.name).like(like),
                func.lower(StandLocation.city).like(like),
                func.lower(StandPartner.name).like(like),
                func.lower(StandLocation.address).like(like),
            )
        )
    if status:
        stmt = stmt.where(StandLocation.status == status)
    if filters.partner_id:
        stmt = stmt.where(StandLocation.partner_id == filters.partner_id)
    if filters.rep:
        stmt = stmt.where(StandLocation.assigned_rep == filters.rep)
    if location_type:
        stmt = stmt.where(StandLocation.location_type == location_type)
    if filters.needs_attention is not None:
        stmt = stmt.where(attention if filters.needs_attention else ~attention)
    column = keys[order_by]
    # NULLs (never counted, no rep) sort as the smallest value on every database.
    nulls = column.is_(None)
    stmt = stmt.order_by(
        nulls.asc() if descending else nulls.desc(),
        column.desc() if descending else column.asc(),
        StandLocation.id,
    )
    rows = session.execute(stmt).all()
    program_total = session.scalar(select(func.count()).select_from(StandLocation)) or 0
    return StandIdList(
        ids=tuple(str(r[0]) for r in rows),
        attention=sum(1 for r in rows if r[1]),
        program_total=int(program_total),
    )


@transactional
def rows_for_ids(
    session: Session, ids: Sequence[str], *, now: datetime | None = None
) -> list[StandRow]:
    """The list rows of ``ids`` in one query, in the order of ``ids``. Ids of stands that no
    longer exist are left out."""
    wanted = list(dict.fromkeys(ids))
    if len(wanted) > MAX_BATCH:
        raise ValidationError(f"Ask for at most {MAX_BATCH} stands at a time.", field="ids")
    if not wanted:
        return []
    by_id = {
        row.id: row
        for row in (
            _to_row(tuple(r)) for r in session.execute(_stand_rows_query(now or utcnow(), wanted))
        )
    }
    return [by_id[i] for i in wanted if i in by_id]


@transactional
def filter_choices(session: Session) -> FilterChoices:
    """The reps assigned to stands and the partners that have stands, sorted by name."""
    reps = session.scalars(
        select(StandLocation.assigned_rep)
        .where(StandLocation.assigned_rep.is_not(None))
        .distinct()
        .order_by(StandLocation.assigned_rep)
    )
    partners = session.execute(
        select(StandPartner.id, StandPartner.name, func.min(StandLocation.city), func.count())
        .join(StandLocation, StandLocation.partner_id == StandPartner.id)
        .group_by(StandPartner.id, StandPartner.name)
        .order_by(func.lower(StandPartner.name), StandPartner.id)
    )
    return FilterChoices(
        reps=tuple(str(r) for r in reps),
        partners=tuple(PartnerChoice(str(i), str(n), str(c), int(k)) for i, n, c, k in partners),
    )


# --------------------------------------------------------------------------- sales tab


@dataclass(frozen=True)
class OrderLineView:
    product_id: str
    sku: str
    name: str
    quantity: int
    unit_price: Decimal
    line_total: Decimal
    price_overridden: bool


@dataclass(frozen=True)
class OrderView:
    """A sale, or the void of one (negated lines and total), with its items."""

    id: str
    kind: str  # "sale" or "void"
    occurred_at: datetime
    payment_method: str
    currency: str
    total: Decimal
    points_earned: int
    actor: str | None
    oversold: bool
    #: For a void: the sale it undoes.
    voided_order_id: str | None
    #: For a sale: the void that undid it, if any.
    voided_by: str | None
    items: tuple[OrderLineView, ...]

    @property
    def is_void(self) -> bool:
        return self.kind == OrderKind.VOID.value

    @property
    def voided(self) -> bool:
        """A sale that has been voided."""
        return self.voided_by is not None

    @property
    def units(self) -> int:
        return sum(item.quantity for item in self.items)


@transactional
def recent_orders(session: Session, stand_id: str, *, limit: int = 50) -> list[OrderView]:
    """The stand's latest sales and voids with their items, newest first."""
    get_or_404(session, StandLocation, stand_id, "stand")
    orders = session.scalars(
        select(StandOrder)
        .where(StandOrder.stand_id == stand_id)
        .order_by(StandOrder.occurred_at.desc(), StandOrder.id.desc())
        .limit(max(1, min(limit, 1000)))
    ).all()
    ids = [o.id for o in orders]
    if not ids:
        return []
    lines: dict[str, list[OrderLineView]] = {i: [] for i in ids}
    for item, sku, name in session.execute(
        select(StandOrderItem, Product.sku, Product.name)
        .join(Product, Product.id == StandOrderItem.product_id)
        .where(StandOrderItem.order_id.in_(ids))
        .order_by(StandOrderItem.order_id, StandOrderItem.line_no)
    ):
        lines[item.order_id].append(
            OrderLineView(
                item.product_id,
                sku,
                name,
                item.quantity,
                item.unit_price,
                item.line_total,
                item.price_overridden,
            )
        )
    voids = {
        str(sale): str(void)
        for void, sale in session.execute(
            select(StandOrder.id, StandOrder.voided_order_id).where(
                StandOrder.voided_order_id.in_(ids)
            )
        )
    }
    return [
        OrderView(
            id=o.id,
            kind=o.kind.value,
            occurred_at=o.occurred_at,
            payment_method=o.payment_method.value,
            currency=o.currency,
            total=o.total,
            points_earned=o.points_earned,
            actor=o.actor,
            oversold=o.oversold,
            voided_order_id=o.voided_order_id,
            voided_by=voids.get(o.id),
            items=tuple(lines[o.id]),
        )
        for o in orders
    ]


# --------------------------------------------------------------------------- counts tab


@dataclass(frozen=True)
class SnapshotLineView:
    product_id: str
    sku: str
    name: str
    expected: int
    counted: int
    variance: int
    #: The product's list price, to put a value on the variance.
    list_price: Decimal

    @property
    def variance_value(self) -> Decimal:
        return self.variance * self.list_price


@dataclass(frozen=True)
class SnapshotView:
    """A physical count (or an Inventory OS snapshot) with its lines."""

    id: str
    counted_at: datetime
    source: str
    actor: str | None
    note: str | None
    lines: tuple[SnapshotLineView, ...]

    @property
    def total_variance(self) -> int:
        return sum(line.variance for line in self.lines)

    @property
    def variance_value(self) -> Decimal:
        return sum((line.variance_value for line in self.lines), Decimal(0))

    @property
    def lines_off(self) -> int:
        """How many SKUs were counted at other than the expected quantity."""
        return sum(1 for line in self.lines if line.variance)


@transactional
def count_snapshots(session: Session, stand_id: str, *, limit: int = 20) -> list[SnapshotView]:
    """The stand's latest counts with expected, counted and variance per SKU, newest first;
    lines with the largest variance first, then by product name."""
    get_or_404(session, StandLocation, stand_id, "stand")
    snapshots = session.scalars(
        select(StandInventorySnapshot)
        .where(StandInventorySnapshot.stand_id == stand_id)
        .order_by(StandInventorySnapshot.counted_at.desc(), StandInventorySnapshot.id.desc())
        .limit(max(1, min(limit, 500)))
    ).all()
    ids = [s.id for s in snapshots]
    if not ids:
        return []
    lines: dict[str, list[SnapshotLineView]] = {i: [] for i in ids}
    Line = StandInventorySnapshotLine
    for line, sku, name, price in session.execute(
        select(Line, Product.sku, Product.name, Product.list_price)
        .join(Product, Product.id == Line.product_id)
        .where(Line.snapshot_id.in_(ids))
        .order_by(Line.snapshot_id, func.abs(Line.variance).desc(), Product.name, Product.id)
    ):
        lines[line.snapshot_id].append(
            SnapshotLineView(
                line.product_id,
                sku,
                name,
                line.expected_qty,
                line.counted_qty,
                line.variance,
                price,
            )
        )
    return [
        SnapshotView(s.id, s.counted_at, s.source.value, s.actor, s.note, tuple(lines[s.id]))
        for s in snapshots
    ]


# --------------------------------------------------------------------------- loyalty tab


@dataclass(frozen=True)
class LoyaltyOverview:
    """A partner's balance, tier, progress to the next tier and latest ledger entries."""

    partner_id: str
    balance: int
    tier: loyalty.TierStatus
    #: Points the current tier needs over the window, and the next tier (None at the top).
    tier_threshold: int
    next_threshold: int | None
    window_days: int
    entries: tuple[loyalty.LedgerEntry, ...]

    @property
    def progress(self) -> float:
        """0..1 of the way from the current tier's threshold to the next one's (1 at the top)."""
        if self.next_threshold is None:
            return 1.0
        span = self.next_threshold - self.tier_threshold
        if span <= 0:
            return 1.0
        done = self.tier.earned_in_window - self.tier_threshold
        return max(0.0, min(1.0, done / span))


@transactional
def loyalty_overview(
    session: Session, partner_id: str, *, limit: int = 200, now: datetime | None = None
) -> LoyaltyOverview:
    """Everything the loyalty tab shows, read in one transaction through :mod:`loyalty`."""
    status = loyalty.tier_status(session, partner_id, now=now)
    entries = loyalty.ledger(session, partner_id, limit=limit)
    balance = loyalty.balance(session, partner_id)
    thresholds = {
        code: int(points)
        for code, points in session.execute(select(LoyaltyTier.code, LoyaltyTier.threshold_points))
    }
    return LoyaltyOverview(
        partner_id=partner_id,
        balance=balance,
        tier=status,
        tier_threshold=thresholds.get(status.tier_code, 0),
        next_threshold=thresholds.get(status.next_tier_code) if status.next_tier_code else None,
        window_days=TIER_WINDOW_DAYS,
        entries=tuple(entries),
    )
