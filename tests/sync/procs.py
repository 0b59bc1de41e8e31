"""Real processes for the sync tests: a device's sync client and the server, each in its own
process that a test can SIGKILL; and the long-offline device's workload.

- ``python -m tests.sync.procs client --db D --url U --token T`` runs sync rounds of the
  real client (``sync/client.py``) on the device database ``D`` until one completes, then
  exits 0 (the test kills it before that, at moments of its choosing).
- :func:`server_process` runs ``standctl serve`` (uvicorn, one worker) on a database and a
  given 127.0.0.1 port; :meth:`ServerProcess.kill` SIGKILLs it and :meth:`ServerProcess.start`
  starts it again on the same port and database.
- :func:`record_offline_days` is a device recording ops day by day for N simulated days
  through the real services, each user action its own transaction (sales, counts,
  write-offs, refill requests).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import SessionFactory
from app.errors import DomainError
from app.models import (
    ChangeLog,
    MovementKind,
    OpStatus,
    StandInventory,
    SyncReceivedOp,
)
from app.services import inventory, refills, sales
from app.services.base import Actor

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env(data_dir: Path | None = None) -> dict[str, str]:
    """The environment of a child process: this checkout first on the import path, and
    standctl's data folder kept out of the user's home."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.pop("STAND_OS_DB_URL", None)
    if data_dir is not None:
        env["STAND_OS_DATA_DIR"] = str(data_dir)
    return env


# ------------------------------------------------------------------ the client process


def client_command(
    db: Path,
    url: str,
    token: str,
    *,
    push_batch: int = 500,
    page_size: int = 1000,
    seed: int = 0,
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tests.sync.procs",
        "client",
        "--db",
        str(db),
        "--url",
        url,
        "--token",
        token,
        "--push-batch",
        str(push_batch),
        "--page-size",
        str(page_size),
        "--seed",
        str(seed),
    ]


def _client_main(args: argparse.Namespace) -> int:
    from app.db import open_db
    from sync.client import SyncClient

    factory = open_db(f"sqlite:///{args.db}", migrate=False)
    rng = random.Random(args.seed)
    try:
        with SyncClient(
            factory,
            args.url,
            token=args.token,
            push_batch=args.push_batch,
            page_size=args.page_size,
            max_attempts=args.max_attempts,
            max_backoff=1.0,
            rng=rng,
            sleep=lambda s: time.sleep(min(s, 0.5)),
        ) as client:
            for _ in range(args.rounds):
                result = client.round()
                print(
                    f"round pushed={result.pushed} rejected={result.rejected} "
                    f"pulled={result.pulled} complete={result.complete} error={result.error}",
                    flush=True,
                )
                if result.complete:
                    return 0
        return 2
    finally:
        factory.kw["bind"].dispose()


# ------------------------------------------------------------------ the server process


def serve_command(database_url: str, port: int) -> list[str]:
    """``standctl serve`` with one uvicorn worker on ``database_url`` at 127.0.0.1:port."""
    return [
        sys.executable,
        "-m",
        "app.cli",
        "serve",
        "--database-url",
        database_url,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]


@dataclass
class ServerProcess:
    """``standctl serve`` in its own process group, restartable on the same port."""

    database_url: str
    port: int
    folder: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    kills: int = 0
    log_paths: list[Path] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        log = self.folder / f"server-{self.starts}.log"
        self.log_paths.append(log)
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                serve_command(self.database_url, self.port),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=child_env(self.folder / "data"),
                cwd=ROOT,
                start_new_session=True,
            )
        self._wait_ready(log)

    def _wait_ready(self, log: Path) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the server exited with {self.proc.returncode} before it was ready:\n"
                    + log.read_text(errors="replace")[-4000:]
                )
            with suppress(httpx.TransportError):
                if httpx.get(self.url + "/api/v1/health", timeout=2).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    "the server did not answer /api/v1/health in time:\n"
                    + log.read_text(errors="replace")[-4000:]
                )
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the server's whole process group (nothing is flushed or closed)."""
        assert self.proc is not None
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.kills += 1

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()


@contextmanager
def server_process(database_url: str, port: int | None = None) -> Iterator[ServerProcess]:
    with tempfile.TemporaryDirectory(prefix="stand-serve-") as folder:
        server = ServerProcess(database_url, port or free_port(), Path(folder))
        server.start()
        try:
            yield server
        finally:
            server.stop()


