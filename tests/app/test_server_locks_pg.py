"""Concurrency on a real PostgreSQL server, as several server workers meet it: conflicting
refill transitions take turns (row locks), low-stock calls converge on one refill (the stand
lock), and processes opening a new database at once migrate it and create its device once
(advisory locks).

Each test gets its own database on one throwaway cluster (the session's, see
tests/conftest.py); the cluster is skipped, with the reason, where PostgreSQL is absent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import pytest
from sqlalchemy import create_engine, func, select, text

from app.db import SessionFactory, current_revision, head_revision, open_db
from app.errors import InvalidTransition, LimitExceeded
from app.ids import new_id
from app.models import (
    InventoryMovement,
    LocalDevice,
    Product,
    RefillStatus,
    StandLocation,
    StandRefillOrder,
)
from app.reference import seed_reference_data
from app.services import onboarding, refills
from app.services.automation import LowStockResult, on_low_stock
from tests.conftest import ADMIN, MANAGER, REP, StandFixture, make_stand

T = TypeVar("T")


@pytest.fixture
def new_db_url(pg_server_url: str) -> Iterator[str]:
    """The URL of a new, empty database on the test cluster (dropped afterwards)."""
    name = f"locks_{new_id().replace('-', '')[-12:]}"
    server = pg_server_url.rsplit("/", 1)[0]
    admin = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{server}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg(new_db_url: str) -> Iterator[SessionFactory]:
    """A migrated database with the reference data, 12 products and room for 10 workers."""
    factory = open_db(new_db_url)
    with factory() as s, s.begin():
        seed_reference_data(s)
        for i in range(12):
            s.add(
                Product(
                    sku=f"PG-{i}",
                    name=f"P{i}",
                    category=("a", "b")[i % 2],
                    list_price=Decimal("2.50") + i,
                    unit_cost=Decimal("1.2000"),
                    pack_size=1,
                )
            )
    yield factory
    factory.kw["bind"].dispose()


def race(n: int, work: Callable[[int], T]) -> list[T | BaseException]:
    """Run ``work(i)`` in ``n`` threads released together; each result or exception."""
    barrier = threading.Barrier(n)
    results: list[T | BaseException] = [RuntimeError("did not run")] * n

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = work(i)
        except BaseException as exc:  # the test inspects every outcome
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    return results


def split(results: list[Any]) -> tuple[list[Any], list[BaseException]]:
    ok = [r for r in results if not isinstance(r, BaseException)]
    return ok, [r for r in results if isinstance(r, BaseException)]


def status_of(factory: SessionFactory, refill_id: str) -> RefillStatus:
    with factory() as s, s.begin():
        return s.get_one(StandRefillOrder, refill_id).status


#: Pairs of transitions of a requested refill that cannot both happen (reject then approve
#: is refused, but approve then reject is allowed, so that pair is no conflict).
CONFLICTS: list[tuple[str, str, set[RefillStatus]]] = [
    ("reject", "cancel", {RefillStatus.REJECTED, RefillStatus.CANCELLED}),
    ("approve", "approve", {RefillStatus.APPROVED}),
    ("reject", "reject", {RefillStatus.REJECTED}),
]


def _take(factory: SessionFactory, action: str, rid: str) -> RefillStatus:
    with factory() as s:
        if action == "approve":
            return refills.approve_refill(s, MANAGER, rid).status
        if action == "reject":
            return refills.reject_refill(s, MANAGER, rid, "Not now").status
        return refills.cancel_refill(s, MANAGER, rid, "Not needed").status


@pytest.mark.parametrize(("first", "second", "outcomes"), CONFLICTS)
def test_conflicting_transitions_at_once_one_wins(
    pg: SessionFactory, first: str, second: str, outcomes: set[RefillStatus]
) -> None:
    with pg() as s:
        st = make_stand(s)
        ids = [refills.request_refill(s, REP, st.stand_id).refill_id for _ in range(3)]
    for rid in ids:
        ok, failed = split(race(2, lambda i, rid=rid: _take(pg, (first, second)[i], rid)))
        assert len(ok) == 1, failed
        assert [type(e) for e in failed] == [InvalidTransition], failed
        assert ok[0] in outcomes
        assert status_of(pg, rid) == ok[0]


def test_two_deliveries_at_once_deliver_once(pg: SessionFactory) -> None:
    with pg() as s:
        st = make_stand(s)
        rid = refills.request_refill(s, REP, st.stand_id).refill_id
        refills.approve_refill(s, MANAGER, rid)
        refills.schedule_refill(s, MANAGER, rid, date.today() + timedelta(days=1), "Dealer")

    def deliver(i: int) -> RefillStatus:
        with pg() as s:
            return refills.deliver_refill(s, (REP, ADMIN)[i], rid).status

    ok, failed = split(race(2, deliver))
    assert ok == [RefillStatus.DELIVERED]
    assert [type(e) for e in failed] == [InvalidTransition], failed
    with pg() as s, s.begin():
        moved = s.scalar(
            select(func.count())
            .select_from(InventoryMovement)
            .where(InventoryMovement.ref_id == rid)
        )
        lines = len(s.get_one(StandRefillOrder, rid).items)
    assert moved == lines  # one movement per line, not two


def refills_of(factory: SessionFactory, stand: StandFixture) -> list[StandRefillOrder]:
    with factory() as s, s.begin():
        rows = list(
            s.scalars(select(StandRefillOrder).where(StandRefillOrder.stand_id == stand.stand_id))
        )
        for r in rows:
            _ = r.items
        return rows


def test_ten_low_stock_calls_at_once_make_one_refill(pg: SessionFactory) -> None:
    with pg() as s:
        st = make_stand(s)
    pid = st.product_ids[0]

    def low(i: int) -> LowStockResult:
        with pg() as s:
            return on_low_stock(s, REP, st.stand_id, pid, on_hand=0)

    ok, failed = split(race(10, low))
    assert failed == []
    assert sorted(r.outcome for r in ok) == ["created"] + ["existing"] * 9
    [refill] = refills_of(pg, st)
    assert {r.refill.refill_id for r in ok} == {refill.id}
    assert [i.product_id for i in refill.items] == [pid]


def test_low_stock_of_ten_skus_at_once_fills_one_refill(pg: SessionFactory) -> None:
    with pg() as s:
        st = make_stand(s)
    products = st.product_ids[:10]

    def low(i: int) -> LowStockResult:
        with pg() as s:
            return on_low_stock(s, REP, st.stand_id, products[i])

    ok, failed = split(race(10, low))
    assert failed == []
    assert sorted(r.outcome for r in ok) == ["added"] * 9 + ["created"]
    [refill] = refills_of(pg, st)
    assert sorted(i.product_id for i in refill.items) == sorted(products)
    assert sorted(i.line_no for i in refill.items) == list(range(1, 11))


def test_stands_added_at_once_keep_the_package_limit(pg: SessionFactory) -> None:
    with pg() as s:
        st = make_stand(s, "growth")  # up to 3 stands; it has 1

    def add(i: int) -> str:
        with pg() as s:
            return onboarding.add_stand(
                s,
                REP,
                st.partner_id,
                onboarding.StandInput(
                    name=f"Stand {i}",
                    address="Weg 1",
                    city="Berlin",
                    location_type="kiosk",
                    capacity_units=60,
                ),
            ).stand_id

    ok, failed = split(race(4, add))
    assert len(ok) == 2
    assert [type(e) for e in failed] == [LimitExceeded] * 2, failed
    with pg() as s, s.begin():
        count = s.scalar(
            select(func.count())
            .select_from(StandLocation)
            .where(StandLocation.partner_id == st.partner_id)
        )
    assert count == 3


def test_workers_opening_a_new_database_at_once(new_db_url: str) -> None:
    def start(i: int) -> str:
        factory = open_db(new_db_url, device_name=f"worker-{i}")
        try:
            with factory() as s, s.begin():
                return str(s.scalar(select(LocalDevice.id)))
        finally:
            factory.kw["bind"].dispose()

    ok, failed = split(race(4, start))
    assert failed == []
    assert len(set(ok)) == 1  # every worker found the same device
    engine = create_engine(new_db_url)
    try:
        assert current_revision(engine) == head_revision()
        with engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(LocalDevice)) == 1
    finally:
        engine.dispose()
