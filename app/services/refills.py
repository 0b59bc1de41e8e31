"""Refills through their lifecycle.

    requested -> approved -> scheduled -> delivered -> confirmed
    requested | approved            -> rejected   (manager, with a reason)
    requested | approved | scheduled -> cancelled (requester or manager, with a reason)

Each transition checks the state and the role, stamps who and when, appends an immutable
:class:`StandRefillEvent` and writes one change-log op. Approval and delivery may be partial
(fewer units than asked). Delivery posts positive stock movements. A delivery may also come
in parts: a part delivery ("more to come") posts its units and leaves the refill scheduled,
with a deliver event from scheduled to scheduled; the delivery that brings the last units
(or is recorded as the last) moves it to delivered. A refill with units already delivered
cannot be cancelled (its stock cannot be taken back that way). Confirmation records what
the partner received against everything delivered; where that differs, a discrepancy is
opened and stock keeps the delivered figure until someone resolves it.

While a refill is still requested, more products can be added to it
(:func:`add_refill_line`, a ``request`` event from requested to requested). Each transition
reads the refill under a row lock, so on PostgreSQL two conflicting transitions of one
refill take turns and the second is refused from the state the first left.

Refill pricing: each line carries the shelf price the goods will sell at, from the catalog's
list price unless overridden, and an override must stay inside the product's guardrails
(``min_price``..``max_price``, the Pricing OS limits).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import InvalidTransition, PermissionDenied, ValidationError
from app.ids import new_id
from app.models import (
    DiscrepancyStatus,
    MovementKind,
    Product,
    RefillAction,
    RefillDiscrepancy,
    RefillStatus,
    Role,
    StandAIInsight,
    StandInventory,
    StandLocation,
    StandRefillEvent,
    StandRefillOrder,
    StandRefillOrderItem,
    StandStatus,
)
from app.rules import local_date, round_money
from app.services.base import (
    MANAGERS,
    STAFF,
    Actor,
    client_id,
    get_or_404,
    optional_text,
    record_op,
    require_text,
    to_int,
    to_json,
    to_money,
    to_time,
    transactional,
)
from app.services.inventory import open_stand, post_movement
from app.services.onboarding import resolve_product

MAX_QTY = 100_000


@dataclass(frozen=True)
class Transition:
    action: RefillAction
    from_states: tuple[RefillStatus, ...]
    to_state: RefillStatus
    roles: tuple[Role, ...]


#: The lifecycle, as data: which action goes from where to where, and who may take it.
TRANSITIONS: dict[RefillAction, Transition] = {
    t.action: t
    for t in (
        Transition(
            RefillAction.APPROVE,
            (RefillStatus.REQUESTED,),
            RefillStatus.APPROVED,
            MANAGERS,
        ),
        Transition(
            RefillAction.SCHEDULE,
            (RefillStatus.APPROVED,),
            RefillStatus.SCHEDULED,
            MANAGERS,
        ),
        Transition(
            RefillAction.DELIVER,
            (RefillStatus.SCHEDULED,),
            RefillStatus.DELIVERED,
            STAFF,
        ),
        Transition(
            RefillAction.CONFIRM,
            (RefillStatus.DELIVERED,),
            RefillStatus.CONFIRMED,
            (Role.PARTNER, *STAFF),
        ),
        Transition(
            RefillAction.REJECT,
            (RefillStatus.REQUESTED, RefillStatus.APPROVED),
            RefillStatus.REJECTED,
            MANAGERS,
        ),
        Transition(
            RefillAction.CANCEL,
            (RefillStatus.REQUESTED, RefillStatus.APPROVED, RefillStatus.SCHEDULED),
            RefillStatus.CANCELLED,
            STAFF,
        ),
    )
}
#: The who-and-when columns each transition stamps when the refill reaches its target.
STAMPS: dict[RefillAction, tuple[str, str]] = {
    RefillAction.APPROVE: ("approved_by", "approved_at"),
    RefillAction.SCHEDULE: ("scheduled_by", "scheduled_at"),
    RefillAction.DELIVER: ("delivered_by", "delivered_at"),
    RefillAction.CONFIRM: ("confirmed_by", "confirmed_at"),
    RefillAction.REJECT: ("closed_by", "closed_at"),
    RefillAction.CANCEL: ("closed_by", "closed_at"),
}
OPEN_STATES = (
    RefillStatus.REQUESTED,
    RefillStatus.APPROVED,
    RefillStatus.SCHEDULED,
    RefillStatus.DELIVERED,
)


@dataclass(frozen=True)
class RefillLineResult:
    product_id: str
    requested: int
    approved: int | None
    delivered: int | None
    received: int | None
    unit_price: Decimal
    sku: str = ""
    name: str = ""


@dataclass(frozen=True)
class RefillResult:
    refill_id: str
    stand_id: str
    status: RefillStatus
    total: Decimal
    lines: tuple[RefillLineResult, ...]
    discrepancies: tuple[str, ...] = ()
    duplicate: bool = False


@dataclass(frozen=True)
class DiscrepancyResult:
    discrepancy_id: str
    status: DiscrepancyStatus
    movement_id: str | None


def allowed_actions(status: RefillStatus, role: Role) -> list[RefillAction]:
    """The transitions a role may take from ``status`` (for buttons in the GUI)."""
    return [a for a, t in TRANSITIONS.items() if status in t.from_states and role in t.roles]


def _result(
    session: Session,
    refill: StandRefillOrder,
    discrepancies: tuple[str, ...] = (),
    duplicate: bool = False,
) -> RefillResult:
    products = {i.product_id: session.get_one(Product, i.product_id) for i in refill.items}
    return RefillResult(
        refill.id,
        refill.stand_id,
        refill.status,
        refill.total,
        tuple(
            RefillLineResult(
                i.product_id,
                i.requested_qty,
                i.approved_qty,
                i.delivered_qty,
                i.received_qty,
                i.unit_price,
                products[i.product_id].sku,
                products[i.product_id].name,
            )
            for i in refill.items
        ),
        discrepancies,
        duplicate,
    )


@transactional
def get_refill(session: Session, refill_id: str) -> RefillResult:
    """A refill as the transitions report it (its status, total and lines)."""
    return _result(session, get_or_404(session, StandRefillOrder, refill_id, "refill"))


def _total(refill: StandRefillOrder) -> Decimal:
    return sum(
        (
            round_money(
                i.unit_price * (i.approved_qty if i.approved_qty is not None else i.requested_qty)
            )
            for i in refill.items
        ),
        Decimal(0),
    )


def suggested_quantities(session: Session, stand_id: str) -> dict[str, int]:
    """Par minus on hand for every SKU below par, rounded up to whole packs but never above
    the SKU's capacity (the AI Stand Coach will offer its own recommendation)."""
    suggestion: dict[str, int] = {}
    rows = session.execute(
        select(StandInventory, Product.pack_size)
        .join(Product, Product.id == StandInventory.product_id)
        .where(StandInventory.stand_id == stand_id, StandInventory.active)
    ).all()
    for inv, pack in rows:
        gap = inv.par_level - max(inv.on_hand, 0)
        if gap <= 0:
            continue
        qty = math.ceil(gap / pack) * pack
        room = inv.capacity - max(inv.on_hand, 0)
        while qty > room and qty >= pack:
            qty -= pack
        if qty > 0:
            suggestion[inv.product_id] = qty
    return suggestion


