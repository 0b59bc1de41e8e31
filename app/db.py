"""Opening the database: engine settings, automatic migrations, the device identity.

``open_db(url)`` is the one way in. It creates or upgrades the schema with the Alembic
migrations shipped in ``app/migrations``, makes sure this database has a device id, and
returns a :class:`~sqlalchemy.orm.sessionmaker` whose sessions never begin a transaction
implicitly (``autobegin=False``): every unit of work says ``with session.begin():``, which
on SQLite is ``BEGIN IMMEDIATE``, so a write never fails half-way on a lock upgrade.

SQLite settings, and why:
- ``journal_mode=WAL``: readers do not block the writer (the GUI reads while sync writes).
- ``synchronous=FULL``: a committed sale survives a power cut on a tablet.
- ``foreign_keys=ON``: SQLite does not enforce them otherwise.
- ``busy_timeout``: wait for another writer instead of failing at once.
- ``cache_size``, ``mmap_size``: KPI queries over a year of history stay in memory.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from app.ids import new_id
from app.models import LocalDevice

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
BUSY_TIMEOUT_MS = 15_000

SessionFactory = sessionmaker[Session]


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # Take transaction control away from pysqlite; the "begin" hook below issues BEGIN.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        # A program's history runs to hundreds of MB: keep a useful part of it in memory
        # (64 MiB page cache per connection, reads through a 256 MiB memory map).
        cur.execute("PRAGMA cache_size=-65536")
        cur.execute("PRAGMA mmap_size=268435456")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")


def create_db_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with this project's settings for ``url`` (SQLite or PostgreSQL)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # One connection per checkout: SQLite connections are cheap, and a pool would keep
        # file handles open after the app closes the database.
        kwargs.setdefault("poolclass", NullPool)
        engine = create_engine(url, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


#: Keys of the PostgreSQL advisory locks that let one server process at a time migrate the
#: database or create its device row, when several start at once on one database. Fixed
#: numbers (any bigint; these spell "StandOS" and a suffix) so every process agrees.
MIGRATION_LOCK_KEY = 0x5374616E644F5301
DEVICE_LOCK_KEY = 0x5374616E644F5302


def _advisory_xact_lock(conn: Connection, key: int) -> None:
    """Wait for, and hold until the transaction ends, the advisory lock ``key`` (PostgreSQL
    only: SQLite's BEGIN IMMEDIATE already lets one writer in at a time)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` in one transaction.

    On PostgreSQL the transaction first takes an advisory lock: of several processes
    starting at once, one migrates while the others wait, then find the schema current."""
    cfg = alembic_config()
    with engine.begin() as conn:
        _advisory_xact_lock(conn, MIGRATION_LOCK_KEY)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def ensure_device(factory: SessionFactory, name: str = "") -> str:
    """This database's device id, created on first open (exactly one row, even when
    several server processes open a new PostgreSQL database at once)."""
    with factory() as session, session.begin():
        device = session.scalars(select(LocalDevice)).first()
        if device is None:
            # Another process may be creating it: take turns, then look again.
            _advisory_xact_lock(session.connection(), DEVICE_LOCK_KEY)
            device = session.scalars(select(LocalDevice)).first()
        if device is None:
            device = LocalDevice(id=new_id(), name=name or os.uname().nodename, last_seq=0)
            session.add(device)
        return device.id


def make_sessionmaker(engine: Engine) -> SessionFactory:
    # expire_on_commit=False: services hand back values built inside the transaction, and
    # nothing should trigger a lazy reload after commit from another thread.
    return sessionmaker(bind=engine, autobegin=False, expire_on_commit=False)


def read_sessionmaker(factory: SessionFactory) -> SessionFactory:
    """Sessions for read-only work: a deferred BEGIN that does not take the write lock."""
    engine = factory.kw["bind"]
    assert isinstance(engine, Engine)
    return make_sessionmaker(engine.execution_options(sqlite_begin="DEFERRED"))


def open_db(url: str, *, migrate: bool = True, device_name: str = "") -> SessionFactory:
    """Open (creating or upgrading) the database at ``url`` and return its session factory."""
    engine = create_db_engine(url)
    if migrate:
        upgrade(engine)
    factory = make_sessionmaker(engine)
    ensure_device(factory, device_name)
    return factory
