"""Refills: the list across stands (or of one stand) filtered by state, and the selected
refill in detail: its lines, discrepancies and timeline, with the lifecycle actions the
signed-in role may take from its state.

Which buttons show is :func:`app.services.refills.allowed_actions` for the refill's status and
the user's role (a rep may cancel only their own requests, and a refill delivered in part
cannot be cancelled, as the service rules). A refill delivered in parts shows how far it
has come ("Partly delivered: 6 of 10 units") and each delivery in its timeline. Each
action opens its dialog from :mod:`ui.views.refill_dialogs`, which runs the service; on
success the view announces the change and reloads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QDate,
    QEvent,
    QLocale,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    QTimer,
)
from PySide6.QtGui import QAction, QColor, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableView,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.models import RefillAction, RefillStatus, Role
from app.services import refill_views, refills
from app.services.base import STAFF
from app.services.refill_views import (
    DiscrepancyView,
    RefillDetail,
    RefillEventView,
    RefillLineView,
    RefillListRow,
)
from ui.context import Changed, UiContext
from ui.i18n import tr
from ui.views.refill_dialogs import (
    RefillDialog,
    ResolveDiscrepancyDialog,
    action_dialog,
    kinetic,
    products_text,
    refill_changed,
)
from ui.widgets import TOUCH, EmptyState, local_time, money

Index = QModelIndex | QPersistentModelIndex
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
ID_ROLE = Qt.ItemDataRole.UserRole + 2
RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

STATUS_COLOURS = {
    RefillStatus.REQUESTED: "#1565c0",
    RefillStatus.APPROVED: "#00838f",
    RefillStatus.SCHEDULED: "#6a1b9a",
    RefillStatus.DELIVERED: "#e65100",
    RefillStatus.CONFIRMED: "#2e7d32",
    RefillStatus.REJECTED: "#c62828",
    RefillStatus.CANCELLED: "#616161",
}
ISSUE_COLOUR = "#c62828"


@dataclass(frozen=True)
class ActionSpec:
    text: str
    keys: str
    tip: str


#: Buttons of the lifecycle, in the order they show.
ACTIONS: dict[RefillAction, ActionSpec] = {
    RefillAction.APPROVE: ActionSpec(
        "Approve…", "Ctrl+Shift+A", "Approve the refill, with the quantities you choose"
    ),
    RefillAction.SCHEDULE: ActionSpec(
        "Schedule…", "Ctrl+Shift+S", "Plan the delivery: a date and who delivers"
    ),
    RefillAction.DELIVER: ActionSpec(
        "Deliver…", "Ctrl+Shift+D", "Record what was put on the stand (it goes on the stock)"
    ),
    RefillAction.CONFIRM: ActionSpec(
        "Confirm receipt…", "Ctrl+Shift+C", "The partner confirms what they received"
    ),
    RefillAction.REJECT: ActionSpec("Reject…", "Ctrl+Shift+R", "Refuse the refill, with a reason"),
    RefillAction.CANCEL: ActionSpec(
        "Cancel refill…", "Ctrl+Shift+X", "Call the refill off, with a reason"
    ),
}
#: Ctrl+N is the window's "New partner"; F5 (refresh) is the window's too.
NEW_REFILL_KEYS = "Ctrl+Shift+N"
RESOLVE = ActionSpec(
    "Resolve…", "Ctrl+Shift+V", "Decide the selected delivery discrepancy (managers)"
)

STATE_FILTER_LABELS = {
    refill_views.OPEN_FILTER: "Open (requested to delivered)",
    refill_views.DISCREPANCY_FILTER: "With an open discrepancy",
}


def status_text(status: RefillStatus) -> str:
    return tr(status.value.capitalize())


def shortcut_text(keys: str) -> str:
    return QKeySequence(keys).toString(QKeySequence.SequenceFormat.NativeText)


# --------------------------------------------------------------------------- models


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    display: Callable[[Any], str]
    sort: Callable[[Any], Any]
    right: bool = False


class RowsModel(QAbstractTableModel):
    """A read-only table of frozen rows described by :class:`Column` s."""

    def __init__(self, columns: Sequence[Column], parent: Any = None) -> None:
        super().__init__(parent)
        self.columns = list(columns)
        self.rows: list[Any] = []

    def set_rows(self, rows: Sequence[Any]) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.columns)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if (
            role == Qt.ItemDataRole.DisplayRole
            and orientation == Qt.Orientation.Horizontal
            and 0 <= section < len(self.columns)
        ):
            return tr(self.columns[section].header)
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.rows):
            return None
        if not 0 <= index.column() < len(self.columns):
            return None
        row = self.rows[index.row()]
        column = self.columns[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return column.display(row)
        if role == SORT_ROLE:
            return column.sort(row)
        if role == ID_ROLE:
            return getattr(row, "id", None)
        if role == Qt.ItemDataRole.TextAlignmentRole and column.right:
            return RIGHT
        if role == Qt.ItemDataRole.ForegroundRole:
            return self.foreground(row, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.tooltip(row, column)
        return None

    def foreground(self, row: Any, column: Column) -> QColor | None:
        return None

    def tooltip(self, row: Any, column: Column) -> str | None:
        return None


def _qty(value: int | None) -> str:
    return "" if value is None else str(value)


def _sort_qty(value: int | None) -> int:
    return -1 if value is None else value


def _list_status(row: RefillListRow) -> str:
    text = status_text(row.status)
    if row.partly_delivered:
        text = tr("{status}, partly delivered").format(status=text)
    return f"{text} ⚠" if row.open_discrepancies else text


def partly_delivered_text(delivered: int, approved: int) -> str:
    """ "Partly delivered: 6 of 10 units, 4 to come"."""
    return tr("Partly delivered: {done} of {of} units, {left} to come").format(
        done=delivered, of=approved, left=max(approved - delivered, 0)
    )


class RefillListModel(RowsModel):
    """The refill list; ``with_stand`` adds the stand column (the list across stands)."""

    def __init__(self, parent: Any = None, *, with_stand: bool = True) -> None:
        columns = [
            Column("stand", "Stand", lambda r: r.stand_name, lambda r: r.stand_name.casefold()),
            Column("status", "Status", _list_status, lambda r: r.status.value),
            Column(
                "requested_at",
                "Requested",
                lambda r: local_time(r.requested_at, date_only=True),
                lambda r: r.requested_at.timestamp(),
            ),
            Column("units", "Units", lambda r: str(r.units), lambda r: r.units, right=True),
            Column(
                "total",
                "Value",
                lambda r: money(r.total, r.currency),
                lambda r: float(r.total),
                right=True,
            ),
            Column(
                "scheduled_for",
                "Delivery",
                lambda r: local_date_text(r.scheduled_for),
                lambda r: r.scheduled_for.isoformat() if r.scheduled_for else "",
            ),
            Column("requested_by", "By", lambda r: r.requested_by, lambda r: r.requested_by),
        ]
        if not with_stand:
            columns = [c for c in columns if c.key != "stand"]
        super().__init__(columns, parent)

    def foreground(self, row: RefillListRow, column: Column) -> QColor | None:
        if column.key == "status":
            if row.open_discrepancies:
                return QColor(ISSUE_COLOUR)
            return QColor(STATUS_COLOURS[row.status])
        return None

    def tooltip(self, row: RefillListRow, column: Column) -> str | None:
        if column.key == "stand":
            return f"{row.stand_name}\n{row.partner_name} · {row.city}"
        if column.key == "status" and row.open_discrepancies:
            return tr("{n} delivery discrepancy open").format(n=row.open_discrepancies)
        if column.key == "status" and row.partly_delivered:
            return partly_delivered_text(row.delivered_units, row.units)
        if column.key == "scheduled_for" and row.dealer:
            return tr("Delivered by {dealer}").format(dealer=row.dealer)
        return None


def local_date_text(day: date | None) -> str:
    """A calendar day in the locale's short format."""
    if day is None:
        return ""
    return str(
        QLocale().toString(QDate(day.year, day.month, day.day), QLocale.FormatType.ShortFormat)
    )


