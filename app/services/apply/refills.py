"""Op writers of the refills family: a refill through its lifecycle, and the discrepancies
its confirmation opens (docs/sync-design.md §1.3).

``refill.request`` and ``refill.add_line`` are facts: the refill, its lines and its request
event are stored as recorded, with the payload's ids. The other refill ops are transitions
(``_step`` in :mod:`app.services.refills` writes them): the writer sets the payload's target
status, the stamps and line quantities it names, and the event with the payload's id, role
and detail; the facts a transition carries (a delivery's stock movements, a confirmation's
discrepancies, a resolution's correction movement) are inserted by their payload ids, and
stock moves only with a movement actually inserted.

``check`` (server only) runs the service's own guards against the server's refill: the
role, the from-state (the text the rep sees, e.g. "This refill is rejected; it can only be
approved when it is requested."), a rep cancelling another's refill, a delivery beyond the
approval. It amends what the device could not know: the lines another device added (an
approval covers them as requested), the delivered totals (a part another device delivered
first), the line number of an added line, the from-state the event records.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import Conflict, NotFound, PermissionDenied, ValidationError
from app.ids import new_id
from app.models import (
    DiscrepancyStatus,
    InventoryMovement,
    MovementKind,
    RefillAction,
    RefillDiscrepancy,
    RefillStatus,
    StandInventory,
    StandLocation,
    StandRefillEvent,
    StandRefillOrder,
    StandRefillOrderItem,
)
from app.services import refills
from app.services.apply import Op, OpClass, dec, spec, ts
from app.services.base import (
    MANAGERS,
    STAFF,
    Actor,
    client_id,
    get_or_404,
    optional_text,
    require_text,
    to_int,
    to_json,
)
from app.services.inventory import post_movement
from app.services.onboarding import resolve_product

#: The payload keys ``_step`` writes for every transition; the rest is the event's detail.
COMMON = frozenset({"refill_id", "event_id", "from", "to", "at"})

# --------------------------------------------------------------------------- shared helpers


def _actor(op: Op) -> Actor:
    actor = op.as_actor()
    if actor is None:
        raise PermissionDenied("A refill change needs the person who made it.", field="actor")
    return actor


def _stand_scope(session: Session, stand_id: str | None) -> tuple[str | None, str | None]:
    if stand_id is None:
        return None, None
    stand = session.get(StandLocation, stand_id)
    return stand_id, stand.partner_id if stand is not None else None


def _refill_scope(session: Session, op: Op) -> tuple[str | None, str | None]:
    stand_id = op.payload.get("stand_id")
    if stand_id is None:
        refill = session.get(StandRefillOrder, op.payload["refill_id"])
        stand_id = refill.stand_id if refill is not None else None
    return _stand_scope(session, stand_id)


def _discrepancy_scope(session: Session, op: Op) -> tuple[str | None, str | None]:
    disc = session.get(RefillDiscrepancy, op.payload["discrepancy_id"])
    if disc is None:
        return None, None
    refill = session.get(StandRefillOrder, disc.refill_id)
    return _stand_scope(session, refill.stand_id if refill is not None else disc.stand_id)


def _event_unused(session: Session, event_id: object) -> None:
    eid = client_id(str(event_id), "event_id")
    if session.get(StandRefillEvent, eid) is not None:
        raise Conflict(
            f"Refill event id {eid} is already used by another record.", field="event_id"
        )


def _movement_unused(session: Session, movement_id: str) -> None:
    mid = client_id(movement_id, "movement_id")
    if session.get(InventoryMovement, mid) is not None:
        raise Conflict(f"A stock movement with id {mid} already exists.", field="movement_id")


def _put_event(
    session: Session,
    op: Op,
    refill: StandRefillOrder,
    action: RefillAction,
    from_status: RefillStatus | None,
    to_status: RefillStatus,
    detail: Mapping[str, Any],
) -> None:
    """The op's event, as the service wrote it. An event this database already holds takes
    the payload's content (the server may have amended the op that wrote it here)."""
    p = op.payload
    actor = _actor(op)
    at = ts(p["at"])
    event = session.get(StandRefillEvent, p["event_id"])
    if event is None:
        refills._event(
            session,
            refill,
            action,
            from_status,
            actor,
            at,
            detail,
            event_id=p["event_id"],
            to_status=to_status,
        )
        return
    event.from_status = from_status
    event.to_status = to_status
    event.actor = actor.user
    event.role = actor.role.value
    event.occurred_at = at
    event.detail = to_json(detail)


