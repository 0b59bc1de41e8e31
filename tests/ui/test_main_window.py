"""The first window: lists stands from a real database, searches, survives errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from app.backend import Backend
from tests.conftest import make_stand
from ui.main_window import MainWindow
from ui.stands_model import StandTableModel
from ui.tasks import TaskRunner


@pytest.fixture
def backend(tmp_path: Path, catalog: object, db_url: str) -> Backend:
    b = Backend.open(db_url)
    b.call(make_stand, name="Kiosk am Markt")
    b.call(make_stand, name="Café Central")
    b.call(make_stand, name="Apotheke Nord", activate=False)
    yield b
    b.close()


@pytest.fixture
def window(qtbot, backend: Backend):
    runner = TaskRunner()
    win = MainWindow(backend, runner)
    qtbot.addWidget(win)
    yield win
    runner.wait()


def _wait_loaded(qtbot, win: MainWindow) -> None:
    qtbot.waitUntil(lambda: not win.loading, timeout=5000)


def test_lists_stands_and_searches(qtbot, window: MainWindow) -> None:
    window.reload()
    _wait_loaded(qtbot, window)
    assert window.model.rowCount() == 3
    names = {window.model.index(r, 0).data() for r in range(3)}
    assert names == {"Kiosk am Markt", "Café Central", "Apotheke Nord"}
    assert "3 stands" in window.count_label.text()

    qtbot.keyClicks(window.search, "central")
    qtbot.waitUntil(lambda: window.model.rowCount() == 1, timeout=5000)
    assert window.model.index(0, 0).data() == "Café Central"


def test_status_column_reads_as_words(qtbot, window: MainWindow) -> None:
    window.reload()
    _wait_loaded(qtbot, window)
    col = [c[0] for c in StandTableModel.COLUMNS].index("status")
    statuses = {window.model.index(r, col).data() for r in range(3)}
    assert statuses == {"Active", "Planned"}


def test_model_passes_qtmodeltester(qtmodeltester, qtbot, window: MainWindow) -> None:
    window.reload()
    _wait_loaded(qtbot, window)
    qtmodeltester.check(window.model)


def test_empty_database_says_so(qtbot, tmp_path: Path) -> None:
    b = Backend.open(f"sqlite:///{tmp_path / 'empty.db'}")
    runner = TaskRunner()
    win = MainWindow(b, runner)
    qtbot.addWidget(win)
    win.show()
    win.reload()
    _wait_loaded(qtbot, win)
    assert win.empty.isVisible()
    assert not win.table.isVisible()
    runner.wait()
    b.close()


def test_sorting_by_header(qtbot, window: MainWindow) -> None:
    window.reload()
    _wait_loaded(qtbot, window)
    window.table.sortByColumn(0, Qt.SortOrder.DescendingOrder)
    first = window.proxy.index(0, 0).data()
    assert first == "Kiosk am Markt"
