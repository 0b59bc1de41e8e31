"""Sync with real processes, killed for real (SIGKILL: nothing is flushed, closed or rolled
back by the dying process).

- The device's client runs in its own process (``python -m tests.sync.procs client``: the
  real ``SyncClient`` on the device's database file) while it pushes a large outbox and
  pulls a large feed, and is SIGKILLed again and again at seeded moments: before its first
  answer, right after or in the middle of push batches, and in the middle of the pull. A
  final clean round then has to finish everything.
- The server runs as ``standctl serve`` (uvicorn) on a free 127.0.0.1 port and is SIGKILLed
  while a push batch is inside its transaction, restarted on the same port and database,
  and the client's retries finish the round. On SQLite and on PostgreSQL.

After healing, the invariants of issue 7: every op on the server exactly once, the
device's queue empty, the device equal to the server (ids included) with right stock
caches, and ``PRAGMA integrity_check`` ok.

``STAND_SYNC_PROC_SEED`` picks the seed (default 0).
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from app.db import SessionFactory, open_db
from app.models import Role
from app.services import feed
from app.services.base import Actor
from sync.client import SyncClient
from tests.sync import procs
from tests.sync.conftest import Live
from tests.sync.devices import Device, converged, make_device
from tests.sync.world import World

ANNA = Actor("rep.anna", Role.REP)
MGR = Actor("mgr.north", Role.MANAGER)
SEED = int(os.environ.get("STAND_SYNC_PROC_SEED", "0"))

#: The client test: the device's outbox, the office's sales meanwhile (the device pulls
#: both: its own ops come back in the feed), batch and page sizes small enough for many
#: pages, and how many times the client is killed.
OUTBOX, OFFICE_SALES, PUSH_BATCH, PAGE_SIZE, KILLS = 250, 150, 50, 10, 6


def _kiosks(world: World) -> list[str]:
    return [world.stand["North Kiosk A"], world.stand["North Kiosk B"]]


def _db_path(factory: SessionFactory) -> Path:
    return Path(str(factory.kw["bind"].url).split("///", 1)[1])


def _beyond(name: str, value: int) -> Callable[[procs.Progress], bool]:
    """A progress condition: the device's ``name`` (answered, cursor) went past ``value``."""
    return lambda progress: int(getattr(progress, name)) > value


def _healed(server: SessionFactory, device: Device) -> None:
    """The invariants after the final round."""
    assert procs.once_on_server(server, device.factory) == []
    assert procs.pending(device.factory) == 0
    assert converged(server, [device]) == []  # includes verify_on_hand on both sides
    assert procs.sqlite_integrity(_db_path(device.factory)) == "ok"


# ------------------------------------------------------------------ (a) the client killed


def test_client_process_killed_at_random_moments(live: Live, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    kiosks = _kiosks(live.world)
    token = live.world.token["rep.anna"]
    device = make_device(live.factory, live.url, tmp_path, "anna", ANNA, token)
    db = _db_path(device.factory)
    try:
        procs.record_offline_days(
            device.factory, ANNA, kiosks, days=7, ops=OUTBOX, start=live.world.built_at, seed=SEED
        )
        # Meanwhile the office sells at the same stands (server-made feed rows).
        office = feed.feed_sessionmaker(live.factory.kw["bind"])
        procs.record_offline_days(
            office,
            MGR,
            kiosks,
            days=7,
            ops=OFFICE_SALES,
            start=live.world.built_at,
            seed=SEED + 1,
            mix=procs.SALES,
        )
        with live.factory() as s, s.begin():
            # Where the feed ends once every op of the device is in it.
            final_head = feed.head(s) + OUTBOX
        reader = procs.ProgressReader(db)
        command = procs.client_command(
            db, live.url, token, push_batch=PUSH_BATCH, page_size=PAGE_SIZE, seed=SEED
        )
        tally: Counter[str] = Counter()
        kills = 0
        for life in range(30):
            before = reader.read()
            if before.pending == 0 and before.cursor >= final_head:
                break
            if kills >= KILLS and min(tally[k] for k in ("before", "mid_push", "mid_pull")):
                break
            if life == 0:
                phase = "start"
            elif before.pending:
                phase = rng.choice(["start", "push", "push"])
            else:
                phase = rng.choice(["start", "pull", "pull"])
            log = (tmp_path / f"client-{life}.log").open("wb")
            proc = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=procs.child_env(),
                cwd=procs.ROOT,
                start_new_session=True,
            )
            try:
                if phase == "start":
                    # Somewhere in its start-up or its first request.
                    time.sleep(rng.uniform(0.0, 0.6 if life == 0 else 1.2))
                elif phase == "push":
                    # Right after a batch's answers were stored, or into the next batch.
                    if reader.wait_for(proc, _beyond("answered", before.answered)):
                        time.sleep(rng.choice([0.0, rng.uniform(0.0, 0.25)]))
                elif reader.wait_for(proc, _beyond("cursor", before.cursor)):
                    # Right after a pulled page was applied, or into the next one.
                    time.sleep(rng.choice([0.0, rng.uniform(0.0, 0.03)]))
                killed = procs.sigkill(proc)
            finally:
                procs.sigkill(proc)
                log.close()
            after = reader.read()
            if not killed:
                assert proc.returncode == 0, (tmp_path / f"client-{life}.log").read_text()
                tally["finished"] += 1
                continue
            kills += 1
            if (after.answered, after.cursor) == (before.answered, before.cursor):
                tally["before"] += 1  # nothing of this life's work was stored
            elif after.pending:
                tally["mid_push"] += 1
            elif after.cursor >= final_head:
                tally["after"] += 1  # everything stored, killed on the way out
            elif after.cursor > before.cursor:
                tally["mid_pull"] += 1
            else:
                tally["between"] += 1  # its push done, its pull not begun
        reader.close()
        print(f"client kills: {kills} {dict(tally)} in {life + 1} lives")
        # The final clean round, in a process nobody kills.
        done = subprocess.run(
            command, capture_output=True, env=procs.child_env(), cwd=procs.ROOT, timeout=300
        )
        assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
        _healed(live.factory, device)
        # The kills really landed before, inside the push and inside the pull.
        assert kills >= KILLS, tally
        assert min(tally[k] for k in ("before", "mid_push", "mid_pull")) > 0, tally
    finally:
        device.close()


