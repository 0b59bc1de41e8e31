"""The Alembic migrations build exactly the schema the models declare, on a real SQLite file."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.exc import IntegrityError

import app.db as db
from app.models import Base, LocalDevice, Product
from app.reference import seed_reference_data


def url_of(path: Path) -> str:
    return f"sqlite:///{path}"


def engine_of(factory: db.SessionFactory) -> Engine:
    engine = factory.kw["bind"]
    assert isinstance(engine, Engine)
    return engine


def model_diff(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, Base.metadata))


def user_tables(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return {t for t in inspect(conn).get_table_names() if t != "alembic_version"}


def downgrade(engine: Engine, revision: str) -> None:
    cfg = db.alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def test_head_is_a_single_known_revision() -> None:
    head = db.head_revision()
    assert head is not None
    assert head == "0010"


def test_open_db_upgrades_an_empty_database_to_head(tmp_path: Path) -> None:
    path = tmp_path / "new" / "stand.db"  # the folder does not exist yet
    factory = db.open_db(url_of(path))
    try:
        engine = engine_of(factory)
        assert path.exists()
        assert db.current_revision(engine) == db.head_revision()
        assert user_tables(engine) == set(Base.metadata.tables)
        assert model_diff(engine) == []
    finally:
        engine_of(factory).dispose()


def test_upgrade_on_a_fresh_engine(tmp_path: Path) -> None:
    engine = db.create_db_engine(url_of(tmp_path / "stand.db"))
    try:
        assert db.current_revision(engine) is None
        db.upgrade(engine)
        assert db.current_revision(engine) == db.head_revision()
        assert model_diff(engine) == []
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == db.BUSY_TIMEOUT_MS
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
    finally:
        engine.dispose()


def test_models_match_migrations_including_constraints(tmp_path: Path) -> None:
    """compare_metadata does not look at CHECK constraints; compare their names directly."""
    engine = db.create_db_engine(url_of(tmp_path / "stand.db"))
    try:
        db.upgrade(engine)
        with engine.connect() as conn:
            insp = inspect(conn)
            for table in Base.metadata.sorted_tables:
                declared = {
                    c.name
                    for c in table.constraints
                    if c.__class__.__name__ == "CheckConstraint" and c.name
                }
                found = {c["name"] for c in insp.get_check_constraints(table.name)}
                assert declared <= found, (table.name, declared - found)
                declared_uq = {
                    tuple(c.columns.keys())
                    for c in table.constraints
                    if c.__class__.__name__ == "UniqueConstraint"
                }
                declared_uq |= {(c.name,) for c in table.columns if c.unique}
                found_uq = {
                    tuple(u["column_names"]) for u in insp.get_unique_constraints(table.name)
                }
                assert declared_uq <= found_uq, (table.name, declared_uq - found_uq)
    finally:
        engine.dispose()


def test_reopening_is_a_no_op_and_keeps_data(tmp_path: Path) -> None:
    url = url_of(tmp_path / "stand.db")
    first = db.open_db(url, device_name="tablet-1")
    with first() as s, s.begin():
        seed_reference_data(s)
        s.add(
            Product(
                sku="KEEP-1", name="Kept", category="snacks", list_price=2, unit_cost=1, pack_size=1
            )
        )
    device = db.ensure_device(first)
    engine_of(first).dispose()

    second = db.open_db(url, device_name="tablet-2")
    try:
        engine = engine_of(second)
        assert db.current_revision(engine) == db.head_revision()
        with second() as s, s.begin():
            assert s.scalars(select(Product.sku)).all() == ["KEEP-1"]
            devices = s.scalars(select(LocalDevice)).all()
        assert [(d.id, d.name) for d in devices] == [(device, "tablet-1")]
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    finally:
        engine_of(second).dispose()


def test_device_id_is_created_once_per_database(tmp_path: Path) -> None:
    url_a, url_b = url_of(tmp_path / "a.db"), url_of(tmp_path / "b.db")
    ids = []
    for _ in range(3):
        factory = db.open_db(url_a)
        ids.append(db.ensure_device(factory))
        ids.append(db.ensure_device(factory))
        engine_of(factory).dispose()
    assert len(set(ids)) == 1
    with closing(sqlite3.connect(tmp_path / "a.db")) as raw:
        assert raw.execute("SELECT count(*), min(last_seq) FROM local_device").fetchone() == (1, 0)
    other = db.open_db(url_b)
    try:
        assert db.ensure_device(other) != ids[0]  # another database is another device
    finally:
        engine_of(other).dispose()


def test_open_without_migrate_on_migrated_db(tmp_path: Path) -> None:
    url = url_of(tmp_path / "stand.db")
    first = db.open_db(url)
    device = db.ensure_device(first)
    engine_of(first).dispose()
    factory = db.open_db(url, migrate=False)
    try:
        assert db.ensure_device(factory) == device
    finally:
        engine_of(factory).dispose()


def test_downgrade_to_base_and_upgrade_again(tmp_path: Path) -> None:
    engine = db.create_db_engine(url_of(tmp_path / "stand.db"))
    try:
        db.upgrade(engine)
        assert user_tables(engine) == set(Base.metadata.tables)
        downgrade(engine, "base")
        assert db.current_revision(engine) is None
        assert user_tables(engine) == set()
        with engine.connect() as conn:
            indexes = (
                conn.exec_driver_sql(
                    "SELECT name FROM sqlite_master WHERE type = 'index' "
                    "AND name NOT LIKE 'sqlite_%'"
                )
                .scalars()
                .all()
            )
        assert indexes == []
        db.upgrade(engine)
        assert db.current_revision(engine) == db.head_revision()
        assert model_diff(engine) == []
    finally:
        engine.dispose()


def test_migrated_schema_enforces_foreign_keys_and_checks(tmp_path: Path) -> None:
    """The constraints from the migration are live on every connection of the engine."""
    factory = db.open_db(url_of(tmp_path / "stand.db"))
    engine = engine_of(factory)
    try:
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO stand_inventory (id, stand_id, product_id, par_level, "
                    "reorder_point, capacity, on_hand, active, created_at, updated_at) VALUES "
                    "('x', 'no-stand', 'no-product', 1, 0, 1, 0, 1, '2030-01-01', '2030-01-01')"
                )
            )
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO product (id, sku, name, category, list_price, unit_cost, "
                    "pack_size, active, created_at, updated_at) "
                    "VALUES ('p', 'S', 'n', 'c', 1, 1, 0, 1, '2030-01-01', '2030-01-01')"
                )
            )
    finally:
        engine.dispose()


def test_0005_keeps_existing_ops_with_v1_envelope_defaults(tmp_path: Path) -> None:
    """Ops written before envelope v2 read as 'nothing seen, pending from themselves'."""
    engine = db.create_db_engine(url_of(tmp_path / "old.db"))
    try:
        command.upgrade(db.alembic_config(url_of(tmp_path / "old.db")), "0004")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO local_device (id, name, last_seq, created_at) "
                    "VALUES ('d', '', 1, '2026-01-01 00:00:00')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO change_log (op_id, device_id, device_seq, op_type, entity_id, "
                    "payload, schema_version, actor, created_at, status) VALUES "
                    "('o', 'd', 1, 'sale.record', 'e', '{}', 1, 'anna', '2026-01-01 00:00:00', "
                    "'pending')"
                )
            )
        db.upgrade(engine)
        with engine.begin() as conn:
            row = conn.execute(
                text(
                    "SELECT base_seq, pending_from_seq, amended, attempts, actor_role "
                    "FROM change_log"
                )
            ).one()
        assert tuple(row) == (0, None, 0, 0, None)
        assert {
            "sync_state",
            "sync_device",
            "sync_received_op",
            "sync_dead_letter",
            "sync_review",
        } <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
