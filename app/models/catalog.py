"""The program's catalog: products (SKUs), packages and loyalty tiers."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, created_at_col, id_pk, updated_at_col
from app.types import Rate


class Product(Base):
    """A SKU that can be placed on a stand."""

    __tablename__ = "product"
    __table_args__ = (
        CheckConstraint("pack_size >= 1", name="pack_size_positive"),
        CheckConstraint("list_price >= 0 AND unit_cost >= 0", name="prices_not_negative"),
    )

    id: Mapped[str] = id_pk()
    sku: Mapped[str] = mapped_column(String(32), unique=True)
    gtin: Mapped[str | None] = mapped_column(String(14), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    category: Mapped[str] = mapped_column(String(60), index=True)
    list_price: Mapped[Decimal]
    unit_cost: Mapped[Decimal]
    # Pricing guardrails: a refill or sale price outside [min_price, max_price] is refused.
    min_price: Mapped[Decimal | None]
    max_price: Mapped[Decimal | None]
    pack_size: Mapped[int] = mapped_column(default=1)
    image_asset: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = created_at_col()
    updated_at: Mapped[datetime] = updated_at_col()


class Package(Base):
    """A partner package, Starter -> Growth -> Pro, ordered by ``rank``."""

    __tablename__ = "package"
    __table_args__ = (
        CheckConstraint("max_stands >= 1 AND sku_slots >= 1", name="limits_positive"),
    )

    id: Mapped[str] = id_pk()
    code: Mapped[str] = mapped_column(String(24), unique=True)
    name: Mapped[str] = mapped_column(String(60))
    rank: Mapped[int] = mapped_column(unique=True)
    max_stands: Mapped[int]
    sku_slots: Mapped[int]
    commission_rate: Mapped[Decimal] = mapped_column(Rate())
    loyalty_multiplier: Mapped[Decimal] = mapped_column(Rate())
    refill_cadence_days: Mapped[int]
    default_par: Mapped[int]
    activation_points: Mapped[int] = mapped_column(default=0)
    description: Mapped[str] = mapped_column(Text, default="")


class LoyaltyTier(Base):
    """Bronze -> Platinum. A partner holds the highest tier whose threshold they reach."""

    __tablename__ = "loyalty_tier"

    id: Mapped[str] = id_pk()
    code: Mapped[str] = mapped_column(String(24), unique=True)
    name: Mapped[str] = mapped_column(String(60))
    rank: Mapped[int] = mapped_column(unique=True)
    # Points earned over the trailing window needed to hold this tier.
    threshold_points: Mapped[int]
    point_multiplier: Mapped[Decimal] = mapped_column(Rate())
    perks: Mapped[str] = mapped_column(Text, default="")
