"""Expansion sites: candidate places for new stands, ranked by the coach's score.

The table lists the candidates (open ones by default) best first: name, city, location type,
the expected revenue per day (the analogues' 25–75 % range after cannibalisation, such as
"€38–55/day"), the score 0–100, how many analogue stands justify it, and status and source.
The panel beside shows the selected site: its place and attributes, the range and score, the
analogue stands with their revenue per day and distance, and the cannibalisation note.

Actions: **Add site…** (a dialog; a refused field shows its message beside it and nothing
typed is lost), **Import CSV…** (all or nothing: a file with bad rows lists each line's
error and imports nothing), **Score now** (scores every open site in the background; partner
leads, planned stands of partners not live yet, join the list then), and **Accept** /
**Reject…** (managers; a rejection needs a reason). Reps view and add; partners only read.

The coach's expansion module loads numpy, so it is imported on the database lane only (the
wrappers below), never on the GUI thread when the screen opens.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.errors import DomainError
from app.models import LocationType
from app.services.base import MANAGERS, STAFF, Actor
from ui.context import Changed, LatestRead, UiContext
from ui.i18n import tr
from ui.views.refill_dialogs import RefillDialog
from ui.widgets import (
    TOUCH,
    EmptyState,
    FieldError,
    kinetic,
    list_and_detail,
    plural,
    with_shortcut,
)

if TYPE_CHECKING:
    from types import ModuleType

    from app.coach.expansion import CandidateRow, CandidateScore, ImportResult

Index = QModelIndex | QPersistentModelIndex
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
ID_ROLE = Qt.ItemDataRole.UserRole + 2

#: Data changes that change what the screen shows.
KINDS = ("expansion", "stands", "partners")
SOURCE_LABELS = {"manual": "Entered", "csv": "CSV import", "partner_lead": "Partner lead"}
STATUS_LABELS = {"open": "Open", "accepted": "Accepted", "rejected": "Rejected"}
STATUS_FILTERS = (
    ("open", "Open sites"),
    ("accepted", "Accepted"),
    ("rejected", "Rejected"),
    ("all", "All sites"),
)
#: Screen actions: name -> (text, keys, tip).
ACTIONS = {
    "add": ("Add site…", "Ctrl+Shift+N", "Enter a candidate place for a new stand"),
    "import": (
        "Import CSV…",
        "Ctrl+Shift+I",
        "Import candidate places from a CSV file (all rows or none)",
    ),
    "score": ("Score now", "Ctrl+Shift+S", "Score every open site against our best stands"),
    "accept": ("Accept", "Ctrl+Shift+A", "Accept the site: a stand will go there"),
    "reject": ("Reject…", "Ctrl+Shift+X", "Reject the site, with a reason"),
}
MANAGERS_ONLY = "Only managers accept or reject sites."
STAFF_ONLY = "Only staff add, import or score sites."
#: Optional attributes the Add dialog asks for: (key, label, placeholder).
DIALOG_ATTRIBUTES = (
    ("footfall_per_day", "Footfall per day", "People passing per day, e.g. 1200"),
    ("area_m2", "Area (m²)", "Shop floor, e.g. 80"),
)


# --------------------------------------------------------------- database lane (worker)
# ``session`` is a SQLAlchemy session; the GUI package never imports SQLAlchemy itself.
Session = Any


def _expansion() -> ModuleType:
    from app.coach import expansion

    return expansion


def load_candidates(
    session: Session, status: str
) -> tuple[list[CandidateRow], dict[str, CandidateScore]]:
    """The sites, and their stored scores with the analogues behind them."""
    ex = _expansion()
    rows: list[CandidateRow] = ex.list_candidates(session, status=status)
    scores: dict[str, CandidateScore] = ex.stored_scores(session)
    return rows, scores


def add_site(
    session: Session, actor: Actor, fields: dict[str, Any], attributes: dict[str, str]
) -> CandidateRow:
    ex = _expansion()
    row: CandidateRow = ex.add_candidate(
        session, actor, ex.CandidateInput(**fields, attributes=attributes)
    )
    return row


def import_sites(session: Session, actor: Actor, path: str) -> ImportResult:
    result: ImportResult = _expansion().import_candidates_csv(session, actor, Path(path))
    return result


def score_sites(session: Session, actor: Actor) -> list[CandidateScore]:
    del actor  # scoring is the coach's, whoever asks for it
    scores: list[CandidateScore] = _expansion().score_candidates(session)
    return scores


def decide(
    session: Session, actor: Actor, candidate_id: str, status: str, reason: str | None = None
) -> CandidateRow:
    row: CandidateRow = _expansion().set_candidate_status(
        session, actor, candidate_id, status, reason=reason
    )
    return row


# --------------------------------------------------------------- formatting


def euros(value: Decimal) -> str:
    return f"€{value:.0f}" if value >= 10 else f"€{value:.2f}"


def range_text(low: Decimal | None, high: Decimal | None) -> str:
    """The expected revenue per day as "€38–55/day" (one figure when both round alike)."""
    if low is None or high is None:
        return ""
    a, b = euros(low), euros(high)
    return f"{a}/day" if a == b else f"{a}–{b[1:]}/day"


def type_text(location_type: str) -> str:
    return tr(location_type.replace("_", " ").capitalize())


def status_text(row: CandidateRow) -> str:
    source = tr(SOURCE_LABELS.get(row.source, row.source))
    return f"{tr(STATUS_LABELS.get(row.status, row.status))} · {source}"


def _km(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value * 1000:.0f} m" if value < 1 else f"{value:.1f} km"


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --------------------------------------------------------------- the table


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    tip: str


COLUMNS = (
    Column("name", "Site", "The candidate place"),
    Column("city", "City", ""),
    Column("type", "Type", "Location type"),
    Column("expected", "Expected", "Expected revenue per day: the likely range (25–75 %)"),
    Column("score", "Score", "0–100: how well it should do against our stands"),
    Column("analogues", "Analogues", "Stands like it that justify the range"),
    Column("status", "Status", "Status and where the site came from"),
)
COLUMN_INDEX = {c.key: i for i, c in enumerate(COLUMNS)}


class CandidateModel(QAbstractTableModel):
    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.rows: list[CandidateRow] = []
        self.scores: dict[str, CandidateScore] = {}

    def set_rows(self, rows: list[CandidateRow], scores: dict[str, CandidateScore]) -> None:
        self.beginResetModel()
        self.rows, self.scores = rows, scores
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return tr(COLUMNS[section].title)
        if role == Qt.ItemDataRole.ToolTipRole and COLUMNS[section].tip:
            return tr(COLUMNS[section].tip)
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        r = self.rows[index.row()]
        key = COLUMNS[index.column()].key
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(r, key)
        if role == SORT_ROLE:
            return self._sort(r, key)
        if role == ID_ROLE:
            return r.id
        if role == Qt.ItemDataRole.TextAlignmentRole and key in ("expected", "score", "analogues"):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            if key == "name":
                return ", ".join(x for x in (r.name, r.address, r.city) if x)
            if key == "analogues" and r.id not in self.scores and r.score is not None:
                return tr("Score now to see the stands behind the range")
        return None

    def _display(self, r: CandidateRow, key: str) -> str:
        if key == "name":
            return r.name
        if key == "city":
            return r.city or ""
        if key == "type":
            return type_text(r.location_type)
        if key == "expected":
            return range_text(r.expected_low, r.expected_high) or "–"
        if key == "score":
            return "–" if r.score is None else str(r.score)
        if key == "analogues":
            s = self.scores.get(r.id)
            return "–" if s is None else str(len(s.analogues))
        return status_text(r)

    def _sort(self, r: CandidateRow, key: str) -> Any:
        if key == "score":
            return -1 if r.score is None else r.score
        if key == "expected":
            return float(r.expected_low) if r.expected_low is not None else -1.0
        if key == "analogues":
            s = self.scores.get(r.id)
            return -1 if s is None else len(s.analogues)
        return self._display(r, key).casefold()


# --------------------------------------------------------------- dialogs


def _field(widget: QWidget, error: FieldError) -> QWidget:
    """A field with its error message under it."""
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(2)
    layout.addWidget(widget)
    layout.addWidget(error)
    return box


class AddSiteDialog(RefillDialog):
    """Enter a candidate place; the service checks it, and a refusal shows beside the
    field it is about (the dialog stays open with everything typed)."""

    def __init__(self, ctx: UiContext, parent: QWidget | None = None) -> None:
        super().__init__(ctx, tr("Add a candidate site"), tr("Add site"), parent)
        self.setObjectName("add_site_dialog")
        self.setMinimumWidth(460)
        self.edits: dict[str, QLineEdit] = {}
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        specs = (
            ("name", "Name", "e.g. Kiosk Hauptbahnhof"),
            ("address", "Address", "Street and number"),
            ("city", "City", ""),
            ("latitude", "Latitude", "e.g. 52.5200"),
            ("longitude", "Longitude", "e.g. 13.4050"),
        )
        for key, label, hint in specs:
            edit = QLineEdit()
            edit.setObjectName(key)
            edit.setMinimumHeight(TOUCH)
            edit.setPlaceholderText(tr(hint))
            self.edits[key] = edit
            self.errors[key] = FieldError()
            form.addRow(tr(label), _field(edit, self.errors[key]))
        self.location_type = QComboBox()
        self.location_type.setObjectName("location_type")
        self.location_type.setMinimumHeight(TOUCH)
        self.location_type.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.location_type.addItem(tr("Choose…"), "")
        for t in LocationType:
            self.location_type.addItem(type_text(t.value), t.value)
        self.errors["location_type"] = FieldError()
        form.addRow(tr("Location type"), _field(self.location_type, self.errors["location_type"]))
        for key, label, hint in DIALOG_ATTRIBUTES:
            edit = QLineEdit()
            edit.setObjectName(key)
            edit.setMinimumHeight(TOUCH)
            edit.setPlaceholderText(tr(hint))
            self.edits[key] = edit
            field = f"attributes.{key}"
            self.errors[field] = FieldError()
            form.addRow(tr(label), _field(edit, self.errors[field]))
        note = QLabel(tr("Footfall and area are optional; they make the comparison sharper."))
        note.setWordWrap(True)
        note.setStyleSheet("color: palette(mid);")
        self.body.addLayout(form)
        self.body.addWidget(note)
        self.edits["name"].setFocus()

    def collect(self) -> tuple[Any, tuple[Any, ...], dict[str, Any]] | None:
        text = {k: e.text().strip() for k, e in self.edits.items()}
        fields = {
            "name": text["name"],
            "address": text["address"] or None,
            "city": text["city"] or None,
            "latitude": text["latitude"] or None,
            "longitude": text["longitude"] or None,
            "location_type": str(self.location_type.currentData() or ""),
        }
        attributes = {key: text[key] for key, _l, _h in DIALOG_ATTRIBUTES if text[key]}
        return add_site, (fields, attributes), {}

    def _failed(self, exc: Exception) -> None:
        super()._failed(exc)
        field = exc.field if isinstance(exc, DomainError) else None
        target = self.location_type if field == "location_type" else self.edits.get(field or "")
        if target is None and field and field.startswith("attributes."):
            target = self.edits.get(field.removeprefix("attributes."))
        if target is not None:
            target.setFocus()


class RejectDialog(RefillDialog):
    """Reject a site; the reason is required and kept with it."""

    def __init__(self, ctx: UiContext, row: CandidateRow, parent: QWidget | None = None) -> None:
        super().__init__(ctx, tr("Reject site"), tr("Reject"), parent)
        self.row = row
        self.setObjectName("reject_dialog")
        head = QLabel(f"<b>{_html(row.name)}</b>")
        note = QLabel(tr("Why is this not a place for a stand? The reason is kept with it."))
        note.setWordWrap(True)
        self.reason = QPlainTextEdit()
        self.reason.setObjectName("reason")
        self.reason.setTabChangesFocus(True)
        self.reason.setPlaceholderText(tr("Reason"))
        self.reason.setMinimumHeight(TOUCH * 2)
        self.errors["reason"] = FieldError()
        self.body.addWidget(head)
        self.body.addWidget(note)
        self.body.addWidget(self.reason, 1)
        self.body.addWidget(self.errors["reason"])
        self.reason.setFocus()

    def collect(self) -> tuple[Any, tuple[Any, ...], dict[str, Any]] | None:
        reason = self.reason.toPlainText().strip()
        if not reason:
            self.errors["reason"].show_message(tr("Give a reason."))
            self.reason.setFocus()
            return None
        return decide, (self.row.id, "rejected"), {"reason": reason}


class ImportErrorsDialog(QDialog):
    """What is wrong with each row of a refused file (nothing was imported)."""

    def __init__(self, file_name: str, message: str, lines: list[str], parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("import_errors")
        self.setWindowTitle(tr("Nothing imported"))
        self.setMinimumSize(520, 320)
        head = QLabel(
            tr("<b>{file}</b> was not imported: fix these rows and import it again.").format(
                file=_html(file_name)
            )
        )
        head.setWordWrap(True)
        self.summary = QLabel(message)
        self.summary.setWordWrap(True)
        self.summary.setStyleSheet("color: palette(mid);")
        self.list = QPlainTextEdit("\n".join(lines))
        self.list.setObjectName("import_error_lines")
        self.list.setReadOnly(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        close = buttons.button(QDialogButtonBox.StandardButton.Close)
        close.setMinimumSize(TOUCH * 3, TOUCH)
        layout = QVBoxLayout(self)
        layout.addWidget(head)
        layout.addWidget(self.summary)
        layout.addWidget(self.list, 1)
        layout.addWidget(buttons)


# --------------------------------------------------------------- the detail


class SitePane(QWidget):
    """The selected site: place, expected range and score, its analogues, cannibalisation."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)

        def label(name: str, *, rich: bool = False) -> QLabel:
            w = QLabel()
            w.setObjectName(name)
            w.setWordWrap(True)
            w.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            if rich:
                w.setTextFormat(Qt.TextFormat.RichText)
            return w

        self.title = label("site_title", rich=True)
        self.expected = label("site_expected", rich=True)
        self.analogues = label("site_analogues", rich=True)
        self.cannibalisation = label("site_cannibalisation")
        self.footer = label("site_footer")
        self.footer.setStyleSheet("color: palette(mid);")
        self.action_row = QHBoxLayout()
        self.action_row.setSpacing(6)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 0, 4, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.expected)
        layout.addLayout(self.action_row)
        layout.addWidget(_heading(tr("Analogue stands")))
        layout.addWidget(self.analogues)
        layout.addWidget(_heading(tr("Nearby stands")))
        layout.addWidget(self.cannibalisation)
        layout.addWidget(self.footer)
        layout.addStretch(1)

    def show_site(self, r: CandidateRow, s: CandidateScore | None) -> None:
        place = ", ".join(x for x in (r.address, r.city) if x)
        sub = " · ".join(
            x for x in (type_text(r.location_type), place, f"{r.latitude:.5f}, {r.longitude:.5f}")
        )
        self.title.setText(
            f"<span style='font-size: 16px; font-weight: 600;'>{_html(r.name)}</span><br>"
            f"<span style='color: gray;'>{_html(sub)}</span>"
        )
        if r.score is None:
            self.expected.setText(tr("Not scored yet."))
        else:
            self.expected.setText(
                tr("Expected <b>{range}</b> · score <b>{score}</b> of 100").format(
                    range=range_text(r.expected_low, r.expected_high), score=r.score
                )
            )
        if s is None:
            self.analogues.setText(
                tr("Press Score now to see the stands behind the range.")
                if r.status == "open"
                else tr("Only open sites are scored.")
            )
            self.cannibalisation.setText("")
        else:
            rows = "".join(
                "<tr><td>{name}{city}</td><td align='right'>&nbsp;{rev}/day</td>"
                "<td align='right'>&nbsp;{km}</td><td align='right'>&nbsp;{w:.0%}</td></tr>".format(
                    name=_html(a.name),
                    city=f" <span style='color: gray;'>{_html(a.city)}</span>" if a.city else "",
                    rev=euros(a.revenue_per_day),
                    km=_km(a.distance_km),
                    w=a.weight,
                )
                for a in s.analogues
            )
            self.analogues.setText(
                "<table width='100%' cellspacing='0' cellpadding='2'>"
                f"<tr style='color: gray;'><td>{tr('Stand')}</td><td align='right'>"
                f"{tr('Revenue')}</td><td align='right'>{tr('Away')}</td>"
                f"<td align='right'>{tr('Weight')}</td></tr>{rows}</table>"
            )
            if s.nearby:
                near = ", ".join(f"{n.name} ({_km(n.distance_km)})" for n in s.nearby)
                self.cannibalisation.setText(
                    tr(
                        "{share:.0%} less for stands within 1 km, which would share customers: "
                        "{near}. Before that: {gross}."
                    ).format(
                        share=s.cannibalisation,
                        near=near,
                        gross=range_text(s.gross_low, s.gross_high),
                    )
                )
            else:
                self.cannibalisation.setText(
                    tr("No open stand within 1 km: no cannibalisation expected.")
                )
        lines = []
        if r.attributes:
            lines.append(
                ", ".join(f"{k.replace('_', ' ')}: {v:g}" for k, v in sorted(r.attributes.items()))
            )
        if s is not None and s.unused_attributes:
            lines.append(
                tr("Not compared (too few stands know it): {names}").format(
                    names=", ".join(a.replace("_", " ") for a in s.unused_attributes)
                )
            )
        lines.append(status_text(r) + (f" — {r.status_reason}" if r.status_reason else ""))
        self.footer.setText("\n".join(lines))


