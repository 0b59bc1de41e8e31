"""Read-side queries for lists and detail screens, as plain frozen rows.

Aggregates are computed in SQL so a list of thousands of stands costs one query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, and_, case, func, or_, select, tuple_
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.errors import ValidationError
from app.models import (
    LocationType,
    LoyaltyTier,
    Package,
    PartnerStatus,
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
from app.services.base import get_or_404, transactional
from app.services.refills import OPEN_STATES
from app.services.scope import AccessScope

#: An active stand needs attention when a SKU is at or below its reorder point, or when it
#: has not been counted for this long.
COUNT_OVERDUE_DAYS = 28


@dataclass(frozen=True)
class StandRow:
    id: str
    name: str
    partner_id: str
    partner_name: str
    city: str
    location_type: str
    status: str
    assigned_rep: str | None
    sku_count: int
    units_on_hand: int
    low_count: int
    out_count: int
    open_refills: int
    last_counted_at: datetime | None
    needs_attention: bool


@dataclass(frozen=True)
class InventoryRow:
    product_id: str
    sku: str
    name: str
    category: str
    on_hand: int
    par_level: int
    reorder_point: int
    capacity: int
    last_counted_at: datetime | None
    list_price: Decimal

    @property
    def state(self) -> str:
        """'out', 'low' or 'ok' (for colour in lists)."""
        if self.on_hand <= 0:
            return "out"
        if self.on_hand <= self.reorder_point:
            return "low"
        return "ok"


@dataclass(frozen=True)
class StandDetail:
    stand: StandRow
    address: str
    postal_code: str | None
    latitude: float | None
    longitude: float | None
    capacity_units: int
    timezone: str
    payment_reference: str
    qr_payload: str
    package_code: str
    package_name: str
    tier_code: str
    tier_name: str
    loyalty_balance: int
    inventory: tuple[InventoryRow, ...]


@dataclass(frozen=True)
class RefillRow:
    id: str
    stand_id: str
    stand_name: str
    status: str
    total: Decimal
    requested_by: str
    requested_at: datetime
    scheduled_for: str | None
    line_count: int


SORTABLE = {
    "name": StandLocation.name,
    "city": StandLocation.city,
    "partner": StandPartner.name,
    "status": StandLocation.status,
    "type": StandLocation.location_type,
    "rep": StandLocation.assigned_rep,
}


def _stand_rows_query(now: datetime, ids: Sequence[str] | None = None) -> Select[*tuple[Any, ...]]:
    """The stand list's row query. With ``ids``, the stock and refill aggregates are narrowed
    to those stands too (a page of 200 rows then costs ~10 ms instead of aggregating the
    whole program's stock)."""
    stock = (
        select(
            StandInventory.stand_id.label("stand_id"),
            func.count().label("skus"),
            func.coalesce(func.sum(StandInventory.on_hand), 0).label("units"),
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
            ).label("low"),
            func.sum(case((StandInventory.on_hand <= 0, 1), else_=0)).label("out"),
            func.max(StandInventory.last_counted_at).label("last_count"),
        )
        .where(StandInventory.active)
        .group_by(StandInventory.stand_id)
    )
    open_refills = (
        select(StandRefillOrder.stand_id.label("stand_id"), func.count().label("open"))
        .where(StandRefillOrder.status.in_(OPEN_STATES))
        .group_by(StandRefillOrder.stand_id)
    )
    if ids is not None:
        stock = stock.where(StandInventory.stand_id.in_(ids))
        open_refills = open_refills.where(StandRefillOrder.stand_id.in_(ids))
    inv, refills = stock.subquery(), open_refills.subquery()
    overdue_before = now - timedelta(days=COUNT_OVERDUE_DAYS)
    # Only a live stand can need a visit; a planned one is handled by its onboarding refill.
    attention = and_(
        StandLocation.status == StandStatus.ACTIVE,
        or_(
            func.coalesce(inv.c.low, 0) > 0,
            func.coalesce(inv.c.out, 0) > 0,
            inv.c.last_count.is_(None),
            inv.c.last_count < overdue_before,
        ),
    )
    query = (
        select(
            StandLocation.id,
            StandLocation.name,
            StandLocation.partner_id,
            StandPartner.name,
            StandLocation.city,
            StandLocation.location_type,
            StandLocation.status,
            StandLocation.assigned_rep,
            func.coalesce(inv.c.skus, 0),
            func.coalesce(inv.c.units, 0),
            func.coalesce(inv.c.low, 0),
            func.coalesce(inv.c.out, 0),
            func.coalesce(refills.c.open, 0),
            inv.c.last_count,
            attention,
        )
        .join(StandPartner, StandPartner.id == StandLocation.partner_id)
        .outerjoin(inv, inv.c.stand_id == StandLocation.id)
        .outerjoin(refills, refills.c.stand_id == StandLocation.id)
    )
    return query if ids is None else query.where(StandLocation.id.in_(ids))


