"""Partners (the shops) and their stands."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, created_at_col, enum_column, id_pk, updated_at_col
from app.models.enums import LocationType, PartnerStatus, StandStatus


class StandPartner(Base):
    """The shop owner who hosts one or more stands."""

    __tablename__ = "stand_partner"

    id: Mapped[str] = id_pk()
    name: Mapped[str] = mapped_column(String(120), index=True)
    contact_name: Mapped[str] = mapped_column(String(120))
    email: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(40))
    package_id: Mapped[str] = mapped_column(ForeignKey("package.id"), index=True)
    loyalty_tier_id: Mapped[str] = mapped_column(ForeignKey("loyalty_tier.id"))
    status: Mapped[PartnerStatus] = mapped_column(
        enum_column(PartnerStatus, "partner_status"), default=PartnerStatus.ONBOARDING
    )
    region: Mapped[str | None] = mapped_column(String(60), index=True)
    # Bank account holder and IBAN (or other payout route), as entered at onboarding.
    payout_method: Mapped[str | None] = mapped_column(String(24))
    payout_account: Mapped[str | None] = mapped_column(String(64))
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = created_at_col()
    updated_at: Mapped[datetime] = updated_at_col()


class StandLocation(Base):
    """One stand at one place ("Stand :id" in the API)."""

    __tablename__ = "stand_location"
    __table_args__ = (
        CheckConstraint("capacity_units >= 1", name="capacity_positive"),
        CheckConstraint(
            "(latitude IS NULL OR (latitude BETWEEN -90 AND 90)) AND "
            "(longitude IS NULL OR (longitude BETWEEN -180 AND 180))",
            name="coordinates_in_range",
        ),
        Index("ix_stand_location_rep_status", "assigned_rep", "status"),
    )

    id: Mapped[str] = id_pk()
    partner_id: Mapped[str] = mapped_column(ForeignKey("stand_partner.id"), index=True)
    name: Mapped[str] = mapped_column(String(120), index=True)
    address: Mapped[str] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(80), index=True)
    postal_code: Mapped[str | None] = mapped_column(String(16))
    country: Mapped[str] = mapped_column(String(2), default="DE")
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    location_type: Mapped[LocationType] = mapped_column(
        enum_column(LocationType, "location_type"), index=True
    )
    assigned_rep: Mapped[str | None] = mapped_column(String(60))
    capacity_units: Mapped[int]
    # IANA zone; a stand's "day" for KPIs is its local day.
    timezone: Mapped[str] = mapped_column(String(40), default="Europe/Berlin")
    payment_reference: Mapped[str] = mapped_column(String(16), unique=True)
    qr_payload: Mapped[str] = mapped_column(String(200))
    status: Mapped[StandStatus] = mapped_column(
        enum_column(StandStatus, "stand_status"), default=StandStatus.ACTIVE, index=True
    )
    created_at: Mapped[datetime] = created_at_col()
    updated_at: Mapped[datetime] = updated_at_col()
