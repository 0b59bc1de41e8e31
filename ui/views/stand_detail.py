"""Stand detail: who and where the stand is, its payment QR code, the rep's three actions, and
tabs for inventory, sales, refills, counts and loyalty.

Everything loads in the background through :meth:`UiContext.read`: the header and inventory
from :func:`app.services.queries.stand_detail`, the other tabs from
:mod:`app.services.stand_views`. A write anywhere that touches this stand's data refreshes it.

The inventory tab also shows the coach's outlook (:func:`app.coach.agent.stand_outlook`, read
after the stock so the table never waits for it): per SKU the units expected over the next
7 days, the days of cover and the risk of running out before the next visit (amber from
50 %, red from 80 %, the recommendation's reason in the tooltip), and above the table the
next visit and what the coach suggests refilling.

Keyboard: Ctrl+Shift+S records a sale, Ctrl+Shift+C counts stock, Ctrl+Shift+R requests a
refill; Alt plus the underlined letter (or Ctrl+Tab) switches tabs.
"""

from __future__ import annotations

import functools
import importlib
import io
import math
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from html import escape
from typing import TYPE_CHECKING, Any, ClassVar

import segno
from PySide6.QtCore import (
    QAbstractTableModel,
    QLocale,
    QModelIndex,
    QPersistentModelIndex,
    QSize,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QAction, QFont, QKeySequence, QPixmap, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QScroller,
    QSizePolicy,
    QStackedWidget,
    QTabBar,
    QTableView,
    QTabWidget,
    QToolButton,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from app.errors import NotFound
from app.models.enums import StandStatus
from app.services import queries, stand_views
from app.services.queries import InventoryRow, StandDetail
from app.services.stand_views import LoyaltyOverview, OrderView, SnapshotView
from ui.coach_scan import stand_outlook
from ui.context import Changed, UiContext
from ui.i18n import tr
from ui.stand_list_model import humanize, tint, tone
from ui.views.refill_dialogs import (
    coach_basis,
    has_forecast,
    no_refill_text,
    visit_text,
)
from ui.widgets import TOUCH, EmptyState, local_time, money

if TYPE_CHECKING:
    from app.coach.agent import SkuOutlook, StandOutlook

SORT_ROLE = Qt.ItemDataRole.UserRole + 1
ID_ROLE = Qt.ItemDataRole.UserRole + 2

#: Kinds of change that alter what this screen shows.
DETAIL_KINDS = ("stands", "inventory", "sales", "refills", "partners", "loyalty", "counts")
#: How much history the tabs show.
ORDER_LIMIT = 50
COUNT_LIMIT = 20
LEDGER_LIMIT = 200
#: The coach's risk colours: amber (warning) from, red (critical) from.
RISK_WARNING, RISK_CRITICAL = 0.5, 0.8
#: Below this width (the screen's) the inventory table leaves out its optional columns.
INVENTORY_NARROW = 1100
#: Days the inventory tab's forecast column adds up.
FORECAST_DAYS = 7
#: Side of the QR code on screen, in pixels (about; whole pixels per module).
QR_SIZE = 132
QR_SMALL = 112

#: The rep's actions: (name, label, shortcut, screen it opens).
ACTIONS = (
    ("sale", "Record sale", "Ctrl+Shift+S"),
    ("count", "Count stock", "Ctrl+Shift+C"),
    ("refill", "Request refill", "Ctrl+Shift+R"),
)

Index = QModelIndex | QPersistentModelIndex


def qr_pixmap(payload: str, size: int = QR_SIZE) -> QPixmap:
    """The QR code of ``payload`` as a pixmap about ``size`` pixels wide, with whole pixels
    per module (so it stays sharp and scannable from a screen)."""
    qr = segno.make(payload, error="m")
    modules = qr.symbol_size(scale=1, border=2)[0]
    buffer = io.BytesIO()
    qr.save(buffer, kind="png", scale=max(2, size // modules), border=2)
    pixmap = QPixmap()
    pixmap.loadFromData(buffer.getvalue(), "PNG")
    return pixmap


def _int(value: int) -> str:
    return str(QLocale().toString(value))


def _signed(value: int) -> str:
    return ("+" if value > 0 else "") + _int(value)


# ============================================================================ inventory


def _decimal(value: float, places: int = 1) -> str:
    return str(QLocale().toString(float(value), "f", places))


def risk_level(risk: float) -> str | None:
    """ "out" (critical, from 80 %), "low" (warning, from 50 %) or None, for colours."""
    if risk >= RISK_CRITICAL:
        return "out"
    if risk >= RISK_WARNING:
        return "low"
    return None


def forecast_units(sku: SkuOutlook, days: int = FORECAST_DAYS) -> float:
    """Units the coach expects to sell over the next ``days`` days."""
    daily = sku.forecast
    if not daily:
        return 0.0
    if len(daily) >= days:
        return float(sum(daily[:days]))
    return float(sum(daily)) * days / len(daily)


def risk_text(risk: float) -> str:
    """ "85 %"; "< 1 %" for a risk that is there but small; "0 %"."""
    if 0 < risk < 0.005:
        return tr("< 1 %")
    return f"{_int(round(100 * risk))} %"


def cover_text(cover: float | None) -> str:
    """Days of cover as a rep reads it: "4.5 d", "12 d", "—" when nothing sells."""
    if cover is None:
        return "—"
    if cover <= 0:
        return tr("0 d")
    if cover < 10:
        return tr("{n} d").format(n=_decimal(cover))
    if cover > 999:
        return tr("> 999 d")
    return tr("{n} d").format(n=_int(round(cover)))


class InventoryModel(QAbstractTableModel):
    """Per SKU: on hand against par and reorder point, with low and out marked by a tint, a
    coloured state word and bold numbers (colour is never the only sign); and, once the
    coach's outlook has arrived (:meth:`set_outlook`), the expected sales over the next
    7 days, the days of cover and the risk of running out before the next visit."""

    COLUMNS = (
        ("name", "Product"),
        ("sku", "SKU"),
        ("category", "Category"),
        ("on_hand", "On hand"),
        ("forecast", "Forecast 7 d"),
        ("cover", "Cover"),
        ("risk", "Risk"),
        ("par_level", "Par"),
        ("reorder_point", "Reorder at"),
        ("capacity", "Capacity"),
        ("last_counted_at", "Last count"),
        ("list_price", "Price"),
        ("state", "State"),
    )
    KEYS = tuple(k for k, _ in COLUMNS)
    NUMERIC = frozenset(
        {
            "on_hand",
            "par_level",
            "reorder_point",
            "capacity",
            "list_price",
            "forecast",
            "cover",
            "risk",
        }
    )
    COACH = ("forecast", "cover", "risk")
    #: Left out on a narrow screen (the product's tooltip has them).
    OPTIONAL = ("category", "last_counted_at")
    HEADER_TIPS: ClassVar[dict[str, str]] = {
        "forecast": "Units the coach expects to sell over the next 7 days",
        "cover": "Days until the stock on hand runs out at the expected sales (— nothing sells)",
        "risk": "The coach's probability that the product runs out before the next visit "
        "(amber from 50 %, red from 80 %)",
    }
    STATES: ClassVar[dict[str, str]] = {"out": "Out", "low": "Low", "ok": "OK"}
    #: Sort value of a coach column without a figure (still loading, or none): last.
    NO_FIGURE = -1.0

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.rows: list[InventoryRow] = []
        #: The coach's outlook per product id (empty until it arrives, or without one).
        self.outlook: dict[str, SkuOutlook] = {}

    def set_rows(self, rows: tuple[InventoryRow, ...] | list[InventoryRow]) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self.endResetModel()

    def set_outlook(self, skus: tuple[SkuOutlook, ...] | list[SkuOutlook] | None) -> None:
        """Fill (or, with None, empty) the coach's columns; the rows stay as they are."""
        self.outlook = {s.product_id: s for s in skus or ()}
        if self.rows:
            first, last = self.KEYS.index(self.COACH[0]), self.KEYS.index(self.COACH[-1])
            self.dataChanged.emit(self.index(0, first), self.index(len(self.rows) - 1, last), [])

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self.COLUMNS):
            return None
        key, title = self.COLUMNS[section]
        if role == Qt.ItemDataRole.DisplayRole:
            return tr(title)
        if role == Qt.ItemDataRole.TextAlignmentRole and key in self.NUMERIC:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole and key in self.HEADER_TIPS:
            return tr(self.HEADER_TIPS[key])
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return (
            Qt.ItemFlag.ItemIsEnabled
            | Qt.ItemFlag.ItemIsSelectable
            | Qt.ItemFlag.ItemNeverHasChildren
        )

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.parent().isValid():
            return None
        if not (0 <= index.row() < len(self.rows) and 0 <= index.column() < len(self.COLUMNS)):
            return None
        row = self.rows[index.row()]
        key = self.COLUMNS[index.column()][0]
        if key in self.COACH:
            return self._coach_data(row, key, role)
        value = getattr(row, key)
        state = row.state
        if role == Qt.ItemDataRole.DisplayRole:
            if key == "state":
                return tr(self.STATES[state])
            if key == "list_price":
                return money(value)
            if key == "last_counted_at":
                return local_time(value, date_only=True) if value else "—"
            if isinstance(value, int):
                return _int(value)
            return str(value)
        if role == SORT_ROLE:
            if key == "state":
                return ("out", "low", "ok").index(state)
            if key == "list_price":
                return float(value)
            if key == "last_counted_at":
                return value.timestamp() if isinstance(value, datetime) else 0.0
            return value
        return self._common(row, key, role)

    def _common(self, row: InventoryRow, key: str, role: int) -> Any:
        """What every column shares: id, alignment, the row's tint, tooltips."""
        state = row.state
        if role == ID_ROLE:
            return row.product_id
        if role == Qt.ItemDataRole.TextAlignmentRole:
            if key in self.NUMERIC:
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            return int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.BackgroundRole and state != "ok":
            return tint(state)
        if role == Qt.ItemDataRole.ForegroundRole and key == "state" and state != "ok":
            return tone(state)
        if role == Qt.ItemDataRole.FontRole and key in ("on_hand", "state") and state != "ok":
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            tip = ""
            if state == "out":
                tip = tr("{name} is out of stock").format(name=row.name)
            elif state == "low":
                tip = tr("{name}: {n} left, reorder at {r}").format(
                    name=row.name, n=row.on_hand, r=row.reorder_point
                )
            if key == "name":
                counted = (
                    local_time(row.last_counted_at, date_only=True)
                    if row.last_counted_at
                    else tr("never")
                )
                about = tr("{sku} · {category} · last counted {date}").format(
                    sku=row.sku, category=row.category, date=counted
                )
                return f"{tip}\n{about}" if tip else about
            return tip or None
        return None

    def _coach_data(self, row: InventoryRow, key: str, role: int) -> Any:
        sku = self.outlook.get(row.product_id)
        if role == Qt.ItemDataRole.DisplayRole:
            if sku is None:
                return ""
            if key == "forecast":
                units = forecast_units(sku)
                return _decimal(units, 1 if units < 10 else 0)
            if key == "cover":
                return cover_text(sku.days_of_cover)
            return risk_text(sku.stockout_risk)
        if role == SORT_ROLE:
            if sku is None:
                return self.NO_FIGURE
            if key == "forecast":
                return forecast_units(sku)
            if key == "cover":
                # Nothing sells: the stock lasts for ever, after every finite cover.
                return math.inf if sku.days_of_cover is None else float(sku.days_of_cover)
            return float(sku.stockout_risk)
        if sku is not None and key == "risk":
            level = risk_level(sku.stockout_risk)
            if role == Qt.ItemDataRole.ForegroundRole and level is not None:
                return tone(level)
            if role == Qt.ItemDataRole.FontRole and level is not None:
                font = QFont()
                font.setBold(True)
                return font
            if role == Qt.ItemDataRole.ToolTipRole:
                return self.risk_tip(sku)
        if sku is not None and role == Qt.ItemDataRole.ToolTipRole:
            return self.risk_tip(sku)
        return self._common(row, key, role)

    @staticmethod
    def risk_tip(sku: SkuOutlook) -> str:
        rec = sku.recommendation
        lines = [
            tr("{risk} risk of running out before the next visit").format(
                risk=risk_text(sku.stockout_risk)
            ),
            rec.message,
            coach_basis(sku.demand_class, sku.method),
        ]
        return "\n".join(lines)


# ============================================================================ the view


class TouchTabBar(QTabBar):
    """Tabs at least :data:`TOUCH` pixels tall and wide enough for a finger."""

    def tabSizeHint(self, index: int) -> QSize:
        size = super().tabSizeHint(index)
        return QSize(max(size.width(), TOUCH * 2), max(size.height(), TOUCH))


class StandDetailView(QWidget):
    title = "Stand"

    def __init__(self, ctx: UiContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.setObjectName("StandDetailView")
        self.stand_id: str | None = None
        self.detail: StandDetail | None = None
        self.orders: list[OrderView] = []
        self.snapshots: list[SnapshotView] = []
        self.loyalty: LoyaltyOverview | None = None
        #: The coach's outlook of the stand (None: not here yet, or the coach has none).
        self.outlook: StandOutlook | None = None
        #: Why the coach has no outlook, when it failed (shown as a tooltip).
        self.outlook_error: str | None = None
        self.error: str | None = None
        self._token = 0
        self._pending = 0
        self.refills_view: QWidget | None = None
        self._refills_stand: str | None = None

        # ---------------------------------------------------------- header
        self.name_label = QLabel()
        self.name_label.setObjectName("StandName")
        font = self.name_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.name_label.setFont(font)
        self.name_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status_label = QLabel()
        self.status_label.setObjectName("StandStatus")
        self.partner_label = QLabel()
        self.partner_label.setObjectName("PartnerLine")
        self.address_label = QLabel()
        self.address_label.setObjectName("AddressLine")
        self.address_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.tier_label = QLabel()
        self.tier_label.setObjectName("TierLine")
        for label in (self.partner_label, self.address_label, self.tier_label):
            label.setWordWrap(True)
        self.qr_label = QLabel()
        self.qr_label.setObjectName("QrCode")
        self._qr_size = QR_SIZE
        self.qr_label.setFixedSize(QR_SIZE, QR_SIZE)
        self.qr_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.qr_label.setAccessibleName(tr("Payment QR code"))
        self.reference_label = QLabel()
        self.reference_label.setObjectName("PaymentReference")
        self.reference_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.reference_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.TypeWriter)
        mono.setBold(True)
        self.reference_label.setFont(mono)
        # Room for a whole reference ("SP-" + 8 + "-" + 2 characters), bold.
        sample = "SP-WWWWWWWW-WW"
        self.reference_label.setMinimumWidth(
            self.reference_label.fontMetrics().horizontalAdvance(sample) + 12
        )

        self.quick_actions: dict[str, QAction] = {}
        self.buttons: dict[str, QToolButton] = {}
        action_row = QHBoxLayout()
        action_row.setSpacing(8)
        for name, text, shortcut in ACTIONS:
            action = QAction(tr(text), self)
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            action.setEnabled(False)
            action.triggered.connect(functools.partial(self._act, name))
            self.addAction(action)
            button = QToolButton()
            button.setObjectName(f"action_{name}")
            button.setDefaultAction(action)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            button.setMinimumSize(TOUCH * 3, TOUCH)
            button.setSizePolicy(QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Fixed)
            self.quick_actions[name] = action
            self.buttons[name] = button
            action_row.addWidget(button)
        action_row.addStretch(1)
        self._set_action_tips()

        title_row = QHBoxLayout()
        title_row.setSpacing(12)
        title_row.addWidget(self.name_label)
        title_row.addWidget(self.status_label)
        title_row.addStretch(1)
        info = QVBoxLayout()
        info.setSpacing(2)
        info.addLayout(title_row)
        info.addWidget(self.partner_label)
        info.addWidget(self.address_label)
        info.addWidget(self.tier_label)
        info.addSpacing(4)
        info.addLayout(action_row)
        info.addStretch(1)
        qr_box = QVBoxLayout()
        qr_box.setSpacing(2)
        qr_box.addWidget(self.qr_label, 0, Qt.AlignmentFlag.AlignHCenter)
        qr_box.addWidget(self.reference_label)
        self.header = QFrame()
        self.header.setObjectName("StandHeader")
        header_layout = QHBoxLayout(self.header)
        header_layout.setContentsMargins(0, 0, 0, 0)
        header_layout.addLayout(info, 1)
        header_layout.addLayout(qr_box)

        # ---------------------------------------------------------- tabs
        self.tabs = QTabWidget()
        self.tabs.setObjectName("StandTabs")
        self.tabs.setTabBar(TouchTabBar())
        self.tabs.setDocumentMode(True)
        self.tabs.tabBar().setExpanding(False)
        self.tabs.tabBar().setUsesScrollButtons(True)
        self._build_inventory_tab()
        self._build_sales_tab()
        self._build_refills_tab()
        self._build_counts_tab()
        self._build_loyalty_tab()
        self._build_performance_tab()
        self.tabs.currentChanged.connect(self._update_shortcuts)
        self.tabs.currentChanged.connect(self._ensure_performance)

        self.message = EmptyState(tr("Choose a stand in the list to see it here."))
        self.message.setObjectName("StandMessage")
        body = QWidget()
        body_layout = QVBoxLayout(body)
        body_layout.setContentsMargins(0, 0, 0, 0)
        body_layout.addWidget(self.header)
        body_layout.addWidget(self.tabs, 1)
        self.pages = QStackedWidget()
        self.pages.addWidget(self.message)
        self.pages.addWidget(body)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.pages)

        ctx.data_changed.connect(self._on_changed)

    # ------------------------------------------------------------------ tabs

    def _table(self, model: Any) -> QTableView:
        table = QTableView()
        table.setModel(model)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setAlternatingRowColors(False)  # the low/out tints are the row colours
        table.setWordWrap(False)
        table.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        table.verticalHeader().setVisible(False)
        table.verticalHeader().setDefaultSectionSize(max(TOUCH - 8, 28))
        table.setTabKeyNavigation(False)
        QScroller.grabGesture(table.viewport(), QScroller.ScrollerGestureType.TouchGesture)
        return table

    def _tree(self, model: QStandardItemModel) -> QTreeView:
        tree = QTreeView()
        tree.setModel(model)
        tree.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        tree.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        tree.setUniformRowHeights(True)
        tree.setAlternatingRowColors(True)
        tree.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        tree.setAllColumnsShowFocus(True)
        tree.header().setStretchLastSection(False)
        tree.setStyleSheet(f"QTreeView::item {{ min-height: {TOUCH - 8}px; }}")
        QScroller.grabGesture(tree.viewport(), QScroller.ScrollerGestureType.TouchGesture)
        return tree

    def _tab_page(self, summary: QLabel, view: QWidget, empty: EmptyState) -> QWidget:
        stack = QStackedWidget()
        stack.addWidget(view)
        stack.addWidget(empty)
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 6, 0, 0)
        layout.addWidget(summary)
        layout.addWidget(stack, 1)
        page.setProperty("stack", stack)
        summary.setWordWrap(True)
        return page

    def _build_inventory_tab(self) -> None:
        self.inventory_model = InventoryModel(self)
        self.inventory_proxy = QSortFilterProxyModel(self)
        self.inventory_proxy.setSourceModel(self.inventory_model)
        self.inventory_proxy.setSortRole(SORT_ROLE)
        self.inventory_table = self._table(self.inventory_proxy)
        self.inventory_table.setObjectName("InventoryTable")
        self.inventory_table.setSortingEnabled(True)
        self.inventory_table.sortByColumn(
            InventoryModel.KEYS.index("state"), Qt.SortOrder.AscendingOrder
        )
        header = self.inventory_table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.inventory_summary = QLabel()
        self.inventory_empty = EmptyState(tr("No products are placed on this stand yet."))
        self.inventory_page = self._tab_page(
            self.inventory_summary, self.inventory_table, self.inventory_empty
        )
        # The coach's line: next visit and what it suggests, filled when its outlook arrives.
        self.coach_line = QLabel()
        self.coach_line.setObjectName("CoachLine")
        self.coach_line.setWordWrap(True)
        self.coach_line.setTextFormat(Qt.TextFormat.RichText)
        self.coach_line.linkActivated.connect(lambda _link: self._act("refill"))
        page_layout = self.inventory_page.layout()
        assert isinstance(page_layout, QVBoxLayout)
        page_layout.insertWidget(1, self.coach_line)
        self.tabs.addTab(self.inventory_page, tr("&Inventory"))

    def _build_sales_tab(self) -> None:
        self.sales_model = QStandardItemModel(self)
        self.sales_tree = self._tree(self.sales_model)
        self.sales_tree.setObjectName("SalesTree")
        self.sales_summary = QLabel()
        self.sales_empty = EmptyState(
            tr("No sales recorded at this stand yet. Record one with Ctrl+Shift+S.")
        )
        self.sales_page = self._tab_page(self.sales_summary, self.sales_tree, self.sales_empty)
        self.tabs.addTab(self.sales_page, tr("&Sales"))

    def _build_refills_tab(self) -> None:
        self.refills_page = QWidget()
        self.refills_layout = QVBoxLayout(self.refills_page)
        self.refills_layout.setContentsMargins(0, 6, 0, 0)
        self.refills_fallback = EmptyState(
            tr("Refills of this stand are listed under Refills (Ctrl+4).")
        )
        self.refills_fallback.setObjectName("RefillsFallback")
        self.refills_fallback.hide()
        self.refills_layout.addWidget(self.refills_fallback)
        self.tabs.addTab(self.refills_page, tr("Re&fills"))

    def _build_counts_tab(self) -> None:
        self.counts_model = QStandardItemModel(self)
        self.counts_tree = self._tree(self.counts_model)
        self.counts_tree.setObjectName("CountsTree")
        self.counts_summary = QLabel()
        self.counts_empty = EmptyState(
            tr("This stand has not been counted yet. Count it with Ctrl+Shift+C.")
        )
        self.counts_page = self._tab_page(self.counts_summary, self.counts_tree, self.counts_empty)
        self.tabs.addTab(self.counts_page, tr("&Counts"))

    def _build_loyalty_tab(self) -> None:
        self.balance_label = QLabel()
        self.balance_label.setObjectName("LoyaltyBalance")
        font = self.balance_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.6)
        font.setBold(True)
        self.balance_label.setFont(font)
        self.loyalty_tier_label = QLabel()
        self.loyalty_tier_label.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setObjectName("TierProgress")
        self.progress.setMinimumHeight(24)
        self.progress.setTextVisible(True)
        self.progress_label = QLabel()
        self.progress_label.setWordWrap(True)
        self.ledger_model = QStandardItemModel(self)
        self.ledger_tree = self._tree(self.ledger_model)
        self.ledger_tree.setObjectName("LedgerTree")
        self.ledger_tree.setRootIsDecorated(False)
        self.ledger_empty = EmptyState(tr("No points yet."))
        ledger_stack = QStackedWidget()
        ledger_stack.addWidget(self.ledger_tree)
        ledger_stack.addWidget(self.ledger_empty)
        self.ledger_stack = ledger_stack
        top = QGridLayout()
        top.setHorizontalSpacing(16)
        top.addWidget(self.balance_label, 0, 0)
        top.addWidget(self.loyalty_tier_label, 0, 1)
        top.addWidget(self.progress, 1, 0, 1, 2)
        top.addWidget(self.progress_label, 2, 0, 1, 2)
        top.setColumnStretch(1, 1)
        self.loyalty_page = QWidget()
        layout = QVBoxLayout(self.loyalty_page)
        layout.setContentsMargins(0, 6, 0, 0)
        layout.addLayout(top)
        layout.addWidget(ledger_stack, 1)
        self.tabs.addTab(self.loyalty_page, tr("&Loyalty"))

    def _build_performance_tab(self) -> None:
        # The panel (and matplotlib with it) is made the first time the tab is shown.
        self.performance_page = QWidget()
        self.performance_layout = QVBoxLayout(self.performance_page)
        self.performance_layout.setContentsMargins(0, 0, 0, 0)
        self.performance: Any = None
        self.tabs.addTab(self.performance_page, tr("&Performance"))

    def _ensure_performance(self, *_args: Any) -> None:
        if self.tabs.currentWidget() is not self.performance_page or self.stand_id is None:
            return
        if self.performance is None:
            from ui.views.performance import PerformancePanel

            self.performance = PerformancePanel(self.ctx)
            self.performance_layout.addWidget(self.performance)
        self.performance.open(self.stand_id, now=True)

    def show_tab(self, name: str) -> None:
        """Bring a tab to the front by name: inventory, sales, refills, counts, loyalty,
        performance."""
        pages = {
            "inventory": self.inventory_page,
            "sales": self.sales_page,
            "refills": self.refills_page,
            "counts": self.counts_page,
            "loyalty": self.loyalty_page,
            "performance": self.performance_page,
        }
        self.tabs.setCurrentWidget(pages[name])

    # ------------------------------------------------------------------ public API

    @property
    def loading(self) -> bool:
        """True while any part of the screen is loading."""
        refills_loading = bool(getattr(self.refills_view, "loading", False))
        performance_loading = bool(getattr(self.performance, "loading", False))
        return self._pending > 0 or refills_loading or performance_loading

    def open(self, stand_id: str) -> None:
        """Show the stand ``stand_id`` (its header at once blanked, then filled as data comes)."""
        if stand_id != self.stand_id:
            self.stand_id = str(stand_id)
            self.detail, self.loyalty, self.error = None, None, None
            self.outlook, self.outlook_error = None, None
            self.orders, self.snapshots = [], []
            self._show_detail()
            self._show_orders()
            self._show_counts()
            self._show_loyalty()
            self._ensure_refills()
            self._ensure_performance()
        self._load()

    def refresh(self) -> None:
        if self.stand_id is None:
            self.pages.setCurrentIndex(0)
            return
        self._load()

    # ------------------------------------------------------------------ loading

    def _load(self, *, explicit: bool = True) -> None:
        """Read the stand's data; ``explicit`` also reloads the embedded refills list (which
        follows change notices by itself)."""
        assert self.stand_id is not None
        self._token += 1
        self._pending = 0
        sid = self.stand_id
        self._read(queries.stand_detail, (sid,), self._got_detail)
        self._read(stand_views.recent_orders, (sid,), self._got_orders, limit=ORDER_LIMIT)
        self._read(stand_views.count_snapshots, (sid,), self._got_counts, limit=COUNT_LIMIT)
        # Last: the stock shows first, the coach's columns fill in when they come.
        self._read(stand_outlook, (sid,), self._got_outlook, on_failure=self._outlook_failed)
        if self.refills_view is not None and explicit:
            refresher = getattr(self.refills_view, "refresh", None)
            if callable(refresher):
                refresher()

    def _read(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        done: Callable[[Any], None],
        *,
        on_failure: Callable[[Exception], None] | None = None,
        **kw: Any,
    ) -> None:
        self._pending += 1
        token = self._token
        self.ctx.read(
            fn,
            *args,
            on_done=functools.partial(self._arrived, token, done),
            on_error=functools.partial(self._failed, token, on_failure),
            **kw,
        )

    def _arrived(self, token: int, done: Callable[[Any], None], result: Any) -> None:
        if token != self._token:
            return
        self._pending -= 1
        done(result)

    def _failed(
        self, token: int, on_failure: Callable[[Exception], None] | None, exc: Exception
    ) -> None:
        if token != self._token:
            return
        self._pending -= 1
        if on_failure is not None:
            on_failure(exc)
            return
        if isinstance(exc, NotFound):
            self.error = tr("This stand no longer exists.")
        else:
            self.error = tr("Could not load this stand: {error}").format(error=exc)
        self.ctx.status.emit(self.error)
        self._show_detail()

    def _got_detail(self, detail: StandDetail) -> None:
        self.detail = detail
        self.error = None
        self._show_detail()
        self._read(
            stand_views.loyalty_overview,
            (detail.stand.partner_id,),
            self._got_loyalty,
            limit=LEDGER_LIMIT,
        )

    def _got_orders(self, orders: list[OrderView]) -> None:
        self.orders = orders
        self._show_orders()

    def _got_counts(self, snapshots: list[SnapshotView]) -> None:
        self.snapshots = snapshots
        self._show_counts()

    def _got_outlook(self, outlook: StandOutlook) -> None:
        self.outlook, self.outlook_error = outlook, None
        self.inventory_model.set_outlook(outlook.skus if has_forecast(outlook) else None)
        self._show_coach()

    def _outlook_failed(self, exc: Exception) -> None:
        # Not the stand's fault: the stock stays on screen, the coach's columns stay empty.
        self.outlook, self.outlook_error = None, str(exc) or type(exc).__name__
        self.inventory_model.set_outlook(None)
        self._show_coach()

    def _got_loyalty(self, overview: LoyaltyOverview) -> None:
        self.loyalty = overview
        self._show_loyalty()

    def _on_changed(self, change: Changed) -> None:
        if self.stand_id is not None and change.touches(*DETAIL_KINDS):
            self._load(explicit=False)

    # ------------------------------------------------------------------ header

    def _show_detail(self) -> None:
        detail = self.detail
        if self.error and detail is None:
            self.message.setText(self.error)
            self.pages.setCurrentIndex(0)
            self._enable_actions(None)
            return
        self.pages.setCurrentIndex(1)
        if detail is None:
            self.name_label.setText(tr("Loading…"))
            for label in (
                self.status_label,
                self.partner_label,
                self.address_label,
                self.tier_label,
                self.reference_label,
                self.inventory_summary,
            ):
                label.setText("")
            self.qr_label.clear()
            self.qr_label.setToolTip("")
            self.inventory_model.set_rows([])
            self.inventory_model.set_outlook(None)
            self._show_coach()
            self._enable_actions(None)
            return
        row = detail.stand
        self.name_label.setText(row.name)
        self.status_label.setText(humanize(row.status))
        colour = tone("good") if row.status == "active" else tone("muted")
        self.status_label.setStyleSheet(f"color: {colour.name()}; font-weight: bold;")
        self.partner_label.setText(
            tr("{partner} · {package} package · {type}").format(
                partner=row.partner_name,
                package=detail.package_name,
                type=humanize(row.location_type),
            )
        )
        place = " ".join(p for p in (detail.postal_code, row.city) if p)
        rep = row.assigned_rep or tr("no rep assigned")
        self.address_label.setText(f"{detail.address}, {place} · {tr('Rep')}: {rep}")
        self.tier_label.setText(
            tr("{tier} tier · {points} points").format(
                tier=detail.tier_name, points=_int(detail.loyalty_balance)
            )
        )
        self.qr_label.setPixmap(qr_pixmap(detail.qr_payload, self._qr_size))
        self.qr_label.setToolTip(
            tr("Customers scan this to pay at the stand.\n{payload}").format(
                payload=detail.qr_payload
            )
        )
        self.reference_label.setText(detail.payment_reference)
        self.reference_label.setToolTip(tr("Payment reference for bank transfers"))
        self._enable_actions(detail)
        self._show_inventory(detail)

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._fit_inventory_columns()
        # On a short screen (1024x600) the code is drawn smaller; it still scans.
        size = QR_SIZE if self.height() >= 640 else QR_SMALL
        if size != self._qr_size:
            self._qr_size = size
            self.qr_label.setFixedSize(size, size)
            if self.detail is not None:
                self.qr_label.setPixmap(qr_pixmap(self.detail.qr_payload, size))

    def _enable_actions(self, detail: StandDetail | None) -> None:
        status = detail.stand.status if detail else None
        reasons: dict[str, str | None] = {
            "sale": None
            if status == StandStatus.ACTIVE.value
            else tr("Sales can be recorded once the stand is active."),
            "count": None
            if status != StandStatus.REMOVED.value and detail and detail.inventory
            else tr("Nothing to count: the stand carries no products."),
            "refill": None
            if status
            in (StandStatus.ACTIVE.value, StandStatus.PLANNED.value, StandStatus.PAUSED.value)
            else tr("This stand cannot receive refills."),
        }
        for name, action in self.quick_actions.items():
            action.setEnabled(detail is not None and reasons[name] is None)
        self._set_action_tips(reasons if detail is not None else None)

    def _set_action_tips(self, reasons: dict[str, str | None] | None = None) -> None:
        for name, text, shortcut in ACTIONS:
            tip = f"{tr(text)} ({shortcut})"
            reason = (reasons or {}).get(name)
            if reason:
                tip = f"{tip}\n{reason}"
            self.quick_actions[name].setToolTip(tip)
            self.buttons[name].setToolTip(tip)

    def _act(self, name: str, *_args: Any) -> None:
        if self.stand_id and self.quick_actions[name].isEnabled():
            self.ctx.navigate.emit(name, self.stand_id)

    # ------------------------------------------------------------------ inventory

    def _show_inventory(self, detail: StandDetail) -> None:
        rows = detail.inventory
        self.inventory_model.set_rows(rows)
        stand = detail.stand
        self.inventory_summary.setText(
            tr("{skus} products · {units} units on hand · {low} low · {out} out").format(
                skus=_int(len(rows)),
                units=_int(sum(r.on_hand for r in rows)),
                low=_int(sum(1 for r in rows if r.state == "low")),
                out=_int(sum(1 for r in rows if r.state == "out")),
            )
            + (
                " · " + tr("last counted {date}").format(date=local_time(stand.last_counted_at))
                if stand.last_counted_at
                else " · " + tr("never counted")
            )
        )
        self._stack(self.inventory_page).setCurrentIndex(0 if rows else 1)

    def _fit_inventory_columns(self) -> None:
        """On a narrow screen (1024 px) the table drops the columns a rep needs least, so
        the product names stay readable without scrolling sideways (the product's tooltip
        still says them)."""
        narrow = self.width() < INVENTORY_NARROW
        for key in InventoryModel.OPTIONAL:
            self.inventory_table.setColumnHidden(InventoryModel.KEYS.index(key), narrow)

    def _show_coach(self) -> None:
        """The line above the inventory: the next visit and what the coach suggests."""
        outlook = self.outlook
        label = self.coach_line
        label.setToolTip("")
        muted = f"color: {tone('muted').name()};"
        if outlook is None and self.outlook_error is None:
            label.setStyleSheet(muted)
            label.setText(tr("The coach is working out its forecast…") if self.stand_id else "")
            return
        if outlook is None or not has_forecast(outlook):
            label.setStyleSheet(muted)
            label.setText(
                tr("The coach has no forecast yet: it needs some sales at this stand or its peers.")
            )
            if self.outlook_error:
                label.setToolTip(self.outlook_error)
            return
        label.setStyleSheet("")
        parts = [visit_text(outlook)]
        risky = [s for s in outlook.skus if risk_level(s.stockout_risk) is not None]
        if risky:
            worst = max(risky, key=lambda s: s.stockout_risk)
            colour = tone(risk_level(worst.stockout_risk) or "low").name()
            text = (
                tr("{name} may run out before it").format(name=escape(worst.name))
                if len(risky) == 1
                else tr("{n} products may run out before it").format(n=_int(len(risky)))
            )
            parts.append(f"<span style='color: {colour}; font-weight: 600;'>{text}</span>")
        n = len(outlook.quantities)
        if n:
            what = (tr("1 product") if n == 1 else tr("{n} products")).format(n=_int(n))
            can = self.quick_actions["refill"].isEnabled()
            link = f"<a href='refill'>{what}</a>" if can else what
            parts.append(
                tr("coach suggests refilling {products} ({units} units)").format(
                    products=link, units=_int(outlook.refill_units)
                )
            )
        else:
            parts.append(no_refill_text(outlook))
        label.setText(" · ".join(parts))
        label.setToolTip(
            tr(
                "The coach's forecast from the sales of the last weeks: refills cover a "
                "{service} chance of not running out until the refill after next arrives."
            ).format(service=f"{round(outlook.service * 100)} %")
        )

    @staticmethod
    def _stack(page: QWidget) -> QStackedWidget:
        stack = page.property("stack")
        assert isinstance(stack, QStackedWidget)
        return stack

    # ------------------------------------------------------------------ sales

    def _show_orders(self) -> None:
        model = self.sales_model
        model.clear()
        model.setHorizontalHeaderLabels(
            [tr("When / product"), tr("Qty"), tr("Price"), tr("Total"), tr("Payment"), tr("Points")]
        )
        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        for order in self.orders:
            when = local_time(order.occurred_at)
            if order.is_void:
                kind = tr("Void")
            elif order.voided:
                kind = tr("Sale, voided")
            else:
                kind = tr("Sale")
            first = QStandardItem(f"{when} · {kind}")
            first.setData(order.id, ID_ROLE)
            cells = [
                first,
                _item(_int(order.units), right),
                _item(""),
                _item(money(order.total, order.currency), right),
                _item(humanize(order.payment_method) if order.payment_method != "qr" else "QR"),
                _item(_signed(order.points_earned) if order.points_earned else "", right),
            ]
            if order.voided or order.is_void:
                for cell in cells:
                    font = cell.font()
                    font.setStrikeOut(order.voided)
                    font.setItalic(order.is_void)
                    cell.setFont(font)
                    cell.setForeground(tone("muted"))
            if order.oversold:
                first.setToolTip(tr("Sold more than the stand was expected to hold"))
            for line in order.items:
                first.appendRow(
                    [
                        _item(f"{line.name}  ({line.sku})"),
                        _item(_int(line.quantity), right),
                        _item(money(line.unit_price, order.currency), right),
                        _item(money(line.line_total, order.currency), right),
                        _item(tr("price changed") if line.price_overridden else ""),
                        _item(""),
                    ]
                )
            model.appendRow(cells)
        _fit_columns(self.sales_tree)
        sales = [o for o in self.orders if not o.is_void]
        net = sum((o.total for o in self.orders), Decimal(0))
        if self.orders:
            self.sales_summary.setText(
                tr("Latest {n} records · {sales} sales, {voided} voided · net {net}").format(
                    n=_int(len(self.orders)),
                    sales=_int(len(sales)),
                    voided=_int(sum(1 for o in sales if o.voided)),
                    net=money(net),
                )
            )
        else:
            self.sales_summary.setText("")
        self._stack(self.sales_page).setCurrentIndex(0 if self.orders else 1)

    # ------------------------------------------------------------------ counts

    def _show_counts(self) -> None:
        model = self.counts_model
        model.clear()
        model.setHorizontalHeaderLabels(
            [tr("When / product"), tr("Expected"), tr("Counted"), tr("Variance"), tr("Value")]
        )
        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        for snap in self.snapshots:
            source = tr("Count") if snap.source == "count" else humanize(snap.source)
            who = f" · {snap.actor}" if snap.actor else ""
            first = QStandardItem(f"{local_time(snap.counted_at)} · {source}{who}")
            first.setData(snap.id, ID_ROLE)
            if snap.note:
                first.setToolTip(snap.note)
            variance = _item(_signed(snap.total_variance), right)
            value = _item(money(snap.variance_value), right)
            _colour_variance(variance, snap.total_variance)
            _colour_variance(value, snap.total_variance)
            cells = [
                first,
                _item(_int(sum(li.expected for li in snap.lines)), right),
                _item(_int(sum(li.counted for li in snap.lines)), right),
                variance,
                value,
            ]
            for line in snap.lines:
                v = _item(_signed(line.variance), right)
                val = _item(money(line.variance_value), right)
                _colour_variance(v, line.variance)
                _colour_variance(val, line.variance)
                first.appendRow(
                    [
                        _item(f"{line.name}  ({line.sku})"),
                        _item(_int(line.expected), right),
                        _item(_int(line.counted), right),
                        v,
                        val,
                    ]
                )
            model.appendRow(cells)
        _fit_columns(self.counts_tree)
        if self.snapshots:
            newest = self.snapshots[0]
            self.counts_summary.setText(
                tr(
                    "{n} counts · latest {date}: {off} of {lines} products off, "
                    "variance {units} units ({value})"
                ).format(
                    n=_int(len(self.snapshots)),
                    date=local_time(newest.counted_at),
                    off=_int(newest.lines_off),
                    lines=_int(len(newest.lines)),
                    units=_signed(newest.total_variance),
                    value=money(newest.variance_value),
                )
            )
            self.counts_tree.expand(model.index(0, 0))
        else:
            self.counts_summary.setText("")
        self._stack(self.counts_page).setCurrentIndex(0 if self.snapshots else 1)

    # ------------------------------------------------------------------ loyalty

    def _show_loyalty(self) -> None:
        overview = self.loyalty
        model = self.ledger_model
        model.clear()
        model.setHorizontalHeaderLabels([tr("When"), tr("Kind"), tr("Points"), tr("Note")])
        if overview is None:
            self.balance_label.setText("")
            self.loyalty_tier_label.setText("")
            self.progress_label.setText("")
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.progress.setFormat("")
            self.ledger_stack.setCurrentIndex(1)
            return
        tier = overview.tier
        self.balance_label.setText(tr("{n} points").format(n=_int(overview.balance)))
        self.loyalty_tier_label.setText(
            tr("{tier} tier · {earned} points earned in the last {days} days").format(
                tier=tier.tier_name, earned=_int(tier.earned_in_window), days=overview.window_days
            )
        )
        if overview.next_threshold is None:
            self.progress.setRange(0, 1)
            self.progress.setValue(1)
            self.progress.setFormat(tr("Top tier"))
            self.progress_label.setText(tr("{tier} is the top tier.").format(tier=tier.tier_name))
        else:
            low, high = overview.tier_threshold, overview.next_threshold
            self.progress.setRange(low, max(high, low + 1))
            self.progress.setValue(max(low, min(high, tier.earned_in_window)))
            self.progress.setFormat(
                tr("{earned} / {target} toward {tier}").format(
                    earned=_int(tier.earned_in_window),
                    target=_int(high),
                    tier=tier.next_tier_name or "",
                )
            )
            self.progress_label.setText(
                tr("{n} more points in the window reach {tier}.").format(
                    n=_int(tier.points_to_next or 0), tier=tier.next_tier_name or ""
                )
            )
        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        for entry in overview.entries:
            points = _item(_signed(entry.points), right)
            _colour_variance(points, entry.points)
            model.appendRow(
                [
                    _item(local_time(entry.occurred_at)),
                    _item(humanize(entry.kind.value)),
                    points,
                    _item(entry.note or ""),
                ]
            )
        _fit_columns(self.ledger_tree, stretch=3)
        self.ledger_stack.setCurrentIndex(0 if overview.entries else 1)

    # ------------------------------------------------------------------ refills

    def _ensure_refills(self) -> None:
        """Embed the Refills screen narrowed to this stand: made once, then pointed at each
        stand opened (its list loads anew; a view being deleted could still be loading)."""
        if self.stand_id == self._refills_stand:
            return
        self._refills_stand = self.stand_id
        view: Any = self.refills_view  # the other screen's type is not imported here
        if view is not None and hasattr(view, "stand_id"):
            view.stand_id = self.stand_id
            return  # refreshed by _load()
        if view is not None:
            self.refills_layout.removeWidget(view)
            view.hide()
            view.deleteLater()
            self.refills_view = None
        view = _make_refills_view(self.ctx, self.stand_id)
        if view is None:
            self.refills_fallback.show()
            return
        self.refills_fallback.hide()
        self.refills_view = view
        self.refills_layout.addWidget(view, 1)
        self._update_shortcuts()

    def _update_shortcuts(self, *_args: Any) -> None:
        """On the Refills tab the embedded screen's own Ctrl+Shift keys (schedule, confirm,
        reject...) apply; elsewhere the page's sale, count and refill keys do. Both sets
        active at once would make Qt fire neither."""
        inside = self.refills_view is not None and self.tabs.currentWidget() is self.refills_page
        for name, _text, shortcut in ACTIONS:
            self.quick_actions[name].setShortcut(
                QKeySequence() if inside else QKeySequence(shortcut)
            )


def _make_refills_view(ctx: UiContext, stand_id: str | None) -> QWidget | None:
    """The Refills screen narrowed to one stand, if that screen is available."""
    try:
        # Imported here: the Refills screen is built alongside this one and may be absent.
        module = importlib.import_module("ui.views.refills")
    except ImportError:
        return None
    view = module.RefillsView(ctx, stand_id=stand_id)
    return view if isinstance(view, QWidget) else None


def _fit_columns(tree: QTreeView, stretch: int = 0) -> None:
    """Columns as wide as their contents, one taking the remaining room (after each fill:
    the model's columns are made anew)."""
    header = tree.header()
    for col in range(header.count()):
        mode = (
            QHeaderView.ResizeMode.Stretch
            if col == stretch
            else QHeaderView.ResizeMode.ResizeToContents
        )
        header.setSectionResizeMode(col, mode)


def _item(text: str, align: Qt.AlignmentFlag | None = None) -> QStandardItem:
    item = QStandardItem(text)
    item.setEditable(False)
    if align is not None:
        item.setTextAlignment(align)
    return item


def _colour_variance(item: QStandardItem, value: int) -> None:
    if value < 0:
        item.setForeground(tone("out"))
    elif value > 0:
        item.setForeground(tone("good"))
