"""Column types, record ids, the business rules and the SQLite settings of app/db.py."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Enum,
    Integer,
    MetaData,
    String,
    Table,
    event,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, InvalidRequestError, OperationalError, StatementError
from sqlalchemy.orm import Session

from app import rules
from app.db import (
    BUSY_TIMEOUT_MS,
    SessionFactory,
    _driver_insert,
    create_db_engine,
    current_revision,
    head_revision,
    insert_many,
    make_sessionmaker,
    open_db,
    read_sessionmaker,
)
from app.ids import id_from_parts, is_valid_id, new_id
from app.models import ChangeLog, LocalDevice, Product, RefillStatus, StandInventory
from app.services.base import record_op
from app.types import ScaledDecimal, UTCDateTime

# --------------------------------------------------------------------------- database

META = MetaData()
AMOUNTS = Table(
    "amounts",
    META,
    Column("id", Integer, primary_key=True),
    Column("money", ScaledDecimal(18, 4)),
    Column("rate", ScaledDecimal(10, 6)),
    Column("at", UTCDateTime()),
)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = create_db_engine(f"sqlite:///{tmp_path / 'types.db'}")
    META.create_all(eng)
    yield eng
    eng.dispose()


def put(engine: Engine, **values: Any) -> None:
    with engine.begin() as conn:
        conn.execute(insert(AMOUNTS).values(**values))


def stored(engine: Engine, column: str) -> list[tuple[str, Any]]:
    """(SQLite storage class, raw value) of a column, as the file holds it."""
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.exec_driver_sql(
                f"SELECT typeof({column}), {column} FROM amounts ORDER BY id"
            )
        ]


# --------------------------------------------------------------------------- ScaledDecimal


@pytest.mark.parametrize(
    "value",
    [
        Decimal("12.35"),
        Decimal("0.0001"),
        Decimal("-7.5"),
        Decimal("0"),
        Decimal("0.3333"),
        Decimal("123456789.1234"),
        42,
        "19.99",
    ],
)
def test_scaled_decimal_round_trip(engine: Engine, value: Any) -> None:
    put(engine, money=value)
    with engine.connect() as conn:
        back = conn.scalar(select(AMOUNTS.c.money))
    assert isinstance(back, Decimal)
    assert back == Decimal(value)
    assert back.as_tuple().exponent == -4
    # On SQLite the amount is an exact integer count of 0.0001 units.
    assert stored(engine, "money") == [("integer", int(Decimal(value) * 10_000))]


@pytest.mark.parametrize(
    "value",
    [
        Decimal("999999999999.9999"),  # the largest amount app.services.base.to_money accepts
        Decimal("-999999999999.9999"),
        Decimal("900719925474.0993"),  # 2**53 + 1 units
    ],
)
def test_scaled_decimal_is_exact_for_large_amounts(engine: Engine, value: Decimal) -> None:
    put(engine, money=value)
    with engine.connect() as conn:
        assert conn.scalar(select(AMOUNTS.c.money)) == value
    assert stored(engine, "money") == [("integer", int(value * 10_000))]


def test_scaled_decimal_refuses_floats(engine: Engine) -> None:
    col = ScaledDecimal(18, 4)
    dialect = engine.dialect
    with pytest.raises(TypeError, match="never float"):
        col.process_bind_param(1.5, dialect)
    with pytest.raises(StatementError) as err:
        put(engine, money=0.1)
    assert isinstance(err.value.orig, TypeError)
    assert stored(engine, "money") == []


@pytest.mark.parametrize(
    "value",
    [
        Decimal("0.00001"),
        "1.23456",
        Decimal("NaN"),
        Decimal("Infinity"),
        "abc",
        "",
    ],
)
def test_scaled_decimal_refuses_extra_places_and_junk(engine: Engine, value: Any) -> None:
    col = ScaledDecimal(18, 4)
    with pytest.raises(ValueError, match="decimal"):
        col.process_bind_param(value, engine.dialect)
    with pytest.raises(StatementError):
        put(engine, money=value)
    assert stored(engine, "money") == []


def test_rate_keeps_six_places(engine: Engine) -> None:
    put(engine, rate=Decimal("0.125"))
    put(engine, rate=Decimal("1.123456"))
    with engine.connect() as conn:
        assert list(conn.scalars(select(AMOUNTS.c.rate).order_by(AMOUNTS.c.id))) == [
            Decimal("0.125"),
            Decimal("1.123456"),
        ]
    with pytest.raises(StatementError):
        put(engine, rate=Decimal("0.1234567"))


def test_scaled_decimal_none_is_null(engine: Engine) -> None:
    put(engine, money=None)
    with engine.connect() as conn:
        assert conn.scalar(select(AMOUNTS.c.money)) is None


def test_sum_in_sql_is_exact(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(AMOUNTS), [{"money": Decimal("0.01")} for _ in range(10_000)])
        conn.execute(insert(AMOUNTS), [{"money": Decimal("0.1")} for _ in range(3)])
    with engine.connect() as conn:
        total = conn.scalar(select(func.sum(AMOUNTS.c.money)))
        tenths = conn.scalar(
            select(func.sum(AMOUNTS.c.money)).where(AMOUNTS.c.money == Decimal("0.1"))
        )
        cents = conn.scalar(select(func.count()).where(AMOUNTS.c.money == Decimal("0.01")))
    assert isinstance(total, Decimal)
    assert total == Decimal("100.30")
    assert tenths == Decimal("0.3")  # 0.1 + 0.1 + 0.1 as floats is 0.30000000000000004
    assert cents == 10_000
    # The raw SQL sum is an integer: no float ever took part.
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT typeof(SUM(money)), SUM(money) FROM amounts").one() == (
            "integer",
            1_003_000,
        )


def test_sum_of_model_money_is_exact(factory: SessionFactory) -> None:
    with factory() as s, s.begin():
        s.add_all(
            Product(
                sku=f"C-{i}",
                name="Cent",
                category="x",
                list_price=Decimal("0.01"),
                unit_cost=Decimal("0.0033"),
            )
            for i in range(2_000)
        )
    with factory() as s, s.begin():
        assert s.scalar(select(func.sum(Product.list_price))) == Decimal("20.00")
        assert s.scalar(select(func.sum(Product.unit_cost))) == Decimal("6.6")


def test_model_refuses_float_money(factory: SessionFactory) -> None:
    def add_float_priced() -> None:
        with factory() as s, s.begin():
            s.add(
                Product(sku="F-1", name="Float", category="x", list_price=1.5, unit_cost=Decimal(1))
            )

    with pytest.raises(StatementError) as err:
        add_float_priced()
    assert isinstance(err.value.orig, TypeError)
    with factory() as s, s.begin():
        assert s.scalar(select(func.count()).select_from(Product)) == 0


# --------------------------------------------------------------------------- UTCDateTime


def test_utc_datetime_returns_aware_utc(engine: Engine) -> None:
    berlin_summer = timezone(timedelta(hours=2))
    put(engine, at=datetime(2024, 6, 30, 23, 30, tzinfo=berlin_summer))
    put(engine, at=datetime(2024, 6, 30, 21, 0, tzinfo=UTC))
    with engine.connect() as conn:
        first, second = conn.scalars(select(AMOUNTS.c.at).order_by(AMOUNTS.c.id)).all()
        ordered = conn.scalars(select(AMOUNTS.c.at).order_by(AMOUNTS.c.at)).all()
    assert first == datetime(2024, 6, 30, 21, 30, tzinfo=UTC)
    assert first.tzinfo is UTC
    assert second.tzinfo is UTC
    assert first.utcoffset() == timedelta(0)
    # Stored as naive UTC text, which sorts by instant.
    assert stored(engine, "at")[0] == ("text", "2024-06-30 21:30:00.000000")
    assert ordered == [second, first]
    with engine.connect() as conn:
        hit = conn.scalar(
            select(func.count()).where(
                AMOUNTS.c.at > datetime(2024, 6, 30, 23, 15, tzinfo=berlin_summer)
            )
        )
    assert hit == 1


def test_utc_datetime_refuses_naive_and_non_datetimes(engine: Engine) -> None:
    col = UTCDateTime()
    with pytest.raises(ValueError, match="naive"):
        col.process_bind_param(datetime(2024, 1, 1, 12, 0), engine.dialect)
    with pytest.raises(TypeError):
        col.process_bind_param("2024-01-01T12:00:00Z", engine.dialect)
    with pytest.raises(TypeError):
        col.process_bind_param(date(2024, 1, 1), engine.dialect)
    with pytest.raises(StatementError):
        put(engine, at=datetime(2024, 1, 1, 12, 0))
    assert stored(engine, "at") == []
    assert col.process_bind_param(None, engine.dialect) is None


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 11, 24, 9, 30, tzinfo=UTC),
        datetime(2026, 11, 24, 9, 30, 0, 1, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=-9))),
        datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(0))),
    ],
)
def test_utc_datetime_stores_the_text_sqlalchemy_datetime_stores(
    engine: Engine, value: datetime
) -> None:
    """UTCDateTime writes SQLite's text in one step; it must be the text SQLAlchemy's own
    DATETIME writes for the same instant, or old and new rows would not compare."""
    plain = Table("plain", MetaData(), Column("at", DateTime()))
    plain.create(engine)
    with engine.begin() as conn:
        conn.execute(insert(plain).values(at=value.astimezone(UTC).replace(tzinfo=None)))
    put(engine, at=value)
    with engine.connect() as conn:
        expected = conn.exec_driver_sql("SELECT at FROM plain").scalar_one()
        back = conn.scalar(select(AMOUNTS.c.at).where(AMOUNTS.c.at == value))
    assert stored(engine, "at") == [("text", expected)]
    assert back == value


# --------------------------------------------------------------------------- insert_many

ROWS_META = MetaData()
ROWS = Table(
    "rows",
    ROWS_META,
    Column("id", String(36), primary_key=True, default=new_id),
    Column("money", ScaledDecimal(18, 4), nullable=True),
    Column("at", UTCDateTime(), default=lambda: datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
    Column(
        "kind",
        Enum(RefillStatus, native_enum=False, values_callable=lambda e: [m.value for m in e]),
    ),
    Column("note", String(60), default="none"),
    Column("n", Integer, nullable=True),
)
#: A default that is SQL, not a value: insert_many leaves such rows to SQLAlchemy.
CLOCKED = Table(
    "clocked",
    ROWS_META,
    Column("id", Integer, primary_key=True),
    Column("stamp", String(30), default=text("'from sql'")),
)


def _raw(engine: Engine, table: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(f"SELECT * FROM {table} ORDER BY 1")]


def sample_rows() -> list[dict[str, Any]]:
    """Seven rows of ROWS: money, times in three zones, every kind, text with a tab and a
    backslash, and NULLs."""
    return [
        {
            "id": f"{n:036d}",
            "money": Decimal("12.3456") * n,
            "at": datetime(2026, 11, 24, 9, n, tzinfo=timezone(timedelta(hours=n % 3))),
            "kind": list(RefillStatus)[n % len(RefillStatus)],
            "note": None if n % 2 else f"note {n}, with a tab\tand a \\ backslash",
            "n": n,
        }
        for n in range(1, 8)
    ]


@pytest.mark.parametrize("with_defaults", [False, True])
def test_insert_many_stores_what_sqlalchemy_stores(tmp_path: Path, with_defaults: bool) -> None:
    """The driver path of insert_many writes exactly the values SQLAlchemy's insert writes:
    every type's conversion, and the Python-side defaults of the columns left out."""
    rows = sample_rows()
    if with_defaults:
        rows = [{"money": r["money"], "kind": r["kind"], "n": r["n"]} for r in rows]
    stores = []
    for name, write in (
        ("sqlalchemy", lambda conn: conn.execute(insert(ROWS), rows)),
        ("insert_many", lambda conn: insert_many(conn, ROWS, rows)),
    ):
        eng = create_db_engine(f"sqlite:///{tmp_path / name}.db")
        ROWS_META.create_all(eng)
        with eng.begin() as conn:
            write(conn)
        stored_rows = _raw(eng, "rows")
        eng.dispose()
        if with_defaults:  # the ids are new on each path: compare the rest
            assert all(is_valid_id(r[0]) for r in stored_rows)
            stored_rows = sorted(r[1:] for r in stored_rows)
        stores.append(stored_rows)
    assert len(stores[0]) == 7
    assert stores[0] == stores[1]