# ------------------------------------------------------------------ invariants


def sqlite_integrity(path: Path) -> str:
    with closing(sqlite3.connect(path)) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def once_on_server(server: SessionFactory, device: SessionFactory) -> list[str]:
    """Every op of the device on the server exactly once: as many ``sync_received_op`` rows
    and as many feed (``change_log``) rows carrying its op ids as the device has ops, none
    rejected. (The op id is the key of both tables, so a second copy cannot hide behind
    another row; the counts show none is missing.)"""
    with device() as s, s.begin():
        mine = list(s.scalars(select(ChangeLog.op_id).order_by(ChangeLog.device_seq)))
    received = fed = rejected = 0
    with server() as s, s.begin():
        for n in range(0, len(mine), 500):
            chunk = mine[n : n + 500]
            received += int(
                s.scalar(
                    select(func.count())
                    .select_from(SyncReceivedOp)
                    .where(SyncReceivedOp.op_id.in_(chunk))
                )
                or 0
            )
            rejected += int(
                s.scalar(
                    select(func.count())
                    .select_from(SyncReceivedOp)
                    .where(SyncReceivedOp.op_id.in_(chunk), SyncReceivedOp.status != "applied")
                )
                or 0
            )
            fed += int(
                s.scalar(
                    select(func.count()).select_from(ChangeLog).where(ChangeLog.op_id.in_(chunk))
                )
                or 0
            )
    problems = []
    if received != len(mine):
        problems.append(f"the server received {received} of the device's {len(mine)} ops")
    if fed != len(mine):
        problems.append(f"the feed holds {fed} of the device's {len(mine)} ops")
    if rejected:
        problems.append(f"{rejected} ops were rejected")
    return problems


def pending(device: SessionFactory) -> int:
    with device() as s, s.begin():
        return int(
            s.scalar(
                select(func.count())
                .select_from(ChangeLog)
                .where(ChangeLog.status == OpStatus.PENDING)
            )
            or 0
        )


@dataclass(frozen=True)
class Progress:
    """How far a device is, read from its database file by another process."""

    answered: int  # ops with the server's answer stored
    pending: int
    cursor: int  # the feed cursor of its last applied page


class ProgressReader:
    """Reads a device's :class:`Progress` over its own plain sqlite3 connection (WAL: it
    never blocks the device's writer and sees only committed transactions)."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, timeout=30, isolation_level=None)

    def read(self) -> Progress:
        self.conn.execute("BEGIN")  # one snapshot for both reads
        try:
            rows = dict(
                self.conn.execute(
                    "SELECT status = 'pending', count(*) FROM change_log GROUP BY 1"
                ).fetchall()
            )
            cursor = self.conn.execute("SELECT cursor FROM sync_state WHERE id = 1").fetchone()
        finally:
            self.conn.execute("COMMIT")
        return Progress(rows.get(0, 0), rows.get(1, 0), int(cursor[0]) if cursor else 0)

    def wait_for(
        self,
        proc: subprocess.Popen[bytes],
        done: Callable[[Progress], bool],
        *,
        timeout: float = 120.0,
        interval: float = 0.002,
    ) -> Progress | None:
        """Poll until ``done(progress)`` or the process has exited (then None)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            progress = self.read()
            if done(progress):
                return progress
            if proc.poll() is not None:
                return None
            time.sleep(interval)
        raise TimeoutError("the device made no progress in time")

    def close(self) -> None:
        self.conn.close()


def sigkill(proc: subprocess.Popen[bytes]) -> bool:
    """SIGKILL ``proc`` (its whole process group) if it still runs; True if it did."""
    if proc.poll() is not None:
        return False
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    return proc.returncode == -signal.SIGKILL


def writer(path: Path) -> SessionFactory:
    """A session factory on a device database that keeps one connection open (the
    desktop's ``open_db`` opens one per transaction): the same services and one transaction
    per action, without reconnecting each time. Used to record a long offline period
    faster; dispose its engine when done."""
    from sqlalchemy.pool import QueuePool

    from app.db import create_db_engine, make_sessionmaker

    engine = create_db_engine(f"sqlite:///{path}", poolclass=QueuePool, pool_size=1, max_overflow=0)
    return make_sessionmaker(engine)