def _heading(text: str) -> QLabel:
    label = QLabel(f"<b>{text}</b>")
    label.setContentsMargins(0, 6, 0, 0)
    return label


# --------------------------------------------------------------- the view


class ExpansionView(QWidget):
    """See the module docstring."""

    title = "Expansion sites"

    def __init__(self, ctx: UiContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.rows: list[CandidateRow] = []
        #: The latest "Score now" results: candidate id -> its score with the analogues.
        self.scores: dict[str, CandidateScore] = {}
        self.dialog: QDialog | None = None
        self.scoring = False
        self._loading = False
        self._stale = False
        self._want_id: str | None = None
        self._latest = LatestRead(ctx, self)
        staff = ctx.actor.role in STAFF
        self.manager = ctx.actor.role in MANAGERS

        self.actions_by_name: dict[str, QAction] = {}
        for name, (text, keys, tip) in ACTIONS.items():
            qa = QAction(tr(text), self)
            qa.setObjectName(name)
            qa.setShortcut(QKeySequence(keys))
            qa.setToolTip(with_shortcut(tr(tip), qa))
            self.addAction(qa)
            self.actions_by_name[name] = qa
        a = self.actions_by_name
        a["add"].triggered.connect(self.add_site)
        a["import"].triggered.connect(lambda: self.import_csv())
        a["score"].triggered.connect(self.score)
        a["accept"].triggered.connect(self.accept_site)
        a["reject"].triggered.connect(self.reject_site)
        self.buttons: dict[str, QPushButton] = {}
        for name in ACTIONS:
            button = QPushButton(a[name].text())
            button.setObjectName(f"action_{name}")
            button.setMinimumHeight(TOUCH)
            button.setToolTip(a[name].toolTip())
            button.clicked.connect(a[name].trigger)
            self.buttons[name] = button
        if not staff:
            for name in ("add", "import", "score"):
                a[name].setEnabled(False)
                self.buttons[name].setEnabled(False)
                self.buttons[name].setToolTip(tr(STAFF_ONLY))

        self.status_filter = QComboBox()
        self.status_filter.setObjectName("status_filter")
        self.status_filter.setMinimumHeight(TOUCH)
        self.status_filter.setAccessibleName(tr("Show"))
        self.status_filter.setToolTip(tr("Which sites to show"))
        for value, text in STATUS_FILTERS:
            self.status_filter.addItem(tr(text), value)
        self.progress = QProgressBar()
        self.progress.setObjectName("score_progress")
        self.progress.setRange(0, 0)
        self.progress.setMaximumWidth(90)
        self.progress.setMaximumHeight(10)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.count_label = QLabel()
        self.count_label.setObjectName("count_label")
        self.message = QLabel()
        self.message.setObjectName("message")
        self.message.setWordWrap(True)

        self.model = CandidateModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.table = QTableView()
        self.table.setObjectName("candidate_table")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(COLUMN_INDEX["score"], Qt.SortOrder.DescendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(TOUCH)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COLUMN_INDEX["name"], QHeaderView.ResizeMode.Stretch)
        kinetic(self.table)
        self.list_empty = EmptyState("")
        self.list_empty.setObjectName("list_empty")
        self.list_empty.hide()

        self.pane = SitePane()
        self.pane.action_row.addWidget(self.buttons["accept"])
        self.pane.action_row.addWidget(self.buttons["reject"])
        self.pane.action_row.addStretch(1)
        self.pane_scroll = QScrollArea()
        self.pane_scroll.setWidgetResizable(True)
        self.pane_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.pane_scroll.setWidget(self.pane)
        self.pane_scroll.setMinimumWidth(320)
        kinetic(self.pane_scroll)
        self.detail_empty = EmptyState(
            tr("Select a site to see the stands that justify its expected revenue.")
        )
        self.detail_empty.setObjectName("detail_empty")

        top = QHBoxLayout()
        for name in ("add", "import", "score"):
            top.addWidget(self.buttons[name])
        top.addStretch(1)
        top.addWidget(self.status_filter)
        status = QHBoxLayout()
        status.addWidget(self.count_label)
        status.addStretch(1)
        status.addWidget(self.progress)
        self.splitter = list_and_detail(
            self.table, self.list_empty, self.pane_scroll, self.detail_empty, (640, 380)
        )
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(status)
        layout.addWidget(self.splitter, 1)
        layout.addWidget(self.message)

        self.status_filter.currentIndexChanged.connect(lambda _i: self.refresh())
        self.table.selectionModel().currentRowChanged.connect(lambda *_: self._show_selected())
        ctx.data_changed.connect(self._on_changed)
        self._show_selected()

    # ------------------------------------------------------------------ Screen protocol

    @property
    def loading(self) -> bool:
        return self._loading or self.scoring

    def refresh(self) -> None:
        self._stale = False
        self._loading = True
        self._latest(
            load_candidates,
            str(self.status_filter.currentData()),
            on_done=self._loaded,
            on_error=self._load_failed,
        )

    def open(self, arg: object = None) -> None:
        """Show the list; with a candidate id, select that site."""
        if isinstance(arg, str) and arg:
            self._want_id = arg
        self.refresh()

    # ------------------------------------------------------------------ loading

    def _load_failed(self, exc: Exception) -> None:
        self._loading = False
        self.message.setText(tr("Could not load the sites: {error}").format(error=exc))

    def _loaded(self, result: tuple[list[CandidateRow], dict[str, CandidateScore]]) -> None:
        rows, stored = result
        self.scores = {**self.scores, **stored}
        self._loading = False
        current = self.selected()
        keep = self._want_id or (current.id if current else None)
        self._want_id = None
        self.rows = rows
        self.model.set_rows(rows, self.scores)
        empty = not rows
        self.table.setVisible(not empty)
        self.list_empty.setVisible(empty)
        if empty:
            if self.status_filter.currentData() == "open":
                self.list_empty.setText(
                    tr(
                        "No candidate sites yet.\n\nAdd a site, import a CSV file, or press "
                        "Score now: planned stands of partners who are not live yet join the "
                        "list as partner leads."
                    )
                )
            else:
                self.list_empty.setText(tr("No sites here."))
        scored = sum(1 for r in rows if r.score is not None)
        self.count_label.setVisible(not empty)
        self.count_label.setText(
            plural(len(rows), "{n} site", "{n} sites")
            + (tr(" · {n} scored").format(n=scored) if rows else "")
        )
        target = 0
        for i in range(self.proxy.rowCount()):
            if keep and self.proxy.index(i, 0).data(ID_ROLE) == keep:
                target = i
                break
        if rows:
            self.table.selectRow(target)
        self._show_selected()

    # ------------------------------------------------------------------ selection

    def selected(self) -> CandidateRow | None:
        index = self.table.currentIndex()
        if not index.isValid() or not self.rows:
            return None
        cid = index.siblingAtColumn(0).data(ID_ROLE)
        return next((r for r in self.rows if r.id == cid), None)

    def _show_selected(self) -> None:
        r = self.selected()
        self.pane_scroll.setVisible(r is not None)
        self.detail_empty.setVisible(r is None)
        if r is not None:
            self.pane.show_site(r, self.scores.get(r.id))
        self._update_actions()

    def _update_actions(self) -> None:
        r = self.selected()
        can = self.manager and r is not None and r.status == "open"
        for name in ("accept", "reject"):
            self.actions_by_name[name].setEnabled(can)
            self.buttons[name].setEnabled(can)
            if not self.manager:
                tip = tr(MANAGERS_ONLY)
            elif r is not None and r.status != "open":
                tip = tr("This site is already {status}.").format(
                    status=tr(STATUS_LABELS.get(r.status, r.status)).lower()
                )
            else:
                tip = self.actions_by_name[name].toolTip()
            self.buttons[name].setToolTip(tip)
        busy = self.scoring or self.ctx.actor.role not in STAFF
        self.actions_by_name["score"].setEnabled(not busy)
        self.buttons["score"].setEnabled(not busy)
        self.buttons["score"].setText(tr("Scoring…") if self.scoring else tr("Score now"))

    # ------------------------------------------------------------------ actions

    def add_site(self) -> AddSiteDialog | None:
        if self.ctx.actor.role not in STAFF:
            return None
        dialog = AddSiteDialog(self.ctx, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.saved.connect(self._added)
        dialog.open()
        self.dialog = dialog
        return dialog

    def _added(self, row: CandidateRow) -> None:
        self._want_id = row.id
        self._say(tr("Added {name}. Score now to see what it would earn.").format(name=row.name))
        self.ctx.changed("expansion", ids=(row.id,))

    def import_csv(self, path: str | None = None) -> None:
        """Import a CSV file (asks which one when ``path`` is not given)."""
        if self.ctx.actor.role not in STAFF:
            return
        if path is None:
            path, _filter = QFileDialog.getOpenFileName(
                self,
                tr("Import candidate sites"),
                "",
                tr("CSV files (*.csv *.txt);;All files (*)"),
            )
            if not path:
                return
        name = Path(path).name
        self.buttons["import"].setEnabled(False)
        self.ctx.write(
            import_sites,
            path,
            on_done=lambda result: self._imported(name, result),
            on_error=lambda exc: self._import_failed(name, exc),
        )

    def _imported(self, name: str, result: ImportResult) -> None:
        self.buttons["import"].setEnabled(True)
        self._say(plural(result.rows, "Imported {n} site from ", "Imported {n} sites from ") + name)
        self.ctx.changed("expansion", ids=result.candidate_ids)

    def _import_failed(self, name: str, exc: Exception) -> None:
        self.buttons["import"].setEnabled(True)
        errors = getattr(exc, "errors", None)
        if isinstance(exc, DomainError) and errors:
            lines = [
                tr("Line {line}{field}: {message}").format(
                    line=e.line, field=f" ({e.field})" if e.field else "", message=e.message
                )
                for e in errors
            ]
            dialog = ImportErrorsDialog(name, exc.message, lines, self)
            dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            dialog.open()
            self.dialog = dialog
            self._say(
                tr("Nothing imported from {file}: {n} rows have errors.").format(
                    file=name, n=len(errors)
                )
            )
        else:
            message = exc.message if isinstance(exc, DomainError) else str(exc)
            self._say(tr("Nothing imported: {error}").format(error=message))

    def score(self) -> None:
        if self.scoring or self.ctx.actor.role not in STAFF:
            return
        self.scoring = True
        self.progress.show()
        self._update_actions()
        self.ctx.write(score_sites, on_done=self._scored, on_error=self._score_failed)

    def _scored(self, scores: list[CandidateScore]) -> None:
        self.scoring = False
        self.progress.hide()
        self.scores = {s.candidate_id: s for s in scores}
        if scores:
            best = scores[0]
            self._say(
                plural(len(scores), "Scored {n} site", "Scored {n} sites")
                + tr(" · best: {name} ({score}, {range})").format(
                    name=best.name,
                    score=best.score,
                    range=range_text(best.expected_low, best.expected_high),
                )
            )
        else:
            self._say(
                tr(
                    "Nothing to score: scoring needs open sites and stands with at least "
                    "two weeks of sales."
                )
            )
        self._update_actions()
        self.ctx.changed("expansion")

    def _score_failed(self, exc: Exception) -> None:
        self.scoring = False
        self.progress.hide()
        self._update_actions()
        message = exc.message if isinstance(exc, DomainError) else str(exc)
        self._say(tr("Scoring failed: {error}").format(error=message))

    def accept_site(self) -> None:
        r = self.selected()
        if r is None or not self.manager or r.status != "open":
            return
        self.ctx.write(
            decide,
            r.id,
            "accepted",
            on_done=lambda row: self._decided(tr("Accepted"), row),
            on_error=self._decide_failed,
        )

    def reject_site(self) -> RejectDialog | None:
        r = self.selected()
        if r is None or not self.manager or r.status != "open":
            return None
        dialog = RejectDialog(self.ctx, r, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.saved.connect(lambda row: self._decided(tr("Rejected"), row))
        dialog.open()
        self.dialog = dialog
        return dialog

    def _decided(self, what: str, row: CandidateRow) -> None:
        self.scores.pop(row.id, None)
        self._say(f"{what}: {row.name}")
        self.ctx.changed("expansion", ids=(row.id,))

    def _decide_failed(self, exc: Exception) -> None:
        message = exc.message if isinstance(exc, DomainError) else str(exc)
        self._say(tr("Not saved: {error}").format(error=message))
        self.refresh()

    def _say(self, text: str) -> None:
        self.message.setText(text)
        self.ctx.status.emit(text)

    # ------------------------------------------------------------------ notifications

    def _on_changed(self, change: Changed) -> None:
        if not change.touches(*KINDS):
            return
        if self.isVisible():
            self.refresh()
        else:
            self._stale = True

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if self._stale:
            self.refresh()


__all__ = ["AddSiteDialog", "CandidateModel", "ExpansionView", "RejectDialog", "range_text"]
