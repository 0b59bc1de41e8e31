"""Seeded fault runs: devices sell, count, refill and void offline, and sync through a network
that refuses connections, goes down for a while, answers 503, loses the server's reply after
it committed, delivers a request twice, replays an old push, delivers the later part of a
batch before the earlier one and splits batches, while the client "process" is killed at
every point of its round: before, in flight and after each push and pull page, and inside
its own commits. The office sells and voids on the server meanwhile. After the network
heals, plain rounds must leave:

- every op of every device on the server exactly once (one ``sync_received_op`` row, and
  one feed row when applied or a dead letter when rejected), with the device's status and
  feed number equal to the server's; the queues empty after one plain round each;
- on the wire: no op answered as new twice, every repeat answered ``duplicate`` with the
  first outcome and feed number, a batch out of order refused as a gap without effect,
  pulled pages in feed order after their cursor (:class:`Ledger`);
- every device equal to the server (synced tables row for row, ids included; stock caches
  equal to the movements), nothing pending, no refresh left, ``PRAGMA integrity_check`` ok
  on every database.

A run is one real server (uvicorn on 127.0.0.1 in a thread) whose database is made afresh
from the test world for every seed (a file copy on SQLite, ``CREATE DATABASE … TEMPLATE``
on PostgreSQL), and two or three devices copied from a template into the same files each
seed (tests/sync/devices.py ``DeviceSlots``), so engines and their compiled statements
live for the whole run. The databases are in /dev/shm where there is one. Every seed starts
from the same state, and ``random.Random(seed)`` drives the work, the network, the batch
and page sizes and the kills, so a seed is repeatable on its own; a broken one is reported
with its last events, its databases are kept, and the command that runs just it is given.
Over a file's seeds every kind of fault must have happened (a quiet network proves
nothing): ``MUST_HAPPEN``.

``make test`` runs 240 seeds on SQLite (0-119 here, 120-239 in test_sync_faults_more.py:
one file per process, so both cores) and 60 on PostgreSQL (test_sync_faults_pg.py);
``bench/bench_sync_faults.py`` runs thousands. ``STAND_SYNC_SEED=N`` runs only seed N;
``STAND_SYNC_SEEDS=N`` how many seeds each SQLite file runs, ``STAND_SYNC_PG_SEEDS=N`` the
PostgreSQL file.

Processes killed for real (SIGKILL) and the server killed inside a push batch and restarted
are in test_sync_processes.py.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
import traceback
import uuid
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine, create_engine, event, func, select, text
from sqlalchemy.orm import Session

from app.db import SessionFactory, open_db
from app.errors import DomainError
from app.models import (
    ChangeLog,
    LocalDevice,
    MovementKind,
    OpStatus,
    OrderKind,
    Product,
    RefillStatus,
    Role,
    StandInventory,
    StandOrder,
    StandRefillOrder,
    SyncDeadLetter,
    SyncReceivedOp,
    SyncRefresh,
)
from app.services import feed, inventory, refills, sales
from app.services.base import Actor
from sync.client import SyncClient
from sync.server.app import create_app
from tests.sync.devices import Device, DeviceSlots, converged, device_template
from tests.sync.world import World

ANNA = Actor("rep.anna", Role.REP)
MGR = Actor("mgr.north", Role.MANAGER)
ADMIN = Actor("admin", Role.ADMIN)
KIOSKS = ("North Kiosk A", "North Kiosk B")

#: The client's fault points (sync/client.py ``fault``) of a push and a pull.
POINTS = (
    "before_push",
    "after_push_reply",
    "after_store",
    "before_pull",
    "after_pull_reply",
    "after_page",
)
#: What must have happened over a file's seeds. ``kill:*`` are the client killed at a point,
#: in flight (the request reached the server, the process died before the answer) or inside
#: one of its own commits (named by the client step); the others are what the network did,
#: and ops the server rejected (two devices voiding one sale, approving a cancelled refill).
MUST_HAPPEN = (
    *(f"kill:{point}" for point in POINTS),
    "kill:in_flight_push",
    "kill:in_flight_pull",
    "kill:in_commit:push",  # the transaction that stores the answers (or marks a batch)
    "kill:in_commit:pull",  # the transaction of a page and its cursor
    "refused",
    "outage",
    "outage_refused",
    "503",
    "lost_reply",
    "twice",
    "replay",
    "reorder_refused",
    "split",
    "duplicate_answers",
    "rejected_ops",
    "round_failed",
)


def seeds_to_run(default: range, env: str = "STAND_SYNC_SEEDS") -> list[int]:
    """``default``, or the one seed of ``STAND_SYNC_SEED``, or the first ``$env`` seeds of
    ``default``'s start."""
    one = os.environ.get("STAND_SYNC_SEED")
    if one is not None:
        return [int(one)]
    count = os.environ.get(env)
    if count is not None:
        return list(range(default.start, default.start + int(count)))
    return list(default)


