"""Record a sale at a stand: find or scan products, set quantities, pick how it was paid,
save with one key, and undo the last sale as a void.

Built for a rep in front of a shop with a few minutes: the search box keeps the focus, so a
USB barcode scanner (which types the digits and Enter into the focused field) adds a product
at quantity 1 or one more of it; a tap on a product in the list does the same. Nothing typed
is ever thrown away by a refusal: the message appears next to the line or field it is about.

Price override: each line has an optional price field; empty means the catalog price. The
service enforces the product's price guardrails and names the line if one is crossed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from PySide6.QtCore import QEvent, QObject, QSortFilterProxyModel, Qt, QTimer
from PySide6.QtGui import (
    QAction,
    QKeyEvent,
    QKeySequence,
    QPalette,
    QStandardItem,
    QStandardItemModel,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from shiboken6 import isValid

from app.errors import DomainError
from app.ids import new_id
from app.rules import round_money
from app.services import field_views, sales
from app.services.field_views import StandStock, StockItem
from app.services.sales import MAX_LINE_QTY, SaleLine, SaleResult, VoidResult
from ui.context import Changed, LatestRead, UiContext
from ui.i18n import tr
from ui.widgets import (
    TOUCH,
    EmptyState,
    FieldError,
    Stepper,
    kinetic,
    local_time,
    money,
    plural,
    show_error,
    with_shortcut,
)

PRODUCT_ROLE = Qt.ItemDataRole.UserRole + 1
SEARCH_ROLE = Qt.ItemDataRole.UserRole + 2

WARN_STYLE = "color: #b26a00;"
OK_STYLE = "color: #2e7d32;"
ERROR_STYLE = "color: #c62828;"

#: (service value, button text, in a sentence, shortcut)
PAYMENT_METHODS = (
    ("cash", "Cash", "cash", "Alt+1"),
    ("qr", "QR", "QR code", "Alt+2"),
    ("card", "Card", "card", "Alt+3"),
)


def parse_price(text: str) -> Decimal | None:
    """A price as typed ("2.50", "2,50", "2,50 €"), or None if it is not an amount.

    Only the decimal separator is guessed (a comma when there is no point): prices at a
    stand have no thousands."""
    cleaned = text.strip()
    for symbol in ("€", "$", "£", "CHF"):
        cleaned = cleaned.replace(symbol, "")
    cleaned = cleaned.replace("\u00a0", "").replace(" ", "")
    if "," in cleaned and "." not in cleaned:
        cleaned = cleaned.replace(",", ".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def search_text(item: StockItem) -> str:
    """The words a product is found by: its name, SKU, barcode and category."""
    return " ".join((item.name, item.sku, item.barcode or "", item.category)).casefold()


def matches(text: str, words: list[str]) -> bool:
    """Every typed word starts a word of ``text``: "dark choc" finds "Dark Chocolate",
    "4006" a barcode by its first digits, but "02" does not find every barcode with a 0
    and a 2 in it."""
    tokens = text.split()
    return all(any(token.startswith(word) for token in tokens) for word in words)


class _WordFilter(QSortFilterProxyModel):
    """Keeps the rows that :func:`matches` the words typed, in any order and case."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._words: list[str] = []

    def set_words(self, text: str) -> None:
        self.beginFilterChange()
        self._words = text.casefold().split()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: Any) -> bool:
        if not self._words:
            return True
        model = self.sourceModel()
        return matches(
            str(model.index(source_row, 0, source_parent).data(SEARCH_ROLE) or ""), self._words
        )


