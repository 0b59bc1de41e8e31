"""Sales at stands. Orders are facts: a void is a second order, never an edit."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, created_at_col, enum_column, id_pk
from app.models.enums import OrderKind, PaymentMethod


class StandOrder(Base):
    """A sale (``kind='sale'``) or the void of one (``kind='void'``, negated lines)."""

    __tablename__ = "stand_order"
    __table_args__ = (
        Index("ix_stand_order_stand_time", "stand_id", "occurred_at"),
        Index("ix_stand_order_partner_time", "partner_id", "occurred_at"),
        # Program-wide KPIs read a window of days across all stands.
        Index("ix_stand_order_time", "occurred_at"),
        CheckConstraint(
            "(kind = 'void') = (voided_order_id IS NOT NULL)", name="void_refers_to_sale"
        ),
    )

    id: Mapped[str] = id_pk()
    stand_id: Mapped[str] = mapped_column(ForeignKey("stand_location.id"))
    # Denormalised from the stand at the time of sale: payouts follow the partner of record.
    partner_id: Mapped[str] = mapped_column(ForeignKey("stand_partner.id"))
    kind: Mapped[OrderKind] = mapped_column(
        enum_column(OrderKind, "order_kind"), default=OrderKind.SALE
    )
    voided_order_id: Mapped[str | None] = mapped_column(ForeignKey("stand_order.id"), unique=True)
    occurred_at: Mapped[datetime]
    payment_method: Mapped[PaymentMethod] = mapped_column(
        enum_column(PaymentMethod, "payment_method")
    )
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    total: Mapped[Decimal]
    points_earned: Mapped[int] = mapped_column(default=0)
    # True when some line sold more than the stand was expected to hold.
    oversold: Mapped[bool] = mapped_column(default=False)
    actor: Mapped[str | None] = mapped_column(String(60))
    created_at: Mapped[datetime] = created_at_col()

    items: Mapped[list[StandOrderItem]] = relationship(
        back_populates="order", order_by="StandOrderItem.line_no"
    )


class StandOrderItem(Base):
    """One line of an order, with the price and unit cost as they were."""

    __tablename__ = "stand_order_item"
    __table_args__ = (
        CheckConstraint("quantity <> 0", name="quantity_not_zero"),
        Index("ix_stand_order_item_product", "product_id"),
    )

    id: Mapped[str] = id_pk()
    order_id: Mapped[str] = mapped_column(ForeignKey("stand_order.id"), index=True)
    line_no: Mapped[int]
    product_id: Mapped[str] = mapped_column(ForeignKey("product.id"))
    quantity: Mapped[int]
    unit_price: Mapped[Decimal]
    unit_cost: Mapped[Decimal]
    line_total: Mapped[Decimal]
    price_overridden: Mapped[bool] = mapped_column(default=False)

    order: Mapped[StandOrder] = relationship(back_populates="items")
