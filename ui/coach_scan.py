"""Running the coach from the GUI: one run at a time per context, and the background scan.

:class:`CoachRuns` (one per :class:`~ui.context.UiContext`, from :func:`coach_runs`) starts
:func:`app.coach.agent.run_coach` on the serial database lane, never two at once: asking
while a run is under way joins that run. Whoever asked, every finished run is announced the
same way — ``Changed({"insights"})`` on the context and :attr:`CoachRuns.finished` with a
:class:`RunSummary` — so the Coach screen shows the outcome of a background scan and the
scanner knows when the screen's own run ended. The coach writes no change-log ops (its
insights are derived data), so "insights" is the only kind a run changes.

:class:`CoachScanner` keeps the insights current while the app runs: a first scan shortly
after start, then one every ``interval_ms``, and one ``debounce_ms`` after the last change
to sales, stock, refills or stands (a burst of sales is one scan, not one per sale).
:meth:`CoachScanner.stop` stops it for shutdown and tests; a run already on the lane still
finishes (a coach run is one short transaction) and is announced, but nothing new starts.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal

from ui.context import Changed, UiContext
from ui.i18n import tr

if TYPE_CHECKING:
    from app.coach.agent import CoachRun


def _agent(name: str) -> Callable[..., Any]:
    """A function of :mod:`app.coach.agent`, imported the first time it runs — on the
    worker thread that runs it — so the coach's numpy never loads on the GUI thread while
    the window starts. Pass it to ``ctx.read`` / ``ctx.write`` like the function itself."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module("app.coach.agent"), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    return call


run_coach = _agent("run_coach")
list_insights = _agent("list_insights")
stand_outlook = _agent("stand_outlook")
acknowledge_insight = _agent("acknowledge_insight")
dismiss_insight = _agent("dismiss_insight")
mark_insight_done = _agent("mark_insight_done")

#: Data changes after which the insights may be out of date.
SCAN_KINDS = ("sales", "inventory", "refills", "stands")
INTERVAL_MS = 30 * 60 * 1000
FIRST_DELAY_MS = 5000
DEBOUNCE_MS = 60 * 1000


@dataclass(frozen=True)
class RunSummary:
    """What a coach run did, in the words the GUI shows."""

    at: datetime
    stands: int
    found: int
    created: int
    #: Updated in place, plus closed ones the coach reopened.
    updated: int
    #: Open insights that no longer apply (deleted or closed by the coach).
    closed: int
    #: Time the run took (its own steps, not the wait for the database lane).
    seconds: float

    @classmethod
    def of(cls, run: CoachRun) -> RunSummary:
        return cls(
            at=run.at,
            stands=run.stands,
            found=len(run.insights),
            created=run.created,
            updated=run.updated + run.reopened,
            closed=run.retired,
            seconds=sum(seconds for _step, seconds in run.timings),
        )

    def text(self) -> str:
        """ "12 new, 3 updated, 2 closed · 1.8 s"."""
        return tr("{new} new, {updated} updated, {closed} closed · {seconds:.1f} s").format(
            new=self.created, updated=self.updated, closed=self.closed, seconds=self.seconds
        )


class CoachRuns(QObject):
    """Coach runs of one context (see the module docstring); get it with
    :func:`coach_runs`."""

    started = Signal()
    #: A run finished: its :class:`RunSummary`.
    finished = Signal(object)
    #: A run failed: the exception.
    failed = Signal(object)

    def __init__(self, ctx: UiContext) -> None:
        super().__init__(ctx)
        self.setObjectName("coach_runs")
        self.ctx = ctx
        self.running = False
        self.last: RunSummary | None = None
        self.last_error: Exception | None = None

    def run(self, **kwargs: Any) -> bool:
        """Start a run over every active stand (``kwargs`` go to ``run_coach``). False when
        one is under way already: that one's :attr:`finished` is the answer."""
        if self.running:
            return False
        self.running = True
        self.started.emit()
        self.ctx.runner.run_db(
            self.ctx.backend.call, run_coach, on_done=self._done, on_error=self._failed, **kwargs
        )
        return True

    def record(self, run: CoachRun) -> RunSummary:
        """Note a run made outside the lane (the screenshot command runs one directly)."""
        self.last = RunSummary.of(run)
        self.last_error = None
        return self.last

    def _done(self, run: CoachRun) -> None:
        self.running = False
        summary = self.record(run)
        self.ctx.data_changed.emit(Changed(frozenset({"insights"})))
        self.finished.emit(summary)

    def _failed(self, exc: Exception) -> None:
        self.running = False
        self.last_error = exc
        self.failed.emit(exc)


