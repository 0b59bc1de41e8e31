"""GUI test hygiene and fixtures.

- Qt runs offscreen; Qt warnings fail a test (pyproject: qt_log_level_fail).
- A test fails if it leaves threads running.
- ``ui_backend`` is a real migrated SQLite database with a catalog and two stands;
  ``ctx`` is the UiContext views are built with (a manager by default; ``ctx_as(role)`` for
  others). ``wait_idle(qtbot, ctx)`` waits until background work has finished and its
  callbacks have run.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from app.backend import Backend
from app.models import Role
from app.services.base import Actor
from tests.conftest import StandFixture, make_stand


@pytest.fixture(autouse=True)
def _private_settings(qapp: object, tmp_path: Path) -> None:
    """Each test gets its own QSettings file, never the user's (window state, last view)."""
    from PySide6.QtCore import QCoreApplication, QSettings

    QCoreApplication.setOrganizationName("StandProgramTests")
    QCoreApplication.setApplicationName("stand-os-tests")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "qs"))


@pytest.fixture(autouse=True)
def _no_dangling_timers(qtbot: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A test fails if a timer it started is still running when it ends (a debounce that
    never fired means the test did not wait for what it meant to check)."""
    import weakref

    from PySide6.QtCore import QTimer

    started: weakref.WeakSet[QTimer] = weakref.WeakSet()
    original_start = QTimer.start

    def tracking_start(self: QTimer, *args: object) -> None:
        started.add(self)
        original_start(self, *args)

    monkeypatch.setattr(QTimer, "start", tracking_start)
    yield
    running = []
    for timer in list(started):
        try:
            active = timer.isActive()
        except RuntimeError:  # the C++ object is gone, so is its timer
            continue
        if active:
            parent = timer.parent()
            running.append(
                f"{type(parent).__name__ if parent else 'no parent'} ({timer.interval()} ms)"
            )
            timer.stop()
    assert not running, f"timers left running: {running}"


@pytest.fixture(autouse=True)
def _no_dangling_threads(qapp: object) -> Iterator[None]:
    from PySide6.QtCore import QThreadPool

    before = {t.ident for t in threading.enumerate()}
    yield
    assert QThreadPool.globalInstance().waitForDone(5000), "global thread pool still busy"
    leftover = [
        t for t in threading.enumerate() if t.ident not in before and t.is_alive() and not t.daemon
    ]
    assert not leftover, f"threads left running: {leftover}"


@pytest.fixture
def ui_backend(factory: object, catalog: object, db_url: str) -> Iterator[Backend]:
    """The test database (migrated, with the catalog) opened the way the app opens it."""
    backend = Backend.open(db_url)
    yield backend
    backend.close()


@pytest.fixture
def two_stands(ui_backend: Backend) -> tuple[StandFixture, StandFixture]:
    """Two active Growth stands (no stock yet) for different partners."""
    return (
        ui_backend.call(make_stand, name="Kiosk am Markt"),
        ui_backend.call(make_stand, name="Café Central"),
    )


@pytest.fixture
def ctx_as(qtbot: object, ui_backend: Backend) -> Iterator[Callable[[Role, str], object]]:
    from ui.context import UiContext
    from ui.tasks import TaskRunner

    made: list[TaskRunner] = []

    def make(role: Role = Role.MANAGER, user: str = "mgr.max") -> UiContext:
        runner = TaskRunner()
        made.append(runner)
        return UiContext(ui_backend, runner, Actor(user, role))

    yield make
    for runner in made:
        runner.wait()


@pytest.fixture
def ctx(ctx_as: Callable[..., object]) -> object:
    return ctx_as(Role.MANAGER, "mgr.max")


def wait_idle(qtbot: object, ctx: object, timeout: int = 10_000) -> None:
    """Wait until the context's background work is done and its callbacks ran."""
    qtbot.waitUntil(lambda: not ctx.runner.busy, timeout=timeout)


@pytest.fixture
def screenshot_dir(tmp_path: Path) -> Path:
    return tmp_path
