"""Benchmark the coach agent over a whole demo program: run_coach, stand_outlook, forecast_batch.

    .venv/bin/python bench/bench_coach.py [--db build/bench-coach-500x365.db] [--stands 500]
                                          [--days 365] [--sku-slots N] [--repeat 5]
                                          [--sample 20] [--seed 7] [--synthetic 500x40]
                                          [--profile]

Reuses the demo program in ``--db PATH`` (default ``build/bench-coach-500x365.db``), or builds
it there with :func:`app.demo.generate_demo` and keeps it. :func:`app.coach.agent.run_coach`
WRITES the coach's insights into that database (and the benchmark deletes them before each
"fresh" run): point ``--db`` at a copy, never at a program you use. As of the end of the
demo's last day, it measures:

- ``run_coach`` over every active stand, as the app's background scan calls it
  (``Backend.call``), in three situations: *fresh* (no coach insight stored: every insight is
  inserted; the insights are deleted before each run, untimed), *re-run* as of the same moment
  (every insight found again and unchanged: the store step only reads), and *a day apart*
  (runs alternate between the end of the day before and the end of the last day: insights are
  updated, created and retired). The wall time of each run, and the per-step times the run
  reports itself (``CoachRun.timings``: load, forecast, policy, insights, store);
- ``load_coach_data`` alone, with and without the partners' loyalty points;
- ``stand_outlook`` (the stand's inventory tab and the refill dialog) for a sample of stands
  spread over the list (seeded), through ``Backend.read``; every call of every run counts;
- ``forecast_batch`` alone on the focus series of the program, with the horizon
  ``run_coach`` uses;
- SYNTHETIC, because the demo's stands carry 65-100 % of their package's ``sku_slots``
  (12 / 24 / 40: about 21 SKUs a stand): a ``CoachData`` of ``--synthetic`` stands × SKUs
  (500 × 40 = 20,000 series × 91 days) made in memory from the program's real series: each
  synthetic stand is a copy of a real active stand (visit plan, partner, location type)
  whose assortment is its own series filled up with real series of other SKUs taken from
  stands of the same location type. ``run_coach`` runs on it with its load step handed that
  data and its store step left out (nothing is written), so forecast, policy and insights
  are exactly the app's code; and ``forecast_batch`` alone on its 20,000 × 91 history.

``--sku-slots N`` (only when building) sets every package's ``sku_slots`` to N before the
demo is generated, so the generator picks 65-100 % of N SKUs per stand (the catalog has 43;
``--sku-slots 43`` gives about 36 a stand): real simulated history for a wider assortment,
with the packages of that database changed accordingly (the header says so).

Each step runs once to warm up, then ``--repeat`` times; the table shows the warm-up ("first")
apart, then the median and the slowest of the timed runs. Before the first run of a database
step the file's pages are dropped from the OS cache, so "first" is a cold start that reads
from disk. ``--profile`` adds a cProfile of a run_coach and of a stand_outlook, and the time
of each SQL statement of their loads. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import functools
import io
import os
import platform
import pstats
import shlex
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy
from sqlalchemy import delete, event, func, select, update
from sqlalchemy.orm import Session
from timing import end_of as _end_of
from timing import evict as _evict
from timing import ms as _ms
from timing import sample as _sample
from timing import timed as _timed

import app.coach.agent as agent
from app.backend import Backend
from app.clock import ensure_utc
from app.coach import forecast as fc
from app.coach import insights as rules
from app.coach.agent import CoachRun, run_coach, stand_outlook
from app.coach.data import CoachData, load_coach_data
from app.coach.policy import DEFAULT_LEAD_DAYS
from app.db import create_db_engine, current_revision, open_db
from app.demo import generate_demo
from app.models import (
    Package,
    StandAIInsight,
    StandInventory,
    StandLocation,
    StandOrder,
    StandStatus,
)
from app.reference import seed_reference_data
from app.rules import PROGRAM_TIMEZONE, local_date
from app.services.base import transactional

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = ROOT / "build" / "bench-coach-500x365.db"
STEPS = ("load", "forecast", "policy", "insights", "store")


# ------------------------------------------------------------------ timing


@dataclass
class Row:
    """One line of a table: the warm-up, the timed runs (ms) and what else to say."""

    name: str
    first: float
    times: list[float]
    note: str = ""
    #: Per step (ms): the warm-up run's and the median of the timed runs'.
    steps_first: dict[str, float] = field(default_factory=dict)
    steps: dict[str, float] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def worst(self) -> float:
        return max(self.times)


# ------------------------------------------------------------------ the program


@dataclass(frozen=True)
class Program:
    stands: int
    by_status: dict[str, int]
    active_ids: list[str]  # by name, as the stand list shows them
    names: dict[str, str]
    skus_per_active: list[int]
    slots: dict[str, int]  # package code -> sku_slots
    orders: int
    first_order: datetime
    last_order: datetime


@transactional
def _program(session: Session) -> Program:
    by_status = {
        str(status): int(n)
        for status, n in session.execute(
            select(StandLocation.status, func.count()).group_by(StandLocation.status)
        )
    }
    active = session.execute(
        select(StandLocation.id, StandLocation.name)
        .where(StandLocation.status == StandStatus.ACTIVE)
        .order_by(StandLocation.name, StandLocation.id)
    ).all()
    skus = session.execute(
        select(func.count())
        .select_from(StandInventory)
        .join(StandLocation, StandLocation.id == StandInventory.stand_id)
        .where(StandInventory.active, StandLocation.status == StandStatus.ACTIVE)
        .group_by(StandInventory.stand_id)
    ).scalars()
    orders, first, last = session.execute(
        select(func.count(), func.min(StandOrder.occurred_at), func.max(StandOrder.occurred_at))
    ).one()
    slots = session.execute(select(Package.code, Package.sku_slots).order_by(Package.rank)).all()
    return Program(
        stands=sum(by_status.values()),
        by_status=by_status,
        active_ids=[str(i) for i, _ in active],
        names={str(i): str(name) for i, name in active},
        skus_per_active=sorted(int(n) for n in skus),
        slots={str(k): int(v) for k, v in slots},
        orders=int(orders),
        first_order=ensure_utc(first),
        last_order=ensure_utc(last),
    )


def _build(path: Path, stands: int, days: int, sku_slots: int | None) -> tuple[float, date]:
    wide = f", every package {sku_slots} SKU slots" if sku_slots else ""
    print(f"building a demo program: {stands} stands, {days} days{wide} -> {path}", file=sys.stderr)
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    factory = open_db(f"sqlite:///{path}")
    if sku_slots:
        with factory() as session, session.begin():
            seed_reference_data(session)
            session.execute(update(Package).values(sku_slots=sku_slots))
    summary = generate_demo(factory, stands=stands, days=days, seed=7)
    factory.kw["bind"].dispose()
    return time.perf_counter() - t0, summary.last_day


@transactional
def _clear_insights(session: Session) -> int:
    """Delete the coach's insights (its kinds only): the next run inserts them all."""
    ins = StandAIInsight
    result = session.execute(delete(ins).where(ins.kind.in_(rules.KINDS)))
    return int(getattr(result, "rowcount", 0) or 0)