@transactional
def suggest_refill(session: Session, stand_id: str) -> dict[str, int]:
    open_stand(session, stand_id)
    return suggested_quantities(session, stand_id)


def _parse_quantities(
    session: Session, refill: StandRefillOrder, quantities: Mapping[str, object], label: str
) -> dict[str, int]:
    """Quantities keyed by product id, SKU or barcode -> by product id, validated."""
    on_refill = {i.product_id for i in refill.items}
    parsed: dict[str, int] = {}
    for key, raw in quantities.items():
        field = f"qty:{key}"
        product = resolve_product(session, key, include_inactive=True, field=field)
        if product.id not in on_refill:
            raise ValidationError(f"{product.name} is not on this refill.", field=field)
        if product.id in parsed:
            raise ValidationError(f"{product.name} is listed twice.", field=field)
        parsed[product.id] = to_int(
            raw, field, f"{label} quantity of {product.name}", minimum=0, maximum=MAX_QTY
        )
    return parsed


def _event(
    session: Session,
    refill: StandRefillOrder,
    action: RefillAction,
    from_status: RefillStatus | None,
    actor: Actor,
    at: datetime,
    detail: Mapping[str, object],
    *,
    event_id: str | None = None,
    to_status: RefillStatus | None = None,
) -> str:
    """Append the refill's event (``to_status``: the refill's status unless given; an op
    writer passes the payload's event id and target)."""
    eid = event_id or new_id()
    session.add(
        StandRefillEvent(
            id=eid,
            refill_id=refill.id,
            action=action,
            from_status=from_status,
            to_status=refill.status if to_status is None else to_status,
            actor=actor.user,
            role=actor.role.value,
            occurred_at=at,
            detail=to_json(detail),
        )
    )
    return eid