class SaleLineWidget(QFrame):
    """One line of the sale: product, quantity, optional price, line total and remove; the
    stock warning and any error message underneath."""

    def __init__(self, item: StockItem, view: SaleView) -> None:
        super().__init__()
        self.item = item
        self.setObjectName("SaleLine")
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.name = QLabel()
        self.name.setWordWrap(True)
        self.name.setMinimumWidth(120)
        self.name.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.quantity = Stepper(1, minimum=1, maximum=MAX_LINE_QTY)
        self.quantity.edit.setToolTip(tr("Quantity sold (↑/↓ or − and +)"))
        self.quantity.edit.setAccessibleName(tr("Quantity of {name}").format(name=item.name))
        self.price = QLineEdit()
        self.price.setMinimumHeight(TOUCH)
        self.price.setFixedWidth(96)
        self.price.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.price.setInputMethodHints(Qt.InputMethodHint.ImhFormattedNumbersOnly)
        self.price.setAccessibleName(tr("Price of {name}").format(name=item.name))
        self.total = QLabel()
        self.total.setMinimumWidth(84)
        self.total.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.remove = QToolButton()
        self.remove.setText("✕")
        self.remove.setMinimumSize(TOUCH, TOUCH)
        self.remove.setToolTip(tr("Remove {name} from the sale").format(name=item.name))
        self.remove.setAccessibleName(self.remove.toolTip())
        self.warning = QLabel()
        self.warning.setObjectName("StockWarning")
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet(WARN_STYLE)
        self.warning.hide()
        self.error = FieldError()

        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.name, 1)
        top.addWidget(self.quantity)
        top.addWidget(self.price)
        top.addWidget(self.total)
        top.addWidget(self.remove)
        box = QVBoxLayout(self)
        box.setContentsMargins(4, 4, 4, 4)
        box.setSpacing(2)
        box.addLayout(top)
        box.addWidget(self.warning)
        box.addWidget(self.error)

        self.quantity.valueChanged.connect(view._lines_changed)
        self.price.textChanged.connect(view._lines_changed)
        self.quantity.edit.returnPressed.connect(lambda: view._quantity_entered(self))
        self.price.returnPressed.connect(view.focus_search)
        self.remove.clicked.connect(lambda: view.remove_line(self))
        self.set_item(item)

    def set_item(self, item: StockItem) -> None:
        """New figures for the same product (after a refresh): price and expected stock."""
        self.item = item
        self.name.setText(f"<b>{item.name}</b><br><small>{item.sku}</small>")
        self.price.setPlaceholderText(money(item.list_price))
        self.price.setToolTip(
            tr("Price per unit; leave empty for the list price of {price}").format(
                price=money(item.list_price)
            )
        )
        self.update_state()

    def quantity_problem(self) -> str:
        text = self.quantity.text().strip()
        value = self.quantity.value()
        if not text:
            return tr("Enter how many were sold.")
        if value is None:
            return tr("The quantity must be a whole number, not “{text}”.").format(text=text)
        if value < 1:
            return tr("The quantity must be at least 1; use ✕ to remove the line.")
        if value > MAX_LINE_QTY:
            return tr("The quantity must be at most {n}.").format(n=MAX_LINE_QTY)
        return ""

    def unit_price(self) -> Decimal | None:
        """The price charged per unit, or None while the typed price is not an amount."""
        text = self.price.text().strip()
        if not text:
            return self.item.list_price
        value = parse_price(text)
        return value if value is not None and value >= 0 else None

    def price_problem(self) -> str:
        text = self.price.text().strip()
        if text and self.unit_price() is None:
            return tr("The price must be an amount like 2.50, not “{text}”.").format(text=text)
        return ""

    def problem(self) -> str:
        return self.quantity_problem() or self.price_problem()

    def line_total(self) -> Decimal | None:
        price, qty = self.unit_price(), self.quantity.value()
        if price is None or qty is None or self.quantity_problem():
            return None
        return round_money(price * qty)

    def sale_line(self) -> SaleLine:
        text = self.price.text().strip()
        price = None if not text else str(self.unit_price())
        return SaleLine(self.item.product_id, self.quantity.value(), price)

    def update_state(self) -> None:
        total = self.line_total()
        self.total.setText(money(total) if total is not None else "—")
        self.error.show_message(self.problem())
        qty = self.quantity.value()
        expected = self.item.on_hand
        if qty is not None and not self.quantity_problem() and qty > expected:
            if expected > 0:
                text = tr("Only {n} expected in stock; the sale is still recorded.").format(
                    n=expected
                )
            else:
                text = tr("None expected in stock; the sale is still recorded.")
            self.warning.setText(text)
            self.warning.show()
        else:
            self.warning.hide()


@dataclass(frozen=True)
class _LastSale:
    order_id: str
    stand_id: str
    total: Decimal
    points: int
    units: int
    method: str
    at: datetime


