"""Benchmark the stand list on a 10,000-stand program, offscreen.

    .venv/bin/python bench/bench_stand_list.py [--stands 10000] [--days 14] [--db PATH]
                                               [--repeat 3] [--size 1280x800] [--gc-freeze]

Builds a demo program (or reuses ``--db PATH``; a missing PATH is built and kept), opens
:class:`ui.views.stands.StandsView` in a window and measures, each ``--repeat`` times:

- open: from creating the view until the first screenful of rows is shown;
- search: from the search running (after the typing pause, which is reported apart) until
  the filtered rows are shown;
- needs attention: the same for the attention filter (the heaviest query);
- sort by a text column (partner) and by a stock figure (units), from the header click;
- jump to end: from scrolling to the bottom until the last rows are shown;
- scroll through: scrolling to the end one page of rows at a time, fetching every page.

Besides the wall time it reports the longest time the GUI thread was busy without taking
events (a 1 ms timer measures the gaps): that is the pause a user would see. Nothing here
asserts a time.
"""

from __future__ import annotations

import argparse
import functools
import gc
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEventLoop, QPoint, Qt, qInstallMessageHandler
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMainWindow
from stopwatch import Stopwatch
from stopwatch import window_size as _size

from app.backend import Backend
from app.db import open_db
from app.demo import generate_demo
from app.models import Role
from app.services.base import Actor
from ui.context import UiContext
from ui.stand_list_model import StandListModel
from ui.tasks import TaskRunner
from ui.views.stands import SEARCH_DELAY_MS, StandsView

# PySide6 6.12 on Python 3.11 drops a reference to None on every call of a Qt method that
# returns nothing; a long run would free None and abort. Holding extra references keeps it
# alive for the length of the benchmark.
_NONE_BALLAST = [None] * 2_000_000


def _visible_loaded(view: StandsView) -> bool:
    model = view.model
    if view.loading or model.rowCount() == 0:
        return False
    first = max(0, view.table.rowAt(0))
    last = view.table.rowAt(view.table.viewport().height() - 1)
    last = model.rowCount() - 1 if last < 0 else last
    return model.is_loaded(first) and model.is_loaded(last)


def _click_header(view: StandsView, key: str) -> None:
    col = [c.key for c in StandListModel.COLUMNS].index(key)
    header = view.table.horizontalHeader()
    x = header.sectionViewportPosition(col) + header.sectionSize(col) // 2
    QTest.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, 10))


def _build(path: Path, stands: int, days: int) -> float:
    print(f"building a demo program: {stands} stands, {days} days -> {path}", file=sys.stderr)
    t0 = time.perf_counter()
    factory = open_db(f"sqlite:///{path}")
    generate_demo(factory, stands=stands, days=days, seed=7)
    factory.kw["bind"].dispose()
    return time.perf_counter() - t0


Figures = tuple[float, float]