def _load_for(
    session: Session, actor: Actor, refill_id: str, action: RefillAction
) -> tuple[StandRefillOrder, Transition]:
    # Locked until the transaction ends: two conflicting transitions of one refill (approve
    # and reject, two deliveries) take turns on PostgreSQL, and the second sees the status
    # the first left and is refused. SQLite's BEGIN IMMEDIATE serialises them already.
    refill = get_or_404(session, StandRefillOrder, refill_id, "refill", for_update=True)
    transition = TRANSITIONS[action]
    if actor.role not in transition.roles:
        raise PermissionDenied(f"A {actor.role.value} may not {action.value} a refill.")
    if refill.status not in transition.from_states:
        allowed = " or ".join(st.value for st in transition.from_states)
        raise InvalidTransition(
            f"This refill is {refill.status.value}; it can only be "
            f"{transition.to_state.value} when it is {allowed}.",
            field="status",
        )
    return refill, transition


@transactional
def request_refill(
    session: Session,
    actor: Actor,
    stand_id: str,
    quantities: Mapping[str, object] | None = None,
    *,
    prices: Mapping[str, object] | None = None,
    note: str | None = None,
    refill_id: str | None = None,
    insight_id: str | None = None,
    now: datetime | None = None,
) -> RefillResult:
    """Ask for a refill. ``quantities`` maps product (id, SKU or barcode) to units; without it,
    par minus on hand is used. Asking again with the same ``refill_id`` returns the first.

    ``insight_id`` names the coach's insight the refill answers: it is closed as done in the
    same transaction (left as it is when someone already closed it)."""
    actor.require(STAFF, "request refills")
    rid = client_id(refill_id, "refill_id")
    existing = session.get(StandRefillOrder, rid)
    if existing is not None:
        if existing.stand_id != stand_id:
            raise ValidationError(f"Refill id {rid} belongs to another stand.", field="refill_id")
        return _result(session, existing, duplicate=True)
    stand = open_stand(session, stand_id)
    if stand.status not in (StandStatus.ACTIVE, StandStatus.PLANNED, StandStatus.PAUSED):
        raise ValidationError(f"{stand.name} cannot receive refills.", field="stand_id")
    at = to_time(now)
    if quantities is None:
        quantities = dict(suggested_quantities(session, stand.id))
        if not quantities:
            raise ValidationError(
                f"Every product at {stand.name} is at or above par; "
                "enter quantities to refill anyway.",
                field="quantities",
            )
    carried = set(
        session.scalars(
            select(StandInventory.product_id).where(StandInventory.stand_id == stand.id)
        )
    )
    lines: list[tuple[Product, int, Decimal]] = []
    seen: set[str] = set()
    used_prices: set[str] = set()
    for ref, raw in quantities.items():
        product = resolve_product(session, ref, field=f"qty:{ref}")
        if product.id not in carried:
            raise ValidationError(
                f"{product.name} is not carried at {stand.name}.", field=f"qty:{ref}"
            )
        if product.id in seen:
            raise ValidationError(f"{product.name} is listed twice.", field=f"qty:{ref}")
        seen.add(product.id)
        qty = to_int(raw, f"qty:{ref}", f"Quantity of {product.name}", minimum=0, maximum=MAX_QTY)
        price_key = next((k for k in (ref, product.id) if prices and k in prices), None)
        if price_key is not None:
            used_prices.add(price_key)
        if qty == 0:
            continue
        price = product.list_price
        if prices and price_key is not None:
            raw_price = prices[price_key]
            price = to_money(raw_price, f"price:{ref}", f"Price of {product.name}")
            if product.min_price is not None and price < product.min_price:
                raise ValidationError(
                    f"{product.name} may not be priced below {product.min_price:.2f}.",
                    field=f"price:{ref}",
                )
            if product.max_price is not None and price > product.max_price:
                raise ValidationError(
                    f"{product.name} may not be priced above {product.max_price:.2f}.",
                    field=f"price:{ref}",
                )
        lines.append((product, qty, price))
    stray = [key for key in prices or {} if key not in used_prices]
    if stray:
        raise ValidationError(
            f"A price was given for {stray[0]!r}, which is not on this refill.",
            field=f"price:{stray[0]}",
        )
    if not lines:
        raise ValidationError(
            "A refill needs at least one product with a quantity above 0.", field="quantities"
        )
    refill = StandRefillOrder(
        id=rid,
        stand_id=stand.id,
        status=RefillStatus.REQUESTED,
        total=Decimal(0),
        requested_by=actor.user,
        requested_at=at,
        note=optional_text(note, "note", "Note", max_len=1000) or "",
        created_at=at,
        updated_at=at,
    )
    session.add(refill)
    for n, (product, qty, price) in enumerate(lines, start=1):
        refill.items.append(
            StandRefillOrderItem(
                id=new_id(), line_no=n, product_id=product.id, requested_qty=qty, unit_price=price
            )
        )
    refill.total = _total(refill)
    session.flush()
    event_id = _event(session, refill, RefillAction.REQUEST, None, actor, at, {})
    record_op(
        session,
        "refill.request",
        rid,
        {
            "refill_id": rid,
            "stand_id": stand.id,
            "event_id": event_id,
            "at": at,
            "note": refill.note,
            "items": [
                {
                    "id": i.id,
                    "line_no": i.line_no,
                    "product_id": i.product_id,
                    "requested_qty": i.requested_qty,
                    "unit_price": i.unit_price,
                }
                for i in refill.items
            ],
        },
        actor,
    )
    if insight_id is not None:
        _close_insight(session, actor, insight_id, stand.id, at)
    return _result(session, refill)


