"""A refill requested from a coach insight closes the insight in the same transaction."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.db import SessionFactory
from app.errors import ValidationError
from app.ids import new_id
from app.models import InsightStatus, Severity, StandAIInsight, StandRefillOrder
from app.services import refills
from tests.conftest import REP, CatalogProduct, StandFixture, make_stand


def _insight(factory: SessionFactory, stand: StandFixture, status: InsightStatus) -> str:
    iid = new_id()
    with factory() as s, s.begin():
        s.add(
            StandAIInsight(
                id=iid,
                stand_id=stand.stand_id,
                kind="stockout_risk",
                severity=Severity.CRITICAL,
                message="1 product may run out before the next visit",
                model_version="test",
                dedup_key=f"stockout_risk:{stand.stand_id}:{iid}",
                status=status,
            )
        )
    return iid


def _refills(factory: SessionFactory) -> int:
    with factory() as s, s.begin():
        return int(s.scalar(select(func.count()).select_from(StandRefillOrder)) or 0)


def test_the_request_closes_its_insight(
    factory: SessionFactory, catalog: list[CatalogProduct], stand: StandFixture
) -> None:
    iid = _insight(factory, stand, InsightStatus.NEW)
    with factory() as s:
        refills.request_refill(s, REP, stand.stand_id, {stand.product_ids[0]: 6}, insight_id=iid)
    with factory() as s, s.begin():
        insight = s.get_one(StandAIInsight, iid)
        assert insight.status == InsightStatus.DONE
        assert insight.status_reason == "Refill requested"
    assert _refills(factory) == 1


def test_an_insight_closed_meanwhile_does_not_stop_the_refill(
    factory: SessionFactory, catalog: list[CatalogProduct], stand: StandFixture
) -> None:
    iid = _insight(factory, stand, InsightStatus.DISMISSED)
    with factory() as s:
        refills.request_refill(s, REP, stand.stand_id, {stand.product_ids[0]: 6}, insight_id=iid)
    with factory() as s, s.begin():
        assert s.get_one(StandAIInsight, iid).status == InsightStatus.DISMISSED
    assert _refills(factory) == 1


def test_an_insight_about_another_stand_refuses_the_whole_request(
    factory: SessionFactory, catalog: list[CatalogProduct], stand: StandFixture
) -> None:
    with factory() as s:
        other = make_stand(s, name="Café Central")
    iid = _insight(factory, other, InsightStatus.NEW)
    with factory() as s, pytest.raises(ValidationError, match="not about this stand"):
        refills.request_refill(s, REP, stand.stand_id, {stand.product_ids[0]: 6}, insight_id=iid)
    assert _refills(factory) == 0  # nothing written: one transaction
    with factory() as s, s.begin():
        assert s.get_one(StandAIInsight, iid).status == InsightStatus.NEW
