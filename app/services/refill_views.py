"""Read models of refills for the screens: the filtered list across stands, one refill's
detail (lines, discrepancies, its timeline), the request form of a stand, and the dealers
used before.

Everything returned is a frozen dataclass of plain values; the lifecycle itself
(what may happen next, and the writes) is :mod:`app.services.refills`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, false, func, or_, select
from sqlalchemy.orm import Session

from app.errors import ValidationError
from app.models import (
    DiscrepancyStatus,
    Product,
    RefillStatus,
    StandInventory,
    StandLocation,
    StandPartner,
    StandRefillEvent,
    StandRefillOrder,
    StandRefillOrderItem,
    StandStatus,
)
from app.models import RefillDiscrepancy as Discrepancy
from app.rules import local_date
from app.services.base import get_or_404, to_time, transactional
from app.services.refills import OPEN_STATES, suggested_quantities

#: Filters of the refill list besides the statuses themselves.
OPEN_FILTER = "open"
DISCREPANCY_FILTER = "discrepancy"
STATE_FILTERS = (OPEN_FILTER, *(s.value for s in RefillStatus), DISCREPANCY_FILTER)
#: Stands in these states can be asked for a refill (removed ones cannot).
REFILLABLE = (StandStatus.ACTIVE, StandStatus.PLANNED, StandStatus.PAUSED)


@dataclass(frozen=True)
class RefillListRow:
    id: str
    stand_id: str
    stand_name: str
    partner_name: str
    city: str
    status: RefillStatus
    total: Decimal
    currency: str
    requested_by: str
    requested_at: datetime
    scheduled_for: date | None
    dealer: str | None
    line_count: int
    #: Units at the latest figure the refill has: approved, else requested.
    units: int
    open_discrepancies: int
    updated_at: datetime
    #: Units delivered so far (adds up over the parts of a delivery).
    delivered_units: int = 0

    @property
    def partly_delivered(self) -> bool:
        """Scheduled with part of it already on the stand: the rest is still to come."""
        return self.status == RefillStatus.SCHEDULED and self.delivered_units > 0


@dataclass(frozen=True)
class RefillLineView:
    product_id: str
    sku: str
    name: str
    pack_size: int
    requested: int
    approved: int | None
    delivered: int | None
    received: int | None
    unit_price: Decimal
    #: While a delivery in parts is under way (scheduled, some units delivered): the
    #: approved units not delivered yet. ``None`` otherwise.
    to_come: int | None = None

    @property
    def current(self) -> int:
        """The latest quantity the refill has for this line (while a delivery in parts is
        under way, the approved quantity it is heading for)."""
        if self.to_come is not None and self.approved is not None:
            return self.approved
        for value in (self.received, self.delivered, self.approved):
            if value is not None:
                return value
        return self.requested


@dataclass(frozen=True)
class DiscrepancyView:
    id: str
    product_id: str
    sku: str
    name: str
    delivered: int
    received: int
    status: DiscrepancyStatus
    created_at: datetime
    resolved_by: str | None
    resolved_at: datetime | None
    resolution_note: str | None

    @property
    def difference(self) -> int:
        return self.received - self.delivered

    @property
    def is_open(self) -> bool:
        return self.status == DiscrepancyStatus.OPEN


@dataclass(frozen=True)
class RefillEventView:
    """One transition as it happened, with what was given with it."""

    action: str
    from_status: RefillStatus | None
    to_status: RefillStatus
    actor: str
    role: str
    occurred_at: datetime
    reason: str | None = None
    scheduled_for: date | None = None
    dealer: str | None = None
    discrepancies: int = 0
    #: A delivery: the units it brought, and all units delivered up to and including it.
    units: int | None = None
    units_total: int | None = None
    #: A delivery recorded with more to come (the refill stayed scheduled).
    partial: bool = False


@dataclass(frozen=True)
class RefillDetail:
    id: str
    stand_id: str
    stand_name: str
    partner_name: str
    city: str
    status: RefillStatus
    total: Decimal
    currency: str
    note: str
    requested_by: str
    requested_at: datetime
    approved_by: str | None
    approved_at: datetime | None
    scheduled_by: str | None
    scheduled_at: datetime | None
    scheduled_for: date | None
    dealer: str | None
    delivered_by: str | None
    delivered_at: datetime | None
    confirmed_by: str | None
    confirmed_at: datetime | None
    closed_by: str | None
    closed_at: datetime | None
    close_reason: str | None
    lines: tuple[RefillLineView, ...]
    discrepancies: tuple[DiscrepancyView, ...]
    events: tuple[RefillEventView, ...]
    #: The stand's own date when the detail was read: the earliest delivery date the
    #: service accepts (the machine showing it may be in another time zone).
    stand_today: date

    @property
    def open_discrepancies(self) -> tuple[DiscrepancyView, ...]:
        return tuple(d for d in self.discrepancies if d.is_open)

    @property
    def delivered_units(self) -> int:
        """Units delivered so far, over every part of the delivery."""
        return sum(line.delivered or 0 for line in self.lines)

    @property
    def approved_units(self) -> int:
        return sum(line.approved or 0 for line in self.lines)

    @property
    def partly_delivered(self) -> bool:
        """Scheduled with part of it already on the stand: the rest is still to come."""
        return self.status == RefillStatus.SCHEDULED and self.delivered_units > 0

    @property
    def deliveries(self) -> tuple[RefillEventView, ...]:
        """The deliveries recorded (more than one when the refill came in parts)."""
        return tuple(e for e in self.events if e.action == "deliver")

    @property
    def units(self) -> int:
        """Units at the latest figure of each line (see :attr:`RefillLineView.current`)."""
        return sum(line.current for line in self.lines)


@dataclass(frozen=True)
class RefillFormLine:
    product_id: str
    sku: str
    name: str
    category: str
    on_hand: int
    par_level: int
    reorder_point: int
    capacity: int
    pack_size: int
    list_price: Decimal
    #: Par minus on hand in whole packs within capacity (0: at or above par).
    suggested: int


@dataclass(frozen=True)
class OpenRefill:
    id: str
    status: RefillStatus
    requested_at: datetime
    units: int


@dataclass(frozen=True)
class RefillForm:
    """What the request screen shows for one stand."""

    stand_id: str
    stand_name: str
    partner_name: str
    stand_status: StandStatus
    lines: tuple[RefillFormLine, ...]
    #: Refills of this stand still in flight (so nobody asks twice by mistake).
    open_refills: tuple[OpenRefill, ...]

    @property
    def can_request(self) -> bool:
        return self.stand_status in REFILLABLE


@transactional
def refill_list(
    session: Session,
    *,
    state: str | None = None,
    stand_id: str | None = None,
    search: str | None = None,
    limit: int = 500,
) -> list[RefillListRow]:
    """Refills across stands (or of one stand), newest request first.

    ``state`` is a refill status, ``"open"`` (requested to delivered) or ``"discrepancy"``
    (confirmed with a discrepancy still open); ``search`` matches the stand, partner, city,
    dealer or requester, case-insensitively.
    """
    if state and state not in STATE_FILTERS:
        raise ValidationError(
            f"Unknown refill state {state!r}; use one of: {', '.join(STATE_FILTERS)}.",
            field="state",
        )
    lines = (
        select(
            StandRefillOrderItem.refill_id.label("refill_id"),
            func.count().label("n"),
            func.sum(
                func.coalesce(StandRefillOrderItem.approved_qty, StandRefillOrderItem.requested_qty)
            ).label("units"),
            func.sum(func.coalesce(StandRefillOrderItem.delivered_qty, 0)).label("delivered"),
        )
        .group_by(StandRefillOrderItem.refill_id)
        .subquery()
    )
    issues = (
        select(Discrepancy.refill_id.label("refill_id"), func.count().label("n"))
        .where(Discrepancy.status == DiscrepancyStatus.OPEN)
        .group_by(Discrepancy.refill_id)
        .subquery()
    )
    stmt = (
        select(
            StandRefillOrder,
            StandLocation.name,
            StandPartner.name,
            StandLocation.city,
            func.coalesce(lines.c.n, 0),
            func.coalesce(lines.c.units, 0),
            func.coalesce(issues.c.n, 0),
            func.coalesce(lines.c.delivered, 0),
        )
        .join(StandLocation, StandLocation.id == StandRefillOrder.stand_id)
        .join(StandPartner, StandPartner.id == StandLocation.partner_id)
        .outerjoin(lines, lines.c.refill_id == StandRefillOrder.id)
        .outerjoin(issues, issues.c.refill_id == StandRefillOrder.id)
        .order_by(StandRefillOrder.requested_at.desc(), StandRefillOrder.id.desc())
        .limit(limit)
    )
    if state == OPEN_FILTER:
        stmt = stmt.where(StandRefillOrder.status.in_(OPEN_STATES))
    elif state == DISCREPANCY_FILTER:
        stmt = stmt.where(issues.c.n > 0)
    elif state:
        stmt = stmt.where(StandRefillOrder.status == state)
    if stand_id:
        stmt = stmt.where(StandRefillOrder.stand_id == stand_id)
    if search and search.strip():
        stmt = stmt.where(_matches(search))
    return [
        RefillListRow(
            id=r.id,
            stand_id=r.stand_id,
            stand_name=stand_name,
            partner_name=partner_name,
            city=city,
            status=r.status,
            total=r.total,
            currency=r.currency,
            requested_by=r.requested_by,
            requested_at=r.requested_at,
            scheduled_for=r.scheduled_for,
            dealer=r.dealer,
            line_count=int(n),
            units=int(units),
            open_discrepancies=int(open_issues),
            updated_at=r.updated_at,
            delivered_units=int(delivered),
        )
        for r, stand_name, partner_name, city, n, units, open_issues, delivered in session.execute(
            stmt
        )
    ]


def _matches(search: str) -> ColumnElement[bool]:
    like = f"%{search.strip().lower()}%"
    columns = (
        StandLocation.name,
        StandPartner.name,
        StandLocation.city,
        StandRefillOrder.dealer,
        StandRefillOrder.requested_by,
    )
    return or_(false(), *(func.lower(c).like(like) for c in columns))


def _event_detail(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _units(value: object) -> int | None:
    """The sum of a {product: units} mapping of an event's detail (None if not one)."""
    if not isinstance(value, dict):
        return None
    return sum(v for v in value.values() if isinstance(v, int))


