"""Benchmark the performance KPIs and their charts on a demo program, offscreen.

    .venv/bin/python bench/bench_kpi.py [--db PATH] [--stands 500] [--days 365] [--repeat 5]
                                        [--sample 20] [--seed 7] [--size 1280x800]
                                        [--gc-freeze] [--profile]

Builds a demo program with :func:`app.demo.generate_demo` (or reuses ``--db PATH``; a missing
PATH is built and kept) and measures, with the periods ending on the demo's last day:

- stand KPIs: :func:`app.kpi.stand_performance` for 28, 90 and 365 days on a sample of
  stands spread over the list (seeded), through ``Backend.read`` as the Performance tab calls
  it; every call of every run counts;
- program KPIs: :func:`app.kpi.dashboard` for the whole program over 7, 28, 90 and 365 days,
  for the rep with the most stands and the partner with the most stands, and
  :func:`app.kpi.kpi_report` alone (the ``standctl kpi`` path);
- charts: :class:`ui.views.dashboard.DashboardView` and a stand's
  :class:`ui.views.performance.PerformancePanel` in a window: from handing them the computed
  figures (``_got``) until the charts on screen have drawn, then opening each other tab until
  its charts have drawn (a chart in a background tab may wait until it is shown); each chart
  on its own (``redraw()`` builds the figure, ``canvas.draw()`` renders it, ``repaint()``
  copies it to the window); and a click on a period button (28 -> 90 days and back) until
  the new figures are drawn, end to end (background compute, then drawing);
- the one-page PDF reports (:mod:`ui.report`), when that module is there.

Each step runs once to warm up, then ``--repeat`` times; the table shows the warm-up ("first")
apart, then the median and the slowest of the timed runs. Before the first run of a database
step the file's pages are dropped from the OS cache, so "first" is a cold start that reads
from disk. Where the GUI is involved the longest time the GUI thread was busy without taking
events is shown too (a 1 ms timer measures the gaps): that is the pause a user would see.
Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import gc
import io
import os
import platform
import pstats
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

# The platform is read when Qt starts; offscreen unless told otherwise (an empty value, as
# the Makefile exports when there is a display, counts as not told).
os.environ["QT_QPA_PLATFORM"] = os.environ.get("QT_QPA_PLATFORM") or "offscreen"

import matplotlib
import PySide6
from PySide6.QtCore import QEventLoop, Qt, qInstallMessageHandler
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMainWindow, QTabWidget, QWidget
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from stopwatch import Stopwatch
from stopwatch import window_size as _size
from timing import end_of as _end_of
from timing import evict as _evict
from timing import ms as _ms
from timing import sample as _sample
from timing import timed as _timed

import app.kpi.engine as kpi_engine
import ui.views.kpi_widgets as kpi_widgets
from app.backend import Backend
from app.clock import ensure_utc
from app.db import create_db_engine, current_revision, open_db
from app.demo import generate_demo
from app.kpi import (
    Dashboard,
    Period,
    Scope,
    ScopeKind,
    StandPerformance,
    dashboard,
    kpi_report,
    stand_performance,
)
from app.models import Role, StandLocation, StandOrder, StandPartner
from app.rules import PROGRAM_TIMEZONE, local_date
from app.services.base import Actor, transactional
from ui.context import UiContext
from ui.tasks import TaskRunner
from ui.views.dashboard import DashboardView
from ui.views.performance import PerformancePanel

ROOT = Path(__file__).resolve().parent.parent
STAND_DAYS = (28, 90, 365)
PROGRAM_DAYS = (7, 28, 90, 365)
#: From the issue: a stand's Performance tab and the program's dashboard should compute in.
STAND_TARGET_MS = 150
PROGRAM_TARGET_MS = 1500


# ------------------------------------------------------------------ timing


@dataclass
class Row:
    """One line of a table: the warm-up, the timed runs (ms) and what else to say."""

    name: str
    first: float
    times: list[float]
    stall: float | None = None  # ms, the longest over all runs
    note: str = ""
    target: float | None = None  # ms, compared with the median

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def worst(self) -> float:
        return max(self.times)

    def verdict(self) -> str:
        if self.target is None:
            return ""
        met = "met" if self.median <= self.target else "MISSED"
        return f"target {self.target:,.0f} ms {met}"


# ------------------------------------------------------------------ the program


@dataclass(frozen=True)
class Program:
    stand_ids: list[str]  # by name, as the stand list shows them
    names: dict[str, str]
    orders: int
    first_order: datetime
    last_order: datetime
    top_rep: tuple[str, int]
    top_partner: tuple[str, str, int]  # id, name, stands


@transactional
def _program(session: Session) -> Program:
    stands = session.execute(
        select(StandLocation.id, StandLocation.name).order_by(StandLocation.name)
    ).all()
    orders, first, last = session.execute(
        select(func.count(), func.min(StandOrder.occurred_at), func.max(StandOrder.occurred_at))
    ).one()
    rep = session.execute(
        select(StandLocation.assigned_rep, func.count())
        .where(StandLocation.assigned_rep.is_not(None))
        .group_by(StandLocation.assigned_rep)
        .order_by(func.count().desc(), StandLocation.assigned_rep)
        .limit(1)
    ).one()
    partner = session.execute(
        select(StandPartner.id, StandPartner.name, func.count())
        .join(StandLocation, StandLocation.partner_id == StandPartner.id)
        .group_by(StandPartner.id, StandPartner.name)
        .order_by(func.count().desc(), StandPartner.name)
        .limit(1)
    ).one()
    return Program(
        stand_ids=[str(i) for i, _ in stands],
        names={str(i): str(name) for i, name in stands},
        orders=int(orders),
        first_order=ensure_utc(first),
        last_order=ensure_utc(last),
        top_rep=(str(rep[0]), int(rep[1])),
        top_partner=(str(partner[0]), str(partner[1]), int(partner[2])),
    )


def _build(path: Path, stands: int, days: int) -> tuple[float, date]:
    print(f"building a demo program: {stands} stands, {days} days -> {path}", file=sys.stderr)
    t0 = time.perf_counter()
    factory = open_db(f"sqlite:///{path}")
    summary = generate_demo(factory, stands=stands, days=days, seed=7)
    factory.kw["bind"].dispose()
    return time.perf_counter() - t0, summary.last_day


# ------------------------------------------------------------------ KPI computation


def _kpi_rows(
    backend: Backend,
    prog: Program,
    sample: list[str],
    last_day: date,
    now: datetime,
    repeat: int,
    evict: Callable[[], None],
) -> tuple[list[Row], Dashboard, StandPerformance]:
    rows: list[Row] = []
    for days in STAND_DAYS:
        period = Period.last(days, last_day)
        evict()
        first = -1.0
        times: list[float] = []
        for run in range(repeat + 1):
            for stand_id in sample:
                t0 = time.perf_counter()
                backend.read(stand_performance, stand_id, period, now=now)
                ms = _ms(time.perf_counter() - t0)
                if run == 0:
                    first = ms if first < 0 else first
                else:
                    times.append(ms)
        rows.append(
            Row(
                f"stand {days} d",
                first,
                times,
                note=f"{len(sample)} stands x {repeat} runs",
                target=STAND_TARGET_MS,
            )
        )

    dash_28: list[Dashboard] = []

    def program(days: int) -> Callable[[], object]:
        period = Period.last(days, last_day)

        def call() -> object:
            data = backend.read(dashboard, Scope(ScopeKind.PROGRAM), period, now=now)
            if days == 28:
                dash_28[:] = [data]
            return data

        return call

    n = len(prog.stand_ids)
    for days in PROGRAM_DAYS:
        first, times = _timed(program(days), repeat, evict)
        rows.append(
            Row(
                f"program {days} d",
                first,
                times,
                note=f"{n} stands",
                target=PROGRAM_TARGET_MS if days <= 28 else None,
            )
        )
    rep, rep_stands = prog.top_rep
    pid, pname, p_stands = prog.top_partner
    for label, scope, note in (
        ("territory", Scope(ScopeKind.TERRITORY, rep), f"{rep}, {rep_stands} stands"),
        ("partner", Scope(ScopeKind.PARTNER, pid), f"{pname}, {p_stands} stands"),
    ):
        for days in (28, 365):
            period = Period.last(days, last_day)
            call = functools.partial(backend.read, dashboard, scope, period, now=now)
            first, times = _timed(call, repeat, evict)
            rows.append(Row(f"{label} {days} d", first, times, note=note))
    period = Period.last(28, last_day)
    first, times = _timed(
        lambda: backend.read(kpi_report, Scope(ScopeKind.PROGRAM), period, now=now), repeat, evict
    )
    rows.append(Row("kpi_report program 28 d", first, times, note="CLI path: KPIs only"))
    perf = backend.read(stand_performance, sample[0], period, now=now)
    return rows, dash_28[0], perf


# ------------------------------------------------------------------ charts


def _pending(charts: Sequence[Any]) -> bool:
    """Whether a chart still has a draw queued (``redraw()`` asks for one with draw_idle)."""
    return any(getattr(c.canvas, "_draw_pending", False) for c in charts)


class Draws:
    """Counts the times each chart's canvas has rendered (matplotlib's ``draw_event``)."""

    def __init__(self, charts: Sequence[Any]) -> None:
        self.counts = {id(c): 0 for c in charts}
        for c in charts:
            c.canvas.mpl_connect("draw_event", functools.partial(self._bump, id(c)))

    def _bump(self, key: int, _event: object) -> None:
        self.counts[key] += 1

    def mark(self) -> dict[int, int]:
        return dict(self.counts)

    def drew(self, charts: Sequence[Any], since: dict[int, int]) -> list[Any]:
        return [c for c in charts if self.counts[id(c)] > since[id(c)]]

    def done(self, charts: Sequence[Any], since: dict[int, int]) -> bool:
        """Every chart now on screen has drawn since ``since`` and none has a draw queued."""
        on_screen = [c for c in charts if c.canvas.isVisible()]
        return not _pending(charts) and len(self.drew(on_screen, since)) == len(on_screen)


def _settle() -> None:
    for _ in range(3):
        QApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)


def _bring_forward(chart: QWidget) -> None:
    """Show the tab a chart sits on, so it is laid out at its on-screen size."""
    parent = chart.parentWidget()
    while parent is not None:
        if isinstance(parent, QTabWidget):
            for i in range(parent.count()):
                page = parent.widget(i)
                if page is not None and (page is chart or page.isAncestorOf(chart)):
                    parent.setCurrentIndex(i)
        parent = parent.parentWidget()
    _settle()


@dataclass
class ChartRow:
    name: str
    size: str
    build: list[float]
    render: list[float]
    paint: list[float]

    @property
    def totals(self) -> list[float]:
        return [a + b + c for a, b, c in zip(self.build, self.render, self.paint, strict=True)]


def _per_chart(charts: dict[str, Any], repeat: int) -> list[ChartRow]:
    out = []
    for name, chart in charts.items():
        _bring_forward(chart)
        canvas = chart.canvas
        build: list[float] = []
        render: list[float] = []
        paint: list[float] = []
        for run in range(repeat + 1):
            t0 = time.perf_counter()
            chart.redraw()
            t1 = time.perf_counter()
            canvas.draw()
            # redraw() queued an idle draw; canvas.draw() has just done that work.
            canvas._draw_pending = False
            t2 = time.perf_counter()
            canvas.repaint()
            t3 = time.perf_counter()
            if run:
                build.append(_ms(t1 - t0))
                render.append(_ms(t2 - t1))
                paint.append(_ms(t3 - t2))
            _settle()
        w, h = canvas.get_width_height(physical=True)
        out.append(ChartRow(name, f"{w}x{h}", build, render, paint))
    return out


def _window(widget: QWidget, size: tuple[int, int]) -> QMainWindow:
    window = QMainWindow()
    window.resize(*size)
    window.setCentralWidget(widget)
    window.show()
    _settle()
    return window


def _charts(n: int) -> str:
    return "1 chart" if n == 1 else f"{n} charts"


def _show_rows(
    name: str,
    view: DashboardView | PerformancePanel,
    data: Any,
    tabs: dict[int, str],
    watch: Stopwatch,
    repeat: int,
) -> list[Row]:
    """Hand ``view`` its figures (``_got``) on its first tab until the charts on screen have
    drawn; then open each other tab until its charts have drawn (charts in a background tab
    may wait until shown)."""
    charts: list[Any] = (
        view._charts()
        if isinstance(view, DashboardView)
        else [view.revenue_chart, view.units_chart, view.stock_chart]
    )
    draws = Draws(charts)
    shows: list[tuple[float, float]] = []
    drawn: list[int] = []
    opens: dict[int, list[tuple[float, float]]] = {i: [] for i in tabs}
    opened: dict[int, int] = {}
    for _ in range(repeat + 1):
        view.tabs.setCurrentIndex(0)
        _settle()
        since = draws.mark()
        done = functools.partial(draws.done, charts, since)
        shows.append(watch.measure(functools.partial(view._got, data), done))
        drawn.append(len(draws.drew(charts, since)))
        for i in tabs:
            page = view.tabs.widget(i)
            on_tab = [c for c in charts if page is not None and page.isAncestorOf(c)]
            since = draws.mark()
            opens[i].append(
                watch.measure(
                    functools.partial(view.tabs.setCurrentIndex, i),
                    functools.partial(draws.done, on_tab, since),
                )
            )
            opened[i] = len(draws.drew(on_tab, since))
    view.tabs.setCurrentIndex(0)
    _settle()
    rows = [
        Row(
            f"{name}: show figures",
            _ms(shows[0][0]),
            [_ms(t) for t, _ in shows[1:]],
            stall=_ms(max(st for _, st in shows)),
            note=f"_got; {drawn[-1]} of {_charts(len(charts))} drew (first tab)",
        )
    ]
    for i, label in tabs.items():
        rows.append(
            Row(
                f"{name}: open tab {label}",
                _ms(opens[i][0][0]),
                [_ms(t) for t, _ in opens[i][1:]],
                stall=_ms(max(st for _, st in opens[i])),
                note=f"after new figures; {_charts(opened[i])} drew",
            )
        )
    return rows


def _gui_rows(
    ctx: UiContext,
    data: Dashboard,
    perf: StandPerformance,
    size: tuple[int, int],
    repeat: int,
    evict: Callable[[], None],
) -> tuple[list[Row], list[ChartRow], list[ChartRow]]:
    watch = Stopwatch()
    rows: list[Row] = []

    # --- the dashboard: its figures, each tab, then each chart on its own
    view = DashboardView(ctx)
    window = _window(view, size)
    rows += _show_rows(
        "dashboard", view, data, {1: "Stands", 2: "Products", 3: "Refills"}, watch, repeat
    )
    dash_charts = _per_chart(
        {
            "revenue": view.revenue_chart,
            "ranking": view.ranking_chart,
            "map": view.map_chart,
            "units by product": view.units_chart,
            "heatmap": view.heatmap_chart,
            "refill funnel": view.funnel_chart,
            "cycle time": view.cycle_chart,
        },
        repeat,
    )
    view.tabs.setCurrentIndex(0)
    _settle()

    # --- a click on a period button, end to end (background compute, then drawing)
    charts = view._charts()
    draws = Draws(charts)
    got_at: list[float] = []
    got_done: list[float] = []
    original_got = view._got

    def got(result: Dashboard) -> None:
        got_at.append(time.perf_counter())
        original_got(result)
        got_done.append(time.perf_counter())

    view._got = got  # the view passes self._got per read
    since = draws.mark()
    view.refresh()  # the scopes, then the default 28 days
    watch.measure(lambda: None, lambda: not view.loading and draws.done(charts, since))

    def shown(days: int, since: dict[int, int]) -> Callable[[], bool]:
        def check() -> bool:
            d = view.data
            return (
                not view.loading
                and d is not None
                and (d.report.end - d.report.start).days + 1 == days
                and draws.done(charts, since)
            )

        return check

    clicks: dict[tuple[int, int], list[tuple[float, float, float, float]]] = {
        (28, 90): [],
        (90, 28): [],
    }
    evict()
    for _ in range(repeat + 1):
        for a, b in clicks:
            button = view.period.buttons[b]
            got_at.clear()
            got_done.clear()
            since = draws.mark()
            t0 = time.perf_counter()
            seconds, stall = watch.measure(
                functools.partial(QTest.mouseClick, button, Qt.MouseButton.LeftButton),
                shown(b, since),
            )
            compute = got_at[-1] - t0 if got_at else float("nan")
            in_got = got_done[-1] - got_at[-1] if got_at else float("nan")
            clicks[(a, b)].append((seconds, stall, compute, in_got))
    for (a, b), runs in clicks.items():
        timed = runs[1:]
        compute = statistics.median(_ms(r[2]) for r in timed)
        in_got = statistics.median(_ms(r[3]) for r in timed)
        rows.append(
            Row(
                f"dashboard: click {a} d -> {b} d",
                _ms(runs[0][0]),
                [_ms(r[0]) for r in timed],
                stall=_ms(max(r[1] for r in runs)),
                note=(
                    f"median: compute {compute:,.0f} ms (background), _got {in_got:,.0f} ms, "
                    "then drawing"
                ),
            )
        )
    window.close()
    ctx.runner.wait()

    # --- a stand's Performance tab
    panel = PerformancePanel(ctx)
    panel.stand_id = perf.report.scope.key
    pwindow = _window(panel, size)
    rows += _show_rows("stand panel", panel, perf, {1: "Stock"}, watch, repeat)
    stand_charts = _per_chart(
        {
            "revenue": panel.revenue_chart,
            "units by product": panel.units_chart,
            "stock": panel.stock_chart,
        },
        repeat,
    )
    pwindow.close()
    ctx.runner.wait()
    for w in (window, pwindow):
        w.deleteLater()
    _settle()
    return rows, dash_charts, stand_charts


# ------------------------------------------------------------------ PDF reports


def _report_rows(
    data: Dashboard, perf: StandPerformance, repeat: int, folder: Path
) -> list[Row] | None:
    try:
        from ui.report import render_program_report, render_stand_report
    except ImportError:
        return None
    program_pdf, stand_pdf = folder / "program.pdf", folder / "stand.pdf"
    calls: list[tuple[str, Path, Callable[[], object]]] = [
        (
            "program report PDF (28 d)",
            program_pdf,
            functools.partial(render_program_report, data, program_pdf),
        ),
        (
            "stand report PDF (28 d)",
            stand_pdf,
            functools.partial(render_stand_report, perf, stand_pdf),
        ),
    ]
    rows = []
    for name, path, call in calls:
        first, times = _timed(call, repeat, None)
        rows.append(Row(name, first, times, note=f"{path.stat().st_size / 1024:,.0f} KiB"))
    return rows


# ------------------------------------------------------------------ output


def _table(title: str, rows: Sequence[Row], *, stalls: bool = False) -> None:
    head = f"{title:34s} {'first ms':>9s} {'median ms':>10s} {'max ms':>8s}"
    if stalls:
        head += f" {'GUI stall ms':>13s}"
    head += "  notes"
    print(head)
    print("-" * max(len(head), 100))
    for r in rows:
        line = f"{r.name:34s} {r.first:9,.0f} {r.median:10,.0f} {r.worst:8,.0f}"
        if stalls:
            line += f" {r.stall if r.stall is not None else float('nan'):13,.0f}"
        note = "; ".join(x for x in (r.verdict(), r.note) if x)
        print(f"{line}  {note}")
    print()


def _chart_table(title: str, charts: Sequence[ChartRow]) -> None:
    head = (
        f"{title:34s} {'pixels':>9s} {'build ms':>9s} {'render ms':>10s} {'paint ms':>9s}"
        f" {'total ms':>9s} {'max ms':>7s}"
    )
    print(head)
    print("-" * max(len(head), 100))
    sums = [0.0, 0.0, 0.0, 0.0]
    for c in charts:
        figures = [statistics.median(x) for x in (c.build, c.render, c.paint, c.totals)]
        sums = [a + b for a, b in zip(sums, figures, strict=True)]
        print(
            f"{c.name:34s} {c.size:>9s} {figures[0]:9.1f} {figures[1]:10.1f} {figures[2]:9.1f}"
            f" {figures[3]:9.1f} {max(c.totals):7.1f}"
        )
    print(
        f"{'all charts (sum of medians)':34s} {'':>9s} {sums[0]:9.1f} {sums[1]:10.1f}"
        f" {sums[2]:9.1f} {sums[3]:9.1f}"
    )
    print()


def _code_state() -> str:
    """The commit, and which files of app/ and ui/ differ from it (others edit them)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout

    try:
        head = git("rev-parse", "--short", "HEAD").strip()
        changed = [
            line[3:] for line in git("status", "--porcelain", "--", "app", "ui").splitlines()
        ]
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    if not changed:
        return head
    more = f" and {len(changed) - 4} more" if len(changed) > 4 else ""
    return f"{head} + uncommitted changes in {', '.join(changed[:4])}{more}"