def test_insert_many_leaves_sql_defaults_and_bad_values_to_sqlalchemy(engine: Engine) -> None:
    ROWS_META.create_all(engine)
    with engine.begin() as conn:
        insert_many(conn, CLOCKED, [{"id": 1}, {"id": 2}])
        insert_many(conn, CLOCKED, [])
    assert _raw(engine, "clocked") == [(1, "from sql"), (2, "from sql")]
    with pytest.raises(TypeError, match="never float"), engine.begin() as conn:
        insert_many(conn, ROWS, [{"id": "a", "money": 1.5, "kind": RefillStatus.REQUESTED}])
    with pytest.raises(ValueError, match="naive"), engine.begin() as conn:
        insert_many(conn, ROWS, [{"id": "b", "at": datetime(2026, 1, 1), "kind": "requested"}])
    assert _raw(engine, "rows") == []


# --------------------------------------------------------------------------- ids


def test_new_id_is_a_time_ordered_unique_uuid7() -> None:
    before_ms = time.time_ns() // 1_000_000
    ids = [new_id() for _ in range(100_000)]
    after_ms = time.time_ns() // 1_000_000
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)  # monotonic, even within one millisecond
    for value in ids[::997] + ids[-3:]:
        u = uuid.UUID(value)
        assert str(u) == value  # canonical lowercase
        assert u.version == 7
        assert u.variant == uuid.RFC_4122
        assert is_valid_id(value)
        assert before_ms <= u.int >> 80 <= after_ms + 5


