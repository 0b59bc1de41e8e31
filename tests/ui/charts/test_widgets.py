"""The chart widgets: drawing on data, empty and loading states, replacing a drawing, export,
hover values at pixel positions, light/dark palettes and the GUI-thread rule."""

from __future__ import annotations

import threading
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from matplotlib import dates as mdates
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from PySide6.QtCore import QLocale, QPoint, Qt
from PySide6.QtGui import QColor, QImage, QPalette
from PySide6.QtWidgets import QApplication

from app.kpi.model import (
    RefillFlow,
    RevenueSeries,
    SellThroughHeatmap,
    StandRanking,
    StandValue,
    StockSeries,
    Unit,
)
from tests.ui.charts import samples
from ui.charts.draw import NO_DATA
from ui.charts.formats import ChartLocale, format_day, format_money
from ui.charts.style import ChartStyle
from ui.charts.widget import (
    ChartWidget,
    CycleTimeChart,
    HeatmapChart,
    LocationScatterChart,
    RankingChart,
    RefillFunnelChart,
    RevenueChart,
    SkuUnitsChart,
    StockChart,
    chart_locale_from_qlocale,
)

DE = ChartLocale.de()


@pytest.fixture
def make(qtbot) -> Callable[..., Any]:
    def make_chart(cls: type[ChartWidget], *args: Any, **kw: Any) -> Any:
        kw.setdefault("locale", ChartLocale.en())
        chart = cls(*args, **kw)
        qtbot.addWidget(chart)
        chart.resize(800, 400)
        chart.show()
        qtbot.waitExposed(chart)
        return chart

    return make_chart


def _drawn(chart: ChartWidget) -> Any:
    chart.canvas.draw()
    assert chart.axes is not None
    return chart.axes


def _texts(chart: ChartWidget) -> list[str]:
    """The texts drawn on the chart's axes, without the (hidden) hover box."""
    return [t.get_text() for t in _drawn(chart).texts if t is not chart.hover_annotation]


def _bars(chart: ChartWidget) -> list[Any]:
    ax = _drawn(chart)
    return [p for c in ax.containers if isinstance(c, BarContainer) for p in c]


def _ranking(values: dict[str, str]) -> StandRanking:
    stands = tuple(
        StandValue(f"s{i}", name, "Berlin", 52.5 + i / 100, 13.4, Decimal(v))
        for i, (name, v) in enumerate(values.items())
    )
    return StandRanking("revenue", "Revenue", Unit.MONEY, "EUR", stands)


CHARTS: list[tuple[type[ChartWidget], Any, Any]] = [
    (RevenueChart, samples.revenue(), RevenueSeries((), (), (), "EUR")),
    (StockChart, samples.stock(), StockSeries("p", "P", (), (), 10, 4, (), ())),
    (SkuUnitsChart, samples.skus(), ()),
    (RankingChart, samples.ranking(), StandRanking("r", "Revenue", Unit.MONEY, "EUR", ())),
    (LocationScatterChart, samples.ranking(), StandRanking("r", "R", Unit.MONEY, "EUR", ())),
    (HeatmapChart, samples.heatmap(), SellThroughHeatmap((), (), (), (), ())),
    (RefillFunnelChart, samples.refill_flow(), RefillFlow((), 0, 0, ())),
    (CycleTimeChart, samples.refill_flow(), RefillFlow((), 0, 0, ())),
]
IDS = [c[0].__name__ for c in CHARTS]


@pytest.mark.parametrize(("cls", "data", "empty"), CHARTS, ids=IDS)
def test_each_chart_draws_and_empties(make, cls, data, empty) -> None:
    chart = make(cls)
    assert _texts(chart) == [NO_DATA]  # before any data
    chart.set_data(data)
    texts = _texts(chart)
    assert NO_DATA not in texts
    assert chart.hover_targets
    assert chart.accessibleName() == chart.title
    chart.set_data(empty)
    assert _texts(chart) == [NO_DATA]
    assert chart.hover_targets == []


def test_ranking_bars_follow_the_data(make) -> None:
    chart = make(RankingChart, "Revenue by stand", locale=DE)
    chart.set_data(_ranking({"Kiosk A": "1234.5", "Kiosk B": "800", "Kiosk C": "15.25"}))
    assert [b.get_width() for b in _bars(chart)] == [1234.5, 800.0, 15.25]
    assert {"1.234,50 €", "800,00 €", "15,25 €"} <= set(_texts(chart))
    # A new period: the old bars are gone, not drawn over.
    chart.set_data(_ranking({"Kiosk D": "99", "Kiosk E": "42"}))
    assert [b.get_width() for b in _bars(chart)] == [99.0, 42.0]
    labels = [t.get_text() for t in chart.axes.get_yticklabels()]
    assert labels == ["Kiosk D", "Kiosk E"]
    assert len(chart.figure.axes) == 1