# ------------------------------------------------------------------ the server and its database


class ServerThread:
    """The real server (uvicorn on a free 127.0.0.1 port) in a thread, for a whole run: each
    seed gets a fresh database under it (:class:`Backend`), while it is idle."""

    def __init__(self, database_url: str) -> None:
        self.app = create_app(database_url, migrate=False)
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="off",
            access_log=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="fault-server", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.002)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def join(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.app.state.server.engine.dispose()


class Backend(ABC):
    """The seeds' server database: one name, made afresh from the world for every seed
    while the server (and every engine on it) keeps running."""

    name = ""
    url = ""

    @abstractmethod
    def reset(self) -> None:
        """The database becomes a fresh copy of the world. No connection may be open."""

    @abstractmethod
    def keep(self, seed: int) -> str:
        """Put a broken seed's database aside (before the next reset); where it went."""

    def integrity(self) -> str:
        return "ok"

    def close(self) -> None:
        return None


class SqliteBackend(Backend):
    """A copy of the world's database file, in the same place, per seed."""

    name = "sqlite"

    def __init__(self, world_db: Path, folder: Path) -> None:
        self.world_db = world_db
        self.folder = folder
        self.path = folder / "server.db"
        self.url = f"sqlite:///{self.path}"

    def reset(self) -> None:
        # Without a connection, SQLite has folded the write-ahead log into the file and
        # removed it; a log left over would be replayed onto (or be missing from) the copy.
        for path in (self.path, self.world_db):
            if Path(f"{path}-wal").exists():
                raise RuntimeError(f"{path}-wal exists: a connection to it is still open")
        shutil.copyfile(self.world_db, self.path)

    def keep(self, seed: int) -> str:
        kept = self.folder / f"broken-{seed}-server.db"
        with closing(sqlite3.connect(self.path)) as a, closing(sqlite3.connect(kept)) as b:
            a.backup(b)
        return str(kept)

    def integrity(self) -> str:
        with closing(sqlite3.connect(self.path)) as conn:
            return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


class PostgresBackend(Backend):
    """``CREATE DATABASE … TEMPLATE`` of the world's database per seed (about 20 ms)."""

    name = "postgresql"

    def __init__(self, world_url: str) -> None:
        base, self.template = world_url.rsplit("/", 1)
        self.db = f"faults_{uuid.uuid4().hex[:12]}"
        self.url = f"{base}/{self.db}"
        self.admin = create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")

    def reset(self) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)"))
            conn.execute(text(f"CREATE DATABASE {self.db} TEMPLATE {self.template}"))

    def keep(self, seed: int) -> str:
        kept = f"{self.db}_broken_{seed}"
        with self.admin.connect() as conn:
            conn.execute(text(f"ALTER DATABASE {self.db} RENAME TO {kept}"))
        return f"PostgreSQL database {kept}"

    def close(self) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)"))
        self.admin.dispose()


# ------------------------------------------------------------------ the network


class Killed(Exception):
    """The client process died here: nothing survives but what its database committed."""

    def __init__(self, point: str) -> None:
        super().__init__(point)
        self.point = point