def test_new_id_is_unique_across_threads() -> None:
    out: list[list[str]] = [[] for _ in range(4)]

    def make(bucket: list[str]) -> None:
        bucket.extend(new_id() for _ in range(5_000))

    threads = [threading.Thread(target=make, args=(b,)) for b in out]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for b in out for i in b]
    assert len(set(every)) == 20_000
    assert all(b == sorted(b) for b in out)


def test_id_from_parts_is_deterministic() -> None:
    ms, rand = 1_717_000_000_123, 0x2AB_CDEF_0123_4567_89AB & ((1 << 74) - 1)
    a = id_from_parts(ms, rand)
    assert a == id_from_parts(ms, rand)
    u = uuid.UUID(a)
    assert (u.version, u.variant) == (7, uuid.RFC_4122)
    assert u.int >> 80 == ms
    assert (u.int >> 64) & 0xFFF == (rand >> 62) & 0xFFF
    assert u.int & ((1 << 62) - 1) == rand & ((1 << 62) - 1)
    assert id_from_parts(ms, rand + 1) != a
    assert id_from_parts(ms + 1, rand) > a
    assert is_valid_id(a)


@pytest.mark.parametrize(
    "value",
    [
        None,
        12,
        "",
        "not-a-uuid",
        "0190F2A4-0000-7000-8000-000000000000",
        "0190f2a40000700080000000000000000000",
        "{0190f2a4-0000-7000-8000-000000000000}",
    ],
)
def test_is_valid_id_refuses(value: object) -> None:
    assert not is_valid_id(value)


