"""Load benchmark of the server: requests per second and latency under concurrent clients.

    .venv/bin/python bench/bench_server.py [--db PATH] [--stands 500] [--days 90]
                                           [--seconds 10] [--warmup 2] [--clients 50]
                                           [--backends sqlite,postgresql] [--workers 1,2]
                                           [--endpoints list,details,sales,mixed]
                                           [--mix 60,30,10] [--seed 7]

Builds a demo program with :func:`app.demo.generate_demo` (cached at
``build/bench-server-<stands>x<days>.db``, or ``--db PATH``; a missing file is built and
kept) and serves a fresh copy of it with ``standctl serve`` in a subprocess on 127.0.0.1:
one uvicorn worker on SQLite; on PostgreSQL once per ``--workers`` count, each on its own
copy of the program in a throwaway PostgreSQL 15 cluster (tests/pgcluster.py), copied in
from the SQLite file. Three users are added to each copy before its server starts (an
admin, the manager of the largest region and a rep with the largest territory) and sign in
with a password.

``--clients`` clients (asyncio and one httpx.AsyncClient allowing as many connections) then
send requests back to back, each endpoint for ``--warmup`` seconds (not counted) and then
``--seconds`` seconds:

- ``list``: ``GET /api/v1/stand/list?limit=50``, as the admin (the first page, with
  ``status=active``, with a text search, a later page by cursor), as the manager (the
  region, and the region's stands needing attention) and as the rep (the territory);
- ``details``: ``GET /api/v1/stand/{id}/details`` of a random stand the caller may see;
- ``sales``: ``POST /api/v1/stand/sales-record``: a new order id, 1 to 3 lines of products
  the stand carries, at an active stand the caller may see;
- ``mixed``: those three at random in the proportions of ``--mix`` (details, list, sales).

Callers are chosen at random per request: half the admin, a quarter each the manager and
the rep. Latency is from sending a request until its whole response is read, so it includes
the time a request waits for a free server thread. The CPU columns are the share of one
core used during the timed part by the server's processes, PostgreSQL's processes, this
load generator and everything else on the machine ("other"): they all share its cores, so
compare rows only when "other" is small. Every answer must have the expected status (200,
or 201 for a sale); otherwise samples of the problem bodies are printed and the exit status
is 1. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import itertools
import math
import os
import platform
import random
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, delete, make_url, select, text
from sqlalchemy.orm import Session

from app.db import create_db_engine, open_db
from app.demo import generate_demo
from app.ids import new_id
from app.models import Base, Role, StandInventory, StandLocation, StandPartner, StandStatus
from app.services import users

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
API = "/api/v1"
PASSWORD = "bench-password-123"
TOKEN_TTL = timedelta(days=1)
LIST_LIMIT = 50
ENDPOINTS = ("list", "details", "sales", "mixed")
#: Who calls, and how often (the admin sees everything; the others are scoped).
CALLERS = (("admin", 0.5), ("manager", 0.25), ("rep", 0.25))
EXPECTED = {"list": 200, "details": 200, "sales": 201}


# ------------------------------------------------------------------ the program


@dataclass(frozen=True)
class Program:
    """What the requests are made of, read from the demo database."""

    stands: int
    orders: int
    region: str  # the manager's: the region with the most stands
    territory: str  # the rep's: the assigned rep with the most stands
    city: str  # a text search that finds stands
    #: caller -> the stands they may see (details)
    visible: dict[str, list[str]]
    #: caller -> the active stands they may see, with the products each carries (sales)
    sellable: dict[str, list[tuple[str, list[str]]]]
    region_partners: frozenset[str]


def _read_program(session: Session) -> Program:
    rows = session.execute(
        select(
            StandLocation.id,
            StandLocation.status,
            StandLocation.assigned_rep,
            StandLocation.city,
            StandPartner.id,
            StandPartner.region,
        ).join(StandPartner, StandPartner.id == StandLocation.partner_id)
    ).all()
    carried: dict[str, list[str]] = defaultdict(list)
    for stand_id, product_id in session.execute(
        select(StandInventory.stand_id, StandInventory.product_id).order_by(
            StandInventory.stand_id, StandInventory.product_id
        )
    ):
        carried[stand_id].append(product_id)
    orders = session.execute(text("SELECT count(*) FROM stand_order")).scalar_one()
    regions = Counter(r[5] for r in rows if r[5])
    reps = Counter(r[2] for r in rows if r[2] and r[1] == StandStatus.ACTIVE)
    cities = Counter(r[3] for r in rows)
    region = regions.most_common(1)[0][0]
    territory = reps.most_common(1)[0][0]
    in_scope: dict[str, Callable[[Any], bool]] = {
        "admin": lambda r: True,
        "manager": lambda r: r[5] == region,
        "rep": lambda r: r[2] == territory,
    }
    visible = {c: sorted(r[0] for r in rows if f(r)) for c, f in in_scope.items()}
    sellable = {
        c: [
            (r[0], carried[r[0]])
            for r in sorted(rows)
            if f(r) and r[1] == StandStatus.ACTIVE and carried[r[0]]
        ]
        for c, f in in_scope.items()
    }
    return Program(
        stands=len(rows),
        orders=int(orders),
        region=region,
        territory=territory,
        city=cities.most_common(1)[0][0],
        visible=visible,
        sellable=sellable,
        region_partners=frozenset(r[4] for r in rows if r[5] == region),
    )


def _build(path: Path, stands: int, days: int) -> float:
    print(f"building a demo program: {stands} stands, {days} days -> {path}", file=sys.stderr)
    t0 = time.perf_counter()
    factory = open_db(f"sqlite:///{path}")
    generate_demo(factory, stands=stands, days=days, seed=7)
    factory.kw["bind"].dispose()
    return time.perf_counter() - t0


def _add_users(url: str, prog: Program) -> dict[str, str]:
    """The bench's three users on the served database; caller -> bearer token."""
    factory = open_db(url, migrate=False)
    names = {"admin": "bench.admin", "manager": "bench.manager", "rep": "bench.rep"}
    tokens = {}
    try:
        with factory() as s, s.begin():
            users.add_user(s, names["admin"], PASSWORD, Role.ADMIN)
            users.add_user(s, names["manager"], PASSWORD, Role.MANAGER, region=prog.region)
            users.add_user(s, names["rep"], PASSWORD, Role.REP, territory=prog.territory)
            for caller, name in names.items():
                tokens[caller] = users.token_for_password(s, name, PASSWORD, ttl=TOKEN_TTL).token
    finally:
        factory.kw["bind"].dispose()
    return tokens


