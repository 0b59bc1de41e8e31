"""Draw the KPI charts onto one matplotlib ``Axes``; no Qt, no pyplot.

The GUI (:mod:`ui.charts.widget`) and the PDF report call the same functions, so a chart
looks the same on screen and on paper. Every function has the shape
``draw_xxx(ax, data, style, **options) -> list[HoverTarget]``: it draws ``data`` (a value
from :mod:`app.kpi.model`) onto ``ax`` in ``style`` and returns what a pointer can hover,
in data coordinates. Empty data draws a centred "No data for this period" and returns no
targets. Call them inside ``with style.context():`` so fonts and sizes follow the house
style; the colours are set explicitly here.

Money arrives as ``Decimal`` and becomes ``float`` only here, for drawing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, cast

import matplotlib
import numpy as np
from matplotlib import dates as mdates
from matplotlib import ticker
from matplotlib.axes import Axes
from matplotlib.axis import Axis, XAxis
from matplotlib.colorbar import Colorbar
from matplotlib.colors import Normalize, to_rgb, to_rgba
from matplotlib.transforms import ScaledTranslation, Transform

from app.kpi.model import (
    RefillFlow,
    RevenueSeries,
    SellThroughHeatmap,
    SkuUnits,
    StandRanking,
    StandValue,
    StockSeries,
    Unit,
)
from ui.charts.formats import (
    NumberFormatter,
    date_formatter,
    format_day,
    format_money,
    format_number,
    format_percent,
    format_value,
    money_formatter,
    percent_formatter,
    unit_formatter,
)
from ui.charts.style import ChartStyle

NO_DATA = "No data for this period"
NO_SALES = "No sales in this period"
NO_SALES_EITHER = "No sales in this period or the prior one"
NO_UNITS = "No units sold in this period"
INF = math.inf

#: Room above the highest value of a bar or line chart, as a fraction of the data's span,
#: so the tallest bar does not touch the frame.
HEADROOM = 0.08

#: Small print (omitted counts, value labels), in points.
SMALL = 8.0

# matplotlib's date helpers carry no annotations; these say what they return.
_date2num = cast(Callable[[Sequence[date]], Any], mdates.date2num)
_num2date = cast(Callable[[float], datetime], mdates.num2date)


def _day_numbers(days: Sequence[date]) -> np.ndarray:
    """Days as matplotlib date numbers (midnight of each day)."""
    return np.asarray(_date2num(list(days)), dtype=np.float64)


@dataclass(frozen=True)
class HoverTarget:
    """Something under the pointer: a point ``(x, y)`` in data coordinates and the text to
    show for it. ``box`` = ``(x0, x1, y0, y1)``, also in data coordinates, is the area that
    counts as "on" the target (a bar, a cell, a day's column); an infinite bound reaches to
    the edge of the axes. Without a box only nearness to the point counts."""

    x: float
    y: float
    text: str
    box: tuple[float, float, float, float] | None = None


# ------------------------------------------------------------------ shared helpers


def style_axes(
    ax: Axes, style: ChartStyle, *, grid: Literal["x", "y", "both"] | None = "y"
) -> None:
    """Palette colours on the axes' background, spines, ticks and grid."""
    ax.set_facecolor(style.bg)
    for spine in ax.spines.values():
        spine.set_color(style.axis)
    ax.tick_params(which="both", colors=style.muted, labelcolor=style.muted)
    ax.xaxis.label.set_color(style.fg)
    ax.yaxis.label.set_color(style.fg)
    ax.title.set_color(style.fg)
    ax.grid(False)
    if grid is not None:
        ax.grid(True, axis=grid, color=style.grid, linewidth=0.8)
    ax.set_axisbelow(True)


def draw_message(ax: Axes, style: ChartStyle, message: str, *, faint: bool = False) -> None:
    """A centred message instead of a chart (no data, still computing)."""
    ax.set_axis_off()
    ax.text(
        0.5,
        0.5,
        message,
        transform=ax.transAxes,
        ha="center",
        va="center",
        color=style.muted,
        alpha=0.7 if faint else 1.0,
        fontsize=10,
        wrap=True,
    )


def _no_data(ax: Axes, style: ChartStyle, message: str = NO_DATA) -> list[HoverTarget]:
    draw_message(ax, style, style.tr(message))
    return []


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _legend_above(ax: Axes, style: ChartStyle, ncols: int, first: str | None = None) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    if first in labels:  # bars are listed after lines; the main series leads
        k = labels.index(first)
        handles.insert(0, handles.pop(k))
        labels.insert(0, labels.pop(k))
    ax.legend(
        handles,
        labels,
        loc="lower left",
        bbox_to_anchor=(0.0, 1.0),
        ncols=min(ncols, len(handles)),
        frameon=False,
        labelcolor=style.fg,
        borderaxespad=0.2,
        handlelength=1.6,
    )


class DayLocator(ticker.Locator):
    """Date ticks at midnights, as many as fit the axis when it is drawn: every day or every
    other day for short periods, Mondays (every k weeks) for longer ones, firsts of months
    for long ones. ``mondays`` keeps them on Mondays (weekly bars)."""

    def __init__(self, *, size: float = 8.5, mondays: bool = False) -> None:
        self.size = size  # tick label size, points
        self.mondays = mondays

    def __call__(self) -> list[float]:
        axis = self.axis
        if axis is None:
            return []
        low, high = sorted(axis.get_view_interval())
        return self.tick_values(low, high)

    def tick_values(self, vmin: float, vmax: float) -> list[float]:
        first, last = math.ceil(vmin), math.floor(vmax)
        if last < first:
            return []
        axis = self.axis
        length, dpi = 600.0, 96.0
        if isinstance(axis, Axis) and axis.axes is not None:
            length, dpi = float(axis.axes.bbox.width), float(axis.axes.figure.dpi)
        em = self.size * dpi / 72.0
        fits = max(2, int(length // (5.5 * em)))  # "Nov 24", "24.11." and a gap
        span = last - first
        start = _num2date(first).date()
        if not self.mondays:
            for step in (1, 2):
                if span // step + 1 <= fits:
                    return [float(v) for v in range(first, last + 1, step)]
        monday = start + timedelta(days=-start.weekday() % 7)
        weeks = (last - first) // 7 + 1
        every = math.ceil(weeks / fits)
        if every <= 3 or self.mondays:
            ticks = [monday + timedelta(weeks=k) for k in range(0, weeks + 1, every)]
        else:
            months = (span // 28) + 1
            every = next((m for m in (1, 2, 3, 6, 12) if months / m <= fits * 0.8), 24)
            end = _num2date(last).date()
            ticks = []
            day = date(start.year, start.month, 1)
            while day <= end:
                if day >= start and (day.month - 1) % every == 0:
                    ticks.append(day)
                day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
        numbers = [float(v) for v in _date2num(ticks)] if ticks else []
        return [v for v in numbers if first <= v <= last]


def _date_axis(ax: Axes, style: ChartStyle, *, mondays: bool = False) -> None:
    ax.xaxis.set_major_locator(DayLocator(mondays=mondays))
    ax.xaxis.set_major_formatter(date_formatter(style.locale))


def _text_on(rgb: tuple[float, float, float]) -> str:
    """Dark or light text, whichever reads on a fill colour."""
    r, g, b = rgb
    return "#1f2328" if 0.299 * r + 0.587 * g + 0.114 * b > 0.55 else "#ffffff"


def _floats(values: Sequence[Decimal | float | int | None], n: int) -> np.ndarray:
    """``n`` floats; a missing or ``None`` value is NaN."""
    out = np.full(n, np.nan)
    for i, v in enumerate(values[:n]):
        if v is not None:
            out[i] = float(v)
    return out


# ------------------------------------------------------------------ revenue


def _weeks(days: Sequence[date]) -> list[list[int]]:
    """Indices of ``days`` grouped by ISO week, in order."""
    groups: list[list[int]] = []
    last: tuple[int, int] | None = None
    for i, day in enumerate(days):
        iso = day.isocalendar()
        key = (iso.year, iso.week)
        if key != last:
            groups.append([])
            last = key
        groups[-1].append(i)
    return groups


def weekly_totals(data: RevenueSeries) -> tuple[list[date], list[Decimal], list[Decimal]]:
    """Revenue and prior revenue summed per ISO week: (Mondays, revenue, prior). A week cut
    by the period's edges sums only its days in the period."""
    mondays: list[date] = []
    revenue: list[Decimal] = []
    prior: list[Decimal] = []
    for group in _weeks(data.days):
        first = data.days[group[0]]
        mondays.append(first - timedelta(days=first.weekday()))
        revenue.append(sum((data.revenue[i] for i in group), Decimal(0)))
        prior.append(sum((data.prior[i] for i in group if i < len(data.prior)), Decimal(0)))
    return mondays, revenue, prior


def _value_limits(values: np.ndarray, least: float = 1.0) -> tuple[float, float]:
    """Limits for a value axis that starts at zero (or below, for negative values): the
    data's range with :data:`HEADROOM` beyond it, and at least ``least`` wide (one currency
    unit for money), so a few cents are not spread over the whole height with ticks at
    0.01, 0.03 …"""
    finite = values[np.isfinite(values)]
    low = min(0.0, float(finite.min())) if len(finite) else 0.0
    high = max(0.0, float(finite.max())) if len(finite) else 0.0
    span = high - low
    bottom = low - HEADROOM * span if low < 0 else 0.0
    return bottom, max(high + HEADROOM * span, bottom + least)


def draw_revenue(
    ax: Axes,
    data: RevenueSeries,
    style: ChartStyle,
    *,
    weekly: bool = False,
    moving_average: int = 7,
    kind: Literal["auto", "bar", "line"] = "auto",
) -> list[HoverTarget]:
    """Revenue per day (or per ISO week) as bars, or as a line for long periods
    (``kind``: "auto", "bar" or "line"); the prior period as a faint ghost line; and a
    trailing moving average over ``moving_average`` buckets (days, or weeks when
    ``weekly``), drawn only where its window is full and only when that makes a line of at
    least two points (0 or 1 turns it off).

    A period without sales shows no empty axes: with no sales in the prior period either
    it says "No sales in this period or the prior one" instead of a chart (an empty grid
    scaled to nothing reads like a fault); when the prior period had sales the chart is
    drawn, the prior's ghost line being the news, with "No sales in this period" written
    across it so the missing bars do not look like missing data."""
    if not data.days:
        return _no_data(ax, style)
    tr, loc = style.tr, style.locale
    sold = any(v for v in data.revenue)
    if not sold and not any(v for v in data.prior):
        return _no_data(ax, style, NO_SALES_EITHER if data.prior else NO_SALES)
    style_axes(ax, style)
    if weekly:
        starts, revenue_d, prior_d = weekly_totals(data)
        sizes = [len(g) for g in _weeks(data.days)]
        width = 7 * 0.78
    else:
        starts = list(data.days)
        revenue_d = list(data.revenue)
        prior_d = list(data.prior)
        sizes = [1] * len(starts)
        width = 0.8
    n = len(starts)
    x = _day_numbers(starts)
    revenue = _floats(revenue_d, n)
    prior = _floats(prior_d, n)
    as_bars = kind == "bar" or (kind == "auto" and n <= 62)
    # Without sales the revenue draws nothing visible: no legend entry for it then.
    revenue_label = tr("Revenue") if sold else "_" + tr("Revenue")

    if as_bars:
        ax.bar(x, revenue, width=width, color=style.accent, label=revenue_label, zorder=2)
    else:
        ax.plot(x, revenue, color=style.accent, linewidth=1.6, label=revenue_label, zorder=3)
        ax.fill_between(x, revenue, color=style.accent, alpha=0.12, linewidth=0, zorder=2)
    if not np.all(np.isnan(prior)):
        ax.plot(
            x,
            prior,
            color=style.ghost,
            linewidth=1.3,
            alpha=0.9,
            label=tr("Prior period"),
            zorder=3,
        )
    average = np.full(n, np.nan)
    if sold and moving_average > 1 and n >= moving_average:
        kernel = np.ones(moving_average) / moving_average
        average[moving_average - 1 :] = np.convolve(revenue, kernel, mode="valid")
        # A lone averaged point (the period just one window long) draws no line: then
        # neither the line nor its legend entry nor an "Average" in the hover text.
        finite = np.isfinite(average)
        if (finite[1:] & finite[:-1]).any():
            label = tr("{n}-week average" if weekly else "{n}-day average").format(n=moving_average)
            ax.plot(x, average, color=style.trend, linewidth=1.8, label=label, zorder=4)
        else:
            average[:] = np.nan

    if weekly:
        _date_axis(ax, style, mondays=True)
    else:
        _date_axis(ax, style)
    ax.set_xlim(x[0] - width / 2 - 0.4, x[-1] + width / 2 + 0.4)
    ax.yaxis.set_major_formatter(money_formatter(data.currency, loc))
    ax.yaxis.set_major_locator(ticker.MaxNLocator(nbins=5, min_n_ticks=3))
    ax.set_ylim(*_value_limits(np.concatenate([revenue, prior, average])))
    if not sold:
        ax.text(
            0.5,
            0.55,
            tr(NO_SALES),
            transform=ax.transAxes,
            ha="center",
            va="center",
            color=style.muted,
            fontsize=10,
            zorder=5,
            # Masks the ghost line and grid passing behind it.
            bbox={"boxstyle": "round,pad=0.4", "facecolor": style.bg, "edgecolor": "none"},
        )
    _legend_above(ax, style, 3, first=tr("Revenue"))

    targets = []
    half = 3.5 if weekly else 0.5
    for i in range(n):
        if weekly:
            last = starts[i] + timedelta(days=6)
            head = tr("Week {week}: {first} – {last}").format(
                week=starts[i].isocalendar().week,
                first=format_day(starts[i], loc),
                last=format_day(last, loc),
            )
            if sizes[i] < 7:
                head += " " + tr("({n} days in period)").format(n=sizes[i])
        else:
            head = format_day(starts[i], loc)
        lines = [head, f"{tr('Revenue')}: {format_money(revenue_d[i], data.currency, loc)}"]
        if not math.isnan(prior[i]):
            lines.append(f"{tr('Prior period')}: {format_money(prior[i], data.currency, loc)}")
        if not math.isnan(average[i]):
            lines.append(f"{tr('Average')}: {format_money(average[i], data.currency, loc)}")
        y = 0.0 if math.isnan(revenue[i]) else float(revenue[i])
        targets.append(
            HoverTarget(x[i], y, "\n".join(lines), (x[i] - half, x[i] + half, -INF, INF))
        )
    return targets


# ------------------------------------------------------------------ stock


#: How far (points) a delivery triangle is lifted to sit above a count diamond on the same
#: day: the diamond's half height (about 3.9 pt at ``s=30``) plus the triangle's (about 3.4
#: pt at ``s=46``) plus their rims and a hair of air.
LIFT = 9.0


def _lifted(ax: Axes, points: float) -> Transform:
    """Data coordinates moved up by ``points`` on the screen."""
    if not points:
        return ax.transData
    return ax.transData + ScaledTranslation(0.0, points / 72.0, ax.figure.dpi_scale_trans)


def draw_stock(ax: Axes, data: StockSeries, style: ChartStyle) -> list[HoverTarget]:
    """Closing on-hand per day as a step line, par and reorder levels as labelled lines,
    deliveries as triangles (annotated with the quantity) and counts as diamonds at the
    counted quantity; days out of stock are shaded. A delivery on a day that also has a
    count is stacked just above the diamond rather than hidden under it. Each day's column
    is one hover target naming the day's level and all its events."""
    if not data.days:
        return _no_data(ax, style)
    tr, loc = style.tr, style.locale
    style_axes(ax, style)
    n = len(data.days)
    x = _day_numbers(data.days)
    on_hand = np.array(data.on_hand[:n], dtype=float)
    if len(on_hand) < n:
        on_hand = np.concatenate([on_hand, np.full(n - len(on_hand), np.nan)])
    index = {day: i for i, day in enumerate(data.days)}

    # The day's closing level spans the day: [d, d + 1).
    ax.step(
        np.append(x, x[-1] + 1),
        np.append(on_hand, on_hand[-1]),
        where="post",
        color=style.accent,
        linewidth=1.8,
        label=tr("On hand"),
        zorder=3,
    )
    out = on_hand <= 0
    if out.any():
        runs = np.flatnonzero(np.diff(np.concatenate([[0], out.astype(int), [0]])))
        for start, stop in zip(runs[::2], runs[1::2], strict=True):
            ax.axvspan(
                x[start],
                x[stop - 1] + 1,
                color=style.negative,
                alpha=0.10,
                linewidth=0,
                label=tr("Out of stock") if start == runs[0] else None,
                zorder=1,
            )

    for level, color, text, above in (
        (data.par_level, style.par, tr("Par {n}"), True),
        (data.reorder_point, style.reorder, tr("Reorder {n}"), False),
    ):
        ax.axhline(level, color=color, linestyle="--", linewidth=1.1, alpha=0.9, zorder=2)
        ax.annotate(
            text.format(n=level),
            xy=(1.0, level),
            xycoords=("axes fraction", "data"),
            xytext=(-3, 2 if above else -2),
            textcoords="offset points",
            ha="right",
            va="bottom" if above else "top",
            color=color,
            fontsize=SMALL,
        )

    notes: dict[int, list[str]] = {}
    counts = [(index[e.day], e) for e in data.counts if e.day in index]
    counted_on = {
        i: float(e.counted) if e.counted is not None else float(on_hand[i]) for i, e in counts
    }
    deliveries = [(index[e.day], e) for e in data.deliveries if e.day in index]
    if deliveries:
        # A delivery and a count on the same day would share a spot, the triangle hidden
        # under the diamond: there the triangle is lifted (by a fixed distance in points,
        # whatever the scale) to sit on top of the diamond, still in the day's column.
        lifted = [i in counted_on for i, _ in deliveries]
        dx = np.array([x[i] + 0.5 for i, _ in deliveries])
        dy = np.array(
            [
                max(on_hand[i], counted_on[i]) if lift else on_hand[i]
                for (i, _), lift in zip(deliveries, lifted, strict=True)
            ]
        )
        label = tr("Delivery")
        for lift in (False, True):
            chosen = np.array([lf == lift for lf in lifted])
            if not chosen.any():
                continue
            ax.scatter(
                dx[chosen],
                dy[chosen],
                marker="^",
                s=46,
                color=style.delivery,
                edgecolors=style.bg,
                linewidths=0.8,
                label=label,
                zorder=7,  # over the count diamond should they still meet
                transform=_lifted(ax, LIFT if lift else 0.0),
            )
            label = "_" + label  # one legend entry for both
        for (i, event), px, py, lift in zip(deliveries, dx, dy, lifted, strict=True):
            notes.setdefault(i, []).append(tr("Delivered {qty:+d}").format(qty=event.quantity))
            if len(deliveries) <= 20:
                ax.annotate(
                    f"{event.quantity:+d}",
                    xy=(px, py),
                    xytext=(0, 6 + (LIFT if lift else 0.0)),
                    textcoords="offset points",
                    ha="center",
                    va="bottom",
                    color=style.delivery,
                    fontsize=SMALL - 0.5,
                )
    if counts:
        ax.scatter(
            [x[i] + 0.5 for i, _ in counts],
            [counted_on[i] for i, _ in counts],
            marker="D",
            s=30,
            color=style.count,
            edgecolors=style.bg,
            linewidths=0.8,
            label=tr("Count"),
            zorder=6,
        )
        for i, event in counts:
            counted = event.counted if event.counted is not None else int(on_hand[i])
            notes.setdefault(i, []).append(
                tr("Counted {counted} (variance {variance:+d})").format(
                    counted=counted, variance=event.quantity
                )
            )

    _date_axis(ax, style)
    ax.set_xlim(x[0], x[-1] + 1)
    ax.yaxis.set_major_locator(ticker.MaxNLocator(nbins=5, integer=True, min_n_ticks=3))
    ax.yaxis.set_major_formatter(NumberFormatter(loc, most=0))
    values = [data.par_level, data.reorder_point, *on_hand[~np.isnan(on_hand)].tolist()]
    values += [e.counted for _, e in counts if e.counted is not None]
    top = max(values) if values else 1
    ax.set_ylim(min(0.0, *values), top * 1.15 + 1)
    _legend_above(ax, style, 4)

    targets = []
    for i, day in enumerate(data.days):
        level = on_hand[i]
        text = format_day(day, loc) + "\n"
        text += tr("On hand: {n}").format(n="–" if math.isnan(level) else int(level))
        for note in notes.get(i, []):
            text += "\n" + note
        y = 0.0 if math.isnan(level) else float(level)
        targets.append(HoverTarget(x[i] + 0.5, y, text, (x[i], x[i] + 1, -INF, INF)))
    return targets


# ------------------------------------------------------------------ horizontal bars


def _hbar_labels(ax: Axes, positions: Sequence[float], labels: Sequence[str], n: int) -> None:
    ax.set_yticks(list(positions), labels=list(labels))
    ax.tick_params(axis="y", length=0, labelsize=8.5 if n <= 12 else 7.5)
    ax.invert_yaxis()


def draw_sku_units(
    ax: Axes,
    data: Sequence[SkuUnits],
    style: ChartStyle,
    *,
    top: int = 8,
    currency: str = "EUR",
) -> list[HoverTarget]:
    """Units sold per SKU as horizontal bars, best at the top: the ``top`` best and ``top``
    worst sellers (all of them when there are at most ``2 * top``), each with its units and
    sell-through written at the bar's end. (``SkuUnits`` has no currency: pass the
    report's as ``currency``.)

    When nothing sold at all it says "No units sold in this period" rather than drawing
    empty bars labelled "0 · –"."""
    if not data:
        return _no_data(ax, style)
    if not any(s.units for s in data):
        return _no_data(ax, style, NO_UNITS)
    tr, loc = style.tr, style.locale
    style_axes(ax, style, grid="x")
    ranked = sorted(data, key=lambda s: (-s.units, s.product_name))
    hidden = 0
    if len(ranked) > 2 * top:
        hidden = len(ranked) - 2 * top
        shown = [*ranked[:top], *ranked[-top:]]
        positions = [*range(top), *(top + 1 + i for i in range(top))]
    else:
        shown = ranked
        positions = list(range(len(shown)))
    worst = [bool(hidden) and k >= top for k in range(len(shown))]
    colors = [to_rgba(style.negative, 0.7) if w else to_rgba(style.accent) for w in worst]
    units = np.array([s.units for s in shown], dtype=float)
    ax.barh(positions, units, height=0.7, color=colors, zorder=2)
    widest = float(units.max()) if len(units) else 0.0
    for pos, sku, value in zip(positions, shown, units, strict=True):
        ratio = "–" if sku.sell_through is None else format_percent(sku.sell_through, loc)
        ax.annotate(
            f"{format_number(sku.units, loc)} · {ratio}",
            xy=(value, pos),
            xytext=(4, 0),
            textcoords="offset points",
            ha="left",
            va="center",
            color=style.fg,
            fontsize=SMALL,
        )
    if hidden:
        ax.text(
            0,
            top,
            "  " + tr("⋯ {n} more").format(n=hidden),
            ha="left",
            va="center",
            color=style.muted,
            fontsize=SMALL,
        )
    _hbar_labels(ax, positions, [_short(s.product_name, 28) for s in shown], len(shown))
    ax.set_xlim(0, max(widest, 1.0) * 1.3)
    ax.xaxis.set_major_locator(ticker.MaxNLocator(nbins=5, integer=True))
    ax.xaxis.set_major_formatter(NumberFormatter(loc, most=0))
    ax.set_xlabel(tr("Units sold · sell-through"))

    targets = []
    for pos, sku, value in zip(positions, shown, units, strict=True):
        ratio = "–" if sku.sell_through is None else format_percent(sku.sell_through, loc, 1)
        text = "\n".join(
            (
                sku.product_name,
                tr("Units: {n}").format(n=format_number(sku.units, loc)),
                tr("Revenue: {v}").format(v=format_money(sku.revenue, currency, loc)),
                tr("Sell-through: {v}").format(v=ratio),
            )
        )
        targets.append(HoverTarget(float(value), pos, text, (-INF, INF, pos - 0.4, pos + 0.4)))
    return targets


def draw_ranking(
    ax: Axes, data: StandRanking, style: ChartStyle, *, top: int = 10
) -> list[HoverTarget]:
    """The best ``top`` stands by one KPI as horizontal bars, best at the top, each value
    written at its bar's end in the KPI's unit. Stands without a value are left out."""
    valued = [s for s in data.stands if s.value is not None]
    if not valued:
        return _no_data(ax, style)
    tr, loc = style.tr, style.locale
    style_axes(ax, style, grid="x")
    shown = valued[:top]
    positions = list(range(len(shown)))
    values = np.array([float(s.value or 0) for s in shown])
    ax.barh(positions, values, height=0.7, color=style.accent, zorder=2)
    for pos, stand, value in zip(positions, shown, values, strict=True):
        ax.annotate(
            format_value(stand.value, data.unit, loc, currency=data.currency, tr=tr),
            xy=(value, pos),
            xytext=(4 if value >= 0 else -4, 0),
            textcoords="offset points",
            ha="left" if value >= 0 else "right",
            va="center",
            color=style.fg,
            fontsize=SMALL,
        )
    _hbar_labels(ax, positions, [_short(s.stand_name, 26) for s in shown], len(shown))
    low, high = min(0.0, float(values.min())), max(0.0, float(values.max()))
    span = (high - low) or 1.0
    ax.set_xlim(low - (0.22 * span if low < 0 else 0), high + 0.22 * span)
    ax.xaxis.set_major_locator(ticker.MaxNLocator(nbins=5))
    ax.xaxis.set_major_formatter(unit_formatter(data.unit, loc, data.currency))
    if low < 0:
        ax.axvline(0, color=style.muted, linewidth=0.8, zorder=2)
    ax.set_xlabel(data.kpi_label)
    more = len(data.stands) - len(shown)
    if more > 0:
        ax.set_title(
            tr("top {n} of {total}").format(n=len(shown), total=len(data.stands)),
            loc="right",
            fontsize=SMALL,
            fontweight="normal",
            color=style.muted,
        )

    targets = []
    for pos, stand, value in zip(positions, shown, values, strict=True):
        place = f"{stand.stand_name} · {stand.city}" if stand.city else stand.stand_name
        shown_value = format_value(stand.value, data.unit, loc, currency=data.currency, tr=tr)
        text = f"{pos + 1}. {place}\n{data.kpi_label}: {shown_value}"
        targets.append(HoverTarget(float(value), pos, text, (-INF, INF, pos - 0.4, pos + 0.4)))
    return targets


# ------------------------------------------------------------------ location scatter


def draw_location_scatter(
    ax: Axes,
    data: Sequence[StandValue],
    style: ChartStyle,
    *,
    label: str,
    unit: Unit,
    currency: str = "EUR",
) -> list[HoverTarget]:
    """Stands on a longitude/latitude plane coloured by ``label``'s value, with a colour
    bar; stands without coordinates are left out (and counted in a note), stands without a
    value drawn hollow. The aspect is corrected for latitude so distances look right."""
    tr, loc = style.tr, style.locale
    placed = [
        s
        for s in data
        if s.latitude is not None
        and s.longitude is not None
        and math.isfinite(s.latitude)
        and math.isfinite(s.longitude)
    ]
    if not placed:
        return _no_data(ax, style, NO_DATA if not data else "No stand has map coordinates")
    style_axes(ax, style, grid="both")
    lon = np.array([s.longitude for s in placed], dtype=float)
    lat = np.array([s.latitude for s in placed], dtype=float)
    valued = np.array([s.value is not None for s in placed])
    values = np.array([float(s.value) if s.value is not None else np.nan for s in placed])

    if (~valued).any():
        ax.scatter(
            lon[~valued],
            lat[~valued],
            s=34,
            facecolors="none",
            edgecolors=style.ghost,
            linewidths=1.0,
            zorder=3,
        )
    if valued.any():
        points = ax.scatter(
            lon[valued],
            lat[valued],
            c=values[valued],
            cmap=style.colormap,
            s=42,
            # The colormap's dark end would vanish on a dark background without a rim.
            edgecolors=style.muted if style.is_dark else style.bg,
            linewidths=0.7,
            zorder=4,
        )
        bar = ax.figure.colorbar(points, ax=ax, shrink=0.9, pad=0.02, aspect=24)
        _style_colorbar(bar, style, label)
        bar.ax.yaxis.set_major_formatter(unit_formatter(unit, loc, currency))

    mean_lat = float(lat.mean())
    if np.ptp(lon) < 0.005 and np.ptp(lat) < 0.005:
        ax.update_datalim(
            [(lon.min() - 0.01, lat.min() - 0.01), (lon.max() + 0.01, lat.max() + 0.01)]
        )
    ax.margins(0.08)
    ax.set_aspect(1.0 / max(math.cos(math.radians(mean_lat)), 0.1), adjustable="datalim")
    degrees = NumberFormatter(loc, suffix="°", most=2)
    ax.xaxis.set_major_formatter(degrees)
    ax.yaxis.set_major_formatter(NumberFormatter(loc, suffix="°", most=2))
    ax.xaxis.set_major_locator(ticker.MaxNLocator(nbins=5))
    ax.yaxis.set_major_locator(ticker.MaxNLocator(nbins=5))
    ax.tick_params(axis="y", length=3)
    ax.set_xlabel(tr("Longitude"))
    ax.set_ylabel(tr("Latitude"))
    omitted = len(data) - len(placed)
    if omitted:
        note = tr(
            "1 stand without coordinates not shown"
            if omitted == 1
            else "{n} stands without coordinates not shown"
        )
        ax.set_title(
            note.format(n=omitted),
            loc="right",
            fontsize=SMALL,
            fontweight="normal",
            color=style.muted,
        )

    targets = []
    for s, px, py in zip(placed, lon, lat, strict=True):
        place = f"{s.stand_name} · {s.city}" if s.city else s.stand_name
        value = format_value(s.value, unit, loc, currency=currency, tr=tr)
        targets.append(HoverTarget(float(px), float(py), f"{place}\n{label}: {value}"))
    return targets


def _style_colorbar(bar: Colorbar, style: ChartStyle, label: str) -> None:
    bar.outline.set_visible(False)
    bar.ax.tick_params(colors=style.muted, labelcolor=style.muted, length=2)
    bar.set_label(label, color=style.fg)


# ------------------------------------------------------------------ heat map


def draw_heatmap(ax: Axes, data: SellThroughHeatmap, style: ChartStyle) -> list[HoverTarget]:
    """Sell-through per stand (rows) × product (columns), blank where a stand does not
    stock a product, with a colour bar in %; cells carry their % when the grid is small."""
    rows, cols = len(data.stand_names), len(data.product_names)
    grid = np.full((rows, cols), np.nan)
    for i, row in enumerate(data.values[:rows]):
        grid[i, : min(cols, len(row))] = _floats(row, cols)[: min(cols, len(row))]
    if rows == 0 or cols == 0 or np.isnan(grid).all():
        return _no_data(ax, style)
    tr, loc = style.tr, style.locale
    style_axes(ax, style, grid=None)
    for spine in ax.spines.values():
        spine.set_visible(False)
    percent = np.ma.masked_invalid(grid * 100)
    cmap = matplotlib.colormaps[style.colormap].with_extremes(bad=style.bg)
    norm = Normalize(vmin=0.0, vmax=100.0)
    image = ax.imshow(percent, cmap=cmap, norm=norm, aspect="auto", interpolation="nearest")
    if rows <= 40 and cols <= 40:
        # Thin background-coloured lines set the cells apart.
        ax.set_xticks(np.arange(cols + 1) - 0.5, minor=True)
        ax.set_yticks(np.arange(rows + 1) - 0.5, minor=True)
        ax.grid(which="minor", color=style.bg, linewidth=1.5)
        ax.tick_params(which="minor", length=0)
    # As many names as fit at the size the chart is drawn (they thin out when it shrinks).
    xsize, ysize = (8.0 if cols <= 20 else 7.0), (8.0 if rows <= 20 else 7.0)
    ax.xaxis.set_major_locator(_CategoryLocator(cols, xsize, spacing=1.6))
    ax.xaxis.set_major_formatter(_category_formatter([_short(n, 20) for n in data.product_names]))
    ax.yaxis.set_major_locator(_CategoryLocator(rows, ysize, spacing=1.4))
    ax.yaxis.set_major_formatter(_category_formatter([_short(n, 24) for n in data.stand_names]))
    ax.tick_params(axis="x", labelsize=xsize, labelrotation=40)
    ax.tick_params(axis="y", labelsize=ysize)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
        label.set_rotation_mode("anchor")
    ax.tick_params(which="major", length=0)
    bar = ax.figure.colorbar(image, ax=ax, shrink=0.9, pad=0.02, aspect=24)
    _style_colorbar(bar, style, tr("Sell-through"))
    bar.ax.yaxis.set_major_formatter(percent_formatter(loc, of_fraction=False))

    if rows <= 15 and cols <= 15:
        for i in range(rows):
            for j in range(cols):
                if np.isnan(grid[i, j]):
                    continue
                rgb = to_rgb(cmap(norm(percent[i, j])))
                ax.text(
                    j,
                    i,
                    format_percent(_cell(data, i, j), loc),
                    ha="center",
                    va="center",
                    color=_text_on(rgb),
                    fontsize=7 if cols > 10 else SMALL,
                )

    targets = []
    for i in range(rows):
        for j in range(cols):
            value = grid[i, j]
            cell = _cell(data, i, j)
            shown = tr("not stocked") if np.isnan(value) else format_percent(cell, loc, 1)
            text = f"{data.stand_names[i]}\n{data.product_names[j]}: {shown}"
            targets.append(HoverTarget(j, i, text, (j - 0.5, j + 0.5, i - 0.5, i + 0.5)))
    return targets


def _cell(data: SellThroughHeatmap, i: int, j: int) -> Decimal | float:
    """The value as given (a Decimal rounds half up where a float would not)."""
    try:
        value = data.values[i][j]
    except IndexError:
        return math.nan
    return math.nan if value is None else value


class _CategoryLocator(ticker.Locator):
    """Ticks on every ``k``-th of ``n`` categories (0, 1, … n - 1), ``k`` as small as lets
    labels of ``size`` points stand ``spacing`` label heights apart at the size the axes
    has when drawn."""

    def __init__(self, n: int, size: float, spacing: float) -> None:
        self.n = n
        self.size = size
        self.spacing = spacing

    def __call__(self) -> list[int]:
        axis = self.axis
        if not isinstance(axis, Axis) or axis.axes is None:
            return list(range(self.n))
        box = axis.axes.bbox
        length = box.width if isinstance(axis, XAxis) else box.height
        pitch = self.size * self.spacing * axis.axes.figure.dpi / 72.0
        fits = max(1, int(length // max(pitch, 1.0)))
        return list(range(0, self.n, max(1, math.ceil(self.n / fits))))

    def tick_values(self, vmin: float, vmax: float) -> list[int]:
        return self()


def _category_formatter(names: Sequence[str]) -> ticker.FuncFormatter:
    def name(value: float, pos: int | None = None) -> str:
        k = round(value)
        return names[k] if abs(value - k) < 1e-6 and 0 <= k < len(names) else ""

    return ticker.FuncFormatter(name)


# ------------------------------------------------------------------ refills


def draw_refill_funnel(ax: Axes, data: RefillFlow, style: ChartStyle) -> list[HoverTarget]:
    """How far the period's refills got: centred horizontal bars from requested to
    confirmed, each with its count and its share of the requested; rejected and cancelled
    are named below."""
    stages = list(data.funnel)
    if not stages or not any(s.count for s in stages):
        return _no_data(ax, style)
    tr, loc = style.tr, style.locale
    style_axes(ax, style, grid=None)
    for spine in ax.spines.values():
        spine.set_visible(False)
    base = next((s.count for s in stages if s.status == "requested"), stages[0].count)
    widest = max(s.count for s in stages)
    positions = list(range(len(stages)))
    counts = np.array([s.count for s in stages], dtype=float)
    colors = [style.positive if s.status == "confirmed" else style.accent for s in stages]
    ax.barh(positions, counts, left=(widest - counts) / 2, height=0.72, color=colors, zorder=2)
    for pos, stage, color in zip(positions, stages, colors, strict=True):
        share = format_percent(stage.count / base, loc) if base else "–"
        text = f"{format_number(stage.count, loc)} · {share}"
        inside = stage.count >= 0.3 * widest
        ax.annotate(
            text,
            xy=(widest / 2 if inside else (widest + stage.count) / 2, pos),
            xytext=(0 if inside else 5, 0),
            textcoords="offset points",
            ha="center" if inside else "left",
            va="center",
            color=_text_on(to_rgb(color)) if inside else style.fg,
            fontsize=SMALL + 0.5,
            fontweight="bold" if inside else "normal",
        )
    _hbar_labels(ax, positions, [s.label for s in stages], len(stages))
    ax.set_xticks([])
    ax.set_xlim(-0.02 * widest, widest * 1.02)
    ax.set_xlabel(
        tr("Rejected: {rejected} · Cancelled: {cancelled}").format(
            rejected=format_number(data.rejected, loc),
            cancelled=format_number(data.cancelled, loc),
        ),
        color=style.muted,
        fontsize=SMALL + 0.5,
    )

    targets = []
    previous: int | None = None
    for pos, stage in zip(positions, stages, strict=True):
        lines = [f"{stage.label}: {format_number(stage.count, loc)}"]
        if base:
            lines.append(
                tr("{share} of requested").format(share=format_percent(stage.count / base, loc, 1))
            )
        if previous:
            lines.append(
                tr("{share} of the previous step").format(
                    share=format_percent(stage.count / previous, loc, 1)
                )
            )
        previous = stage.count
        targets.append(
            HoverTarget(widest / 2, pos, "\n".join(lines), (-INF, INF, pos - 0.4, pos + 0.4))
        )
    return targets


def _nice_bins(values: np.ndarray) -> np.ndarray:
    """Histogram bin edges at round numbers (0, 2, 4 … rather than 0.37, 1.91 …), about as
    many as numpy's "auto" rule would use, at most 24. A single value gets one bin a unit
    wide centred on the nearest whole number (4.5–5.5 for 5.3), not below zero."""
    low, high = float(values.min()), float(values.max())
    if high - low < 1e-9:
        left = round(low) - 0.5
        if low >= 0:
            left = max(0.0, left)
        return np.array([left, left + 1.0])
    wanted = min(24, max(1, len(np.histogram_bin_edges(values, bins="auto")) - 1))
    locator = ticker.MaxNLocator(nbins=wanted, steps=[1, 2, 2.5, 5, 10], min_n_ticks=2)
    return np.asarray(locator.tick_values(low, high), dtype=float)


def draw_cycle_times(ax: Axes, data: RefillFlow, style: ChartStyle) -> list[HoverTarget]:
    """A histogram of refill cycle times (request to confirmation) in hours, or in days
    when the median is over 48 h, with the median marked."""
    hours = np.array([h for h in data.cycle_hours if math.isfinite(h)], dtype=float)
    if len(hours) == 0:
        return _no_data(ax, style)
    tr, loc = style.tr, style.locale
    style_axes(ax, style)
    median_hours = float(np.median(hours))
    in_days = median_hours > 48
    values = hours / 24 if in_days else hours
    unit = tr("days") if in_days else tr("hours")
    counts, edges = np.histogram(values, bins=_nice_bins(values))
    if len(counts) == 1:
        # One bin alone would be stretched across the whole axes: leave a bin's width of
        # room on either side (none below zero), so it reads as one narrow bar.
        bin_width = float(edges[1] - edges[0])
        left = float(edges[0]) - bin_width
        ax.set_xlim(max(0.0, left) if edges[0] >= 0 else left, float(edges[1]) + bin_width)
        ax.xaxis.set_major_locator(ticker.MaxNLocator(nbins=6, steps=[1, 2, 5, 10]))
    ax.bar(
        edges[:-1],
        counts,
        width=np.diff(edges),
        align="edge",
        color=style.accent,
        edgecolor=style.bg,
        linewidth=0.8,
        zorder=2,
    )
    median = float(np.median(values))
    ax.axvline(median, color=style.trend, linestyle="--", linewidth=1.5, zorder=3)
    left, right = ax.get_xlim()
    on_right = (median - left) > 0.65 * (right - left)
    ax.annotate(
        tr("Median {value} {unit}").format(value=format_number(median, loc, 1), unit=unit),
        xy=(median, 1.0),
        xycoords=("data", "axes fraction"),
        xytext=(-4 if on_right else 4, -2),
        textcoords="offset points",
        ha="right" if on_right else "left",
        va="top",
        color=style.trend,
        fontsize=SMALL + 0.5,
    )
    ax.set_ylim(0, max(1, int(counts.max())) * 1.18)
    ax.yaxis.set_major_locator(ticker.MaxNLocator(nbins=5, integer=True))
    ax.xaxis.set_major_formatter(NumberFormatter(loc, most=1))
    ax.set_xlabel(tr("Request to confirmation, {unit}").format(unit=unit))
    ax.set_ylabel(tr("Refills"))
    ax.set_title(
        tr("1 refill confirmed" if len(hours) == 1 else "{n} refills confirmed").format(
            n=format_number(len(hours), loc)
        ),
        loc="right",
        fontsize=SMALL,
        fontweight="normal",
        color=style.muted,
    )

    targets = []
    for k, count in enumerate(counts):
        lo, hi = float(edges[k]), float(edges[k + 1])
        text = tr(
            "{low}–{high} {unit}: 1 refill" if count == 1 else "{low}–{high} {unit}: {n} refills"
        ).format(
            low=format_number(lo, loc, 1),
            high=format_number(hi, loc, 1),
            unit=unit,
            n=format_number(int(count), loc),
        )
        targets.append(HoverTarget((lo + hi) / 2, float(count), text, (lo, hi, -INF, INF)))
    return targets
