"""Partners: who hosts stands, on which package and tier, with their points and stands."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.services import loyalty, queries
from ui.context import Changed, UiContext
from ui.i18n import tr
from ui.widgets import TOUCH, EmptyState, kinetic

Index = QModelIndex | QPersistentModelIndex
ID_ROLE = Qt.ItemDataRole.UserRole + 1
SORT_ROLE = Qt.ItemDataRole.UserRole + 2


class PartnerTableModel(QAbstractTableModel):
    COLUMNS = (
        ("name", "Partner"),
        ("contact_name", "Contact"),
        ("package_name", "Package"),
        ("tier_name", "Tier"),
        ("loyalty_balance", "Points"),
        ("stand_count", "Stands"),
        ("status", "Status"),
    )

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.rows: list[queries.PartnerRow] = []

    def set_rows(self, rows: list[queries.PartnerRow]) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if (
            role == Qt.ItemDataRole.DisplayRole
            and orientation == Qt.Orientation.Horizontal
            and 0 <= section < len(self.COLUMNS)
        ):
            return tr(self.COLUMNS[section][1])
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.rows):
            return None
        row = self.rows[index.row()]
        key = self.COLUMNS[index.column()][0]
        value = getattr(row, key)
        if role == Qt.ItemDataRole.DisplayRole:
            return tr(value.capitalize()) if key == "status" else str(value)
        if role == SORT_ROLE:
            return value
        if role == ID_ROLE:
            return row.id
        if role == Qt.ItemDataRole.TextAlignmentRole and isinstance(value, int):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class PartnersView(QWidget):
    title = "Partners"

    def __init__(self, ctx: UiContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.loading = False
        self.search = QLineEdit(placeholderText=tr("Search partners or contacts…"))
        self.search.setClearButtonEnabled(True)
        self.search.setMinimumHeight(TOUCH)
        self.status_filter = QComboBox()
        self.status_filter.setMinimumHeight(TOUCH)
        self.status_filter.addItem(tr("All statuses"), None)
        for status in ("lead", "onboarding", "active", "suspended", "ended"):
            self.status_filter.addItem(tr(status.capitalize()), status)
        self.new_button = QPushButton(tr("New partner…"))
        self.new_button.setMinimumHeight(TOUCH)
        # Ctrl+N itself belongs to the window's File > New partner (one owner per shortcut).
        self.new_button.setToolTip(tr("Sign up a new partner with a first stand (Ctrl+N)"))
        self.activate_button = QPushButton(tr("Activate"))
        self.activate_button.setMinimumHeight(TOUCH)
        self.activate_button.setToolTip(
            tr(
                "Make the selected partner active: their stands go live and they get the "
                "package's welcome points"
            )
        )
        self.activate_button.setEnabled(False)
        self.stands_button = QPushButton(tr("Show stands"))
        self.stands_button.setMinimumHeight(TOUCH)
        self.stands_button.setEnabled(False)

        self.model = PartnerTableModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(TOUCH)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        kinetic(self.table)
        self.empty = EmptyState(tr("No partners yet. Sign up the first one with New partner."))
        self.empty.hide()
        self.message = QLabel()
        self.message.setWordWrap(True)

        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        top.addWidget(self.status_filter)
        top.addWidget(self.new_button)
        actions = QHBoxLayout()
        actions.addWidget(self.activate_button)
        actions.addWidget(self.stands_button)
        actions.addStretch(1)
        actions.addWidget(self.message, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.empty, 1)
        layout.addLayout(actions)

        self._debounce = QTimer(self, singleShot=True, interval=200)
        self._debounce.timeout.connect(self.refresh)
        self.search.textChanged.connect(lambda _t: self._debounce.start())
        self.status_filter.currentIndexChanged.connect(lambda _i: self.refresh())
        self.new_button.clicked.connect(lambda: ctx.navigate.emit("onboarding", None))
        self.activate_button.clicked.connect(self._activate)
        self.stands_button.clicked.connect(self._show_stands)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._update_buttons())
        self.table.doubleClicked.connect(lambda _i: self._show_stands())
        ctx.data_changed.connect(self._on_changed)

    def refresh(self) -> None:
        self.loading = True
        self.ctx.read(
            queries.list_partners,
            search=self.search.text() or None,
            status=self.status_filter.currentData(),
            on_done=self._show,
            on_error=self._failed,
        )

    def _show(self, rows: list[queries.PartnerRow]) -> None:
        self.loading = False
        self.model.set_rows(rows)
        filtered = bool(self.search.text()) or self.status_filter.currentIndex() > 0
        self.table.setVisible(bool(rows) or filtered)
        self.empty.setVisible(not rows and not filtered)
        self._update_buttons()

    def _failed(self, exc: Exception) -> None:
        self.loading = False
        self.message.setText(str(exc))

    def _selected(self) -> queries.PartnerRow | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.rows[rows[0].row()] if rows else None

    def _update_buttons(self) -> None:
        row = self._selected()
        self.activate_button.setEnabled(row is not None and row.status == "onboarding")
        self.stands_button.setEnabled(row is not None)

    def _activate(self) -> None:
        row = self._selected()
        if row is None:
            return

        def done(result: loyalty.PointsResult) -> None:
            self.message.setText(
                tr("{name} is active and received {points} welcome points.").format(
                    name=row.name, points=result.points
                )
            )
            self.ctx.changed("partners", "stands", "loyalty", ids=(row.id,))

        self.ctx.write(loyalty.activate_partner, row.id, on_done=done, on_error=self._failed)

    def _show_stands(self) -> None:
        row = self._selected()
        if row is not None:
            self.ctx.navigate.emit("stands", {"partner_id": row.id})

    def _on_changed(self, change: Changed) -> None:
        if change.touches("partners", "loyalty", "sales", "stands"):
            self.refresh()