#: ``load_coach_data`` reads in its caller's transaction (``run_coach`` opens one).
_load_data = transactional(load_coach_data)


# ------------------------------------------------------------------ run_coach


def _counts(run: CoachRun) -> str:
    parts = [
        ("created", run.created),
        ("updated", run.updated),
        ("unchanged", run.unchanged),
        ("reopened", run.reopened),
        ("kept closed", run.kept_closed),
        ("retired", run.retired),
    ]
    return ", ".join(f"{n:,} {label}" for label, n in parts if n)


def _steps(runs: Sequence[CoachRun]) -> dict[str, float]:
    """Median ms per step over ``runs``."""
    out: dict[str, float] = {}
    for name in STEPS:
        values = [_ms(dict(r.timings)[name]) for r in runs if name in dict(r.timings)]
        if values:
            out[name] = statistics.median(values)
    return out


def _coach_rows(
    backend: Backend, now: datetime, repeat: int, evict: Callable[[], None]
) -> tuple[list[Row], CoachRun]:
    rows: list[Row] = []

    def scenario(
        name: str,
        at: Callable[[int], datetime],
        before: Callable[[], object] | None = None,
        cold: bool = False,
    ) -> CoachRun:
        runs: list[CoachRun] = []
        times: list[float] = []
        if cold:
            evict()
        for k in range(repeat + 1):
            if before is not None:
                before()
            t0 = time.perf_counter()
            runs.append(backend.call(run_coach, now=at(k)))
            times.append(_ms(time.perf_counter() - t0))
        last = runs[-1]
        notes = [f"{last.stands:,} stands, {last.series:,} series, {len(last.insights):,} found"]
        notes.append(f"last run: {_counts(last) or 'nothing stored'}")
        rows.append(
            Row(
                name,
                times[0],
                times[1:],
                note="; ".join(notes),
                steps_first=_steps(runs[:1]),
                steps=_steps(runs[1:]),
            )
        )
        return last

    day_before = now - timedelta(days=1)
    scenario(
        "fresh: every insight inserted",
        lambda _k: now,
        before=lambda: backend.call(_clear_insights),
        cold=True,
    )
    last = scenario("re-run, same moment: unchanged", lambda _k: now)
    # Warm-up as of the day before (after the runs as of the last day), then alternate.
    scenario("a day apart: updates", lambda k: day_before if k % 2 == 0 else now)
    # Leave the insights as a scan as of ``now`` leaves them (not timed).
    backend.call(run_coach, now=now)
    return rows, last


