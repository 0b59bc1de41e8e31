"""Chart widgets: a matplotlib ``Figure`` on a ``FigureCanvasQTAgg`` (no pyplot, no
toolbar) under a header with the chart's title and an export menu.

A :class:`ChartWidget` keeps the data it was given and draws it with one of the Qt-free
functions in :mod:`ui.charts.draw`; it redraws when the data, the palette (light/dark) or
the locale change, always on the GUI thread. Hovering shows the value under the pointer
(what the draw function returned as :class:`~ui.charts.draw.HoverTarget`). Subclasses only
say which draw function to call.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backend_bases import Event, LocationEvent
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from matplotlib.text import Annotation
from PySide6.QtCore import QCoreApplication, QEvent, QLocale, QStandardPaths, Qt, QThread
from PySide6.QtGui import QAction, QPalette, QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QMessageBox,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.kpi.model import (
    RefillFlow,
    RevenueSeries,
    SellThroughHeatmap,
    SkuUnits,
    StandRanking,
    StockSeries,
)
from ui.charts import draw as charts
from ui.charts.draw import NO_DATA, HoverTarget, draw_message
from ui.charts.formats import DEFAULT_SYMBOLS, ChartLocale
from ui.charts.style import ChartStyle, style_from_palette
from ui.i18n import tr

#: How close (device-independent pixels) the pointer must come to a point to hover it.
HOVER_RADIUS = 12
MIN_HEIGHT = 220
EXPORT_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}

# Languages that put a space before the percent sign ("25 %").
_PERCENT_SPACE = {
    QLocale.Language.German,
    QLocale.Language.French,
    QLocale.Language.Spanish,
    QLocale.Language.Swedish,
    QLocale.Language.Danish,
    QLocale.Language.NorwegianBokmal,
    QLocale.Language.Finnish,
    QLocale.Language.Czech,
    QLocale.Language.Slovak,
    QLocale.Language.Russian,
}
_SPACES = " \u00a0\u202f"


def chart_locale_from_qlocale(locale: QLocale | None = None) -> ChartLocale:
    """The chart locale for a ``QLocale`` (the default locale when none is given)."""
    loc = locale if locale is not None else QLocale()
    if loc.language() == QLocale.Language.C:
        return ChartLocale.en()
    probe = loc.toCurrencyString(1234.5, "¤")
    mark = probe.find("¤")
    digit = next((i for i, ch in enumerate(probe) if ch.isdigit()), len(probe))
    currency_first = 0 <= mark < digit
    neighbours = probe[mark - 1 : mark] + probe[mark + 1 : mark + 2] if mark >= 0 else ""
    short = loc.dateFormat(QLocale.FormatType.ShortFormat)
    day_first = short.find("d") < short.find("M")
    if day_first and "." in short:
        day_pattern = "{d:02d}.{m:02d}."
    elif day_first:
        day_pattern = "{d} {mon}"
    else:
        day_pattern = "{mon} {d}"
    own_code = loc.currencySymbol(QLocale.CurrencySymbolFormat.CurrencyIsoCode)
    own_symbol = loc.currencySymbol(QLocale.CurrencySymbolFormat.CurrencySymbol)
    symbols = DEFAULT_SYMBOLS
    if own_code and own_symbol:
        symbols = ((own_code, own_symbol), *symbols)
    return ChartLocale(
        decimal_point=loc.decimalPoint() or ".",
        group_separator=loc.groupSeparator(),
        currency_first=currency_first,
        currency_space=any(ch in _SPACES for ch in neighbours),
        percent_space=loc.language() in _PERCENT_SPACE,
        month_abbr=tuple(loc.monthName(m, QLocale.FormatType.ShortFormat) for m in range(1, 13)),
        day_pattern=day_pattern,
        currency_symbols=symbols,
    )


class ChartCanvas(FigureCanvasQTAgg):
    """The Qt canvas, lazier: a chart that is not visible (a tab in the background) draws
    when it is shown rather than on every data change, and a chart squeezed too small for
    its labels draws without them fitting instead of warning about it."""

    _skipped = False

    def draw_idle(self) -> None:
        if not self.isVisible():
            self._skipped = True
            return
        cast(Callable[[], None], super().draw_idle)()

    def draw(self) -> None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "constrained_layout not applied", UserWarning)
            cast(Callable[[], None], super().draw)()

    def showEvent(self, event: QShowEvent) -> None:
        cast(Callable[[QShowEvent], None], super().showEvent)(event)
        if self._skipped:
            self._skipped = False
            self.draw_idle()


# The Qt backend carries no annotations; this says what it makes.
_canvas = cast(Callable[[Figure], ChartCanvas], ChartCanvas)


def palette_is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Base).lightness() < 128


def _on_gui_thread() -> bool:
    app = QCoreApplication.instance()
    return app is not None and QThread.currentThread() is app.thread()


def _slug(text: str) -> str:
    return re.sub(r"[^\w]+", "-", text.lower()).strip("-") or "chart"


class ChartWidget(QWidget):
    """A titled chart with an export menu, hover values and light/dark styling.

    Subclasses implement :meth:`draw`. Feed data with :meth:`set_data` (``None`` shows "No
    data for this period"), or show :meth:`set_loading` / :meth:`set_empty` meanwhile.
    """

    default_title: ClassVar[str] = "Chart"

    def __init__(
        self,
        title: str | None = None,
        parent: QWidget | None = None,
        *,
        locale: ChartLocale | None = None,
    ) -> None:
        super().__init__(parent)
        self._ready = False
        self._stale = False
        self._locale = locale
        self._data: Any = None
        self._state = "empty"  # "data", "empty" or "loading"
        self._message = NO_DATA
        self._ax: Axes | None = None
        self._targets: list[HoverTarget] = []
        self._points = np.empty((0, 2))
        self._boxes = np.empty((0, 4))
        self._annotation: Annotation | None = None
        self._hovered: HoverTarget | None = None

        self.title_label = QLabel()
        font = self.title_label.font()
        font.setBold(True)
        self.title_label.setFont(font)
        self.export_button = QToolButton()
        self.export_button.setText("⋯")
        self.export_button.setToolTip(tr("Export chart"))
        self.export_button.setAccessibleName(tr("Export chart"))
        self.export_button.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.export_button.setAutoRaise(True)
        self.export_button.setStyleSheet("QToolButton::menu-indicator { image: none; }")
        menu = QMenu(self.export_button)
        for label, suffix in (
            (tr("Save as PNG…"), ".png"),
            (tr("Save as SVG…"), ".svg"),
            (tr("Save as PDF…"), ".pdf"),
        ):
            action = QAction(label, menu)
            action.triggered.connect(lambda _=False, s=suffix: self._export_dialog(s))
            menu.addAction(action)
        self.export_button.setMenu(menu)
        self.header = QHBoxLayout()
        self.header.setContentsMargins(4, 0, 0, 0)
        self.header.addWidget(self.title_label)
        self.header.addStretch(1)
        self.header.addWidget(self.export_button)

        self._style = self._current_style()
        dpi = float(min(144, max(72, self.logicalDpiY())))
        with self._style.context():
            self.figure = Figure(figsize=(6.0, 3.0), dpi=dpi, layout="constrained")
        self.canvas = _canvas(self.figure)
        self.canvas.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.canvas.setMinimumHeight(MIN_HEIGHT)
        self.canvas.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.canvas.mpl_connect("motion_notify_event", self._on_motion)
        self.canvas.mpl_connect("figure_leave_event", self._on_leave)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(self.header)
        layout.addWidget(self.canvas, 1)
        self.set_title(title if title is not None else tr(self.default_title))
        self._ready = True
        self.redraw()

    # ------------------------------------------------------------ what subclasses provide

    def draw(self, ax: Axes, data: Any, style: ChartStyle) -> list[HoverTarget]:
        raise NotImplementedError

    # ------------------------------------------------------------ public API

    @property
    def data(self) -> Any:
        return self._data

    @property
    def chart_style(self) -> ChartStyle:
        """The palette and locale the chart is drawn in (``style()`` is Qt's)."""
        return self._style

    @property
    def axes(self) -> Axes | None:
        """The axes the chart is drawn on (colour bars add others to the figure)."""
        self._ensure_built()
        return self._ax

    @property
    def hover_targets(self) -> list[HoverTarget]:
        self._ensure_built()
        return list(self._targets)

    @property
    def title(self) -> str:
        return self.title_label.text()

    def set_title(self, title: str) -> None:
        self.title_label.setText(title)
        self.setAccessibleName(title)
        self.canvas.setAccessibleName(title)

    def set_data(self, data: Any) -> None:
        """Show ``data`` (a value from :mod:`app.kpi.model`); ``None`` shows "no data"."""
        self._data = data
        if data is None:
            self._state, self._message = "empty", NO_DATA
        else:
            self._state = "data"
        self.redraw()

    def set_empty(self, message: str = NO_DATA) -> None:
        """Forget the data and show ``message`` instead of a chart."""
        self._data = None
        self._state, self._message = "empty", message
        self.redraw()

    def set_loading(self, message: str = "Computing…") -> None:
        """Show a faint ``message`` while new data is on its way."""
        self._state, self._message = "loading", message
        self.redraw()

    def redraw(self) -> None:
        """Draw the current state afresh (on the GUI thread only; matplotlib and Qt are not
        thread-safe, and a worker must hand its result over through a signal).

        A chart that is not visible (a tab in the background) is built when it is shown or
        asked for its axes, hover targets or an export: a dashboard that receives new
        figures for seven charts then builds only the ones on screen."""
        if not _on_gui_thread():
            raise RuntimeError("charts are drawn on the GUI thread only")
        if not self.isVisible():
            self._stale = True
            return
        self._build()

    def _ensure_built(self) -> None:
        if self._stale:
            self._build()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._ensure_built()

    def _build(self) -> None:
        self._stale = False
        style = self._style
        targets: list[HoverTarget] = []
        with style.context():
            self.figure.clear()
            self.figure.set_facecolor(style.bg)
            ax = self.figure.add_subplot()
            if self._state == "data":
                targets = self.draw(ax, self._data, style)
            else:
                draw_message(ax, style, style.tr(self._message), faint=self._state == "loading")
            annotation = ax.annotate(
                "",
                xy=(0, 0),
                xytext=(14, 14),
                textcoords="offset points",
                fontsize=8.5,
                color=style.fg,
                bbox={
                    "boxstyle": "round,pad=0.45",
                    "facecolor": style.bg,
                    "edgecolor": style.muted,
                    "linewidth": 0.8,
                    "alpha": 0.96,
                },
                zorder=100,
            )
            annotation.set_visible(False)
            annotation.set_in_layout(False)
        self._ax = ax
        self._annotation = annotation
        self._hovered = None
        self._set_targets(targets)
        self._draw_idle()

    def export(self, path: Path | str) -> Path:
        """Save the chart as it is shown to ``path``; the format follows the suffix
        (.png, .svg or .pdf)."""
        path = Path(path)
        fmt = EXPORT_FORMATS.get(path.suffix.lower())
        if fmt is None:
            raise ValueError(f"cannot export a chart as {path.suffix or 'a file without suffix'}")
        self._ensure_built()
        self._show_hover(None)
        style = self._style
        with style.context():
            self.figure.savefig(
                path,
                format=fmt,
                dpi=style.export_dpi if fmt == "png" else "figure",
                facecolor=style.bg,
                metadata={"Title": self.title} if fmt in ("svg", "pdf") else None,
            )
        self._draw_idle()
        return path

    def hover_text_at(self, x_px: float, y_px: float) -> str | None:
        """The hover text for a point of the canvas in Qt widget coordinates
        (device-independent pixels from the top left), or None. The canvas must have been
        drawn at its current size."""
        self._ensure_built()
        ratio = self.canvas.device_pixel_ratio
        target = self._hit(x_px * ratio, self.figure.bbox.height - y_px * ratio)
        return target.text if target else None

    def _draw_idle(self) -> None:
        self.canvas.draw_idle()

    # ------------------------------------------------------------ hover

    def _set_targets(self, targets: Sequence[HoverTarget]) -> None:
        self._targets = list(targets)
        self._points = np.array([(t.x, t.y) for t in targets], dtype=float).reshape(-1, 2)
        self._boxes = np.array(
            [t.box if t.box is not None else (np.nan,) * 4 for t in targets], dtype=float
        ).reshape(-1, 4)

    def _hit(self, x: float, y: float) -> HoverTarget | None:
        """The target nearest to display point ``(x, y)`` (physical pixels from the bottom
        left, as matplotlib counts) within the hover radius; inside a target's box counts
        as distance 0."""
        ax = self._ax
        if ax is None or not self._targets or not ax.bbox.contains(x, y):
            return None
        to_display = ax.transData.transform
        points = to_display(self._points)
        point_distance = np.hypot(points[:, 0] - x, points[:, 1] - y)
        has_box = ~np.isnan(self._boxes[:, 0])
        distance = point_distance.copy()
        if has_box.any():
            boxes = self._boxes[has_box]
            x_lo, x_hi = sorted(ax.get_xlim())
            y_lo, y_hi = sorted(ax.get_ylim())
            bx = np.clip(boxes[:, :2], x_lo, x_hi)
            by = np.clip(boxes[:, 2:], y_lo, y_hi)
            corner_a = to_display(np.column_stack([bx[:, 0], by[:, 0]]))
            corner_b = to_display(np.column_stack([bx[:, 1], by[:, 1]]))
            left = np.minimum(corner_a[:, 0], corner_b[:, 0])
            right = np.maximum(corner_a[:, 0], corner_b[:, 0])
            bottom = np.minimum(corner_a[:, 1], corner_b[:, 1])
            top = np.maximum(corner_a[:, 1], corner_b[:, 1])
            dx = np.maximum(np.maximum(left - x, x - right), 0.0)
            dy = np.maximum(np.maximum(bottom - y, y - top), 0.0)
            distance[has_box] = np.minimum(np.hypot(dx, dy), point_distance[has_box])
        # Among targets at the same distance (overlapping boxes) the nearer point wins.
        score = np.where(np.isfinite(distance), distance, np.inf) + 1e-6 * np.nan_to_num(
            point_distance, nan=1e9
        )
        best = int(np.argmin(score))
        radius = HOVER_RADIUS * self.canvas.device_pixel_ratio
        return self._targets[best] if distance[best] <= radius else None

    def _on_motion(self, event: Event) -> None:
        if not isinstance(event, LocationEvent) or event.x is None or event.y is None:
            self._show_hover(None)
            return
        self._show_hover(self._hit(event.x, event.y))

    def _on_leave(self, event: Event) -> None:
        self._show_hover(None)

    def _show_hover(self, target: HoverTarget | None) -> None:
        annotation, ax = self._annotation, self._ax
        if annotation is None or ax is None or target is self._hovered:
            return
        self._hovered = target
        if target is None:
            annotation.set_visible(False)
        else:
            px, py = ax.transData.transform((target.x, target.y))
            box = ax.bbox
            right = px > box.x0 + box.width * 0.55
            upper = py > box.y0 + box.height * 0.55
            annotation.xy = (target.x, target.y)
            annotation.set_text(target.text)
            annotation.set_position((-14 if right else 14, -14 if upper else 14))
            annotation.set_horizontalalignment("right" if right else "left")
            annotation.set_verticalalignment("top" if upper else "bottom")
            annotation.set_visible(True)
        self._draw_idle()

    @property
    def hover_annotation(self) -> Annotation | None:
        """The hover box (visible while the pointer is on a target)."""
        return self._annotation

    # ------------------------------------------------------------ theme and locale

    def _current_style(self) -> ChartStyle:
        locale = self._locale or chart_locale_from_qlocale(self.locale())
        return style_from_palette(palette_is_dark(self.palette()), locale, tr=tr)

    def changeEvent(self, event: QEvent) -> None:
        if self._ready and event.type() in (
            QEvent.Type.PaletteChange,
            QEvent.Type.ApplicationPaletteChange,
            QEvent.Type.LocaleChange,
        ):
            style = self._current_style()
            if style != self._style:
                self._style = style
                self.redraw()
        super().changeEvent(event)

    # ------------------------------------------------------------ export dialog

    def _export_dialog(self, suffix: str) -> None:
        folder = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
        proposal = str(Path(folder) / f"{_slug(self.title)}{suffix}")
        kind = EXPORT_FORMATS[suffix].upper()
        name, _ = QFileDialog.getSaveFileName(
            self, tr("Save chart"), proposal, f"{kind} (*{suffix})"
        )
        if not name:
            return
        path = Path(name)
        if path.suffix.lower() not in EXPORT_FORMATS:
            path = path.with_name(path.name + suffix)
        try:
            self.export(path)
        except OSError as exc:
            QMessageBox.warning(
                self, tr("Save chart"), tr("Could not save the chart: {error}").format(error=exc)
            )


# ------------------------------------------------------------------ the charts


class RevenueChart(ChartWidget):
    """Revenue per day, or per ISO week (``weekly``; by default when the period is longer
    than three months), against the prior period."""

    default_title = "Revenue"

    def __init__(
        self,
        title: str | None = None,
        parent: QWidget | None = None,
        *,
        weekly: bool | None = None,
        locale: ChartLocale | None = None,
    ) -> None:
        super().__init__(title, parent, locale=locale)
        self.weekly = weekly

    def is_weekly(self, data: RevenueSeries) -> bool:
        return self.weekly if self.weekly is not None else len(data.days) > 92

    def draw(self, ax: Axes, data: RevenueSeries, style: ChartStyle) -> list[HoverTarget]:
        weekly = self.is_weekly(data)
        return charts.draw_revenue(
            ax, data, style, weekly=weekly, moving_average=4 if weekly else 7
        )


class StockChart(ChartWidget):
    """On-hand of one SKU on one stand; given several series, a combo box picks the SKU."""

    default_title = "Stock"

    def __init__(
        self,
        title: str | None = None,
        parent: QWidget | None = None,
        *,
        locale: ChartLocale | None = None,
    ) -> None:
        super().__init__(title, parent, locale=locale)
        self._series: tuple[StockSeries, ...] = ()
        self.product_combo = QComboBox()
        self.product_combo.setAccessibleName(tr("Product"))
        self.product_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.product_combo.setMinimumContentsLength(16)
        self.product_combo.setVisible(False)
        self.header.insertWidget(2, self.product_combo)
        self.product_combo.currentIndexChanged.connect(self._pick)

    def set_data(self, data: StockSeries | Sequence[StockSeries] | None) -> None:
        """One series, or several to choose from (the chosen SKU is kept when present)."""
        if data is None:
            series: tuple[StockSeries, ...] = ()
        elif isinstance(data, StockSeries):
            series = (data,)
        else:
            series = tuple(data)
        keep = self.product_combo.currentData()
        self._series = series
        self.product_combo.blockSignals(True)
        self.product_combo.clear()
        for s in series:
            self.product_combo.addItem(s.product_name, s.product_id)
        index = max(0, self.product_combo.findData(keep)) if keep is not None else 0
        self.product_combo.setCurrentIndex(index if series else -1)
        self.product_combo.blockSignals(False)
        self.product_combo.setVisible(len(series) > 1)
        super().set_data(series[index] if series else None)

    def select_product(self, product_id: str) -> None:
        index = self.product_combo.findData(product_id)
        if index >= 0:
            self.product_combo.setCurrentIndex(index)

    def _pick(self, index: int) -> None:
        if 0 <= index < len(self._series):
            super().set_data(self._series[index])

    def draw(self, ax: Axes, data: StockSeries, style: ChartStyle) -> list[HoverTarget]:
        return charts.draw_stock(ax, data, style)


class SkuUnitsChart(ChartWidget):
    """Units sold per SKU, best and worst sellers."""

    default_title = "Units by product"

    def __init__(
        self,
        title: str | None = None,
        parent: QWidget | None = None,
        *,
        top: int = 8,
        currency: str = "EUR",
        locale: ChartLocale | None = None,
    ) -> None:
        super().__init__(title, parent, locale=locale)
        self.top = top
        self.currency = currency

    def draw(self, ax: Axes, data: Sequence[SkuUnits], style: ChartStyle) -> list[HoverTarget]:
        return charts.draw_sku_units(ax, data, style, top=self.top, currency=self.currency)


class RankingChart(ChartWidget):
    """The best stands by one KPI."""

    default_title = "Stand ranking"

    def __init__(
        self,
        title: str | None = None,
        parent: QWidget | None = None,
        *,
        top: int = 10,
        locale: ChartLocale | None = None,
    ) -> None:
        super().__init__(title, parent, locale=locale)
        self.top = top

    def draw(self, ax: Axes, data: StandRanking, style: ChartStyle) -> list[HoverTarget]:
        return charts.draw_ranking(ax, data, style, top=self.top)


class LocationScatterChart(ChartWidget):
    """Stands on the map plane coloured by one KPI; takes a :class:`StandRanking` (which
    names the KPI, its unit and currency)."""

    default_title = "Stands by location"

    def draw(self, ax: Axes, data: StandRanking, style: ChartStyle) -> list[HoverTarget]:
        return charts.draw_location_scatter(
            ax, data.stands, style, label=data.kpi_label, unit=data.unit, currency=data.currency
        )


class HeatmapChart(ChartWidget):
    """Sell-through per stand × product."""

    default_title = "Sell-through by stand and product"

    def draw(self, ax: Axes, data: SellThroughHeatmap, style: ChartStyle) -> list[HoverTarget]:
        return charts.draw_heatmap(ax, data, style)


class RefillFunnelChart(ChartWidget):
    """How far the period's refills got."""

    default_title = "Refill funnel"

    def draw(self, ax: Axes, data: RefillFlow, style: ChartStyle) -> list[HoverTarget]:
        return charts.draw_refill_funnel(ax, data, style)


class CycleTimeChart(ChartWidget):
    """How long refills take from request to confirmation."""

    default_title = "Refill cycle time"

    def draw(self, ax: Axes, data: RefillFlow, style: ChartStyle) -> list[HoverTarget]:
        return charts.draw_cycle_times(ax, data, style)