# --------------------------------------------------------------------------- rules


@pytest.mark.parametrize(
    ("value", "rounded"),
    [
        ("2.675", "2.68"),
        ("2.665", "2.67"),
        ("0.125", "0.13"),
        ("0.005", "0.01"),
        ("0.0049", "0.00"),
        ("0.9999", "1.00"),
        ("-2.665", "-2.67"),
        ("10", "10.00"),
    ],
)
def test_round_money_half_up(value: str, rounded: str) -> None:
    result = rules.round_money(Decimal(value))
    assert result == Decimal(rounded)
    assert result.as_tuple().exponent == -2


@pytest.mark.parametrize(
    ("total", "package", "tier", "points"),
    [
        ("23.80", "1.25", "1.10", 32),  # the worked example: floor(32.725)
        ("23.80", "1.25", "1.00", 29),  # floor(29.75): floor, not round
        ("43.80", "1.25", "1.00", 54),
        ("100.00", "1.50", "1.50", 225),
        ("0.99", "1.00", "1.00", 0),
        ("0", "1.50", "1.50", 0),
        ("-10.00", "1.00", "1.00", 0),
    ],
)
def test_sale_points(total: str, package: str, tier: str, points: int) -> None:
    assert rules.sale_points(Decimal(total), Decimal(package), Decimal(tier)) == points