def coach_runs(ctx: UiContext) -> CoachRuns:
    """The context's :class:`CoachRuns`, made on first use (a child of the context)."""
    runs = ctx.findChild(CoachRuns, "coach_runs")
    return runs if isinstance(runs, CoachRuns) else CoachRuns(ctx)


def error_text(exc: Exception) -> str:
    return str(getattr(exc, "message", None) or exc)


class CoachScanner(QObject):
    """The background scan (see the module docstring)."""

    #: A scan this scanner started finished (its summary) — for tests and the status bar.
    scanned = Signal(object)

    def __init__(
        self,
        ctx: UiContext,
        interval_ms: int = INTERVAL_MS,
        first_delay_ms: int = FIRST_DELAY_MS,
        debounce_ms: int = DEBOUNCE_MS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.runs = coach_runs(ctx)
        self.interval_ms, self.first_delay_ms = interval_ms, first_delay_ms
        self.active = False
        #: A scan was due while a run was under way: scan again once it ends, since that
        #: run may have read the data before the change.
        self._again = False
        self._mine = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setTimerType(Qt.TimerType.VeryCoarseTimer)
        self._timer.timeout.connect(self.scan)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(debounce_ms)
        self._debounce.timeout.connect(self._scan_after_change)
        self.runs.finished.connect(self._finished)
        self.runs.failed.connect(self._failed)

    def start(self) -> None:
        if self.active:
            return
        self.active = True
        self.ctx.data_changed.connect(self._on_changed)
        self._timer.start(self.first_delay_ms)

    def stop(self) -> None:
        """No further scans; a run already started still ends (and is announced)."""
        if not self.active:
            return
        self.active = False
        self._again = False
        self._timer.stop()
        self._debounce.stop()
        self.ctx.data_changed.disconnect(self._on_changed)

    @property
    def pending(self) -> bool:
        """True while a scan is scheduled soon (after a data change) or under way."""
        return self._debounce.isActive() or self._again or self.runs.running

    def scan(self) -> None:
        """Scan now, or count on the run under way (a regular scan needs no second one)."""
        if not self.active:
            return
        self._timer.stop()
        self._debounce.stop()
        if self.runs.run():
            self._mine = True

    def _scan_after_change(self) -> None:
        if self.active and self.runs.running:
            self._again = True
            return
        self.scan()

    def _on_changed(self, change: Changed) -> None:
        if change.touches(*SCAN_KINDS):
            self._debounce.start()

    def _schedule(self) -> None:
        if not self.active:
            return
        if self._again:
            self._again = False
            self._debounce.start()
        # The next regular scan counts from the last run, whoever started it.
        self._timer.start(self.interval_ms)

    def _finished(self, summary: RunSummary) -> None:
        mine, self._mine = self._mine, False
        if mine:
            self.ctx.status.emit(tr("Coach: {result}").format(result=summary.text()))
            self.scanned.emit(summary)
        self._schedule()

    def _failed(self, exc: Exception) -> None:
        mine, self._mine = self._mine, False
        if mine:
            self.ctx.status.emit(
                tr("The coach could not run: {error}").format(error=error_text(exc))
            )
        self._schedule()


def start_scanner(ctx: UiContext, **kwargs: Any) -> CoachScanner:
    """A started :class:`CoachScanner` owned by the context."""
    scanner = CoachScanner(ctx, parent=ctx, **kwargs)
    scanner.start()
    return scanner
