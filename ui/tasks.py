"""Background work off the GUI thread.

Two lanes, after Anki's task manager: a *serial* lane for the database (one worker, so
writes from the GUI never contend with each other) and a *parallel* lane for the network
and computation. A task is a plain function with plain arguments; it opens its own session
through the Backend. Results and errors come back to the GUI thread through signals owned
by the runner, never through widgets touched from a worker.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot


class _Relay(QObject):
    finished = Signal(int, object)
    failed = Signal(int, object)
    progress = Signal(int, str, float)


class Cancelled(Exception):
    """Raised inside a task at its next progress report after :meth:`TaskRunner.cancel`."""


class _Job(QRunnable):
    def __init__(
        self,
        job_id: int,
        relay: _Relay,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        with_progress: bool,
        cancel: threading.Event,
    ) -> None:
        super().__init__()
        self.job_id, self.relay, self.fn = job_id, relay, fn
        self.args, self.kwargs, self.with_progress = args, kwargs, with_progress
        self.cancel = cancel
        self.setAutoDelete(True)

    def _progress(self, phase: str, fraction: float) -> None:
        # A task stops where it reports progress: the one place it is ready to.
        if self.cancel.is_set():
            raise Cancelled(phase)
        self.relay.progress.emit(self.job_id, phase, float(fraction))

    def run(self) -> None:
        try:
            if self.with_progress:
                self.kwargs["progress"] = self._progress
            result = self.fn(*self.args, **self.kwargs)
        except Exception as exc:  # reported to the GUI, which shows it
            self.relay.failed.emit(self.job_id, exc)
        else:
            self.relay.finished.emit(self.job_id, result)


class TaskRunner(QObject):
    """Runs functions in the background and calls back on the GUI thread."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._db = QThreadPool(self)
        self._db.setMaxThreadCount(1)
        self._parallel = QThreadPool(self)
        self._relay = _Relay()
        self._relay.finished.connect(self._on_finished)
        self._relay.failed.connect(self._on_failed)
        self._relay.progress.connect(self._on_progress)
        self._ids = itertools.count(1)
        self._cancels: dict[int, threading.Event] = {}
        self._callbacks: dict[
            int,
            tuple[
                Callable[[Any], None] | None,
                Callable[[Exception], None] | None,
                Callable[[str, float], None] | None,
            ],
        ] = {}

    def run_db(
        self,
        fn: Callable[..., Any],
        *args: Any,
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
        on_progress: Callable[[str, float], None] | None = None,
        **kwargs: Any,
    ) -> int:
        """Queue ``fn`` on the serial database lane."""
        return self._submit(self._db, fn, args, kwargs, on_done, on_error, on_progress)

    def run_parallel(
        self,
        fn: Callable[..., Any],
        *args: Any,
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
        on_progress: Callable[[str, float], None] | None = None,
        **kwargs: Any,
    ) -> int:
        return self._submit(self._parallel, fn, args, kwargs, on_done, on_error, on_progress)

    def _submit(
        self,
        pool: QThreadPool,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        on_done: Any,
        on_error: Any,
        on_progress: Any,
    ) -> int:
        job_id = next(self._ids)
        self._callbacks[job_id] = (on_done, on_error, on_progress)
        self._cancels[job_id] = threading.Event()
        pool.start(
            _Job(
                job_id,
                self._relay,
                fn,
                args,
                kwargs,
                on_progress is not None,
                self._cancels[job_id],
            )
        )
        return job_id

    def cancel(self, job_id: int) -> None:
        """Ask a task with progress to stop; it fails with :class:`Cancelled` at its next
        progress report (services roll back, so nothing half-done is kept)."""
        event = self._cancels.get(job_id)
        if event is not None:
            event.set()

    @property
    def busy(self) -> bool:
        return bool(self._callbacks)

    def wait(self, msecs: int = 30_000) -> bool:
        """Block until both lanes are idle (shutdown and tests only)."""
        return self._db.waitForDone(msecs) and self._parallel.waitForDone(msecs)

    @Slot(int, object)
    def _on_finished(self, job_id: int, result: object) -> None:
        on_done, _, _ = self._callbacks.pop(job_id, (None, None, None))
        self._cancels.pop(job_id, None)
        if on_done is not None:
            on_done(result)

    @Slot(int, object)
    def _on_failed(self, job_id: int, exc: Exception) -> None:
        _, on_error, _ = self._callbacks.pop(job_id, (None, None, None))
        self._cancels.pop(job_id, None)
        if on_error is not None:
            on_error(exc)
        else:
            raise exc

    @Slot(int, str, float)
    def _on_progress(self, job_id: int, phase: str, fraction: float) -> None:
        _, _, on_progress = self._callbacks.get(job_id, (None, None, None))
        if on_progress is not None:
            on_progress(phase, fraction)
