"""The stand list's table model: it holds the ordered ids and loads rows lazily, a page at a
time, so 10,000 stands scroll smoothly (after Anki's browser table model).

The model knows nothing of the database. It is given a *loader*, a function
``load(ids, deliver)`` that fetches the rows of ``ids`` (in the background, normally) and
calls ``deliver(rows)`` on the GUI thread when they arrive; a loader that calls ``deliver``
at once works too (tests, small lists). Until a row arrives, its cells read "…".

Sorting re-queries SQL: :meth:`sort` records the column and emits :attr:`sortRequested`
with the service's sort key; whoever owns the query answers with :meth:`set_ids`. Rows
already loaded are kept across a new id list (a new sort or filter shows the same data), and
:meth:`invalidate` marks them stale after a write: stale rows stay on screen until their
fresh copy arrives, so a refresh never flashes placeholders.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QLocale,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QApplication

from app.services.queries import StandRow
from ui.i18n import tr
from ui.widgets import local_time

#: The cell's native value (str, int, datetime or None) for sorting and tests.
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
#: The stand id of the row (known before the row is loaded).
ID_ROLE = Qt.ItemDataRole.UserRole + 2
#: The whole :class:`StandRow`, or None while it loads.
ROW_ROLE = Qt.ItemDataRole.UserRole + 3
#: True if the stand needs attention (None while it loads).
ATTENTION_ROLE = Qt.ItemDataRole.UserRole + 4

PLACEHOLDER = "…"
PAGE_SIZE = 200

Index = QModelIndex | QPersistentModelIndex
Deliver = Callable[[Sequence[StandRow]], None]
Loader = Callable[[Sequence[str], Deliver], None]


def humanize(value: str) -> str:
    """An enum value as words: "gas_station" -> "Gas station"."""
    return tr(value.replace("_", " ").capitalize())


class Column:
    __slots__ = ("align_right", "attr", "key", "title")

    def __init__(self, attr: str, title: str, key: str, *, align_right: bool = False) -> None:
        self.attr, self.title, self.key, self.align_right = attr, title, key, align_right


class StandListModel(QAbstractTableModel):
    """Rows of stands by id; see the module docstring."""

    COLUMNS = (
        Column("name", "Stand", "name"),
        Column("partner_name", "Partner", "partner"),
        Column("city", "City", "city"),
        Column("location_type", "Type", "type"),
        Column("status", "Status", "status"),
        Column("assigned_rep", "Rep", "rep"),
        Column("units_on_hand", "Units", "units", align_right=True),
        Column("low_count", "Low", "low", align_right=True),
        Column("out_count", "Out", "out", align_right=True),
        Column("open_refills", "Refills", "open_refills", align_right=True),
        Column("last_counted_at", "Last count", "last_count"),
    )

    #: The user asked for another order: (service sort key, descending).
    sortRequested = Signal(str, bool)
    #: Rows went out to the loader / came back (pending page count changed).
    loadingChanged = Signal(bool)

    def __init__(self, loader: Loader, *, page_size: int = PAGE_SIZE, parent: Any = None) -> None:
        super().__init__(parent)
        self._loader = loader
        self.page_size = max(1, page_size)
        self._ids: list[str] = []
        self._row_of: dict[str, int] = {}
        # id -> (generation it was loaded in, row); older generations are stale.
        self._cache: dict[str, tuple[int, StandRow]] = {}
        self._generation = 0
        # ids out at the loader, with the generation they were asked for in
        self._pending: dict[str, int] = {}
        self._requests = 0
        self._in_data = False
        self.sort_column = 0
        self.sort_order = Qt.SortOrder.AscendingOrder
        #: How many loader calls were made (the lazy-loading tests read this).
        self.load_calls = 0

    # ------------------------------------------------------------------ ids and pages

    def set_ids(self, ids: Sequence[str]) -> None:
        """Show these stands in this order. Loaded rows are kept (the data did not change)."""
        self.beginResetModel()
        self._ids = list(ids)
        self._row_of = {sid: i for i, sid in enumerate(self._ids)}
        self.endResetModel()

    def ids(self) -> list[str]:
        return list(self._ids)

    def row_of(self, stand_id: str) -> int:
        """The row showing ``stand_id``, or -1."""
        return self._row_of.get(stand_id, -1)

    def invalidate(self) -> None:
        """The data changed: loaded rows become stale and are fetched again when shown."""
        self._generation += 1
        self._pending.clear()

    def clear_cache(self) -> None:
        self.invalidate()
        self._cache.clear()

    @property
    def loading(self) -> bool:
        """True while some page is out at the loader."""
        return self._requests > 0

    def is_loaded(self, row: int) -> bool:
        """True if the row's data is fresh (not a placeholder or a stale copy)."""
        if not 0 <= row < len(self._ids):
            return False
        entry = self._cache.get(self._ids[row])
        return entry is not None and entry[0] == self._generation

    def stand_row(self, row: int) -> StandRow | None:
        if not 0 <= row < len(self._ids):
            return None
        entry = self._cache.get(self._ids[row])
        return entry[1] if entry else None

    def ensure_loaded(self, first: int, last: int) -> None:
        """Ask for the pages that hold rows ``first``..``last`` (what the view shows)."""
        if not self._ids:
            return
        first = max(0, first)
        last = min(len(self._ids) - 1, last)
        page = self.page_size
        for start in range(first - first % page, last + 1, page):
            self._request(start)

    def _request(self, start: int) -> None:
        gen = self._generation
        ids = [
            sid
            for sid in self._ids[start : start + self.page_size]
            if self._pending.get(sid) != gen
            and (sid not in self._cache or self._cache[sid][0] != gen)
        ]
        if not ids:
            return
        for sid in ids:
            self._pending[sid] = gen
        self._requests += 1
        self.load_calls += 1
        if self._requests == 1:
            self.loadingChanged.emit(True)
        self._loader(ids, functools.partial(self._deliver, gen, ids))

    def _deliver(self, generation: int, asked: list[str], rows: Sequence[StandRow]) -> None:
        self._requests = max(0, self._requests - 1)
        for sid in asked:
            if self._pending.get(sid) == generation:
                del self._pending[sid]
        if generation == self._generation:
            for r in rows:
                self._cache[r.id] = (generation, r)
            # A stand that vanished meanwhile keeps its stale row until the next id list.
            if not self._in_data:
                shown = sorted(self._row_of[s] for s in asked if s in self._row_of)
                if shown:
                    self.dataChanged.emit(
                        self.index(shown[0], 0), self.index(shown[-1], len(self.COLUMNS) - 1)
                    )
        if self._requests == 0:
            self.loadingChanged.emit(False)

    def load_failed(self) -> None:
        """The loader could not load a page: forget what is pending so it is asked again."""
        self._pending.clear()
        self._requests = 0
        self.loadingChanged.emit(False)

    # ------------------------------------------------------------------ Qt model API

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._ids)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self.COLUMNS):
            return None
        column = self.COLUMNS[section]
        if role == Qt.ItemDataRole.DisplayRole:
            return tr(column.title)
        if role == Qt.ItemDataRole.ToolTipRole:
            return tr("Sort by {column}").format(column=tr(column.title).lower())
        if role == Qt.ItemDataRole.TextAlignmentRole and column.align_right:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
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
        r, c = index.row(), index.column()
        if not (0 <= r < len(self._ids) and 0 <= c < len(self.COLUMNS)):
            return None
        sid = self._ids[r]
        if role == ID_ROLE:
            return sid
        entry = self._cache.get(sid)
        stale = entry is None or entry[0] != self._generation
        if stale and role in (Qt.ItemDataRole.DisplayRole, ROW_ROLE, SORT_ROLE, ATTENTION_ROLE):
            # Load the page (a loader that answers at once fills the cache right here).
            self._in_data = True
            try:
                self._request(r - r % self.page_size)
            finally:
                self._in_data = False
            entry = self._cache.get(sid)
        row = entry[1] if entry else None
        column = self.COLUMNS[c]
        if role == Qt.ItemDataRole.TextAlignmentRole:
            if column.align_right:
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            return int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        if row is None:
            if role == Qt.ItemDataRole.DisplayRole:
                return PLACEHOLDER if c == 0 else ""
            if role == Qt.ItemDataRole.ForegroundRole:
                return _palette(QPalette.ColorRole.PlaceholderText)
            return None
        value = getattr(row, column.attr)
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(column.attr, value)
        if role == SORT_ROLE:
            return value
        if role == ROW_ROLE:
            return row
        if role == ATTENTION_ROLE:
            return row.needs_attention
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(row) if c == 0 else None
        if role == Qt.ItemDataRole.DecorationRole and c == 0:
            # A blank icon keeps the names aligned whether or not the dot is there.
            return _attention_icon(row.needs_attention)
        if role == Qt.ItemDataRole.ForegroundRole:
            if column.attr == "out_count" and value:
                return _red()
            if column.attr == "low_count" and value:
                return _amber()
            if column.attr == "status" and value != "active":
                return _palette(QPalette.ColorRole.PlaceholderText)
            if column.align_right and value == 0:
                return _palette(QPalette.ColorRole.PlaceholderText)
        if role == Qt.ItemDataRole.FontRole and column.attr == "out_count" and value:
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.AccessibleTextRole and c == 0 and row.needs_attention:
            return tr("{name}, needs attention").format(name=row.name)
        return None

    @staticmethod
    def _display(attr: str, value: Any) -> str:
        if value is None:
            return "—" if attr == "last_counted_at" else ""
        if attr in ("location_type", "status"):
            return humanize(str(value))
        if isinstance(value, datetime):
            return local_time(value, date_only=True)
        if isinstance(value, int) and not isinstance(value, bool):
            return str(QLocale().toString(value))
        return str(value)

    @staticmethod
    def _tooltip(row: StandRow) -> str:
        if not row.needs_attention:
            return row.name
        reasons = []
        if row.out_count:
            reasons.append(tr("{n} out of stock").format(n=row.out_count))
        if row.low_count:
            reasons.append(tr("{n} low").format(n=row.low_count))
        if not reasons:
            reasons.append(tr("count overdue"))
        return tr("{name} needs attention: {reasons}").format(
            name=row.name, reasons=", ".join(reasons)
        )

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sort by re-querying: emit :attr:`sortRequested`; the answer comes as new ids."""
        if not 0 <= column < len(self.COLUMNS):
            return
        self.sort_column, self.sort_order = column, order
        self.sortRequested.emit(self.sort_key, self.descending)

    @property
    def sort_key(self) -> str:
        return self.COLUMNS[self.sort_column].key

    @property
    def descending(self) -> bool:
        return self.sort_order == Qt.SortOrder.DescendingOrder


def _palette(role: QPalette.ColorRole) -> QColor:
    app = QApplication.instance()
    palette = app.palette() if isinstance(app, QApplication) else QPalette()
    return palette.color(role)


def _dark() -> bool:
    return _palette(QPalette.ColorRole.Base).lightness() < 128


def tone(kind: str) -> QColor:
    """A text colour for "out", "low", "attention", "good" or "muted" that reads on the
    current palette's base, light or dark (Material 800 shades on light, 200-300 on dark)."""
    if kind == "muted":
        return _palette(QPalette.ColorRole.PlaceholderText)
    dark = _dark()
    colours = {
        "out": ("#c62828", "#ef9a9a"),
        "low": ("#b45309", "#ffcc80"),
        "attention": ("#e65100", "#ffb74d"),
        "good": ("#2e7d32", "#a5d6a7"),
    }
    light_colour, dark_colour = colours.get(kind, ("#000000", "#ffffff"))
    return QColor(dark_colour if dark else light_colour)


def tint(kind: str) -> QColor:
    """A translucent row background for "out" or "low": the palette's own text stays
    readable on it in light and dark themes."""
    return QColor(229, 57, 53, 56) if kind == "out" else QColor(251, 140, 0, 48)


def _red() -> QColor:
    return tone("out")


def _amber() -> QColor:
    return tone("low")


def _attention_colour() -> QColor:
    return tone("attention")


_icons: dict[str, QIcon] = {}


def _attention_icon(shown: bool) -> QIcon:
    """A filled dot in the attention colour, or a blank of the same size (made once per
    palette brightness)."""
    colour = _attention_colour() if shown else QColor(Qt.GlobalColor.transparent)
    key = colour.name(QColor.NameFormat.HexArgb)
    if key not in _icons:
        pixmap = QPixmap(16, 16)
        pixmap.fill(Qt.GlobalColor.transparent)
        if shown:
            painter = QPainter(pixmap)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(colour)
            painter.drawEllipse(3, 3, 10, 10)
            painter.end()
        _icons[key] = QIcon(pixmap)
    return _icons[key]