#: Columns that give way, first to last, when a table is narrow.
LIST_HIDE_FIRST = ("requested_by", "units", "scheduled_for", "total", "requested_at")
LINES_HIDE_FIRST = ("sku", "price", "requested")
#: The room the name column (stand or product) keeps before other columns give way.
NAME_MIN_WIDTH = 170


def fit_columns(table: QTableView, columns: Sequence[Column], hide_first: Sequence[str]) -> None:
    """Hide the least important columns until the rest fit the table's width; the first
    column (the name) stretches and keeps :data:`NAME_MIN_WIDTH`."""
    header = table.horizontalHeader()
    keys = [c.key for c in columns]
    need = {
        i: max(table.sizeHintForColumn(i), header.sectionSizeHint(i)) for i in range(len(columns))
    }
    need[0] = min(need[0], NAME_MIN_WIDTH)
    available = table.viewport().width()
    hidden: set[int] = set()
    for key in hide_first:
        if sum(w for i, w in need.items() if i not in hidden) <= available:
            break
        if key in keys:
            hidden.add(keys.index(key))
    for i in range(len(columns)):
        header.setSectionHidden(i, i in hidden)


class LinesModel(RowsModel):
    def __init__(self, parent: Any = None) -> None:
        super().__init__(
            [
                Column("name", "Product", lambda r: r.name, lambda r: r.name.casefold()),
                Column("sku", "SKU", lambda r: r.sku, lambda r: r.sku),
                Column(
                    "requested",
                    "Requested",
                    lambda r: str(r.requested),
                    lambda r: r.requested,
                    right=True,
                ),
                Column(
                    "approved",
                    "Approved",
                    lambda r: _qty(r.approved),
                    lambda r: _sort_qty(r.approved),
                    right=True,
                ),
                Column(
                    "delivered",
                    "Delivered",
                    _delivered,
                    lambda r: _sort_qty(r.delivered),
                    right=True,
                ),
                Column(
                    "received",
                    "Received",
                    lambda r: _qty(r.received),
                    lambda r: _sort_qty(r.received),
                    right=True,
                ),
                Column(
                    "price",
                    "Price",
                    lambda r: money(r.unit_price),
                    lambda r: float(r.unit_price),
                    right=True,
                ),
            ],
            parent,
        )

    def foreground(self, row: RefillLineView, column: Column) -> QColor | None:
        if column.key == "received" and row.received is not None and row.received != row.delivered:
            return QColor(ISSUE_COLOUR)
        if column.key == "approved" and row.approved is not None and row.approved < row.requested:
            return QColor("#ef6c00")
        if (
            column.key == "delivered"
            and row.delivered is not None
            and (row.approved is not None and row.delivered < row.approved)
        ):
            return QColor("#ef6c00")
        return None

    def tooltip(self, row: RefillLineView, column: Column) -> str | None:
        if column.key == "delivered" and row.to_come:
            return tr("{n} still to come").format(n=row.to_come)
        return None