def _one_run(
    ctx: UiContext, watch: Stopwatch, size: tuple[int, int]
) -> tuple[dict[str, Figures], dict[str, str], int]:
    """Open the list in a new window and time each step once."""
    results: dict[str, Figures] = {}
    notes: dict[str, str] = {}
    window = QMainWindow()
    window.resize(*size)
    view = StandsView(ctx)
    loaded = functools.partial(_visible_loaded, view)

    def open_view() -> None:
        window.setCentralWidget(view)
        window.show()
        view.refresh()

    def search() -> None:
        view.search.blockSignals(True)
        view.search.setText("berlin")
        view.search.blockSignals(False)
        view.reload()

    def sorted_by(key: str) -> Callable[[], bool]:
        return lambda: view.model.sort_key == key and loaded()

    results["open until first rows shown"] = watch.measure(open_view, loaded)
    total = view.model.rowCount()
    results["search 'berlin'"] = watch.measure(search, loaded)
    notes["search 'berlin'"] = (
        f"{view.model.rowCount():,} rows; the {SEARCH_DELAY_MS} ms typing pause comes before"
    )
    results["clear search"] = watch.measure(view.clear_filters, loaded)
    results["needs attention filter"] = watch.measure(
        functools.partial(view.attention.setChecked, True), loaded
    )
    notes["needs attention filter"] = f"{view.model.rowCount():,} rows"
    watch.measure(view.clear_filters, loaded)
    results["sort by partner (header click)"] = watch.measure(
        functools.partial(_click_header, view, "partner"), sorted_by("partner")
    )
    results["sort by units (header click)"] = watch.measure(
        functools.partial(_click_header, view, "units"), sorted_by("units")
    )
    results["jump to end"] = watch.measure(view.table.scrollToBottom, loaded)
    # Back to the top with no rows loaded, then through every page to the end.
    view.model.clear_cache()
    watch.measure(view.table.scrollToTop, loaded)
    bar = view.table.verticalScrollBar()
    step = view.model.page_size * view.table.verticalHeader().defaultSectionSize()
    calls_before = view.model.load_calls

    def scroll_on() -> bool:
        # One tick of the stopwatch: once the screen is loaded, move on by a page of rows.
        if not loaded():
            return False
        if bar.value() >= bar.maximum():
            return True
        bar.setValue(min(bar.maximum(), bar.value() + step))
        return False

    results["scroll through all pages"] = watch.measure(lambda: None, scroll_on)
    notes["scroll through all pages"] = (
        f"{view.model.load_calls - calls_before} pages of {view.model.page_size} rows"
    )
    window.close()
    ctx.runner.wait()
    window.deleteLater()
    return results, notes, total


def run(args: argparse.Namespace) -> int:
    tmp = None
    if args.db:
        path = Path(args.db)
        built = None if path.exists() else _build(path, args.stands, args.days)
    else:
        tmp = tempfile.TemporaryDirectory()
        path = Path(tmp.name) / "stand.db"
        built = _build(path, args.stands, args.days)

    # Offscreen unless told otherwise; the platform is read when the application starts.
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    # Not the offscreen plugin's note about window managers; any other Qt message still shows.
    qInstallMessageHandler(
        lambda _mode, _ctx, message: (
            None if "propagateSizeHints" in message else print(message, file=sys.stderr)
        )
    )
    if QApplication.instance() is None:
        QApplication(sys.argv[:1])
    backend = Backend.open(f"sqlite:///{path}")
    runner = TaskRunner()
    ctx = UiContext(backend, runner, Actor("mgr.max", Role.MANAGER))
    if args.gc_freeze:
        # What an application can do once started: keep the objects it has from every
        # full garbage collection (those pauses of 70-90 ms are the longest stalls).
        gc.freeze()
    watch = Stopwatch()
    runs = [_one_run(ctx, watch, args.size) for _ in range(args.repeat)]
    runner.wait()
    QEventLoop().processEvents()

    width, height = args.size
    print()
    print(f"database    {path} ({path.stat().st_size / 2**20:,.0f} MiB)")
    if built is not None:
        print(f"built in    {built:.1f} s ({args.stands:,} stands, {args.days} days)")
    print(
        f"stands      {runs[0][2]:,}; window {width}x{height}; {args.repeat} runs; "
        f"gc.freeze {'on' if args.gc_freeze else 'off'}"
    )
    print()
    head = f"{'step':32s} {'median ms':>10s} {'best ms':>8s} {'longest GUI stall ms':>21s}  notes"
    print(head)
    print("-" * len(head))
    for name in runs[0][0]:
        times = [r[0][name][0] * 1000 for r in runs]
        stall = max(r[0][name][1] for r in runs) * 1000
        note = runs[-1][1].get(name, "")
        print(
            f"{name:32s} {statistics.median(times):10.0f} {min(times):8.0f} {stall:21.0f}  {note}"
        )
    backend.close()
    if tmp is not None:
        tmp.cleanup()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stands", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=14, help="history (the demo needs >= 14)")
    parser.add_argument("--db", help="reuse this database (built there if missing)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--size", type=_size, default=(1280, 800), metavar="WxH")
    parser.add_argument(
        "--gc-freeze", action="store_true", help="gc.freeze() after start, as an app could"
    )
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
