"""The chart house style: a palette and a locale in one frozen :class:`ChartStyle`, and the
matching matplotlib style file in ``resources/mplstyle``.

The style file is applied with :meth:`ChartStyle.context` around figure creation and
drawing, never to the global ``rcParams`` (a global change would leak between charts and
between tests). Draw functions also set the palette colours explicitly on what they draw,
so a figure looks the same whenever matplotlib later renders it. Qt-free: the PDF report
uses it too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, cast

import matplotlib
from matplotlib.figure import Figure

from ui.charts.formats import ChartLocale

RESOURCES = Path(__file__).resolve().parents[2] / "resources"
MPLSTYLE_DIR = RESOURCES / "mplstyle"


def _same(text: str) -> str:
    return text


@cache
def _style_params(path: Path) -> dict[str, Any]:
    """The rc settings of one style file, read and validated once."""
    params: Any = matplotlib.rc_params_from_file(str(path), use_default_template=False)
    return dict(params)


@dataclass(frozen=True)
class ChartStyle:
    """Colours (hex strings), colormap, resolution, locale and translation for charts."""

    name: str
    fg: str  # text and data labels
    muted: str  # tick labels, secondary text
    bg: str  # figure and axes background
    grid: str
    axis: str  # axis lines
    accent: str  # the main series
    trend: str  # moving averages, medians
    ghost: str  # the prior period, "other" bars
    positive: str
    negative: str
    par: str
    reorder: str
    delivery: str
    count: str
    colormap: str = "viridis"
    dpi: float = 96.0
    export_dpi: float = 200.0
    locale: ChartLocale = field(default_factory=ChartLocale.en)
    #: Translates user-visible text; the GUI passes ``ui.i18n.tr``.
    tr: Callable[[str], str] = field(default=_same, compare=False, repr=False)

    @property
    def is_dark(self) -> bool:
        return self.name == "dark"

    @property
    def mplstyle(self) -> Path:
        return MPLSTYLE_DIR / f"{self.name}.mplstyle"

    @classmethod
    def light(
        cls, locale: ChartLocale | None = None, *, tr: Callable[[str], str] | None = None
    ) -> ChartStyle:
        return cls(
            name="light",
            fg="#1f2328",
            muted="#59636e",
            bg="#ffffff",
            grid="#e3e8ed",
            axis="#c5ccd3",
            accent="#2f6fde",
            trend="#d1590b",
            ghost="#9aa4af",
            positive="#1a7f37",
            negative="#cf222e",
            par="#1a7f37",
            reorder="#bc4c00",
            delivery="#1a7f37",
            count="#8250df",
            colormap="viridis",
            locale=locale or ChartLocale.en(),
            tr=tr or _same,
        )

    @classmethod
    def dark(
        cls, locale: ChartLocale | None = None, *, tr: Callable[[str], str] | None = None
    ) -> ChartStyle:
        return cls(
            name="dark",
            fg="#e6edf3",
            muted="#9da7b3",
            bg="#1e2227",
            grid="#343b43",
            axis="#4a525c",
            accent="#58a6ff",
            trend="#f0883e",
            ghost="#6e7781",
            positive="#3fb950",
            negative="#f85149",
            par="#3fb950",
            reorder="#f0883e",
            delivery="#3fb950",
            count="#bc8cff",
            colormap="viridis",
            locale=locale or ChartLocale.en(),
            tr=tr or _same,
        )

    def replace(self, **changes: Any) -> ChartStyle:
        return dataclasses.replace(self, **changes)

    def context(self) -> AbstractContextManager[None]:
        """Apply the style file for the duration of a ``with`` block."""
        return matplotlib.rc_context(rc=cast(Any, _style_params(self.mplstyle)))

    def new_figure(
        self, figsize: tuple[float, float] = (8.0, 4.0), dpi: float | None = None
    ) -> Figure:
        """A plain (Qt-free) figure in this style with constrained layout, for reports.
        Call the draw functions inside ``with style.context():`` as well."""
        with self.context():
            figure = Figure(figsize=figsize, dpi=dpi or self.dpi, layout="constrained")
        figure.set_facecolor(self.bg)
        return figure


def style_from_palette(
    palette_is_dark: bool,
    locale: ChartLocale | None = None,
    *,
    tr: Callable[[str], str] | None = None,
) -> ChartStyle:
    """The light or dark chart style for a GUI palette."""
    if palette_is_dark:
        return ChartStyle.dark(locale, tr=tr)
    return ChartStyle.light(locale, tr=tr)