# ------------------------------------------------------------------ PostgreSQL


def _copy_to_postgres(sqlite_path: Path, url: str) -> float:
    """Copy the demo program table by table (in dependency order) into the empty, migrated
    PostgreSQL database at ``url``, with COPY; the column types convert the values (money
    as NUMERIC, times as timestamptz). Twice as fast as generating the demo there."""
    t0 = time.perf_counter()
    source = create_db_engine(f"sqlite:///{sqlite_path}")
    target = open_db(url).kw["bind"]
    tables = Base.metadata.sorted_tables
    try:
        with target.begin() as dst, source.connect() as src:
            for table in reversed(tables):
                dst.execute(delete(table))
            dialect = dst.dialect
            raw = dst.connection.driver_connection
            assert raw is not None
            for table in tables:
                processors = [
                    c.type.dialect_impl(dialect).bind_processor(dialect) for c in table.columns
                ]
                columns = ", ".join(f'"{c.name}"' for c in table.columns)
                with raw.cursor().copy(f'COPY "{table.name}" ({columns}) FROM STDIN') as copy:
                    for row in src.execute(select(table)):
                        copy.write_row(
                            [
                                v if p is None or v is None else p(v)
                                for p, v in zip(processors, row, strict=True)
                            ]
                        )
        with target.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
    finally:
        source.dispose()
        target.dispose()
    return time.perf_counter() - t0


