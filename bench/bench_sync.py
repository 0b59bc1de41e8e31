"""Sync benchmark: push throughput, pull apply rate, an incremental round and a bootstrap,
against the real server on 127.0.0.1 (issue 7's figures).

    .venv/bin/python bench/bench_sync.py [--stands 500] [--days 155] [--ops 20000]
                                         [--offline-days 14] [--seeds 7] [--repeats 5]
                                         [--push-batch 500] [--push-batch-max 2000]
                                         [--page-size 1000]
                                         [--phases incremental,bootstrap] [--pg]
                                         [--profile] [--quick] [--keep]
                                         [--build build] [--folder build/bench-sync]

1. **Program**: a demo program (:func:`app.demo.generate_demo`, seed 7) of ``--stands`` x
   ``--days``, cached at ``<build>/bench-sync-<stands>x<days>.db``. 500 x 155 is about one
   million rows in the synced tables (500 x 365, ``make bench``'s demo size, is 2.6 million).
   A copy is served by ``standctl serve`` (one uvicorn worker) in a subprocess on a free
   127.0.0.1 port; with ``--pg`` the copy is loaded into a throwaway PostgreSQL 15 cluster
   (tests/pgcluster.py, as bench/bench_server.py does). bench_server.py's three users sign
   in: the devices belong to its rep (the territory with the most active stands), the
   bootstrap to its admin.
2. **Push**: device A (a copy of the server's data, as tests/sync/devices.py makes them;
   with ``--pg`` a copy of the SQLite program that pulls to catch up) records ``--ops`` ops
   through the real services, one transaction each, over ``--offline-days`` simulated days
   across the rep's stands (80 % sales, 8 % write-offs, 7 % counts, 5 % refill requests:
   tests/sync/procs.py ``record_offline_days``). That generation is timed on its own. Then
   ``SyncClient.push()`` as the app runs it (batches of ``--push-batch`` that grow up to
   ``--push-batch-max`` while more wait): the wall time of the push alone gives ops/s; per
   batch the HTTP round trip (the server's apply included) and the client's time between
   requests (its worker thread stores the answers and reads the next batch beside each
   request).
3. **Pull**: device B, copied with A (before the ops), pulls them: ``SyncClient.pull()``,
   every page applied with its cursor in one transaction. rows/s counts the rows the pull
   added to B's synced tables (an op writes several: a sale its order, items, movements
   and loyalty entry); ops/s counts feed rows. Before that the same pages are fetched
   without applying them (the server's serve rate).
4. **Incremental**: ``--repeats`` times: device B records 50 sales and syncs (untimed),
   then A records 100 ops and one ``round()`` (push + pull, end to end) is timed on a
   long-lived client. The median is compared with the aim.
5. **Bootstrap** (when ``SyncClient.bootstrap`` exists): an empty device database signs in
   as the admin and downloads the whole program in a child process (its peak memory is
   the device's); a second download dies half way (``os._exit`` from the client's fault
   hook, as a kill would leave it) and a third process resumes it.

After each phase the invariants are checked, and the exit status is 1 when one fails (or
when a client gives up): every op on the server exactly once and none rejected
(procs.once_on_server), the devices equal to the server table by table with their
``on_hand`` caches right and nothing pending (tests/sync/devices.converged, which runs
``inventory.verify_on_hand`` on every database). Speed never fails the run: each figure
is printed with its aim and PASS or BELOW AIM. The machine is shared, so each phase also
prints the CPU seconds of the client, the server, PostgreSQL and everything else, and the
push and pull figures a rate per CPU-second (what an idle machine would come near).

``--seeds 7,8,9`` runs the push and pull phases once per workload seed, each on new
devices. ``--profile`` runs the server under cProfile (every thread), and the client's
push and pull and the bootstrap processes too, and prints where the time goes. ``--quick``
is a smoke run (20 stands x 14 days, 300 ops, 2 repeats). The work folder is removed
after a run whose invariants hold, unless ``--keep``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import shlex
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, make_url, select
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
# tests/ is not an installed package: the workload and the checks come from the checkout.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import bench_server as bs  # this folder: the server, cluster and demo helpers

from app.clock import utcnow
from app.db import SessionFactory, create_db_engine, open_db
from app.models import Base, Role, StandInventory, StandLocation, StandStatus
from app.reference import seed_reference_data
from app.services import feed, snapshot, sync_device
from app.services.base import Actor
from sync.client import GROW_TO, SyncClient, SyncError
from tests.app.apply.replay import synced_tables
from tests.sync import procs
from tests.sync.devices import Device, converged, make_device

API = "/api/v1"
PUSH_AIM = 3_000.0  # ops/s
PULL_AIM = 10_000.0  # rows/s
ROUND_AIM = 1.0  # s
INCREMENTAL_OPS = 100
OTHER_DEVICE_OPS = 50
REP = Actor("bench.rep", Role.REP)


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "BELOW AIM"


def _pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _med(values: Iterable[float]) -> float:
    """The median; 0 for none (a probe point the client no longer reports)."""
    found = list(values)
    return statistics.median(found) if found else 0.0


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def _mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


# ------------------------------------------------------------------ probes


class Probe:
    """The client's fault hook used as a stopwatch: the time of every named point of a push
    or pull (``before_push``, ``after_push_reply``, ``after_store``, ``before_pull``,
    ``after_pull_reply``, ``after_page``)."""

    def __init__(self) -> None:
        self.marks: list[tuple[str, float]] = []

    def __call__(self, point: str) -> None:
        self.marks.append((point, time.perf_counter()))

    def clear(self) -> None:
        self.marks.clear()

    def spans(
        self, start: float, first: str, middle: str, last: str
    ) -> list[tuple[float, float, float]]:
        """Per batch or page: (prepare, request, local) seconds, where prepare runs from the
        previous batch's end (or ``start``) to ``first``, request from ``first`` to
        ``middle`` and local from ``middle`` to ``last``."""
        out = []
        prev = start
        t_first = t_middle = None
        for point, t in self.marks:
            if point == first:
                t_first = t
            elif point == middle:
                t_middle = t
            elif point == last and t_first is not None and t_middle is not None:
                out.append((t_first - prev, t_middle - t_first, t - t_middle))
                prev, t_first, t_middle = t, None, None
        return out

    def requests(
        self, start: float, sent: str, answered: str, done: str
    ) -> tuple[list[float], list[float], float]:
        """A pipelined push: each request's seconds (``sent`` to ``answered``), the client's
        seconds before each request (from the previous ``answered``, or ``start``: waiting
        for its worker thread), and the tail from the last ``answered`` to the last
        ``done``."""
        took: list[float] = []
        gaps: list[float] = []
        prev = start
        t_sent: float | None = None
        last_done = start
        for point, t in self.marks:
            if point == sent:
                gaps.append(t - prev)
                t_sent = t
            elif point == answered and t_sent is not None:
                took.append(t - t_sent)
                prev, t_sent = t, None
            elif point == done:
                last_done = t
        return took, gaps, max(0.0, last_done - prev)


@dataclass
class Cpu:
    """CPU seconds used during a phase: the server's processes, PostgreSQL's, this process
    (the client) and the rest of the machine."""

    server_pid: int
    db_pid: int | None
    start: bs.CpuSample | None = None

    def __enter__(self) -> Cpu:
        self.start = bs._cpu(self.server_pid, self.db_pid)
        return self

    def __exit__(self, *exc: object) -> None:
        self.end = bs._cpu(self.server_pid, self.db_pid)

    def busy(self) -> float:
        """CPU seconds of the client, the server and PostgreSQL: on an idle machine the
        wall time of a sequential exchange is about this plus the waits for the disk."""
        a, b = self.start, self.end
        assert a is not None
        return (b.server - a.server) + (b.database - a.database) + (b.load - a.load)

    def line(self, device: float | None = None) -> str:
        """The CPU split; ``device``: the CPU seconds of a device child process (the
        bootstrap), shown instead of this process's."""
        a, b = self.start, self.end
        assert a is not None
        wall = b.at - a.at
        server, db, me = b.server - a.server, b.database - a.database, b.load - a.load
        client = me if device is None else device
        other = max(0.0, (b.machine - a.machine) - server - db - me - (device or 0.0))
        pg = f", postgres {db:.1f}" if self.db_pid else ""
        who = "client" if device is None else "device process"
        return (
            f"cpu s: {who} {client:.1f}, server {server:.1f}{pg}, other {other:.1f} "
            f"over {wall:.1f} s wall ({os.cpu_count()} cores)"
        )