def _load_rows(backend: Backend, now: datetime, repeat: int) -> list[Row]:
    rows = []
    for label, loyalty in (("with loyalty (as run_coach)", True), ("without loyalty", False)):
        call = functools.partial(backend.read, _load_data, now=now, with_loyalty=loyalty)
        first, times = _timed(call, repeat, None)
        rows.append(Row(f"load, {label}", first, times, note="Backend.read"))
    return rows


# ------------------------------------------------------------------ stand_outlook


def _outlook_rows(
    backend: Backend, sample: list[str], now: datetime, repeat: int, evict: Callable[[], None]
) -> Row:
    evict()
    first = -1.0
    times: list[float] = []
    skus: dict[str, int] = {}
    for run in range(repeat + 1):
        for stand_id in sample:
            t0 = time.perf_counter()
            out = backend.read(stand_outlook, stand_id, now=now)
            ms = _ms(time.perf_counter() - t0)
            skus[stand_id] = len(out.skus)
            if run == 0:
                first = ms if first < 0 else first
            else:
                times.append(ms)
    counts = sorted(skus.values())
    return Row(
        "stand_outlook",
        first,
        times,
        note=(
            f"{len(sample)} stands x {repeat} runs; {counts[0]}-{counts[-1]} SKUs "
            f"(median {statistics.median(counts):g})"
        ),
    )


# ------------------------------------------------------------------ forecast_batch


def _horizon(data: CoachData, lead_days: int) -> tuple[np.ndarray, int]:
    """The focus series and the horizon ``run_coach`` forecasts them for."""
    idx = np.nonzero(data.focus)[0]
    review, visit = data.review_days[idx], data.days_to_visit[idx]
    horizon = int(max(1, int(review.max(initial=1)) + lead_days, int(visit.max(initial=1))))
    return idx, horizon


def _forecast_row(name: str, data: CoachData, repeat: int) -> Row:
    idx, horizon = _horizon(data, data.lead_days)
    history, peer = data.demand[idx], data.peer_rate[idx]
    first, times = _timed(
        lambda: fc.forecast_batch(history, horizon, peer_rate=peer), repeat, evict=None
    )
    n, days = history.shape
    per_s = n / (statistics.median(times) / 1000)
    return Row(
        name,
        first,
        times,
        note=f"{n:,} series x {days} days, h = {horizon}; {per_s:,.0f} series/s",
    )


# ------------------------------------------------------------------ synthetic program


