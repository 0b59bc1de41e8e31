"""Outputs of the AI Stand Coach, per stand or program-wide.

A coach run updates an existing insight with the same ``dedup_key`` instead of adding a
second one, and never reopens one a person dismissed or finished.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, created_at_col, enum_column, id_pk, updated_at_col
from app.models.enums import InsightStatus, Severity


class StandAIInsight(Base):
    __tablename__ = "stand_ai_insight"
    __table_args__ = (
        UniqueConstraint("dedup_key"),
        Index("ix_stand_ai_insight_stand_status", "stand_id", "status"),
    )

    id: Mapped[str] = id_pk()
    stand_id: Mapped[str] = mapped_column(ForeignKey("stand_location.id"))
    product_id: Mapped[str | None] = mapped_column(ForeignKey("product.id"))
    kind: Mapped[str] = mapped_column(String(40))
    severity: Mapped[Severity] = mapped_column(enum_column(Severity, "insight_severity"))
    message: Mapped[str] = mapped_column(Text)
    # Structured recommended action and the numbers behind it, as JSON text.
    action: Mapped[str] = mapped_column(Text, default="{}")
    evidence: Mapped[str] = mapped_column(Text, default="{}")
    model_version: Mapped[str] = mapped_column(String(40))
    dedup_key: Mapped[str] = mapped_column(String(200))
    status: Mapped[InsightStatus] = mapped_column(
        enum_column(InsightStatus, "insight_status"), default=InsightStatus.NEW
    )
    status_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_col()
    updated_at: Mapped[datetime] = updated_at_col()


class AIInsight(Base):
    __tablename__ = "ai_insight"
    __table_args__ = (UniqueConstraint("dedup_key"),)

    id: Mapped[str] = id_pk()
    scope: Mapped[str] = mapped_column(String(40))  # e.g. "program", "expansion"
    kind: Mapped[str] = mapped_column(String(40))
    severity: Mapped[Severity] = mapped_column(enum_column(Severity, "ai_insight_severity"))
    message: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text, default="{}")
    evidence: Mapped[str] = mapped_column(Text, default="{}")
    model_version: Mapped[str] = mapped_column(String(40))
    dedup_key: Mapped[str] = mapped_column(String(200))
    status: Mapped[InsightStatus] = mapped_column(
        enum_column(InsightStatus, "ai_insight_status"), default=InsightStatus.NEW
    )
    status_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_col()
    updated_at: Mapped[datetime] = updated_at_col()