# ------------------------------------------------------------------ the world


@dataclass
class Bench:
    args: argparse.Namespace
    folder: Path
    url: str  # the server's base URL
    server_factory: SessionFactory
    template: SessionFactory  # what devices are copied from (SQLite)
    tokens: dict[str, str]
    stands: list[str]  # the rep's active stands that carry products
    server_pid: int
    db_pid: int | None
    failures: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    profiles: list[tuple[str, cProfile.Profile]] = field(default_factory=list)
    child_profiles: list[tuple[str, Path]] = field(default_factory=list)
    devices: list[Device] = field(default_factory=list)

    def cpu(self) -> Cpu:
        return Cpu(self.server_pid, self.db_pid)

    def device(self, name: str) -> Device:
        """A device of the rep: a copy of the program, at the server's feed head."""
        d = make_device(self.template, self.url, self.folder, name, REP, self.tokens["rep"])
        self.devices.append(d)
        with self.server_factory() as s, s.begin():
            head = feed.head(s)
        with d.factory() as s, s.begin():
            cursor = sync_device.state(s).cursor
        if cursor < head:
            # Copied from the program as it was before the bench's ops (PostgreSQL): catch up.
            t0 = time.perf_counter()
            with d.client(page_size=self.args.page_size) as client:
                n = client.pull()
            print(f"  {name}: caught up with {n:,} ops in {time.perf_counter() - t0:.1f} s")
        elif cursor > head:
            self.fail(f"{name}: copied at feed {cursor}, the server is at {head}")
        return d

    def fail(self, problem: str) -> None:
        print(f"  FAILED: {problem}", flush=True)
        self.failures.append(problem)

    def check(self, label: str, problems: list[str]) -> None:
        for p in problems[:20]:
            self.fail(f"{label}: {p}")
        if len(problems) > 20:
            self.fail(f"{label}: ... and {len(problems) - 20} more")
        if not problems:
            print(f"  check {label}: ok", flush=True)

    def figure(self, line: str) -> None:
        print(line, flush=True)
        self.figures.append(line)

    @contextmanager
    def stopped(self, phase: str) -> Iterator[None]:
        """A sync call that gives up (the server unreachable or refusing, after the
        client's retries) fails the run: the queue did not drain."""
        try:
            yield
        except SyncError as exc:
            self.fail(f"{phase}: the client stopped: {exc}")

    @contextmanager
    def profiled(self, label: str) -> Iterator[None]:
        if not self.args.profile:
            yield
            return
        prof = cProfile.Profile()
        prof.enable()
        try:
            yield
        finally:
            prof.disable()
            self.profiles.append((label, prof))