def _clone_database(template_url: str, name: str) -> str:
    """A new database ``name`` on the same cluster, a copy of the template's (no one may
    be connected to the template)."""
    base, template = template_url.rsplit("/", 1)
    admin = create_engine(base + "/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        admin.dispose()
    return f"{base}/{name}"


@contextlib.contextmanager
def _postgres() -> Iterator[tuple[str, str] | None]:
    """A throwaway cluster: (URL of its empty database, server version), or None when no
    PostgreSQL server is installed."""
    # tests/ is not an installed package: import the cluster helper from the checkout.
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    pgcluster = importlib.import_module("tests.pgcluster")
    bin_dir = pgcluster.find_pg_bin()
    if bin_dir is None:
        yield None
        return
    with pgcluster.postgres_cluster(bin_dir) as url:
        engine = create_engine(url)
        with engine.connect() as conn:
            version = conn.exec_driver_sql("SHOW server_version").scalar_one()
        engine.dispose()
        yield url, str(version).split()[0]


# ------------------------------------------------------------------ the server process


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_command(url: str, port: int, workers: int) -> list[str]:
    """``standctl serve`` of this checkout's environment (next to this Python)."""
    standctl = str(Path(sys.executable).with_name("standctl"))
    return [
        standctl,
        "serve",
        "--database-url",
        url,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
    ]


@dataclass
class ServerProcess:
    proc: subprocess.Popen[bytes]
    base_url: str
    log: Path
    started_in: float

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # uvicorn stops its workers and exits
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: see start
                self.proc.wait(timeout=10)


def _start_server(url: str, workers: int, log: Path) -> ServerProcess:
    port = _free_port()
    t0 = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            _server_command(url, port, workers),
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = ServerProcess(proc, f"http://127.0.0.1:{port}", log, 0.0)
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}):\n{log.read_text()}")
        try:
            if httpx.get(server.base_url + API + "/health", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"the server did not answer in 90 s:\n{log.read_text()}")
        time.sleep(0.1)
    if workers > 1:
        # The first worker answers while the others may still be starting: wait for all.
        while len(_descendants(proc.pid)) < workers and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
    server.started_in = time.perf_counter() - t0
    return server


# ------------------------------------------------------------------ CPU use

_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Proc:
    ppid: int
    name: str
    #: CPU seconds of the process and of its children that have ended (and been waited
    #: for): summed over a tree, that counts workers or PostgreSQL backends that came and
    #: went during a run.
    cpu: float


