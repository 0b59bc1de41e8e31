"""The main window: for now the list of stands, searchable, with the data folder shown.

The full navigation (Today, Stands, Partners, Refills, Settings) arrives with the GUI issue;
this window says so rather than pretending.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSettings, QSortFilterProxyModel, Qt, QTimer
from PySide6.QtWidgets import (
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.backend import Backend
from app.services import queries
from ui.i18n import tr
from ui.stands_model import SORT_ROLE, StandTableModel
from ui.tasks import TaskRunner


class MainWindow(QMainWindow):
    def __init__(self, backend: Backend, runner: TaskRunner, *, role: str = "rep") -> None:
        super().__init__()
        self.backend, self.runner = backend, runner
        self.setWindowTitle(tr("Stand Program OS"))
        self.setObjectName("MainWindow")

        self.search = QLineEdit(placeholderText=tr("Search stands, partners, cities…"))
        self.search.setClearButtonEnabled(True)
        self.search.setMinimumHeight(40)
        self.model = StandTableModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        # Names get the room; short columns take what their content needs.
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.notice = QLabel(
            tr(
                "Stand detail, sales, counts, refills and onboarding screens "
                "are not built yet; use the standctl command line for them."
            )
        )
        self.notice.setWordWrap(True)
        self.empty = QLabel(tr("No stands yet."))
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.hide()

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.addWidget(self.search)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.empty, 1)
        layout.addWidget(self.notice)
        self.setCentralWidget(central)

        self.count_label = QLabel()
        self.statusBar().addWidget(self.count_label)
        self.statusBar().addPermanentWidget(QLabel(tr("Role: {role}").format(role=role)))
        self.statusBar().addPermanentWidget(
            QLabel(tr("Data: {path}").format(path=backend.location))
        )

        self._debounce = QTimer(self, singleShot=True, interval=200)
        self._debounce.timeout.connect(self.reload)
        self.search.textChanged.connect(lambda _t: self._debounce.start())
        self.loading = False
        self._restore()

    def reload(self) -> None:
        self.loading = True
        self.count_label.setText(tr("Loading…"))
        self.runner.run_db(
            self.backend.read,
            queries.list_stands,
            search=self.search.text() or None,
            on_done=self._show_rows,
            on_error=self._show_error,
        )

    def _show_rows(self, rows: list[Any]) -> None:
        self.loading = False
        self.model.set_rows(rows)
        self.table.setVisible(bool(rows) or bool(self.search.text()))
        self.empty.setVisible(not rows and not self.search.text())
        attention = sum(1 for r in rows if r.needs_attention)
        self.count_label.setText(
            tr("{n} stands, {a} need attention").format(n=len(rows), a=attention)
        )

    def _show_error(self, exc: Exception) -> None:
        self.loading = False
        self.count_label.setText(tr("Could not load stands: {error}").format(error=exc))

    def _restore(self) -> None:
        settings = QSettings()
        geometry = settings.value("main/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)

    def closeEvent(self, event: Any) -> None:
        QSettings().setValue("main/geometry", self.saveGeometry())
        self.runner.wait()
        super().closeEvent(event)
