"""Candidate locations for new stands, scored by the coach against the best existing stands.

A candidate comes from a person (entered in the app), a CSV file, or a partner lead (a
partner signed up whose stand is planned but not live yet). ``attributes`` holds optional
numbers about the place as a JSON object (footfall per day, opening hours per week, area in
m², competitors nearby); the coach compares them where both sides know them. When a
candidate is linked to a stand (the planned stand of a partner lead, or the stand opened
for an accepted candidate), its attributes describe that stand for later scoring too.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Float, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, created_at_col, enum_column, id_pk, updated_at_col
from app.models.enums import LocationType


class CandidateSource(StrEnum):
    MANUAL = "manual"
    CSV = "csv"
    PARTNER_LEAD = "partner_lead"


class CandidateStatus(StrEnum):
    OPEN = "open"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class ExpansionCandidate(Base):
    """A place where a new stand could go."""

    __tablename__ = "expansion_candidate"
    __table_args__ = (
        CheckConstraint(
            "latitude BETWEEN -90 AND 90 AND longitude BETWEEN -180 AND 180",
            name="coordinates_in_range",
        ),
    )

    id: Mapped[str] = id_pk()
    name: Mapped[str] = mapped_column(String(120))
    address: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str | None] = mapped_column(String(80))
    postal_code: Mapped[str | None] = mapped_column(String(16))
    country: Mapped[str] = mapped_column(String(2), default="DE")
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    location_type: Mapped[LocationType] = mapped_column(
        enum_column(LocationType, "candidate_location_type")
    )
    source: Mapped[CandidateSource] = mapped_column(
        enum_column(CandidateSource, "candidate_source"), default=CandidateSource.MANUAL
    )
    # The partner of a partner lead.
    partner_id: Mapped[str | None] = mapped_column(ForeignKey("stand_partner.id"), index=True)
    # The planned stand a partner lead came from, or the stand opened for this candidate;
    # unique, so a planned stand becomes at most one candidate however often leads are read.
    stand_id: Mapped[str | None] = mapped_column(ForeignKey("stand_location.id"), unique=True)
    # Optional numbers about the place, as a JSON object (see the module docstring).
    attributes: Mapped[str] = mapped_column(Text, default="{}")
    notes: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[CandidateStatus] = mapped_column(
        enum_column(CandidateStatus, "candidate_status"), default=CandidateStatus.OPEN, index=True
    )
    status_reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(60))
    created_at: Mapped[datetime] = created_at_col()
    updated_at: Mapped[datetime] = updated_at_col()