def _new_item(line: Mapping[str, Any]) -> StandRefillOrderItem:
    return StandRefillOrderItem(
        id=line["id"],
        line_no=int(line["line_no"]),
        product_id=line["product_id"],
        requested_qty=int(line["requested_qty"]),
        unit_price=dec(line["unit_price"]),
    )


def _same_line(item: StandRefillOrderItem, refill_id: str, line: Mapping[str, Any]) -> bool:
    return (
        item.refill_id == refill_id
        and item.product_id == line["product_id"]
        and item.requested_qty == int(line["requested_qty"])
        and item.unit_price == dec(line["unit_price"])
    )


def _carried(session: Session, stand_id: str) -> set[str]:
    return set(
        session.scalars(
            select(StandInventory.product_id).where(StandInventory.stand_id == stand_id)
        )
    )


# --------------------------------------------------------------------------- refill.request


def _check_request(session: Session, op: Op) -> Mapping[str, Any] | None:
    p = op.payload
    _actor(op).require(STAFF, "request refills")
    rid = client_id(p["refill_id"], "refill_id")
    existing = session.get(StandRefillOrder, rid)
    if existing is not None:
        if existing.stand_id != p["stand_id"]:
            raise ValidationError(f"Refill id {rid} belongs to another stand.", field="refill_id")
        items = {i.id: i for i in existing.items}
        same = (
            existing.requested_by == op.actor
            and existing.requested_at == ts(p["at"])
            and existing.note == (p.get("note") or "")
            and all(
                line["id"] in items and _same_line(items[line["id"]], rid, line)
                for line in p["items"]
            )
        )
        if not same:
            raise Conflict(f"Refill id {rid} is already used by another record.", field="refill_id")
        return None
    stand = get_or_404(session, StandLocation, p["stand_id"], "stand")
    carried = _carried(session, stand.id)
    if not p["items"]:
        raise ValidationError(
            "A refill needs at least one product with a quantity above 0.", field="quantities"
        )
    seen: set[str] = set()
    for line in p["items"]:
        ref = str(line["product_id"])
        # A fact: a product discontinued since the request is still refilled.
        product = resolve_product(session, ref, include_inactive=True, field=f"qty:{ref}")
        if product.id not in carried:
            raise ValidationError(
                f"{product.name} is not carried at {stand.name}.", field=f"qty:{ref}"
            )
        if product.id in seen:
            raise ValidationError(f"{product.name} is listed twice.", field=f"qty:{ref}")
        seen.add(product.id)
        to_int(
            line["requested_qty"],
            f"qty:{ref}",
            f"Quantity of {product.name}",
            minimum=1,
            maximum=refills.MAX_QTY,
        )
        lid = client_id(line["id"], "item_id")
        if session.get(StandRefillOrderItem, lid) is not None:
            raise Conflict(f"Refill line id {lid} is already used by another record.")
    _event_unused(session, p["event_id"])
    return None


@spec(
    "refill.request",
    OpClass.FACT,
    check=_check_request,
    scope=_refill_scope,
    summary="A refill was requested for a stand (its lines at their refill prices).",
)
def write_refill_request(session: Session, op: Op) -> None:
    p = op.payload
    if session.get(StandRefillOrder, p["refill_id"]) is not None:
        return
    actor = _actor(op)
    at = ts(p["at"])
    refill = StandRefillOrder(
        id=p["refill_id"],
        stand_id=p["stand_id"],
        status=RefillStatus.REQUESTED,
        total=dec(0),
        requested_by=actor.user,
        requested_at=at,
        note=p.get("note") or "",
        created_at=at,
        updated_at=at,
    )
    session.add(refill)
    for line in p["items"]:
        refill.items.append(_new_item(line))
    refill.total = refills._total(refill)
    session.flush()
    refills._event(
        session,
        refill,
        RefillAction.REQUEST,
        None,
        actor,
        at,
        {},
        event_id=p["event_id"],
        to_status=RefillStatus.REQUESTED,
    )
    session.flush()


# --------------------------------------------------------------------------- refill.add_line