class Wire(httpx.BaseTransport):
    """The loopback connection all simulated client processes share (one connection pool
    and TLS context per run instead of one per process); a client closing it leaves it
    open."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        response.read()
        return response

    def close(self) -> None:
        return None

    def shutdown(self) -> None:
        self.inner.close()


#: Faults of any request, and of push requests only, with their weights.
ANY_FAULTS = {"refused": 3, "outage": 1, "503": 3, "lost_reply": 3, "twice": 3, "in_flight": 1}
PUSH_FAULTS = {"replay": 3, "reorder": 5, "split": 5}


class Network(httpx.BaseTransport):
    """One device's network to the real server: seeded faults on the way, and a check of
    every answer the server gives (see :class:`Ledger`). It outlives the client processes,
    so an outage can span several of them."""

    def __init__(self, run: Run, device: str) -> None:
        self.run = run
        self.device = device
        self.rate = 0.0
        self.down = 0
        self.pushed: list[bytes] = []  # push bodies the server received from this device

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        run, rng = self.run, self.run.rng
        if self.down > 0:
            self.down -= 1
            run.note("outage_refused", request)
            raise httpx.ConnectError("the network is down", request=request)
        is_push = request.url.path.endswith("/push")
        if self.rate == 0.0 or rng.random() >= self.rate:
            return self.forward(request)
        faults = dict(ANY_FAULTS)
        if is_push:
            body = json.loads(request.content)
            ops = body["ops"]
            # Replaying needs an earlier batch; reordering and splitting two ops or more.
            faults |= {k: w for k, w in PUSH_FAULTS.items() if self.pushed or k != "replay"}
            if len(ops) < 2:
                faults = {k: w for k, w in faults.items() if k not in ("reorder", "split")}
        kind = rng.choices(list(faults), weights=list(faults.values()))[0]
        if kind == "refused":
            run.note("refused", request)
            raise httpx.ConnectError("connection refused", request=request)
        if kind == "outage":
            self.down = rng.randint(3, 9)
            run.note("outage", request, f"{self.down} more requests")
            raise httpx.ConnectError("the network is down", request=request)
        if kind == "503":
            run.note("503", request)
            headers = {"Retry-After": "1"} if rng.random() < 0.5 else {}
            return httpx.Response(
                503, json={"code": "busy", "detail": "busy"}, headers=headers, request=request
            )
        if kind == "lost_reply":
            self.forward(request)
            run.note("lost_reply", request)
            raise httpx.ReadTimeout("the reply was lost", request=request)
        if kind == "twice":
            self.forward(request)
            run.note("twice", request)
            return self.forward(request)
        if kind == "in_flight":
            self.forward(request)
            raise Killed(f"in_flight_{request.url.path.rsplit('/', 1)[1]}")
        if kind == "replay":
            old = json.loads(rng.choice(self.pushed))
            response = self.send_push(request, old)
            run.note("replay", request, f"{len(old['ops'])} ops -> {response.status_code}")
            if response.status_code != 200:
                run.problem(
                    f"an old batch sent again: {response.status_code} {response.text[:300]}"
                )
        elif kind == "reorder":
            self.reorder(request, body, rng.randint(1, len(ops) - 1))
        elif kind == "split":
            k = rng.randint(1, len(ops) - 1)
            for part in (ops[:k], ops[k:]):
                response = self.send_push(request, {**body, "ops": part})
                if response.status_code != 200:
                    run.problem(
                        f"a split batch was answered {response.status_code}: {response.text[:300]}"
                    )
            run.note("split", request, f"{k}+{len(ops) - k}")
        return self.forward(request)

    def reorder(self, request: httpx.Request, body: dict[str, Any], k: int) -> None:
        """The later part of the batch arrives first: refused whole as a gap, without
        effect, unless the server already has the earlier part."""
        run = self.run
        later = body["ops"][k:]
        ids = [o["op_id"] for o in later]
        before = run.received(ids)
        response = self.send_push(request, {**body, "ops": later})
        if response.status_code == 409:
            problem = response.json()
            if problem.get("code") != "sequence_gap" or problem.get("expected_seq") is None:
                run.problem(f"a batch out of order was refused, but not as a gap: {problem}")
            elif (
                not body["ops"][0]["device_seq"] <= problem["expected_seq"] < later[0]["device_seq"]
            ):
                run.problem(
                    f"a gap before #{later[0]['device_seq']} expects #{problem['expected_seq']}"
                )
            if run.received(ids) != before:
                run.problem("a batch refused as a gap changed what the server received")
            run.note("reorder_refused", request, f"from #{later[0]['device_seq']}")
        elif response.status_code == 200:
            run.note("reorder_applied", request)
        else:
            run.problem(
                f"a batch out of order was answered {response.status_code}: {response.text[:300]}"
            )

    def send_push(self, request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        copy = httpx.Request(
            "POST",
            request.url,
            headers={"Authorization": request.headers["Authorization"]},
            json=body,
        )
        return self.forward(copy)

    def forward(self, request: httpx.Request) -> httpx.Response:
        response = self.run.wire.handle_request(request)
        path = request.url.path
        if path.endswith("/push"):
            if response.status_code == 200:
                self.pushed.append(request.content)
                self.run.ledger.push(json.loads(request.content), response.json())
        elif path.endswith("/pull") and response.status_code == 200:
            self.run.ledger.pull(int(request.url.params["since"]), response.json())
        return response


class Ledger:
    """Every answer the server gave, checked as it passes: an op is answered as new
    (``applied`` or ``rejected``) once, and every repeat is a ``duplicate`` carrying that
    first outcome and feed number; pulled pages are in feed order after their cursor, and a
    feed number always names the same op."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        self.first: dict[str, tuple[str, int | None]] = {}
        self.feed: dict[int, str] = {}
        self.duplicates = 0

    def push(self, body: dict[str, Any], answer: dict[str, Any]) -> None:
        sent = {o["op_id"] for o in body["ops"]}
        got = [r["op_id"] for r in answer["results"]]
        if sorted(got) != sorted(sent):
            self.problems.append(
                f"a push of {len(sent)} ops was answered for {len(got)} ({set(got) ^ sent})"
            )
        for r in answer["results"]:
            key = (r["outcome"], r["server_seq"])
            if r["status"] == "duplicate":
                self.duplicates += 1
                if r["op_id"] not in self.first:
                    self.problems.append(
                        f"op {r['op_id']} answered duplicate, never answered as new"
                    )
                elif self.first[r["op_id"]] != key:
                    self.problems.append(
                        f"op {r['op_id']} first {self.first[r['op_id']]}, now {key}"
                    )
            elif r["op_id"] in self.first:
                self.problems.append(
                    f"op {r['op_id']} answered {r['status']} twice (applied twice?)"
                )
            else:
                if (r["status"] == "applied") != (r["server_seq"] is not None):
                    self.problems.append(
                        f"op {r['op_id']} answered {r['status']} with feed #{r['server_seq']}"
                    )
                self.first[r["op_id"]] = key

    def pull(self, since: int, page: dict[str, Any]) -> None:
        seqs = [o["seq"] for o in page["ops"]]
        if seqs != sorted(set(seqs)) or (seqs and seqs[0] <= since):
            self.problems.append(f"a page after #{since} holds {seqs}")
        if page["cursor"] < since or (seqs and page["cursor"] < seqs[-1]):
            self.problems.append(
                f"a page after #{since} with {seqs} moved the cursor to {page['cursor']}"
            )
        for o in page["ops"]:
            if self.feed.setdefault(o["seq"], o["op_id"]) != o["op_id"]:
                self.problems.append(
                    f"feed #{o['seq']} was {self.feed[o['seq']]}, now {o['op_id']}"
                )