def _rep_stands(factory: SessionFactory, territory: str) -> list[str]:
    with factory() as s, s.begin():
        return sorted(
            s.scalars(
                select(StandLocation.id)
                .where(
                    StandLocation.assigned_rep == territory,
                    StandLocation.status == StandStatus.ACTIVE,
                    select(StandInventory.id)
                    .where(StandInventory.stand_id == StandLocation.id)
                    .exists(),
                )
                .distinct()
            )
        )


def _synced_rows(factory: SessionFactory) -> int:
    with factory() as s, s.begin():
        return sum(
            int(s.scalar(select(func.count()).select_from(Base.metadata.tables[name])) or 0)
            for name in synced_tables()
        )


def _record(
    factory: SessionFactory, stands: list[str], ops: int, days: int, seed: int, mix: Any = procs.MIX
) -> procs.Workload:
    """``ops`` ops through the real services, spread over ``days`` days that end now."""
    start = utcnow() - timedelta(days=days)
    return procs.record_offline_days(
        factory, REP, stands, days=days, ops=ops, start=start, seed=seed, mix=mix
    )


# ------------------------------------------------------------------ push and pull


def push_and_pull(b: Bench, seed: int) -> tuple[Device, Device]:
    args = b.args
    a_dev = b.device(f"a{seed}")
    b_dev = b.device(f"b{seed}")

    # Generation (not the push figure).
    writer = procs.writer(b.folder / f"a{seed}.db")
    try:
        work = _record(writer, b.stands, args.ops, args.offline_days, seed)
    finally:
        writer.kw["bind"].dispose()
    mix = ", ".join(f"{k} {n:,}" for k, n in work.ops.most_common())
    print(
        f"generate    {work.total:,} ops in {work.seconds:.1f} s "
        f"({work.total / work.seconds:,.0f} ops/s through the services; {mix}; "
        f"{len(b.stands)} stands)",
        flush=True,
    )
    if work.refused:
        b.fail(f"the services refused {sum(work.refused.values())} actions: {work.refused}")

    # Push.
    probe = Probe()
    with (
        SyncClient(
            a_dev.factory,
            b.url,
            token=b.tokens["rep"],
            push_batch=args.push_batch,
            push_batch_max=args.push_batch_max,
            fault=probe,
        ) as client,
        b.cpu() as cpu,
        b.profiled(f"client push (seed {seed})"),
    ):
        t0 = time.perf_counter()
        pushed, rejected = client.push()
        took = time.perf_counter() - t0
    requests, gaps, tail = probe.requests(t0, "before_push", "after_push_reply", "after_store")
    rate = pushed / took if took else 0.0
    b.figure(
        f"push        {pushed:,} ops in {took:.2f} s = {rate:,.0f} ops/s "
        f"(aim >= {PUSH_AIM:,.0f})  {_verdict(rate >= PUSH_AIM)}; "
        f"{pushed / cpu.busy():,.0f} ops per CPU-second of client, server and database"
    )
    print(
        f"            {len(requests)} batches of {args.push_batch} growing to <= "
        f"{client.push_batch_max}: request (HTTP + server "
        f"apply) p50 {_ms(_pct(requests, 0.5))}, p95 {_ms(_pct(requests, 0.95))}, first "
        f"{_ms(requests[0] if requests else 0.0)}; client between requests median "
        f"{_ms(_med(gaps[1:] or [0.0]))} (first batch read {_ms(gaps[0] if gaps else 0.0)}; "
        f"the answers are stored and the next batch read beside each request); last answers "
        f"stored {_ms(tail)} after the last reply",
    )
    print(f"            {cpu.line()}", flush=True)
    if pushed != work.total or rejected:
        b.fail(f"push answered {pushed} ops ({rejected} rejected) of {work.total}")
    b.check(
        "push: every op on the server once", procs.once_on_server(b.server_factory, a_dev.factory)
    )

    # The server's serve rate: the same pages, fetched and parsed, not applied.
    with b_dev.factory() as s, s.begin():
        since = feed.head(s)
    served, took_serve, pages = _serve_only(b, since)
    print(
        f"serve       {served:,} feed rows in {took_serve:.2f} s = "
        f"{served / took_serve:,.0f} rows/s ({pages} pages of {args.page_size}, fetched and "
        f"parsed, not applied)",
        flush=True,
    )

    # Pull onto device B.
    rows_before = _synced_rows(b_dev.factory)
    probe = Probe()
    with (
        SyncClient(
            b_dev.factory, b.url, token=b.tokens["rep"], page_size=args.page_size, fault=probe
        ) as client,
        b.cpu() as cpu,
        b.profiled(f"client pull (seed {seed})"),
    ):
        t0 = time.perf_counter()
        pulled = client.pull()
        took = time.perf_counter() - t0
    added = _synced_rows(b_dev.factory) - rows_before
    page_spans = probe.spans(t0, "before_pull", "after_pull_reply", "after_page")
    whole = [sum(x) for x in page_spans]
    rows_rate = added / took if took else 0.0
    b.figure(
        f"pull        {added:,} rows ({pulled:,} ops) in {took:.2f} s = {rows_rate:,.0f} "
        f"rows/s, {pulled / took:,.0f} ops/s (aim >= {PULL_AIM:,.0f} rows/s)  "
        f"{_verdict(rows_rate >= PULL_AIM)}; {added / cpu.busy():,.0f} rows per CPU-second "
        f"of client, server and database"
    )
    print(
        f"            {len(page_spans)} pages: p50 {_ms(_pct(whole, 0.5))}, p95 "
        f"{_ms(_pct(whole, 0.95))}; per page median: HTTP + server read "
        f"{_ms(_med(x[1] for x in page_spans))}, apply + commit "
        f"{_ms(_med(x[2] for x in page_spans))}",
    )
    print(f"            {cpu.line()}", flush=True)
    if pulled < work.total:
        b.fail(f"pull applied {pulled} ops, {work.total} were pushed")

    # A catches up (its own ops come back; they are skipped), then both equal the server.
    with SyncClient(a_dev.factory, b.url, token=b.tokens["rep"]) as client:
        t0 = time.perf_counter()
        own = client.pull()
        print(
            f"            device A pulls its own {own:,} ops back in "
            f"{time.perf_counter() - t0:.2f} s (skipped: its facts are already there)",
            flush=True,
        )
    t0 = time.perf_counter()
    b.check("pull: devices A and B equal the server", converged(b.server_factory, [a_dev, b_dev]))
    print(f"            (checked in {time.perf_counter() - t0:.1f} s)", flush=True)
    return a_dev, b_dev


