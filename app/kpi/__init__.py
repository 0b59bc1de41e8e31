"""Performance KPIs of stands, partners, territories and the program (Qt-free).

See :mod:`app.kpi.engine` for the definitions and how they are computed.
"""

from app.kpi.engine import (
    KPI_BY_KEY,
    KPI_DEFS,
    STAND_KPIS,
    Dashboard,
    StandKpis,
    StandPerformance,
    dashboard,
    kpi_report,
    ranking,
    scopes,
    stand_performance,
)
from app.kpi.model import Kpi, KpiReport, Scope, ScopeKind, Unit
from app.kpi.period import PRESETS, Period, parse_period

__all__ = [
    "KPI_BY_KEY",
    "KPI_DEFS",
    "PRESETS",
    "STAND_KPIS",
    "Dashboard",
    "Kpi",
    "KpiReport",
    "Period",
    "Scope",
    "ScopeKind",
    "StandKpis",
    "StandPerformance",
    "Unit",
    "dashboard",
    "kpi_report",
    "parse_period",
    "ranking",
    "scopes",
    "stand_performance",
]