@transactional
def add_refill_line(
    session: Session,
    actor: Actor,
    refill_id: str,
    product: str,
    quantity: object,
    *,
    now: datetime | None = None,
) -> RefillResult:
    """Add a product (id, SKU or barcode) the stand carries to a refill that is still
    requested, at the product's list price (as :func:`request_refill` prices its lines).

    The refill is locked first, so the line cannot slip in beside a concurrent approval.
    The fact is a ``request`` event from requested to requested, with the line added."""
    actor.require(STAFF, "add to refills")
    refill = get_or_404(session, StandRefillOrder, refill_id, "refill", for_update=True)
    item_product = addable_product(session, refill, product)
    qty = to_int(
        quantity, "quantity", f"Quantity of {item_product.name}", minimum=1, maximum=MAX_QTY
    )
    at = to_time(now)
    item = StandRefillOrderItem(
        id=new_id(),
        line_no=max((i.line_no for i in refill.items), default=0) + 1,
        product_id=item_product.id,
        requested_qty=qty,
        unit_price=item_product.list_price,
    )
    refill.items.append(item)
    refill.total = _total(refill)
    refill.updated_at = at
    session.flush()
    line = {
        "id": item.id,
        "line_no": item.line_no,
        "product_id": item.product_id,
        "requested_qty": qty,
        "unit_price": item.unit_price,
    }
    event_id = _event(
        session,
        refill,
        RefillAction.REQUEST,
        RefillStatus.REQUESTED,
        actor,
        at,
        {"added": {item.product_id: qty}},
    )
    record_op(
        session,
        "refill.add_line",
        refill.id,
        {"refill_id": refill.id, "event_id": event_id, "at": at, "item": line},
        actor,
    )
    return _result(session, refill)