# ------------------------------------------------------------------ (b) the server killed


#: The server test: the outbox and its batches (a batch keeps the server busy for a good
#: fraction of a second, so a kill can land inside it), and how often the server is killed.
#: Eight batches: with five, a loaded machine once let the client send the last ones while
#: the killer still waited for the restarted server to answer, and the second kill never came.
BIG_OUTBOX, BIG_BATCH = 640, 80
SERVER_KILLS = {"sqlite": 2, "postgresql": 1}


class Probe:
    """Looks at the server's database from outside: is a write transaction open, and how
    many ops has the server received (committed)?"""

    def __init__(self, database_url: str) -> None:
        self.sqlite: sqlite3.Connection | None = None
        if database_url.startswith("sqlite"):
            path = database_url.split("///", 1)[1]
            self.sqlite = sqlite3.connect(
                path, timeout=0, isolation_level=None, check_same_thread=False
            )
            self.lock = threading.Lock()
        else:
            self.engine = create_engine(database_url, pool_size=2)

    def inside(self) -> bool:
        """True while some process holds a write transaction on the server's database."""
        if self.sqlite is not None:
            with self.lock:
                try:
                    self.sqlite.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError:  # locked: a writer is inside
                    return True
                self.sqlite.execute("ROLLBACK")
                return False
        with self.engine.connect() as conn:
            return bool(
                conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                        "current_database() AND backend_xid IS NOT NULL "
                        "AND pid <> pg_backend_pid()"
                    )
                ).scalar()
            )

    def received(self) -> int:
        """Ops the server holds as received (committed ones only)."""
        if self.sqlite is not None:
            with self.lock:
                return int(
                    self.sqlite.execute("SELECT count(*) FROM sync_received_op").fetchone()[0]
                )
        with self.engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM sync_received_op")).scalar() or 0)

    def close(self) -> None:
        if self.sqlite is not None:
            self.sqlite.close()
        else:
            self.engine.dispose()


class WatchedNetwork(httpx.BaseTransport):
    """The real transport; notes which push request is in flight, what the server held
    when it was sent, and whether the client got its answer."""

    def __init__(self, probe: Probe) -> None:
        self.inner = httpx.HTTPTransport()
        self.probe = probe
        self.lock = threading.Condition()
        self.sent = 0
        self.in_flight: int | None = None
        self.received_before: dict[int, int] = {}
        self.outcome: dict[int, str] = {}  # request -> "answer" | "error"

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not request.url.path.endswith("/sync/push"):
            return self.inner.handle_request(request)
        before = self.probe.received()  # the previous request has ended: a settled count
        with self.lock:
            self.sent += 1
            number = self.in_flight = self.sent
            self.received_before[number] = before
            self.lock.notify_all()
        outcome = "error"
        try:
            response = self.inner.handle_request(request)
            response.read()
            outcome = "answer"
            return response
        finally:
            with self.lock:
                self.outcome[number] = outcome
                self.in_flight = None
                self.lock.notify_all()

    def close(self) -> None:
        self.inner.close()