def _event(e: StandRefillEvent) -> RefillEventView:
    detail = _event_detail(e.detail)
    reason = detail.get("reason")
    dealer = detail.get("dealer")
    day = detail.get("scheduled_for")
    try:
        scheduled_for = date.fromisoformat(day) if isinstance(day, str) else None
    except ValueError:
        scheduled_for = None
    found = detail.get("discrepancies")
    return RefillEventView(
        action=e.action.value,
        from_status=e.from_status,
        to_status=e.to_status,
        actor=e.actor,
        role=e.role,
        occurred_at=e.occurred_at,
        reason=reason if isinstance(reason, str) else None,
        scheduled_for=scheduled_for,
        dealer=dealer if isinstance(dealer, str) else None,
        discrepancies=len(found) if isinstance(found, list | dict) else 0,
        units=_units(detail.get("delivered")),
        # (a delivery recorded before deliveries in parts: "delivered" was the total)
        units_total=_units(detail.get("delivered_total", detail.get("delivered"))),
        partial=detail.get("partial") is True,
    )


@transactional
def refill_detail(session: Session, refill_id: str, *, now: datetime | None = None) -> RefillDetail:
    """One refill with its lines, discrepancies and transitions (oldest first)."""
    r = get_or_404(session, StandRefillOrder, refill_id, "refill")
    stand = session.get_one(StandLocation, r.stand_id)
    partner = session.get_one(StandPartner, stand.partner_id)
    rows = session.execute(
        select(StandRefillOrderItem, Product)
        .join(Product, Product.id == StandRefillOrderItem.product_id)
        .where(StandRefillOrderItem.refill_id == r.id)
        .order_by(StandRefillOrderItem.line_no)
    ).all()
    in_parts = r.status == RefillStatus.SCHEDULED and any(i.delivered_qty for i, _ in rows)
    lines = tuple(
        RefillLineView(
            product_id=i.product_id,
            sku=p.sku,
            name=p.name,
            pack_size=p.pack_size,
            requested=i.requested_qty,
            approved=i.approved_qty,
            delivered=i.delivered_qty,
            received=i.received_qty,
            unit_price=i.unit_price,
            to_come=max((i.approved_qty or 0) - (i.delivered_qty or 0), 0) if in_parts else None,
        )
        for i, p in rows
    )
    discrepancies = tuple(
        DiscrepancyView(
            id=d.id,
            product_id=d.product_id,
            sku=p.sku,
            name=p.name,
            delivered=d.delivered_qty,
            received=d.received_qty,
            status=d.status,
            created_at=d.created_at,
            resolved_by=d.resolved_by,
            resolved_at=d.resolved_at,
            resolution_note=d.resolution_note,
        )
        for d, p in session.execute(
            select(Discrepancy, Product)
            .join(Product, Product.id == Discrepancy.product_id)
            .where(Discrepancy.refill_id == r.id)
            .order_by(Product.name, Discrepancy.id)
        )
    )
    events = tuple(
        _event(e)
        for e in session.scalars(
            select(StandRefillEvent)
            .where(StandRefillEvent.refill_id == r.id)
            .order_by(StandRefillEvent.occurred_at, StandRefillEvent.id)
        )
    )
    return RefillDetail(
        id=r.id,
        stand_id=r.stand_id,
        stand_name=stand.name,
        partner_name=partner.name,
        city=stand.city,
        status=r.status,
        total=r.total,
        currency=r.currency,
        note=r.note,
        requested_by=r.requested_by,
        requested_at=r.requested_at,
        approved_by=r.approved_by,
        approved_at=r.approved_at,
        scheduled_by=r.scheduled_by,
        scheduled_at=r.scheduled_at,
        scheduled_for=r.scheduled_for,
        dealer=r.dealer,
        delivered_by=r.delivered_by,
        delivered_at=r.delivered_at,
        confirmed_by=r.confirmed_by,
        confirmed_at=r.confirmed_at,
        closed_by=r.closed_by,
        closed_at=r.closed_at,
        close_reason=r.close_reason,
        lines=lines,
        discrepancies=discrepancies,
        events=events,
        stand_today=local_date(to_time(now), stand.timezone),
    )