def synthetic_data(data: CoachData, stands: int, skus: int, seed: int) -> CoachData:
    """A ``CoachData`` of ``stands`` × ``skus`` series made from the real series of ``data``
    (see the module docstring): stand ``k`` copies the ``k``-th active stand (cycling), keeps
    its own series and is filled up to ``skus`` SKUs with real series of other SKUs from
    stands of the same location type (any stand when that type has none)."""
    rng = np.random.default_rng(seed)
    n = data.n
    focus = [i for i, s in enumerate(data.stands) if s.focus]
    own: dict[int, list[int]] = defaultdict(list)
    by_type_sku: dict[tuple[str, str], list[int]] = defaultdict(list)
    by_sku: dict[str, list[int]] = defaultdict(list)
    for i in range(n):
        si = int(data.stand_idx[i])
        own[si].append(i)
        by_type_sku[(data.stands[si].location_type, data.product_ids[i])].append(i)
        by_sku[data.product_ids[i]].append(i)
    all_skus = sorted(by_sku)

    infos = []
    picks: list[int] = []
    stand_of: list[int] = []
    for k in range(stands):
        base = data.stands[focus[k % len(focus)]]
        infos.append(dataclasses.replace(base, id=f"{base.id}~{k}", name=f"{base.name} ~{k}"))
        chosen = list(own[focus[k % len(focus)]][:skus])
        have = {data.product_ids[i] for i in chosen}
        others = [all_skus[j] for j in rng.permutation(len(all_skus))]
        # SKUs carried at this location type first, then the rest of the catalog.
        others.sort(key=lambda p: (base.location_type, p) not in by_type_sku)
        for product in others:
            if len(chosen) >= skus:
                break
            if product in have:
                continue
            pool = by_type_sku.get((base.location_type, product)) or by_sku[product]
            chosen.append(pool[int(rng.integers(len(pool)))])
            have.add(product)
        chosen.sort(key=lambda i: data.skus[i])
        picks += chosen
        stand_of += [k] * len(chosen)

    take = np.array(picks, dtype=np.int64)
    stand_idx = np.array(stand_of, dtype=np.int64)
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(data):
        value = getattr(data, f.name)
        if isinstance(value, np.ndarray) and value.ndim >= 1 and value.shape[0] == n:
            changes[f.name] = value[take]
        elif isinstance(value, tuple) and len(value) == n and f.name != "stands":
            changes[f.name] = tuple(value[i] for i in picks)
    # The visit plan is the stand's; stock on order arrives before the visit or not.
    days_to_visit = np.array([s.days_to_visit for s in infos], dtype=np.int64)[stand_idx]
    arriving = np.where(changes["arrival_days"] < days_to_visit, changes["arriving"], 0)
    # Swap suggestions name SKUs carried at the location type: keep those the copy carries.
    carried: dict[str, set[str]] = defaultdict(set)
    for k, i in zip(stand_of, picks, strict=True):
        carried[infos[k].location_type].add(data.product_ids[i])
    type_rates = {
        t: {p: r for p, r in rates.items() if p in carried[t]}
        for t, rates in data.type_rates.items()
    }
    changes.update(
        type_rates=type_rates,
        stands=tuple(infos),
        stand_idx=stand_idx,
        days_to_visit=days_to_visit,
        review_days=np.array([s.cadence_days for s in infos], dtype=np.int64)[stand_idx],
        arriving=arriving,
        arrival_days=np.where(arriving > 0, changes["arrival_days"], 0),
    )
    return dataclasses.replace(data, **changes)


@contextmanager
def _without_io(data: CoachData) -> Iterator[None]:
    """``run_coach`` with its load step handed ``data`` and its store step left out."""
    saved = {name: getattr(agent, name) for name in ("load_coach_data", "_store")}

    def fake_load(_session: Session, **_kwargs: Any) -> CoachData:
        return data

    def fake_store(*_args: Any, **_kwargs: Any) -> dict[str, int]:
        keys = ("created", "updated", "unchanged", "reopened", "kept_closed", "retired")
        return dict.fromkeys(keys, 0)

    # The module's names that run_coach calls.
    for name, fn in {"load_coach_data": fake_load, "_store": fake_store}.items():
        setattr(agent, name, fn)
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(agent, name, fn)


def _synthetic_rows(
    backend: Backend, data: CoachData, now: datetime, repeat: int
) -> tuple[list[Row], str]:
    runs: list[CoachRun] = []

    def one() -> None:
        with _without_io(data):
            runs.append(backend.read(run_coach, now=now))

    first, times = _timed(one, repeat, None)
    steps = [s for s in STEPS if s not in ("load", "store")]
    last = runs[-1]
    per_stand = np.bincount(data.stand_idx, minlength=len(data.stands))
    rows = [
        Row(
            "run_coach: forecast+policy+insights",
            first,
            times,
            note=(
                f"{last.stands:,} stands, {last.series:,} series, {len(last.insights):,} found; "
                "no load, no store"
            ),
            steps_first={k: v for k, v in _steps(runs[:1]).items() if k in steps},
            steps={k: v for k, v in _steps(runs[1:]).items() if k in steps},
        ),
        _forecast_row("forecast_batch alone", data, repeat),
    ]
    shape = f"{per_stand.min()}-{per_stand.max()} SKUs a stand"
    return rows, shape


# ------------------------------------------------------------------ output