@pytest.mark.parametrize(
    ("sales", "rate", "amount"),
    [
        ("43.80", "0.12", "5.26"),
        ("10.05", "0.10", "1.01"),
        ("0.10", "0.15", "0.02"),
        ("0", "0.12", "0.00"),
        ("1234.56", "0.125", "154.32"),
    ],
)
def test_commission(sales: str, rate: str, amount: str) -> None:
    assert rules.commission(Decimal(sales), Decimal(rate)) == Decimal(amount)


CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def test_payment_reference_format_and_check_symbol() -> None:
    for _ in range(200):
        sid = new_id()
        ref = rules.payment_reference(sid)
        assert len(ref) == 14
        assert ref.startswith("SP-")
        assert ref[11] == "-"
        assert all(c in CROCKFORD for c in ref[3:11])
        assert rules.is_valid_payment_reference(ref)
        assert rules.is_valid_payment_reference(f"  {ref.lower()} ")
        assert rules.payment_reference(sid) == ref
        assert rules.qr_payload(sid, ref) == f"standpay:v1?stand={sid}&ref={ref}"
    # Derived from the random bits: ids made in the same millisecond still differ.
    refs = {rules.payment_reference(new_id()) for _ in range(2_000)}
    assert len(refs) == 2_000


def test_payment_reference_catches_every_single_typo() -> None:
    for _ in range(20):
        ref = rules.payment_reference(new_id())
        body, check = ref[3:11], ref[12:]
        for i, original in enumerate(body):
            for c in CROCKFORD:
                if c != original:
                    typo = body[:i] + c + body[i + 1 :]
                    assert not rules.is_valid_payment_reference(f"SP-{typo}-{check}"), typo
        for i in range(2):
            for c in CROCKFORD + "*~$=U":
                if c != check[i]:
                    wrong = check[:i] + c + check[i + 1 :]
                    assert not rules.is_valid_payment_reference(f"SP-{body}-{wrong}")


def _ref_for_body(body: str) -> str:
    """The payment reference of a stand id whose low 40 bits spell ``body``."""
    value = 0
    for c in body:
        value = value * 32 + CROCKFORD.index(c)
    return rules.payment_reference(id_from_parts(1_717_000_000_000, value))


def test_payment_reference_catches_every_swap_of_neighbours() -> None:
    """The module docstring promises that any swap of two neighbours is caught."""
    missed = []
    for i in range(7):
        for a in CROCKFORD:
            for b in CROCKFORD:
                if a == b:
                    continue
                body = "3" * i + a + b + "3" * (6 - i)
                ref = _ref_for_body(body)
                assert ref[3:11] == body
                swapped = body[:i] + b + a + body[i + 2 :]
                if rules.is_valid_payment_reference(f"SP-{swapped}-{ref[12:]}"):
                    missed.append(f"{body}->{swapped}")
    assert missed == []


