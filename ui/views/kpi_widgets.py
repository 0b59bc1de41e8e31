"""Pieces the Dashboard and a stand's Performance tab share: the period picker, KPI tiles
and the table of every KPI (with CSV export)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QDate,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QAction, QColor, QKeySequence, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QButtonGroup,
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QPushButton,
    QSizePolicy,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.clock import utcnow
from app.errors import ValidationError
from app.kpi import PRESETS, Kpi, KpiReport, Period
from app.kpi.period import DEFAULT_DAYS
from app.kpi.text import format_change, is_good
from app.rules import local_date
from ui.charts.formats import ChartLocale, format_day, format_value
from ui.charts.widget import chart_locale_from_qlocale
from ui.i18n import tr
from ui.widgets import TOUCH

Index = QModelIndex | QPersistentModelIndex

#: Good news green and bad news red, readable on light and dark backgrounds.
GOOD = ("#1b7f3b", "#6fd08c")
BAD = ("#b3261e", "#f2a09a")


def _dark(widget: QWidget) -> bool:
    return widget.palette().color(QPalette.ColorRole.Base).lightness() < 128


def today() -> date:
    """Today in the program's time zone (periods end today)."""
    return local_date(utcnow())


def period_text(period: Period, locale: ChartLocale) -> str:
    """ "Oct 27 – Nov 23, 2026" style, in the chart locale."""
    start, end = format_day(period.start, locale), format_day(period.end, locale)
    return f"{start} – {end} {period.end.year}"


def _day(value: QDate) -> date:
    return date(value.year(), value.month(), value.day())