# ------------------------------------------------------------------ the long-offline device


@dataclass
class Workload:
    """What :func:`record_offline_days` recorded."""

    ops: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.ops.values())


#: The mix of a rep's day: mostly sales, a count now and then, write-offs, refill requests.
MIX = (("sale", 0.80), ("write_off", 0.08), ("count", 0.07), ("refill", 0.05))
#: Sales only (what the office records meanwhile, in the process tests).
SALES = (("sale", 1.0),)


def record_offline_days(
    factory: SessionFactory,
    actor: Actor,
    stands: Sequence[str],
    *,
    days: int,
    ops: int,
    start: datetime,
    seed: int = 0,
    mix: Sequence[tuple[str, float]] = MIX,
    on_day: Callable[[int, Workload], None] | None = None,
) -> Workload:
    """Record ``ops`` ops on the device, spread over ``days`` simulated days from ``start``
    (a 12-hour working day each, from 8 h after ``start``'s time of day), through the real
    services: every sale, count, write-off and refill request is its own transaction,
    stamped with its simulated time (``occurred_at`` / ``counted_at`` / ``now``). The
    device never syncs meanwhile.
    Refusals (none are expected) are counted and do not count towards ``ops``."""
    rng = random.Random(seed)
    with factory() as s, s.begin():
        carried = {
            stand: list(
                s.scalars(
                    select(StandInventory.product_id)
                    .where(StandInventory.stand_id == stand)
                    .order_by(StandInventory.product_id)
                )
            )
            for stand in stands
        }
    kinds = [k for k, _ in mix]
    weights = [w for _, w in mix]
    out = Workload()
    began = time.perf_counter()
    for day in range(days):
        todo = ops // days + (1 if day < ops % days else 0)
        opening = start + timedelta(days=day, hours=8)
        step = timedelta(hours=12) / max(1, todo)
        done = 0
        with factory() as s:
            while done < todo:
                at = opening + step * done
                stand = rng.choice(stands)
                skus = carried[stand]
                kind = rng.choices(kinds, weights)[0]
                try:
                    _one_action(s, actor, rng, kind, stand, skus, at)
                except DomainError as exc:
                    out.refused[f"{kind}: {exc}"] += 1
                    if sum(out.refused.values()) > 100:
                        raise
                    continue
                out.ops[kind] += 1
                done += 1
        if on_day is not None:
            on_day(day, out)
    out.seconds = time.perf_counter() - began
    return out


def _one_action(
    s: Session,
    actor: Actor,
    rng: random.Random,
    kind: str,
    stand: str,
    skus: list[str],
    at: datetime,
) -> None:
    if kind == "sale":
        lines = [sales.SaleLine(p, rng.randint(1, 3)) for p in rng.sample(skus, rng.randint(1, 3))]
        sales.record_sale(
            s, actor, stand, lines, rng.choice(["cash", "qr", "card"]), occurred_at=at
        )
    elif kind == "write_off":
        inventory.record_stock_change(
            s,
            actor,
            stand,
            rng.choice(skus),
            rng.randint(1, 2),
            kind=MovementKind.WRITE_OFF,
            note=rng.choice(["Damaged", "Expired"]),
            occurred_at=at,
        )
    elif kind == "count":
        counted = {p: rng.randint(5, 40) for p in rng.sample(skus, rng.randint(1, len(skus)))}
        inventory.record_count(s, actor, stand, counted, counted_at=at)
    else:
        wanted = {p: rng.randint(6, 24) for p in rng.sample(skus, rng.randint(1, 2))}
        refills.request_refill(s, actor, stand, wanted, now=at)


# ------------------------------------------------------------------ entry point


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.sync.procs")
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("client", help="sync rounds of the real client until one completes")
    c.add_argument("--db", required=True, type=Path)
    c.add_argument("--url", required=True)
    c.add_argument("--token", required=True)
    c.add_argument("--push-batch", type=int, default=500)
    c.add_argument("--page-size", type=int, default=1000)
    c.add_argument("--max-attempts", type=int, default=6)
    c.add_argument("--rounds", type=int, default=5)
    c.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    return _client_main(args)


if __name__ == "__main__":
    sys.exit(main())