class SaleView(QWidget):
    """Record a sale at one stand (see the module docstring)."""

    title = "Record sale"

    def __init__(self, ctx: UiContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.setObjectName("SaleView")
        self.loading = False
        self.saving = False
        self.stand_id: str | None = None
        self.stock: StandStock | None = None
        self.lines: list[SaleLineWidget] = []
        self.last_sale: _LastSale | None = None
        self._latest = LatestRead(ctx, self)
        self._draft_id = new_id()
        self._sent: list[SaleLineWidget] = []
        self._sent_method = ""

        # ---- header
        # The main window shows the screen's title; this names the stand, which matters
        # more in front of a shop.
        self.heading = QLabel()
        self.heading.setObjectName("StandName")
        self.heading.setStyleSheet("font-size: 16px; font-weight: 600;")
        self.subheading = QLabel()
        self.subheading.setStyleSheet("color: palette(mid);")
        self.state_label = QLabel()
        header = QHBoxLayout()
        header.addWidget(self.heading)
        header.addWidget(self.subheading, 1)
        header.addWidget(self.state_label)

        self.banner = QLabel()
        self.banner.setObjectName("SaleResult")
        self.banner.setWordWrap(True)
        self.banner.hide()
        self.oversold = QLabel()
        self.oversold.setObjectName("OversoldWarning")
        self.oversold.setWordWrap(True)
        self.oversold.setStyleSheet(WARN_STYLE)
        self.oversold.hide()
        self.error = FieldError()  # anything not about one field

        # ---- left: find products
        self.search = QLineEdit()
        self.search.setObjectName("ProductSearch")
        self.search.setPlaceholderText(tr("Scan a barcode, or type a name or SKU"))
        self.search.setClearButtonEnabled(True)
        self.search.setMinimumHeight(TOUCH)
        self.search.setAccessibleName(tr("Find product"))
        self.search_error = FieldError()
        self.hint = QLabel()
        self.hint.setObjectName("ScanFeedback")
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: palette(mid);")
        self.model = QStandardItemModel(self)
        self.proxy = _WordFilter(self)
        self.proxy.setSourceModel(self.model)
        self.products = QListView()
        self.products.setObjectName("ProductList")
        self.products.setModel(self.proxy)
        self.products.setUniformItemSizes(True)
        self.products.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.products.setToolTip(tr("Tap a product to add one; tap again for one more"))
        self.products.setStyleSheet(
            f"QListView::item {{ min-height: {TOUCH + 4}px; padding: 2px 6px; }}"
        )
        kinetic(self.products)
        self.products_empty = EmptyState("")
        self.products_stack = QStackedWidget()
        self.products_stack.addWidget(self.products)
        self.products_stack.addWidget(self.products_empty)

        left = QVBoxLayout()
        left.addWidget(self.search)
        left.addWidget(self.search_error)
        left.addWidget(self.hint)
        left.addWidget(self.products_stack, 1)

        # ---- right: the sale
        self.lines_box = QWidget()
        self.lines_layout = QVBoxLayout(self.lines_box)
        self.lines_layout.setContentsMargins(0, 0, 0, 0)
        self.lines_layout.setSpacing(0)
        self.lines_layout.addStretch(1)
        self.lines_area = QScrollArea()
        self.lines_area.setWidgetResizable(True)
        self.lines_area.setWidget(self.lines_box)
        self.lines_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        kinetic(self.lines_area)
        self.lines_empty = EmptyState(tr("Scan a barcode or tap a product to start the sale."))
        self.lines_stack = QStackedWidget()
        self.lines_stack.addWidget(self.lines_empty)
        self.lines_stack.addWidget(self.lines_area)
        self.lines_error = FieldError()
        self.lines_header = QWidget()
        head = QHBoxLayout(self.lines_header)
        head.setContentsMargins(5, 0, 5, 0)
        for text, width, align in (
            (tr("Product"), 0, Qt.AlignmentFlag.AlignLeft),
            (tr("Quantity"), 2 * TOUCH + 98, Qt.AlignmentFlag.AlignHCenter),
            (tr("Price each"), 96, Qt.AlignmentFlag.AlignRight),
            (tr("Line total"), 84, Qt.AlignmentFlag.AlignRight),
            ("", TOUCH, Qt.AlignmentFlag.AlignLeft),
        ):
            label = QLabel(text)
            label.setStyleSheet("color: palette(mid);")
            label.setAlignment(align | Qt.AlignmentFlag.AlignVCenter)
            if width:
                label.setFixedWidth(width)
            head.addWidget(label, 0 if width else 1)

        pay_row = self._build_payment()

        self.total_label = QLabel()
        self.total_label.setObjectName("SaleTotal")
        self.total_label.setStyleSheet("font-size: 22px; font-weight: 600;")
        self.total_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.units_label = QLabel()
        self.units_label.setStyleSheet("color: palette(mid);")
        total_row = QHBoxLayout()
        total_row.addWidget(self.units_label, 1)
        total_row.addWidget(QLabel(tr("Total")))
        total_row.addWidget(self.total_label)

        self._build_actions()
        self.save_button = QPushButton(tr("Save sale"))
        self.save_button.setObjectName("SaveSale")
        self.save_button.setMinimumHeight(TOUCH + 8)
        self.save_button.setDefault(False)
        self.save_button.setStyleSheet("font-size: 16px; font-weight: 600; padding: 0 24px;")
        self.save_button.setToolTip(with_shortcut(tr("Save sale"), self.save_action))
        self.save_button.clicked.connect(self.save)
        self.undo_button = QPushButton(tr("Undo last sale"))
        self.undo_button.setObjectName("UndoSale")
        self.undo_button.setMinimumHeight(TOUCH)
        self.undo_button.setToolTip(
            with_shortcut(tr("Void the last sale saved here"), self.undo_action)
        )
        self.undo_button.clicked.connect(self.undo_last_sale)
        self.undo_button.setEnabled(False)
        self.search.setToolTip(with_shortcut(tr("Find or scan a product"), self.find_action))
        buttons = QHBoxLayout()
        buttons.addWidget(self.undo_button)
        buttons.addStretch(1)
        buttons.addWidget(self.save_button)

        right = QVBoxLayout()
        right.addWidget(self.lines_header)
        right.addWidget(self.lines_stack, 1)
        right.addWidget(self.lines_error)
        right.addLayout(pay_row)
        right.addWidget(self.payment_error)
        right.addLayout(total_row)
        right.addLayout(buttons)
        right.addWidget(self.banner)
        right.addWidget(self.oversold)

        body = QHBoxLayout()
        body.addLayout(left, 2)
        body.addSpacing(8)
        body.addLayout(right, 3)
        layout = QVBoxLayout(self)
        layout.addLayout(header)
        layout.addWidget(self.error)
        layout.addLayout(body, 1)

        # ---- behaviour
        self.search.textChanged.connect(self._search_changed)
        self.search.returnPressed.connect(self._search_entered)
        self.search.installEventFilter(self)
        self.products.clicked.connect(self._product_clicked)
        self.products.installEventFilter(self)
        ctx.data_changed.connect(self._data_changed)
        self._lines_changed()
        self._show_products_state()

    def _build_payment(self) -> QHBoxLayout:
        """Cash, QR and card as big toggle buttons, each with an Alt+digit shortcut."""
        self.payment_group = QButtonGroup(self)
        self.payment_group.setExclusive(True)
        self.payment_buttons: dict[str, QPushButton] = {}
        pay_row = QHBoxLayout()
        pay_label = QLabel(tr("Paid by"))
        pay_row.addWidget(pay_label)
        for value, text, _, keys in PAYMENT_METHODS:
            button = QPushButton(tr(text))
            button.setCheckable(True)
            button.setMinimumSize(88, TOUCH)
            button.setStyleSheet(
                "QPushButton:checked { background: palette(highlight);"
                " color: palette(highlighted-text); font-weight: 600; }"
            )
            button.setToolTip(tr("Paid by {method} ({keys})").format(method=tr(text), keys=keys))
            button.setAccessibleName(tr("Paid by {method}").format(method=tr(text)))
            self.payment_group.addButton(button)
            self.payment_buttons[value] = button
            pay_row.addWidget(button)
            action = QAction(tr("Paid by {method}").format(method=tr(text)), self)
            action.setShortcut(QKeySequence(keys))
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            action.triggered.connect(lambda _=False, v=value: self.choose_payment(v))
            self.addAction(action)
        pay_row.addStretch(1)
        self.payment_buttons["cash"].setChecked(True)
        self.payment_error = FieldError()
        return pay_row

    def _build_actions(self) -> None:
        """Save, undo and find as actions with shortcuts (the main window may also put them
        in its menus: ``view.actions()``)."""
        self.save_action = QAction(tr("Save sale"), self)
        self.save_action.setShortcuts(
            [QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter"), QKeySequence("Ctrl+S")]
        )
        self.undo_action = QAction(tr("Undo last sale"), self)
        self.undo_action.setShortcut(QKeySequence("Ctrl+Z"))
        self.find_action = QAction(tr("Find product"), self)
        self.find_action.setShortcut(QKeySequence("Ctrl+F"))
        for action in (self.save_action, self.undo_action, self.find_action):
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self.addAction(action)
        self.save_action.triggered.connect(self.save)
        self.undo_action.triggered.connect(self.undo_last_sale)
        self.find_action.triggered.connect(self.focus_search)
        self.undo_action.setEnabled(False)

    def choose_payment(self, method: str) -> None:
        button = self.payment_buttons[method]
        button.setChecked(True)
        button.setFocus()
        self.payment_error.show_message("")

    # ------------------------------------------------------------------ loading

    def open(self, stand_id: str) -> None:
        """Show the sale screen for a stand; a different stand starts a fresh sale."""
        if stand_id != self.stand_id:
            self._clear_sale()
            self.stock = None
            self.last_sale = None
            self._set_undo_enabled(False)
            self.banner.hide()
            self.oversold.hide()
            self.error.show_message("")
            self.search.setText("")
            self.model.clear()
            self.heading.setText("")
            self.subheading.setText("")
        self.stand_id = stand_id
        self.refresh()
        self.focus_search()

    def refresh(self) -> None:
        """Reload the stand's products and stock in the background; what is entered stays."""
        if self.stand_id is None:
            return
        self.loading = True
        self.state_label.setText(tr("Loading…"))
        self._show_products_state()
        self._latest(
            field_views.stand_stock,
            self.stand_id,
            on_done=self._loaded,
            on_error=self._load_failed,
        )

    def _loaded(self, stock: StandStock) -> None:
        self.loading = False
        self.stock = stock
        self.state_label.setText("")
        self.heading.setText(stock.stand_name)
        partner = stock.partner_name if stock.partner_name != stock.stand_name else ""
        self.subheading.setText(partner)
        current = self.products.currentIndex().data(PRODUCT_ROLE)
        self.model.clear()
        for item in stock.items:
            stock_text = (
                tr("{n} in stock").format(n=item.on_hand)
                if item.on_hand > 0
                else tr("none in stock")
            )
            row = QStandardItem(
                f"{item.name}\n{item.sku} · {money(item.list_price)} · {stock_text}"
            )
            row.setData(item.product_id, PRODUCT_ROLE)
            row.setData(search_text(item), SEARCH_ROLE)
            row.setEditable(False)
            if not item.sellable:
                row.setEnabled(False)
                row.setToolTip(tr("{name} is no longer sold.").format(name=item.name))
            self.model.appendRow(row)
        by_id = {item.product_id: item for item in stock.items}
        for line in self.lines:
            if line.item.product_id in by_id:
                line.set_item(by_id[line.item.product_id])
        if current:
            for r in range(self.proxy.rowCount()):
                if self.proxy.index(r, 0).data(PRODUCT_ROLE) == current:
                    self.products.setCurrentIndex(self.proxy.index(r, 0))
        if not stock.accepts_sales:
            self.error.show_message(
                tr("{stand} is {status}; sales start once it is active.").format(
                    stand=stock.stand_name, status=tr(stock.status)
                )
            )
        self._show_products_state()
        self._lines_changed()

    def _load_failed(self, exc: Exception) -> None:
        self.loading = False
        self.state_label.setText("")
        self.error.show_message(tr("Could not load the stand: {error}").format(error=exc))
        self._show_products_state()

    def _data_changed(self, change: Changed) -> None:
        if (
            self.stand_id is not None
            and change.touches("inventory", "sales", "stands")
            and (not change.ids or self.stand_id in change.ids)
        ):
            self.refresh()

    # ------------------------------------------------------------------ finding products

    def focus_search(self) -> None:
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    def _search_changed(self, text: str) -> None:
        self.search_error.show_message("")
        self.proxy.set_words(text)
        self._show_products_state()

    def _show_products_state(self) -> None:
        if self.stand_id is None:
            message = tr("Choose a stand to record a sale.")
        elif self.stock is None:
            message = tr("Loading the stand's products…") if self.loading else ""
        elif not self.stock.items:
            message = tr("This stand carries no products yet.")
        elif self.proxy.rowCount() == 0:
            message = tr("No product at this stand matches “{text}”.").format(
                text=self.search.text().strip()
            )
        else:
            message = ""
        self.products_empty.setText(message)
        self.products_stack.setCurrentWidget(self.products_empty if message else self.products)

    def _search_entered(self) -> None:
        """Enter in the search box: an exact barcode or SKU (the scanner path), else the one
        product the words match."""
        text = self.search.text().strip()
        if not text or self.stock is None:
            return
        item = self.stock.find(text)
        if item is None and self.proxy.rowCount() == 1:
            item = self._item(self.proxy.index(0, 0).data(PRODUCT_ROLE))
        if item is None:
            if self.proxy.rowCount() > 1:
                message = tr("{n} products match; pick one from the list (↓).").format(
                    n=self.proxy.rowCount()
                )
            else:
                message = tr("No product with barcode, SKU or name “{text}” at this stand.").format(
                    text=text
                )
            self.search_error.show_message(message)
            self.search.selectAll()  # the next scan replaces what is there
            return
        if self.add_product(item):
            self.search.setText("")

    def _product_clicked(self, index: Any) -> None:
        item = self._item(index.data(PRODUCT_ROLE))
        if item is not None:
            self.add_product(item)
        self.search.setFocus()  # ready for the next scan

    def _item(self, product_id: object) -> StockItem | None:
        if self.stock is None:
            return None
        return next((i for i in self.stock.items if i.product_id == product_id), None)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            event.type() == QEvent.Type.ShortcutOverride
            and isinstance(event, QKeyEvent)
            and isinstance(watched, QLineEdit)
            and event.matches(QKeySequence.StandardKey.Undo)
            and not watched.isUndoAvailable()
        ):
            # Ctrl+Z undoes typing while there is typing to undo, then the last sale.
            event.ignore()
            return True
        if event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            if watched is self.search and event.key() == Qt.Key.Key_Down:
                self.products.setFocus()
                if not self.products.currentIndex().isValid() and self.proxy.rowCount():
                    self.products.setCurrentIndex(self.proxy.index(0, 0))
                return True
            if watched is self.search and event.key() == Qt.Key.Key_Escape and self.search.text():
                self.search.setText("")
                return True
            if watched is self.products:
                if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not (
                    event.modifiers() & Qt.KeyboardModifier.ControlModifier
                ):
                    item = self._item(self.products.currentIndex().data(PRODUCT_ROLE))
                    if item is not None:
                        self.add_product(item)
                    return True
                text = event.text()
                if text and text.isprintable() and not text.isspace():
                    # A scan or typing while the list has the focus goes to the search box.
                    self.search.setFocus()
                    self.search.insert(text)
                    return True
        return super().eventFilter(watched, event)

    # ------------------------------------------------------------------ lines

    def add_product(self, item: StockItem) -> bool:
        """Add one of ``item`` to the sale (a new line, or one more on its line)."""
        if not item.sellable:
            self.search_error.show_message(tr("{name} is no longer sold.").format(name=item.name))
            return False
        line = next((ln for ln in self.lines if ln.item.product_id == item.product_id), None)
        if line is None:
            line = SaleLineWidget(item, self)
            line.price.installEventFilter(self)
            line.quantity.edit.installEventFilter(self)
            self.lines.append(line)
            self.lines_layout.insertWidget(self.lines_layout.count() - 1, line)
            line.show()  # at once, not when the event loop next runs (a scan may follow)
            self._restripe()
        else:
            current = line.quantity.value()
            line.quantity.setValue((current if current and current > 0 else 0) + 1)
        qty = line.quantity.text()
        self.hint.setText(tr("Added {name}: {qty} in this sale").format(name=item.name, qty=qty))
        self.lines_error.show_message("")
        self._lines_changed()
        QTimer.singleShot(0, lambda: self._reveal(line))
        return True

    def _reveal(self, line: SaleLineWidget) -> None:
        if isValid(self) and isValid(line) and line in self.lines:
            self.lines_area.ensureWidgetVisible(line)

    def remove_line(self, line: SaleLineWidget) -> None:
        if line not in self.lines:
            return
        self.lines.remove(line)
        line.hide()
        line.deleteLater()
        self._restripe()
        self._lines_changed()
        self.search.setFocus()

    def _restripe(self) -> None:
        for n, line in enumerate(self.lines):
            line.setAutoFillBackground(n % 2 == 1)
            line.setBackgroundRole(QPalette.ColorRole.AlternateBase)

    def _quantity_entered(self, line: SaleLineWidget) -> None:
        """Enter in a quantity field. A scanner beeping while a quantity had the focus
        typed a barcode after the quantity: put the quantity back and add the product."""
        text = line.quantity.text().strip()
        if self.stock is not None:
            for item in self.stock.items:
                code = item.barcode
                if code and len(text) > len(code) - 1 and text.endswith(code):
                    before = text[: -len(code)]
                    line.quantity.edit.setText(before or "1")
                    self.add_product(item)
                    break
        self.search.setFocus()

    def _lines_changed(self) -> None:
        total = Decimal(0)
        units = 0
        complete = True
        for line in self.lines:
            line.update_state()
            value = line.line_total()
            if value is None:
                complete = False
            else:
                total += value
                units += line.quantity.value() or 0
        self.lines_stack.setCurrentWidget(self.lines_area if self.lines else self.lines_empty)
        self.lines_header.setVisible(bool(self.lines))
        self.total_label.setText(money(total))
        if not self.lines:
            self.units_label.setText(tr("No items yet"))
        elif complete:
            self.units_label.setText(plural(units, "{n} item", "{n} items"))
        else:
            self.units_label.setText(
                plural(units, "{n} item", "{n} items") + tr(" so far; a line needs correcting")
            )
        self.save_button.setEnabled(not self.saving)
        self.save_action.setEnabled(not self.saving)

    def _clear_sale(self) -> None:
        for line in self.lines:
            line.hide()
            line.deleteLater()
        self.lines = []
        self.lines_error.show_message("")
        self.payment_error.show_message("")
        self.search_error.show_message("")
        self.hint.setText("")
        self.search.setText("")
        self.payment_buttons["cash"].setChecked(True)
        self._draft_id = new_id()
        self._lines_changed()

    @staticmethod
    def _method_name(value: str) -> str:
        names = {v: tr(words) for v, _, words, _ in PAYMENT_METHODS}
        return names.get(value, value)

    def payment_method(self) -> str | None:
        for value, button in self.payment_buttons.items():
            if button.isChecked():
                return value
        return None

    # ------------------------------------------------------------------ saving

    def _errors(self, lines: list[SaleLineWidget]) -> dict[str, FieldError]:
        errors: dict[str, FieldError] = {
            "lines": self.lines_error,
            "payment_method": self.payment_error,
            "product": self.search_error,
        }
        for n, line in enumerate(lines, start=1):
            if line in self.lines:
                for part in ("product", "quantity", "unit_price"):
                    errors[f"lines[{n}].{part}"] = line.error
        return errors

    def save(self) -> None:
        """Check what is entered, then record the sale in the background."""
        if self.saving or self.stand_id is None:
            return
        if self.loading and self.stock is None:
            self.error.show_message(tr("The stand is still loading; try again in a moment."))
            return
        self.error.show_message("")
        self.payment_error.show_message("")
        if not self.lines:
            self.lines_error.show_message(
                tr("Add at least one product: scan it or pick it from the list.")
            )
            self.search.setFocus()
            return
        bad = [line for line in self.lines if line.problem()]
        for line in self.lines:
            line.update_state()
        if bad:
            self.lines_error.show_message(tr("Correct the lines marked in red; nothing was saved."))
            field = bad[0].quantity.edit if bad[0].quantity_problem() else bad[0].price
            self.lines_area.ensureWidgetVisible(bad[0])
            field.setFocus()
            field.selectAll()
            return
        method = self.payment_method()
        if method is None:
            self.payment_error.show_message(tr("Choose how the customer paid."))
            return
        self.lines_error.show_message("")
        self.saving = True
        self._sent = list(self.lines)
        self._sent_method = method
        self.state_label.setText(tr("Saving…"))
        self._lines_changed()
        self.ctx.write(
            sales.record_sale,
            self.stand_id,
            [line.sale_line() for line in self._sent],
            method,
            order_id=self._draft_id,
            on_done=self._saved,
            on_error=self._save_failed,
        )

    def _saved(self, result: SaleResult) -> None:
        if not isValid(self):
            return
        self.saving = False
        self.state_label.setText("")
        units = sum(line.quantity.value() or 0 for line in self._sent)
        method = self._sent_method
        if result.stand_id == self.stand_id:
            self._clear_sale()
        self._sent = []
        self.last_sale = _LastSale(
            result.order_id,
            result.stand_id,
            result.total,
            result.points_earned,
            units,
            method,
            datetime.now(UTC),
        )
        self._set_undo_enabled(True)
        self._show_banner(
            tr("Sale saved: total {total}, {points} points. Paid by {method}.").format(
                total=money(result.total),
                points=result.points_earned,
                method=self._method_name(method),
            ),
            OK_STYLE,
        )
        if result.oversold:
            parts = [
                tr("{name}: {sold} sold, {expected} expected").format(
                    name=o.name, sold=o.quantity, expected=o.expected_on_hand
                )
                for o in result.oversold
            ]
            self.oversold.setText(
                tr(
                    "Sold more than the expected stock — {lines}. Count the stand to correct it."
                ).format(lines="; ".join(parts))
            )
            self.oversold.show()
        else:
            self.oversold.hide()
        self.ctx.changed("sales", "inventory", "loyalty", "stands", ids=(result.stand_id,))
        self.search.setFocus()

    def _save_failed(self, exc: Exception) -> None:
        if not isValid(self):
            return
        self.saving = False
        self.state_label.setText("")
        self._lines_changed()
        if isinstance(exc, DomainError):
            show_error(self._errors(self._sent), exc, self.error)
        else:
            self.error.show_message(
                tr("The sale could not be saved ({error}); nothing was lost, try again.").format(
                    error=exc
                )
            )
        self._sent = []

    def _show_banner(self, text: str, style: str) -> None:
        self.banner.setText(text)
        self.banner.setStyleSheet(style + " font-weight: 600;")
        self.banner.show()

    # ------------------------------------------------------------------ undo

    def _set_undo_enabled(self, enabled: bool) -> None:
        self.undo_action.setEnabled(enabled)
        self.undo_button.setEnabled(enabled)

    def undo_last_sale(self) -> None:
        """Void the last sale saved on this screen, after asking."""
        last = self.last_sale
        if last is None or self.saving:
            return
        answer = QMessageBox.question(
            self,
            tr("Undo last sale"),
            tr(
                "Void the sale of {total} ({units}) saved at {time}? The goods go back "
                "into the stand's stock and its {points} points are taken back."
            ).format(
                total=money(last.total),
                units=plural(last.units, "{n} item", "{n} items"),
                time=local_time(last.at),
                points=last.points,
            ),
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        self.saving = True
        self._lines_changed()
        self.state_label.setText(tr("Voiding…"))
        self.ctx.write(
            sales.void_sale,
            last.order_id,
            reason="Undone on the sale screen",
            on_done=lambda result: self._voided(last, result),
            on_error=self._void_failed,
        )

    def _voided(self, last: _LastSale, result: VoidResult) -> None:
        if not isValid(self):
            return
        self.saving = False
        self.state_label.setText("")
        self._lines_changed()
        self.last_sale = None
        self._set_undo_enabled(False)
        self.oversold.hide()
        self._show_banner(
            tr("Sale voided: {total} taken back, {points} points reversed, stock restored.").format(
                total=money(last.total), points=result.points_reversed
            ),
            OK_STYLE,
        )
        self.ctx.changed("sales", "inventory", "loyalty", "stands", ids=(last.stand_id,))

    def _void_failed(self, exc: Exception) -> None:
        if not isValid(self):
            return
        self.saving = False
        self.state_label.setText("")
        self._lines_changed()
        if isinstance(exc, DomainError) and exc.field == "order_id":
            self.last_sale = None  # already voided (elsewhere): nothing left to undo
            self._set_undo_enabled(False)
        self.error.show_message(tr("The sale was not voided: {error}").format(error=exc))

    # ------------------------------------------------------------------ leaving

    def can_leave(self) -> bool:
        """True when nothing is entered; otherwise ask whether to discard the sale."""
        if not self.lines or self.saving:
            return True
        total = sum((line.line_total() or Decimal(0) for line in self.lines), Decimal(0))
        answer = QMessageBox.question(
            self,
            tr("Discard this sale?"),
            tr(
                "The sale being entered is not saved (lines: {n}, total {total}). Discard it?"
            ).format(n=len(self.lines), total=money(total)),
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        if answer in (QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.Discard):
            self._clear_sale()
            return True
        return False