def _check_add_line(session: Session, op: Op) -> Mapping[str, Any] | None:
    p = op.payload
    line = p["item"]
    _actor(op).require(STAFF, "add to refills")
    refill = get_or_404(session, StandRefillOrder, p["refill_id"], "refill", for_update=True)
    lid = client_id(line["id"], "item_id")
    existing = session.get(StandRefillOrderItem, lid)
    if existing is not None:
        if not _same_line(existing, refill.id, line):
            raise Conflict(f"Refill line id {lid} is already used by another record.")
        return None
    product = refills.addable_product(session, refill, str(line["product_id"]))
    to_int(
        line["requested_qty"],
        "quantity",
        f"Quantity of {product.name}",
        minimum=1,
        maximum=refills.MAX_QTY,
    )
    _event_unused(session, p["event_id"])
    # Another device may have added a line first: this one goes after it.
    line_no = max((i.line_no for i in refill.items), default=0) + 1
    if line_no == line["line_no"]:
        return None
    return {**p, "item": {**line, "line_no": line_no}}


@spec(
    "refill.add_line",
    OpClass.FACT,
    check=_check_add_line,
    scope=_refill_scope,
    summary="A product was added to a refill that is still requested.",
)
def write_refill_add_line(session: Session, op: Op) -> None:
    p = op.payload
    line = p["item"]
    existing = session.get(StandRefillOrderItem, line["id"])
    if existing is not None:
        # Stored already; the server may have numbered it after another device's line.
        existing.line_no = int(line["line_no"])
        return
    refill = get_or_404(session, StandRefillOrder, p["refill_id"], "refill")
    refill.items.append(_new_item(line))
    refill.total = refills._total(refill)
    refill.updated_at = ts(p["at"])
    session.flush()
    _put_event(
        session,
        op,
        refill,
        RefillAction.REQUEST,
        RefillStatus.REQUESTED,
        RefillStatus.REQUESTED,
        {"added": {line["product_id"]: int(line["requested_qty"])}},
    )
    session.flush()


# --------------------------------------------------------------------------- transitions


def _begin_check(
    session: Session, op: Op, action: RefillAction
) -> tuple[StandRefillOrder, Actor, dict[str, Any]]:
    """The guards every transition shares (the role, the from-state, under the refill's row
    lock) and the payload to amend: the from-state and target as the server has them."""
    p = op.payload
    actor = _actor(op)
    refill, transition = refills._load_for(session, actor, p["refill_id"], action)
    _event_unused(session, p["event_id"])
    amended = dict(p)
    amended["from"] = refill.status.value
    if action != RefillAction.DELIVER:
        amended["to"] = transition.to_state.value
    return refill, actor, amended


def _amended(op: Op, amended: Mapping[str, Any]) -> Mapping[str, Any] | None:
    return None if dict(amended) == dict(op.payload) else amended


def _set_state(session: Session, op: Op, action: RefillAction) -> StandRefillOrder:
    """The payload's target status, and the action's stamps when it reaches the
    transition's target (a part delivery stays scheduled and stamps nothing)."""
    p = op.payload
    refill = get_or_404(session, StandRefillOrder, p["refill_id"], "refill")
    at = ts(p["at"])
    refill.status = RefillStatus(p["to"])
    if refill.status == refills.TRANSITIONS[action].to_state:
        who, when = refills.STAMPS[action]
        setattr(refill, who, op.actor)
        setattr(refill, when, at)
    refill.updated_at = at
    return refill


def _finish(session: Session, op: Op, refill: StandRefillOrder, action: RefillAction) -> None:
    p = op.payload
    refill.total = refills._total(refill)
    session.flush()
    detail = {k: v for k, v in p.items() if k not in COMMON}
    _put_event(
        session,
        op,
        refill,
        action,
        RefillStatus(p["from"]) if p.get("from") is not None else None,
        RefillStatus(p["to"]),
        detail,
    )
    session.flush()


def _items(refill: StandRefillOrder) -> dict[str, StandRefillOrderItem]:
    return {i.product_id: i for i in refill.items}


# ------------------------------------------------------------------ refill.approve


def _check_approve(session: Session, op: Op) -> Mapping[str, Any] | None:
    refill, _, amended = _begin_check(session, op, RefillAction.APPROVE)
    # Lines another device added after this one read the refill are approved as requested.
    amended["approved"] = refills.approved_quantities(session, refill, op.payload["approved"])
    return _amended(op, amended)


@spec(
    "refill.approve",
    OpClass.TRANSITION,
    check=_check_approve,
    scope=_refill_scope,
    summary="A manager approved a refill (with the approved units per product).",
)
def write_refill_approve(session: Session, op: Op) -> None:
    refill = _set_state(session, op, RefillAction.APPROVE)
    items = _items(refill)
    for pid, qty in op.payload["approved"].items():
        if pid in items:
            items[pid].approved_qty = int(qty)
    _finish(session, op, refill, RefillAction.APPROVE)


