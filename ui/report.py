"""One-page PDF reports of KPIs, and the KPI table as CSV (no Qt).

:func:`render_stand_report` writes a stand's page, :func:`render_program_report` the page of
the whole program, a partner or a rep's territory (the scope's label is the title). Both are
one A4 portrait page, top to bottom:

- a header: the kind of report, the scope's label, the period and the prior period it is
  compared with, the number of stands, and when the page was generated (UTC);
- twelve KPI tiles (:data:`TILE_KPIS`, four per row): the value large, the change against
  the prior period small, green when it is good news, red when it is bad, grey when neither
  (:func:`app.kpi.text.is_good`), and the prior value;
- the charts, drawn by the same :mod:`ui.charts.draw` functions as the GUI.
  A stand: revenue per day with the prior period as a ghost line; the stock of the three SKUs
  most at risk of running out (:func:`stock_at_risk`), with units sold per SKU in the room
  left when it carries fewer; and a table of every KPI with its prior value and change.
  A program, partner or territory: revenue per day (per week beyond 62 days); the ten stands
  with the most and the ten with the least revenue as tables; units sold per SKU; the refill
  funnel (and, for ten stands or fewer, one ranking table and the refill cycle times);
- a footer: where the definitions are and what made the page.

Values on tiles and in tables are written by :mod:`app.kpi.text`, exactly as ``standctl kpi``
writes them; chart axes in the chart style's locale (English by default).

Only matplotlib's own PDF backend is used (a plain :class:`~matplotlib.figure.Figure`, no
pyplot), so this runs without a display: the command line, a server, a GUI worker thread.
One caveat for threads: the house style is applied with ``ChartStyle.context()``, i.e.
matplotlib's process-wide ``rc_context``, while a page is drawn and saved (about a second).
Every text is drawn with ``parse_math=False``: a "$" in a stand's name is just a dollar.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.font_manager import FontProperties
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.lines import Line2D
from matplotlib.patches import FancyBboxPatch, Rectangle
from matplotlib.text import Text
from matplotlib.textpath import text_to_path

from app.kpi import text as kpi_text
from app.kpi.engine import KPI_BY_KEY, Dashboard, StandPerformance
from app.kpi.model import (
    Kpi,
    KpiReport,
    RevenueSeries,
    ScopeKind,
    SkuUnits,
    StandRanking,
    StockSeries,
)
from ui.charts.draw import (
    draw_cycle_times,
    draw_message,
    draw_refill_funnel,
    draw_revenue,
    draw_sku_units,
    draw_stock,
)
from ui.charts.formats import ChartLocale
from ui.charts.style import ChartStyle

__all__ = [
    "AUTHOR",
    "CSV_COLUMNS",
    "TILE_KPIS",
    "StockRisk",
    "export_kpi_csv",
    "period_text",
    "render_program_report",
    "render_stand_report",
    "stock_at_risk",
]

AUTHOR = "Stand Program OS"
#: A4 portrait, in inches.
PAGE = (8.27, 11.69)
#: The KPIs on the tiles, in reading order, four per row.
TILE_KPIS = (
    "revenue",
    "units",
    "orders",
    "aov",
    "gross_margin_pct",
    "sell_through",
    "in_stock_rate",
    "stockout_days",
    "days_of_cover",
    "shrink_pct",
    "fill_rate",
    "otif",
)
TILE_COLUMNS = 4
#: How many SKUs the stand report shows the stock of.
RISK_SKUS = 3

# The page's frame: side margin, and the horizontal bands as inches from the top edge.
_MARGIN_X = 0.5
_HEADER_TOP = 0.42
_TILES_TOP = 1.38
_TILE_HEIGHT = 0.6
_TILE_GAP = 0.1
_CHARTS_TOP = 3.5
_CHARTS_BOTTOM = 11.0
_FOOTER_RULE = 11.14

_TILE_FACE = "#f6f8fa"
_TILE_EDGE = "#d8dee4"
_RULE = "#d0d7de"
_TABLE_SIZE = 7.5  # points

_KIND_TITLES = {
    ScopeKind.STAND: "Stand performance report",
    ScopeKind.PARTNER: "Partner performance report",
    ScopeKind.TERRITORY: "Territory performance report",
    ScopeKind.PROGRAM: "Program performance report",
}


# ------------------------------------------------------------------ text


_MONTHS = ChartLocale.en().month_abbr  # not strftime's "%b", which follows the C locale


def _day(d: date, *, year: bool) -> str:
    return f"{d.day} {_MONTHS[d.month - 1]}" + (f" {d.year}" if year else "")


def period_text(start: date, end: date, prior_start: date, prior_end: date) -> str:
    """ "23 Mar – 29 Mar 2026 vs prior 16 – 22 Mar": the period in full (its year once, or
    on both ends when they differ), the prior period as short as stays clear (its year
    only when it is not the period's)."""
    if start == end:
        current = _day(end, year=True)
    else:
        current = f"{_day(start, year=start.year != end.year)} – {_day(end, year=True)}"
    other_year = prior_end.year != end.year
    if prior_start == prior_end:
        prior = _day(prior_end, year=other_year)
    elif (prior_start.year, prior_start.month) == (prior_end.year, prior_end.month):
        prior = f"{prior_start.day} – {_day(prior_end, year=other_year)}"
    else:
        split = prior_start.year != prior_end.year
        prior = f"{_day(prior_start, year=split)} – {_day(prior_end, year=split or other_year)}"
    return f"{current} vs prior {prior}"


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _minus(text: str) -> str:
    """A typographic minus, as on the chart axes."""
    return text.replace("-", "−")


def _width(text: str, size: float, weight: str = "normal") -> float:
    """The width of ``text`` in points, from the font's metrics (no renderer needed)."""
    prop = FontProperties(size=size, weight=weight)
    width, _height, _descent = text_to_path.get_text_width_height_descent(text, prop, False)
    return float(width)


def _fit(text: str, points: float, size: float, weight: str = "normal") -> str:
    """``text``, cut short with "…" until it is at most ``points`` wide."""
    if _width(text, size, weight) <= points:
        return text
    lo, hi = 0, len(text)
    while lo < hi:  # the longest prefix that fits with its ellipsis
        mid = (lo + hi + 1) // 2
        if _width(text[:mid].rstrip() + "…", size, weight) <= points:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rstrip() + "…"


@dataclass(frozen=True)
class _Change:
    """How a KPI moved against the prior period, as shown on a tile and in the table."""

    text: str  # "+12.5%", "−1.2 pt", "from zero"; "" when there is nothing to compare
    arrow: str  # "▲", "▼", "=" (unchanged) or "≈" (less than the last digit shown)
    good: bool | None  # colour: good news, bad news, neither

    def color(self, style: ChartStyle) -> str:
        if self.good is None:
            return style.muted
        return style.positive if self.good else style.negative

    @property
    def tile(self) -> str:
        return f"{self.arrow} {self.text}" if self.text else ""


def _change(kpi: Kpi) -> _Change:
    """The change as ``standctl kpi`` writes it (:func:`app.kpi.text.format_change`), or
    "from zero" where a percentage means nothing."""
    if kpi.value is None or kpi.prior is None:
        return _Change("", "", None)
    if kpi.value == kpi.prior:
        text = kpi_text.format_change(kpi).lstrip("+")
        return _Change(text, "=" if text else "", None)
    text = _minus(kpi_text.format_change(kpi))
    if text != "from zero" and not any(ch in "123456789" for ch in text):
        # Rounds to zero: neither colour, lest "−0.0 pt" look like news.
        return _Change(text.lstrip("+−"), "≈", None)
    return _Change(text, "▲" if kpi.value > kpi.prior else "▼", kpi_text.is_good(kpi))


# ------------------------------------------------------------------ page frame


def _fx(inches: float) -> float:
    """Inches from the left edge -> figure fraction."""
    return inches / PAGE[0]


def _fy(inches: float) -> float:
    """Inches from the top edge -> figure fraction."""
    return 1.0 - inches / PAGE[1]


def _text(target: Figure | SubFigure | Axes, x: float, y: float, s: str, **kw: Any) -> None:
    kw.setdefault("parse_math", False)
    target.text(x, y, s, **kw)


def _new_page(style: ChartStyle) -> Figure:
    fig = style.new_figure(figsize=PAGE, dpi=100)
    engine = fig.get_layout_engine()
    assert isinstance(engine, ConstrainedLayoutEngine)
    # Constrained layout arranges the charts within their band; header, tiles and footer
    # are placed by hand around it.
    engine.set(
        rect=(
            _fx(_MARGIN_X - 0.06),
            _fy(_CHARTS_BOTTOM),
            _charts_width() / PAGE[0],
            (_CHARTS_BOTTOM - _CHARTS_TOP) / PAGE[1],
        ),
        h_pad=0.05,
        w_pad=0.05,
        hspace=0.012,
        wspace=0.0,
    )
    return fig


def _charts_width() -> float:
    """The width of the charts' band, in inches."""
    return PAGE[0] - 2 * _MARGIN_X + 0.12


def _rule(fig: Figure, y_in: float) -> None:
    fig.add_artist(
        Line2D(
            [_fx(_MARGIN_X), _fx(PAGE[0] - _MARGIN_X)],
            [_fy(y_in), _fy(y_in)],
            transform=fig.transFigure,
            color=_RULE,
            linewidth=0.8,
        )
    )


def _header(
    fig: Figure, report: KpiReport, style: ChartStyle, title: str, generated: datetime
) -> None:
    left, right = _fx(_MARGIN_X), _fx(PAGE[0] - _MARGIN_X)
    width = (PAGE[0] - 2 * _MARGIN_X) * 72
    _text(
        fig,
        left,
        _fy(_HEADER_TOP),
        _KIND_TITLES[report.scope.kind].upper(),
        ha="left",
        va="top",
        fontsize=8,
        fontweight="bold",
        color=style.muted,
    )
    stamp = f"Generated {_utc(generated)}"
    if abs((generated - report.computed_at).total_seconds()) > 60:
        stamp = f"Figures as of {_utc(report.computed_at)}  ·  generated {_utc(generated)}"
    _text(fig, right, _fy(_HEADER_TOP), stamp, ha="right", va="top", fontsize=8, color=style.muted)
    _text(
        fig,
        left,
        _fy(_HEADER_TOP + 0.2),
        _fit(title, width, 19, "bold"),
        ha="left",
        va="top",
        fontsize=19,
        fontweight="bold",
        color=style.fg,
    )
    days = (report.end - report.start).days + 1
    line = "  ·  ".join(
        (
            period_text(report.start, report.end, report.prior_start, report.prior_end),
            _plural(days, "day"),
            _plural(report.stand_count, "stand"),
        )
    )
    _text(
        fig, left, _fy(_HEADER_TOP + 0.62), line, ha="left", va="top", fontsize=10, color=style.fg
    )
    _rule(fig, _TILES_TOP - 0.12)


def _tiles(fig: Figure, report: KpiReport, style: ChartStyle) -> None:
    tile_w = (PAGE[0] - 2 * _MARGIN_X - (TILE_COLUMNS - 1) * _TILE_GAP) / TILE_COLUMNS
    pad = 0.1
    known = {k.key for k in report.kpis}
    for n, key in enumerate(k for k in TILE_KPIS if k in known):
        kpi = report[key]
        row, col = divmod(n, TILE_COLUMNS)
        x = _MARGIN_X + col * (tile_w + _TILE_GAP)
        top = _TILES_TOP + row * (_TILE_HEIGHT + _TILE_GAP)
        fig.add_artist(
            FancyBboxPatch(
                (_fx(x), _fy(top + _TILE_HEIGHT)),
                tile_w / PAGE[0],
                _TILE_HEIGHT / PAGE[1],
                boxstyle="round,pad=0,rounding_size=0.008",
                transform=fig.transFigure,
                facecolor=_TILE_FACE,
                edgecolor=_TILE_EDGE,
                linewidth=0.7,
            )
        )
        inner = (tile_w - 2 * pad) * 72
        _text(
            fig,
            _fx(x + pad),
            _fy(top + 0.07),
            _fit(kpi.label, inner, 7.5),
            ha="left",
            va="top",
            fontsize=7.5,
            color=style.muted,
        )
        value = kpi_text.format_value(kpi.unit, kpi.value, report.currency)
        size = 14.0 if _width(value, 14, "bold") <= inner else 11.0
        _text(
            fig,
            _fx(x + pad),
            _fy(top + 0.37),
            value,
            ha="left",
            va="baseline",
            fontsize=size,
            fontweight="bold",
            color=style.fg,
        )
        baseline = _fy(top + _TILE_HEIGHT - 0.07)
        change = _change(kpi)
        if change.tile:
            _text(
                fig,
                _fx(x + pad),
                baseline,
                change.tile,
                ha="left",
                va="baseline",
                fontsize=7.5,
                fontweight="bold",
                color=change.color(style),
            )
        prior = "prior " + _minus(kpi_text.format_value(kpi.unit, kpi.prior, report.currency))
        room = inner - (_width(change.tile, 7.5, "bold") + 6 if change.tile else 0)
        _text(
            fig,
            _fx(x + tile_w - pad),
            baseline,
            _fit(prior, room, 7),
            ha="right",
            va="baseline",
            fontsize=7,
            color=style.muted,
        )


def _footer(fig: Figure, style: ChartStyle, generated: datetime) -> None:
    _rule(fig, _FOOTER_RULE)
    y = _fy(_FOOTER_RULE + 0.08)
    _text(
        fig,
        _fx(_MARGIN_X),
        y,
        "Definitions: see standctl kpi --explain",
        ha="left",
        va="top",
        fontsize=7.5,
        color=style.muted,
    )
    _text(
        fig,
        _fx(PAGE[0] - _MARGIN_X),
        y,
        f"Generated by {AUTHOR} on {_utc(generated)}  ·  page 1 of 1",
        ha="right",
        va="top",
        fontsize=7.5,
        color=style.muted,
    )


def _section(sub: SubFigure, title: str, style: ChartStyle) -> None:
    """A section heading at the top left of a subfigure (constrained layout keeps room)."""
    sub.set_facecolor(style.bg)
    sub.suptitle(
        title,
        x=0.0,
        ha="left",
        fontsize=10.5,
        fontweight="bold",
        color=style.fg,
        parse_math=False,
    )


def _save(fig: Figure, path: Path, report: KpiReport, title: str, generated: datetime) -> Path:
    path = Path(path)
    fig.savefig(
        path,
        format="pdf",
        metadata={
            "Title": f"{title}: {report.start.isoformat()} – {report.end.isoformat()}",
            "Author": AUTHOR,
            "Creator": AUTHOR,
            "Subject": _KIND_TITLES[report.scope.kind],
            "CreationDate": generated,
        },
    )
    return path


# ------------------------------------------------------------------ tables


def _points(ax: Axes) -> tuple[float, float]:
    """The width and height of ``ax`` in points (final once the layout has run)."""
    fig = ax.get_figure(root=True)
    assert fig is not None
    scale = 72.0 / fig.dpi
    return ax.bbox.width * scale, ax.bbox.height * scale


@dataclass
class _Column:
    head: str
    cells: list[str]
    align: str = "right"  # "left" or "right"
    colors: list[str] | None = None
    #: The one column that takes the room left and is cut short to fit it.
    flexible: bool = False
    bold: list[bool] = field(default_factory=list)


def _table(
    ax: Axes,
    columns: Sequence[_Column],
    style: ChartStyle,
    *,
    size: float = _TABLE_SIZE,
    note: str = "",
) -> None:
    """A plain table filling ``ax`` from the top: a bold header row, then the rows on
    alternating stripes. Column widths are measured from the font; the flexible column gets
    what is left. Call it after the layout is done (``ax`` has its final size)."""
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    width, height = _points(ax)
    gap = 9.0
    n = max(len(c.cells) for c in columns) if columns else 0
    rows = n + 1 + (1 if note else 0)
    pitch = min(height / max(rows, 1), size * 2.0)  # points per row
    size = min(size, pitch / 1.3)  # smaller type rather than rows on top of each other
    step = pitch / height  # axes fraction per row
    natural = [
        max(
            [_width(c.head, size, "bold")]
            + [
                _width(s, size, "bold" if c.bold and c.bold[i] else "normal")
                for i, s in enumerate(c.cells)
            ]
        )
        for c in columns
    ]
    fixed = sum(w for c, w in zip(columns, natural, strict=True) if not c.flexible)
    room = width - fixed - gap * (len(columns) - 1)
    widths = [max(room, 20.0) if c.flexible else w for c, w in zip(columns, natural, strict=True)]
    x = 0.0
    for c, w in zip(columns, widths, strict=True):
        anchor = x if c.align == "left" else x + w
        xs = anchor / width
        texts = [(c.head, style.fg, "bold")] + [
            (
                _fit(s, w, size) if c.flexible else s,
                c.colors[i] if c.colors else style.fg,
                "bold" if c.bold and c.bold[i] else "normal",
            )
            for i, s in enumerate(c.cells)
        ]
        for i, (s, color, weight) in enumerate(texts):
            _text(
                ax,
                xs,
                1 - (i + 0.5) * step,
                s,
                ha=c.align,
                va="center",
                fontsize=size,
                fontweight=weight,
                color=color,
                transform=ax.transAxes,
                clip_on=False,
            )
        x += w + gap
    ax.add_line(
        Line2D([0, 1], [1 - step, 1 - step], transform=ax.transAxes, color=_RULE, linewidth=0.7)
    )
    for i in range(1, n + 1, 2):
        ax.add_patch(
            Rectangle(
                (-0.01, 1 - (i + 1) * step),
                1.02,
                step,
                transform=ax.transAxes,
                facecolor=_TILE_FACE,
                edgecolor="none",
                clip_on=False,
                zorder=0,
            )
        )
    if note:
        _text(
            ax,
            0.0,
            1 - (n + 1.5) * step,
            note,
            ha="left",
            va="center",
            fontsize=size - 0.5,
            color=style.muted,
            transform=ax.transAxes,
        )


def _kpi_table(ax: Axes, report: KpiReport, style: ChartStyle) -> None:
    """Every KPI: label, value, prior, change (coloured like the tiles)."""
    kpis = list(report.kpis)
    cur = report.currency
    changes = [_change(k) for k in kpis]
    _table(
        ax,
        (
            _Column("KPI", [k.label for k in kpis], align="left", flexible=True),
            _Column("Value", [_minus(kpi_text.format_value(k.unit, k.value, cur)) for k in kpis]),
            _Column("Prior", [_minus(kpi_text.format_value(k.unit, k.prior, cur)) for k in kpis]),
            _Column(
                "Change",
                [c.text for c in changes],
                colors=[c.color(style) for c in changes],
            ),
        ),
        style,
    )


def _ranking_table(
    ax: Axes, ranking: StandRanking, dash: Dashboard, first: int, count: int, style: ChartStyle
) -> None:
    """Stands ``first`` .. ``first + count - 1`` (0-based) of a revenue ranking, with their
    units and in-stock rate; a note when more stands tie with the last one shown."""
    valued = [s for s in ranking.stands if s.value is not None]
    shown = valued[first : first + count]
    values = {s.stand_id: s.values for s in dash.stands}
    cur = ranking.currency

    def figure(stand_id: str, key: str) -> str:
        value = values.get(stand_id, {}).get(key)
        return _minus(kpi_text.format_value(KPI_BY_KEY[key].unit, value, cur))

    note = ""
    if shown and first + count >= len(valued):  # the bottom of the ranking
        floor = shown[0].value
        ties = sum(1 for s in valued[:first] if s.value == floor)
        if ties:
            money = kpi_text.format_value(ranking.unit, floor, cur)
            note = f"… and {_plural(ties, 'more stand')} at {money}"
    _table(
        ax,
        (
            _Column("#", [f"{first + i + 1:,}" for i in range(len(shown))]),
            _Column(
                "Stand",
                [f"{s.stand_name} · {s.city}" if s.city else s.stand_name for s in shown],
                align="left",
                flexible=True,
            ),
            _Column(
                ranking.kpi_label,
                [_minus(kpi_text.format_value(ranking.unit, s.value, cur)) for s in shown],
                bold=[True] * len(shown),
            ),
            _Column("Units", [figure(s.stand_id, "units") for s in shown]),
            _Column(
                "In stock",
                [figure(s.stand_id, "in_stock_rate") for s in shown],
            ),
        ),
        style,
        note=note,
    )


# ------------------------------------------------------------------ stock at risk


@dataclass(frozen=True)
class StockRisk:
    series: StockSeries
    out_days: int  # days of the period that closed with nothing on hand
    cover: float  # days: closing on-hand ÷ the period's units sold per day (inf: none sold)


def stock_at_risk(
    stock: Sequence[StockSeries], sku_units: Sequence[SkuUnits], count: int = RISK_SKUS
) -> list[StockRisk]:
    """The ``count`` SKUs of a stand most at risk of running out: the fewest days of cover
    at the end of the period first (closing on-hand ÷ the period's average units sold per
    day; none when out of stock, endless when nothing sold), then the most days out of stock
    in the period, then the lowest stock against the reorder point, then the name."""
    sold = {s.product_id: s.units for s in sku_units}
    risks = []
    for series in stock:
        if not series.days or not series.on_hand:
            continue
        closing = series.on_hand[-1]
        daily = max(sold.get(series.product_id, 0), 0) / len(series.days)
        # Days of cover: none when out of stock, endless when nothing sells.
        cover = max(closing, 0) / daily if daily > 0 else (math.inf if closing > 0 else 0.0)
        out_days = sum(1 for v in series.on_hand if v <= 0)
        risks.append(StockRisk(series, out_days, cover))
    risks.sort(
        key=lambda r: (
            r.cover,
            -r.out_days,
            r.series.on_hand[-1] - r.series.reorder_point,
            r.series.product_name,
        )
    )
    return risks[:count]


def _risk_note(risk: StockRisk) -> str:
    """ "2 days out · 3.5 d cover", "in stock every day · no sales", "5 days out · empty
    now"."""
    out = "in stock every day" if risk.out_days == 0 else f"{_plural(risk.out_days, 'day')} out"
    if risk.series.on_hand[-1] <= 0:
        cover = "empty now"
    elif math.isinf(risk.cover):
        cover = "no sales"
    else:
        cover = f"{risk.cover:,.1f} d cover"
    return f"{out}  ·  {cover}"


def _stock_panel(
    sub: SubFigure, risks: Sequence[StockRisk], style: ChartStyle
) -> list[Callable[[], None]]:
    """The risky SKUs' stock charts stacked, each titled with its name and its risk, and
    one legend for them all below. Returns what to do once the layout is done: cut the
    names short to fit beside the risk notes."""
    axes = sub.subplots(len(risks), 1, squeeze=False)[:, 0]
    handles: dict[str, Any] = {}
    after: list[Callable[[], None]] = []
    for ax, risk in zip(axes, risks, strict=True):
        draw_stock(ax, risk.series, style)
        legend = ax.get_legend()
        if legend is not None:
            legend.remove()
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
        note = _risk_note(risk)
        ax.set_title(note, loc="right", fontsize=7.5, fontweight="normal", color=style.muted)
        name = ax.set_title(
            risk.series.product_name,
            loc="left",
            fontsize=8.5,
            fontweight="bold",
            color=style.fg,
            parse_math=False,
        )

        def fit_name(ax: Axes = ax, name: Text = name, note: str = note) -> None:
            room = _points(ax)[0] - _width(note, 7.5) - 12
            name.set_text(_fit(name.get_text(), room, 8.5, "bold"))

        after.append(fit_name)
    if handles:
        sub.legend(
            list(handles.values()),
            list(handles),
            loc="outside lower center",
            ncols=len(handles),
            frameon=False,
            fontsize=7.5,
            labelcolor=style.fg,
            handlelength=1.4,
            columnspacing=1.0,
        )
    return after


# ------------------------------------------------------------------ the reports


def _revenue(sub: SubFigure, series: RevenueSeries, style: ChartStyle) -> None:
    """Revenue per day, or per week beyond 62 days, with a moving average when the period
    holds at least two of its windows."""
    weekly = len(series.days) > 62
    _section(sub, "Revenue per week" if weekly else "Revenue per day", style)
    ax = sub.add_subplot()
    if series.days and not any(series.revenue) and not any(series.prior):
        draw_message(ax, style, "No sales in this period or the prior one")
        return
    window = 4 if weekly else 7
    buckets = math.ceil(len(series.days) / 7) if weekly else len(series.days)
    average = window if buckets >= 2 * window else 0
    draw_revenue(ax, series, style, weekly=weekly, moving_average=average)


def _sku_units(
    sub: SubFigure, data: Sequence[SkuUnits], style: ChartStyle, currency: str, *, top: int
) -> None:
    _section(sub, "Units sold per SKU", style)
    ax = sub.add_subplot()
    if not any(s.units for s in data):
        draw_message(ax, style, "No units sold in this period")
    else:
        draw_sku_units(ax, data, style, top=top, currency=currency)


def _finish_layout(fig: Figure, after: Sequence[Callable[[], None]]) -> None:
    """Run constrained layout now, then ``after`` (the tables, which are measured against
    their axes' final size, and names cut to fit). Texts drawn in axes without axis lines
    (the tables) are kept out of the layout, so saving lays the page out the same."""
    engine = fig.get_layout_engine()
    assert engine is not None
    engine.execute(fig)
    for step in after:
        step()
    for sub in fig.subfigs:
        for ax in sub.axes:
            if not ax.axison:
                for artist in ax.get_children():
                    artist.set_in_layout(False)


def render_stand_report(
    perf: StandPerformance,
    path: Path,
    *,
    title: str | None = None,
    generated_at: datetime | None = None,
    style: ChartStyle | None = None,
) -> Path:
    """Write one stand's one-page PDF report to ``path``; return ``path``.

    ``title`` replaces the stand's name as the heading; ``generated_at`` (default now) is
    the time printed and stored as the PDF's creation date."""
    style = style or ChartStyle.light()
    generated = generated_at or datetime.now(UTC)
    report = perf.report
    title = title or report.scope.label or "Stand"
    with style.context():
        fig = _new_page(style)
        _header(fig, report, style, title, generated)
        _tiles(fig, report, style)
        _footer(fig, style, generated)

        after: list[Callable[[], None]] = []
        grid = fig.add_gridspec(2, 2, height_ratios=(2.2, 5.3), width_ratios=(1.25, 1.0))
        _revenue(fig.add_subfigure(grid[0, :]), perf.revenue, style)

        # The stock of the SKUs most at risk; units per SKU in the room fewer SKUs leave.
        left = fig.add_subfigure(grid[1, 0])
        left.set_facecolor(style.bg)
        risks = stock_at_risk(perf.stock, perf.sku_units)
        if 0 < len(risks) < RISK_SKUS:
            # A stock chart's heading and legend take room of their own.
            ratios = (len(risks) + 0.6, RISK_SKUS - len(risks))
            split = left.add_gridspec(2, 1, height_ratios=ratios)
            stock: SubFigure | None = left.add_subfigure(split[0])
            skus: SubFigure | None = left.add_subfigure(split[1])
        else:
            stock, skus = (left, None) if risks else (None, left)
        if stock is not None:
            _section(stock, "Stock of the SKUs most at risk", style)
            after += _stock_panel(stock, risks, style)
        if skus is not None:
            _sku_units(skus, perf.sku_units, style, report.currency, top=5)

        right = fig.add_subfigure(grid[1, 1])
        _section(right, "All KPIs", style)
        table = right.add_subplot()
        table.set_axis_off()
        after.append(lambda: _kpi_table(table, report, style))
        _finish_layout(fig, after)
        return _save(fig, path, report, title, generated)


def render_program_report(
    dash: Dashboard,
    path: Path,
    *,
    generated_at: datetime | None = None,
    style: ChartStyle | None = None,
) -> Path:
    """Write the one-page PDF report of a program, partner or territory dashboard to
    ``path``; return ``path``. The heading is the scope's label."""
    style = style or ChartStyle.light()
    generated = generated_at or datetime.now(UTC)
    report = dash.report
    title = report.scope.label or "Whole program"
    ranking = dash.ranking("revenue")
    valued = sum(1 for s in ranking.stands if s.value is not None)
    with style.context():
        fig = _new_page(style)
        _header(fig, report, style, title, generated)
        _tiles(fig, report, style)
        _footer(fig, style, generated)

        grid = fig.add_gridspec(3, 2, height_ratios=(2.0, 2.5, 2.9))
        _revenue(fig.add_subfigure(grid[0, :]), dash.revenue, style)

        tables: list[tuple[Axes, Callable[[Axes], None]]] = []

        def table_in(sub: SubFigure, heading: str, fill: Callable[[Axes], None]) -> None:
            _section(sub, heading, style)
            ax = sub.add_subplot()
            ax.set_axis_off()
            tables.append((ax, fill))

        def rows(first: int, count: int) -> Callable[[Axes], None]:
            return lambda ax: _ranking_table(ax, ranking, dash, first, count, style)

        if valued > 10:
            bottom = min(10, valued - 10)
            table_in(fig.add_subfigure(grid[1, 0]), "Top 10 stands by revenue", rows(0, 10))
            table_in(
                fig.add_subfigure(grid[1, 1]),
                f"Bottom {bottom} stands by revenue",
                rows(valued - bottom, bottom),
            )
            third = fig.add_subfigure(grid[2, 1])
            _section(third, "Refills requested in the period", style)
            draw_refill_funnel(third.add_subplot(), dash.refills, style)
        else:
            table_in(fig.add_subfigure(grid[1, 0]), "Stands by revenue", rows(0, 10))
            second = fig.add_subfigure(grid[1, 1])
            _section(second, "Refills requested in the period", style)
            draw_refill_funnel(second.add_subplot(), dash.refills, style)
            third = fig.add_subfigure(grid[2, 1])
            _section(third, "Refill cycle time", style)
            draw_cycle_times(third.add_subplot(), dash.refills, style)

        _sku_units(fig.add_subfigure(grid[2, 0]), dash.sku_units, style, report.currency, top=6)

        _finish_layout(fig, [partial(fill, ax) for ax, fill in tables])
        return _save(fig, path, report, title, generated)


# ------------------------------------------------------------------ CSV

CSV_COLUMNS = (
    "key",
    "label",
    "unit",
    "value",
    "prior",
    "change",
    "formula",
    "period_start",
    "period_end",
    "prior_start",
    "prior_end",
    "scope",
)


def _plain(value: Decimal | None) -> str:
    """A Decimal in plain notation ("0.0000", never "0E-4"); "" for None."""
    return "" if value is None else format(value, "f")


def export_kpi_csv(report: KpiReport, path: Path) -> Path:
    """Write the report's KPIs as CSV, one row per KPI (:data:`CSV_COLUMNS`); return
    ``path``. Values are plain decimals as the engine computed them (ratios as fractions,
    money in the report's currency), empty when undefined; ``change`` is the relative
    change against the prior period (0.125 = +12.5 %) to four places; ``scope`` is the
    scope's label."""
    path = Path(path)
    # "utf-8-sig" writes a byte-order mark first: without it Excel reads a CSV in the
    # system's ANSI code page and shows "€" as "â‚¬". Python's csv module, pandas and
    # LibreOffice skip the mark.
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for kpi in report.kpis:
            change = kpi.change
            writer.writerow(
                (
                    kpi.key,
                    kpi.label,
                    str(kpi.unit),
                    _plain(kpi.value),
                    _plain(kpi.prior),
                    _plain(None if change is None else change.quantize(Decimal("0.0001"))),
                    kpi.formula,
                    report.start.isoformat(),
                    report.end.isoformat(),
                    report.prior_start.isoformat(),
                    report.prior_end.isoformat(),
                    report.scope.label,
                )
            )
    return path