@pytest.mark.parametrize(
    "ref",
    [
        "",
        "SP-",
        "SP-0000000",
        "XX-00000000-00",
        "SP-00000000-",
        "SP_00000000-00",
        "SP-0000000I-00",
        "SP-0000000O-00",
        "SP-0000000U-00",
        "SP-00000000-000",
        "SP-00000000+00",
        "SP-00000000-0",
    ],
)
def test_malformed_payment_references(ref: str) -> None:
    assert not rules.is_valid_payment_reference(ref)


def test_payment_reference_known_values() -> None:
    # sum((i + 1) * value) mod 1021, as two Crockford characters, worked by hand:
    # "00000000": 0 -> "00".
    assert _ref_for_body("00000000") == "SP-00000000-00"
    # "00000001": 8 * 1 = 8 -> "08".
    assert _ref_for_body("00000001") == "SP-00000001-08"
    # "10000000": 1 * 1 = 1 -> "01" (position matters, unlike a plain sum).
    assert _ref_for_body("10000000") == "SP-10000000-01"
    # "ZZZZZZZZ": 31 * 36 = 1116; 1116 mod 1021 = 95 = 2 * 32 + 31 -> "2Z".
    assert _ref_for_body("ZZZZZZZZ") == "SP-ZZZZZZZZ-2Z"
    for ref in ("SP-00000001-08", "sp-10000000-01", " SP-ZZZZZZZZ-2Z "):
        assert rules.is_valid_payment_reference(ref)


def test_payment_reference_example_in_the_docs_is_valid() -> None:
    examples = re.findall(r"SP-[0-9A-Z]{8}-[0-9A-Z]{2}", rules.__doc__ or "")
    assert examples
    for example in examples:
        assert rules.is_valid_payment_reference(example), example


def test_payment_reference_is_uri_safe() -> None:
    for _ in range(500):
        sid = new_id()
        ref = rules.payment_reference(sid)
        assert re.fullmatch(r"SP-[0-9A-HJKMNP-TV-Z]{8}-[0-9A-HJKMNP-TV-Z]{2}", ref)
        assert rules.qr_payload(sid, ref) == f"standpay:v1?stand={sid}&ref={ref}"


# --------------------------------------------------------------------------- db settings


def pragma(factory: SessionFactory, name: str) -> Any:
    with factory() as s, s.begin():
        return s.execute(text(f"PRAGMA {name}")).scalar()


def test_sqlite_pragmas(factory: SessionFactory) -> None:
    assert pragma(factory, "journal_mode") == "wal"
    assert pragma(factory, "foreign_keys") == 1
    assert pragma(factory, "synchronous") == 2  # FULL
    assert pragma(factory, "busy_timeout") == BUSY_TIMEOUT_MS


def test_foreign_keys_are_enforced(factory: SessionFactory) -> None:
    def add_orphan() -> None:
        with factory() as s, s.begin():
            s.add(
                StandInventory(
                    stand_id=new_id(), product_id=new_id(), par_level=1, reorder_point=0, capacity=1
                )
            )

    with pytest.raises(IntegrityError, match="FOREIGN KEY"):
        add_orphan()


def test_sessions_never_autobegin(session: Session) -> None:
    with pytest.raises(InvalidRequestError, match=r"[Aa]utobegin"):
        session.execute(select(1))
    with session.begin():
        assert session.execute(select(1)).scalar() == 1
    with pytest.raises(InvalidRequestError):
        session.scalar(select(LocalDevice.id))


def _begin_and_touch(factory: SessionFactory) -> None:
    with factory() as s, s.begin():
        s.execute(select(1))


