"""Races: many clients at once on the same record, over real HTTP.

Every race runs twice: on SQLite (the in-thread ``live`` server, where ``BEGIN IMMEDIATE``
lets one writer in at a time) and on PostgreSQL behind ``standctl serve --workers 3`` in a
subprocess, so the racing requests are served by different processes with their own
connection pools and meet only in the database (row locks, unique keys, the server's
retries of serialization failures and unique violations); test_races_cross_processes
checks that they do.

A race: one thread per client, each with its own ``httpx.Client`` whose connection is
opened first, all released together by a barrier. Then the answers and the database are
both checked: exactly one of the racers did the work, the others were answered with its
result (a duplicate, a replay) or refused (409), and the facts (orders, movements, stock,
loyalty points, refill events) exist exactly once.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import permutations
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import SessionFactory, open_db
from app.models import (
    ChangeLog,
    IdempotencyRecord,
    InventoryMovement,
    RefillAction,
    RefillStatus,
    StandInventory,
    StandLocation,
    StandLoyaltyLedger,
    StandOrder,
    StandPartner,
    StandRefillEvent,
    StandRefillOrder,
)
from app.services.refills import OPEN_STATES, TRANSITIONS
from sync.protocol import PROBLEM_MEDIA_TYPE
from tests.sync.conftest import Live
from tests.sync.multiworker import RunningServer, multiworker_server
from tests.sync.world import World

WORKERS = 3
CLIENTS = 20
ROUNDS = 5
LOW_STOCK_CALLS = 10


# --------------------------------------------------------------------------- backends


@dataclass
class Backend:
    """A running server (one thread on SQLite, or several processes on PostgreSQL), its
    world, and a session factory on its database for checking the facts."""

    name: str
    url: str
    world: World
    factory: SessionFactory
    server: RunningServer | None = None  # the subprocess, on PostgreSQL

    def api(self, username: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.url + "/api/v1/stand",
            headers={"Authorization": f"Bearer {self.world.token[username]}"},
            timeout=120,
        )

    def read(self, fn: Callable[[Session], Any]) -> Any:
        with self.factory() as s, s.begin():
            return fn(s)


@pytest.fixture(scope="module")
def pg_multiworker(pg_world: tuple[str, World]) -> Iterator[Backend]:
    """``standctl serve --workers 3`` on the module's PostgreSQL world."""
    database_url, world = pg_world
    factory = open_db(database_url, migrate=False)
    try:
        with multiworker_server(database_url, workers=WORKERS) as server:
            health = httpx.get(server.url + "/api/v1/health", timeout=30).json()
            assert health["database"] == "postgresql", health
            yield Backend("postgresql", server.url, world, factory, server)
    finally:
        factory.kw["bind"].dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "sqlite":
        live: Live = request.getfixturevalue("live")
        return Backend("sqlite", live.url, live.world, live.factory)
    pg: Backend = request.getfixturevalue("pg_multiworker")
    return pg


# --------------------------------------------------------------------------- racing


@dataclass(frozen=True)
class Call:
    username: str
    path: str
    body: Any
    headers: dict[str, str] | None = None


def race(backend: Backend, calls: list[Call]) -> list[httpx.Response]:
    """Send ``calls`` at once, one thread and one connection each; the answers in order."""
    barrier = threading.Barrier(len(calls))

    def one(call: Call) -> httpx.Response:
        with backend.api(call.username) as client:
            # Open the connection first, so the barrier releases requests, not handshakes.
            client.get(backend.url + "/api/v1/health").raise_for_status()
            barrier.wait(timeout=60)
            return client.post(call.path, json=call.body, headers=call.headers)

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(one, calls))


def statuses(responses: list[httpx.Response]) -> list[int]:
    return sorted(r.status_code for r in responses)


def explain(responses: list[httpx.Response]) -> str:
    return "\n".join(f"{r.status_code} {r.text[:300]}" for r in responses)


# --------------------------------------------------------------------------- facts


def on_hand(backend: Backend, stand_id: str, skus: list[str]) -> dict[str, int]:
    ids = {backend.world.product[sku]: sku for sku in skus}
    rows = backend.read(
        lambda s: s.execute(
            select(StandInventory.product_id, StandInventory.on_hand).where(
                StandInventory.stand_id == stand_id, StandInventory.product_id.in_(ids)
            )
        ).all()
    )
    return {ids[pid]: int(qty) for pid, qty in rows}