# ------------------------------------------------------------------ one seed


@dataclass
class Env:
    """What every seed of a run shares: the world, one server (its database made afresh per
    seed), the device slots, and the loopback wire. Engines live as long as the run: their
    compiled statements are most of the cost of a short run."""

    backend: Backend
    world: World
    folder: Path
    slots: DeviceSlots
    server: ServerThread
    server_factory: SessionFactory
    office: SessionFactory  # the server's own writes (a feed session, as the server makes)
    wire: Wire
    skus: dict[str, list[str]]  # stand id -> its product ids, by SKU (not by random id)

    def engines(self) -> list[Engine]:
        return [self.server.app.state.server.engine, self.server_factory.kw["bind"]]

    def close(self) -> None:
        self.server.join()
        for engine in self.engines():
            engine.dispose()
        self.slots.close()
        self.wire.shutdown()
        self.backend.close()


@contextmanager
def environment(
    backend: Backend, world: World, world_factory: SessionFactory, folder: Path
) -> Iterator[Env]:
    """The parts of a run made once: the device template of the world, the server.
    ``world_factory`` is disposed of here."""
    template = device_template(world_factory, folder / "device-template.db")
    skus = _stand_skus(world_factory, [world.stand[name] for name in KIOSKS])
    world_factory.kw["bind"].dispose()  # PostgreSQL copies a template nobody is connected to
    backend.reset()
    server = ServerThread(backend.url)
    server_factory = open_db(backend.url, migrate=False)
    env = Env(
        backend,
        world,
        folder,
        DeviceSlots(template, folder),
        server,
        server_factory,
        feed.feed_sessionmaker(server_factory.kw["bind"]),
        Wire(),
        skus,
    )
    try:
        yield env
    finally:
        env.close()


