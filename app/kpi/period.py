"""Reporting periods in local days, and how they map to UTC instants.

A period is a run of whole local days, ``start``..``end`` inclusive. "Last 28 days" is the 28
local days ending today (today included, so what a rep recorded this morning shows); the
prior period is the same number of days just before it. A "day" is the stand's own local
day: a sale at 23:30 in Berlin on 1 March belongs to 1 March even though it is 22:30 UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.errors import ValidationError
from app.rules import PROGRAM_TIMEZONE, local_date

#: The periods offered in the GUI and accepted by ``--period``, in days.
PRESETS = (7, 28, 90, 365)
DEFAULT_DAYS = 28
MAX_DAYS = 3 * 366


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValidationError("The period ends before it starts.", field="period")
        if self.days > MAX_DAYS:
            raise ValidationError(f"A period can be at most {MAX_DAYS} days long.", field="period")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def prior(self) -> Period:
        """The period of equal length that ends the day before this one starts."""
        end = self.start - timedelta(days=1)
        return Period(end - timedelta(days=self.days - 1), end)

    def day(self, index: int) -> date:
        return self.start + timedelta(days=index)

    def utc_bounds(self, tz: str) -> tuple[datetime, datetime]:
        """The UTC instants [from, to) that cover the period's local days in zone ``tz``."""
        zone = ZoneInfo(tz)
        lo = datetime.combine(self.start, time(0), zone)
        hi = datetime.combine(self.end + timedelta(days=1), time(0), zone)
        return lo, hi

    def label(self) -> str:
        return f"{self.start.isoformat()} – {self.end.isoformat()}"

    @classmethod
    def last(cls, days: int, today: date) -> Period:
        if days < 1:
            raise ValidationError("A period has at least one day.", field="period")
        return cls(today - timedelta(days=days - 1), today)


_LAST = re.compile(r"^\s*(\d{1,4})\s*d\s*$", re.IGNORECASE)
_RANGE = re.compile(r"^\s*(\d{4}-\d{2}-\d{2})\s*(?:\.\.|/|:|,)\s*(\d{4}-\d{2}-\d{2})\s*$")


def parse_period(text: str, *, now: datetime, tz: str = PROGRAM_TIMEZONE) -> Period:
    """``"28d"`` (the last 28 local days up to today) or ``"2026-01-01..2026-01-31"`` (also
    with ``,``, ``/`` or ``:`` between the dates, as the REST contract writes it)."""
    m = _LAST.match(text or "")
    if m:
        return Period.last(int(m.group(1)), local_date(now, tz))
    m = _RANGE.match(text or "")
    if m:
        try:
            start, end = date.fromisoformat(m.group(1)), date.fromisoformat(m.group(2))
        except ValueError as exc:
            raise ValidationError(f"Not a date: {exc}.", field="period") from exc
        return Period(start, end)
    raise ValidationError(
        f"Period {text!r} not understood: give a number of days like 28d, "
        "or a range like 2026-01-01..2026-01-31.",
        field="period",
    )


def utc_offsets(tz: str, lo: datetime, hi: datetime) -> list[tuple[datetime, int]]:
    """The zone's UTC offset (seconds) over [lo, hi): ``[(from_utc, offset), ...]``, one
    entry per stretch of constant offset (a new one at each daylight-saving change).

    Found by probing every hour, then narrowing each change to the second; a year holds at
    most a few changes, so this is cheap and needs no access to the zone's private tables.
    """
    zone = ZoneInfo(tz)

    def offset(at: datetime) -> int:
        delta = at.astimezone(zone).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    out = [(lo, offset(lo))]
    step = timedelta(hours=1)
    t = lo
    while t < hi:
        nxt = min(t + step, hi)
        if offset(nxt) != out[-1][1] and nxt < hi:
            a, b = t, nxt  # offset(a) == current, offset(b) == new
            while (b - a) > timedelta(seconds=1):
                mid = a + (b - a) / 2
                if offset(mid) == out[-1][1]:
                    a = mid
                else:
                    b = mid
            b = b.replace(microsecond=0)
            out.append((b, offset(b)))
        t = nxt
    return out
