"""Sales at stands: an order with its items, one negative movement per item and the
partner's loyalty points, in one transaction. A sale beyond the expected stock is recorded
(the goods were physically sold) and flagged. A void is a compensating order, never an edit.

Recording the same order id twice returns the first recording (``duplicate=True``) and
changes nothing: a retried request or a replayed op is never a second sale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import DomainError, InvalidTransition, ValidationError
from app.ids import new_id
from app.models import (
    LoyaltyKind,
    LoyaltyTier,
    MovementKind,
    OrderKind,
    Package,
    PaymentMethod,
    Product,
    StandInventory,
    StandOrder,
    StandOrderItem,
    StandPartner,
    StandStatus,
)
from app.rules import round_money, sale_points
from app.services.base import (
    STAFF,
    Actor,
    client_id,
    get_or_404,
    optional_text,
    record_op,
    to_int,
    to_money,
    to_time,
    transactional,
    unused_id,
)
from app.services.inventory import open_stand, post_movement
from app.services.loyalty import add_entry
from app.services.onboarding import resolve_product

MAX_LINE_QTY = 10_000
#: The note of the ledger entry that takes back a voided sale's points.
VOID_POINTS_NOTE = "Sale voided"


@dataclass(frozen=True)
class SaleLine:
    """One line as entered: a product by id, SKU or barcode, a quantity, and optionally a
    price that overrides the catalog's (within the product's guardrails)."""

    product: str
    quantity: object
    unit_price: object | None = None


@dataclass(frozen=True)
class OversoldLine:
    product_id: str
    name: str
    quantity: int
    expected_on_hand: int


@dataclass(frozen=True)
class SaleResult:
    order_id: str
    stand_id: str
    total: Decimal
    points_earned: int
    oversold: tuple[OversoldLine, ...]
    stock_after: dict[str, int]
    duplicate: bool = False


@dataclass(frozen=True)
class VoidResult:
    void_order_id: str
    voided_order_id: str
    total: Decimal
    points_reversed: int


def _result_for_existing(session: Session, order: StandOrder, duplicate: bool) -> SaleResult:
    rows = session.execute(
        select(StandInventory.product_id, StandInventory.on_hand).where(
            StandInventory.stand_id == order.stand_id,
            StandInventory.product_id.in_([i.product_id for i in order.items]),
        )
    )
    stock = {str(pid): int(qty) for pid, qty in rows}
    return SaleResult(
        order.id, order.stand_id, order.total, order.points_earned, (), stock, duplicate
    )


def order_id_used(order_id: str, error: type[DomainError] = ValidationError) -> DomainError:
    """The refusal of an order id that another record already uses."""
    return error(f"Order id {order_id} is already used by another record.", field="order_id")


def voidable_order(session: Session, order_id: str, at: datetime) -> StandOrder:
    """The sale ``order_id``, if a void dated ``at`` may undo it: it is a sale, not voided
    yet, and not dated after the void."""
    order = get_or_404(session, StandOrder, order_id, "order")
    if order.kind != OrderKind.SALE:
        raise InvalidTransition("A void cannot itself be voided.", field="order_id")
    already = session.scalar(select(StandOrder.id).where(StandOrder.voided_order_id == order.id))
    if already is not None:
        raise InvalidTransition("This sale has already been voided.", field="order_id")
    if at < order.occurred_at:
        raise ValidationError(
            "A void cannot be dated before the sale it undoes.", field="occurred_at"
        )
    return order


@transactional
def record_sale(
    session: Session,
    actor: Actor,
    stand_id: str,
    lines: Sequence[SaleLine],
    payment_method: str,
    *,
    occurred_at: datetime | None = None,
    order_id: str | None = None,
) -> SaleResult:
    """Record a sale at a stand (see module docstring)."""
    actor.require(STAFF, "record sales")
    oid = client_id(order_id, "order_id")
    existing = session.get(StandOrder, oid)
    if existing is not None:
        if existing.stand_id != stand_id or existing.kind != OrderKind.SALE:
            raise order_id_used(oid)
        return _result_for_existing(session, existing, duplicate=True)
    stand = open_stand(session, stand_id)
    if stand.status != StandStatus.ACTIVE:
        raise ValidationError(
            f"{stand.name} is {stand.status.value}; sales start once it is active.",
            field="stand_id",
        )
    try:
        method = PaymentMethod(str(payment_method).strip().lower())
    except ValueError:
        raise ValidationError(
            f"Unknown payment method {payment_method!r}; use cash, qr or card.",
            field="payment_method",
        ) from None
    if not lines:
        raise ValidationError("Add at least one product to the sale.", field="lines")
    at = to_time(occurred_at)

    # Locked (in product order, so concurrent sales queue instead of deadlocking): on
    # PostgreSQL a concurrent sale's committed stock is read, so the oversold check and the
    # stock after this sale are right. SQLite's write lock already serialises writers.
    inventory = {
        inv.product_id: inv
        for inv in session.scalars(
            select(StandInventory)
            .where(StandInventory.stand_id == stand.id)
            .order_by(StandInventory.product_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    }
    # Merge repeated products (a scanner beeps once per unit) into one line each.
    merged: dict[str, tuple[Product, int, Decimal, bool]] = {}
    order_of_products: list[str] = []
    for n, line in enumerate(lines, start=1):
        product = resolve_product(session, line.product, field=f"lines[{n}].product")
        if product.id not in inventory:
            raise ValidationError(
                f"{product.name} is not carried at {stand.name}.", field=f"lines[{n}].product"
            )
        qty = to_int(
            line.quantity,
            f"lines[{n}].quantity",
            f"Quantity of {product.name}",
            minimum=1,
            maximum=MAX_LINE_QTY,
        )
        if line.unit_price is None:
            price, overridden = product.list_price, False
        else:
            price = to_money(line.unit_price, f"lines[{n}].unit_price", f"Price of {product.name}")
            overridden = price != product.list_price
            if overridden and product.min_price is not None and price < product.min_price:
                raise ValidationError(
                    f"{product.name} may not be sold below {product.min_price:.2f}.",
                    field=f"lines[{n}].unit_price",
                )
            if overridden and product.max_price is not None and price > product.max_price:
                raise ValidationError(
                    f"{product.name} may not be sold above {product.max_price:.2f}.",
                    field=f"lines[{n}].unit_price",
                )
        if product.id in merged:
            prev = merged[product.id]
            if prev[2] != price:
                raise ValidationError(
                    f"{product.name} appears twice with different prices.",
                    field=f"lines[{n}].unit_price",
                )
            merged[product.id] = (product, prev[1] + qty, price, overridden)
        else:
            merged[product.id] = (product, qty, price, overridden)
            order_of_products.append(product.id)

    partner = session.get_one(StandPartner, stand.partner_id)
    package = session.get_one(Package, partner.package_id)
    tier = session.get_one(LoyaltyTier, partner.loyalty_tier_id)

    total = Decimal(0)
    oversold: list[OversoldLine] = []
    items_payload = []
    order = StandOrder(
        id=oid,
        stand_id=stand.id,
        partner_id=partner.id,
        kind=OrderKind.SALE,
        occurred_at=at,
        payment_method=method,
        total=Decimal(0),
        actor=actor.user,
        created_at=at,
    )
    session.add(order)
    session.flush()
    for line_no, pid in enumerate(order_of_products, start=1):
        product, qty, price, overridden = merged[pid]
        line_total = round_money(price * qty)
        total += line_total
        expected = inventory[pid].on_hand
        if qty > expected:
            oversold.append(OversoldLine(pid, product.name, qty, expected))
        item_id, movement_id = new_id(), new_id()
        session.add(
            StandOrderItem(
                id=item_id,
                order_id=oid,
                line_no=line_no,
                product_id=pid,
                quantity=qty,
                unit_price=price,
                unit_cost=product.unit_cost,
                line_total=line_total,
                price_overridden=overridden,
            )
        )
        post_movement(
            session,
            stand_id=stand.id,
            product_id=pid,
            quantity=-qty,
            kind=MovementKind.SALE,
            occurred_at=at,
            actor=actor,
            ref_type="stand_order",
            ref_id=oid,
            movement_id=movement_id,
        )
        items_payload.append(
            {
                "id": item_id,
                "line_no": line_no,
                "product_id": pid,
                "quantity": qty,
                "unit_price": price,
                "unit_cost": product.unit_cost,
                "line_total": line_total,
                "price_overridden": overridden,
                "movement_id": movement_id,
            }
        )
    points = sale_points(total, package.loyalty_multiplier, tier.point_multiplier)
    order.total = total
    order.points_earned = points
    order.oversold = bool(oversold)
    ledger_id = None
    if points > 0:
        ledger_id = new_id()
        add_entry(
            session,
            partner_id=partner.id,
            kind=LoyaltyKind.EARN,
            points=points,
            occurred_at=at,
            actor=actor,
            ref_type="stand_order",
            ref_id=oid,
            entry_id=ledger_id,
        )
    session.flush()
    record_op(
        session,
        "sale.record",
        oid,
        {
            "order": {
                "id": oid,
                "stand_id": stand.id,
                "partner_id": partner.id,
                "occurred_at": at,
                "payment_method": method,
                "total": total,
                "points_earned": points,
                "oversold": bool(oversold),
            },
            "items": items_payload,
            "loyalty_entry_id": ledger_id,
        },
        actor,
    )
    stock = {pid: inventory[pid].on_hand for pid in order_of_products}
    return SaleResult(oid, stand.id, total, points, tuple(oversold), stock)


def void_order_row(order: StandOrder, void_id: str, at: datetime, actor: str | None) -> StandOrder:
    """The compensating order that voids ``order`` (its lines are added separately)."""
    return StandOrder(
        id=void_id,
        stand_id=order.stand_id,
        partner_id=order.partner_id,
        kind=OrderKind.VOID,
        voided_order_id=order.id,
        occurred_at=at,
        payment_method=order.payment_method,
        currency=order.currency,
        total=-order.total,
        points_earned=-order.points_earned,
        actor=actor,
        created_at=at,
    )


@transactional
def void_sale(
    session: Session,
    actor: Actor,
    order_id: str,
    *,
    reason: str | None = None,
    occurred_at: datetime | None = None,
    void_id: str | None = None,
) -> VoidResult:
    """Void a sale with a compensating order: negated lines, stock back, points reversed."""
    actor.require(STAFF, "void sales")
    at = to_time(occurred_at)
    order = voidable_order(session, order_id, at)
    vid = unused_id(session, StandOrder, void_id, "void_id", "order")
    text = optional_text(reason, "reason", "Reason", max_len=500)
    void = void_order_row(order, vid, at, actor.user)
    session.add(void)
    session.flush()
    items_payload = []
    for item in order.items:
        item_id, movement_id = new_id(), new_id()
        session.add(
            StandOrderItem(
                id=item_id,
                order_id=vid,
                line_no=item.line_no,
                product_id=item.product_id,
                quantity=-item.quantity,
                unit_price=item.unit_price,
                unit_cost=item.unit_cost,
                line_total=-item.line_total,
                price_overridden=item.price_overridden,
            )
        )
        post_movement(
            session,
            stand_id=order.stand_id,
            product_id=item.product_id,
            quantity=item.quantity,
            kind=MovementKind.SALE_VOID,
            occurred_at=at,
            actor=actor,
            ref_type="stand_order",
            ref_id=vid,
            movement_id=movement_id,
            note=text,
        )
        items_payload.append(
            {
                "id": item_id,
                "line_no": item.line_no,
                "product_id": item.product_id,
                "quantity": -item.quantity,
                "movement_id": movement_id,
            }
        )
    ledger_id = None
    if order.points_earned > 0:
        ledger_id = new_id()
        add_entry(
            session,
            partner_id=order.partner_id,
            kind=LoyaltyKind.ADJUST,
            points=-order.points_earned,
            occurred_at=at,
            actor=actor,
            ref_type="stand_order",
            ref_id=vid,
            note=VOID_POINTS_NOTE,
            entry_id=ledger_id,
        )
    session.flush()
    record_op(
        session,
        "sale.void",
        vid,
        {
            "void_id": vid,
            "order_id": order.id,
            "stand_id": order.stand_id,
            "occurred_at": at,
            "reason": text,
            "items": items_payload,
            "loyalty_entry_id": ledger_id,
        },
        actor,
    )
    return VoidResult(vid, order.id, -order.total, order.points_earned)