# ------------------------------------------------------------------ refill.schedule


def _check_schedule(session: Session, op: Op) -> Mapping[str, Any] | None:
    _, _, amended = _begin_check(session, op, RefillAction.SCHEDULE)
    try:
        date.fromisoformat(str(op.payload["scheduled_for"]))
    except ValueError:
        raise ValidationError("Choose a delivery date.", field="scheduled_for") from None
    require_text(op.payload["dealer"], "dealer", "Dealer")
    return _amended(op, amended)


@spec(
    "refill.schedule",
    OpClass.TRANSITION,
    check=_check_schedule,
    scope=_refill_scope,
    summary="A manager planned a refill's delivery (date and dealer).",
)
def write_refill_schedule(session: Session, op: Op) -> None:
    refill = _set_state(session, op, RefillAction.SCHEDULE)
    refill.scheduled_for = date.fromisoformat(str(op.payload["scheduled_for"]))
    refill.dealer = op.payload["dealer"]
    _finish(session, op, refill, RefillAction.SCHEDULE)


# ------------------------------------------------------------------ refill.deliver


def _check_deliver(session: Session, op: Op) -> Mapping[str, Any] | None:
    p = op.payload
    more_to_come = p["to"] == p["from"]
    refill, _, amended = _begin_check(session, op, RefillAction.DELIVER)
    given = refills._parse_quantities(session, refill, p["delivered"], "Delivered")
    # The payload lists every line the device had; a line it did not have brought nothing.
    this = {i.product_id: given.get(i.product_id, 0) for i in refill.items}
    delivered, final = refills.plan_delivery(session, refill, this, more_to_come=more_to_come)
    movements: dict[str, str] = {}
    for item in refill.items:
        if not delivered[item.product_id]:
            continue
        mid = p["movements"].get(item.product_id)
        if mid is None:
            raise ValidationError(
                "This delivery has no stock movement for one of its products.",
                field=f"qty:{item.product_id}",
            )
        _movement_unused(session, mid)
        movements[item.product_id] = mid
    amended["delivered"] = delivered
    # Another device may have delivered a part first: the totals are the server's.
    amended["delivered_total"] = {
        i.product_id: (i.delivered_qty or 0) + delivered[i.product_id] for i in refill.items
    }
    amended["movements"] = movements
    amended["to"] = (RefillStatus.DELIVERED if final else refill.status).value
    amended.pop("partial", None)
    if not final:
        amended["partial"] = True
    return _amended(op, amended)


@spec(
    "refill.deliver",
    OpClass.TRANSITION,
    check=_check_deliver,
    scope=_refill_scope,
    summary="A refill's units arrived at the stand (all of them, or a part of them).",
)
def write_refill_deliver(session: Session, op: Op) -> None:
    p = op.payload
    refill = _set_state(session, op, RefillAction.DELIVER)
    items = _items(refill)
    for pid, total in p["delivered_total"].items():
        if pid in items:
            items[pid].delivered_qty = int(total)
    for pid, mid in p["movements"].items():
        qty = int(p["delivered"][pid])
        if qty and session.get(InventoryMovement, mid) is None:
            post_movement(
                session,
                stand_id=refill.stand_id,
                product_id=pid,
                quantity=qty,
                kind=MovementKind.REFILL_DELIVERY,
                occurred_at=ts(p["at"]),
                actor=_actor(op),
                ref_type="stand_refill_order",
                ref_id=refill.id,
                movement_id=mid,
            )
    _finish(session, op, refill, RefillAction.DELIVER)


# ------------------------------------------------------------------ refill.confirm


def _check_confirm(session: Session, op: Op) -> Mapping[str, Any] | None:
    p = op.payload
    refill, _, amended = _begin_check(session, op, RefillAction.CONFIRM)
    got = refills.received_quantities(session, refill, p["received"])
    given = dict(p.get("discrepancies") or {})
    discrepancies: dict[str, str] = {}
    for item in refill.items:
        if got[item.product_id] == (item.delivered_qty or 0):
            continue
        did = client_id(given.get(item.product_id) or new_id(), "discrepancy_id")
        if session.get(RefillDiscrepancy, did) is not None:
            raise Conflict(f"A discrepancy with id {did} already exists.", field="discrepancy_id")
        discrepancies[item.product_id] = did
    amended["received"] = got
    amended["discrepancies"] = discrepancies
    return _amended(op, amended)


