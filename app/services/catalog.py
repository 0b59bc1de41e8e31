"""The product catalog: adding products, price and guardrail changes, discontinuing.

Orders and refills keep the prices they were made with, so a price change never rewrites
history.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.errors import ValidationError
from app.models import Product
from app.services.base import (
    MANAGERS,
    Actor,
    optional_text,
    record_op,
    require_text,
    to_int,
    to_money,
    transactional,
    unused_id,
)
from app.services.onboarding import resolve_product


@dataclass(frozen=True)
class ProductRow:
    id: str
    sku: str
    gtin: str | None
    name: str
    category: str
    list_price: Decimal
    unit_cost: Decimal
    min_price: Decimal | None
    max_price: Decimal | None
    pack_size: int
    active: bool


def _row(p: Product) -> ProductRow:
    return ProductRow(
        p.id,
        p.sku,
        p.gtin,
        p.name,
        p.category,
        p.list_price,
        p.unit_cost,
        p.min_price,
        p.max_price,
        p.pack_size,
        p.active,
    )


def gtin_is_valid(gtin: str) -> bool:
    """GS1 check digit of a GTIN-8, -12, -13 or -14."""
    if not gtin.isdigit() or len(gtin) not in (8, 12, 13, 14):
        return False
    digits = [int(d) for d in gtin]
    body, check = digits[:-1], digits[-1]
    total = sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == check


def _guardrails(list_price: Decimal, lo: Decimal | None, hi: Decimal | None) -> None:
    if lo is not None and hi is not None and lo > hi:
        raise ValidationError("The minimum price is above the maximum price.", field="min_price")
    if lo is not None and list_price < lo:
        raise ValidationError("The list price is below the minimum price.", field="list_price")
    if hi is not None and list_price > hi:
        raise ValidationError("The list price is above the maximum price.", field="list_price")


def validate_new_product(
    session: Session,
    *,
    sku: str,
    name: str,
    category: str,
    list_price: object,
    unit_cost: object,
    gtin: str | None = None,
    min_price: object | None = None,
    max_price: object | None = None,
    pack_size: object = 1,
) -> dict[str, Any]:
    """A new product's columns, checked: SKU and barcode unused, prices, guardrails."""
    code = require_text(sku, "sku", "SKU", max_len=32)
    barcode = optional_text(gtin, "gtin", "Barcode", max_len=14)
    if barcode is not None and not gtin_is_valid(barcode):
        raise ValidationError(f"{barcode!r} is not a valid GTIN (check digit).", field="gtin")
    clash = session.scalar(
        select(Product.sku).where(
            or_(Product.sku == code, Product.gtin == barcode) if barcode else Product.sku == code
        )
    )
    if clash is not None:
        raise ValidationError(f"A product with this SKU or barcode exists ({clash}).", field="sku")
    price = to_money(list_price, "list_price", "List price")
    cost = to_money(unit_cost, "unit_cost", "Unit cost")
    lo = None if min_price is None else to_money(min_price, "min_price", "Minimum price")
    hi = None if max_price is None else to_money(max_price, "max_price", "Maximum price")
    _guardrails(price, lo, hi)
    return {
        "sku": code,
        "gtin": barcode,
        "name": require_text(name, "name", "Product name"),
        "category": require_text(category, "category", "Category", max_len=60),
        "list_price": price,
        "unit_cost": cost,
        "min_price": lo,
        "max_price": hi,
        "pack_size": to_int(pack_size, "pack_size", "Pack size", minimum=1, maximum=1000),
    }


@transactional
def add_product(
    session: Session,
    actor: Actor,
    *,
    sku: str,
    name: str,
    category: str,
    list_price: object,
    unit_cost: object,
    gtin: str | None = None,
    min_price: object | None = None,
    max_price: object | None = None,
    pack_size: object = 1,
    product_id: str | None = None,
) -> ProductRow:
    """Add a product to the catalog."""
    actor.require(MANAGERS, "change the catalog")
    fields = validate_new_product(
        session,
        sku=sku,
        name=name,
        category=category,
        list_price=list_price,
        unit_cost=unit_cost,
        gtin=gtin,
        min_price=min_price,
        max_price=max_price,
        pack_size=pack_size,
    )
    product = Product(
        id=unused_id(session, Product, product_id, "product_id", "product"),
        active=True,
        **fields,
    )
    session.add(product)
    session.flush()
    row = _row(product)
    record_op(session, "product.add", product.id, {"product": row.__dict__}, actor)
    return row


@transactional
def update_product(
    session: Session,
    actor: Actor,
    product: str,
    *,
    list_price: object | None = None,
    unit_cost: object | None = None,
    min_price: object | None = None,
    max_price: object | None = None,
    active: bool | None = None,
) -> ProductRow:
    """Change prices, guardrails or whether the product is still sold."""
    actor.require(MANAGERS, "change the catalog")
    p = resolve_product(session, product, include_inactive=True)
    price = p.list_price if list_price is None else to_money(list_price, "list_price", "List price")
    lo = p.min_price if min_price is None else to_money(min_price, "min_price", "Minimum price")
    hi = p.max_price if max_price is None else to_money(max_price, "max_price", "Maximum price")
    _guardrails(price, lo, hi)
    before = _row(p)
    p.list_price, p.min_price, p.max_price = price, lo, hi
    if unit_cost is not None:
        p.unit_cost = to_money(unit_cost, "unit_cost", "Unit cost")
    if active is not None:
        p.active = active
    session.flush()
    after = _row(p)
    record_op(
        session, "product.update", p.id, {"before": before.__dict__, "after": after.__dict__}, actor
    )
    return after


@transactional
def list_products(
    session: Session, *, search: str | None = None, include_inactive: bool = False
) -> list[ProductRow]:
    query = select(Product).order_by(Product.category, Product.name)
    if not include_inactive:
        query = query.where(Product.active)
    if search:
        like = f"%{search.strip().lower()}%"
        query = query.where(
            or_(Product.name.ilike(like), Product.sku.ilike(like), Product.gtin == search.strip())
        )
    return [_row(p) for p in session.scalars(query)]