@dataclass(frozen=True)
class Kill:
    request: int  # the push request in flight when the server was killed
    inside: bool  # the server was seen inside a write transaction first
    committed: bool  # the server held that batch after the kill (only its reply was lost)


@dataclass
class ServerKiller:
    """In a thread: ``times`` times, wait for a push in flight and for the server to be
    inside its write transaction, wait a seeded moment, SIGKILL the server, note what it
    had committed, and start it again on the same port and database."""

    server: procs.ServerProcess
    net: WatchedNetwork
    probe: Probe
    rng: random.Random
    times: int
    kills: list[Kill] = field(default_factory=list)
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        try:
            for _ in range(self.times):
                # Let a seeded number of pushes (0 or 1) through first, so kills fall on
                # retried batches and on later ones.
                for _skip in range(self.rng.randint(0, 1)):
                    request = self._next_push()
                    if request is None:
                        return
                    with self.net.lock:
                        while request not in self.net.outcome:
                            self.net.lock.wait(0.05)
                request = self._next_push()
                if request is None:
                    return
                inside = False
                while self.net.in_flight == request and not inside:
                    inside = self.probe.inside()
                    time.sleep(0.002)
                # The first kill lands within a few ms of the server taking its write lock
                # (a batch of BIG_BATCH ops takes tens of ms, so it dies mid-batch); later
                # ones anywhere in 200 ms (mid-batch, or after the commit: a lost reply).
                time.sleep(self.rng.uniform(0.0, 0.005 if not self.kills else 0.2))
                self.server.kill()
                committed = self.probe.received() > self.net.received_before[request]
                self.kills.append(Kill(request, inside, committed))
                self.server.start()
        except BaseException as exc:  # the test reports it
            self.error = exc

    def _next_push(self) -> int | None:
        """The number of the next push request in flight (None once the round is over)."""
        with self.net.lock:
            while self.net.in_flight is None or self.net.in_flight in self.net.outcome:
                if self.done.is_set():
                    return None
                self.net.lock.wait(0.05)
            return self.net.in_flight


def _server_killed_mid_batch(
    database_url: str, server_factory: SessionFactory, world: World, tmp_path: Path
) -> None:
    times = SERVER_KILLS[server_factory.kw["bind"].dialect.name]
    token = world.token["rep.anna"]
    with procs.server_process(database_url) as server:
        device = make_device(server_factory, server.url, tmp_path, "anna", ANNA, token)
        probe = Probe(database_url)
        net = WatchedNetwork(probe)
        try:
            writer = procs.writer(_db_path(device.factory))
            procs.record_offline_days(
                writer,
                ANNA,
                _kiosks(world),
                days=14,
                ops=BIG_OUTBOX,
                start=world.built_at,
                seed=SEED,
            )
            writer.kw["bind"].dispose()
            killer = ServerKiller(server, net, probe, random.Random(SEED), times)
            thread = threading.Thread(target=killer.run, name="server-killer", daemon=True)
            thread.start()
            client = SyncClient(
                device.factory,
                server.url,
                token=token,
                transport=net,
                push_batch=BIG_BATCH,
                max_attempts=80,
                max_backoff=0.5,
                rng=random.Random(SEED),
            )
            try:
                result = client.round()
            finally:
                killer.done.set()
                thread.join(timeout=120)
                client.close()
            assert killer.error is None, killer.error
            print(f"server kills: {killer.kills}; push requests: {net.outcome}")
            assert result.complete, (result, killer.kills)
            _healed(server_factory, device)
            if database_url.startswith("sqlite"):
                assert procs.sqlite_integrity(Path(database_url.split("///", 1)[1])) == "ok"
            # The server died mid-batch, before the client had its answer, at least once:
            # the batch was rolled back and the client's retry applied it.
            mid_batch = [
                k
                for k in killer.kills
                if k.inside and not k.committed and net.outcome.get(k.request) == "error"
            ]
            assert len(killer.kills) == times, killer.kills
            assert mid_batch, (killer.kills, net.outcome)
            assert server.starts == times + 1
        finally:
            probe.close()
            net.close()
            device.close()


def test_server_killed_mid_batch_sqlite(world_template: tuple[Path, World], tmp_path: Path) -> None:
    path, world = world_template
    db = tmp_path / "server.db"
    shutil.copyfile(path, db)
    url = f"sqlite:///{db}"
    factory = open_db(url, migrate=False)
    try:
        _server_killed_mid_batch(url, factory, world, tmp_path)
    finally:
        factory.kw["bind"].dispose()


def test_server_killed_mid_batch_postgresql(pg_world: tuple[str, World], tmp_path: Path) -> None:
    url, world = pg_world
    factory = open_db(url, migrate=False)
    try:
        _server_killed_mid_batch(url, factory, world, tmp_path)
    finally:
        factory.kw["bind"].dispose()
