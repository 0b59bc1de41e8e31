"""Partner loyalty points and commission payouts."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import ID, Base, created_at_col, enum_column, id_pk, updated_at_col
from app.models.enums import LoyaltyKind, PayoutStatus
from app.types import Rate


class StandLoyaltyLedger(Base):
    """Append-only points ledger per partner. The balance is the sum of ``points``."""

    __tablename__ = "stand_loyalty_ledger"
    __table_args__ = (
        CheckConstraint("points <> 0", name="points_not_zero"),
        CheckConstraint(
            "(kind IN ('earn', 'activation', 'bonus') AND points > 0) OR "
            "(kind IN ('redeem', 'expire') AND points < 0) OR kind = 'adjust'",
            name="sign_matches_kind",
        ),
        Index("ix_stand_loyalty_ledger_partner_time", "partner_id", "occurred_at"),
    )

    id: Mapped[str] = id_pk()
    partner_id: Mapped[str] = mapped_column(ForeignKey("stand_partner.id"))
    kind: Mapped[LoyaltyKind] = mapped_column(enum_column(LoyaltyKind, "loyalty_kind"))
    points: Mapped[int]
    occurred_at: Mapped[datetime]
    ref_type: Mapped[str | None] = mapped_column(String(40))
    ref_id: Mapped[str | None] = mapped_column(ID, index=True)
    actor: Mapped[str | None] = mapped_column(String(60))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_col()


class Payout(Base):
    """Commission owed to a partner for one period: draft -> scheduled -> paid."""

    __tablename__ = "payout"
    __table_args__ = (
        UniqueConstraint("partner_id", "period_start", "period_end"),
        CheckConstraint("period_end >= period_start", name="period_ordered"),
    )

    id: Mapped[str] = id_pk()
    partner_id: Mapped[str] = mapped_column(ForeignKey("stand_partner.id"))
    period_start: Mapped[date]
    period_end: Mapped[date]  # inclusive
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    sales_total: Mapped[Decimal]
    order_count: Mapped[int]
    commission_rate: Mapped[Decimal] = mapped_column(Rate())
    amount: Mapped[Decimal]
    status: Mapped[PayoutStatus] = mapped_column(
        enum_column(PayoutStatus, "payout_status"), default=PayoutStatus.DRAFT
    )
    scheduled_for: Mapped[date | None]
    paid_at: Mapped[datetime | None]
    payment_reference: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = created_at_col()
    updated_at: Mapped[datetime] = updated_at_col()