@spec(
    "refill.confirm",
    OpClass.TRANSITION,
    check=_check_confirm,
    scope=_refill_scope,
    summary="The partner confirmed what arrived; differences open discrepancies.",
)
def write_refill_confirm(session: Session, op: Op) -> None:
    p = op.payload
    refill = _set_state(session, op, RefillAction.CONFIRM)
    items = _items(refill)
    for pid, qty in p["received"].items():
        if pid in items:
            items[pid].received_qty = int(qty)
    session.flush()
    for pid, did in (p.get("discrepancies") or {}).items():
        if pid in items and session.get(RefillDiscrepancy, did) is None:
            refills.add_discrepancy(session, refill, items[pid], ts(p["at"]), did)
    _finish(session, op, refill, RefillAction.CONFIRM)


# ------------------------------------------------------------------ refill.reject / cancel


def _check_reject(session: Session, op: Op) -> Mapping[str, Any] | None:
    _, _, amended = _begin_check(session, op, RefillAction.REJECT)
    require_text(op.payload["reason"], "reason", "Reason", max_len=500)
    return _amended(op, amended)


@spec(
    "refill.reject",
    OpClass.TRANSITION,
    check=_check_reject,
    scope=_refill_scope,
    summary="A manager rejected a refill (with a reason).",
)
def write_refill_reject(session: Session, op: Op) -> None:
    refill = _set_state(session, op, RefillAction.REJECT)
    refill.close_reason = op.payload["reason"]
    _finish(session, op, refill, RefillAction.REJECT)


def _check_cancel(session: Session, op: Op) -> Mapping[str, Any] | None:
    refill, actor, amended = _begin_check(session, op, RefillAction.CANCEL)
    refills.check_cancel(refill, actor)
    require_text(op.payload["reason"], "reason", "Reason", max_len=500)
    return _amended(op, amended)


@spec(
    "refill.cancel",
    OpClass.TRANSITION,
    check=_check_cancel,
    scope=_refill_scope,
    summary="A refill was cancelled before any of it arrived (with a reason).",
)
def write_refill_cancel(session: Session, op: Op) -> None:
    refill = _set_state(session, op, RefillAction.CANCEL)
    refill.close_reason = op.payload["reason"]
    _finish(session, op, refill, RefillAction.CANCEL)


# --------------------------------------------------------------- refill.resolve_discrepancy


def _check_resolve(session: Session, op: Op) -> Mapping[str, Any] | None:
    p = op.payload
    _actor(op).require(MANAGERS, "resolve delivery discrepancies")
    disc = refills.open_discrepancy(session, p["discrepancy_id"])
    status = DiscrepancyStatus(p["status"])
    if status == DiscrepancyStatus.OPEN:
        raise ValidationError("A resolution must accept or keep a figure.", field="status")
    optional_text(p.get("note"), "note", "Note", max_len=500)
    amended = dict(p)
    if status == DiscrepancyStatus.ACCEPTED_RECEIVED and disc.received_qty != disc.delivered_qty:
        mid = p.get("movement_id") or new_id()
        _movement_unused(session, mid)
        amended["movement_id"] = mid
    else:
        amended["movement_id"] = None
    return _amended(op, amended)


@spec(
    "refill.resolve_discrepancy",
    OpClass.TRANSITION,
    check=_check_resolve,
    scope=_discrepancy_scope,
    summary="A manager resolved a delivery discrepancy (accepting the received figure "
    "corrects stock).",
)
def write_refill_resolve_discrepancy(session: Session, op: Op) -> None:
    p = op.payload
    disc = session.get(RefillDiscrepancy, p["discrepancy_id"])
    if disc is None:
        raise NotFound(f"No discrepancy with id {p['discrepancy_id']!r}.", field="discrepancy_id")
    at = ts(p["at"])
    note = p.get("note")
    mid = p.get("movement_id")
    diff = disc.received_qty - disc.delivered_qty
    if mid and diff and session.get(InventoryMovement, mid) is None:
        post_movement(
            session,
            stand_id=disc.stand_id,
            product_id=disc.product_id,
            quantity=diff,
            kind=MovementKind.REFILL_CORRECTION,
            occurred_at=at,
            actor=_actor(op),
            ref_type="refill_discrepancy",
            ref_id=disc.id,
            movement_id=mid,
            note=note,
        )
    disc.status = DiscrepancyStatus(p["status"])
    disc.resolved_by = op.actor
    disc.resolved_at = at
    disc.resolution_note = note
    session.flush()
