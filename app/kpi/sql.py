"""SQL pieces the KPI queries share: a row's local day, as a day number within a window.

The local day of a stored UTC instant depends on the stand's time zone, and the zone's UTC
offset changes twice a year. PostgreSQL knows the zones (``AT TIME ZONE``). SQLite does not,
so there the offset is spelled out for the window: a ``CASE`` over the (few) stretches of
constant offset that :func:`app.kpi.period.utc_offsets` finds. Either way the result is an
integer: 0 for the window's first local day, 1 for the next, and so on.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, Integer, case, cast, func, literal
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import ColumnElement

from app.kpi.period import utc_offsets

_EPOCH = date(1970, 1, 1)


def day_index(
    column: ColumnElement[datetime],
    *,
    dialect: Dialect,
    tz: str,
    start: date,
    lo: datetime,
    hi: datetime,
) -> ColumnElement[int]:
    """The local day number (0 = ``start``) of ``column`` for rows in [lo, hi)."""
    if dialect.name == "postgresql":
        local = cast(func.timezone(tz, column), Date)
        return cast(local - literal(start, Date), Integer)
    # SQLite keeps UTC instants as 'YYYY-MM-DD HH:MM:SS[.ffffff]' text; %s gives whole epoch
    # seconds (midnight falls on a whole second, so dropping the fraction never moves a day).
    seconds = cast(func.strftime("%s", column), Integer)
    stretches = utc_offsets(tz, lo, hi)
    offset: ColumnElement[int]
    if len(stretches) == 1:
        offset = literal(stretches[0][1], Integer)
    else:
        whens = [
            (column < stretches[i + 1][0], literal(stretches[i][1], Integer))
            for i in range(len(stretches) - 1)
        ]
        offset = case(*whens, else_=literal(stretches[-1][1], Integer))
    base = (start - _EPOCH).days * 86400
    # Integer division; rows are in the window, so the dividend is never negative.
    return (seconds + offset - base) // 86400