@dataclass
class Run:
    """One seed's state."""

    seed: int
    env: Env
    rng: random.Random
    tally: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    ledger: Ledger = field(init=False)

    def __post_init__(self) -> None:
        self.ledger = Ledger(self.problems)

    @property
    def wire(self) -> Wire:
        return self.env.wire

    @property
    def url(self) -> str:
        return self.env.server.url

    @property
    def server(self) -> SessionFactory:
        return self.env.server_factory

    def note(self, kind: str, request: httpx.Request | None = None, detail: str = "") -> None:
        self.tally[kind] += 1
        where = request.url.path.rsplit("/", 1)[1] if request is not None else ""
        self.events.append(f"{kind} {where} {detail}".rstrip())

    def problem(self, message: str) -> None:
        self.problems.append(message)

    def received(self, op_ids: list[str]) -> int:
        with self.server() as s, s.begin():
            return int(
                s.scalar(
                    select(func.count())
                    .select_from(SyncReceivedOp)
                    .where(SyncReceivedOp.op_id.in_(op_ids))
                )
                or 0
            )


@dataclass
class SeedResult:
    seed: int
    backend: str
    tally: Counter[str]
    problems: list[str]
    events: list[str]
    ops: int
    seconds: float


def _stand_skus(factory: SessionFactory, stand_ids: list[str]) -> dict[str, list[str]]:
    with factory() as s, s.begin():
        out: dict[str, list[str]] = {}
        for stand in stand_ids:
            out[stand] = list(
                s.scalars(
                    select(StandInventory.product_id)
                    .join(Product, Product.id == StandInventory.product_id)
                    .where(StandInventory.stand_id == stand)
                    .order_by(Product.sku)
                )
            )
        return out


def _recent_sales(s: Session, stands: list[str], n: int, before: datetime | None) -> list[str]:
    """The ``n`` latest sales at ``stands`` not voided (made before ``before``, if given)."""
    voided = select(StandOrder.voided_order_id).where(StandOrder.voided_order_id.is_not(None))
    query = select(StandOrder.id).where(
        StandOrder.stand_id.in_(stands),
        StandOrder.kind == OrderKind.SALE,
        StandOrder.id.not_in(voided),
    )
    if before is not None:
        query = query.where(StandOrder.occurred_at < before)
    return list(s.scalars(query.order_by(StandOrder.occurred_at.desc(), StandOrder.id).limit(n)))


def _open_refills(s: Session, stands: list[str]) -> list[str]:
    return list(
        s.scalars(
            select(StandRefillOrder.id)
            .where(
                StandRefillOrder.stand_id.in_(stands),
                StandRefillOrder.status == RefillStatus.REQUESTED,
            )
            .order_by(StandRefillOrder.requested_at, StandRefillOrder.id)
        )
    )


def work(factory: SessionFactory, actor: Actor, run: Run, actions: int) -> None:
    """Random actions through the real services, one transaction each (refusals are part of
    life: a void of a sale voided meanwhile, a refill no longer open)."""
    rng, env = run.rng, run.env
    stands = [env.world.stand[name] for name in KIOSKS]
    with factory() as s:
        for _ in range(actions):
            stand = rng.choice(stands)
            skus = env.skus[stand]
            roll = rng.random()
            try:
                if roll < 0.40:
                    lines = [sales.SaleLine(pid, rng.randint(1, 3)) for pid in rng.sample(skus, 2)]
                    sales.record_sale(s, actor, stand, lines, rng.choice(["cash", "card"]))
                    run.note("op:sale", None, actor.user)
                elif roll < 0.50:
                    inventory.record_stock_change(
                        s,
                        actor,
                        stand,
                        rng.choice(skus),
                        rng.randint(1, 2),
                        kind=MovementKind.WRITE_OFF,
                        note="Damaged",
                    )
                    run.note("op:write_off", None, actor.user)
                elif roll < 0.60:
                    inventory.record_count(s, actor, stand, {rng.choice(skus): rng.randint(0, 30)})
                    run.note("op:count", None, actor.user)
                elif roll < 0.68:
                    refills.request_refill(s, actor, stand, {rng.choice(skus): rng.randint(1, 9)})
                    run.note("op:refill_request", None, actor.user)
                elif roll < 0.80:
                    with s.begin():
                        open_ = _open_refills(s, stands)
                    if open_:
                        refill = rng.choice(open_)
                        if actor.role == Role.REP:
                            refills.cancel_refill(s, actor, refill, "Not needed")
                        elif rng.random() < 0.7:
                            refills.approve_refill(s, actor, refill)
                        else:
                            refills.reject_refill(s, actor, refill, "Stock is fine")
                        run.note("op:refill_step", None, actor.user)
                else:
                    # Half the voids are of the last sales everyone had before the seed:
                    # two devices voiding the same sale, the second is rejected.
                    before = env.world.built_at if rng.random() < 0.5 else None
                    with s.begin():
                        recent = _recent_sales(s, stands, 2 if before else 3, before)
                    if recent:
                        sales.void_sale(s, actor, rng.choice(recent), reason="Scanned twice")
                        run.note("op:void", None, actor.user)
            except DomainError:
                run.note("op:refused_locally", None, actor.user)