def count(backend: Backend, model: Any, *where: Any) -> int:
    return int(
        backend.read(lambda s: s.scalar(select(func.count()).select_from(model).where(*where)))
    )


def refill_events(backend: Backend, refill_id: str) -> list[RefillAction]:
    return list(
        backend.read(
            lambda s: s.scalars(
                select(StandRefillEvent.action)
                .where(StandRefillEvent.refill_id == refill_id)
                .order_by(StandRefillEvent.occurred_at, StandRefillEvent.id)
            ).all()
        )
    )


def refill_status(backend: Backend, refill_id: str) -> RefillStatus:
    status = backend.read(lambda s: s.get_one(StandRefillOrder, refill_id).status)
    return RefillStatus(status)


# --------------------------------------------------------------------------- sales


def test_same_sale_from_20_clients(backend: Backend) -> None:
    """One order id posted by 20 clients at once: one sale, 19 duplicates of it."""
    w = backend.world
    stand_id = w.stand["North Kiosk A"]
    before = on_hand(backend, stand_id, ["SKU-A", "SKU-C"])
    order_id = str(uuid.uuid4())
    body = {
        "order_id": order_id,
        "stand_id": stand_id,
        "payment_method": "cash",
        "lines": [{"product": "SKU-A", "quantity": 2}, {"product": "SKU-C", "quantity": 1}],
    }
    responses = race(backend, [Call("rep.anna", "/sales-record", body)] * CLIENTS)

    assert statuses(responses) == [200] * (CLIENTS - 1) + [201], explain(responses)
    answers = [r.json() for r in responses]
    assert {a["order"]["id"] for a in answers} == {order_id}
    assert {a["order"]["total"] for a in answers} == {"6.50"}
    assert {a["order"]["points_earned"] for a in answers} == {answers[0]["order"]["points_earned"]}
    for r, a in zip(responses, answers, strict=True):
        assert a["duplicate"] is (r.status_code == 200)
    points = answers[0]["order"]["points_earned"]
    assert points > 0  # so the ledger check below means something

    assert count(backend, StandOrder, StandOrder.id == order_id) == 1
    movements = backend.read(
        lambda s: s.execute(
            select(InventoryMovement.product_id, InventoryMovement.quantity).where(
                InventoryMovement.ref_id == order_id
            )
        ).all()
    )
    assert sorted((pid, q) for pid, q in movements) == sorted(
        [(w.product["SKU-A"], -2), (w.product["SKU-C"], -1)]
    )
    after = on_hand(backend, stand_id, ["SKU-A", "SKU-C"])
    assert after == {"SKU-A": before["SKU-A"] - 2, "SKU-C": before["SKU-C"] - 1}
    ledger = backend.read(
        lambda s: s.scalars(
            select(StandLoyaltyLedger.points).where(StandLoyaltyLedger.ref_id == order_id)
        ).all()
    )
    assert list(ledger) == [points]


def test_different_sales_of_one_sku_from_20_clients(backend: Backend) -> None:
    """20 different sales of one SKU at once: stock falls by exactly 20, and each answer
    reports the stock after its own sale (all different: 1 to 20 units below the start)."""
    w = backend.world
    stand_id = w.stand["North Kiosk B"]
    pid = w.product["SKU-B"]
    start = on_hand(backend, stand_id, ["SKU-B"])["SKU-B"]
    calls = [
        Call(
            "rep.anna",
            "/sales-record",
            {
                "order_id": str(uuid.uuid4()),
                "stand_id": stand_id,
                "payment_method": "qr",
                "lines": [{"product": "SKU-B", "quantity": 1}],
            },
        )
        for _ in range(CLIENTS)
    ]
    responses = race(backend, calls)

    assert statuses(responses) == [201] * CLIENTS, explain(responses)
    assert on_hand(backend, stand_id, ["SKU-B"])["SKU-B"] == start - CLIENTS
    order_ids = [c.body["order_id"] for c in calls]
    assert count(backend, InventoryMovement, InventoryMovement.ref_id.in_(order_ids)) == CLIENTS
    reported = sorted(r.json()["stock_after"][pid] for r in responses)
    assert reported == list(range(start - CLIENTS, start)), (
        f"stock_after per answer (started at {start}): {reported}"
    )


# --------------------------------------------------------------------------- idempotency key