def _int(value: object) -> int:
    return int(value) if isinstance(value, int | Decimal) else 0


def _to_row(r: tuple[object, ...]) -> StandRow:
    last = r[13]
    return StandRow(
        id=str(r[0]),
        name=str(r[1]),
        partner_id=str(r[2]),
        partner_name=str(r[3]),
        city=str(r[4]),
        location_type=str(getattr(r[5], "value", r[5])),
        status=str(getattr(r[6], "value", r[6])),
        assigned_rep=None if r[7] is None else str(r[7]),
        sku_count=_int(r[8]),
        units_on_hand=_int(r[9]),
        low_count=_int(r[10]),
        out_count=_int(r[11]),
        open_refills=_int(r[12]),
        last_counted_at=last if isinstance(last, datetime) else None,
        needs_attention=bool(r[14]),
    )


def _choice(value: str | None, allowed: type[StrEnum], field: str, label: str) -> str | None:
    if value is None or value == "":
        return None
    if value not in {m.value for m in allowed}:
        options = ", ".join(m.value for m in allowed)
        raise ValidationError(f"Unknown {label} {value!r}; use one of: {options}.", field=field)
    return value


@transactional
def list_stands(
    session: Session,
    *,
    search: str | None = None,
    status: str | None = None,
    partner_id: str | None = None,
    rep: str | None = None,
    location_type: str | None = None,
    needs_attention: bool | None = None,
    order_by: str = "name",
    descending: bool = False,
    limit: int | None = None,
    offset: int = 0,
    now: datetime | None = None,
    access: AccessScope | None = None,
    region: str | None = None,
    after: tuple[str, str] | None = None,
) -> list[StandRow]:
    """Stands with their stock and refill summary, filtered and sorted in SQL.

    ``access`` keeps the stands the caller may see (none given: the whole program);
    ``region`` keeps the stands of partners in that region. Rows are ordered by the sort
    column, then by id, so the order is stable. ``after`` pages by keyset: only rows
    strictly after the given ``(name, id)`` (the last row of the previous page) in the
    default order (by name, ascending); with ``limit`` this pages through thousands of
    stands without the cost or the skipped and repeated rows of a growing offset.
    """
    status = _choice(status, StandStatus, "status", "stand status")
    location_type = _choice(location_type, LocationType, "location_type", "location type")
    if order_by not in SORTABLE:
        raise ValidationError(
            f"Cannot sort by {order_by!r}; use one of: {', '.join(SORTABLE)}.", field="order_by"
        )
    if after is not None:
        if order_by != "name" or descending:
            raise ValidationError(
                "Paging by the last row seen works only in the default order (by name, ascending).",
                field="after",
            )
        if (
            not isinstance(after, tuple | list)
            or len(after) != 2
            or not all(isinstance(v, str) for v in after)
        ):
            raise ValidationError(
                "The last row seen must be given as its name and id.", field="after"
            )
    at = now or utcnow()

    def filtered(stmt: Select[Any]) -> Select[Any]:
        if access is not None:
            clause = access.stand_clause()
            if clause is not None:
                stmt = stmt.where(clause)
        if region:
            stmt = stmt.where(StandPartner.region == region)
        if after is not None:
            stmt = stmt.where(tuple_(StandLocation.name, StandLocation.id) > tuple_(*after))
        if search:
            like = f"%{search.strip().lower()}%"
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
        if partner_id:
            stmt = stmt.where(StandLocation.partner_id == partner_id)
        if rep:
            stmt = stmt.where(StandLocation.assigned_rep == rep)
        if location_type:
            stmt = stmt.where(StandLocation.location_type == location_type)
        column = SORTABLE.get(order_by, StandLocation.name)
        return stmt.order_by(column.desc() if descending else column.asc(), StandLocation.id)

    if limit is not None and needs_attention is None:
        # A page: find its stands first (indexes, no aggregates), then aggregate the stock
        # and refills of those stands only, instead of the whole program's for every page.
        page = filtered(
            select(StandLocation.id).join(StandPartner, StandPartner.id == StandLocation.partner_id)
        )
        ids = list(session.scalars(page.limit(limit).offset(offset)))
        if not ids:
            return []
        stmt = filtered(_stand_rows_query(at, ids))
    else:
        stmt = filtered(_stand_rows_query(at))
        if needs_attention is not None:
            attention = stmt.selected_columns[14]
            stmt = stmt.where(attention if needs_attention else ~attention)
        if limit is not None:
            stmt = stmt.limit(limit).offset(offset)
    return [_to_row(tuple(r)) for r in session.execute(stmt)]


