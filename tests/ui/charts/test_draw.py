"""The draw functions on a plain matplotlib Figure, without Qt: the path the PDF report
takes. This module imports nothing from PySide6."""

from __future__ import annotations

import io
import math
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from itertools import pairwise
from typing import Any

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

from app.kpi.model import (
    FunnelStage,
    RefillFlow,
    RevenueSeries,
    SellThroughHeatmap,
    SkuUnits,
    StandRanking,
    StandValue,
    StockEvent,
    StockSeries,
    Unit,
)
from tests.ui.charts import samples
from ui.charts import draw
from ui.charts.formats import ChartLocale
from ui.charts.style import ChartStyle

LIGHT = ChartStyle.light()
DE = ChartStyle.light(ChartLocale.de())


@pytest.fixture(autouse=True)
def _warnings_fail() -> Iterator[None]:
    """Drawing must not warn (tight-layout, tick-formatter, deprecation warnings …)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def _axes(style: ChartStyle = LIGHT) -> tuple[Figure, Axes]:
    figure = style.new_figure((8, 4), dpi=100)
    with style.context():
        ax = figure.add_subplot()
    return figure, ax


def _render(
    fn: Callable[..., list[draw.HoverTarget]], data: Any, style: ChartStyle = LIGHT, **kw: Any
) -> tuple[Axes, list[draw.HoverTarget]]:
    figure, ax = _axes(style)
    with style.context():
        targets = fn(ax, data, style, **kw)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    assert buffer.getvalue().startswith(b"\x89PNG")
    return ax, targets


def _texts(ax: Axes) -> list[str]:
    return [t.get_text() for t in ax.texts]


def _bars(ax: Axes) -> list[Any]:
    return [patch for c in ax.containers if isinstance(c, BarContainer) for patch in c]


CASES: list[tuple[str, Callable[..., list[draw.HoverTarget]], Any, Any, dict[str, Any]]] = [
    (
        "revenue",
        draw.draw_revenue,
        samples.revenue(),
        RevenueSeries((), (), (), "EUR"),
        {},
    ),
    (
        "stock",
        draw.draw_stock,
        samples.stock(),
        StockSeries("p", "P", (), (), 10, 4, (), ()),
        {},
    ),
    ("sku_units", draw.draw_sku_units, samples.skus(), (), {}),
    (
        "ranking",
        draw.draw_ranking,
        samples.ranking(),
        StandRanking("revenue", "Revenue", Unit.MONEY, "EUR", ()),
        {},
    ),
    (
        "location",
        draw.draw_location_scatter,
        samples.stands(20, without_coordinates=2),
        (),
        {"label": "Revenue", "unit": Unit.MONEY},
    ),
    ("heatmap", draw.draw_heatmap, samples.heatmap(), SellThroughHeatmap((), (), (), (), ()), {}),
    ("funnel", draw.draw_refill_funnel, samples.refill_flow(), RefillFlow((), 0, 0, ()), {}),
    ("cycle_times", draw.draw_cycle_times, samples.refill_flow(), RefillFlow((), 0, 0, ()), {}),
]


@pytest.mark.parametrize(
    ("fn", "data", "kw"), [(c[1], c[2], c[4]) for c in CASES], ids=[c[0] for c in CASES]
)
@pytest.mark.parametrize("style", [ChartStyle.light(), ChartStyle.dark(ChartLocale.de())])
def test_draws_on_a_plain_figure(fn, data, kw, style: ChartStyle) -> None:
    ax, targets = _render(fn, data, style, **kw)
    assert targets
    assert draw.NO_DATA not in _texts(ax)
    for target in targets:
        assert target.text
        assert math.isfinite(target.x)
        assert math.isfinite(target.y)


@pytest.mark.parametrize(
    ("fn", "empty", "kw"), [(c[1], c[3], c[4]) for c in CASES], ids=[c[0] for c in CASES]
)
def test_empty_data_says_so(fn, empty, kw) -> None:
    ax, targets = _render(fn, empty, **kw)
    assert targets == []
    assert _texts(ax) == [draw.NO_DATA]
    assert not ax.axison


def test_no_data_text_is_translated() -> None:
    style = ChartStyle.light(tr=lambda text: {draw.NO_DATA: "Keine Daten"}.get(text, text))
    ax, _ = _render(draw.draw_ranking, CASES[3][3], style)
    assert _texts(ax) == ["Keine Daten"]


# ------------------------------------------------------------------ revenue


def _series(values: list[str], prior: list[str] | None = None) -> RevenueSeries:
    days = samples.days(len(values))
    return RevenueSeries(
        days=days,
        revenue=tuple(Decimal(v) for v in values),
        prior=tuple(Decimal(v) for v in (prior or ["0"] * len(values))),
        currency="EUR",
    )


def test_daily_revenue_bars_and_hover_text() -> None:
    ax, targets = _render(draw.draw_revenue, _series(["10.50", "0", "7.25"]), DE)
    assert [b.get_height() for b in _bars(ax)] == [10.5, 0.0, 7.25]
    assert targets[0].text.splitlines() == ["04.11.", "Revenue: 10,50 €", "Prior period: 0,00 €"]
    legend = ax.get_legend()
    assert legend is not None
    assert [t.get_text() for t in legend.get_texts()] == ["Revenue", "Prior period"]


def test_weekly_revenue_sums_iso_weeks() -> None:
    # 10 days from Monday 4 Nov: a full week, then Mon-Wed of the next.
    values = [str(i + 1) for i in range(10)]
    series = _series(values, prior=["1"] * 10)
    mondays, revenue, prior = draw.weekly_totals(series)
    assert mondays == [date(2024, 11, 4), date(2024, 11, 11)]
    assert revenue == [Decimal(28), Decimal(27)]
    assert prior == [Decimal(7), Decimal(3)]
    ax, targets = _render(draw.draw_revenue, series, weekly=True)
    assert [b.get_height() for b in _bars(ax)] == [28.0, 27.0]
    assert "(3 days in period)" in targets[1].text
    assert "€27.00" in targets[1].text


def test_moving_average_only_where_the_window_is_full() -> None:
    values = [str(v) for v in range(1, 11)]
    ax, targets = _render(draw.draw_revenue, _series(values), moving_average=3)
    (average,) = [line for line in ax.lines if line.get_label() == "3-day average"]
    y = np.asarray(average.get_ydata(), dtype=float)
    assert np.isnan(y[:2]).all()
    assert y[2:].tolist() == pytest.approx([2, 3, 4, 5, 6, 7, 8, 9])
    assert "Average" not in targets[1].text
    assert "Average: €2.00" in targets[2].text


def test_revenue_without_sales_in_either_period_says_so() -> None:
    ax, targets = _render(draw.draw_revenue, _series(["0"] * 14))
    assert targets == []
    assert _texts(ax) == [draw.NO_SALES_EITHER]
    assert not ax.axison


def test_revenue_without_sales_but_prior_sales_shows_the_prior() -> None:
    series = _series(["0"] * 14, prior=["0", "120.50", "80", *["40"] * 11])
    ax, targets = _render(draw.draw_revenue, series)
    assert ax.axison
    assert draw.NO_SALES in _texts(ax)
    legend = ax.get_legend()
    assert legend is not None
    # Nothing to average: no flat average line lying on the axis; and no legend entry for
    # revenue bars that are not there.
    assert [t.get_text() for t in legend.get_texts()] == ["Prior period"]
    assert targets[1].text.splitlines() == ["Nov 5", "Revenue: €0.00", "Prior period: €120.50"]
    assert ax.get_ylim()[0] == 0
    assert ax.get_ylim()[1] >= 120.5


@pytest.mark.parametrize("values", [["0.02", "0", "0.01"], ["0.4", "0.1", "0"]])
def test_revenue_axis_spans_at_least_one_currency_unit(values) -> None:
    ax, _ = _render(draw.draw_revenue, _series(values))
    assert ax.get_ylim() == (0.0, pytest.approx(1.0))
    ticks = [t for t in ax.get_yticks() if 0 <= t <= 1]
    assert len(ticks) >= 3
    assert all(round(t * 100) % 10 == 0 for t in ticks)  # no €0.01, €0.03 …


@pytest.mark.parametrize(("days", "drawn"), [(6, False), (7, False), (8, True)])
def test_moving_average_drawn_only_when_it_makes_a_line(days, drawn) -> None:
    ax, targets = _render(draw.draw_revenue, samples.revenue(days))
    legend = ax.get_legend()
    assert legend is not None
    assert ("7-day average" in [t.get_text() for t in legend.get_texts()]) is drawn
    assert any(line.get_label() == "7-day average" for line in ax.lines) is drawn
    assert any("Average" in t.text for t in targets) is drawn


@pytest.mark.parametrize("kw", [{}, {"kind": "line"}, {"weekly": True}])
def test_revenue_has_headroom_above_the_highest_value(kw) -> None:
    series = _series(["10", "250", "40", "90", "120", "60", "30", "75", "95"], prior=["200"] * 9)
    ax, _ = _render(draw.draw_revenue, series, **kw)
    highest = max(b.get_height() for b in _bars(ax)) if _bars(ax) else 250.0
    assert ax.get_ylim()[0] == 0
    assert ax.get_ylim()[1] >= highest * 1.07


def test_long_period_draws_a_line() -> None:
    ax, targets = _render(draw.draw_revenue, samples.revenue(200))
    assert not _bars(ax)
    assert len(targets) == 200
    assert ax.lines[0].get_label() == "Revenue"


# ------------------------------------------------------------------ stock


def test_stock_levels_and_events() -> None:
    days = samples.days(5)
    series = StockSeries(
        product_id="p1",
        product_name="Water",
        days=days,
        on_hand=(10, 8, 20, 0, 4),
        par_level=24,
        reorder_point=8,
        deliveries=(StockEvent(days[2], 14),),
        counts=(StockEvent(days[4], -1, counted=4),),
    )
    ax, targets = _render(draw.draw_stock, series)
    texts = _texts(ax)
    assert "Par 24" in texts
    assert "Reorder 8" in texts
    assert "+14" in texts
    markers = {c.get_label(): c for c in ax.collections if isinstance(c, PathCollection)}
    assert markers["Delivery"].get_offsets().tolist() == [[ax.lines[0].get_xdata()[2] + 0.5, 20]]
    assert markers["Count"].get_offsets()[0][1] == 4
    assert "Out of stock" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert "Delivered +14" in targets[2].text
    assert "Counted 4 (variance -1)" in targets[4].text


def _marker_centres(ax: Axes, label: str) -> np.ndarray:
    """Display positions (pixels) of the markers of all scatters drawn for ``label``."""
    collections = [
        c
        for c in ax.collections
        if isinstance(c, PathCollection) and c.get_label() in (label, f"_{label}")
    ]
    centres = np.concatenate(
        [c.get_offset_transform().transform(c.get_offsets()) for c in collections]
    )
    return centres[np.argsort(centres[:, 0])]  # left to right


def test_stock_delivery_and_count_on_the_same_day_are_both_visible() -> None:
    days = samples.days(6)
    series = StockSeries(
        product_id="p1",
        product_name="Water",
        days=days,
        on_hand=(6, 4, 20, 18, 16, 14),
        par_level=24,
        reorder_point=8,
        deliveries=(StockEvent(days[2], 16), StockEvent(days[4], 0)),
        counts=(StockEvent(days[2], 0, counted=20),),
    )
    ax, targets = _render(draw.draw_stock, series)
    (delivery, lone), (count,) = _marker_centres(ax, "Delivery"), _marker_centres(ax, "Count")
    assert delivery[0] == pytest.approx(count[0])  # same day
    assert delivery[1] - count[1] >= 9  # stacked above the diamond, not hidden under it
    # A delivery with no count that day stays on the line.
    on_line = ax.transData.transform((ax.lines[0].get_xdata()[4] + 0.5, 16))
    assert lone.tolist() == pytest.approx(on_line.tolist())
    # The quantity label sits above the lifted triangle.
    (label,) = [t for t in ax.texts if t.get_text() == "+16"]
    assert label.xyann[1] > 9
    legend = ax.get_legend()
    assert legend is not None
    assert [t.get_text() for t in legend.get_texts()].count("Delivery") == 1
    # Hovering the day shows both events.
    assert targets[2].text.splitlines() == [
        "Nov 6",
        "On hand: 20",
        "Delivered +16",
        "Counted 20 (variance +0)",
    ]


# ------------------------------------------------------------------ bars


def _skus(n: int) -> tuple[SkuUnits, ...]:
    return tuple(
        SkuUnits(f"p{i}", f"Product {i:02d}", i * 3, Decimal(i), Decimal("0.5")) for i in range(n)
    )


def test_sku_units_best_and_worst() -> None:
    ax, targets = _render(draw.draw_sku_units, _skus(20), top=8)
    widths = [b.get_width() for b in _bars(ax)]
    assert len(widths) == 16
    assert widths[:8] == [57, 54, 51, 48, 45, 42, 39, 36]  # best first
    assert widths[8:] == [21, 18, 15, 12, 9, 6, 3, 0]
    assert "⋯ 4 more" in "".join(_texts(ax))
    assert "57 · 50%" in _texts(ax)
    assert "Sell-through: 50.0%" in targets[0].text


def test_sku_units_all_when_few() -> None:
    ax, _ = _render(draw.draw_sku_units, _skus(5), top=8)
    assert [b.get_width() for b in _bars(ax)] == [12, 9, 6, 3, 0]
    assert not any("more" in t for t in _texts(ax))


def test_sku_units_all_zero_says_so() -> None:
    data = tuple(SkuUnits(f"p{i}", f"Product {i}", 0, Decimal(0), None) for i in range(5))
    ax, targets = _render(draw.draw_sku_units, data)
    assert targets == []
    assert _texts(ax) == [draw.NO_UNITS]
    assert not ax.axison


def _ranking(values: list[str | None], unit: Unit = Unit.MONEY) -> StandRanking:
    stands = tuple(
        StandValue(f"s{i}", f"Stand {i}", "Berlin", 52.5, 13.4, None if v is None else Decimal(v))
        for i, v in enumerate(values)
    )
    return StandRanking("revenue", "Revenue", unit, "EUR", stands)


def test_ranking_bars_and_labels() -> None:
    ax, targets = _render(draw.draw_ranking, _ranking(["1234.5", "900", "12", None]), DE)
    assert [b.get_width() for b in _bars(ax)] == [1234.5, 900.0, 12.0]
    assert [t for t in _texts(ax) if "€" in t] == ["1.234,50 €", "900,00 €", "12,00 €"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Stand 0", "Stand 1", "Stand 2"]
    assert ax.yaxis_inverted()  # best at the top
    assert targets[0].text == "1. Stand 0 · Berlin\nRevenue: 1.234,50 €"


def test_ranking_top_and_ratio_unit() -> None:
    ax, _ = _render(draw.draw_ranking, _ranking(["0.5", "0.25", "0.1"], Unit.RATIO), top=2)
    assert len(_bars(ax)) == 2
    assert "50.0%" in _texts(ax)
    assert ax.get_title(loc="right") == "top 2 of 3"


# ------------------------------------------------------------------ map, heat map, refills


def test_location_scatter_omits_stands_without_coordinates() -> None:
    data = samples.stands(10, without_coordinates=3)
    ax, targets = _render(draw.draw_location_scatter, data, label="Revenue", unit=Unit.MONEY)
    assert len(targets) == 7
    assert ax.get_title(loc="right") == "3 stands without coordinates not shown"
    assert ax.get_aspect() == pytest.approx(1 / math.cos(math.radians(52.1)), rel=0.02)
    assert len(ax.figure.axes) == 2  # the colour bar


def test_location_scatter_without_any_coordinates() -> None:
    data = samples.stands(3, without_coordinates=3)
    ax, targets = _render(draw.draw_location_scatter, data, label="Revenue", unit=Unit.MONEY)
    assert targets == []
    assert _texts(ax) == ["No stand has map coordinates"]


def test_heatmap_blank_where_not_stocked() -> None:
    data = SellThroughHeatmap(
        stand_ids=("a", "b"),
        stand_names=("Kiosk A", "Kiosk B"),
        product_ids=("x", "y", "z"),
        product_names=("Water", "Cola", "Gum"),
        values=(
            (Decimal("0.5"), None, Decimal("1")),
            (Decimal("0.125"), Decimal("0"), None),
        ),
    )
    ax, targets = _render(draw.draw_heatmap, data, DE)
    (image,) = [i for i in ax.get_images() if isinstance(i, AxesImage)]
    array = image.get_array()
    assert array.mask.tolist() == [[False, True, False], [False, False, True]]
    assert sorted(_texts(ax)) == ["0 %", "100 %", "13 %", "50 %"]
    assert len(targets) == 6
    assert targets[1].text == "Kiosk A\nCola: not stocked"
    assert targets[3].text == "Kiosk B\nWater: 12,5 %"
    assert targets[3].box == (-0.5, 0.5, 0.5, 1.5)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Water", "Cola", "Gum"]


def test_heatmap_big_grid_without_cell_labels() -> None:
    ax, targets = _render(draw.draw_heatmap, samples.heatmap(30, 20))
    assert _texts(ax) == []
    assert len(targets) == 600
    shown = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert 0 < len(shown) <= 30  # thinned out to what fits


def test_refill_funnel_counts_and_shares() -> None:
    ax, targets = _render(draw.draw_refill_funnel, samples.refill_flow())
    assert [b.get_width() for b in _bars(ax)] == [40, 34, 30, 27, 9]
    assert "40 · 100%" in _texts(ax)
    assert "9 · 22%" in _texts(ax)
    assert ax.get_xlabel() == "Rejected: 4 · Cancelled: 2"
    assert targets[1].text == "Approved: 34\n85.0% of requested\n85.0% of the previous step"


def test_refill_funnel_all_zero_is_empty() -> None:
    flow = RefillFlow((FunnelStage("requested", "Requested", 0),), 0, 0, ())
    ax, _ = _render(draw.draw_refill_funnel, flow)
    assert _texts(ax) == [draw.NO_DATA]


@pytest.mark.parametrize(
    ("hours", "unit", "median"),
    [
        ((10.0, 20.0, 30.0), "hours", "Median 20.0 hours"),
        ((50.0, 72.0, 96.0), "days", "Median 3.0 days"),
    ],
)
def test_cycle_times_units_and_median(hours, unit, median) -> None:
    ax, targets = _render(draw.draw_cycle_times, RefillFlow((), 0, 0, hours))
    assert sum(b.get_height() for b in _bars(ax)) == 3
    assert median in _texts(ax)
    assert ax.get_xlabel() == f"Request to confirmation, {unit}"
    assert sum(int(t.text.split(": ")[1].split()[0]) for t in targets) == 3


@pytest.mark.parametrize(
    ("hours", "edges", "text"),
    [
        ((5.0,), (4.5, 5.5), "4.5–5.5 hours: 1 refill"),
        ((5.3,), (4.5, 5.5), "4.5–5.5 hours: 1 refill"),
        ((0.2,), (0.0, 1.0), "0.0–1.0 hours: 1 refill"),
        ((80.0, 80.0), (2.5, 3.5), "2.5–3.5 days: 2 refills"),
    ],
)
def test_cycle_times_single_value(hours, edges, text) -> None:
    ax, targets = _render(draw.draw_cycle_times, RefillFlow((), 0, 0, hours))
    (bar,) = _bars(ax)
    assert (bar.get_x(), bar.get_x() + bar.get_width()) == pytest.approx(edges)
    left, right = ax.get_xlim()
    # One bin's width of room on either side (never below zero): not one bar filling the
    # whole axes.
    assert left == pytest.approx(max(0.0, edges[0] - 1))
    assert right == pytest.approx(edges[1] + 1)
    assert [t.text for t in targets] == [text]
    n = len(hours)
    assert ax.get_title(loc="right") == (
        "1 refill confirmed" if n == 1 else f"{n} refills confirmed"
    )


def test_cycle_times_counts_refills_in_the_plural() -> None:
    ax, targets = _render(draw.draw_cycle_times, RefillFlow((), 0, 0, (1.0, 2.0, 2.5, 9.0)))
    assert ax.get_title(loc="right") == "4 refills confirmed"
    texts = [t.text.split(": ")[1] for t in targets]
    assert "1 refill" in texts
    assert all(t in ("0 refills", "1 refill") or t.endswith(" refills") for t in texts)


# ------------------------------------------------------------------ isolation


def test_drawing_leaves_global_rcparams_alone() -> None:
    import matplotlib

    before = dict(matplotlib.rcParams)
    _render(draw.draw_revenue, samples.revenue(), ChartStyle.dark())
    assert dict(matplotlib.rcParams) == before


def _run(code: str) -> None:
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_draw_modules_do_not_load_qt() -> None:
    _run(
        "import sys, ui.charts.draw, ui.charts.style, ui.charts.formats\n"
        "assert 'PySide6' not in sys.modules, 'Qt loaded'\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot loaded'"
    )


def test_importing_ui_does_not_load_matplotlib() -> None:
    _run("import sys, ui, ui.charts\nassert 'matplotlib' not in sys.modules")


# ------------------------------------------------------------------ legibility


def _overlaps(boxes: list[Any]) -> bool:
    boxes = sorted(boxes, key=lambda b: b.x0)
    return any(a.x1 > b.x0 for a, b in pairwise(boxes))


@pytest.mark.parametrize("size", [(4.2, 2.6), (8.0, 4.0), (12.0, 4.0)])
@pytest.mark.parametrize(
    ("fn", "data", "kw"),
    [
        (draw.draw_revenue, samples.revenue(9), {}),
        (draw.draw_revenue, samples.revenue(28), {}),
        (draw.draw_revenue, samples.revenue(91), {}),
        (draw.draw_revenue, samples.revenue(365), {}),
        (draw.draw_revenue, samples.revenue(365), {"weekly": True}),
        (draw.draw_stock, samples.stock(30), {}),
    ],
)
def test_date_labels_never_overlap(fn, data, kw, size) -> None:
    figure = LIGHT.new_figure(size, dpi=96)
    with LIGHT.context():
        ax = figure.add_subplot()
        fn(ax, data, LIGHT, **kw)
        canvas = FigureCanvasAgg(figure)
        canvas.draw()
    renderer = canvas.get_renderer()
    labels = [t for t in ax.get_xticklabels() if t.get_text() and t.get_visible()]
    assert len(labels) >= 2
    assert not _overlaps([t.get_window_extent(renderer) for t in labels])


@pytest.mark.parametrize("size", [(4.2, 2.6), (8.0, 4.0)])
def test_heatmap_names_never_overlap(size) -> None:
    figure = LIGHT.new_figure(size, dpi=96)
    with LIGHT.context():
        ax = figure.add_subplot()
        draw.draw_heatmap(ax, samples.heatmap(60, 20), LIGHT)
        canvas = FigureCanvasAgg(figure)
        canvas.draw()
    renderer = canvas.get_renderer()
    labels = [t for t in ax.get_yticklabels() if t.get_text()]
    assert len(labels) >= 3
    boxes = sorted((t.get_window_extent(renderer) for t in labels), key=lambda b: b.y0)
    assert all(a.y1 <= b.y0 for a, b in pairwise(boxes))