class CustomPeriodDialog(QDialog):
    """Pick the first and last day of a period."""

    def __init__(self, period: Period, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(tr("Custom period"))
        self.start = QDateEdit(QDate(period.start.year, period.start.month, period.start.day))
        self.end = QDateEdit(QDate(period.end.year, period.end.month, period.end.day))
        for edit in (self.start, self.end):
            edit.setCalendarPopup(True)
            edit.setMinimumHeight(TOUCH)
            edit.setDisplayFormat("yyyy-MM-dd")
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #b3261e;")
        self.error.hide()
        form = QFormLayout()
        form.addRow(tr("&From"), self.start)
        form.addRow(tr("&To"), self.end)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.result_period: Period | None = None

    def _accept(self) -> None:
        try:
            self.result_period = Period(_day(self.start.date()), _day(self.end.date()))
        except ValidationError as exc:
            self.error.setText(exc.message)
            self.error.show()
            return
        self.accept()


class PeriodPicker(QWidget):
    """Last 7 / 28 / 90 / 365 days, or a custom range; says which days it means."""

    changed = Signal(object)  # Period

    def __init__(self, parent: QWidget | None = None, *, days: int = DEFAULT_DAYS) -> None:
        super().__init__(parent)
        self.chart_locale = chart_locale_from_qlocale()
        self.group = QButtonGroup(self)
        self.group.setExclusive(True)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.buttons: dict[int, QPushButton] = {}
        for n in PRESETS:
            button = QPushButton(tr("{n} days").format(n=n))
            button.setCheckable(True)
            button.setMinimumHeight(TOUCH)
            button.setMinimumWidth(TOUCH * 2)
            button.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
            button.setToolTip(tr("The last {n} days, today included").format(n=n))
            self.group.addButton(button, n)
            layout.addWidget(button)
            self.buttons[n] = button
        self.custom = QPushButton(tr("Custom…"))
        self.custom.setCheckable(True)
        self.custom.setMinimumHeight(TOUCH)
        self.custom.setToolTip(tr("Choose the first and last day"))
        self.custom.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
        self.group.addButton(self.custom, 0)
        layout.addWidget(self.custom)
        self.range_label = QLabel()
        self.range_label.setStyleSheet("padding-left: 10px;")
        layout.addWidget(self.range_label)
        layout.addStretch(1)
        self._period = Period.last(days, today())
        self.buttons.get(days, self.buttons[DEFAULT_DAYS]).setChecked(True)
        self.group.idClicked.connect(self._clicked)
        self._show()

    def period(self) -> Period:
        return self._period

    def set_period(self, period: Period, *, emit: bool = True) -> None:
        self._period = period
        preset = period.days if period == Period.last(period.days, today()) else 0
        button = self.buttons.get(preset, self.custom)
        button.setChecked(True)
        self._show()
        if emit:
            self.changed.emit(period)

    def roll_to_today(self) -> None:
        """A "last N days" period ends today: after midnight it moves on (no signal)."""
        days = self.group.checkedId()
        if days > 0 and self._period.end != today():
            self._period = Period.last(days, today())
            self._show()

    def set_days(self, days: int) -> None:
        self.set_period(Period.last(days, today()))

    def _clicked(self, button_id: int) -> None:
        if button_id:
            self.set_period(Period.last(button_id, today()))
            return
        dialog = CustomPeriodDialog(self._period, self)
        if dialog.exec() == QDialog.DialogCode.Accepted and dialog.result_period is not None:
            self.set_period(dialog.result_period)
        else:  # keep what was chosen before
            self.set_period(self._period, emit=False)

    def _show(self) -> None:
        text = period_text(self._period, self.chart_locale)
        self.range_label.setText(text)
        self.setAccessibleDescription(text)


class KpiTile(QFrame):
    """One KPI: its value large, the change against the prior period below it."""

    def __init__(self, key: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.key = key
        self.setObjectName("kpiTile")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.label = QLabel()
        self.value = QLabel("…")
        font = self.value.font()
        font.setPointSizeF(font.pointSizeF() * 1.6)
        font.setBold(True)
        self.value.setFont(font)
        self.change = QLabel(" ")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        layout.setSpacing(0)
        layout.addWidget(self.label)
        layout.addWidget(self.value)
        layout.addWidget(self.change)
        self.setFocusPolicy(Qt.FocusPolicy.TabFocus)  # reachable, so the tooltip is readable

    def show_kpi(self, kpi: Kpi, report: KpiReport, locale: ChartLocale) -> None:
        value = format_value(kpi.value, kpi.unit, locale, currency=report.currency, tr=tr)
        prior = format_value(kpi.prior, kpi.unit, locale, currency=report.currency, tr=tr)
        self.label.setText(tr(kpi.label))
        self.value.setText(value)
        change = format_change(kpi)
        good = is_good(kpi)
        if not change:
            self.change.setText(tr("no prior figure") if kpi.prior is None else " ")
            self.change.setStyleSheet("color: palette(mid);")
        else:
            arrow = "▲" if (kpi.value or 0) > (kpi.prior or 0) else "▼"
            if kpi.value == kpi.prior:
                text = tr("＝ same as the prior period")
            elif change == "from zero":
                text = tr("{arrow} from {prior}").format(arrow=arrow, prior=prior)
            else:
                text = tr("{arrow} {change} vs {prior}").format(
                    arrow=arrow, change=change, prior=prior
                )
            self.change.setText(text)
            if good is None:
                self.change.setStyleSheet("color: palette(mid);")
            else:
                colour = (GOOD if good else BAD)[1 if _dark(self) else 0]
                self.change.setStyleSheet(f"color: {colour};")
        tip = f"{tr(kpi.label)}: {value}\n{tr('Prior period')}: {prior}\n{tr(kpi.formula)}"
        self.setToolTip(tip)
        self.setAccessibleName(f"{tr(kpi.label)} {value}")
        self.setAccessibleDescription(tip)

    def show_loading(self) -> None:
        self.value.setStyleSheet("color: palette(mid);")
        self.change.setText(tr("computing…"))
        self.change.setStyleSheet("color: palette(mid);")

    def done_loading(self) -> None:
        self.value.setStyleSheet("")


class KpiTiles(QWidget):
    """A grid of KPI tiles that reflows with the width (2 columns on a narrow tablet)."""

    MIN_TILE = 150

    def __init__(self, keys: Sequence[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.chart_locale = chart_locale_from_qlocale()
        self.tiles = [KpiTile(k) for k in keys]
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(8)
        self._columns = 0
        self._reflow(4)

    def tile(self, key: str) -> KpiTile:
        return next(t for t in self.tiles if t.key == key)

    def set_report(self, report: KpiReport) -> None:
        for tile in self.tiles:
            tile.done_loading()
            tile.show_kpi(report[tile.key], report, self.chart_locale)

    def set_loading(self) -> None:
        for tile in self.tiles:
            tile.show_loading()

    def _reflow(self, columns: int) -> None:
        if columns == self._columns:
            return
        self._columns = columns
        for tile in self.tiles:
            self.grid.removeWidget(tile)
        for i, tile in enumerate(self.tiles):
            self.grid.addWidget(tile, i // columns, i % columns)
        for c in range(8):
            self.grid.setColumnStretch(c, 1 if c < columns else 0)

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        # Rows of equal length: all in one row, or halves, or pairs.
        fit = self.width() // self.MIN_TILE
        n = len(self.tiles)
        columns = n if fit >= n else (n + 1) // 2 if fit >= (n + 1) // 2 else 2
        self._reflow(columns)


class KpiTableModel(QAbstractTableModel):
    """Every KPI of a report: value, prior, change, and how it is computed."""

    COLUMNS = ("KPI", "Value", "Prior period", "Change", "How it is computed")

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.report: KpiReport | None = None
        self.chart_locale = chart_locale_from_qlocale()
        self.dark = False

    def set_report(self, report: KpiReport | None) -> None:
        self.beginResetModel()
        self.report = report
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        if parent.isValid() or self.report is None:
            return 0
        return len(self.report.kpis)

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
            return tr(self.COLUMNS[section])
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if self.report is None or not index.isValid():
            return None
        if not 0 <= index.row() < len(self.report.kpis):
            return None
        kpi = self.report.kpis[index.row()]
        col = index.column()
        currency = self.report.currency
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return tr(kpi.label)
            if col == 1:
                return format_value(
                    kpi.value, kpi.unit, self.chart_locale, currency=currency, tr=tr
                )
            if col == 2:
                return format_value(
                    kpi.prior, kpi.unit, self.chart_locale, currency=currency, tr=tr
                )
            if col == 3:
                return format_change(kpi)
            return tr(kpi.formula)
        if role == Qt.ItemDataRole.ToolTipRole and col == 4:
            return tr(kpi.formula)
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (1, 2, 3):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole and col == 3:
            good = is_good(kpi)
            if good is not None:
                return QColor((GOOD if good else BAD)[1 if self.dark else 0])
        if role == Qt.ItemDataRole.UserRole:
            return kpi.key
        return None


def kpi_table(model: KpiTableModel) -> QTableView:
    view = QTableView()
    view.setModel(model)
    view.setAlternatingRowColors(True)
    view.verticalHeader().hide()
    view.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
    view.setWordWrap(False)
    header = view.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setStretchLastSection(True)
    view.verticalHeader().setDefaultSectionSize(28)
    return view


def export_csv(report: KpiReport, path: Path) -> Path:
    """The KPI table as CSV (see :func:`ui.report.export_kpi_csv`)."""
    from ui.report import export_kpi_csv

    return export_kpi_csv(report, path)


class KpiExports:
    """CSV and PDF export for a screen that shows computed KPIs (the dashboard, a stand's
    Performance tab). The screen provides ``data`` (what its report function of
    :mod:`ui.report`, named by ``pdf_renderer``, draws), ``ctx`` and ``status_label``."""

    data: Any
    ctx: Any
    status_label: QLabel
    pdf_title = "Save report"
    pdf_renderer = "render_program_report"
    pdf_action_text = "Report as PDF…"

    def _build_export_button(self) -> None:
        """The Export button: the KPI table as CSV, the report as PDF (Ctrl+P); disabled
        until there are figures."""
        self.export_button = QToolButton()
        self.export_button.setText(tr("Export"))
        self.export_button.setMinimumHeight(TOUCH)
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.export_button)
        self.csv_action = QAction(tr("KPI table as CSV…"), menu)
        self.csv_action.triggered.connect(self.export_csv_dialog)
        self.pdf_action = QAction(tr(self.pdf_action_text), menu)
        self.pdf_action.setShortcut(QKeySequence("Ctrl+P"))
        self.pdf_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.pdf_action.triggered.connect(self.export_pdf_dialog)
        menu.addAction(self.csv_action)
        menu.addAction(self.pdf_action)
        if isinstance(self, QWidget):
            self.addAction(self.pdf_action)
        self.export_button.setMenu(menu)
        self.export_button.setEnabled(False)

    def render_pdf(self, path: Path) -> Path:
        import ui.report  # matplotlib: loaded when a report is first written

        render: Callable[[Any, Path], Path] = getattr(ui.report, self.pdf_renderer)
        return render(self.data, path)

    def _suggested(self, suffix: str) -> str:
        if self.data is None:
            return f"kpis{suffix}"
        r = self.data.report
        label = "".join(ch if ch.isalnum() else "-" for ch in r.scope.label).strip("-").lower()
        return f"{label}-{r.start}-{r.end}{suffix}"

    def _ask_path(self, title: str, suffix: str, kinds: str) -> Path | None:
        parent = self if isinstance(self, QWidget) else None
        path, _ = QFileDialog.getSaveFileName(parent, title, self._suggested(suffix), kinds)
        return Path(path) if path else None

    def export_csv_dialog(self) -> None:
        if self.data is not None and (
            path := self._ask_path(tr("Export KPI table"), ".csv", tr("CSV files (*.csv)"))
        ):
            self.export_csv(path)

    def export_csv(self, path: Path) -> Path | None:
        if self.data is None:
            return None
        out = export_csv(self.data.report, path)
        self.ctx.status.emit(tr("Saved {path}").format(path=out))
        return out

    def export_pdf_dialog(self) -> None:
        if self.data is not None and (
            path := self._ask_path(tr(self.pdf_title), ".pdf", tr("PDF files (*.pdf)"))
        ):
            self.export_pdf(path)

    def export_pdf(self, path: Path) -> Path | None:
        """Write the one-page report. matplotlib keeps global state (fonts, style settings),
        so the report is drawn here on the GUI thread, like every chart, under a busy cursor;
        it takes about a second."""
        if self.data is None:
            return None
        self.status_label.setText(tr("Writing the report…"))
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            QApplication.processEvents()
            out = self.render_pdf(path)
        except OSError as exc:
            message = str(exc)
            self.status_label.setText(tr("Could not save: {error}").format(error=message))
            return None
        finally:
            QApplication.restoreOverrideCursor()
        self.status_label.setText(tr("Saved {path}").format(path=out))
        self.ctx.status.emit(tr("Saved {path}").format(path=out))
        return out