def _processes() -> dict[int, Proc]:
    """Every process we can read, by pid."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        f = stat[stat.rindex(")") + 2 :].split()
        ticks = int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
        out[int(entry.name)] = Proc(int(f[1]), name, ticks / _TICK)
    return out


def _descendants(pid: int, procs: dict[int, Proc] | None = None) -> set[int]:
    procs = _processes() if procs is None else procs
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for child, proc in procs.items():
            if proc.ppid == parent and child not in found:
                found.add(child)
                todo.append(child)
    return found


def _postmaster(port: int) -> int | None:
    """The pid of the PostgreSQL server listening on ``port`` (ours, not another one)."""
    for pid, proc in _processes().items():
        if not proc.name.startswith("postgres"):
            continue
        with contextlib.suppress(OSError):
            args = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
            if any(a == b"-p" and b == str(port).encode() for a, b in itertools.pairwise(args)):
                return pid
    return None


def _machine_busy() -> float:
    """CPU seconds all cores have been busy since boot (/proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / _TICK


@dataclass(frozen=True)
class CpuSample:
    server: float
    database: float
    load: float
    machine: float
    at: float


def _tree_cpu(root: int | None, procs: dict[int, Proc]) -> float:
    if root is None or root not in procs:
        return 0.0
    return sum(procs[p].cpu for p in {root} | _descendants(root, procs) if p in procs)


def _cpu(server_pid: int, db_pid: int | None) -> CpuSample:
    procs = _processes()
    return CpuSample(
        server=_tree_cpu(server_pid, procs),
        database=_tree_cpu(db_pid, procs),
        load=time.process_time(),
        machine=_machine_busy(),
        at=time.perf_counter(),
    )


# ------------------------------------------------------------------ requests


@dataclass(frozen=True)
class Request:
    kind: str  # endpoint and variant, e.g. "list rep (territory)"
    endpoint: str
    method: str
    path: str
    caller: str
    params: dict[str, Any] | None = None
    json: dict[str, Any] | None = None


Maker = Callable[[random.Random], Request]


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([k for k, _ in weighted], [w for _, w in weighted])[0]


def _list_variants(cursor: str) -> list[tuple[float, str, str, dict[str, Any]]]:
    """(weight, kind, caller, query) of the list requests."""
    return [
        (0.25, "list admin", "admin", {}),
        (0.15, "list admin status=active", "admin", {"status": "active"}),
        (0.10, "list admin q=<city>", "admin", {"q": "CITY"}),
        (0.10, "list admin page 3 (cursor)", "admin", {"cursor": cursor}),
        (0.15, "list manager (region)", "manager", {}),
        (0.10, "list manager needs_attention", "manager", {"needs_attention": "true"}),
        (0.15, "list rep (territory)", "rep", {}),
    ]


def _makers(prog: Program, cursor: str, mix: tuple[float, float, float]) -> dict[str, Maker]:
    variants = _list_variants(cursor)
    for _w, _k, _c, query in variants:
        if query.get("q") == "CITY":
            query["q"] = prog.city

    def list_request(rng: random.Random) -> Request:
        _w, kind, caller, query = rng.choices(variants, [v[0] for v in variants])[0]
        return Request(
            kind, "list", "GET", f"{API}/stand/list", caller, {"limit": LIST_LIMIT, **query}
        )

    def details(rng: random.Random) -> Request:
        caller = _pick(rng, CALLERS)
        stand = rng.choice(prog.visible[caller])
        return Request(
            f"details {caller}", "details", "GET", f"{API}/stand/{stand}/details", caller
        )

    def sale(rng: random.Random) -> Request:
        caller = _pick(rng, CALLERS)
        stand, products = rng.choice(prog.sellable[caller])
        lines = [
            {"product": p, "quantity": rng.randint(1, 2)}
            for p in rng.sample(products, min(len(products), rng.randint(1, 3)))
        ]
        body = {
            "order_id": new_id(),
            "stand_id": stand,
            "payment_method": rng.choice(("cash", "qr", "card")),
            "lines": lines,
        }
        return Request(
            f"sales {caller}", "sales", "POST", f"{API}/stand/sales-record", caller, json=body
        )

    single = {"list": list_request, "details": details, "sales": sale}
    ordered = (details, list_request, sale)

    def mixed(rng: random.Random) -> Request:
        return rng.choices(ordered, mix)[0](rng)

    return {**single, "mixed": mixed}


# ------------------------------------------------------------------ the load


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter[tuple[str, int | str]] = field(default_factory=Counter)
    #: (endpoint, status) -> up to three answers that were not as expected
    samples: dict[tuple[str, int | str], list[str]] = field(default_factory=dict)
    errors: int = 0
    first: float = 0.0
    last: float = 0.0

    def record(self, req: Request, status: int | str, started: float, ended: float) -> None:
        self.latencies[req.kind].append(ended - started)
        self.statuses[(req.endpoint, status)] += 1
        self.last = max(self.last, ended)

    def failed(self, req: Request, status: int | str, body: str, at: float) -> None:
        self.errors += 1
        bucket = self.samples.setdefault((req.endpoint, status), [])
        if len(bucket) < 3:
            when = f"{at - self.first:.2f} s in"
            bucket.append(f"{req.method} {req.path} ({when}): {body[:600]}")

    def all_latencies(self) -> list[float]:
        return [t for ts in self.latencies.values() for t in ts]

    @property
    def requests(self) -> int:
        return sum(len(ts) for ts in self.latencies.values())


async def _drive(
    client: httpx.AsyncClient,
    make: Maker,
    tokens: dict[str, str],
    args: argparse.Namespace,
    warm: Stats,
    stats: Stats,
    pids: tuple[int, int | None],
) -> tuple[CpuSample, CpuSample]:
    """``args.clients`` loops sending requests back to back: for ``args.warmup`` seconds
    into ``warm``, then on without a pause (no connection idles between the two) for
    ``args.seconds`` seconds into ``stats``. A request counts where it started. The CPU
    use is sampled when the timed part starts and ends."""
    headers = {c: {"Authorization": f"Bearer {t}"} for c, t in tokens.items()}
    warm.first = time.perf_counter()
    stats.first = warm.first + args.warmup
    deadline = stats.first + args.seconds
    samples: list[CpuSample] = []

    async def sample_cpu() -> None:
        for at in (stats.first, deadline):
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            samples.append(_cpu(*pids))

    async def one_client(n: int) -> None:
        rng = random.Random(args.seed * 1000 + n)
        while (t0 := time.perf_counter()) < deadline:
            req = make(rng)
            into = warm if t0 < stats.first else stats
            try:
                r = await client.request(
                    req.method,
                    req.path,
                    params=req.params,
                    json=req.json,
                    headers=headers[req.caller],
                )
                status: int | str = r.status_code
                body = r.text
            except httpx.HTTPError as exc:
                status, body = type(exc).__name__, repr(exc)
            into.record(req, status, t0, time.perf_counter())
            if status != EXPECTED[req.endpoint]:
                into.failed(req, status, body, t0)

    await asyncio.gather(sample_cpu(), *(one_client(n) for n in range(args.clients)))
    return samples[0], samples[1]


def _client(base_url: str, clients: int) -> httpx.AsyncClient:
    # uvicorn closes a connection idle for 5 s; a client that keeps idle connections as
    # long (httpx's default) can send on one just as the server closes it and gets a
    # reset. Idle connections are dropped well before that here.
    limits = httpx.Limits(
        max_connections=clients, max_keepalive_connections=clients, keepalive_expiry=2.0
    )
    return httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60)


