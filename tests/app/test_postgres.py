"""The same models, migrations and services on a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError

from app.db import (
    SessionFactory,
    create_db_engine,
    current_revision,
    head_revision,
    insert_many,
    open_db,
)
from app.ids import is_valid_id, new_id
from app.models import Base, ChangeLog, InventoryMovement, Product, StandOrder
from app.reference import seed_reference_data
from app.services import inventory, refills, sales
from app.services.apply import bulk
from tests.app.test_types_and_db import ROWS, ROWS_META, sample_rows
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


def test_insert_many_copies_what_sqlalchemy_inserts(pg_server_url: str) -> None:
    """On PostgreSQL insert_many goes through COPY: the stored rows are those SQLAlchemy's
    insert stores (types converted, Python-side defaults filled), and a unique violation
    is raised as SQLAlchemy raises it (the server's writes retry on its SQLSTATE)."""
    engine = create_db_engine(pg_server_url)
    rows = sample_rows()
    defaulted = [{"money": r["money"], "kind": r["kind"], "n": r["n"] + 10} for r in rows]
    try:
        stored = []
        for write in (
            lambda conn, rs: conn.execute(insert(ROWS), rs),
            lambda conn, rs: insert_many(conn, ROWS, rs),
        ):
            ROWS_META.drop_all(engine)
            ROWS_META.create_all(engine)
            with engine.begin() as conn:
                write(conn, rows)
                write(conn, defaulted)
            with engine.connect() as conn:
                got = [tuple(r) for r in conn.execute(select(ROWS).order_by(ROWS.c.n))]
            assert all(is_valid_id(r[0]) for r in got[7:])
            stored.append([r[1:] if r[5] > 10 else r for r in got])
        assert len(stored[0]) == 14
        assert stored[0] == stored[1]
        with pytest.raises(IntegrityError) as raised, engine.begin() as conn:
            insert_many(conn, ROWS, rows[:1])
        assert getattr(raised.value.orig, "sqlstate", None) == "23505"
        with engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(ROWS)) == 14
    finally:
        ROWS_META.drop_all(engine)
        engine.dispose()


def test_existing_finds_held_ids_among_many(pg_factory: SessionFactory) -> None:
    """The bulk apply's id check (one text parameter on PostgreSQL, IN lists of 900 on
    SQLite): exactly the held ids, among more unknown ones than one IN list holds; an id
    with a comma in it (sent as an array instead) neither matches nor splits."""
    held = []
    with pg_factory() as s, s.begin():
        for i in range(5):
            product = Product(
                sku=f"EX-{i}",
                name=f"E{i}",
                category="a",
                list_price=Decimal("1.00"),
                unit_cost=Decimal("0.50"),
                pack_size=1,
            )
            s.add(product)
            s.flush()
            held.append(product.id)
    unknown = [new_id() for _ in range(2000)]
    with pg_factory() as s, s.begin():
        assert bulk.existing(s, Product, [*unknown, *held, held[0]]) == set(held)
        assert bulk.existing(s, Product, unknown) == set()
        assert bulk.existing(s, Product, []) == set()
        # Split at its comma, this id would name two held products.
        glued = f"{held[1]},{held[2]}"
        assert bulk.existing(s, Product, [glued, held[3]]) == {held[3]}
        assert bulk.existing(s, Product, [glued]) == set()