def _delivered(line: RefillLineView) -> str:
    """The delivered units; "6 of 10" while a delivery in parts is under way."""
    if line.to_come is not None and line.approved is not None:
        return tr("{done} of {of}").format(done=line.delivered or 0, of=line.approved)
    return _qty(line.delivered)


def _discrepancy_status(d: DiscrepancyView) -> str:
    if d.is_open:
        return tr("Open")
    what = (
        tr("Partner's figure accepted")
        if d.status.value == "accepted_received"
        else tr("Delivered figure kept")
    )
    return f"{what} · {d.resolved_by or ''} {local_time(d.resolved_at, date_only=True)}".strip()


class DiscrepancyModel(RowsModel):
    def __init__(self, parent: Any = None) -> None:
        super().__init__(
            [
                Column("name", "Product", lambda r: r.name, lambda r: r.name.casefold()),
                Column(
                    "delivered",
                    "Delivered",
                    lambda r: str(r.delivered),
                    lambda r: r.delivered,
                    right=True,
                ),
                Column(
                    "received",
                    "Received",
                    lambda r: str(r.received),
                    lambda r: r.received,
                    right=True,
                ),
                Column(
                    "difference",
                    "Difference",
                    lambda r: f"{r.difference:+d}",
                    lambda r: r.difference,
                    right=True,
                ),
                Column("status", "Status", _discrepancy_status, lambda r: r.status.value),
            ],
            parent,
        )

    def foreground(self, row: DiscrepancyView, column: Column) -> QColor | None:
        if column.key == "status" and row.is_open:
            return QColor(ISSUE_COLOUR)
        return None

    def tooltip(self, row: DiscrepancyView, column: Column) -> str | None:
        return row.resolution_note or None


def event_text(e: RefillEventView) -> str:
    """What a transition did, in a few words."""
    base = {
        "request": tr("Requested"),
        "approve": tr("Approved"),
        "schedule": tr("Scheduled"),
        "deliver": tr("Delivered"),
        "confirm": tr("Confirmed by the partner"),
        "reject": tr("Rejected"),
        "cancel": tr("Cancelled"),
    }.get(e.action, e.action.capitalize())
    if e.action == "schedule" and e.scheduled_for is not None:
        base = tr("Scheduled for {day}").format(day=local_date_text(e.scheduled_for))
        if e.dealer:
            base += " · " + e.dealer
    if e.action == "deliver" and e.units is not None:
        if e.partial:
            base = tr("Delivered {n} units, more to come ({total} so far)")
        elif e.units_total is not None and e.units_total != e.units:
            base = tr("Delivered the last {n} units ({total} in total)")
        else:
            base = tr("Delivered {n} units")
        base = base.format(n=e.units, total=e.units_total)
    if e.action == "confirm" and e.discrepancies:
        base += " · " + tr("{n} discrepancy opened").format(n=e.discrepancies)
    if e.reason:
        base += ": " + e.reason
    return base