def _client_step() -> str:
    """The client method (push, pull, refresh, round ...) whose commit is under way (a
    push's helpers, ``_push_read`` and ``_push_step`` in its worker thread, count as push)."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_filename.endswith(os.path.join("sync", "client.py")):
            name = frame.f_code.co_name
            return "push" if name.startswith("_push_") else name
        frame = frame.f_back
    return "elsewhere"


def client_lives(run: Run, device: Device, net: Network) -> None:
    """One to three client processes on ``device``, on a faulty network, each killed at a
    random point (or not) and restarted with only what its database committed."""
    rng = run.rng
    for _ in range(rng.randint(1, 3)):
        net.rate = rng.choice([0.15, 0.35, 0.6])
        kill_rate = rng.choice([0.0, 0.1, 0.25])
        commit_kill_rate = rng.choice([0.0, 0.0, 0.15])

        def fault(point: str, rate: float = kill_rate) -> None:
            if rng.random() < rate:
                raise Killed(point)

        # Its own stream: a push commits in a worker thread while the network draws from
        # run.rng, so one shared stream would make the seed's draws depend on timing.
        commit_rng = random.Random(rng.getrandbits(64))

        def die_in_commit(
            session: Session, rate: float = commit_kill_rate, draws: random.Random = commit_rng
        ) -> None:
            if draws.random() < rate:
                raise Killed(f"in_commit:{_client_step()}")

        push_batch, page_size = rng.choice([1, 2, 3, 500]), rng.choice([1, 2, 5, 1000])
        # Half the runs grow their batches as the app does (up to 8 times, or the server's).
        grow_to = push_batch * 8 if rng.random() < 0.5 else None
        run.events.append(
            f"{device.name} starts: network faults {net.rate}, kills {kill_rate}/{commit_kill_rate}"
            f", batches of {push_batch} (growing to {grow_to}), pages of {page_size}"
        )
        client = SyncClient(
            device.factory,
            run.url,
            token=device.token,
            transport=net,
            sleep=lambda _s: None,
            rng=rng,
            fault=fault,
            push_batch=push_batch,
            push_batch_max=grow_to,
            page_size=page_size,
            max_attempts=3,
        )
        event.listen(device.factory, "before_commit", die_in_commit)
        try:
            result = client.round()
            if result.complete:
                run.note("round_complete", None, device.name)
            else:
                run.note("round_failed", None, f"{device.name} {result.state}: {result.error}")
        except Killed as exc:
            run.note(f"kill:{exc.point}", None, device.name)
        finally:
            event.remove(device.factory, "before_commit", die_in_commit)
            client.close()


def run_seed(env: Env, seed: int) -> SeedResult:
    """One seeded run on a fresh copy of the world; the problems found (none when every
    invariant holds)."""
    started = time.perf_counter()
    rng = random.Random(seed)
    for engine in env.engines():
        engine.dispose()  # no connection may stay open across the reset
    env.backend.reset()
    run = Run(seed, env, rng)
    slots = ["anna", "mgr"] + (["anna2"] if rng.random() < 0.3 else [])
    devices = []
    ops = 0
    try:
        for slot in slots:
            actor = MGR if slot == "mgr" else ANNA
            token = env.world.token[actor.user]
            devices.append(env.slots.device(slot, run.url, f"s{seed}-{slot}", actor, token))
        nets = {d.name: Network(run, d.name) for d in devices}
        for _step in range(rng.randint(2, 3)):
            for d in devices:
                work(d.factory, d.actor, run, rng.randint(1, 2))
            if rng.random() < 0.35:
                work(env.office, ADMIN, run, rng.randint(1, 2))
                run.tally["office"] += 1
            for d in rng.sample(devices, len(devices)):
                client_lives(run, d, nets[d.name])
        heal(run, devices)
        run.problems += invariants(run, devices)
        mine = [o for d in devices for o in d.ops()]
        ops = len(mine)
        if ops == 0:
            run.problem("the devices made no ops at all")
        run.tally["rejected_ops"] += sum(1 for o in mine if o.status == OpStatus.REJECTED)
        run.tally["duplicate_answers"] += run.ledger.duplicates
        if (verdict := env.backend.integrity()) != "ok":
            run.problem(f"server integrity_check: {verdict}")
    except Exception:  # an exception is a broken run too: reported with its seed
        run.problem("the run raised:\n" + traceback.format_exc(limit=12))
    finally:
        for d in devices:
            d.close()
        for engine in env.engines():
            engine.dispose()
    if run.problems:  # a broken seed's databases go aside for a look
        kept = [env.backend.keep(seed)]
        for d in devices:
            kept.append(str(env.folder / f"broken-{seed}-{d.name.split('-')[-1]}.db"))
            shutil.copyfile(env.slots.path(d.name.split("-")[-1]), kept[-1])
        run.problem(f"databases kept: {', '.join(kept)}")
    return SeedResult(
        seed,
        env.backend.name,
        run.tally,
        run.problems,
        run.events,
        ops,
        time.perf_counter() - started,
    )


def heal(run: Run, devices: list[Device]) -> None:
    """The network is back: plain rounds, nobody doing anything. After one round each the
    queues are empty; after a second everyone has everyone's changes."""
    for n in range(2):
        for d in devices:
            net = Network(run, d.name)  # no faults; the answers are still checked
            client = SyncClient(
                d.factory, run.url, token=d.token, transport=net, sleep=lambda _s: None
            )
            try:
                result = client.round()
            finally:
                client.close()
            if not result.complete:
                run.problem(f"{d.name}: heal round {n + 1} ended {result.state}: {result.error}")
        if n == 0:
            for d in devices:
                if (left := d.pending()) != 0:
                    run.problem(f"{d.name}: {left} ops still unsent after a plain round")