def test_weekly_revenue_bars_sum_the_days(make) -> None:
    days = samples.days(14)  # two ISO weeks from a Monday
    series = RevenueSeries(
        days=days,
        revenue=tuple(Decimal("10.10") for _ in days[:7]) + tuple(Decimal(2) for _ in days[7:]),
        prior=tuple(Decimal(1) for _ in days),
        currency="EUR",
    )
    chart = make(RevenueChart, weekly=True)
    chart.set_data(series)
    assert [b.get_height() for b in _bars(chart)] == pytest.approx([70.7, 14.0])
    chart.weekly = False
    chart.redraw()
    assert len(_bars(chart)) == 14


def test_long_period_defaults_to_weeks(make) -> None:
    chart = make(RevenueChart)
    chart.set_data(samples.revenue(120))
    assert len(_bars(chart)) == 18  # 120 days from a Monday: 17 weeks and one day


def test_loading_and_message_states(make) -> None:
    chart = make(RankingChart)
    chart.set_data(samples.ranking())
    chart.set_loading()
    assert _texts(chart) == ["Computing…"]
    assert chart.data is not None  # kept until the new data arrive
    chart.set_empty("Pick a stand")
    assert _texts(chart) == ["Pick a stand"]
    assert chart.data is None
    chart.set_data(None)
    assert _texts(chart) == [NO_DATA]


def test_stock_chart_picks_a_product(make) -> None:
    water = samples.stock(10)
    cola = StockSeries("p-cola", "Cola", water.days, (5,) * 10, 12, 3, deliveries=(), counts=())
    chart = make(StockChart)
    chart.set_data(water)
    assert not chart.product_combo.isVisible()
    chart.set_data((water, cola))
    assert chart.product_combo.isVisible()
    assert chart.product_combo.count() == 2
    assert chart.data is water
    chart.product_combo.setCurrentIndex(1)
    assert chart.data is cola
    assert "Par 12" in _texts(chart)
    chart.set_data((water, cola))  # a refresh keeps the chosen product
    assert chart.data is cola
    chart.select_product("p-water")
    assert chart.data is water
    chart.set_data(())
    assert _texts(chart) == [NO_DATA]


@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf"])
def test_export(make, tmp_path: Path, suffix: str) -> None:
    chart = make(RevenueChart, "Revenue")
    chart.set_data(samples.revenue())
    path = chart.export(tmp_path / f"revenue{suffix}")
    assert path.stat().st_size > 0
    if suffix == ".png":
        image = QImage(str(path))
        assert not image.isNull()
        assert image.width() > 0
        assert image.height() > 0
    elif suffix == ".svg":
        assert ET.parse(path).getroot().tag == "{http://www.w3.org/2000/svg}svg"
    else:
        assert path.read_bytes().startswith(b"%PDF")


def test_export_refuses_unknown_formats(make, tmp_path: Path) -> None:
    chart = make(RevenueChart)
    with pytest.raises(ValueError, match=r"\.jpg"):
        chart.export(tmp_path / "chart.jpg")


def test_export_button_is_reachable(make) -> None:
    chart = make(RevenueChart)
    button = chart.export_button
    assert button.focusPolicy() == Qt.FocusPolicy.StrongFocus
    assert button.accessibleName() == "Export chart"
    labels = [a.text() for a in button.menu().actions()]
    assert labels == ["Save as PNG…", "Save as SVG…", "Save as PDF…"]


def _widget_point(chart: ChartWidget, x: float, y: float) -> QPoint:
    """Data coordinates → Qt canvas coordinates (device-independent, from the top left)."""
    ax = _drawn(chart)
    dx, dy = ax.transData.transform((x, y))
    ratio = chart.canvas.device_pixel_ratio
    return QPoint(round(dx / ratio), round((chart.figure.bbox.height - dy) / ratio))


def test_hover_text_at_a_bar(make, qtbot) -> None:
    chart = make(RankingChart, locale=DE)
    chart.set_data(_ranking({"Kiosk A": "1234.5", "Kiosk B": "800", "Kiosk C": "15.25"}))
    # The middle of Kiosk B's bar, in Qt widget pixels.
    point = _widget_point(chart, 400, 1)
    text = chart.hover_text_at(point.x(), point.y())
    assert text is not None
    assert "Kiosk B" in text
    assert "800,00 €" in text
    # Far right of the bar, still on its row: the row counts.
    point = _widget_point(chart, 1300, 0)
    assert "1.234,50 €" in (chart.hover_text_at(point.x(), point.y()) or "")
    assert chart.hover_text_at(2, 2) is None  # outside the axes

    # A real pointer move shows the hover box; leaving hides it.
    point = _widget_point(chart, 400, 2)
    qtbot.mouseMove(chart.canvas, point)
    annotation = chart.hover_annotation
    qtbot.waitUntil(lambda: annotation.get_visible())
    assert "15,25 €" in annotation.get_text()
    qtbot.mouseMove(chart.canvas, QPoint(2, 2))
    qtbot.waitUntil(lambda: not annotation.get_visible())