def _table(title: str, rows: Sequence[Row], *, steps: bool = False) -> None:
    head = f"{title:36s} {'first ms':>9s} {'median ms':>10s} {'max ms':>8s}"
    if steps:
        head += " |" + "".join(f" {s:>8s}" for s in STEPS)
    head += "  notes"
    print(head)
    print("-" * max(len(head), 100))
    for r in rows:
        line = f"{r.name:36s} {r.first:9,.0f} {r.median:10,.0f} {r.worst:8,.0f}"
        if steps:
            line += " |" + "".join(
                f" {r.steps[s]:8,.0f}" if s in r.steps else f" {'-':>8s}" for s in STEPS
            )
        print(f"{line}  {r.note}")
        if steps and r.steps_first:
            line = f"{'  (the first run, per step)':36s} {'':9s} {'':10s} {'':8s} |"
            line += "".join(
                f" {r.steps_first[s]:8,.0f}" if s in r.steps_first else f" {'-':>8s}" for s in STEPS
            )
            print(line)
    print()


def _code_state() -> str:
    """The commit, and which files of app/ differ from it (others edit them)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout

    try:
        head = git("rev-parse", "--short", "HEAD").strip()
        changed = [line[3:] for line in git("status", "--porcelain", "--", "app").splitlines()]
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    if not changed:
        return head
    more = f" and {len(changed) - 4} more" if len(changed) > 4 else ""
    return f"{head} + uncommitted changes in {', '.join(changed[:4])}{more}"


def _cprofile(label: str, fn: Callable[[], object]) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    fn()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
    print(f"profile of {label}, by own time (under cProfile):")
    print(out.getvalue().strip("\n"))
    print()


def _sql_times(backend: Backend, label: str, fn: Callable[[], object]) -> None:
    """The SQL statements ``fn`` runs, slowest first: the time to execute (SQLite's work up to
    the first row) and until the next statement or the end of ``fn`` (that plus fetching the
    rows and the Python that uses them)."""
    engine = backend._factory.kw["bind"]
    statements: list[tuple[float, float, str]] = []  # start, end of execute, text
    started: list[float] = []

    def before(*_args: Any) -> None:
        started.append(time.perf_counter())

    def after(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append((started.pop(), time.perf_counter(), statement))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        fn()
    finally:
        done = time.perf_counter()
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    print(f"SQL of {label}, slowest first")
    print(f"  {'execute':>10s} {'until next':>10s}  statement")
    nexts = [s[0] for s in statements[1:]] + [done]
    timed = [
        (_ms(end - start), _ms(nxt - start), text)
        for (start, end, text), nxt in zip(statements, nexts, strict=True)
    ]
    for execute, until, text in sorted(timed, key=lambda t: -t[1])[:8]:
        print(f"  {execute:7.1f} ms {until:7.1f} ms  {' '.join(text.split())[:100]}")
    print()


def _profile(backend: Backend, now: datetime, stand_id: str) -> None:
    _cprofile("run_coach (a re-run, every active stand)", lambda: backend.call(run_coach, now=now))
    _sql_times(
        backend,
        "load_coach_data as run_coach calls it",
        lambda: backend.read(_load_data, now=now),
    )
    _cprofile(
        "stand_outlook (the first stand of the sample)",
        lambda: backend.read(stand_outlook, stand_id, now=now),
    )
    _sql_times(
        backend,
        "load_coach_data as stand_outlook calls it (that stand and its peers)",
        lambda: backend.read(_load_data, stand_ids=[stand_id], now=now, with_loyalty=False),
    )


def _spread(values: Sequence[int]) -> str:
    if not values:
        return "none"
    return f"{values[0]}-{values[-1]} (median {statistics.median(values):g}, total {sum(values):,})"


def run(args: argparse.Namespace) -> int:
    print("$ " + shlex.join(sys.orig_argv))
    wall0 = time.perf_counter()
    code = _code_state()  # now: others may change the code while this runs
    path = Path(args.db) if args.db else DEFAULT_DB
    built: tuple[float, date] | None = None
    if not path.exists():
        built = _build(path, args.stands, args.days, args.sku_slots)
    url = f"sqlite:///{path}"

    # Open once before timing: this upgrades an older schema (and seeds reference data).
    engine = create_db_engine(url)
    before = current_revision(engine)
    engine.dispose()
    t0 = time.perf_counter()
    backend = Backend.open(url)
    opened = time.perf_counter() - t0
    after = current_revision(backend._factory.kw["bind"])
    prog = backend.read(_program)
    last_day = built[1] if built else local_date(prog.last_order, PROGRAM_TIMEZONE)
    now = _end_of(last_day)
    sample = _sample(prog.active_ids, args.sample, args.seed)

    def evict() -> None:
        _evict(path)

    coach, last = _coach_rows(backend, now, args.repeat, evict)
    loads = _load_rows(backend, now, args.repeat)
    outlook = _outlook_rows(backend, sample, now, args.repeat, evict)
    data = backend.read(_load_data, now=now)
    program_forecast = _forecast_row("forecast_batch, the program's series", data, args.repeat)
    stands, skus = args.synthetic
    synthetic = synthetic_data(data, stands, skus, args.seed)
    synth_rows, synth_shape = _synthetic_rows(backend, synthetic, now, args.repeat)

    size_mib = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists()) / 2**20
    status = ", ".join(f"{n:,} {s}" for s, n in sorted(prog.by_status.items()))
    print()
    print(f"code        {code}")
    print(f"database    {path} ({size_mib:,.0f} MiB)")
    if built is not None:
        wide = f", every package {args.sku_slots} SKU slots" if args.sku_slots else ""
        print(
            f"built in    {built[0]:.1f} s ({args.stands:,} stands, {args.days} days, seed 7{wide})"
        )
    upgraded = f"upgraded from {before} in" if before != after else "opened in"
    print(f"schema      {after} ({upgraded} {opened:.2f} s)")
    print(
        f"program     {prog.stands:,} stands ({status}), {prog.orders:,} orders, "
        f"{local_date(prog.first_order, PROGRAM_TIMEZONE)} .. {last_day}"
    )
    slots = ", ".join(f"{code} {n}" for code, n in prog.slots.items())
    print(f"assortment  SKUs per active stand: {_spread(prog.skus_per_active)}; sku_slots: {slots}")
    print(
        f"as of       {last_day} (now = {now:%Y-%m-%d %H:%M:%S} UTC); the coach reads the "
        f"{data.days} days before, lead time {DEFAULT_LEAD_DAYS} d"
    )
    print(
        f"runs        1 warm-up ('first'; database steps start with the file dropped from the "
        f"OS cache) + {args.repeat} timed"
    )
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    print(
        f"setup       Python {platform.python_version()}, numpy {np.__version__}, "
        f"SQLAlchemy {sqlalchemy.__version__}, SQLite {sqlite3.sqlite_version}, "
        f"{os.cpu_count()} CPUs ({affinity} usable)"
    )
    names = ", ".join(prog.names[i] for i in sample[:3])
    print(f"sample      {len(sample)} active stands, spread (seed {args.seed}): {names}, …")
    print(f"last run    {last.model_version}; {_counts(last)}")
    print()
    _table("run_coach, every active stand", coach, steps=True)
    _table("load_coach_data, every active stand", loads)
    _table("one stand (Backend.read)", [outlook])
    _table("forecast_batch (as run_coach calls it)", [program_forecast])
    print(
        f"SYNTHETIC: {stands:,} stands x {skus} SKUs built in memory from the program's real "
        f"series ({synth_shape}, {synthetic.n:,} series x {synthetic.days} days)"
    )
    _table("synthetic program (no database)", synth_rows, steps=True)
    if args.profile:
        _profile(backend, now, sample[0])
    backend.close()
    print(f"wall time   {time.perf_counter() - wall0:.1f} s")
    return 0


def _shape(text: str) -> tuple[int, int]:
    stands, skus = (int(v) for v in text.lower().split("x"))
    return stands, skus


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--db",
        help=f"reuse this database (built there if missing; default {DEFAULT_DB.relative_to(ROOT)})"
        " - the coach writes its insights into it",
    )
    parser.add_argument("--stands", type=int, default=500, help="stands when building")
    parser.add_argument("--days", type=int, default=365, help="days of history when building")
    parser.add_argument(
        "--sku-slots",
        type=int,
        default=None,
        metavar="N",
        help="when building: every package offers N SKU slots (the demo fills 65-100 %%)",
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sample", type=int, default=20, help="stands timed for stand_outlook")
    parser.add_argument("--seed", type=int, default=7, help="picks the sample and the synthetic")
    parser.add_argument(
        "--synthetic",
        type=_shape,
        default=(500, 40),
        metavar="STANDSxSKUS",
        help="the synthetic program's size",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="print cProfiles and SQL times of run_coach and stand_outlook",
    )
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