def invariants(run: Run, devices: list[Device]) -> list[str]:
    """The state after healing (see the module docstring): the ops first, then the rows."""
    problems: list[str] = []
    mine: dict[str, ChangeLog] = {}
    ids = set()
    for d in devices:
        with d.factory() as s, s.begin():
            ids.add(str(s.scalar(select(LocalDevice.id))))
            if s.scalar(select(func.count()).select_from(SyncRefresh)):
                problems.append(f"{d.name}: a refresh is still waiting")
            if (
                verdict := s.connection().exec_driver_sql("PRAGMA integrity_check").scalar()
            ) != "ok":
                problems.append(f"{d.name}: integrity_check: {verdict}")
        for op in d.ops():
            mine[op.op_id] = op
    with run.server() as s, s.begin():
        received = {
            r.op_id: r
            for r in s.scalars(select(SyncReceivedOp).where(SyncReceivedOp.device_id.in_(ids)))
        }
        feed_rows = list(
            s.execute(
                select(ChangeLog.op_id, ChangeLog.device_seq).where(ChangeLog.op_id.in_(list(mine)))
            )
        )
        fed = Counter(op_id for op_id, _seq in feed_rows)
        feed_seq: dict[str, int] = dict(feed_rows)
        dead = set(
            s.scalars(select(SyncDeadLetter.op_id).where(SyncDeadLetter.op_id.in_(list(mine))))
        )
    if set(received) != set(mine):
        lost, unknown = set(mine) - set(received), set(received) - set(mine)
        problems.append(
            f"the server received {len(received)} ops of these devices, they hold {len(mine)}: "
            f"lost {sorted(lost)[:3]}, unknown {sorted(unknown)[:3]}"
        )
    for op_id, op in mine.items():
        got = received.get(op_id)
        if got is None:
            continue
        device_says = "rejected" if op.status == OpStatus.REJECTED else "applied"
        if op.status == OpStatus.PENDING:
            device_says = "pending"
        if got.status != device_says:
            problems.append(f"op {op_id} ({op.op_type}): server {got.status}, device {op.status}")
        if got.status == "applied":
            if fed[op_id] != 1:
                problems.append(f"op {op_id} ({op.op_type}) applied, {fed[op_id]} feed rows")
            elif feed_seq[op_id] != got.server_seq or op.server_seq != got.server_seq:
                problems.append(
                    f"op {op_id}: feed #{feed_seq[op_id]}, received #{got.server_seq}, "
                    f"device #{op.server_seq}"
                )
        else:
            if fed[op_id] or op_id not in dead:
                problems.append(
                    f"op {op_id} rejected: {fed[op_id]} feed rows, dead letter {op_id in dead}"
                )
    return problems + converged(run.server, devices)