@transactional
def refill_form(session: Session, stand_id: str) -> RefillForm:
    """Every SKU the stand carries with on hand, par and the suggested quantity
    (:func:`app.services.refills.suggested_quantities`, the same as ``suggest_refill``)."""
    stand = get_or_404(session, StandLocation, stand_id, "stand")
    partner = session.get_one(StandPartner, stand.partner_id)
    suggestion = suggested_quantities(session, stand.id)
    lines = tuple(
        RefillFormLine(
            product_id=p.id,
            sku=p.sku,
            name=p.name,
            category=p.category,
            on_hand=i.on_hand,
            par_level=i.par_level,
            reorder_point=i.reorder_point,
            capacity=i.capacity,
            pack_size=p.pack_size,
            list_price=p.list_price,
            suggested=suggestion.get(p.id, 0),
        )
        for i, p in session.execute(
            select(StandInventory, Product)
            .join(Product, Product.id == StandInventory.product_id)
            .where(StandInventory.stand_id == stand.id, StandInventory.active, Product.active)
            .order_by(Product.category, Product.name)
        )
    )
    units = (
        select(
            StandRefillOrderItem.refill_id.label("refill_id"),
            func.sum(
                func.coalesce(StandRefillOrderItem.approved_qty, StandRefillOrderItem.requested_qty)
            ).label("units"),
        )
        .group_by(StandRefillOrderItem.refill_id)
        .subquery()
    )
    open_refills = tuple(
        OpenRefill(rid, status, at, int(n or 0))
        for rid, status, at, n in session.execute(
            select(
                StandRefillOrder.id,
                StandRefillOrder.status,
                StandRefillOrder.requested_at,
                units.c.units,
            )
            .outerjoin(units, units.c.refill_id == StandRefillOrder.id)
            .where(StandRefillOrder.stand_id == stand.id, StandRefillOrder.status.in_(OPEN_STATES))
            .order_by(StandRefillOrder.requested_at)
        )
    )
    return RefillForm(stand.id, stand.name, partner.name, stand.status, lines, open_refills)


@dataclass(frozen=True)
class StandChoice:
    id: str
    name: str
    city: str


@transactional
def refillable_stands(session: Session) -> list[StandChoice]:
    """Stands a refill can be requested for (not removed), by name."""
    stmt = (
        select(StandLocation.id, StandLocation.name, StandLocation.city)
        .where(StandLocation.status.in_(REFILLABLE))
        .order_by(StandLocation.name, StandLocation.id)
    )
    return [StandChoice(sid, name, city) for sid, name, city in session.execute(stmt)]


@transactional
def known_dealers(session: Session, *, limit: int = 50) -> list[str]:
    """Dealers named on earlier schedules, most used first (for a completer)."""
    n = func.count().label("n")
    return [
        str(d)
        for d, _ in session.execute(
            select(StandRefillOrder.dealer, n)
            .where(StandRefillOrder.dealer.is_not(None))
            .group_by(StandRefillOrder.dealer)
            .order_by(n.desc(), StandRefillOrder.dealer)
            .limit(limit)
        )
    ]
