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
from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    ARRAY,
    ColumnDefault,
    ColumnElement,
    Engine,
    Table,
    Text,
    any_,
    create_engine,
    event,
    func,
    insert,
    literal,
    select,
    text,
)
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker
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


# --------------------------------------------------------------------------- bulk inserts

#: How to make each parameter of a bulk insert, in order: the column's key, its type's
#: bind processor and, for a column the rows leave out, its Python-side default.
_Param = tuple[str, Callable[[Any], Any] | None, Callable[[], Any] | None]
#: By (dialect name, table, the rows' keys): the statement and its parameters, or None.
_DRIVER_INSERTS: dict[tuple[str, Table, tuple[str, ...]], tuple[str, list[_Param]] | None] = {}


def _driver_insert(
    dialect: Dialect, table: Table, keys: tuple[str, ...]
) -> tuple[str, list[_Param]] | None:
    """The statement for rows with ``keys`` (SQLite: an INSERT with positional
    placeholders; PostgreSQL: a COPY), over those keys and the columns they leave out that
    have a Python-side default, and how to make each parameter. None where such a default
    is not a plain value or function (SQL, a sequence) or a key is not a column."""
    cache_key = (dialect.name, table, keys)
    if cache_key in _DRIVER_INSERTS:
        return _DRIVER_INSERTS[cache_key]
    params: list[_Param] = []
    makeable = set(keys) <= set(table.c.keys())
    for column in table.columns:
        default = column.default
        processor = column.type._cached_bind_processor(dialect)
        if column.key in keys:
            params.append((column.key, processor, None))
        elif default is None:
            continue  # NULL, or the database's own default
        elif isinstance(default, ColumnDefault) and (default.is_scalar or default.is_callable):
            arg = default.arg
            # SQLAlchemy wraps a default function to take an execution context.
            make = (lambda a=arg: a(None)) if default.is_callable else (lambda a=arg: a)
            params.append((column.key, processor, make))
        else:
            makeable = False
            break
    made: tuple[str, list[_Param]] | None = None
    if makeable:
        quote = dialect.identifier_preparer
        names = ", ".join(quote.format_column(table.c[key]) for key, _, _ in params)
        into = f"{quote.format_table(table)} ({names})"
        if dialect.name == "postgresql":
            made = (f"COPY {into} FROM STDIN", params)
        else:
            made = (f"INSERT INTO {into} VALUES ({', '.join('?' * len(params))})", params)
    _DRIVER_INSERTS[cache_key] = made
    return made


def insert_many(connection: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) into ``table`` in one go.

    Each value goes through its column type's bind processor and left-out columns get
    their Python-side defaults, as with SQLAlchemy's ``insert``; but the rows go straight
    to the driver: on SQLite as tuples to ``executemany``, on PostgreSQL through
    ``COPY ... FROM STDIN``. SQLAlchemy's own path builds every row's parameter dict in
    Python first, and on PostgreSQL plans multi-row VALUES statements; for 20,000 pushed
    ops (bench/bench_sync.py) that took SQLite from about 2,900 to 3,300 ops/s and
    PostgreSQL from 2,600 to 3,300 (docs/sync-design.md). A default this cannot make, and
    other databases, take SQLAlchemy's path."""
    if not rows:
        return
    dialect = connection.dialect
    made = None
    if dialect.name in ("sqlite", "postgresql"):
        made = _driver_insert(dialect, table, tuple(rows[0]))
    if made is None:
        connection.execute(insert(table), list(rows))
        return
    statement, params = made
    # Column by column: the loops over rows run in C but for the processors themselves.
    columns: list[Iterable[Any]] = []
    for name, processor, default in params:
        values: Iterable[Any] = (
            map(itemgetter(name), rows) if default is None else [default() for _ in rows]
        )
        columns.append(values if processor is None else map(processor, values))
    if dialect.name == "postgresql":
        _copy(connection, statement, zip(*columns, strict=True))
    else:
        connection.exec_driver_sql(statement, list(zip(*columns, strict=True)))


def _copy(connection: Connection, statement: str, rows: Iterable[tuple[Any, ...]]) -> None:
    """``COPY ... FROM STDIN`` of ``rows`` through the driver (psycopg) in the connection's
    transaction; a driver error is raised as SQLAlchemy raises it (an ``IntegrityError``
    for a unique violation, which the server's writes retry)."""
    dbapi = connection.dialect.loaded_dbapi
    driver: Any = connection.connection.driver_connection
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
    except dbapi.Error as error:
        raise DBAPIError.instance(statement, None, error, dbapi.Error) from error


def id_in(
    column: ColumnElement[Any] | InstrumentedAttribute[Any], ids: Sequence[str], dialect: str
) -> ColumnElement[bool]:
    """``column IN ids`` for a few thousand ids. On PostgreSQL one parameter instead of an IN
    list of thousands, so the statement's text is the same every time (parsed and planned
    quickly); the ids go as one comma-separated text that the server splits (the driver
    dumps a Python list element by element, slowly for thousands), or as an array when an
    id holds a comma (no device makes such ids). On SQLite (at most 32,766 parameters per
    statement) the caller keeps lists below that."""
    if dialect != "postgresql":
        return column.in_(ids)
    if any("," in value for value in ids):
        return column == any_(literal(list(ids), ARRAY(Text())))
    return column == any_(func.string_to_array(literal(",".join(ids), Text()), ","))
