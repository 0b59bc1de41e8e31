"""Count the stock of a stand: every SKU with its expected quantity, a counted field with
large steppers, the variance as you type, and one save that records the snapshot.

An empty counted field means "not counted" (that SKU keeps its stock); 0 means "none on the
shelf". "=" in a counted field, or the = button, takes the expected quantity. The search box
filters the rows, and a scanned barcode adds one to that SKU's count, so a rep can also count
by scanning every unit. Rows are plain widgets in a scroll area: a stand has tens of SKUs,
not thousands, and real widgets give real touch targets.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QAction, QKeyEvent, QKeySequence, QPalette
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
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
from app.services import field_views, inventory
from app.services.field_views import StandStock, StockItem
from app.services.inventory import MAX_QTY, CountResult
from ui.context import Changed, LatestRead, UiContext
from ui.i18n import tr
from ui.views.sale import OK_STYLE, matches, search_text
from ui.widgets import (
    TOUCH,
    EmptyState,
    FieldError,
    Stepper,
    kinetic,
    local_time,
    plural,
    show_error,
    with_shortcut,
)

SHORT_COLOUR = "#c62828"
OVER_COLOUR = "#1565c0"
EVEN_COLOUR = "#2e7d32"

EXPECTED_WIDTH = 84
COUNTED_WIDTH = 3 * TOUCH + 90 + 16
VARIANCE_WIDTH = 92
MAX_PAGE_WIDTH = 1280


def signed(n: int) -> str:
    """+2, −3 (a true minus sign), ±0."""
    if n > 0:
        return f"+{n}"
    if n < 0:
        return f"−{-n}"
    return "±0"


class CountRow(QFrame):
    """One SKU: name and SKU, expected, the counted stepper with its = button, the variance,
    and a message underneath when the count cannot be read."""

    def __init__(self, item: StockItem, view: CountView) -> None:
        super().__init__()
        self.item = item
        self.setObjectName("CountRow")
        self.name = QLabel()
        self.name.setWordWrap(True)
        self.name.setMinimumWidth(140)
        self.name.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.expected = QLabel()
        self.expected.setFixedWidth(EXPECTED_WIDTH)
        self.expected.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.counted = Stepper(0, minimum=0, maximum=MAX_QTY)
        self.counted.edit.setText("")
        self.counted.edit.setPlaceholderText(tr("not counted"))
        self.counted.edit.setAccessibleName(tr("Counted {name}").format(name=item.name))
        self.counted.edit.setToolTip(
            tr("How many are on the stand; empty = not counted, “=” = as expected")
        )
        self.same = QToolButton()
        self.same.setText("=")
        self.same.setMinimumSize(TOUCH, TOUCH)
        self.same.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.same.setToolTip(tr("Same as expected (type “=” in the field)"))
        counted_box = QWidget()
        counted_box.setFixedWidth(COUNTED_WIDTH)
        cb = QHBoxLayout(counted_box)
        cb.setContentsMargins(0, 0, 0, 0)
        cb.setSpacing(4)
        cb.addWidget(self.counted)
        cb.addWidget(self.same)
        cb.addStretch(1)
        self.variance = QLabel()
        self.variance.setObjectName("Variance")
        self.variance.setFixedWidth(VARIANCE_WIDTH)
        self.variance.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.error = FieldError()

        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.name, 1)
        top.addWidget(self.expected)
        top.addSpacing(12)
        top.addWidget(counted_box)
        top.addWidget(self.variance)
        box = QVBoxLayout(self)
        box.setContentsMargins(6, 3, 10, 3)
        box.setSpacing(0)
        box.addLayout(top)
        box.addWidget(self.error)

        self.counted.valueChanged.connect(lambda: view._row_changed(self))
        self.counted.edit.returnPressed.connect(lambda: view._next_row(self))
        self.counted.edit.installEventFilter(view)
        self.same.clicked.connect(self.take_expected)
        self.set_item(item)

    def set_item(self, item: StockItem) -> None:
        self.item = item
        extra = "" if item.placed else " · " + tr("removed from the stand")
        if not item.sellable:
            extra += " · " + tr("no longer sold")
        self.name.setText(f"<b>{item.name}</b><br><small>{item.sku}{extra}</small>")
        self.expected.setText(str(item.on_hand).replace("-", "−"))
        self.update_state()

    def take_expected(self) -> None:
        self.counted.setValue(max(0, self.item.on_hand))

    def is_entered(self) -> bool:
        return bool(self.counted.text().strip())

    def problem(self) -> str:
        text = self.counted.text().strip()
        if not text:
            return ""
        value = self.counted.value()
        if value is None:
            return tr("The count must be a whole number, not “{text}”.").format(text=text)
        if value < 0:
            return tr("The count cannot be negative; enter 0 if there are none.")
        if value > MAX_QTY:
            return tr("The count must be at most {n}.").format(n=MAX_QTY)
        return ""

    def count(self) -> int | None:
        """The counted quantity, or None when not counted or not readable."""
        if not self.is_entered() or self.problem():
            return None
        return self.counted.value()

    def update_state(self) -> None:
        self.error.show_message(self.problem())
        value = self.count()
        if value is None:
            self.variance.setText("—")
            self.variance.setStyleSheet("color: palette(mid);")
            self.variance.setToolTip(tr("Not counted"))
            return
        diff = value - self.item.on_hand
        colour = SHORT_COLOUR if diff < 0 else OVER_COLOUR if diff > 0 else EVEN_COLOUR
        self.variance.setText(signed(diff))
        self.variance.setStyleSheet(f"color: {colour}; font-weight: 600;")
        self.variance.setToolTip(
            tr("{n} missing").format(n=-diff)
            if diff < 0
            else tr("{n} more than expected").format(n=diff)
            if diff > 0
            else tr("As expected")
        )


class CountView(QWidget):
    """Count the stock of one stand (see the module docstring)."""

    title = "Count stock"

    def __init__(self, ctx: UiContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.setObjectName("CountView")
        self.loading = False
        self.saving = False
        self.stand_id: str | None = None
        self.stock: StandStock | None = None
        self.rows: list[CountRow] = []
        self._latest = LatestRead(ctx, self)
        self._sent: dict[str, CountRow] = {}

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

        self.error = FieldError()
        self.search = QLineEdit()
        self.search.setObjectName("CountSearch")
        self.search.setPlaceholderText(tr("Find a SKU, or scan one unit at a time to count it"))
        self.search.setClearButtonEnabled(True)
        self.search.setMinimumHeight(TOUCH)
        self.search.setAccessibleName(tr("Find SKU"))
        self.search_error = FieldError()
        self.hint = QLabel()
        self.hint.setObjectName("ScanFeedback")
        self.hint.setStyleSheet("color: palette(mid);")

        self.columns = QWidget()
        cols = QHBoxLayout(self.columns)
        cols.setContentsMargins(7, 0, 11, 0)
        for text, width in (
            (tr("Product"), 0),
            (tr("Expected"), EXPECTED_WIDTH),
            ("", 12),
            (tr("Counted"), COUNTED_WIDTH),
            (tr("Variance"), VARIANCE_WIDTH),
        ):
            label = QLabel(text)
            label.setStyleSheet("color: palette(mid);")
            if width:
                label.setFixedWidth(width)
            if text in (tr("Expected"), tr("Variance")):
                label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            cols.addWidget(label, 0 if width else 1)

        self.grid = QWidget()
        self.grid_layout = QVBoxLayout(self.grid)
        self.grid_layout.setContentsMargins(0, 0, 0, 0)
        self.grid_layout.setSpacing(0)
        self.grid_layout.addStretch(1)
        self.area = QScrollArea()
        self.area.setWidgetResizable(True)
        self.area.setWidget(self.grid)
        self.area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        kinetic(self.area)
        self.empty = EmptyState(tr("Choose a stand to count."))
        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.area)

        self.summary = QLabel()
        self.summary.setObjectName("CountSummary")
        self.summary.setWordWrap(True)
        self.counts_error = FieldError()
        self.banner = QLabel()
        self.banner.setObjectName("CountResult")
        self.banner.setWordWrap(True)
        self.banner.hide()

        self.save_action = QAction(tr("Save count"), self)
        self.save_action.setShortcuts(
            [QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter"), QKeySequence("Ctrl+S")]
        )
        self.find_action = QAction(tr("Find SKU"), self)
        self.find_action.setShortcut(QKeySequence("Ctrl+F"))
        for action in (self.save_action, self.find_action):
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self.addAction(action)
        self.save_action.triggered.connect(self.save)
        self.find_action.triggered.connect(self.focus_search)
        self.search.setToolTip(with_shortcut(tr("Find or scan a SKU"), self.find_action))

        self.save_button = QPushButton(tr("Save count"))
        self.save_button.setObjectName("SaveCount")
        self.save_button.setMinimumHeight(TOUCH + 8)
        self.save_button.setStyleSheet("font-size: 16px; font-weight: 600; padding: 0 24px;")
        self.save_button.setToolTip(with_shortcut(tr("Save the count"), self.save_action))
        self.save_button.clicked.connect(self.save)

        footer = QHBoxLayout()
        status = QVBoxLayout()
        status.addWidget(self.summary)
        status.addWidget(self.counts_error)
        footer.addLayout(status, 1)
        footer.addWidget(self.save_button)

        # On a wide screen the numbers stay near the names they belong to.
        page = QWidget()
        page.setMaximumWidth(MAX_PAGE_WIDTH)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(header)
        layout.addWidget(self.error)
        layout.addWidget(self.search)
        layout.addWidget(self.search_error)
        layout.addWidget(self.hint)
        layout.addWidget(self.columns)
        layout.addWidget(self.stack, 1)
        layout.addLayout(footer)
        layout.addWidget(self.banner)
        outer = QHBoxLayout(self)
        outer.addWidget(page)

        self.search.textChanged.connect(self._filter)
        self.search.returnPressed.connect(self._search_entered)
        ctx.data_changed.connect(self._data_changed)
        self._update_summary()

    # ------------------------------------------------------------------ loading

    def open(self, stand_id: str) -> None:
        """Show the count for a stand; a different stand starts a fresh count."""
        if stand_id != self.stand_id:
            self._set_rows(())
            self.stock = None
            self.banner.hide()
            self.error.show_message("")
            self.search.setText("")
            self.heading.setText("")
            self.subheading.setText("")
        self.stand_id = stand_id
        self.refresh()
        self.focus_search()

    def refresh(self) -> None:
        """Reload expected quantities in the background; counts entered so far stay."""
        if self.stand_id is None:
            return
        self.loading = True
        self.state_label.setText(tr("Loading…"))
        self._show_state()
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
        names = [stock.partner_name] if stock.partner_name != stock.stand_name else []
        last = (
            tr("last counted {when}").format(when=local_time(stock.last_counted_at))
            if stock.last_counted_at
            else tr("never counted")
        )
        self.subheading.setText(" · ".join([*names, last]))
        self._set_rows(stock.items)
        self._filter(self.search.text())
        self._update_summary()

    def _load_failed(self, exc: Exception) -> None:
        self.loading = False
        self.state_label.setText("")
        self.error.show_message(tr("Could not load the stand: {error}").format(error=exc))
        self._show_state()

    def _set_rows(self, items: tuple[StockItem, ...]) -> None:
        """Rows for ``items``: existing rows are updated in place (what was typed stays)."""
        existing = {row.item.product_id: row for row in self.rows}
        if [i.product_id for i in items] == [r.item.product_id for r in self.rows]:
            for item in items:
                existing[item.product_id].set_item(item)
            return
        self.grid.setUpdatesEnabled(False)
        kept: list[CountRow] = []
        for item in items:
            row = existing.pop(item.product_id, None)
            if row is None:
                row = CountRow(item, self)
            else:
                row.set_item(item)
            kept.append(row)
        for row in existing.values():
            row.hide()
            row.deleteLater()
        for row in kept:
            self.grid_layout.removeWidget(row)
        for n, row in enumerate(kept):
            self.grid_layout.insertWidget(n, row)
            row.setAutoFillBackground(n % 2 == 1)
            row.setBackgroundRole(QPalette.ColorRole.AlternateBase)
        self.rows = kept
        self.grid.setUpdatesEnabled(True)
        self._show_state()

    def _show_state(self) -> None:
        if self.stand_id is None:
            message = tr("Choose a stand to count.")
        elif self.stock is None:
            message = tr("Loading the stand's stock…") if self.loading else ""
        elif not self.rows:
            message = tr("This stand carries no products yet, so there is nothing to count.")
        elif not any(not row.isHidden() for row in self.rows):
            message = tr("No SKU at this stand matches “{text}”.").format(
                text=self.search.text().strip()
            )
        else:
            message = ""
        self.empty.setText(message)
        self.stack.setCurrentWidget(self.empty if message else self.area)
        self.columns.setVisible(not message)

    def _data_changed(self, change: Changed) -> None:
        if (
            self.stand_id is not None
            and change.touches("inventory", "stands")
            and (not change.ids or self.stand_id in change.ids)
        ):
            self.refresh()

    # ------------------------------------------------------------------ finding and entering

    def focus_search(self) -> None:
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    def _filter(self, text: str) -> None:
        self.search_error.show_message("")
        words = text.casefold().split()
        for row in self.rows:
            row.setVisible(matches(search_text(row.item), words))
        self._show_state()

    def _search_entered(self) -> None:
        """Enter in the search box: a scanned barcode (or exact SKU) counts one more of it;
        otherwise, when the words match one SKU, go to its counted field."""
        text = self.search.text().strip()
        if not text or self.stock is None:
            return
        item = self.stock.find(text)
        if item is not None:
            row = self._row(item.product_id)
            if row is not None:
                current = row.counted.value() if row.is_entered() and not row.problem() else 0
                row.counted.setValue((current or 0) + 1)
                self.hint.setText(
                    tr("{name}: {n} counted").format(name=item.name, n=row.counted.text())
                )
                self.search.setText("")
                self._reveal(row)
            return
        visible = [row for row in self.rows if not row.isHidden()]
        if len(visible) == 1:
            self._reveal(visible[0])
            visible[0].counted.edit.setFocus()
            visible[0].counted.edit.selectAll()
            return
        self.search_error.show_message(
            tr("{n} SKUs match; pick one below.").format(n=len(visible))
            if visible
            else tr("No SKU with barcode, SKU or name “{text}” at this stand.").format(text=text)
        )
        self.search.selectAll()

    def _row(self, product_id: str) -> CountRow | None:
        return next((r for r in self.rows if r.item.product_id == product_id), None)

    def _reveal(self, row: CountRow) -> None:
        QTimer.singleShot(0, lambda: self._scroll_to(row))

    def _scroll_to(self, row: CountRow) -> None:
        if isValid(self) and isValid(row) and row in self.rows:
            self.area.ensureWidgetVisible(row)

    def _next_row(self, row: CountRow) -> None:
        """Enter in a counted field moves to the next SKU shown, for fast keyboard entry."""
        visible = [r for r in self.rows if not r.isHidden()]
        if row in visible and visible.index(row) + 1 < len(visible):
            nxt = visible[visible.index(row) + 1]
            nxt.counted.edit.setFocus(Qt.FocusReason.TabFocusReason)
            nxt.counted.edit.selectAll()
            self.area.ensureWidgetVisible(nxt)
        else:
            self.save_button.setFocus()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and event.text() == "="
        ):
            row = next((r for r in self.rows if r.counted.edit is watched), None)
            if row is not None:
                row.take_expected()
                return True
        return super().eventFilter(watched, event)

    def _row_changed(self, row: CountRow) -> None:
        row.update_state()
        self.counts_error.show_message("")
        self._update_summary()

    def _update_summary(self) -> None:
        counted = [(row, row.count()) for row in self.rows if row.count() is not None]
        bad = sum(1 for row in self.rows if row.problem())
        if not self.rows:
            self.summary.setText("")
            return
        total = sum((value or 0) - row.item.on_hand for row, value in counted)
        text = tr("{n} of {m} SKUs counted").format(n=len(counted), m=len(self.rows))
        if counted:
            text += " · " + tr("variance {v} units").format(v=signed(total))
        if bad:
            text += " · " + tr("{n} to correct").format(n=bad)
        self.summary.setText(text)

    # ------------------------------------------------------------------ saving

    def unsaved(self) -> int:
        """How many rows hold something typed that is not saved."""
        return sum(1 for row in self.rows if row.is_entered())

    def save(self) -> None:
        """Check the counts, then record the snapshot in the background."""
        if self.saving or self.stand_id is None or self.stock is None:
            return
        self.error.show_message("")
        self.counts_error.show_message("")
        bad = [row for row in self.rows if row.problem()]
        for row in self.rows:
            row.update_state()
        if bad:
            if bad[0].isHidden():
                self.search.setText("")
            self.counts_error.show_message(
                tr("Correct the counts marked in red; nothing was saved.")
            )
            self.area.ensureWidgetVisible(bad[0])
            bad[0].counted.edit.setFocus()
            bad[0].counted.edit.selectAll()
            return
        counts = {
            row.item.product_id: value for row in self.rows if (value := row.count()) is not None
        }
        if not counts:
            self.counts_error.show_message(
                tr(
                    "Nothing is counted yet: enter what is on the stand for at least one SKU "
                    "(leave a SKU empty to skip it), then save."
                )
            )
            return
        self.saving = True
        self._sent = {pid: row for row in self.rows if (pid := row.item.product_id) in counts}
        self.save_button.setEnabled(False)
        self.save_action.setEnabled(False)
        self.state_label.setText(tr("Saving…"))
        self.ctx.write(
            inventory.record_count,
            self.stand_id,
            counts,
            on_done=self._saved,
            on_error=self._save_failed,
        )

    def _saving_done(self) -> None:
        self.saving = False
        self.save_button.setEnabled(True)
        self.save_action.setEnabled(True)
        self.state_label.setText("")

    def _saved(self, result: CountResult) -> None:
        if not isValid(self):
            return
        self._saving_done()
        for pid, row in self._sent.items():
            if isValid(row) and row.count() == next(
                (line.counted for line in result.lines if line.product_id == pid), None
            ):
                row.counted.edit.clear()  # saved; a later edit is a new count
        self._sent = {}
        short = sum(1 for line in result.lines if line.variance < 0)
        over = sum(1 for line in result.lines if line.variance > 0)
        if short or over:
            text = tr(
                "Count saved: {skus}, total variance {v} units ({short} short, {over} over). "
                "The stock now follows the count."
            ).format(
                skus=plural(len(result.lines), "{n} SKU", "{n} SKUs"),
                v=signed(result.total_variance),
                short=short,
                over=over,
            )
        else:
            text = tr("Count saved: {skus}, all as expected.").format(
                skus=plural(len(result.lines), "{n} SKU", "{n} SKUs")
            )
        self.banner.setText(text)
        self.banner.setStyleSheet(OK_STYLE + " font-weight: 600;")
        self.banner.show()
        self._update_summary()
        self.ctx.changed("inventory", "stands", ids=(result.stand_id,))

    def _save_failed(self, exc: Exception) -> None:
        if not isValid(self):
            return
        self._saving_done()
        if isinstance(exc, DomainError):
            errors = {f"count:{pid}": row.error for pid, row in self._sent.items() if isValid(row)}
            errors["counts"] = self.counts_error
            show_error(errors, exc, self.error)
        else:
            self.error.show_message(
                tr("The count could not be saved ({error}); nothing was lost, try again.").format(
                    error=exc
                )
            )
        self._sent = {}

    # ------------------------------------------------------------------ leaving

    def can_leave(self) -> bool:
        """True when no count is waiting to be saved; otherwise ask whether to discard it."""
        n = self.unsaved()
        if not n or self.saving:
            return True
        answer = QMessageBox.question(
            self,
            tr("Discard this count?"),
            tr("The counts you entered are not saved (SKUs counted: {n}). Discard them?").format(
                n=n
            ),
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        if answer in (QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.Discard):
            for row in self.rows:
                row.counted.edit.clear()
            return True
        return False