def test_hover_near_a_point(make) -> None:
    chart = make(LocationScatterChart)
    ranking = _ranking({"Kiosk A": "100", "Kiosk B": "2500.75"})
    chart.set_data(ranking)
    b = ranking.stands[1]
    point = _widget_point(chart, b.longitude, b.latitude)
    text = chart.hover_text_at(point.x() + 5, point.y() - 5)  # within 12 px
    assert text == "Kiosk B · Berlin\nRevenue: €2,500.75"
    assert chart.hover_text_at(point.x() + 40, point.y()) is None


def test_hover_revenue_day_column(make) -> None:
    series = samples.revenue(14)
    chart = make(RevenueChart, locale=DE)
    chart.set_data(series)
    day = series.days[3]
    point = _widget_point(chart, mdates.date2num(day), 1)  # low in the day's column
    text = chart.hover_text_at(point.x(), point.y()) or ""
    assert text.startswith(format_day(day, DE))
    assert format_money(series.revenue[3], "EUR", DE) in text


def _dark_palette() -> QPalette:
    palette = QPalette()
    for role, color in (
        (QPalette.ColorRole.Window, "#202326"),
        (QPalette.ColorRole.Base, "#1b1d20"),
        (QPalette.ColorRole.Text, "#e6e6e6"),
        (QPalette.ColorRole.WindowText, "#e6e6e6"),
    ):
        palette.setColor(role, QColor(color))
    return palette


def test_dark_palette_restyles(make) -> None:
    chart = make(RevenueChart)
    chart.set_data(samples.revenue())
    _drawn(chart)
    light = chart.figure.get_facecolor()
    assert chart.chart_style.name == "light"
    chart.setPalette(_dark_palette())
    assert chart.chart_style.name == "dark"
    assert chart.figure.get_facecolor() != light
    assert QColor.fromRgbF(*chart.figure.get_facecolor()[:3]).lightness() < 64
    assert len(_bars(chart)) == 28  # the data are redrawn, not lost
    chart.setPalette(QPalette(QColor("#efefef")))
    assert chart.chart_style.name == "light"
    assert chart.figure.get_facecolor() == light


def test_redraw_only_on_the_gui_thread(make) -> None:
    chart = make(RevenueChart)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            chart.redraw()
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert len(errors) == 1
    assert "GUI thread" in str(errors[0])


def test_canvas_is_resizable(make, qtbot) -> None:
    chart = make(HeatmapChart)
    chart.set_data(samples.heatmap())
    assert chart.canvas.minimumHeight() >= 220
    chart.resize(500, 300)
    qtbot.waitUntil(lambda: chart.canvas.width() < 520)
    _drawn(chart)
    width, height = chart.figure.bbox.width, chart.figure.bbox.height
    ratio = chart.canvas.device_pixel_ratio
    assert width == pytest.approx(chart.canvas.width() * ratio, abs=2)
    assert height == pytest.approx(chart.canvas.height() * ratio, abs=2)


def test_locale_from_qlocale() -> None:
    de = chart_locale_from_qlocale(QLocale(QLocale.Language.German, QLocale.Country.Germany))
    assert format_money(Decimal("1234.56"), "EUR", de) == "1.234,56 €"
    assert format_day(samples.START, de) == "04.11."
    us = chart_locale_from_qlocale(QLocale(QLocale.Language.English, QLocale.Country.UnitedStates))
    assert format_money(Decimal("1234.56"), "EUR", us) == "€1,234.56"
    assert format_money(Decimal("1234.56"), "USD", us) == "$1,234.56"
    assert format_day(samples.START, us) == "Nov 4"
    assert chart_locale_from_qlocale(QLocale.c()) == ChartLocale.en()


def test_style_is_per_figure(make) -> None:
    import matplotlib

    before = dict(matplotlib.rcParams)
    chart = make(RevenueChart)
    chart.setPalette(_dark_palette())
    chart.set_data(samples.revenue())
    _drawn(chart)
    assert dict(matplotlib.rcParams) == before
    assert isinstance(chart.figure, Figure)
    assert chart.chart_style == ChartStyle.dark(ChartLocale.en())


def test_hidden_chart_draws_when_shown(qtbot) -> None:
    chart = RevenueChart(locale=ChartLocale.en())
    qtbot.addWidget(chart)
    chart.resize(800, 400)
    chart.set_data(samples.revenue())
    QApplication.processEvents()
    assert not hasattr(chart.canvas, "renderer")  # nothing drawn for a hidden tab
    chart.show()
    qtbot.waitUntil(lambda: hasattr(chart.canvas, "renderer"))
    assert chart.hover_text_at(400, 200) is not None


def test_squeezed_chart_draws_without_warning(make) -> None:
    chart = make(HeatmapChart)
    chart.set_data(samples.heatmap())
    # Smaller than the widget allows, as a splitter or a scaled screen can make it.
    chart.figure.set_size_inches(1.0, 0.8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        chart.canvas.draw()