def _serve_only(b: Bench, since: int) -> tuple[int, float, int]:
    headers = {"Authorization": f"Bearer {b.tokens['rep']}"}
    n = pages = 0
    with httpx.Client(base_url=b.url, headers=headers, timeout=60) as http:
        t0 = time.perf_counter()
        while True:
            r = http.get(
                f"{API}/sync/pull", params={"since": since, "limit": b.args.page_size}
            ).raise_for_status()
            page = r.json()
            n += len(page["ops"])
            pages += 1
            since = page["cursor"]
            if not page["more"]:
                return n, time.perf_counter() - t0, pages


# ------------------------------------------------------------------ incremental


def incremental(b: Bench, a_dev: Device, other: Device) -> None:
    """Device A (up to date) records 100 ops and syncs; before each round device B (the
    rep's other device) records 50 sales and syncs, so A's round also pulls them."""
    args = b.args
    times: list[float] = []
    parts: list[tuple[float, float]] = []
    probe = Probe()
    with SyncClient(a_dev.factory, b.url, token=b.tokens["rep"], fault=probe) as client:
        for n in range(args.repeats):
            # Another device's sales reach the feed meanwhile (untimed).
            _record(other.factory, b.stands, OTHER_DEVICE_OPS, 1, 1000 + n, mix=procs.SALES)
            r = other.sync()
            if not r.complete:
                b.fail(f"the other device's round failed: {r.error}")
            _record(a_dev.factory, b.stands, INCREMENTAL_OPS, 1, 2000 + n)
            probe.clear()
            with b.cpu() as cpu:
                t0 = time.perf_counter()
                result = client.round()
                took = time.perf_counter() - t0
            times.append(took)
            marks = dict(probe.marks)  # the last of each point
            push_end = marks.get("after_store", t0)
            parts.append((push_end - t0, t0 + took - push_end))
            print(
                f"  round {n + 1}: {took * 1000:,.0f} ms (pushed {result.pushed}, pulled "
                f"{result.pulled}, rejected {result.rejected}); {cpu.line()}",
                flush=True,
            )
            if not result.complete or result.pushed != INCREMENTAL_OPS or result.rejected:
                b.fail(f"incremental round {n + 1}: {result}")
    median = statistics.median(times)
    b.figure(
        f"incremental round of {INCREMENTAL_OPS} ops (+{OTHER_DEVICE_OPS} from another device):"
        f" median {median * 1000:,.0f} ms of {len(times)} (min {min(times) * 1000:,.0f}, max "
        f"{max(times) * 1000:,.0f}) (aim < {ROUND_AIM:g} s)  {_verdict(median < ROUND_AIM)}"
    )
    print(
        f"            median push part {_ms(statistics.median(p[0] for p in parts))}, "
        f"refresh + pull part {_ms(statistics.median(p[1] for p in parts))}",
        flush=True,
    )
    r = other.sync()
    if not r.complete:
        b.fail(f"the other device's last round failed: {r.error}")
    for d in (a_dev, other):
        b.check(
            f"incremental: {d.name}'s ops on the server once",
            procs.once_on_server(b.server_factory, d.factory),
        )
    b.check(
        "incremental: both devices equal the server", converged(b.server_factory, [a_dev, other])
    )


