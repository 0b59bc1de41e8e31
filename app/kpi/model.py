"""What the KPI engine returns: plain frozen values, ready for a table, a chart or JSON.

Money is :class:`~decimal.Decimal`; ratios are Decimal fractions (0.25 means 25 %), never
pre-formatted strings, so the GUI and the CLI format them in their own locale. ``None`` means
"not defined for this period" (a ratio with a zero denominator), never zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum


class ScopeKind(StrEnum):
    STAND = "stand"
    PARTNER = "partner"
    TERRITORY = "territory"  # the stands assigned to one rep
    PROGRAM = "program"


@dataclass(frozen=True)
class Scope:
    kind: ScopeKind
    #: stand id, partner id or rep user name; ``None`` for the program.
    key: str | None = None
    #: What people call it ("Kiosk Rosenthaler Str.", "rep.anna", "Whole program").
    label: str = ""


class Unit(StrEnum):
    """How a KPI value is to be shown."""

    MONEY = "money"  # Decimal, in ``KpiReport.currency``
    COUNT = "count"  # Decimal holding an integer (units, orders, points, days)
    RATIO = "ratio"  # Decimal fraction, shown as a percentage
    DAYS = "days"  # Decimal, days (may be fractional)
    HOURS = "hours"  # Decimal, hours
    RATE = "rate"  # Decimal, a per-day rate (units per day)
    MULTIPLE = "multiple"  # Decimal, "x times" (turnover, GMROI)


@dataclass(frozen=True)
class Kpi:
    key: str  # stable identifier, e.g. "revenue", "sell_through"
    label: str  # short English label for tiles and tables
    unit: Unit
    value: Decimal | None
    prior: Decimal | None  # the same KPI over the prior equal period
    #: True when a rise is good (revenue), False when a fall is good (stock-out days),
    #: None when neither (on hand).
    higher_is_better: bool | None = True
    #: One sentence on how it is computed (shown as a tooltip and in ``standctl kpi``).
    formula: str = ""

    @property
    def change(self) -> Decimal | None:
        """Relative change vs the prior period (0.1 = +10 %); None when undefined."""
        if self.value is None or self.prior is None or self.prior == 0:
            return None
        return (self.value - self.prior) / abs(self.prior)


@dataclass(frozen=True)
class KpiReport:
    scope: Scope
    start: date  # first local day, inclusive
    end: date  # last local day, inclusive
    prior_start: date
    prior_end: date
    currency: str
    stand_count: int
    kpis: tuple[Kpi, ...]
    computed_at: datetime

    def __getitem__(self, key: str) -> Kpi:
        for k in self.kpis:
            if k.key == key:
                return k
        raise KeyError(key)


# ------------------------------------------------------------------ chart data


@dataclass(frozen=True)
class RevenueSeries:
    """Revenue per local day over the period, and the prior period aligned day by day
    (``prior[i]`` is the day ``len(days)`` days before ``days[i]``)."""

    days: tuple[date, ...]
    revenue: tuple[Decimal, ...]
    prior: tuple[Decimal, ...]
    currency: str


@dataclass(frozen=True)
class StockEvent:
    day: date
    quantity: int  # units delivered (positive), or the count's variance
    counted: int | None = None  # for counts: the counted quantity


@dataclass(frozen=True)
class StockSeries:
    """Closing on-hand of one SKU on one stand for each local day of the period."""

    product_id: str
    product_name: str
    days: tuple[date, ...]
    on_hand: tuple[int, ...]
    par_level: int
    reorder_point: int
    deliveries: tuple[StockEvent, ...]
    counts: tuple[StockEvent, ...]


@dataclass(frozen=True)
class SkuUnits:
    product_id: str
    product_name: str
    units: int
    revenue: Decimal
    sell_through: Decimal | None  # fraction


@dataclass(frozen=True)
class StandValue:
    """One stand's value of one KPI (ranking bars, the location scatter)."""

    stand_id: str
    stand_name: str
    city: str
    latitude: float | None
    longitude: float | None
    value: Decimal | None


@dataclass(frozen=True)
class StandRanking:
    kpi_key: str
    kpi_label: str
    unit: Unit
    currency: str
    stands: tuple[StandValue, ...]  # best first


@dataclass(frozen=True)
class SellThroughHeatmap:
    """Sell-through (fraction) per stand (rows) × SKU (columns); None where not stocked."""

    stand_ids: tuple[str, ...]
    stand_names: tuple[str, ...]
    product_ids: tuple[str, ...]
    product_names: tuple[str, ...]
    values: tuple[tuple[Decimal | None, ...], ...]


@dataclass(frozen=True)
class FunnelStage:
    status: str  # requested, approved, scheduled, delivered, confirmed
    label: str
    count: int


@dataclass(frozen=True)
class RefillFlow:
    """Refills requested in the period, by how far they got; and the cycle times
    (requested -> confirmed, in hours) of the refills confirmed in the period."""

    funnel: tuple[FunnelStage, ...]
    rejected: int
    cancelled: int
    cycle_hours: tuple[float, ...]
