"""KPI values as plain text (the command line and the PDF report; the GUI formats in the
user's locale instead)."""

from __future__ import annotations

from decimal import Decimal

from app.kpi.model import Kpi, Unit
from app.rules import round_money

_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "CHF": "CHF "}


def _grouped(value: Decimal, places: int) -> str:
    return f"{value:,.{places}f}"


def format_value(unit: Unit, value: Decimal | None, currency: str = "EUR") -> str:
    """``€1,234.50``, ``12.3%``, ``4.2 d``...; an em dash when the KPI is undefined."""
    if value is None:
        return "—"
    if unit == Unit.MONEY:
        symbol = _SYMBOLS.get(currency, f"{currency} ")
        sign = "-" if value < 0 else ""
        return f"{sign}{symbol}{_grouped(abs(round_money(value)), 2)}"
    if unit == Unit.RATIO:
        return f"{value * 100:.1f}%"
    if unit == Unit.COUNT:
        return _grouped(value, 0)
    if unit == Unit.DAYS:
        return f"{value:,.1f} d"
    if unit == Unit.HOURS:
        return f"{value:,.1f} h"
    if unit == Unit.RATE:
        return f"{value:,.2f}/day"
    return f"{value:,.2f}×"


def format_change(kpi: Kpi) -> str:
    """``+12.5%`` vs the prior period; for ratios the change in points (``+1.2 pt``);
    ``from zero`` when the prior was zero (a percentage of nothing means nothing)."""
    if kpi.value is None or kpi.prior is None:
        return ""
    if kpi.unit == Unit.RATIO:
        return f"{(kpi.value - kpi.prior) * 100:+.1f} pt"
    if kpi.prior == 0:
        return "" if kpi.value == 0 else "from zero"
    change = kpi.change
    return "" if change is None else f"{change * 100:+.1f}%"


def is_good(kpi: Kpi) -> bool | None:
    """Whether the change vs the prior period is good news (None: neutral or unknown)."""
    if kpi.value is None or kpi.prior is None or kpi.higher_is_better is None:
        return None
    if kpi.value == kpi.prior:
        return None
    return (kpi.value > kpi.prior) == kpi.higher_is_better