@pytest.fixture
def impatient(db_url: str, factory: SessionFactory) -> Iterator[SessionFactory]:
    """Sessions on the same file that give up on a lock after 50 ms."""
    eng = create_db_engine(db_url)

    @event.listens_for(eng, "connect")
    def _short_timeout(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA busy_timeout=50")  # runs after the project's own hook

    yield make_sessionmaker(eng)
    eng.dispose()


def test_begin_takes_the_write_lock_at_once(
    factory: SessionFactory, impatient: SessionFactory
) -> None:
    with factory() as writer, writer.begin():
        writer.execute(select(1))  # BEGIN IMMEDIATE: the write lock, even for a read
        started = time.monotonic()
        with pytest.raises(OperationalError, match="database is locked"):
            _begin_and_touch(impatient)
        assert time.monotonic() - started < 5
    _begin_and_touch(impatient)  # free again once the first transaction ended


def test_readers_do_not_block_on_the_writer(
    factory: SessionFactory, impatient: SessionFactory
) -> None:
    reader = read_sessionmaker(impatient)
    with factory() as writer, writer.begin():
        record_op(writer, "test.op", new_id(), {"n": 1}, None)
        writer.flush()
        with reader() as r, r.begin():  # DEFERRED: WAL lets it read the last commit
            assert r.scalar(select(func.count()).select_from(ChangeLog)) == 0
    with reader() as r, r.begin():
        assert r.scalar(select(func.count()).select_from(ChangeLog)) == 1


def test_second_writer_waits_for_the_first(factory: SessionFactory) -> None:
    locked = threading.Event()

    def first_writer() -> None:
        with factory() as s, s.begin():
            record_op(s, "test.first", new_id(), {}, None)
            s.flush()
            locked.set()
            time.sleep(0.3)

    t = threading.Thread(target=first_writer)
    t.start()
    assert locked.wait(5)
    started = time.monotonic()
    with factory() as s, s.begin():
        record_op(s, "test.second", new_id(), {}, None)  # BEGIN IMMEDIATE waits here
    waited = time.monotonic() - started
    t.join()
    assert waited >= 0.2
    with factory() as s, s.begin():
        assert list(
            s.execute(
                select(ChangeLog.device_seq, ChangeLog.op_type).order_by(ChangeLog.device_seq)
            )
        ) == [(1, "test.first"), (2, "test.second")]


def test_concurrent_writers_take_gap_free_sequence_numbers(factory: SessionFactory) -> None:
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for _ in range(n):
                with factory() as s, s.begin():
                    record_op(s, "test.op", new_id(), {}, None)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(15,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with factory() as s, s.begin():
        seqs = list(s.scalars(select(ChangeLog.device_seq).order_by(ChangeLog.device_seq)))
        assert seqs == list(range(1, 61))
        assert s.scalar(select(LocalDevice.last_seq)) == 60


def test_failed_transaction_leaves_no_sequence_gap(factory: SessionFactory) -> None:
    with factory() as s, s.begin():
        record_op(s, "test.kept", new_id(), {}, None)

    def fail_after_op() -> None:
        with factory() as s, s.begin():
            record_op(s, "test.lost", new_id(), {}, None)
            s.flush()
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fail_after_op()
    with factory() as s, s.begin():
        record_op(s, "test.next", new_id(), {}, None)
    with factory() as s, s.begin():
        assert list(
            s.execute(
                select(ChangeLog.device_seq, ChangeLog.op_type).order_by(ChangeLog.device_seq)
            )
        ) == [(1, "test.kept"), (2, "test.next")]


def test_open_db_is_idempotent(db_url: str, factory: SessionFactory) -> None:
    with factory() as s, s.begin():
        device = s.scalars(select(LocalDevice)).one()
        first_id = device.id
    engine = factory.kw["bind"]
    assert current_revision(engine) == head_revision() is not None
    again = open_db(db_url)
    try:
        with again() as s, s.begin():
            assert [d.id for d in s.scalars(select(LocalDevice))] == [first_id]
    finally:
        again.kw["bind"].dispose()


def test_insert_many_takes_the_driver_path_where_it_can() -> None:
    """Value and function defaults are made in Python (the driver path); a SQL default or
    a key that is not a column leaves the rows to SQLAlchemy."""
    for dialect in (sqlite.dialect(), postgresql.dialect()):
        made = _driver_insert(dialect, ROWS, ("money", "kind", "n"))
        assert made is not None
        assert [name for name, _, _ in made[1]] == ["id", "money", "at", "kind", "note", "n"]
        assert _driver_insert(dialect, CLOCKED, ("id",)) is None
        assert _driver_insert(dialect, ROWS, ("money", "nope")) is None
