"""Read-side queries for the rep's screens at a stand (record a sale, count stock).

:func:`app.services.queries.stand_detail` serves the stand detail screen; the sale and count
screens need a little more per SKU (the barcode a scanner types, whether the product may
still be sold) and a little less of everything else, in one query.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Product, StandInventory, StandLocation, StandPartner, StandStatus
from app.services.base import get_or_404, transactional


@dataclass(frozen=True)
class StockItem:
    """One SKU carried at a stand, as the sale and count screens show it."""

    product_id: str
    sku: str
    barcode: str | None
    name: str
    category: str
    list_price: Decimal
    on_hand: int
    par_level: int
    reorder_point: int
    capacity: int
    #: The product is still sold (a discontinued one can be counted, not sold).
    sellable: bool
    #: Still placed on the stand (a removed SKU may keep stock until it is counted out).
    placed: bool
    last_counted_at: datetime | None

    def matches_code(self, code: str) -> bool:
        """True if ``code`` is this product's barcode, SKU (any case) or id: what a scanner
        or a rep types to name exactly one product."""
        key = code.strip()
        if not key:
            return False
        return (
            key == self.barcode or key.casefold() == self.sku.casefold() or key == self.product_id
        )


@dataclass(frozen=True)
class StandStock:
    stand_id: str
    stand_name: str
    partner_name: str
    status: str
    last_counted_at: datetime | None
    items: tuple[StockItem, ...]

    @property
    def accepts_sales(self) -> bool:
        return self.status == StandStatus.ACTIVE.value

    def find(self, code: str) -> StockItem | None:
        """The item a barcode, SKU or id names exactly, if the stand carries it."""
        return next((item for item in self.items if item.matches_code(code)), None)


@transactional
def stand_stock(session: Session, stand_id: str) -> StandStock:
    """Every SKU the stand carries (placed first, then by category and name), with its
    barcode, price and expected on-hand."""
    stand = get_or_404(session, StandLocation, stand_id, "stand")
    partner_name = session.scalar(
        select(StandPartner.name).where(StandPartner.id == stand.partner_id)
    )
    rows = session.execute(
        select(StandInventory, Product)
        .join(Product, Product.id == StandInventory.product_id)
        .where(StandInventory.stand_id == stand.id)
        .order_by(
            StandInventory.active.desc(), Product.category, func.lower(Product.name), Product.sku
        )
    )
    items = tuple(
        StockItem(
            product_id=p.id,
            sku=p.sku,
            barcode=p.gtin,
            name=p.name,
            category=p.category,
            list_price=p.list_price,
            on_hand=i.on_hand,
            par_level=i.par_level,
            reorder_point=i.reorder_point,
            capacity=i.capacity,
            sellable=p.active,
            placed=i.active,
            last_counted_at=i.last_counted_at,
        )
        for i, p in rows
    )
    counted = [item.last_counted_at for item in items if item.last_counted_at is not None]
    return StandStock(
        stand_id=stand.id,
        stand_name=stand.name,
        partner_name=partner_name or "",
        status=stand.status.value,
        last_counted_at=max(counted) if counted else None,
        items=items,
    )