def _profile(backend: Backend, last_day: date, now: datetime) -> None:
    period = Period.last(28, last_day)
    profiler = cProfile.Profile()
    profiler.enable()
    backend.read(dashboard, Scope(ScopeKind.PROGRAM), period, now=now)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
    print("profile of dashboard(program, 28 d), by own time:")
    print(out.getvalue())


def run(args: argparse.Namespace) -> int:
    print("$ " + shlex.join(sys.orig_argv))
    wall0 = time.perf_counter()
    code = _code_state()  # now: others may change the code while this runs
    tmp = tempfile.TemporaryDirectory()
    built: tuple[float, date] | None = None
    if args.db:
        path = Path(args.db)
        if not path.exists():
            built = _build(path, args.stands, args.days)
    else:
        path = Path(tmp.name) / "stand.db"
        built = _build(path, args.stands, args.days)
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
    sample = _sample(prog.stand_ids, args.sample, args.seed)

    def evict() -> None:
        _evict(path)

    qInstallMessageHandler(
        lambda _mode, _ctx, message: (
            None if "propagateSizeHints" in message else print(message, file=sys.stderr)
        )
    )
    if QApplication.instance() is None:
        QApplication(sys.argv[:1])
    if args.gc_freeze:
        gc.freeze()

    kpis, data, perf = _kpi_rows(backend, prog, sample, last_day, now, args.repeat, evict)

    # The period buttons count back from "today": make today the demo's last day.
    kpi_widgets.utcnow = lambda: now
    kpi_engine.utcnow = lambda: now
    ctx = UiContext(backend, TaskRunner(), Actor("mgr.max", Role.MANAGER))
    gui, dash_charts, stand_charts = _gui_rows(ctx, data, perf, args.size, args.repeat, evict)
    reports = _report_rows(data, perf, args.repeat, Path(tmp.name))

    width, height = args.size
    size_mib = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists()) / 2**20
    print()
    print(f"code        {code}")
    print(f"database    {path} ({size_mib:,.0f} MiB)")
    if built is not None:
        print(f"built in    {built[0]:.1f} s ({args.stands:,} stands, {args.days} days, seed 7)")
    upgraded = f"upgraded from {before} in" if before != after else "opened in"
    print(f"schema      {after} ({upgraded} {opened:.2f} s)")
    print(
        f"program     {len(prog.stand_ids):,} stands, {prog.orders:,} orders, "
        f"{local_date(prog.first_order, PROGRAM_TIMEZONE)} .. {last_day}"
    )
    print(f"as of       {last_day} (now = {now:%Y-%m-%d %H:%M:%S} UTC); periods end that day")
    print(
        f"runs        1 warm-up ('first'; database steps start with the file dropped from the "
        f"OS cache) + {args.repeat} timed"
    )
    print(
        f"setup       window {width}x{height}; gc.freeze {'on' if args.gc_freeze else 'off'}; "
        f"Python {platform.python_version()}, PySide6 {PySide6.__version__}, "
        f"matplotlib {matplotlib.__version__}, {os.cpu_count()} CPUs"
    )
    names = ", ".join(prog.names[i] for i in sample[:3])
    print(f"sample      {len(sample)} stands spread over the list (seed {args.seed}): {names}, …")
    print()
    _table("KPIs (Backend.read, this thread)", kpis)
    _table("GUI (offscreen)", gui, stalls=True)
    _chart_table("dashboard charts (program 28 d)", dash_charts)
    _chart_table(f"stand charts ({perf.report.scope.label}, 28 d)", stand_charts)
    if reports is None:
        print("report: not available (ui.report cannot be imported)")
    else:
        _table("PDF reports (ui.report)", reports)
    if args.profile:
        _profile(backend, last_day, now)
    backend.close()
    tmp.cleanup()
    print(f"wall time   {time.perf_counter() - wall0:.1f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="reuse this database (built there if missing)")
    parser.add_argument("--stands", type=int, default=500, help="stands when building")
    parser.add_argument("--days", type=int, default=365, help="days of history when building")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sample", type=int, default=20, help="stands timed for stand KPIs")
    parser.add_argument("--seed", type=int, default=7, help="picks the sample of stands")
    parser.add_argument("--size", type=_size, default=(1280, 800), metavar="WxH")
    parser.add_argument(
        "--gc-freeze", action="store_true", help="gc.freeze() after start, as an app could"
    )
    parser.add_argument(
        "--profile", action="store_true", help="print a cProfile of dashboard(program, 28 d)"
    )
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
