"""The program's business rules as pure functions, shared by services and the demo.

Loyalty points for a sale
    points = floor(order total in whole currency units
                   x POINTS_PER_CURRENCY_UNIT x package multiplier x tier multiplier)
    e.g. a 23.80 sale at a Growth partner (x1.25) in Silver (x1.10): floor(23.80 x 1.375) = 32.
    A void reverses exactly the points its sale earned.

Tiers
    A partner holds the highest tier whose ``threshold_points`` is at most the points they
    *earned* (kinds earn, activation, bonus, less the reversals of voided sales) over the
    trailing ``TIER_WINDOW_DAYS``.

Expiry
    Positive entries are lots; negative entries consume the oldest open lots first (FIFO).
    Whatever remains of a lot older than ``POINTS_EXPIRE_AFTER_DAYS`` expires. A negative
    larger than the open lots (a void reversal after a redemption) is a debt that the next
    lots pay off first; expiry never takes more than the balance. Such a reversal may take
    the balance below zero; redemptions wait until it is positive again.

Money
    Amounts are rounded to cents, half up, only where a figure is shown or charged
    (line totals, order totals, commissions); unit costs keep four places.

QR payment payload (version 1), rendered as a QR code on the stand's label:
    ``standpay:v1?stand=<stand uuid>&ref=<payment reference>``
    The payment reference is ``SP-`` followed by 8 Crockford base-32 characters taken from
    the random bits of the stand's UUIDv7, a dash and two check characters, e.g.
    ``SP-3KQ7ZD1M-GT``. The check value is sum((i + 1) x value(char i)) mod 1021 over the 8
    characters, written as two Crockford characters. Because 1021 is a prime above 32, any
    single mistyped character and any swap of two neighbours changes it. Letters and
    digits only: safe to type and inside the URI.

Dates
    Days (payout periods, "is this date in the past") are calendar days in the program's
    time zone, ``PROGRAM_TIMEZONE``; stored times are UTC.
"""

from __future__ import annotations

import math
import uuid
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

CENT = Decimal("0.01")
POINTS_PER_CURRENCY_UNIT = Decimal(1)
PROGRAM_TIMEZONE = "Europe/Berlin"
TIER_WINDOW_DAYS = 365
POINTS_EXPIRE_AFTER_DAYS = 365

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def round_money(value: Decimal) -> Decimal:
    """Round to cents, half up (the rule for anything charged or paid)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def sale_points(total: Decimal, package_multiplier: Decimal, tier_multiplier: Decimal) -> int:
    """Points a partner earns for a sale of ``total`` (see module docstring)."""
    if total <= 0:
        return 0
    raw = total * POINTS_PER_CURRENCY_UNIT * package_multiplier * tier_multiplier
    return math.floor(raw)


def commission(sales_total: Decimal, rate: Decimal) -> Decimal:
    """A partner's commission on ``sales_total`` at ``rate``, rounded to cents."""
    return round_money(sales_total * rate)


def local_date(moment: datetime, tz: str = PROGRAM_TIMEZONE) -> date:
    """The calendar day of ``moment`` in the program's time zone."""
    return moment.astimezone(ZoneInfo(tz)).date()


def reference_check(body: str) -> str:
    """The two check characters of a payment reference body (see module docstring)."""
    value = sum((i + 1) * _CROCKFORD.index(c) for i, c in enumerate(body)) % 1021
    return _CROCKFORD[value // 32] + _CROCKFORD[value % 32]


def payment_reference(stand_id: str) -> str:
    """The stand's payment reference (see module docstring), derived from its id."""
    bits = uuid.UUID(stand_id).int & ((1 << 40) - 1)
    chars = "".join(_CROCKFORD[(bits >> shift) & 31] for shift in range(35, -5, -5))
    return f"SP-{chars}-{reference_check(chars)}"


def is_valid_payment_reference(ref: str) -> bool:
    """True if ``ref`` is well formed and its check symbol matches."""
    ref = ref.strip().upper()
    if len(ref) != 14 or not ref.startswith("SP-") or ref[11] != "-":
        return False
    body, check = ref[3:11], ref[12:]
    if any(c not in _CROCKFORD for c in body):
        return False
    return reference_check(body) == check


def qr_payload(stand_id: str, reference: str) -> str:
    """The QR payment payload of a stand (version 1)."""
    return f"standpay:v1?stand={stand_id}&ref={reference}"
