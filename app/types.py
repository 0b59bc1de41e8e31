"""Column types that keep money exact and times in UTC on every database we run on.

SQLite has no decimal type: a NUMERIC column stores 12.35 as a binary float, and SUM() then
adds floats. So on SQLite a :class:`ScaledDecimal` is stored as an integer count of
``10**-scale`` units (12.35 with scale 4 is 123500), which SQLite adds exactly in SUM();
on PostgreSQL it is a native NUMERIC. The declared column type is NUMERIC on both, so the
migrations and the models are the same everywhere; only the stored representation differs.
SQL that aggregates these columns must keep the column's type (``func.sum(col)`` does), so
the value is scaled back on the way out.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import DateTime, Numeric
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class ScaledDecimal(TypeDecorator[Decimal]):
    """An exact decimal with a fixed number of places (see module docstring)."""

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int = 18, scale: int = 4) -> None:
        super().__init__(precision=precision, scale=scale, asdecimal=True)
        self.scale = scale
        self._quantum = Decimal(1).scaleb(-scale)
        self._factor: int = 10**scale

    def _check(self, value: Decimal | int | str) -> Decimal:
        try:
            dec = Decimal(value)
        except (InvalidOperation, TypeError) as exc:
            raise ValueError(f"not a decimal number: {value!r}") from exc
        if not dec.is_finite():
            raise ValueError(f"not a finite decimal number: {value!r}")
        q = dec.quantize(self._quantum)
        if q != dec:
            # Rounding belongs to the service that knows the rule, never to storage.
            raise ValueError(f"{value!r} has more than {self.scale} decimal places")
        return q

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("money and rates are Decimal, never float")
        dec = self._check(value)
        if dialect.name == "sqlite":
            return int(dec * self._factor)
        return dec

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            if isinstance(value, float):  # only reachable through hand-written SQL
                value = round(value)
            return (Decimal(int(value)) / self._factor).quantize(self._quantum)
        return Decimal(value).quantize(self._quantum)

    def coerce_compared_value(self, op: Any, value: Any) -> Any:
        return self

    # SQLAlchemy's own SQLite NUMERIC processors pass values through float, which is exact
    # only up to 2**53; the scaled integers go to and from the driver untouched instead.
    def bind_processor(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return lambda value: self.process_bind_param(value, dialect)
        return super().bind_processor(dialect)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        if dialect.name == "sqlite":
            return lambda value: self.process_result_value(value, dialect)
        return super().result_processor(dialect, coltype)


def Money() -> ScaledDecimal:
    """An amount of money: 4 decimal places, so unit costs like 0.3333 stay exact."""
    return ScaledDecimal(18, 4)


def Rate() -> ScaledDecimal:
    """A rate or multiplier such as a commission of 0.1250 or a 1.5x point multiplier."""
    return ScaledDecimal(10, 6)


class UTCDateTime(TypeDecorator[datetime]):
    """A point in time, always returned as an aware UTC datetime.

    SQLite keeps it as naive UTC text (which sorts correctly); PostgreSQL as timestamptz.
    Naive input is refused, because a naive time from a device is ambiguous.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    @staticmethod
    def _utc(value: Any) -> datetime:
        """``value`` as an aware UTC datetime; a naive time or a non-datetime is refused."""
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is UTC:
            return value
        if value.tzinfo is None:
            raise ValueError("naive datetime given; times are stored as aware UTC")
        return value.astimezone(UTC)

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        utc = self._utc(value)
        if dialect.name == "sqlite":
            return utc.replace(tzinfo=None)
        return utc

    # On SQLite, one step from an aware time to the stored text, which is what SQLAlchemy's
    # DATETIME type writes ("2026-11-24 09:30:00.000000"). Its two steps (the method above,
    # then a %-format of seven fields) were a twentieth of a 500-op push's server time.
    def bind_processor(self, dialect: Dialect) -> Any:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        utc = self._utc

        def process(value: Any) -> str | None:
            if value is None:
                return None
            # Years have four digits, so the UTC offset ("+00:00") starts at 26.
            return utc(value).isoformat(" ", "microseconds")[:26]

        return process

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