def test_same_idempotency_key_from_20_clients(backend: Backend) -> None:
    """A refill request (no client id) sent by 20 clients with one Idempotency-Key: one
    refill; every answer is the first one's, 19 of them marked as replays."""
    w = backend.world
    stand_id = w.stand["North Kiosk A"]
    note = f"race {uuid.uuid4()}"
    key = f"key-{uuid.uuid4()}"
    body = {"stand_id": stand_id, "lines": [{"product": "SKU-D", "quantity": 3}], "note": note}
    calls = [Call("rep.anna", "/refill", body, {"Idempotency-Key": key})] * CLIENTS
    responses = race(backend, calls)

    assert statuses(responses) == [201] * CLIENTS, explain(responses)
    refill_ids = {r.json()["refill_id"] for r in responses}
    assert len(refill_ids) == 1, refill_ids
    replayed = [r.headers.get("Idempotent-Replayed") for r in responses]
    assert sorted(replayed, key=str) == [None] + ["true"] * (CLIENTS - 1), replayed

    (refill_id,) = refill_ids
    assert count(backend, StandRefillOrder, StandRefillOrder.note == note) == 1
    assert refill_events(backend, refill_id) == [RefillAction.REQUEST]
    assert count(backend, IdempotencyRecord, IdempotencyRecord.key == key) == 1