@dataclass(frozen=True)
class Run:
    endpoint: str
    backend: str
    workers: int
    clients: int
    stats: Stats
    warmup: Stats
    #: % of one core during the timed part: server, database, load generator, and other
    #: processes on the machine (not ours)
    cpu: tuple[float, float, float, float]

    @property
    def elapsed(self) -> float:
        return max(1e-9, self.stats.last - self.stats.first)

    @property
    def rps(self) -> float:
        return self.stats.requests / self.elapsed


async def _measure(
    base_url: str,
    pids: tuple[int, int | None],
    endpoint: str,
    make: Maker,
    tokens: dict[str, str],
    args: argparse.Namespace,
    label: tuple[str, int],
) -> Run:
    warm, stats = Stats(), Stats()
    async with _client(base_url, args.clients) as client:
        before, after = await _drive(client, make, tokens, args, warm, stats, pids)
    wall = after.at - before.at

    def pct(a: float, b: float) -> float:
        return 100 * (b - a) / wall

    ours = (
        pct(before.server, after.server),
        pct(before.database, after.database),
        pct(before.load, after.load),
    )
    cpu = (*ours, max(0.0, pct(before.machine, after.machine) - sum(ours)))
    return Run(endpoint, label[0], label[1], args.clients, stats, warm, cpu)


# ------------------------------------------------------------------ one server