def addable_product(session: Session, refill: StandRefillOrder, product: str) -> Product:
    """The product (id, SKU or barcode) to add to ``refill``: refused unless the refill is
    still requested, the stand carries the product and the refill does not have it yet."""
    if refill.status != RefillStatus.REQUESTED:
        raise InvalidTransition(
            f"This refill is {refill.status.value}; products can only be added while it is "
            "requested.",
            field="status",
        )
    stand = session.get_one(StandLocation, refill.stand_id)
    item_product = resolve_product(session, product, field="product")
    carried = session.scalar(
        select(StandInventory.id).where(
            StandInventory.stand_id == stand.id, StandInventory.product_id == item_product.id
        )
    )
    if carried is None:
        raise ValidationError(
            f"{item_product.name} is not carried at {stand.name}.", field="product"
        )
    if any(i.product_id == item_product.id for i in refill.items):
        raise ValidationError(f"{item_product.name} is already on this refill.", field="product")
    return item_product


def _close_insight(
    session: Session, actor: Actor, insight_id: str, stand_id: str, at: datetime
) -> None:
    # Imported here: the coach brings numpy, which the refill service otherwise never needs.
    from app.coach.agent import OPEN_STATUSES, mark_insight_done

    insight = session.get(StandAIInsight, insight_id)
    if insight is None or insight.stand_id != stand_id:
        raise ValidationError("That coach insight is not about this stand.", field="insight_id")
    if insight.status in OPEN_STATUSES:
        mark_insight_done(session, actor, insight_id, "Refill requested", now=at)


@transactional
def approve_refill(
    session: Session,
    actor: Actor,
    refill_id: str,
    quantities: Mapping[str, object] | None = None,
    *,
    now: datetime | None = None,
) -> RefillResult:
    """Approve as requested, or with other quantities per product: fewer (partial
    approval), none for a product, or more than asked where the manager knows better."""
    refill, _ = _load_for(session, actor, refill_id, RefillAction.APPROVE)
    approved = approved_quantities(session, refill, quantities or {})
    for item in refill.items:
        item.approved_qty = approved[item.product_id]
    return _step(
        session,
        actor,
        refill,
        RefillAction.APPROVE,
        now,
        {"approved": {i.product_id: i.approved_qty for i in refill.items}},
    )


def approved_quantities(
    session: Session, refill: StandRefillOrder, quantities: Mapping[str, object]
) -> dict[str, int]:
    """The approved units of every line of ``refill`` by product id: as given in
    ``quantities`` (keyed by product id, SKU or barcode), else as requested."""
    given = _parse_quantities(session, refill, quantities, "Approved")
    approved = {i.product_id: given.get(i.product_id, i.requested_qty) for i in refill.items}
    if not any(approved.values()):
        raise ValidationError(
            "Nothing would be approved; reject the refill instead.", field="quantities"
        )
    return approved


