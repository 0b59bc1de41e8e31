"""Locale-aware number, money, percent and date formatting for charts (pure, no Qt)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from matplotlib import dates as mdates

from app.kpi.model import Unit
from ui.charts.formats import (
    ChartLocale,
    date_formatter,
    format_day,
    format_money,
    format_month,
    format_number,
    format_percent,
    format_value,
    money_formatter,
    percent_formatter,
)

EN, DE = ChartLocale.en(), ChartLocale.de()


@pytest.mark.parametrize(
    ("value", "en", "de"),
    [
        (Decimal("1234.56"), "€1,234.56", "1.234,56 €"),
        (Decimal("0.5"), "€0.50", "0,50 €"),
        (Decimal("1234567.891"), "€1,234,567.89", "1.234.567,89 €"),
        (Decimal("-12.3"), "−€12.30", "−12,30 €"),
        (Decimal("-0.001"), "€0.00", "0,00 €"),  # no sign on a rounded zero
        (0, "€0.00", "0,00 €"),
    ],
)
def test_money(value: Decimal, en: str, de: str) -> None:
    assert format_money(value, "EUR", EN) == en
    assert format_money(value, "EUR", DE) == de


def test_money_other_currencies() -> None:
    assert format_money(Decimal("5"), "USD", EN) == "$5.00"
    assert format_money(Decimal("5"), "CHF", EN) == "CHF 5.00"  # a word-like symbol is spaced
    assert format_money(Decimal("5"), "SEK", DE) == "5,00 SEK"  # unknown: the code


def test_numbers_and_percentages() -> None:
    assert format_number(1234.5, EN, 1) == "1,234.5"
    assert format_number(1234.5, DE, 1) == "1.234,5"
    assert format_number(-3, EN) == "−3"
    assert format_percent(Decimal("0.634"), EN) == "63%"
    assert format_percent(Decimal("0.634"), DE) == "63 %"
    assert format_percent(Decimal("0.6345"), DE, 1) == "63,5 %"


def test_days_and_months() -> None:
    assert format_day(date(2024, 11, 24), EN) == "Nov 24"
    assert format_day(date(2024, 11, 24), DE) == "24.11."
    assert format_day(date(2024, 3, 5), DE) == "05.03."
    assert format_month(date(2024, 3, 5), DE) == "März 2024"
    assert format_month(date(2024, 11, 5), EN, with_year=False) == "Nov"


@pytest.mark.parametrize(
    ("unit", "value", "en", "de"),
    [
        (Unit.MONEY, Decimal("1234.5"), "€1,234.50", "1.234,50 €"),
        (Unit.COUNT, Decimal("12345"), "12,345", "12.345"),
        (Unit.RATIO, Decimal("0.25"), "25.0%", "25,0 %"),
        (Unit.DAYS, Decimal("3.25"), "3.3 d", "3,3 d"),
        (Unit.HOURS, Decimal("36"), "36.0 h", "36,0 h"),
        (Unit.RATE, Decimal("1.5"), "1.5/day", "1,5/day"),
        (Unit.MULTIPLE, Decimal("2.4"), "2.40×", "2,40×"),
        (Unit.MONEY, None, "–", "–"),
    ],
)
def test_values_by_unit(unit: Unit, value: Decimal | None, en: str, de: str) -> None:
    assert format_value(value, unit, EN) == en
    assert format_value(value, unit, DE) == de


def test_money_axis_shows_cents_only_when_ticks_need_them() -> None:
    formatter = money_formatter("EUR", DE)
    formatter.set_locs([0, 500, 1000, 1500])
    assert [formatter(v) for v in (0, 1500)] == ["0 €", "1.500 €"]
    formatter.set_locs([0, 0.5, 1.0])
    assert formatter(0.5) == "0,50 €"
    assert formatter(1.0) == "1,00 €"


def test_percent_axis() -> None:
    formatter = percent_formatter(EN)
    formatter.set_locs([0, 0.25, 0.5])
    assert formatter(0.25) == "25%"
    formatter = percent_formatter(DE, of_fraction=False)
    formatter.set_locs([0, 20, 40])
    assert formatter(40) == "40 %"


def test_date_axis_days_then_months() -> None:
    formatter = date_formatter(DE)
    days = [mdates.date2num(date(2024, 11, d)) for d in (4, 11, 18)]
    formatter.set_locs(days)
    assert formatter(days[1], 1) == "11.11."
    months = [mdates.date2num(date(y, m, 1)) for y, m in ((2024, 11), (2024, 12), (2025, 1))]
    formatter = date_formatter(EN)
    formatter.set_locs(months)
    assert [formatter(v, i) for i, v in enumerate(months)] == ["Nov 2024", "Dec", "Jan 2025"]
