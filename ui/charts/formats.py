"""Numbers, money, percentages and dates for chart axes, labels and hover text, in the
user's locale without Qt or babel, so the PDF report (no Qt) formats exactly like the GUI.

A :class:`ChartLocale` holds the few facts charts need (separators, where the currency
symbol goes, month abbreviations, how a day is written). The GUI builds one from ``QLocale``
(:func:`ui.charts.widget.chart_locale_from_qlocale`); tests and the command line use
:meth:`ChartLocale.en` and :meth:`ChartLocale.de`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from itertools import pairwise
from typing import cast

from matplotlib import dates as mdates
from matplotlib import ticker

from app.kpi.model import Unit

Number = Decimal | float | int

#: The typographic minus matplotlib itself uses on axes (``axes.unicode_minus``).
MINUS = "\u2212"

# matplotlib's date helpers carry no annotations.
_num2date = cast(Callable[[float], datetime], mdates.num2date)

_EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DE_MONTHS = (
    "Jan.",
    "Feb.",
    "März",
    "Apr.",
    "Mai",
    "Juni",
    "Juli",
    "Aug.",
    "Sept.",
    "Okt.",
    "Nov.",
    "Dez.",
)

#: Symbols for the currencies the program deals in; any other code is shown as the code.
DEFAULT_SYMBOLS: tuple[tuple[str, str], ...] = (
    ("EUR", "€"),
    ("USD", "$"),
    ("GBP", "£"),
    ("CHF", "CHF"),
)


@dataclass(frozen=True)
class ChartLocale:
    """How numbers and dates are written in one locale.

    ``day_pattern`` and ``month_pattern`` are :meth:`str.format` templates over ``d`` (day),
    ``m`` (month number), ``mon`` (abbreviated month name) and ``y`` (four-digit year).
    """

    decimal_point: str = "."
    group_separator: str = ","
    currency_first: bool = True  # "€1.00" rather than "1.00 €"
    currency_space: bool = False  # a space between the symbol and the amount
    percent_space: bool = False  # "25 %" rather than "25%"
    minus: str = MINUS
    month_abbr: tuple[str, ...] = _EN_MONTHS
    day_pattern: str = "{mon} {d}"
    month_pattern: str = "{mon} {y}"
    currency_symbols: tuple[tuple[str, str], ...] = DEFAULT_SYMBOLS

    @classmethod
    def en(cls) -> ChartLocale:
        """English: "€1,234.56", "Nov 24", "25%"."""
        return cls()

    @classmethod
    def de(cls) -> ChartLocale:
        """German: "1.234,56 €", "24.11.", "25 %"."""
        return cls(
            decimal_point=",",
            group_separator=".",
            currency_first=False,
            currency_space=True,
            percent_space=True,
            month_abbr=_DE_MONTHS,
            day_pattern="{d:02d}.{m:02d}.",
            month_pattern="{mon} {y}",
        )

    def symbol(self, currency: str) -> str:
        for code, symbol in self.currency_symbols:
            if code == currency:
                return symbol
        return currency


# ------------------------------------------------------------------ plain values


def format_number(value: Number, locale: ChartLocale, decimals: int = 0) -> str:
    """``1234.5`` → "1,234.5" (en) or "1.234,5" (de) with ``decimals`` places."""
    number: Decimal | float
    if isinstance(value, Decimal):
        # Decimals (money, ratios) round half up, as people do: 63.45 % → 63.5 %.
        number = value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    else:
        number = float(value)
    text = _swap(f"{abs(number):,.{decimals}f}", locale)
    # Rounding may leave "-0.00": no sign on a zero.
    if number < 0 and any(ch in "123456789" for ch in text):
        return locale.minus + text
    return text


def _swap(text: str, locale: ChartLocale) -> str:
    return "".join(
        locale.group_separator if ch == "," else locale.decimal_point if ch == "." else ch
        for ch in text
    )


def format_money(value: Number, currency: str, locale: ChartLocale, decimals: int = 2) -> str:
    """``Decimal("1234.56")`` → "€1,234.56" (en) or "1.234,56 €" (de)."""
    number: Decimal | float = value if isinstance(value, Decimal) else float(value)
    amount = format_number(-number if number < 0 else number, locale, decimals)
    symbol = locale.symbol(currency)
    space = " " if locale.currency_space or len(symbol) > 1 else ""
    text = f"{symbol}{space}{amount}" if locale.currency_first else f"{amount}{space}{symbol}"
    if number < 0 and any(ch in "123456789" for ch in amount):
        return locale.minus + text
    return text


def format_percent(fraction: Number, locale: ChartLocale, decimals: int = 0) -> str:
    """A fraction as a percentage: ``0.634`` → "63%" (en) or "63 %" (de)."""
    hundred: Decimal | float = (
        fraction * 100 if isinstance(fraction, Decimal) else float(fraction) * 100
    )
    number = format_number(hundred, locale, decimals)
    return f"{number} %" if locale.percent_space else f"{number}%"


def format_day(day: date, locale: ChartLocale) -> str:
    """A day without the year: "Nov 24" (en), "24.11." (de)."""
    return locale.day_pattern.format(
        d=day.day, m=day.month, mon=locale.month_abbr[day.month - 1], y=day.year
    )


def format_month(day: date, locale: ChartLocale, *, with_year: bool = True) -> str:
    """A month: "Nov 2024" (en), "Nov. 2024" (de); just "Nov" without the year."""
    name = locale.month_abbr[day.month - 1]
    if not with_year:
        return name
    return locale.month_pattern.format(d=day.day, m=day.month, mon=name, y=day.year)


def format_value(
    value: Number | None,
    unit: Unit,
    locale: ChartLocale,
    *,
    currency: str = "EUR",
    tr: Callable[[str], str] = str,
) -> str:
    """A KPI value as its unit says it is shown; "–" when it is not defined."""
    if value is None:
        return "–"
    if unit is Unit.MONEY:
        return format_money(value, currency, locale)
    if unit is Unit.COUNT:
        return format_number(value, locale, 0)
    if unit is Unit.RATIO:
        return format_percent(value, locale, 1)
    if unit is Unit.DAYS:
        return tr("{value} d").format(value=format_number(value, locale, 1))
    if unit is Unit.HOURS:
        return tr("{value} h").format(value=format_number(value, locale, 1))
    if unit is Unit.RATE:
        return tr("{value}/day").format(value=format_number(value, locale, 1))
    return tr("{value}×").format(value=format_number(value, locale, 2))  # Unit.MULTIPLE


# ------------------------------------------------------------------ axis formatters


def _decimals_for(locs: Sequence[float], most: int) -> int:
    """The fewest decimals (up to ``most``) that tell all tick values apart exactly."""
    for decimals in range(most + 1):
        if all(abs(v - round(v, decimals)) < 1e-9 * max(1.0, abs(v)) for v in locs):
            return decimals
    return most


class MoneyFormatter(ticker.Formatter):
    """Axis ticks as money: whole amounts without cents ("€1,200"), cents only when the
    ticks need them ("€0.50")."""

    def __init__(self, currency: str, locale: ChartLocale) -> None:
        self.currency = currency
        self.chart_locale = locale
        self.decimals = 0

    def set_locs(self, locs: Sequence[float]) -> None:
        super().set_locs(list(locs))
        self.decimals = 0 if _decimals_for(list(locs), 2) == 0 else 2

    def __call__(self, x: float, pos: int | None = None) -> str:
        return format_money(x, self.currency, self.chart_locale, self.decimals)


class NumberFormatter(ticker.Formatter):
    """Axis ticks as plain numbers with the locale's separators; ``suffix`` and ``scale``
    make percentages (``scale=100, suffix="%"``) and units."""

    def __init__(
        self, locale: ChartLocale, *, scale: float = 1.0, suffix: str = "", most: int = 2
    ) -> None:
        self.chart_locale = locale
        self.scale = scale
        self.suffix = suffix
        self.most = most
        self.decimals = 0

    def set_locs(self, locs: Sequence[float]) -> None:
        super().set_locs(list(locs))
        self.decimals = _decimals_for([v * self.scale for v in locs], self.most)

    def __call__(self, x: float, pos: int | None = None) -> str:
        return format_number(x * self.scale, self.chart_locale, self.decimals) + self.suffix


class DayFormatter(ticker.Formatter):
    """Date-axis ticks (matplotlib date numbers) as local days ("Nov 24", "24.11."), or as
    months ("Nov 2024", then "Dec") when the ticks fall on the firsts of months."""

    def __init__(self, locale: ChartLocale) -> None:
        self.chart_locale = locale
        self.monthly = False
        self.first = -math.inf

    def set_locs(self, locs: Sequence[float]) -> None:
        super().set_locs(list(locs))
        values = sorted(locs)
        self.first = values[0] if values else -math.inf
        # Month labels when the locator put the ticks on the firsts of months.
        self.monthly = (
            len(values) > 1
            and min(b - a for a, b in pairwise(values)) >= 27
            and all(_num2date(v).day == 1 for v in values)
        )

    def __call__(self, x: float, pos: int | None = None) -> str:
        day = _num2date(x).date()
        if not self.monthly:
            return format_day(day, self.chart_locale)
        first = pos == 0 or x <= self.first
        return format_month(day, self.chart_locale, with_year=first or day.month == 1)


def money_formatter(currency: str, locale: ChartLocale) -> MoneyFormatter:
    return MoneyFormatter(currency, locale)


def percent_formatter(locale: ChartLocale, *, of_fraction: bool = True) -> NumberFormatter:
    """Ticks as percentages; ``of_fraction`` when the data are fractions (0.25 = 25 %)."""
    suffix = " %" if locale.percent_space else "%"
    return NumberFormatter(locale, scale=100.0 if of_fraction else 1.0, suffix=suffix, most=1)


def date_formatter(locale: ChartLocale) -> DayFormatter:
    return DayFormatter(locale)


def unit_formatter(unit: Unit, locale: ChartLocale, currency: str = "EUR") -> ticker.Formatter:
    """The axis formatter for values of one KPI unit."""
    if unit is Unit.MONEY:
        return MoneyFormatter(currency, locale)
    if unit is Unit.RATIO:
        return percent_formatter(locale)
    if unit is Unit.MULTIPLE:
        return NumberFormatter(locale, suffix="×")
    return NumberFormatter(locale, most=1)