@transactional
def schedule_refill(
    session: Session,
    actor: Actor,
    refill_id: str,
    scheduled_for: date,
    dealer: str,
    *,
    now: datetime | None = None,
) -> RefillResult:
    """Plan the delivery: a date and who delivers."""
    refill, _ = _load_for(session, actor, refill_id, RefillAction.SCHEDULE)
    at = to_time(now)
    if not isinstance(scheduled_for, date):
        raise ValidationError("Choose a delivery date.", field="scheduled_for")
    stand = session.get_one(StandLocation, refill.stand_id)
    if scheduled_for < local_date(at, stand.timezone):
        raise ValidationError("The delivery date is in the past.", field="scheduled_for")
    refill.scheduled_for = scheduled_for
    refill.dealer = require_text(dealer, "dealer", "Dealer")
    return _step(
        session,
        actor,
        refill,
        RefillAction.SCHEDULE,
        now,
        {"scheduled_for": scheduled_for, "dealer": refill.dealer},
    )


@transactional
def deliver_refill(
    session: Session,
    actor: Actor,
    refill_id: str,
    quantities: Mapping[str, object] | None = None,
    *,
    more_to_come: bool = False,
    now: datetime | None = None,
) -> RefillResult:
    """Record a delivery and put its units on the stand's stock.

    ``quantities`` are the units of *this* delivery per product; a product not listed
    gets all its remaining units (approved minus already delivered). A refill may arrive
    in parts: with ``more_to_come`` the refill stays scheduled and a later call delivers
    the rest (it becomes delivered once every approved unit has arrived, or on a call
    without ``more_to_come``). ``delivered_qty`` adds up over the deliveries and may never
    exceed what was approved. The last delivery may bring nothing when part of the refill
    already arrived: the rest is not coming and the refill is closed at what was
    delivered.
    """
    refill, _ = _load_for(session, actor, refill_id, RefillAction.DELIVER)
    this = _parse_quantities(session, refill, quantities or {}, "Delivered")
    at = to_time(now)
    delivered, final = plan_delivery(session, refill, this, more_to_come=more_to_come)
    movements = {}
    for item in refill.items:
        qty = delivered[item.product_id]
        item.delivered_qty = (item.delivered_qty or 0) + qty
        if qty:
            mid = new_id()
            post_movement(
                session,
                stand_id=refill.stand_id,
                product_id=item.product_id,
                quantity=qty,
                kind=MovementKind.REFILL_DELIVERY,
                occurred_at=at,
                actor=actor,
                ref_type="stand_refill_order",
                ref_id=refill.id,
                movement_id=mid,
            )
            movements[item.product_id] = mid
    detail: dict[str, object] = {
        "delivered": delivered,
        "delivered_total": {i.product_id: i.delivered_qty for i in refill.items},
        "movements": movements,
    }
    if not final:
        detail["partial"] = True
    return _step(
        session,
        actor,
        refill,
        RefillAction.DELIVER,
        at,
        detail,
        to_state=None if final else refill.status,
    )


def plan_delivery(
    session: Session, refill: StandRefillOrder, this: Mapping[str, int], *, more_to_come: bool
) -> tuple[dict[str, int], bool]:
    """The units of this delivery of ``refill`` per product id (``this``, else all that is
    left of the approval) and whether it is the last one; refused over the approval, or when
    it brings nothing and is not the last part of a refill that already had some."""
    before = {i.product_id: i.delivered_qty or 0 for i in refill.items}
    delivered: dict[str, int] = {}
    for item in refill.items:
        approved = item.approved_qty or 0
        prior = before[item.product_id]
        qty = this.get(item.product_id, max(approved - prior, 0))
        if prior + qty > approved:
            product = session.get_one(Product, item.product_id)
            raise ValidationError(
                f"{qty} {product.name} delivered but only {approved} approved."
                if not prior
                else f"{prior + qty} {product.name} delivered in total but only {approved} "
                f"approved ({prior} arrived before).",
                field=f"qty:{item.product_id}",
            )
        delivered[item.product_id] = qty
    complete = all(
        before[i.product_id] + delivered[i.product_id] >= (i.approved_qty or 0)
        for i in refill.items
    )
    final = complete or not more_to_come
    if not any(delivered.values()) and (not final or not any(before.values())):
        raise ValidationError(
            "Nothing is in this delivery; enter the units that arrived."
            if any(before.values())
            else "Nothing was delivered; cancel the refill instead.",
            field="quantities",
        )
    return delivered, final