def _preflight(base_url: str, tokens: dict[str, str], prog: Program) -> tuple[str, list[str]]:
    """One request of each kind, checked, before any load; (a cursor to page 3, problems)."""
    problems: list[str] = []
    with httpx.Client(base_url=base_url, timeout=60) as c:

        def get(caller: str, path: str, **params: Any) -> Any:
            r = c.get(path, params=params, headers={"Authorization": f"Bearer {tokens[caller]}"})
            if r.status_code != 200:
                problems.append(f"GET {path} {params} as {caller}: {r.status_code} {r.text[:400]}")
                return {"items": [], "next_cursor": None}
            return r.json()

        page = get("admin", f"{API}/stand/list", limit=LIST_LIMIT)
        page = get("admin", f"{API}/stand/list", limit=LIST_LIMIT, cursor=page["next_cursor"])
        cursor = page["next_cursor"] or ""
        rep = get("rep", f"{API}/stand/list", limit=200)["items"]
        if {s["assigned_rep"] for s in rep} - {prog.territory} or not rep:
            problems.append(f"the rep's list has {len(rep)} stands, not all theirs")
        mgr = get("manager", f"{API}/stand/list", limit=200)["items"]
        if {s["partner_id"] for s in mgr} - prog.region_partners or not mgr:
            problems.append(f"the manager's list has {len(mgr)} stands, not all in the region")
        get("rep", f"{API}/stand/{prog.visible['rep'][0]}/details")
    return cursor, problems


def _serve_and_measure(
    url: str, backend: str, workers: int, prog: Program, args: argparse.Namespace, tmp: Path
) -> tuple[list[Run], list[str], float, Path | None]:
    """Serve ``url`` and measure each endpoint: (runs, preflight problems, seconds the
    server took to start, where its log was kept when anything failed)."""
    tokens = _add_users(url, prog)
    print(f"  {backend}, {workers} worker(s): starting the server", file=sys.stderr)
    server = _start_server(url, workers, tmp / f"server-{backend}-{workers}.log")
    port = make_url(url).port
    db_pid = _postmaster(port) if backend == "postgresql" and port else None
    runs: list[Run] = []
    problems: list[str] = []
    try:
        cursor, problems = _preflight(server.base_url, tokens, prog)
        if problems:
            return runs, problems, server.started_in, _keep_log(server.log)
        makers = _makers(prog, cursor, args.mix)
        for endpoint in args.endpoints:
            print(f"  {backend}, {workers} worker(s): {endpoint}", file=sys.stderr)
            runs.append(
                asyncio.run(
                    _measure(
                        server.base_url,
                        (server.proc.pid, db_pid),
                        endpoint,
                        makers[endpoint],
                        tokens,
                        args,
                        (backend, workers),
                    )
                )
            )
    finally:
        server.stop()
    failed = problems or any(r.stats.errors or r.warmup.errors for r in runs)
    return runs, [], server.started_in, _keep_log(server.log) if failed else None


def _keep_log(log: Path) -> Path:
    """Keep a server's log (it lives in a temporary folder) in build/."""
    kept = BUILD / log.name
    shutil.copyfile(log, kept)
    return kept


# ------------------------------------------------------------------ output


