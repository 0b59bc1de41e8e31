"""The background task runner: results on the GUI thread, a serial database lane, errors
reported, and cancellation that leaves nothing half-done."""

from __future__ import annotations

import threading

from PySide6.QtCore import QThread

from app.services import queries
from ui.tasks import Cancelled, TaskRunner


def test_results_arrive_on_the_gui_thread(qtbot) -> None:
    runner = TaskRunner()
    seen: list[tuple[object, bool]] = []
    worker_threads: list[str] = []

    def work(x: int) -> int:
        worker_threads.append(threading.current_thread().name)
        return x * 2

    runner.run_db(
        work, 21, on_done=lambda r: seen.append((r, QThread.currentThread().isMainThread()))
    )
    qtbot.waitUntil(lambda: bool(seen), timeout=5000)
    assert seen == [(42, True)]
    assert worker_threads
    assert worker_threads[0] != threading.main_thread().name
    runner.wait()


def test_database_lane_is_serial(qtbot) -> None:
    runner = TaskRunner()
    running = 0
    most = 0
    order: list[int] = []
    lock = threading.Lock()

    def work(n: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        threading.Event().wait(0.01)
        with lock:
            running -= 1
        return n

    for n in range(6):
        runner.run_db(work, n, on_done=order.append)
    qtbot.waitUntil(lambda: len(order) == 6, timeout=5000)
    assert most == 1
    assert order == list(range(6))
    runner.wait()


def test_errors_reach_the_error_callback(qtbot) -> None:
    runner = TaskRunner()
    errors: list[Exception] = []

    def boom() -> None:
        raise ValueError("no")

    runner.run_parallel(boom, on_error=errors.append)
    qtbot.waitUntil(lambda: bool(errors), timeout=5000)
    assert isinstance(errors[0], ValueError)
    assert not runner.busy
    runner.wait()


def test_cancelling_the_demo_generation_keeps_nothing(qtbot, ui_backend) -> None:
    from app.demo import generate_demo

    runner = TaskRunner()
    errors: list[Exception] = []
    phases: list[str] = []
    job = runner.run_db(
        ui_backend.with_factory,
        generate_demo,
        stands=40,
        days=60,
        seed=3,
        on_error=errors.append,
        on_done=lambda _s: phases.append("done"),
        on_progress=lambda phase, _f: (phases.append(phase), runner.cancel(job)),
    )
    qtbot.waitUntil(lambda: bool(errors) or "done" in phases, timeout=30_000)
    runner.wait()
    assert len(errors) == 1
    assert isinstance(errors[0], Cancelled)
    assert "done" not in phases
    assert ui_backend.read(queries.list_stands) == []  # rolled back as a whole


def test_latest_read_drops_stale_answers(qtbot, ctx) -> None:
    from PySide6.QtWidgets import QWidget

    from ui.context import LatestRead

    owner = QWidget()
    qtbot.addWidget(owner)
    latest = LatestRead(ctx, owner)
    got: list[str] = []

    def answer(_session: object, text: str) -> str:
        return text

    latest(answer, "old stand", on_done=got.append, on_error=lambda e: got.append(repr(e)))
    latest(answer, "new stand", on_done=got.append, on_error=lambda e: got.append(repr(e)))
    qtbot.waitUntil(lambda: not ctx.runner.busy, timeout=5000)
    assert got == ["new stand"]