@transactional
def confirm_refill(
    session: Session,
    actor: Actor,
    refill_id: str,
    received: Mapping[str, object] | None = None,
    *,
    now: datetime | None = None,
) -> RefillResult:
    """The partner confirms what they received. A difference from the delivered quantity
    opens a discrepancy (stock is not changed silently)."""
    refill, _ = _load_for(session, actor, refill_id, RefillAction.CONFIRM)
    got = received_quantities(session, refill, received or {})
    at = to_time(now)
    discrepancies: dict[str, str] = {}
    for item in refill.items:
        item.received_qty = got[item.product_id]
        if item.received_qty != (item.delivered_qty or 0):
            discrepancies[item.product_id] = add_discrepancy(session, refill, item, at)
    return _step(
        session,
        actor,
        refill,
        RefillAction.CONFIRM,
        at,
        {
            "received": {i.product_id: i.received_qty for i in refill.items},
            "discrepancies": discrepancies,
        },
        tuple(discrepancies.values()),
    )


def received_quantities(
    session: Session, refill: StandRefillOrder, received: Mapping[str, object]
) -> dict[str, int]:
    """The received units of every line of ``refill`` by product id: as given in
    ``received`` (keyed by product id, SKU or barcode), else as delivered."""
    got = _parse_quantities(session, refill, received, "Received")
    return {i.product_id: got.get(i.product_id, i.delivered_qty or 0) for i in refill.items}


def add_discrepancy(
    session: Session,
    refill: StandRefillOrder,
    item: StandRefillOrderItem,
    at: datetime,
    discrepancy_id: str | None = None,
) -> str:
    """Open a discrepancy for ``item``: received (as set on the line) against delivered."""
    did = discrepancy_id or new_id()
    session.add(
        RefillDiscrepancy(
            id=did,
            refill_id=refill.id,
            stand_id=refill.stand_id,
            product_id=item.product_id,
            delivered_qty=item.delivered_qty or 0,
            received_qty=item.received_qty or 0,
            created_at=at,
        )
    )
    return did


@transactional
def reject_refill(
    session: Session, actor: Actor, refill_id: str, reason: str, *, now: datetime | None = None
) -> RefillResult:
    refill, _ = _load_for(session, actor, refill_id, RefillAction.REJECT)
    refill.close_reason = require_text(reason, "reason", "Reason", max_len=500)
    return _step(session, actor, refill, RefillAction.REJECT, now, {"reason": refill.close_reason})


@transactional
def cancel_refill(
    session: Session, actor: Actor, refill_id: str, reason: str, *, now: datetime | None = None
) -> RefillResult:
    """Cancel an open refill. A rep may cancel only the refills they requested."""
    refill, _ = _load_for(session, actor, refill_id, RefillAction.CANCEL)
    check_cancel(refill, actor)
    refill.close_reason = require_text(reason, "reason", "Reason", max_len=500)
    return _step(session, actor, refill, RefillAction.CANCEL, now, {"reason": refill.close_reason})


