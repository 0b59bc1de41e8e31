"""Refills through their lifecycle, the transition log and delivery discrepancies.

The refill row is the current state; every transition is also an immutable
:class:`StandRefillEvent` (the fact that sync carries).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, created_at_col, enum_column, id_pk, updated_at_col
from app.models.enums import DiscrepancyStatus, RefillAction, RefillStatus


class StandRefillOrder(Base):
    __tablename__ = "stand_refill_order"
    __table_args__ = (
        Index("ix_stand_refill_order_stand_status", "stand_id", "status"),
        Index("ix_stand_refill_order_status_time", "status", "requested_at"),
    )

    id: Mapped[str] = id_pk()
    stand_id: Mapped[str] = mapped_column(ForeignKey("stand_location.id"))
    status: Mapped[RefillStatus] = mapped_column(
        enum_column(RefillStatus, "refill_status"), default=RefillStatus.REQUESTED
    )
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    # Value of the refill at the approved (else requested) quantities and refill prices.
    total: Mapped[Decimal]
    note: Mapped[str] = mapped_column(Text, default="")
    requested_by: Mapped[str] = mapped_column(String(60))
    requested_at: Mapped[datetime]
    approved_by: Mapped[str | None] = mapped_column(String(60))
    approved_at: Mapped[datetime | None]
    scheduled_by: Mapped[str | None] = mapped_column(String(60))
    scheduled_at: Mapped[datetime | None]
    scheduled_for: Mapped[date | None]
    dealer: Mapped[str | None] = mapped_column(String(120))
    delivered_by: Mapped[str | None] = mapped_column(String(60))
    delivered_at: Mapped[datetime | None]
    confirmed_by: Mapped[str | None] = mapped_column(String(60))
    confirmed_at: Mapped[datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(60))
    closed_at: Mapped[datetime | None]
    close_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_col()
    updated_at: Mapped[datetime] = updated_at_col()

    items: Mapped[list[StandRefillOrderItem]] = relationship(
        back_populates="refill", order_by="StandRefillOrderItem.line_no"
    )


class StandRefillOrderItem(Base):
    __tablename__ = "stand_refill_order_item"
    __table_args__ = (
        UniqueConstraint("refill_id", "product_id"),
        CheckConstraint("requested_qty >= 0", name="requested_not_negative"),
        CheckConstraint(
            "(approved_qty IS NULL OR approved_qty >= 0) AND "
            "(delivered_qty IS NULL OR delivered_qty >= 0) AND "
            "(received_qty IS NULL OR received_qty >= 0)",
            name="quantities_not_negative",
        ),
    )

    id: Mapped[str] = id_pk()
    refill_id: Mapped[str] = mapped_column(ForeignKey("stand_refill_order.id"), index=True)
    line_no: Mapped[int]
    product_id: Mapped[str] = mapped_column(ForeignKey("product.id"))
    requested_qty: Mapped[int]
    approved_qty: Mapped[int | None]
    delivered_qty: Mapped[int | None]
    received_qty: Mapped[int | None]
    unit_price: Mapped[Decimal]

    refill: Mapped[StandRefillOrder] = relationship(back_populates="items")


class StandRefillEvent(Base):
    """One transition of a refill, as it happened. Append-only."""

    __tablename__ = "stand_refill_event"
    __table_args__ = (Index("ix_stand_refill_event_refill_time", "refill_id", "occurred_at"),)

    id: Mapped[str] = id_pk()
    refill_id: Mapped[str] = mapped_column(ForeignKey("stand_refill_order.id"))
    action: Mapped[RefillAction] = mapped_column(enum_column(RefillAction, "refill_action"))
    from_status: Mapped[RefillStatus | None] = mapped_column(
        enum_column(RefillStatus, "refill_event_from")
    )
    to_status: Mapped[RefillStatus] = mapped_column(enum_column(RefillStatus, "refill_event_to"))
    actor: Mapped[str] = mapped_column(String(60))
    role: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime]
    # The quantities, date or reason given with the transition, as JSON text.
    detail: Mapped[str] = mapped_column(Text, default="{}")


class RefillDiscrepancy(Base):
    """Received differs from delivered for one SKU of a confirmed refill.

    Stock keeps the delivered quantity until someone resolves the discrepancy; accepting the
    received figure posts a correction movement (a new fact), never an edit.
    """

    __tablename__ = "refill_discrepancy"
    __table_args__ = (UniqueConstraint("refill_id", "product_id"),)

    id: Mapped[str] = id_pk()
    refill_id: Mapped[str] = mapped_column(ForeignKey("stand_refill_order.id"))
    stand_id: Mapped[str] = mapped_column(ForeignKey("stand_location.id"), index=True)
    product_id: Mapped[str] = mapped_column(ForeignKey("product.id"))
    delivered_qty: Mapped[int]
    received_qty: Mapped[int]
    status: Mapped[DiscrepancyStatus] = mapped_column(
        enum_column(DiscrepancyStatus, "discrepancy_status"), default=DiscrepancyStatus.OPEN
    )
    resolved_by: Mapped[str | None] = mapped_column(String(60))
    resolved_at: Mapped[datetime | None]
    resolution_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_col()