def test_same_key_with_two_bodies(backend: Backend) -> None:
    """One Idempotency-Key sent with two different requests at once (10 of each): the
    first to claim the key does its work once; the same request again is a replay of it,
    the other request a 409 conflict. Nothing of the loser is stored."""
    w = backend.world
    key = f"key-{uuid.uuid4()}"
    notes = [f"race {uuid.uuid4()}", f"race {uuid.uuid4()}"]
    bodies = [
        {
            "stand_id": w.stand["North Kiosk A"],
            "lines": [{"product": "SKU-D", "quantity": 2}],
            "note": note,
        }
        for note in notes
    ]
    calls = [
        Call("rep.anna", "/refill", bodies[n % 2], {"Idempotency-Key": key}) for n in range(CLIENTS)
    ]
    responses = race(backend, calls)

    created = [n for n, r in enumerate(responses) if r.status_code == 201]
    assert created, explain(responses)
    won = created[0] % 2
    for n, r in enumerate(responses):
        if n % 2 == won:
            assert r.status_code == 201, explain(responses)
        else:
            assert r.status_code == 409, explain(responses)
            assert r.json()["code"] == "conflict", r.text
    replayed = [r.headers.get("Idempotent-Replayed") for r in responses if r.status_code == 201]
    assert sorted(replayed, key=str) == [None] + ["true"] * (CLIENTS // 2 - 1), replayed
    assert count(backend, StandRefillOrder, StandRefillOrder.note == notes[won]) == 1
    assert count(backend, StandRefillOrder, StandRefillOrder.note == notes[1 - won]) == 0
    assert count(backend, IdempotencyRecord, IdempotencyRecord.key == key) == 1


def test_same_refill_id_from_20_clients(backend: Backend) -> None:
    """One client-made refill id posted by 20 clients at once: one refill, 19 duplicates."""
    refill_id = str(uuid.uuid4())
    body = {
        "refill_id": refill_id,
        "stand_id": backend.world.stand["North Kiosk A"],
        "lines": [{"product": "SKU-F", "quantity": 5}],
    }
    responses = race(backend, [Call("rep.anna", "/refill", body)] * CLIENTS)

    assert statuses(responses) == [200] * (CLIENTS - 1) + [201], explain(responses)
    for r in responses:
        assert r.json()["refill_id"] == refill_id
        assert r.json()["duplicate"] is (r.status_code == 200)
    assert count(backend, StandRefillOrder, StandRefillOrder.id == refill_id) == 1
    assert refill_events(backend, refill_id) == [RefillAction.REQUEST]


def onboard(backend: Backend, package: str = "growth") -> str:
    """A new partner in region North with a first stand (as admin); its id."""
    tag = uuid.uuid4().hex[:8]
    with backend.api("admin") as c:
        r = c.post(
            "/create",
            json={
                "partner": {
                    "name": f"Race Partner {tag}",
                    "contact_name": "Eva Berg",
                    "package_code": package,
                    "region": "North",
                },
                "stand": stand_in(f"Race Kiosk {tag}"),
            },
        )
        assert r.status_code == 201, r.text
        return str(r.json()["partner_id"])


def stand_in(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "address": "Weg 3",
        "city": "Hamburg",
        "location_type": "kiosk",
        "capacity_units": 80,
        "products": ["SKU-A", "SKU-C"],
    }


@pytest.mark.parametrize("partner", ["new-partner", "existing-partner"])
def test_same_new_stand_from_20_clients(backend: Backend, partner: str) -> None:
    """One stand (client-made id) posted by 20 clients at once, with a new partner
    (client-made id too) or for an existing one: one stand with its assortment (and one
    partner), 19 duplicates of it."""
    stand_id = str(uuid.uuid4())
    body: dict[str, Any] = {"stand_id": stand_id, "stand": stand_in(f"Race {stand_id[:8]}")}
    if partner == "new-partner":
        partner_id = str(uuid.uuid4())
        body["partner"] = {
            "id": partner_id,
            "name": f"Race Partner {partner_id[:8]}",
            "contact_name": "Eva Berg",
            "package_code": "starter",
            "region": "North",
        }
    else:
        partner_id = onboard(backend)
        body["partner_id"] = partner_id
    responses = race(backend, [Call("mgr.north", "/create", body)] * CLIENTS)

    assert statuses(responses) == [200] * (CLIENTS - 1) + [201], explain(responses)
    for r in responses:
        assert (r.json()["stand_id"], r.json()["partner_id"]) == (stand_id, partner_id)
        assert r.json()["duplicate"] is (r.status_code == 200)
    assert count(backend, StandPartner, StandPartner.id == partner_id) == 1
    assert count(backend, StandLocation, StandLocation.id == stand_id) == 1
    assert count(backend, StandInventory, StandInventory.stand_id == stand_id) == 2


def test_package_limit_under_concurrency(backend: Backend) -> None:
    """Six different stands added at once for a Growth partner that has one (the package
    allows three): exactly two are created, four refused with 409 limit_exceeded."""
    partner_id = onboard(backend)
    calls = [
        Call(
            "mgr.north",
            "/create",
            {"partner_id": partner_id, "stand": stand_in(f"Race Extra {uuid.uuid4().hex[:8]}")},
        )
        for _ in range(6)
    ]
    responses = race(backend, calls)

    assert statuses(responses) == [201, 201, 409, 409, 409, 409], explain(responses)
    for r in responses:
        if r.status_code == 409:
            assert r.json()["code"] == "limit_exceeded", r.text
    assert count(backend, StandLocation, StandLocation.partner_id == partner_id) == 3


# --------------------------------------------------------------------------- transitions


STEP_BODY: dict[str, dict[str, Any]] = {
    "approve": {},
    "schedule": {"dealer": "North van"},  # scheduled_for: tomorrow, added when sent
    "reject": {"reason": "Two managers at once"},
    "deliver": {},
    "cancel": {"reason": "Two clients at once"},
}
#: race -> (steps the refill is moved along after its request, the two racing steps)
RACES = {
    "approve-vs-reject": (0, ("approve", "reject")),
    "approve-vs-approve": (0, ("approve", "approve")),
    "reject-vs-cancel": (0, ("reject", "cancel")),
    "schedule-vs-reject": (1, ("schedule", "reject")),
    "deliver-vs-cancel": (2, ("deliver", "cancel")),
}
SETUP_STEPS = ("approve", "schedule")
#: The refill's status after ``steps`` setup steps.
SETUP_STATE = (RefillStatus.REQUESTED, RefillStatus.APPROVED, RefillStatus.SCHEDULED)


def step_body(step: str) -> dict[str, Any]:
    body = dict(STEP_BODY[step])
    if step == "schedule":
        body["scheduled_for"] = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    return body


def new_refill(backend: Backend, steps: int, stand: str = "North Kiosk B") -> str:
    """A refill of 4 x SKU-E requested by admin and moved ``steps`` steps along."""
    with backend.api("admin") as c:
        r = c.post(
            "/refill",
            json={
                "stand_id": backend.world.stand[stand],
                "lines": [{"product": "SKU-E", "quantity": 4}],
            },
        )
        assert r.status_code == 201, r.text
        rid = str(r.json()["refill_id"])
        for step in SETUP_STEPS[:steps]:
            r = c.post(f"/refill/{rid}/{step}", json=step_body(step))
            assert r.status_code == 200, r.text
    return rid


Outcome = tuple[tuple[int, ...], RefillStatus, tuple[RefillAction, ...]]


def serial_outcomes(start: RefillStatus, steps: tuple[str, ...]) -> list[Outcome]:
    """What the racers may see: the outcome of running them one after the other, in
    either order, by the lifecycle's own table (status per racer, final state, events)."""
    outcomes = []
    for order in permutations(range(len(steps))):
        state, codes, events = start, [0] * len(steps), []
        for i in order:
            t = TRANSITIONS[RefillAction(steps[i])]
            if state in t.from_states:
                codes[i], state = 200, t.to_state
                events.append(t.action)
            else:
                codes[i] = 409
        outcomes.append((tuple(codes), state, tuple(events)))
    return outcomes


@pytest.mark.parametrize("race_name", list(RACES))
def test_conflicting_transitions(backend: Backend, race_name: str) -> None:
    """Two transitions of one refill at once (mgr.north and admin): the answers, the
    refill's state, its events and the stock are those of the two run one after the other
    in some order: a step the other made impossible is refused with 409
    invalid_transition, and no step happens twice. ``ROUNDS`` rounds, each on a new
    refill. (approve-vs-reject may see both succeed: reject is allowed from approved.)"""
    setup, steps = RACES[race_name]
    start = SETUP_STATE[setup]
    allowed = serial_outcomes(start, steps)
    stand_id = backend.world.stand["North Kiosk B"]
    seen = []
    for _ in range(ROUNDS):
        rid = new_refill(backend, setup)
        events_before = refill_events(backend, rid)
        stock_before = on_hand(backend, stand_id, ["SKU-E"])["SKU-E"]
        calls = [
            Call(user, f"/refill/{rid}/{step}", step_body(step))
            for user, step in zip(("mgr.north", "admin"), steps, strict=True)
        ]
        responses = race(backend, calls)

        codes = tuple(r.status_code for r in responses)
        new_events = tuple(refill_events(backend, rid)[len(events_before) :])
        outcome = (codes, refill_status(backend, rid), new_events)
        assert outcome in allowed, f"{outcome} is none of {allowed}:\n{explain(responses)}"
        seen.append(outcome)
        for step, r in zip(steps, responses, strict=True):
            if r.status_code == 200:
                assert r.json()["status"] == TRANSITIONS[RefillAction(step)].to_state.value
            else:
                assert r.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
                assert r.json()["code"] == "invalid_transition", r.text
        delivered = 4 if RefillAction.DELIVER in new_events else 0
        movements = count(backend, InventoryMovement, InventoryMovement.ref_id == rid)
        assert movements == (1 if delivered else 0)
        assert on_hand(backend, stand_id, ["SKU-E"])["SKU-E"] == stock_before + delivered
    assert len(seen) == ROUNDS


# --------------------------------------------------------------------------- automation


@pytest.mark.parametrize("skus", [("SKU-A",), ("SKU-A", "SKU-B")], ids=["one-sku", "two-skus"])
def test_low_stock_storm(backend: Backend, skus: tuple[str, ...]) -> None:
    """10 low-stock reports at once for a stand without an open refill: exactly one refill
    is requested, carrying each reported SKU once."""
    with backend.api("admin") as c:
        tag = uuid.uuid4().hex[:8]
        r = c.post(
            "/create",
            json={
                "partner": {
                    "name": f"Race Partner {tag}",
                    "contact_name": "Eva Berg",
                    "package_code": "growth",
                    "region": "North",
                },
                "stand": {
                    "name": f"Race Kiosk {tag}",
                    "address": "Weg 1",
                    "city": "Hamburg",
                    "location_type": "kiosk",
                    "capacity_units": 120,
                    "products": ["SKU-A", "SKU-B", "SKU-C"],
                },
            },
        )
        assert r.status_code == 201, r.text
        stand_id = r.json()["stand_id"]
    open_before = count(
        backend,
        StandRefillOrder,
        StandRefillOrder.stand_id == stand_id,
        StandRefillOrder.status.in_(OPEN_STATES),
    )
    assert open_before == 0

    calls = [
        Call(
            "mgr.north",
            "/automation/on-low-stock",
            {"stand_id": stand_id, "product": skus[n % len(skus)], "on_hand": 0},
        )
        for n in range(LOW_STOCK_CALLS)
    ]
    responses = race(backend, calls)

    assert statuses(responses) == [200] * LOW_STOCK_CALLS, explain(responses)
    answers = [r.json() for r in responses]
    outcomes = sorted(a["outcome"] for a in answers)
    added = len(skus) - 1
    assert outcomes == sorted(
        ["created"] + ["added"] * added + ["existing"] * (LOW_STOCK_CALLS - 1 - added)
    ), outcomes
    refill_ids = {a["refill"]["refill_id"] for a in answers}
    assert len(refill_ids) == 1, refill_ids
    (refill_id,) = refill_ids

    refills = backend.read(
        lambda s: s.execute(
            select(StandRefillOrder.id, StandRefillOrder.status).where(
                StandRefillOrder.stand_id == stand_id
            )
        ).all()
    )
    assert [(rid, RefillStatus(st)) for rid, st in refills] == [(refill_id, RefillStatus.REQUESTED)]
    lines = backend.read(lambda s: s.get_one(StandRefillOrder, refill_id).items)
    w = backend.world
    assert sorted(i.product_id for i in lines) == sorted(w.product[sku] for sku in skus)
    assert refill_events(backend, refill_id) == [RefillAction.REQUEST] * len(skus)


# --------------------------------------------------------------------------- the processes


def test_races_cross_processes(pg_multiworker: Backend) -> None:
    """On PostgreSQL the racers really are served by different worker processes: after a
    race of health checks (each reads the schema revision from the database), at least two
    workers hold connections to the database."""
    assert pg_multiworker.server is not None
    port = pg_multiworker.factory.kw["bind"].url.port
    barrier = threading.Barrier(CLIENTS)

    def one(_n: int) -> int:
        with httpx.Client(base_url=pg_multiworker.url, timeout=60) as client:
            barrier.wait(timeout=60)
            return client.get("/api/v1/health").status_code

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        assert set(pool.map(one, range(CLIENTS))) == {200}
    workers = pg_multiworker.server.processes_connected_to(port)
    assert len(workers) >= 2, (workers, pg_multiworker.server.processes())


# --------------------------------------------------------------------------- the feed


def test_a_reader_pulling_during_concurrent_sales_misses_nothing(pg_multiworker: Backend) -> None:
    """The feed's prefix property on PostgreSQL (docs/sync-design.md §2.2): a sequence
    number is taken under a lock held until commit, so a reader never moves its cursor past
    a number whose row commits later. While 20 clients record sales at once through 3
    server processes, five times over, a reader pulls 7 ops at a time: it gets every new op
    of the feed exactly once, and its cursor only increases."""
    backend = pg_multiworker
    w = backend.world
    headers = {"Authorization": f"Bearer {w.token['admin']}"}
    sync = httpx.Client(base_url=backend.url + "/api/v1/sync", headers=headers, timeout=60)
    start = sync.get("/pull", params={"since": 0, "limit": 1}).json()["head"]
    pulled: list[str] = []
    cursors: list[int] = [start]
    writing = threading.Event()
    writing.set()
    problems: list[str] = []

    def read() -> None:
        cursor = start
        while True:
            still_writing = writing.is_set()
            page = sync.get("/pull", params={"since": cursor, "limit": 7}).json()
            seqs = [op["seq"] for op in page["ops"]]
            if seqs != sorted(seqs) or any(seq <= cursor for seq in seqs):
                problems.append(f"after cursor {cursor}: {seqs}")
            pulled.extend(op["op_id"] for op in page["ops"])
            cursor = page["cursor"]
            cursors.append(cursor)
            if not still_writing and not page["more"]:
                return

    reader = threading.Thread(target=read)
    reader.start()
    try:
        spots = [
            (w.stand[stand], sku)
            for stand in ("North Kiosk A", "North Kiosk B")
            for sku in ("SKU-A", "SKU-B", "SKU-C")
        ]
        for _ in range(ROUNDS):
            calls = [
                Call(
                    "rep.anna",
                    "/sales-record",
                    {
                        "order_id": str(uuid.uuid4()),
                        "stand_id": spots[n % len(spots)][0],
                        "payment_method": "cash",
                        "lines": [{"product": spots[n % len(spots)][1], "quantity": 1}],
                    },
                )
                for n in range(CLIENTS)
            ]
            responses = race(backend, calls)
            assert statuses(responses) == [201] * CLIENTS, explain(responses)
    finally:
        writing.clear()
        reader.join(timeout=120)
        sync.close()
    assert not reader.is_alive()
    assert problems == []
    assert cursors == sorted(cursors)
    feed = backend.read(
        lambda s: s.scalars(select(ChangeLog.op_id).where(ChangeLog.device_seq > start)).all()
    )
    assert len(feed) >= ROUNDS * CLIENTS
    assert len(pulled) == len(set(pulled)), "an op was pulled twice"
    assert set(pulled) == set(feed), f"missed {len(set(feed) - set(pulled))} ops"