def check_cancel(refill: StandRefillOrder, actor: Actor) -> None:
    """What cancelling needs beyond the lifecycle: a rep cancels only their own requests,
    and a refill with units delivered cannot be cancelled."""
    if actor.role == Role.REP and refill.requested_by != actor.user:
        raise PermissionDenied("A rep may cancel only the refills they requested.")
    if any(i.delivered_qty for i in refill.items):
        # Delivered units are on the stand's stock; cancelling cannot take them back.
        raise InvalidTransition(
            "Part of this refill was already delivered; record the last delivery instead "
            "of cancelling (with 0 units if nothing more is coming).",
            field="status",
        )


def _step(
    session: Session,
    actor: Actor,
    refill: StandRefillOrder,
    action: RefillAction,
    now: datetime | None,
    detail: Mapping[str, object],
    discrepancies: tuple[str, ...] = (),
    *,
    to_state: RefillStatus | None = None,
) -> RefillResult:
    """Move ``refill`` by ``action`` (to ``to_state`` where given instead of the
    transition's target: a part delivery stays scheduled), append its event and op.

    The who-and-when stamps of the action are set only when the refill reaches the
    transition's target, so ``delivered_at`` is when the last part arrived.
    """
    at = to_time(now)
    before = refill.status
    target = TRANSITIONS[action].to_state
    refill.status = target if to_state is None else to_state
    stamp = STAMPS[action]
    if refill.status == target:
        setattr(refill, stamp[0], actor.user)
        setattr(refill, stamp[1], at)
    refill.total = _total(refill)
    refill.updated_at = at
    session.flush()
    event_id = _event(session, refill, action, before, actor, at, detail)
    record_op(
        session,
        f"refill.{action.value}",
        refill.id,
        {
            "refill_id": refill.id,
            "event_id": event_id,
            "from": before,
            "to": refill.status,
            "at": at,
            **detail,
        },
        actor,
    )
    return _result(session, refill, discrepancies)


@transactional
def resolve_discrepancy(
    session: Session,
    actor: Actor,
    discrepancy_id: str,
    *,
    accept_received: bool,
    note: str | None = None,
    now: datetime | None = None,
) -> DiscrepancyResult:
    """Close a discrepancy. Accepting the partner's received figure posts a correction
    movement (received - delivered); keeping the delivered figure changes no stock."""
    actor.require(MANAGERS, "resolve delivery discrepancies")
    disc = open_discrepancy(session, discrepancy_id)
    at = to_time(now)
    note = optional_text(note, "note", "Note", max_len=500)
    movement_id = None
    diff = disc.received_qty - disc.delivered_qty
    if accept_received and diff:
        movement_id = new_id()
        post_movement(
            session,
            stand_id=disc.stand_id,
            product_id=disc.product_id,
            quantity=diff,
            kind=MovementKind.REFILL_CORRECTION,
            occurred_at=at,
            actor=actor,
            ref_type="refill_discrepancy",
            ref_id=disc.id,
            movement_id=movement_id,
            note=note,
        )
    disc.status = (
        DiscrepancyStatus.ACCEPTED_RECEIVED if accept_received else DiscrepancyStatus.KEPT_DELIVERED
    )
    disc.resolved_by, disc.resolved_at = actor.user, at
    disc.resolution_note = note
    session.flush()
    record_op(
        session,
        "refill.resolve_discrepancy",
        disc.id,
        {
            "discrepancy_id": disc.id,
            "status": disc.status,
            "movement_id": movement_id,
            "at": at,
            "note": disc.resolution_note,
        },
        actor,
    )
    return DiscrepancyResult(disc.id, disc.status, movement_id)


def open_discrepancy(session: Session, discrepancy_id: str) -> RefillDiscrepancy:
    """The discrepancy, refused when it is already resolved."""
    disc = get_or_404(session, RefillDiscrepancy, discrepancy_id, "discrepancy")
    if disc.status != DiscrepancyStatus.OPEN:
        raise InvalidTransition("This discrepancy is already resolved.", field="status")
    return disc
