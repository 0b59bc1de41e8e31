"""Stands: the searchable, sortable, filterable list of every stand in the program.

The table's model holds only the ordered ids (:mod:`ui.stand_list_model`); the ids come from
one SQL query per search, filter or sort (:func:`app.services.stand_views.stand_ids`) and
rows are fetched a page at a time, in the background, for the part of the list on screen.
So a 10,000-stand program opens, filters and sorts without the window ever waiting
(``bench/bench_stand_list.py`` measures it).

Keyboard: Ctrl+F searches, Down or Enter moves from the search box into the list, Enter opens
the selected stand, Alt+N shows only stands that need attention; the row menu (right click,
or the Menu key) holds the stand's actions with their shortcuts. Touch: the list scrolls
kinetically and a tap opens a stand.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence
from typing import Any, cast

from PySide6.QtCore import (
    QEvent,
    QLocale,
    QModelIndex,
    QObject,
    QPoint,
    QStringListModel,
    Qt,
    QTimer,
)
from PySide6.QtGui import QAction, QInputDevice, QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QCompleter,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QScroller,
    QSizePolicy,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.models.enums import LocationType, StandStatus
from app.services import stand_views
from app.services.queries import StandRow
from app.services.stand_views import FilterChoices, StandFilters, StandIdList
from ui.context import Changed, UiContext
from ui.i18n import tr
from ui.stand_list_model import ID_ROLE, Deliver, StandListModel, humanize
from ui.widgets import TOUCH, EmptyState

#: How long typing pauses before the search runs.
SEARCH_DELAY_MS = 250
#: Kinds of change (see :class:`ui.context.Changed`) that alter what the list shows.
LIST_KINDS = ("stands", "inventory", "refills", "partners", "sales", "counts")
#: Columns hidden first when the list is narrow (least useful first).
NARROW_HIDE = ("last_count", "low", "rep", "city", "open_refills")
#: Room the stand and partner names need each before other columns give way.
NAME_MIN = 190

#: Stand actions offered on a row: (navigate target, label, shortcut).
ROW_ACTIONS = (
    ("sale", "Record sale", "Ctrl+Shift+S"),
    ("count", "Count stock", "Ctrl+Shift+C"),
    ("refill", "Request refill", "Ctrl+Shift+R"),
)


class StandsView(QWidget):
    title = "Stands"

    def __init__(self, ctx: UiContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.setObjectName("StandsView")
        self._token = 0
        self._ids_loading = False
        self._loaded_once = False
        self._keep_position = False
        self._choices_token = 0
        self._partner_ids: list[str] = []
        self.result: StandIdList | None = None
        self.error: str | None = None

        # ---------------------------------------------------------- search and filters
        self.search = QLineEdit()
        self.search.setObjectName("StandSearch")
        self.search.setPlaceholderText(tr("Search stands, partners, cities, addresses…"))
        self.search.setToolTip(tr("Search (Ctrl+F); Down or Enter moves into the list"))
        self.search.setAccessibleName(tr("Search stands"))
        self.search.setClearButtonEnabled(True)
        self.search.setMinimumHeight(TOUCH)
        self.search.installEventFilter(self)

        self.attention = QPushButton(tr("&Needs attention"))
        self.attention.setObjectName("AttentionFilter")
        self.attention.setCheckable(True)
        self.attention.setMinimumHeight(TOUCH)
        self.attention.setToolTip(
            tr(
                "Only stands that need a visit: a product low or out of stock, or not "
                "counted for four weeks (Alt+N)"
            )
        )

        self.status_combo = self._combo(
            tr("All statuses"), [(humanize(s.value), s.value) for s in StandStatus], "Status"
        )
        self.type_combo = self._combo(
            tr("All types"), [(humanize(t.value), t.value) for t in LocationType], "Type"
        )
        self.rep_combo = self._combo(tr("All reps"), [], "Rep")
        self.partner_combo = QComboBox()
        self.partner_combo.setObjectName("PartnerFilter")
        self.partner_combo.setEditable(True)
        self.partner_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.partner_combo.setMinimumHeight(TOUCH)
        self.partner_combo.setMinimumContentsLength(14)
        self.partner_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.partner_combo.setAccessibleName(tr("Partner"))
        self.partner_combo.setToolTip(tr("Only the stands of one partner; type to find them"))
        self._pending_partner: str | None = None
        self._partner_model = QStringListModel([tr("All partners")], self)
        self.partner_combo.setModel(self._partner_model)
        completer = QCompleter(self._partner_model, self.partner_combo)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        self.partner_combo.setCompleter(completer)
        line = self.partner_combo.lineEdit()
        assert line is not None  # the combo is editable
        line.setPlaceholderText(tr("All partners"))
        line.editingFinished.connect(self._partner_text_done)

        self.clear_button = QPushButton(tr("&Clear filters"))
        self.clear_button.setMinimumHeight(TOUCH)
        self.clear_button.setToolTip(tr("Show every stand again (Alt+C)"))
        self.clear_button.setEnabled(False)
        self.clear_button.clicked.connect(self.clear_filters)

        self.count_label = QLabel()
        self.count_label.setObjectName("StandCount")
        self.count_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.count_label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)

        # ---------------------------------------------------------- the table
        self.model = StandListModel(self._load_rows, parent=self)
        self.model.loadingChanged.connect(self._update_count)
        self.table = QTableView()
        self.table.setObjectName("StandTable")
        self.table.setAccessibleName(tr("Stands"))
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.table.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.table.setTabKeyNavigation(False)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._row_menu)
        vheader = self.table.verticalHeader()
        vheader.setVisible(False)
        vheader.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vheader.setDefaultSectionSize(TOUCH)
        header = self.table.horizontalHeader()
        header.setMinimumHeight(TOUCH)
        header.setHighlightSections(False)
        header.setSortIndicatorShown(True)
        header.setSectionsClickable(True)
        # Fixed widths: sizing to contents would read every row and defeat lazy loading.
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(False)
        # The stand's name takes the spare room; the partner's column is sized to match.
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self._column_widths()
        header.setSortIndicator(0, Qt.SortOrder.AscendingOrder)
        self.table.setSortingEnabled(True)
        # Connected after enabling sorting, which sorts once: the first load is refresh().
        self.model.sortRequested.connect(self._sort_requested)
        self.table.doubleClicked.connect(self._open_index)
        self.table.installEventFilter(self)
        self.table.viewport().installEventFilter(self)
        self.table.verticalScrollBar().valueChanged.connect(self._load_visible)
        QScroller.grabGesture(self.table.viewport(), QScroller.ScrollerGestureType.TouchGesture)
        self._touch_press: QPoint | None = None

        self.empty_label = EmptyState("")
        self.empty_label.setObjectName("StandsEmpty")
        self.empty_action = QPushButton()
        self.empty_action.setMinimumHeight(TOUCH)
        self.empty_action.clicked.connect(self._empty_action_clicked)
        empty = QWidget()
        empty_layout = QVBoxLayout(empty)
        empty_layout.addStretch(1)
        empty_layout.addWidget(self.empty_label)
        empty_layout.addWidget(self.empty_action, 0, Qt.AlignmentFlag.AlignHCenter)
        empty_layout.addStretch(2)
        self.pages = QStackedWidget()
        self.pages.addWidget(self.table)
        self.pages.addWidget(empty)

        # ---------------------------------------------------------- layout
        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        top.addWidget(self.count_label)
        top.addWidget(self.attention)
        filters = QHBoxLayout()
        for combo in (self.status_combo, self.type_combo, self.rep_combo):
            filters.addWidget(combo)
        filters.addWidget(self.partner_combo, 1)
        filters.addWidget(self.clear_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addLayout(filters)
        layout.addWidget(self.pages, 1)

        # ---------------------------------------------------------- behaviour
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(SEARCH_DELAY_MS)
        self._debounce.timeout.connect(self.reload)
        self.search.textChanged.connect(lambda _t: self._debounce.start())
        self.attention.toggled.connect(lambda _on: self.reload())
        for combo in (self.status_combo, self.type_combo, self.rep_combo, self.partner_combo):
            combo.currentIndexChanged.connect(lambda _i: self.reload())

        find = QAction(tr("Find"), self)
        find.setShortcut(QKeySequence.StandardKey.Find)
        find.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        find.triggered.connect(self.focus_search)
        self.addAction(find)
        self.row_actions: list[QAction] = []
        for target, label, shortcut in ROW_ACTIONS:
            action = QAction(tr(label), self)
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            action.setToolTip(f"{tr(label)} ({shortcut})")
            action.triggered.connect(functools.partial(self._navigate_current, target))
            self.addAction(action)
            self.row_actions.append(action)

        ctx.data_changed.connect(self._on_changed)
        self._update_count()

    # ------------------------------------------------------------------ public API

    @property
    def loading(self) -> bool:
        """True while the id list or a page of rows is being loaded."""
        return self._ids_loading or self.model.loading

    def filters(self) -> StandFilters:
        """The filters as the user has set them."""
        return StandFilters(
            search=self.search.text().strip() or None,
            status=self.status_combo.currentData(),
            partner_id=self._partner_id(),
            rep=self.rep_combo.currentData(),
            location_type=self.type_combo.currentData(),
            needs_attention=True if self.attention.isChecked() else None,
        )

    def open(self, arg: object) -> None:
        """Show the stands of one partner: ``open({"partner_id": ...})`` (Partners screen)."""
        partner_id = arg.get("partner_id") if isinstance(arg, dict) else None
        self._pending_partner = partner_id if isinstance(partner_id, str) else None
        self.refresh()

    def refresh(self) -> None:
        """Load everything again (filter choices, ids, rows), keeping the place in the list."""
        self._load_choices()
        self.model.invalidate()
        self._load_ids(keep_position=self._loaded_once)

    def reload(self) -> None:
        """Run the query again for new filters (rows already loaded are still good)."""
        self._debounce.stop()
        self._load_ids(keep_position=False)

    def clear_filters(self) -> None:
        widgets = (self.search, self.attention, *self._combos(), self.partner_combo)
        for w in widgets:
            w.blockSignals(True)
        self.search.clear()
        self.attention.setChecked(False)
        for combo in (*self._combos(), self.partner_combo):
            combo.setCurrentIndex(0)
        self.partner_combo.setEditText("")
        for w in widgets:
            w.blockSignals(False)
        self.reload()

    def focus_search(self) -> None:
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    def current_stand_id(self) -> str | None:
        index = self.table.currentIndex()
        if not index.isValid():
            return None
        return str(index.data(ID_ROLE))

    def open_current(self) -> None:
        self._open_index(self.table.currentIndex())

    # ------------------------------------------------------------------ loading

    def _load_ids(self, *, keep_position: bool) -> None:
        self._token += 1
        token = self._token
        self._ids_loading = True
        self._keep_position = keep_position
        self._loaded_once = True
        self._update_count()
        self.ctx.read(
            stand_views.stand_ids,
            self.filters(),
            order_by=self.model.sort_key,
            descending=self.model.descending,
            on_done=functools.partial(self._show_ids, token),
            on_error=functools.partial(self._ids_failed, token),
        )

    def _show_ids(self, token: int, result: StandIdList) -> None:
        if token != self._token:
            return  # a newer query is on its way
        self._ids_loading = False
        self.error = None
        current = self.current_stand_id() if self._keep_position else None
        scroll = self.table.verticalScrollBar().value() if self._keep_position else 0
        self.result = result
        self.model.set_ids(result.ids)
        row = self.model.row_of(current) if current else -1
        if row >= 0:
            self.table.selectRow(row)
            self.table.verticalScrollBar().setValue(scroll)
        else:
            self.table.scrollToTop()
        self._show_page()
        self._load_visible()
        self._update_count()

    def _ids_failed(self, token: int, exc: Exception) -> None:
        if token != self._token:
            return
        self._ids_loading = False
        self.error = str(exc)
        self._update_count()
        self.ctx.status.emit(tr("Could not load stands: {error}").format(error=exc))

    def _load_rows(self, ids: Sequence[str], deliver: Deliver) -> None:
        """The model's loader: one page of rows from the database lane."""

        def failed(exc: Exception) -> None:
            self.model.load_failed()
            self.ctx.status.emit(tr("Could not load stands: {error}").format(error=exc))

        self.ctx.read(stand_views.rows_for_ids, list(ids), on_done=deliver, on_error=failed)

    def _load_visible(self, *_args: Any) -> None:
        """Fetch the pages on screen now, rather than when they are painted (and the next
        one, so scrolling on finds rows ready)."""
        if not self.model.rowCount():
            return
        first = max(0, self.table.rowAt(0))
        rows_on_screen = max(1, self.table.viewport().height() // TOUCH + 1)
        last = first + rows_on_screen
        self.model.ensure_loaded(first, last)
        if last + rows_on_screen < self.model.rowCount():
            self.model.ensure_loaded(last + rows_on_screen, last + rows_on_screen)

    def _load_choices(self) -> None:
        self._choices_token += 1
        token = self._choices_token
        self.ctx.read(
            stand_views.filter_choices,
            on_done=functools.partial(self._show_choices, token),
        )

    def _show_choices(self, token: int, choices: FilterChoices) -> None:
        if token != self._choices_token:
            return
        rep = self.rep_combo.currentData()
        partner = self._partner_id()
        self._pending_partner = None
        self.rep_combo.blockSignals(True)
        while self.rep_combo.count() > 1:
            self.rep_combo.removeItem(1)
        for name in choices.reps:
            self.rep_combo.addItem(name, name)
        self.rep_combo.setCurrentIndex(max(0, self.rep_combo.findData(rep)) if rep else 0)
        self.rep_combo.blockSignals(False)
        # Partners can number thousands: one model reset, not an item at a time.
        names = Counter(p.name for p in choices.partners)
        labels = [
            f"{p.name} · {p.city}" if names[p.name] > 1 and p.city else p.name
            for p in choices.partners
        ]
        self.partner_combo.blockSignals(True)
        self._partner_ids = ["", *(p.id for p in choices.partners)]
        self._partner_model.setStringList([tr("All partners"), *labels])
        row = self._partner_ids.index(partner) if partner in self._partner_ids else 0
        self.partner_combo.setCurrentIndex(row)
        if row == 0:
            self.partner_combo.setEditText("")
        self.partner_combo.blockSignals(False)

    # ------------------------------------------------------------------ showing

    def _show_page(self) -> None:
        result = self.result
        empty = result is not None and result.total == 0
        self.pages.setCurrentIndex(1 if empty else 0)
        if not empty or result is None:
            return
        if result.program_total == 0:
            self.empty_label.setText(
                tr("No stands yet. Onboard a partner to place the program's first stand.")
            )
            self.empty_action.setText(tr("Onboard a partner"))
        else:
            self.empty_label.setText(tr("No stands match these filters."))
            self.empty_action.setText(tr("Clear filters"))

    def _empty_action_clicked(self) -> None:
        if self.result is not None and self.result.program_total == 0:
            self.ctx.navigate.emit("onboarding", None)
        else:
            self.clear_filters()

    def _update_count(self, *_args: Any) -> None:
        self.clear_button.setEnabled(self.filters().active)
        result = self.result
        if result is None:
            self.count_label.setText(tr("Loading stands…") if self._ids_loading else "")
            return
        if self.error:
            text = tr("Could not load stands: {error}").format(error=self.error)
        elif result.total == result.program_total:
            text = tr("{n} stands").format(n=_n(result.total))
        else:
            text = tr("{n} of {total} stands").format(
                n=_n(result.total), total=_n(result.program_total)
            )
        if not self.error and result.attention:
            text += " · " + tr("{n} need attention").format(n=_n(result.attention))
        if self.loading:
            text += " · " + tr("loading…")
        self.count_label.setText(text)

    def _column_widths(self) -> None:
        metrics = self.table.fontMetrics()
        pad = 28  # cell margins and the sort arrow
        samples = {
            "city": "Braunschweig",
            "type": "Gas station",
            "status": "Planned",
            "rep": "rep.david",
            "units": "Units",
            "low": "Low",
            "out": "Out",
            "open_refills": "Refills",
            "last_count": "30.12.2025",
        }
        header = self.table.horizontalHeader()
        for col, column in enumerate(StandListModel.COLUMNS):
            if column.key in samples:
                text = max(samples[column.key], tr(column.title), key=metrics.horizontalAdvance)
                header.resizeSection(col, metrics.horizontalAdvance(text) + pad)

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._fit_columns()

    def _fit_columns(self) -> None:
        """Hide the least useful columns when the names would get too little room, and give
        the partner column two fifths of what the names have."""
        header = self.table.horizontalHeader()
        keys = [c.key for c in StandListModel.COLUMNS]
        for key in NARROW_HIDE:
            header.setSectionHidden(keys.index(key), False)
        room = self.table.viewport().width() or self.width()

        def names_room() -> int:
            fixed = sum(
                header.sectionSize(i) for i in range(2, len(keys)) if not header.isSectionHidden(i)
            )
            return room - fixed

        for key in NARROW_HIDE:
            if names_room() >= 2 * NAME_MIN:
                break
            header.setSectionHidden(keys.index(key), True)
        header.resizeSection(1, max(NAME_MIN - 30, min(320, names_room() * 2 // 5)))

    # ------------------------------------------------------------------ interaction

    def _combo(self, all_text: str, items: list[tuple[str, str]], name: str) -> QComboBox:
        combo = QComboBox()
        combo.setObjectName(f"{name}Filter")
        combo.setMinimumHeight(TOUCH)
        combo.setAccessibleName(tr(name))
        combo.setToolTip(tr("Filter by {what}").format(what=tr(name).lower()))
        combo.addItem(all_text, None)
        for text, value in items:
            combo.addItem(text, value)
        return combo

    def _combos(self) -> tuple[QComboBox, ...]:
        return (self.status_combo, self.type_combo, self.rep_combo)

    def _partner_id(self) -> str | None:
        if self._pending_partner is not None:  # asked for before the choices have loaded
            return self._pending_partner
        row = self.partner_combo.currentIndex()
        if 0 < row < len(self._partner_ids) and self.partner_combo.currentText():
            return self._partner_ids[row]
        return None

    def _partner_text_done(self) -> None:
        """Typed text that names no partner means "all partners"."""
        text = self.partner_combo.currentText().strip()
        if not text and self.partner_combo.currentIndex() != 0:
            self.partner_combo.setCurrentIndex(0)
            self.partner_combo.setEditText("")
        elif text:
            row = self.partner_combo.findText(text, Qt.MatchFlag.MatchFixedString)
            if row < 0:
                self.partner_combo.setCurrentIndex(0)
                self.partner_combo.setEditText("")
            elif row != self.partner_combo.currentIndex():
                self.partner_combo.setCurrentIndex(row)

    def _sort_requested(self, _key: str, _descending: bool) -> None:
        if self._loaded_once:
            self.reload()

    def _open_index(self, index: QModelIndex) -> None:
        if index.isValid():
            self.ctx.navigate.emit("stand", str(index.data(ID_ROLE)))

    def _navigate_current(self, target: str, *_args: Any) -> None:
        stand_id = self.current_stand_id()
        if stand_id:
            self.ctx.navigate.emit(target, stand_id)

    def _row_menu(self, pos: QPoint) -> None:
        index = self.table.indexAt(pos)
        if not index.isValid():
            return
        self.table.setCurrentIndex(index)
        row: StandRow | None = self.model.stand_row(index.row())
        menu = QMenu(self)
        open_action = menu.addAction(tr("Open stand"))
        open_action.setShortcut(QKeySequence(Qt.Key.Key_Return))
        open_action.triggered.connect(self.open_current)
        menu.addSeparator()
        for action in self.row_actions:
            menu.addAction(action)
        if row is not None and row.status != StandStatus.ACTIVE.value:
            self.row_actions[0].setEnabled(False)
        menu.aboutToHide.connect(lambda: self.row_actions[0].setEnabled(True))
        menu.popup(self.table.viewport().mapToGlobal(pos))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if watched is self.search and kind == QEvent.Type.KeyPress:
            key = cast(QKeyEvent, event).key()
            if key in (Qt.Key.Key_Down, Qt.Key.Key_Return, Qt.Key.Key_Enter):
                self._enter_list()
                return True
            if key == Qt.Key.Key_Escape and self.search.text():
                self.search.clear()
                return True
        elif watched is self.table and kind == QEvent.Type.KeyPress:
            if cast(QKeyEvent, event).key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                self.open_current()
                return True
        elif watched is self.table.viewport() and kind in (
            QEvent.Type.MouseButtonPress,
            QEvent.Type.MouseButtonRelease,
        ):
            self._touch_tap(event)
        return super().eventFilter(watched, event)

    def _touch_tap(self, event: Any) -> None:
        """A tap (a touch that did not move) opens the stand; a mouse needs a double click."""
        device = event.pointingDevice()
        if device is None or device.type() != QInputDevice.DeviceType.TouchScreen:
            return
        pos = event.position().toPoint()
        if event.type() == QEvent.Type.MouseButtonPress:
            self._touch_press = pos
            return
        start, self._touch_press = self._touch_press, None
        if start is not None and (pos - start).manhattanLength() < 12:
            self._open_index(self.table.indexAt(pos))

    def _enter_list(self) -> None:
        if not self.model.rowCount():
            return
        self.table.setFocus(Qt.FocusReason.OtherFocusReason)
        if not self.table.currentIndex().isValid():
            self.table.selectRow(0)

    def _on_changed(self, change: Changed) -> None:
        if change.touches(*LIST_KINDS):
            self.refresh()

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self._fit_columns()
        # Shown without refresh() (the window calls it, but a test or a dock may not).
        QTimer.singleShot(0, self, self._first_load)

    def _first_load(self) -> None:
        if not self._loaded_once:
            self.refresh()


def _n(value: int) -> str:
    return str(QLocale().toString(value))