class EventsModel(RowsModel):
    def __init__(self, parent: Any = None) -> None:
        super().__init__(
            [
                Column(
                    "when",
                    "When",
                    lambda r: local_time(r.occurred_at),
                    lambda r: r.occurred_at.timestamp(),
                ),
                Column("what", "What", event_text, event_text),
                Column("who", "Who", lambda r: f"{r.actor} ({tr(r.role)})", lambda r: r.actor),
            ],
            parent,
        )

    def tooltip(self, row: RefillEventView, column: Column) -> str | None:
        return event_text(row) if column.key == "what" else None


# --------------------------------------------------------------------------- helpers


def _table(model: QAbstractTableModel, *, sortable: bool = False) -> QTableView:
    table = QTableView()
    if sortable:
        proxy = QSortFilterProxyModel(table)
        proxy.setSourceModel(model)
        proxy.setSortRole(SORT_ROLE)
        table.setModel(proxy)
        table.setSortingEnabled(True)
    else:
        table.setModel(model)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setAlternatingRowColors(True)
    table.setWordWrap(False)
    table.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
    table.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
    table.verticalHeader().setVisible(False)
    table.verticalHeader().setDefaultSectionSize(TOUCH)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setStretchLastSection(False)
    kinetic(table)
    return table


def _action_button(action: QAction) -> QToolButton:
    button = QToolButton()
    button.setDefaultAction(action)
    button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    button.setMinimumSize(TOUCH * 2, TOUCH)
    button.setObjectName(f"action_{action.objectName()}")
    return button


# --------------------------------------------------------------------------- the view