@transactional
def stand_detail(session: Session, stand_id: str, *, now: datetime | None = None) -> StandDetail:
    stand = get_or_404(session, StandLocation, stand_id, "stand")
    row = _to_row(
        tuple(
            session.execute(
                _stand_rows_query(now or utcnow(), ids=[stand.id]).where(
                    StandLocation.id == stand.id
                )
            ).one()
        )
    )
    partner = session.get_one(StandPartner, stand.partner_id)
    package = session.get_one(Package, partner.package_id)
    tier = session.get_one(LoyaltyTier, partner.loyalty_tier_id)
    balance = int(
        session.scalar(
            select(func.coalesce(func.sum(StandLoyaltyLedger.points), 0)).where(
                StandLoyaltyLedger.partner_id == partner.id
            )
        )
        or 0
    )
    inventory = tuple(
        InventoryRow(
            p.id,
            p.sku,
            p.name,
            p.category,
            i.on_hand,
            i.par_level,
            i.reorder_point,
            i.capacity,
            i.last_counted_at,
            p.list_price,
        )
        for i, p in session.execute(
            select(StandInventory, Product)
            .join(Product, Product.id == StandInventory.product_id)
            .where(StandInventory.stand_id == stand.id)
            .order_by(Product.category, Product.name)
        )
    )
    return StandDetail(
        row,
        stand.address,
        stand.postal_code,
        stand.latitude,
        stand.longitude,
        stand.capacity_units,
        stand.timezone,
        stand.payment_reference,
        stand.qr_payload,
        package.code,
        package.name,
        tier.code,
        tier.name,
        balance,
        inventory,
    )


@transactional
def list_refills(
    session: Session,
    *,
    status: str | None = None,
    stand_id: str | None = None,
    open_only: bool = False,
    limit: int = 500,
) -> list[RefillRow]:
    """Refills, newest first; ``open_only`` keeps those not yet confirmed or closed."""
    status = _choice(status, RefillStatus, "status", "refill status")
    lines = (
        select(func.count())
        .where(StandRefillOrderItem.refill_id == StandRefillOrder.id)
        .correlate(StandRefillOrder)
        .scalar_subquery()
    )
    stmt = (
        select(StandRefillOrder, StandLocation.name, lines)
        .join(StandLocation, StandLocation.id == StandRefillOrder.stand_id)
        .order_by(StandRefillOrder.requested_at.desc(), StandRefillOrder.id.desc())
        .limit(limit)
    )
    if status:
        stmt = stmt.where(StandRefillOrder.status == status)
    if open_only:
        stmt = stmt.where(StandRefillOrder.status.in_(OPEN_STATES))
    if stand_id:
        stmt = stmt.where(StandRefillOrder.stand_id == stand_id)
    return [
        RefillRow(
            r.id,
            r.stand_id,
            name,
            r.status.value,
            r.total,
            r.requested_by,
            r.requested_at,
            r.scheduled_for.isoformat() if r.scheduled_for else None,
            int(n or 0),
        )
        for r, name, n in session.execute(stmt)
    ]


@dataclass(frozen=True)
class PartnerRow:
    id: str
    name: str
    contact_name: str
    status: str
    region: str | None
    package_code: str
    package_name: str
    tier_code: str
    tier_name: str
    loyalty_balance: int
    stand_count: int


@transactional
def list_partners(
    session: Session, *, search: str | None = None, status: str | None = None
) -> list[PartnerRow]:
    """Partners with their package, tier, points balance and number of (not removed) stands."""
    status = _choice(status, PartnerStatus, "status", "partner status")
    points = (
        select(
            StandLoyaltyLedger.partner_id.label("partner_id"),
            func.sum(StandLoyaltyLedger.points).label("points"),
        )
        .group_by(StandLoyaltyLedger.partner_id)
        .subquery()
    )
    stands = (
        select(StandLocation.partner_id.label("partner_id"), func.count().label("n"))
        .where(StandLocation.status != StandStatus.REMOVED)
        .group_by(StandLocation.partner_id)
        .subquery()
    )
    stmt = (
        select(
            StandPartner,
            Package.code,
            Package.name,
            LoyaltyTier.code,
            LoyaltyTier.name,
            func.coalesce(points.c.points, 0),
            func.coalesce(stands.c.n, 0),
        )
        .join(Package, Package.id == StandPartner.package_id)
        .join(LoyaltyTier, LoyaltyTier.id == StandPartner.loyalty_tier_id)
        .outerjoin(points, points.c.partner_id == StandPartner.id)
        .outerjoin(stands, stands.c.partner_id == StandPartner.id)
        .order_by(StandPartner.name, StandPartner.id)
    )
    if search:
        like = f"%{search.strip().lower()}%"
        stmt = stmt.where(
            or_(
                func.lower(StandPartner.name).like(like),
                func.lower(StandPartner.contact_name).like(like),
            )
        )
    if status:
        stmt = stmt.where(StandPartner.status == status)
    return [
        PartnerRow(
            p.id,
            p.name,
            p.contact_name,
            p.status.value,
            p.region,
            pcode,
            pname,
            tcode,
            tname,
            _int(balance),
            _int(n),
        )
        for p, pcode, pname, tcode, tname, balance, n in session.execute(stmt)
    ]