# ------------------------------------------------------------------ bootstrap


def bootstrap(b: Bench) -> None:
    """A new device downloads the program (the admin's: everything), in a child process;
    another is killed half way and resumed by a third."""
    total = _synced_rows(b.server_factory)
    with b.server_factory() as s, s.begin():
        visible = sum(
            int(s.scalar(select(func.count()).select_from(snapshot.table(n))) or 0)
            for n in snapshot.TABLE_NAMES
        )
    print(f"bootstrap   the server holds {total:,} rows in the synced tables", flush=True)
    fresh = _empty_device(b, "boot")
    with b.cpu() as cpu:
        got = _bootstrap_child(b, fresh)
    if got.get("exit") != 0:
        b.fail(f"bootstrap: the download failed: {got}")
        return
    rows, took = int(got["rows"]), float(got["seconds"])
    b.figure(
        f"bootstrap   {rows:,} rows in {took:.1f} s = {rows / took:,.0f} rows/s; device "
        f"peak RSS {_mib(got['peak_rss'])} ({_mib(got['rss_before'])} before the download)"
    )
    print(f"            {cpu.line(device=float(got['cpu']))}", flush=True)
    if rows != visible:
        b.fail(f"bootstrap wrote {rows:,} rows, the snapshot's tables hold {visible:,}")

    # Killed half way, resumed by a new process.
    resumed = _empty_device(b, "boot-killed")
    killed = _bootstrap_child(b, resumed, exit_at=rows // 2)
    again = _bootstrap_child(b, resumed)
    if killed.get("exit") != 137 or again.get("exit") != 0:
        b.fail(f"bootstrap kill/resume: {killed} then {again}")
        return
    refetched = int(killed["rows"]) + int(again["rows"]) - rows
    b.figure(
        f"bootstrap   killed after {int(killed['rows']):,} rows ({killed['seconds']:.1f} s), "
        f"resumed in {again['seconds']:.1f} s writing {int(again['rows']):,} rows "
        f"({refetched:,} fetched twice: those after the last partner done)"
    )
    for d in (fresh, resumed):
        r = d.sync()  # pull from the snapshot's cursor
        if not r.complete:
            b.fail(f"{d.name}: the round after the bootstrap failed: {r.error}")
    t0 = time.perf_counter()
    b.check(
        "bootstrap: both new devices equal the server",
        converged(b.server_factory, [fresh, resumed]),
    )
    print(f"            (checked in {time.perf_counter() - t0:.1f} s)", flush=True)


def _empty_device(b: Bench, name: str) -> Device:
    """An empty database, as ``stand-os`` makes it on first start (reference data only)."""
    factory = open_db(f"sqlite:///{b.folder / name}.db", device_name=name)
    with factory() as s, s.begin():
        seed_reference_data(s)
    d = Device(name, factory, Actor("bench.admin", Role.ADMIN), b.tokens["admin"], b.url)
    b.devices.append(d)
    return d


def _bootstrap_child(b: Bench, device: Device, exit_at: int | None = None) -> dict[str, Any]:
    """Run the download in a new process (the device's own memory and CPU); its figures."""
    path = b.folder / f"{device.name}.db"
    profile = b.folder / f"{device.name}.prof" if b.args.profile else None
    command = [
        sys.executable,
        __file__,
        "_bootstrap-child",
        str(path),
        b.url,
        device.token,
        str(exit_at) if exit_at is not None else "-",
        str(profile) if profile else "-",
    ]
    # stderr (progress, errors) goes to ours; stdout carries the figures.
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, cwd=ROOT, check=False)
    lines = done.stdout.strip().splitlines()
    try:
        out: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, ValueError):
        out = {"stdout": done.stdout[-2000:]}
    out["exit"] = done.returncode
    if profile is not None and profile.exists():
        b.child_profiles.append((f"bootstrap child {device.name}", profile))
    return out