def _pct(values: list[float], q: float) -> float:
    """The nearest-rank percentile ``q`` (0..100) of ``values``, in ms."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(q / 100 * len(ordered))))
    return 1000 * ordered[rank - 1]


def _table(runs: list[Run]) -> None:
    head = (
        f"{'endpoint':9s} {'backend':10s} {'workers':>7s} {'clients':>7s} {'requests':>9s} "
        f"{'rps':>7s} {'p50 ms':>7s} {'p99 ms':>7s} {'errors':>6s}  "
        f"{'CPU % server / db / load / other':>32s}"
    )
    print(head)
    print("-" * len(head))
    for r in runs:
        lat = r.stats.all_latencies()
        db = "-" if r.backend == "sqlite" else f"{r.cpu[1]:.0f}"
        cpu = f"{r.cpu[0]:.0f} / {db} / {r.cpu[2]:.0f} / {r.cpu[3]:.0f}"
        print(
            f"{r.endpoint:9s} {r.backend:10s} {r.workers:>7d} {r.clients:>7d} "
            f"{r.stats.requests:>9,d} {r.rps:>7.1f} {_pct(lat, 50):>7.1f} {_pct(lat, 99):>7.1f} "
            f"{r.stats.errors:>6d}  {cpu:>32s}"
        )


def _kinds_table(runs: list[Run]) -> None:
    """p50 / p99 per kind of request, one column a server (kinds of the mixed runs are
    prefixed "mixed: ")."""
    configs = list(dict.fromkeys((r.backend, r.workers) for r in runs))
    if not configs:
        return
    by: dict[tuple[str, int], dict[str, list[float]]] = defaultdict(dict)
    for r in runs:
        prefix = "mixed: " if r.endpoint == "mixed" else ""
        by[(r.backend, r.workers)].update({prefix + k: v for k, v in r.stats.latencies.items()})
    kinds = list(dict.fromkeys(k for lat in by.values() for k in lat))
    width = 20
    head = f"{'request':32s}" + "".join(f"{f'{b} x{w}':>{width}s}" for b, w in configs)
    print(head)
    print(f"{'':32s}" + "".join(f"{'n  p50 / p99 ms':>{width}s}" for _ in configs))
    print("-" * len(head))
    for kind in kinds:
        cells = []
        for config in configs:
            lat = by[config].get(kind, [])
            cells.append(
                f"{len(lat):>5d} {_pct(lat, 50):5.0f} / {_pct(lat, 99):4.0f}" if lat else "-"
            )
        print(f"{kind:32s}" + "".join(f"{c:>{width}s}" for c in cells))


def _failures(runs: list[Run]) -> int:
    bad = 0
    for r in runs:
        for label, stats in (("warm-up", r.warmup), ("timed", r.stats)):
            off = {k: n for k, n in stats.statuses.items() if k[1] != EXPECTED.get(k[0], 200)}
            if not off:
                continue
            bad += sum(off.values())
            counts = ", ".join(f"{e} {s}: {n}" for (e, s), n in sorted(off.items(), key=str))
            print(f"! {r.endpoint} on {r.backend} x{r.workers} ({label}): {counts}")
            for key, bodies in stats.samples.items():
                for body in bodies:
                    print(f"    {key[0]} {key[1]}: {body}")
    return bad


def _status_counts(runs: list[Run]) -> None:
    total: Counter[tuple[str, int | str]] = Counter()
    for r in runs:
        total.update(r.stats.statuses)
        total.update(r.warmup.statuses)
    text_ = ", ".join(f"{e} {s}: {n:,}" for (e, s), n in sorted(total.items(), key=str))
    print(f"statuses    {text_} (warm-up included)")


# ------------------------------------------------------------------ main


def _code_state() -> str:
    def git(*a: str) -> str:
        return subprocess.run(
            ["git", *a], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout

    try:
        head = git("rev-parse", "--short", "HEAD").strip()
        changed = git("status", "--porcelain", "--", "app", "sync").splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    return head + (f" + {len(changed)} uncommitted files in app/, sync/" if changed else "")


def _copy_sqlite(src: Path, dst: Path) -> None:
    # A clean copy: fold any write-ahead log into the file first.
    with contextlib.closing(sqlite3.connect(src)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copyfile(src, dst)


def run(args: argparse.Namespace) -> int:
    print("$ " + shlex.join(sys.orig_argv))
    wall0 = time.perf_counter()
    code = _code_state()
    path = Path(args.db) if args.db else BUILD / f"bench-server-{args.stands}x{args.days}.db"
    built = None if path.exists() else _build(path, args.stands, args.days)
    engine = create_db_engine(f"sqlite:///{path}")
    try:
        with Session(engine) as s:
            prog = _read_program(s)
    finally:
        engine.dispose()

    runs: list[Run] = []
    problems: list[str] = []
    notes: list[str] = []
    started: list[str] = []
    logs: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="bench-server-") as tmp_name:
        tmp = Path(tmp_name)
        if "sqlite" in args.backends:
            db = tmp / "server.db"
            _copy_sqlite(path, db)
            got, bad, took, log = _serve_and_measure(
                f"sqlite:///{db}", "sqlite", 1, prog, args, tmp
            )
            runs += got
            problems += bad
            logs += [log] if log else []
            started.append(f"sqlite x1 {took:.1f} s")
        if "postgresql" in args.backends:
            with _postgres() as pg:
                if pg is None:
                    notes.append("PostgreSQL: no server installed (postgresql-NN); skipped")
                else:
                    template, version = pg
                    print("  copying the program into PostgreSQL", file=sys.stderr)
                    copied = _copy_to_postgres(path, template)
                    notes.append(
                        f"PostgreSQL {version}, a throwaway cluster (tests/pgcluster.py: "
                        f"fsync=off, unlike SQLite's synchronous=FULL); program copied in "
                        f"{copied:.1f} s, a fresh copy per worker count"
                    )
                    for i, workers in enumerate(args.workers):
                        url = _clone_database(template, f"bench_{i}_w{workers}")
                        got, bad, took, log = _serve_and_measure(
                            url, "postgresql", workers, prog, args, tmp
                        )
                        runs += got
                        problems += bad
                        logs += [log] if log else []
                        started.append(f"postgresql x{workers} {took:.1f} s")

    size = path.stat().st_size / 2**20
    print()
    print(f"code        {code}")
    print(f"database    {path} ({size:,.0f} MiB), copied fresh for each server")
    if built is not None:
        print(f"built in    {built:.1f} s ({args.stands:,} stands, {args.days} days, seed 7)")
    print(
        f"program     {prog.stands:,} stands, {prog.orders:,} orders; manager: region "
        f"{prog.region} ({len(prog.visible['manager'])} stands); rep: {prog.territory} "
        f"({len(prog.visible['rep'])} stands)"
    )
    print(
        f"load        {args.clients} clients (asyncio, httpx {httpx.__version__}), "
        f"{args.warmup:g} s warm-up + {args.seconds:g} s per row; mixed = "
        f"{args.mix[0]:g}% details, {args.mix[1]:g}% list, {args.mix[2]:g}% sales"
    )
    print(
        f"machine     {os.cpu_count()} CPUs, shared by the load generator, the server, the "
        f"database and any other process (CPU % below: 100 = one core busy); "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )
    for note in notes:
        print(f"note        {note}")
    print(f"started in  {', '.join(started)} (until /health answers)")
    print()
    bad = len(problems)
    if problems:
        print("preflight failed:")
        for p in problems:
            print(f"  {p}")
    else:
        _table(runs)
        print()
        _kinds_table(runs)
        print()
        _status_counts(runs)
        bad = _failures(runs)
    for log in logs:
        print(f"server log  {log} (kept: something failed); its end:")
        for line in log.read_text(errors="replace").splitlines()[-15:]:
            print(f"    {line}")
    print(f"wall time   {time.perf_counter() - wall0:.1f} s")
    return 1 if bad else 0


def _csv(kind: Callable[[str], Any]) -> Callable[[str], list[Any]]:
    return lambda value: [kind(v.strip()) for v in value.split(",") if v.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="the demo program to serve copies of (built if missing)")
    parser.add_argument("--stands", type=int, default=500, help="stands when building")
    parser.add_argument("--days", type=int, default=90, help="days of history when building")
    parser.add_argument("--seconds", type=float, default=10, help="timed seconds per row")
    parser.add_argument("--warmup", type=float, default=2, help="untimed seconds before each")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients")
    parser.add_argument(
        "--backends",
        type=_csv(str),
        default=["sqlite", "postgresql"],
        help="comma-separated: sqlite, postgresql",
    )
    parser.add_argument(
        "--workers",
        type=_csv(int),
        default=[1, 2],
        help="server worker processes on PostgreSQL, comma-separated (SQLite: always 1)",
    )
    parser.add_argument(
        "--endpoints",
        type=_csv(str),
        default=list(ENDPOINTS),
        help="comma-separated: " + ", ".join(ENDPOINTS),
    )
    parser.add_argument(
        "--mix",
        type=_csv(float),
        default=[60.0, 30.0, 10.0],
        help="percent details, list, sales in the mixed run",
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    for b in args.backends:
        if b not in ("sqlite", "postgresql"):
            parser.error(f"unknown backend {b!r}")
    for e in args.endpoints:
        if e not in ENDPOINTS:
            parser.error(f"unknown endpoint {e!r}")
    if len(args.mix) != 3:
        parser.error("--mix takes three numbers: details, list, sales")
    args.mix = tuple(args.mix)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