# ------------------------------------------------------------------ running seeds


def repro(result: SeedResult, file: str) -> str:
    pg = " --pg" if result.backend == "postgresql" else ""
    return (
        f"STAND_SYNC_SEED={result.seed} .venv/bin/python -m pytest -q -p no:cacheprovider {file}"
        f"  (or: .venv/bin/python bench/bench_sync_faults.py --seed {result.seed}{pg} --verbose)"
    )


def report(result: SeedResult, file: str) -> str:
    return "\n".join(
        [
            f"seed {result.seed} on {result.backend} broke an invariant:",
            *(f"  - {m[:400]}" for m in result.problems[:12]),
            "  its last events: " + "; ".join(result.events[-30:]),
            f"  run just this seed: {repro(result, file)}",
        ]
    )


def run_seeds(env: Env, seeds: list[int], file: str) -> Counter[str]:
    """Run ``seeds``; fail at the first broken seed with its report. Returns the tally."""
    tally: Counter[str] = Counter()
    for seed in seeds:
        result = run_seed(env, seed)
        if result.problems:
            pytest.fail(report(result, file), pytrace=False)
        tally.update(result.tally)
    return tally


#: Fewer seeds than this (a quick run, one seed to reproduce) need not show every fault.
TALLY_FROM = 50


def check_tally(tally: Counter[str], seeds: list[int]) -> None:
    """Every kind of fault happened (in a run of at least ``TALLY_FROM`` seeds)."""
    print(f"{len(seeds)} seeds: {dict(sorted(tally.items()))}")
    if len(seeds) >= TALLY_FROM:
        missing = [kind for kind in MUST_HAPPEN if tally[kind] == 0]
        assert missing == [], f"never happened in {len(seeds)} seeds: {missing}; {dict(tally)}"


@contextmanager
def scratch_folder() -> Iterator[Path]:
    """Where a run's databases go: in memory (/dev/shm) where there is one, since a run
    commits thousands of short transactions and waiting for the disk to sync each one is
    most of its time (the kills here are of the process, not of the power: the disk cache
    survives them either way). Removed afterwards unless a seed broke."""
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    folder = Path(tempfile.mkdtemp(prefix="stand-sync-faults-", dir=base))
    try:
        yield folder
    finally:
        if not any(folder.glob("broken-*")):
            shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def sqlite_environment(world_template: tuple[Path, World]) -> Iterator[Env]:
    """A run on SQLite: every seed's server database a copy of the world's file."""
    shared, world = world_template
    with scratch_folder() as folder:
        path = folder / "world.db"  # a copy of its own (SQLite's backup: whole, log or not)
        with closing(sqlite3.connect(shared)) as a, closing(sqlite3.connect(path)) as b:
            a.backup(b)
        world_factory = open_db(f"sqlite:///{path}", migrate=False)
        with environment(SqliteBackend(path, folder), world, world_factory, folder) as env:
            yield env


@contextmanager
def pg_environment(pg_world: tuple[str, World]) -> Iterator[Env]:
    """A run on PostgreSQL: every seed's server database a template copy of the world's."""
    url, world = pg_world
    with scratch_folder() as folder:
        world_factory = open_db(url, migrate=False)
        with environment(PostgresBackend(url), world, world_factory, folder) as env:
            yield env


# ------------------------------------------------------------------ the tests
# Seeds 0-119 here, 120-239 in test_sync_faults_more.py (each file runs in one process, so
# the two SQLite halves run on both cores), PostgreSQL in test_sync_faults_pg.py.

SQLITE_SEEDS = range(0, 120)


def test_seeded_faults_heal_to_one_state_sqlite(sqlite_env: Env) -> None:
    seeds = seeds_to_run(SQLITE_SEEDS)
    check_tally(run_seeds(sqlite_env, seeds, "tests/sync/test_sync_faults.py"), seeds)