def _peak_rss() -> int:
    """This process's peak resident memory in bytes (VmHWM: since its exec, unlike
    ``ru_maxrss``, which Linux carries over from the parent)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def _bootstrap_child_main(argv: list[str]) -> int:
    """In the child: download into the device database; print one JSON line of figures."""
    path, url, token, exit_arg, profile_out = argv[:5]
    exit_at = None if exit_arg == "-" else int(exit_arg)
    factory = open_db(f"sqlite:///{path}", migrate=False)
    rss_before = _peak_rss()
    written = [0]
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    shown = [t0]
    prof = cProfile.Profile() if profile_out != "-" else None

    def figures() -> dict[str, Any]:
        return {
            "rows": written[0],
            "seconds": time.perf_counter() - t0,
            "cpu": time.process_time() - cpu0,
            "peak_rss": _peak_rss(),
            "rss_before": rss_before,
        }

    def progress(stage: str, done: int, total: int) -> None:
        written[0] = done
        now = time.perf_counter()
        if now - shown[0] >= 30:
            shown[0] = now
            print(f"  ... {done:,} rows in {now - t0:.0f} s", file=sys.stderr, flush=True)

    def fault(point: str) -> None:
        if exit_at is not None and point == "after_bootstrap_page" and written[0] >= exit_at:
            print(json.dumps(figures()), flush=True)
            os._exit(137)  # killed: nothing is flushed or closed

    with SyncClient(factory, url, token=token, fault=fault, on_progress=progress) as client:
        if prof is not None:
            prof.enable()
        written[0] = client.bootstrap()
        if prof is not None:
            prof.disable()
            prof.dump_stats(profile_out)
    print(json.dumps(figures()))
    return 0


# ------------------------------------------------------------------ the server


def _start(command: list[str], base_url: str, log: Path) -> bs.ServerProcess:
    t0 = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = bs.ServerProcess(proc, base_url, log, 0.0)
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}):\n{log.read_text()}")
        try:
            if httpx.get(base_url + API + "/health", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"the server did not answer in 120 s:\n{log.read_text()}")
        time.sleep(0.1)
    server.started_in = time.perf_counter() - t0
    return server


def _serve_profiled_main(argv: list[str]) -> int:
    """In the server child (``--profile``): ``standctl serve`` with every thread profiled;
    the merged statistics are written to ``out`` when it stops (SIGINT)."""
    database_url, port, out = argv[0], int(argv[1]), argv[2]
    from sync.server.runner import serve

    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def start_thread(frame: Any, event: str, arg: Any) -> None:
        prof = cProfile.Profile()
        with lock:
            profiles.append(prof)
        prof.enable()  # replaces this hook in the new thread

    threading.setprofile(start_thread)
    main = cProfile.Profile()
    main.enable()
    try:
        serve(database_url, port=port, log_level="warning")
    finally:
        main.disable()
        stats = pstats.Stats(main)
        with lock:
            for prof in profiles:
                try:
                    stats.add(prof)
                except TypeError:  # a thread that never returned from its first call
                    continue
        stats.dump_stats(out)
    return 0


# ------------------------------------------------------------------ profiles


OURS = ("/app/", "/sync/")


def _print_profile(label: str, source: str | cProfile.Profile, wall: float | None = None) -> None:
    out = io.StringIO()
    stats = pstats.Stats(source, stream=out)
    stats.sort_stats("cumulative").print_stats(r"(app|sync)/.*\.py", 28)
    stats.sort_stats("tottime").print_stats(18)
    print(f"\n===== profile: {label}" + (f" ({wall:.1f} s)" if wall else ""))
    keep = False
    for line in out.getvalue().splitlines():
        if "ncalls" in line:
            keep = True
        if keep and line.strip():
            print("  " + line.replace(str(ROOT) + "/", "").replace(str(sys.prefix), "<venv>"))
        if line.startswith("   Ordered by"):
            print("  " + line.strip())


# ------------------------------------------------------------------ main


def run(args: argparse.Namespace) -> int:
    print("$ " + shlex.join(sys.orig_argv), flush=True)
    wall0 = time.perf_counter()
    load = os.getloadavg()
    print(
        f"code        {bs._code_state()}\nmachine     {os.cpu_count()} CPUs, load "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (shared: compare runs only at similar "
        f"load); Python {platform.python_version()}",
        flush=True,
    )
    program = args.build / f"bench-sync-{args.stands}x{args.days}.db"
    if not program.exists():
        program.parent.mkdir(parents=True, exist_ok=True)
        took = bs._build(program, args.stands, args.days)
        print(f"program     built in {took:.1f} s", flush=True)
    else:
        open_db(f"sqlite:///{program}").kw["bind"].dispose()  # migrate a cached file
    folder: Path = args.folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    template_path = folder / "server.db"
    bs._copy_sqlite(program, template_path)
    engine = create_db_engine(f"sqlite:///{template_path}")
    try:
        with Session(engine) as s:
            prog = bs._read_program(s)
    finally:
        engine.dispose()

    with _backend(args, template_path) as (db_url, db_pid, note):
        tokens = bs._add_users(db_url, prog)
        template = open_db(f"sqlite:///{template_path}", migrate=False)
        server_factory = template if db_pid is None else open_db(db_url, migrate=False)
        stands = _rep_stands(template, prog.territory)
        port = bs._free_port()
        base_url = f"http://127.0.0.1:{port}"
        profile_out = folder / "server.prof"
        if args.profile:
            command = [
                sys.executable,
                __file__,
                "_serve-profiled",
                db_url,
                str(port),
                str(profile_out),
            ]
        else:
            command = bs._server_command(db_url, port, 1)
        server = _start(command, base_url, folder / "server.log")
        print(
            f"program     {prog.stands:,} stands, {prog.orders:,} orders ({args.stands} x "
            f"{args.days} demo, {program.stat().st_size / 2**20:,.0f} MiB); {note}; the rep "
            f"{prog.territory!r} has {len(stands)} active stands; server up in "
            f"{server.started_in:.1f} s at {base_url}",
            flush=True,
        )
        b = Bench(
            args,
            folder,
            base_url,
            server_factory,
            template,
            tokens,
            stands,
            server.proc.pid,
            db_pid,
        )
        try:
            pair: tuple[Device, Device] | None = None
            for seed in args.seeds:
                print(f"\n--- push and pull, seed {seed}", flush=True)
                with b.stopped(f"push and pull (seed {seed})"):
                    pair = push_and_pull(b, seed)
            if "incremental" in args.phases and pair is not None:
                print("\n--- incremental", flush=True)
                with b.stopped("incremental"):
                    incremental(b, *pair)
            if "bootstrap" in args.phases:
                print("\n--- bootstrap", flush=True)
                if hasattr(SyncClient, "bootstrap"):
                    with b.stopped("bootstrap"):
                        bootstrap(b)
                else:
                    b.figure("bootstrap: not built yet (SyncClient has no bootstrap())")
        finally:
            for d in b.devices:
                d.close()
            server.stop()
            if server_factory is not template:
                server_factory.kw["bind"].dispose()
            template.kw["bind"].dispose()

    print("\n=== figures")
    for line in b.figures:
        print(line)
    if args.profile:
        for label, prof in b.profiles:
            _print_profile(label, prof)
        for label, path in b.child_profiles:
            _print_profile(label, str(path))
        if profile_out.exists():
            _print_profile("server (all threads, whole run)", str(profile_out))
    print(f"wall time   {time.perf_counter() - wall0:.1f} s")
    if b.failures:
        print(f"\nFAILED ({len(b.failures)}):")
        for f in b.failures[:40]:
            print(f"  {f}")
        print(f"kept for a look: {folder}")
        return 1
    print("\nAll invariants hold.")
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


@contextmanager
def _backend(args: argparse.Namespace, sqlite_path: Path) -> Iterator[tuple[str, int | None, str]]:
    """(database URL the server serves, PostgreSQL's pid or None, a note)."""
    if not args.pg:
        yield f"sqlite:///{sqlite_path}", None, "SQLite server"
        return
    with bs._postgres() as pg:
        if pg is None:
            raise SystemExit("--pg: no PostgreSQL server is installed (postgresql-NN)")
        url, version = pg
        took = bs._copy_to_postgres(sqlite_path, url)
        pid = bs._postmaster(make_url(url).port or 5432)
        yield url, pid, f"PostgreSQL {version} server (copied in {took:.1f} s; fsync off)"


def _csv_ints(value: str) -> list[int]:
    return [int(v) for v in value.split(",") if v.strip()]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_bootstrap-child"]:
        return _bootstrap_child_main(argv[1:])
    if argv[:1] == ["_serve-profiled"]:
        return _serve_profiled_main(argv[1:])
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--stands", type=int, default=None, help="program size (500)")
    parser.add_argument("--days", type=int, default=None, help="days of history (155)")
    parser.add_argument("--ops", type=int, default=None, help="ops device A pushes (20000)")
    parser.add_argument("--offline-days", type=int, default=14, help="days they span")
    parser.add_argument("--seeds", type=_csv_ints, default=[7], help="workload seeds: 7,8,9")
    parser.add_argument("--repeats", type=int, default=None, help="incremental rounds (5)")
    parser.add_argument("--push-batch", type=int, default=500)
    parser.add_argument(
        "--push-batch-max",
        type=int,
        default=GROW_TO,
        help="how large batches grow while more wait (default: as the app; "
        "--push-batch-max 500 keeps every batch at 500)",
    )
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument(
        "--phases",
        type=lambda v: {x.strip() for x in v.split(",")},
        default={"incremental", "bootstrap"},
        help="after push and pull: incremental,bootstrap (both by default)",
    )
    parser.add_argument("--pg", action="store_true", help="serve from PostgreSQL")
    parser.add_argument("--profile", action="store_true", help="cProfile server and client")
    parser.add_argument("--quick", action="store_true", help="a smoke run (< 60 s)")
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    parser.add_argument("--build", type=Path, default=bs.BUILD, help="where programs are cached")
    parser.add_argument("--folder", type=Path, default=bs.BUILD / "bench-sync", help="work folder")
    args = parser.parse_args(argv)
    small = {"stands": 20, "days": 14, "ops": 300, "repeats": 2}
    full = {"stands": 500, "days": 155, "ops": 20_000, "repeats": 5}
    for key, value in (small if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.quick and args.folder == bs.BUILD / "bench-sync":
        args.folder = bs.BUILD / "bench-sync-quick"
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
