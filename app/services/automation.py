"""What the Automation service asks of the program (``POST /automation/on-low-stock``).

Automation watches stock levels and calls :func:`on_low_stock` when a SKU at a stand runs
low. It may call again and again for the same stand and SKU (every reading below the
threshold, retries, several workers at once), so the answer must converge on one refill:

* the stand row is locked first (``SELECT ... FOR NO KEY UPDATE`` on PostgreSQL, see
  :func:`~app.services.base.get_or_404`; SQLite's ``BEGIN IMMEDIATE`` already lets one
  writer in at a time), so concurrent calls for one stand take turns and the second sees
  the refill the first made;
* a stand with a refill still ``requested`` gets the SKU added to that refill
  (``added``), or nothing when the SKU is already on it (``existing``);
* a stand whose refill is already approved, scheduled or delivered keeps it unchanged
  (``existing``): that refill is being worked on, and the next request follows it;
* otherwise a new refill is requested for the SKU (``created``).

The quantity is the coach's recommendation for the SKU (:func:`app.coach.agent.stand_outlook`,
one stand's forecast: a few milliseconds); when the coach recommends nothing, par minus
on hand rounded up to whole packs within the SKU's capacity (the manual suggestion); and
when that is nothing too, one pack. The stock level Automation reports is an observation
only: it is quoted in the reason, and stock changes only through counts and movements.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.coach.agent import stand_outlook
from app.errors import ValidationError
from app.models import (
    Product,
    RefillStatus,
    StandInventory,
    StandLocation,
    StandRefillOrder,
    StandStatus,
)
from app.services.base import STAFF, Actor, get_or_404, to_int, to_time, transactional
from app.services.onboarding import resolve_product
from app.services.refills import (
    MAX_QTY,
    OPEN_STATES,
    RefillResult,
    add_refill_line,
    get_refill,
    request_refill,
    suggested_quantities,
)

Outcome = Literal["created", "added", "existing"]


@dataclass(frozen=True)
class LowStockResult:
    refill: RefillResult
    #: ``created``: a new refill; ``added``: the SKU was added to the requested refill;
    #: ``existing``: an open refill answers it already (unchanged).
    outcome: Outcome
    #: Units of the SKU on the refill (asked for now, or already there; 0 when the SKU is
    #: not on the open refill that answers).
    quantity: int
    #: Why, in a sentence a person reads in the Automation log.
    reason: str


def _units(n: int) -> str:
    return f"{n} unit{'s' if n != 1 else ''}"


def _quantity(
    session: Session, stand: StandLocation, product: Product, line: StandInventory, at: datetime
) -> tuple[int, str]:
    """How many units to ask for, and why."""
    outlook = stand_outlook(session, stand.id, now=at)
    coach = outlook.quantities.get(product.id, 0)
    if coach > 0:
        sku = next((s for s in outlook.skus if s.product_id == product.id), None)
        why = f" ({sku.recommendation.message.rstrip('.')})" if sku is not None else ""
        return coach, f"the coach recommends {_units(coach)}{why}"
    manual = suggested_quantities(session, stand.id).get(product.id, 0)
    if manual > 0:
        return manual, (
            f"the coach recommends nothing, so par minus on hand: {line.par_level} − "
            f"{max(line.on_hand, 0)}, in packs of {product.pack_size} within the capacity of "
            f"{line.capacity}, is {_units(manual)}"
        )
    pack = max(product.pack_size, 1)
    return pack, (
        f"neither the coach nor par minus on hand ({line.par_level} − {line.on_hand}) asks "
        f"for more, so the minimum of one pack: {_units(pack)}"
    )


def _observed(on_hand: int | None, line: StandInventory) -> str:
    if on_hand is None:
        return f"{_units(line.on_hand)} on hand by our records"
    return f"Automation reported {on_hand} on hand; our records say {line.on_hand}"


@transactional
def on_low_stock(
    session: Session,
    actor: Actor,
    stand_id: str,
    product: str,
    *,
    on_hand: int | None = None,
    now: datetime | None = None,
) -> LowStockResult:
    """Answer "this SKU is low at this stand" with one refill (see the module docstring).

    ``product`` is an id, SKU or barcode of a product the stand carries; ``on_hand`` is
    what Automation observed (reported in the reason, never booked as stock)."""
    actor.require(STAFF, "request refills")
    at = to_time(now)
    observed = (
        None
        if on_hand is None
        else to_int(on_hand, "on_hand", "On hand", minimum=-MAX_QTY, maximum=MAX_QTY)
    )
    # The lock comes before any read of the stand's refills (see the module docstring).
    stand = get_or_404(session, StandLocation, stand_id, "stand", for_update=True)
    if stand.status == StandStatus.REMOVED:
        raise ValidationError(f"{stand.name} has been removed from the program.", field="stand_id")
    item = resolve_product(session, product, field="product")
    line = session.scalars(
        select(StandInventory).where(
            StandInventory.stand_id == stand.id, StandInventory.product_id == item.id
        )
    ).first()
    if line is None:
        raise ValidationError(f"{item.name} is not carried at {stand.name}.", field="product")
    seen = _observed(observed, line)

    open_refills = list(
        session.scalars(
            select(StandRefillOrder)
            .where(StandRefillOrder.stand_id == stand.id, StandRefillOrder.status.in_(OPEN_STATES))
            .order_by(StandRefillOrder.requested_at.desc(), StandRefillOrder.id.desc())
        )
    )
    requested = next((r for r in open_refills if r.status == RefillStatus.REQUESTED), None)
    if requested is not None:
        on_it = next((i for i in requested.items if i.product_id == item.id), None)
        if on_it is not None:
            return LowStockResult(
                get_refill(session, requested.id),
                "existing",
                on_it.requested_qty,
                f"{item.name} is low at {stand.name} ({seen}); refill {requested.id}, still "
                f"requested, already asks for {_units(on_it.requested_qty)}.",
            )
        qty, why = _quantity(session, stand, item, line, at)
        result = add_refill_line(session, actor, requested.id, item.id, qty, now=at)
        return LowStockResult(
            result,
            "added",
            qty,
            f"{item.name} is low at {stand.name} ({seen}); added {_units(qty)} to refill "
            f"{requested.id}, still requested: {why}.",
        )
    if open_refills:
        current = open_refills[0]
        on_it = next((i for i in current.items if i.product_id == item.id), None)
        units = 0
        if on_it is not None:
            units = on_it.approved_qty if on_it.approved_qty is not None else on_it.requested_qty
        carries = (
            f"it brings {_units(units)} of it"
            if on_it is not None
            else "it does not carry this product; the next refill can"
        )
        return LowStockResult(
            get_refill(session, current.id),
            "existing",
            units,
            f"{item.name} is low at {stand.name} ({seen}); refill {current.id} is already "
            f"{current.status.value}, so no other is requested: {carries}.",
        )
    qty, why = _quantity(session, stand, item, line, at)
    result = request_refill(
        session,
        actor,
        stand.id,
        {item.id: qty},
        note=f"Requested by Automation: {item.name} is low ({seen}).",
        now=at,
    )
    return LowStockResult(
        result,
        "created",
        qty,
        f"{item.name} is low at {stand.name} ({seen}); requested a refill of {_units(qty)}: {why}.",
    )