class RefillDetailPane(QWidget):
    """The selected refill: header, lifecycle buttons, and tabs of lines, discrepancies
    and timeline."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel()
        self.title.setObjectName("refill_title")
        self.title.setWordWrap(True)
        self.title.setTextFormat(Qt.TextFormat.RichText)
        self.status = QLabel()
        self.status.setObjectName("refill_status")
        self.facts = QLabel()
        self.facts.setObjectName("refill_facts")
        self.facts.setWordWrap(True)
        self.facts.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.issue_banner = QLabel()
        self.issue_banner.setObjectName("discrepancy_banner")
        self.issue_banner.setWordWrap(True)
        self.issue_banner.setStyleSheet(
            "background: #ffebee; color: #b71c1c; border: 1px solid #ef9a9a; "
            "border-radius: 4px; padding: 6px;"
        )
        self.issue_banner.hide()
        self.action_row = QHBoxLayout()
        self.action_row.setSpacing(6)
        self.lines_model = LinesModel(self)
        self.discrepancy_model = DiscrepancyModel(self)
        self.events_model = EventsModel(self)
        self.lines_table = _table(self.lines_model)
        self.lines_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.discrepancy_table = _table(self.discrepancy_model)
        self.discrepancy_table.horizontalHeader().setSectionResizeMode(
            0, QHeaderView.ResizeMode.Stretch
        )
        self.events_table = _table(self.events_model)
        self.events_table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.resolve_row = QHBoxLayout()
        self.discrepancy_hint = QLabel(
            tr("Stock keeps the delivered figure until a manager decides which figure stands.")
        )
        self.discrepancy_hint.setWordWrap(True)
        self.resolve_row.addWidget(self.discrepancy_hint, 1)
        discrepancy_page = QWidget()
        page_layout = QVBoxLayout(discrepancy_page)
        page_layout.setContentsMargins(0, 4, 0, 0)
        page_layout.addWidget(self.discrepancy_table, 1)
        page_layout.addLayout(self.resolve_row)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        # Tabs are touch targets too.
        self.tabs.tabBar().setStyleSheet(
            f"QTabBar::tab {{ min-height: {TOUCH}px; padding: 0 14px; }}"
        )
        self.tabs.addTab(self.lines_table, tr("Lines"))
        self.tabs.addTab(discrepancy_page, tr("Discrepancies"))
        self.tabs.addTab(self.events_table, tr("Timeline"))

        head = QHBoxLayout()
        head.addWidget(self.title, 1)
        head.addWidget(self.status, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 0, 0, 0)
        layout.addLayout(head)
        layout.addWidget(self.facts)
        layout.addWidget(self.issue_banner)
        layout.addLayout(self.action_row)
        layout.addWidget(self.tabs, 1)

    def fit_lines(self) -> None:
        fit_columns(self.lines_table, self.lines_model.columns, LINES_HIDE_FIRST)

    def show_detail(self, d: RefillDetail) -> None:
        self.title.setText(
            f"<span style='font-size: 16px; font-weight: 600;'>{d.stand_name}</span><br>"
            f"<span style='color: gray;'>{d.partner_name} · {d.city}</span>"
        )
        colour = STATUS_COLOURS[d.status]
        self.status.setText(status_text(d.status))
        self.status.setStyleSheet(
            f"color: white; background: {colour}; border-radius: 10px; padding: 3px 10px;"
            " font-weight: 600;"
        )
        units = d.units
        facts = [
            tr("{products}, {units} units, {value}").format(
                products=products_text(len(d.lines)),
                units=units,
                value=money(d.total, d.currency),
            ),
            tr("Requested by {who} on {when}").format(
                who=d.requested_by, when=local_time(d.requested_at)
            ),
        ]
        stamps = (
            (d.approved_by, d.approved_at, "Approved by {who} on {when}"),
            (d.scheduled_by, d.scheduled_at, "Scheduled by {who} on {when}"),
            (d.delivered_by, d.delivered_at, "Delivered by {who} on {when}"),
            (d.confirmed_by, d.confirmed_at, "Confirmed by {who} on {when}"),
        )
        for who, when, text in stamps:
            if who:
                facts.append(tr(text).format(who=who, when=local_time(when)))
        if d.partly_delivered:
            last = d.deliveries[-1] if d.deliveries else None
            partly = partly_delivered_text(d.delivered_units, d.approved_units)
            if last is not None:
                partly += " · " + tr("last part by {who} on {when}").format(
                    who=last.actor, when=local_time(last.occurred_at)
                )
            facts.append(partly)
        elif len(d.deliveries) > 1:
            facts.append(tr("Delivered in {n} parts").format(n=len(d.deliveries)))
        if d.scheduled_for is not None:
            facts.append(
                tr("Delivery on {day} by {dealer}").format(
                    day=local_date_text(d.scheduled_for), dealer=d.dealer or "?"
                )
            )
        if d.closed_by and d.status in (RefillStatus.REJECTED, RefillStatus.CANCELLED):
            closed = (
                tr("Rejected by {who} on {when}: {reason}")
                if d.status == RefillStatus.REJECTED
                else tr("Cancelled by {who} on {when}: {reason}")
            )
            facts.append(
                closed.format(
                    who=d.closed_by, when=local_time(d.closed_at), reason=d.close_reason or ""
                )
            )
        if d.note:
            facts.append(tr("Note: {note}").format(note=d.note))
        self.facts.setText("\n".join(facts))
        open_issues = d.open_discrepancies
        if open_issues:
            self.issue_banner.setText(
                tr(
                    "{n} delivery discrepancy open: the partner received a different quantity. "
                    "Stock keeps the delivered figure until a manager resolves it."
                ).format(n=len(open_issues))
            )
        self.issue_banner.setVisible(bool(open_issues))
        self.lines_model.set_rows(d.lines)
        self.fit_lines()
        self.discrepancy_model.set_rows(d.discrepancies)
        self.events_model.set_rows(d.events)
        label = tr("Discrepancies")
        if d.discrepancies:
            label = tr("Discrepancies ({n})").format(n=len(d.discrepancies))
        self.tabs.setTabText(1, label)
        self.tabs.setTabEnabled(1, bool(d.discrepancies))
        if open_issues:
            # What needs deciding comes to the front, ready to resolve.
            self.tabs.setCurrentIndex(1)
            first = next(i for i, x in enumerate(d.discrepancies) if x.is_open)
            self.discrepancy_table.selectRow(first)
        elif self.tabs.currentIndex() == 1 and not d.discrepancies:
            self.tabs.setCurrentIndex(0)


class RefillsView(QWidget):
    """See the module docstring."""

    title = "Refills"

    def __init__(
        self, ctx: UiContext, parent: QWidget | None = None, *, stand_id: str | None = None
    ) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.stand_id = stand_id
        self.detail: RefillDetail | None = None
        self.dialog: RefillDialog | None = None
        self._pending = 0
        self._list_generation = 0
        self._detail_generation = 0
        self._want_id: str | None = None
        self._stale = False
        role = ctx.actor.role

        self.state_filter = QComboBox()
        self.state_filter.setObjectName("state_filter")
        self.state_filter.setMinimumHeight(TOUCH)
        self.state_filter.addItem(tr("All states"), None)
        for state in refill_views.STATE_FILTERS:
            label = STATE_FILTER_LABELS.get(state, state.capitalize())
            self.state_filter.addItem(tr(label), state)
        # Across stands the work is in the open refills; a stand's own list is short.
        self.state_filter.setCurrentIndex(
            0 if stand_id else self.state_filter.findData(refill_views.OPEN_FILTER)
        )
        self.state_filter.setToolTip(tr("Show refills in this state"))
        self.search = QLineEdit()
        self.search.setObjectName("search")
        self.search.setMinimumHeight(TOUCH)
        self.search.setClearButtonEnabled(True)
        self.search.setPlaceholderText(
            tr("Search dealer or requester…") if stand_id else tr("Search stand, city, dealer…")
        )
        self.new_button = QPushButton(tr("New refill…"))
        self.new_button.setObjectName("new_refill")
        self.new_button.setMinimumHeight(TOUCH)
        self.new_button.setToolTip(
            tr("Request a refill ({keys})").format(keys=shortcut_text(NEW_REFILL_KEYS))
        )
        if role not in STAFF:
            # (hide, never show: showing a widget before it has a parent opens a window)
            self.new_button.hide()
        new_action = QAction(tr("New refill…"), self)
        new_action.setShortcut(QKeySequence(NEW_REFILL_KEYS))
        new_action.setEnabled(role in STAFF)
        new_action.triggered.connect(self.request_new)
        self.addAction(new_action)
        self.new_button.clicked.connect(self.request_new)
        self.count_label = QLabel()
        self.count_label.setObjectName("count_label")

        self.model = RefillListModel(self, with_stand=stand_id is None)
        self.table = _table(self.model, sortable=True)
        self.table.setObjectName("refill_table")
        proxy = self.table.model()
        assert isinstance(proxy, QSortFilterProxyModel)
        self.proxy: QSortFilterProxyModel = proxy
        keys = [c.key for c in self.model.columns]
        self.table.sortByColumn(keys.index("requested_at"), Qt.SortOrder.DescendingOrder)
        header = self.table.horizontalHeader()
        # The stand's name (in a stand's own list, the status) takes the spare room.
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.viewport().installEventFilter(self)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.list_empty = EmptyState("")
        self.list_empty.setObjectName("list_empty")
        self.list_empty.hide()

        self.pane = RefillDetailPane()
        self.pane.lines_table.viewport().installEventFilter(self)
        self.pane_scroll = QScrollArea()
        self.pane_scroll.setWidgetResizable(True)
        self.pane_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.pane_scroll.setWidget(self.pane)
        self.pane_scroll.setMinimumWidth(380)
        kinetic(self.pane_scroll)
        self.detail_empty = EmptyState(tr("Select a refill to see its lines and history."))
        self.detail_empty.setObjectName("detail_empty")
        self.message = QLabel()
        self.message.setObjectName("message")
        self.message.setWordWrap(True)

        # The lifecycle as actions: buttons in the pane, a context menu, and shortcuts.
        self.lifecycle: dict[RefillAction, QAction] = {}
        self.buttons: dict[RefillAction, QToolButton] = {}
        for action, spec in ACTIONS.items():
            qa = self._make_action(action.value, spec, lambda _=False, a=action: self.run(a))
            self.lifecycle[action] = qa
            button = _action_button(qa)
            self.buttons[action] = button
            self.pane.action_row.addWidget(button)
        self.pane.action_row.addStretch(1)
        self.resolve_action = self._make_action("resolve", RESOLVE, self.resolve_selected)
        self.resolve_button = _action_button(self.resolve_action)
        self.pane.resolve_row.addWidget(self.resolve_button)
        self.pane.discrepancy_table.selectionModel().selectionChanged.connect(
            lambda *_: self._update_actions()
        )
        self.pane.discrepancy_table.doubleClicked.connect(lambda _i: self.resolve_selected())

        list_side = QWidget()
        list_layout = QVBoxLayout(list_side)
        list_layout.setContentsMargins(0, 0, 0, 0)
        list_layout.addWidget(self.table, 1)
        list_layout.addWidget(self.list_empty, 1)
        list_layout.addWidget(self.count_label)
        detail_side = QWidget()
        detail_layout = QVBoxLayout(detail_side)
        detail_layout.setContentsMargins(0, 0, 0, 0)
        detail_layout.addWidget(self.pane_scroll, 1)
        detail_layout.addWidget(self.detail_empty, 1)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(list_side)
        self.splitter.addWidget(detail_side)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 1)

        top = QHBoxLayout()
        top.addWidget(self.state_filter)
        top.addWidget(self.search, 1)
        top.addWidget(self.new_button)
        layout = QVBoxLayout(self)
        if stand_id is not None:
            layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.splitter, 1)
        layout.addWidget(self.message)

        if stand_id is not None:
            # Inside a stand's page the keys work while the refills tab has the focus, so
            # they cannot clash with the page's own.
            for qa in self.actions():
                qa.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)

        self._debounce = QTimer(self, singleShot=True, interval=250)
        self._debounce.timeout.connect(self.refresh)
        self.search.textChanged.connect(lambda _t: self._debounce.start())
        self.state_filter.currentIndexChanged.connect(lambda _i: self.refresh())
        self.table.selectionModel().currentRowChanged.connect(lambda *_: self._selection_changed())
        ctx.data_changed.connect(self._on_changed)
        self._show_detail(None)

    # ------------------------------------------------------------------ public API

    @property
    def loading(self) -> bool:
        return self._pending > 0

    def refresh(self) -> None:
        self._list_generation += 1
        generation = self._list_generation
        self._pending += 1
        self.ctx.read(
            refill_views.refill_list,
            state=self.state_filter.currentData(),
            stand_id=self.stand_id,
            search=self.search.text().strip() or None,
            on_done=lambda rows: self._rows_loaded(generation, rows),
            on_error=self._load_failed,
        )

    def open(self, arg: object = None) -> None:
        """Show the list; with a refill id, select that refill (whatever the filter)."""
        if isinstance(arg, str) and arg:
            self.select_refill(arg)
        else:
            self.refresh()

    def select_refill(self, refill_id: str) -> None:
        """Select ``refill_id``; the state filter widens to "All" if it hides it."""
        self._want_id = refill_id
        if self.state_filter.currentData() is not None or self.search.text():
            self.search.blockSignals(True)
            self.search.clear()
            self.search.blockSignals(False)
            self.state_filter.setCurrentIndex(0)  # refreshes
        else:
            self.refresh()

    def selected_row(self) -> RefillListRow | None:
        index = self.table.currentIndex()
        if not index.isValid():
            return None
        source = self.proxy.mapToSource(index)
        return self.model.rows[source.row()] if 0 <= source.row() < len(self.model.rows) else None

    def request_new(self) -> None:
        if self.ctx.actor.role in STAFF:
            self.ctx.navigate.emit("refill", self.stand_id)

    # ------------------------------------------------------------------ loading

    def _load_failed(self, exc: Exception) -> None:
        self._pending = max(0, self._pending - 1)
        self.message.setText(tr("Could not load refills: {error}").format(error=exc))

    def _rows_loaded(self, generation: int, rows: list[RefillListRow]) -> None:
        self._pending = max(0, self._pending - 1)
        if generation != self._list_generation:
            return
        keep = self._want_id or (self.detail.id if self.detail else None)
        self._want_id = None
        self.model.set_rows(rows)
        filtered = self.state_filter.currentData() is not None or bool(self.search.text())
        if not rows:
            self.list_empty.setText(
                tr("No refills match this filter.")
                if filtered
                else tr("No refills yet. Request one with New refill.")
            )
        self.table.setVisible(bool(rows))
        self.list_empty.setVisible(not rows)
        self.count_label.setText(tr("{n} refills").format(n=len(rows)))
        row = 0
        if keep is not None:
            for r in range(self.proxy.rowCount()):
                if self.proxy.index(r, 0).data(ID_ROLE) == keep:
                    row = r
                    break
        fit_columns(self.table, self.model.columns, LIST_HIDE_FIRST)
        if rows:
            # The reset cleared the current row, so this loads the detail.
            self.table.setCurrentIndex(self.proxy.index(row, 0))
            self.table.scrollTo(self.proxy.index(row, 0))
        else:
            self._show_detail(None)

    def _selection_changed(self) -> None:
        row = self.selected_row()
        if row is None:
            self._show_detail(None)
            return
        self._load_detail(row.id)

    def _load_detail(self, refill_id: str) -> None:
        self._detail_generation += 1
        generation = self._detail_generation
        self._pending += 1
        self.ctx.read(
            refill_views.refill_detail,
            refill_id,
            on_done=lambda d: self._detail_loaded(generation, d),
            on_error=self._load_failed,
        )

    def _detail_loaded(self, generation: int, detail: RefillDetail) -> None:
        self._pending = max(0, self._pending - 1)
        if generation == self._detail_generation:
            self._show_detail(detail)

    def _show_detail(self, detail: RefillDetail | None) -> None:
        self.detail = detail
        self.pane_scroll.setVisible(detail is not None)
        self.detail_empty.setVisible(detail is None)
        if detail is not None:
            self.pane.show_detail(detail)
        self._update_actions()

    # ------------------------------------------------------------------ actions

    def _make_action(self, name: str, spec: ActionSpec, slot: Callable[..., None]) -> QAction:
        qa = QAction(tr(spec.text), self)
        qa.setObjectName(name)
        qa.setShortcut(QKeySequence(spec.keys))
        qa.setToolTip(f"{tr(spec.tip)} ({shortcut_text(spec.keys)})")
        qa.triggered.connect(slot)
        self.addAction(qa)
        return qa

    def allowed(self) -> list[RefillAction]:
        """The lifecycle actions the signed-in person may take on the shown refill."""
        d = self.detail
        if d is None:
            return []
        actor = self.ctx.actor
        allowed = refills.allowed_actions(d.status, actor.role)
        if (actor.role == Role.REP and d.requested_by != actor.user) or d.partly_delivered:
            # The service lets a rep cancel only their own requests, and nobody cancel a
            # refill part of which is already on the stand (the last delivery closes it).
            allowed = [a for a in allowed if a != RefillAction.CANCEL]
        return allowed

    def selected_discrepancy(self) -> DiscrepancyView | None:
        rows = self.pane.discrepancy_table.selectionModel().selectedRows()
        if not rows:
            return None
        model = self.pane.discrepancy_model
        return model.rows[rows[0].row()] if rows[0].row() < len(model.rows) else None

    def _update_actions(self) -> None:
        allowed = set(self.allowed())
        busy = self.dialog is not None and self.dialog.isVisible()
        for action, qa in self.lifecycle.items():
            qa.setEnabled(action in allowed and not busy)
            self.buttons[action].setVisible(action in allowed)
        manager = self.ctx.actor.role in (Role.MANAGER, Role.ADMIN)
        has_open = self.detail is not None and bool(self.detail.open_discrepancies)
        disc = self.selected_discrepancy()
        self.resolve_button.setVisible(manager and has_open)
        self.resolve_action.setEnabled(manager and disc is not None and disc.is_open and not busy)

    def _context_menu(self, pos: Any) -> None:
        if self.detail is None:
            return
        menu = QMenu(self)
        for action in self.allowed():
            menu.addAction(self.lifecycle[action])
        if self.resolve_button.isVisible():
            menu.addAction(self.resolve_action)
        if not menu.isEmpty():
            menu.popup(self.table.viewport().mapToGlobal(pos))

    def run(self, action: RefillAction) -> None:
        """Open the dialog of ``action`` for the shown refill."""
        detail = self.detail
        if detail is None or action not in self.allowed():
            return
        self._open_dialog(action_dialog(self.ctx, detail, action, self), detail, action.value)

    def resolve_selected(self) -> None:
        disc = self.selected_discrepancy()
        detail = self.detail
        if detail is None or disc is None or not disc.is_open:
            return
        if self.ctx.actor.role not in (Role.MANAGER, Role.ADMIN):
            return
        self._open_dialog(ResolveDiscrepancyDialog(self.ctx, disc, self), detail, "resolve")

    def _open_dialog(self, dialog: RefillDialog, detail: RefillDetail, what: str) -> None:
        if self.dialog is not None:
            self.dialog.deleteLater()
        self.dialog = dialog
        dialog.saved.connect(lambda result: self._saved(detail, what, result))
        dialog.finished.connect(lambda _code: self._update_actions())
        dialog.open()
        self._update_actions()

    def _saved(self, detail: RefillDetail, what: str, result: object) -> None:
        done = {
            "approve": tr("Refill approved"),
            "schedule": tr("Delivery scheduled"),
            "deliver": tr("Delivery recorded; the stock is updated"),
            "confirm": tr("Receipt confirmed"),
            "reject": tr("Refill rejected"),
            "cancel": tr("Refill cancelled"),
            "resolve": tr("Discrepancy resolved"),
        }[what]
        found = getattr(result, "discrepancies", ())
        if what == "deliver" and getattr(result, "status", None) == RefillStatus.SCHEDULED:
            lines = getattr(result, "lines", ())
            left = sum(max((ln.approved or 0) - (ln.delivered or 0), 0) for ln in lines)
            done = tr("Part delivery recorded; the stock is updated, {n} units to come").format(
                n=left
            )
        if what == "confirm" and found:
            done = tr("Receipt confirmed; {n} discrepancy opened for a manager").format(
                n=len(found)
            )
        text = f"{done} · {detail.stand_name}"
        self.message.setText(text)
        self.ctx.status.emit(text)
        refill_changed(self.ctx, detail.stand_id)

    def _on_changed(self, change: Changed) -> None:
        if not change.touches("refills", "inventory", "stands"):
            return
        if self.stand_id is not None and change.ids and self.stand_id not in change.ids:
            return
        if self.isVisible():
            self.refresh()
        else:
            self._stale = True

    def eventFilter(self, watched: Any, event: Any) -> bool:
        if event.type() == QEvent.Type.Resize:
            if watched is self.table.viewport():
                fit_columns(self.table, self.model.columns, LIST_HIDE_FIRST)
            elif watched is self.pane.lines_table.viewport():
                self.pane.fit_lines()
        return super().eventFilter(watched, event)

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if self._stale:
            self._stale = False
            self.refresh()
