"""The same models, migrations and services on a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select, text

from app.db import SessionFactory, current_revision, head_revision, open_db
from app.models import Base, ChangeLog, InventoryMovement, Product, StandOrder
from app.reference import seed_reference_data
from app.services import inventory, refills, sales
from tests.conftest import MANAGER, REP, make_stand


@pytest.fixture
def pg_factory(pg_server_url: str) -> Iterator[SessionFactory]:
    factory = open_db(pg_server_url)
    yield factory
    engine = factory.kw["bind"]
    with engine.begin() as conn:  # leave an empty database for the next test
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


def test_migrations_reach_head_and_match_models(pg_factory: SessionFactory) -> None:
    engine = pg_factory.kw["bind"]
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    assert diff == []


def test_services_run_on_postgres(pg_factory: SessionFactory) -> None:
    with pg_factory() as s, s.begin():
        seed_reference_data(s)
        for i in range(12):
            s.add(
                Product(
                    sku=f"PG-{i}",
                    name=f"P{i}",
                    category=("a", "b")[i % 2],
                    list_price=Decimal("2.35") + i,
                    unit_cost=Decimal("1.3333"),
                    pack_size=1,
                )
            )
    with pg_factory() as s:
        st = make_stand(s)
        req = refills.request_refill(s, REP, st.stand_id)
        refills.approve_refill(s, MANAGER, req.refill_id)
        refills.schedule_refill(
            s, MANAGER, req.refill_id, date.today() + timedelta(days=1), "Dealer"
        )
        delivered = refills.deliver_refill(s, REP, req.refill_id)
        pid = delivered.lines[0].product_id
        delivered_qty = delivered.lines[0].delivered or 0
        sale = sales.record_sale(
            s, REP, st.stand_id, [sales.SaleLine(pid, 3, Decimal("2.35"))], "card"
        )
        assert sale.total == Decimal("7.05")
        assert inventory.verify_on_hand(s) == []
        with s.begin():
            total = s.scalar(select(func.sum(StandOrder.total)))
            moved = s.scalar(
                select(func.sum(InventoryMovement.quantity)).where(
                    InventoryMovement.product_id == pid
                )
            )
            seqs = list(s.scalars(select(ChangeLog.device_seq).order_by(ChangeLog.device_seq)))
            cost = s.scalar(select(Product.unit_cost).where(Product.id == pid))
    assert total == Decimal("7.05")
    assert delivered_qty > 3
    assert moved == delivered_qty - 3
    assert seqs == list(range(1, len(seqs) + 1))
    assert cost == Decimal("1.3333")
