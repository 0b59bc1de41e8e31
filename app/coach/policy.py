"""Stock-out risk and refill quantities from demand forecasts: pure functions on arrays.

The model is a periodic review, order-up-to policy. A rep looks at a stand on each visit
(every ``R`` days, the package's refill cadence: the *review period*), and what they
request arrives ``L`` days later (the *lead time*, :data:`DEFAULT_LEAD_DAYS` = 2: the demo
and the refill lifecycle deliver two to four days after a request, scheduled for the
second day at the earliest). So stock requested now has to last until the refill after
it arrives, ``R + L`` days from now:

- **order-up-to level** ``S`` = the ``service`` quantile (default 0.95) of total demand
  over ``R + L`` days, from the forecast's count distribution
  (:meth:`BatchForecast.total_quantile_over`);
- **inventory position** = on hand (negative stock counts as 0: the shelf is empty) +
  units already on order (open refills not yet delivered);
- **recommended refill** = ``S`` − position when positive, capped by the room on the
  shelf (capacity − on hand − on order), rounded *up* to whole packs unless that breaks the
  cap, then *down* (a pack that does not fit is not sent); 0 for a dead item (no sale
  expected);
- **value** = the catalog's list price × quantity, as :class:`~decimal.Decimal`, rounded to
  the cent (the shelf price a refill line carries unless someone overrides it).

**Stock-out risk before the next visit** = P(demand over the days to the visit > on hand +
units arriving before it). Units that arrive part-way (an unscheduled refill, ``lead`` days
out) only help after they arrive, so the risk is the larger of P(demand until the arrival
> on hand) and P(demand until the visit > on hand + arriving): a lower bound of the true
probability that is exact when nothing is arriving.

Every recommendation carries its reason as numbers (:class:`RefillReason`) and as one line
of English, e.g. "Expected 14 sold before the next visit in 6 days; 95 % cover needs 22;
5 on hand, 6 on order → refill 12 (2 packs of 6)".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

import numpy as np

from app.rules import round_money

#: Target probability of not running out before the next refill arrives.
DEFAULT_SERVICE = 0.95
#: Days from a refill request to its delivery.
DEFAULT_LEAD_DAYS = 2

Array = np.ndarray[Any, Any]


class DemandForecast(Protocol):
    """What the policy needs of :class:`app.coach.forecast.BatchForecast`."""

    @property
    def mean(self) -> Array: ...

    @property
    def demand_class(self) -> Array: ...

    @property
    def method(self) -> Array: ...

    def total_mean(self, periods: Any = None) -> Array: ...

    def total_quantile_over(self, periods: Any, q: float) -> Array: ...

    def prob_demand_exceeds(self, stock: Array, periods: Any) -> Array: ...


def _check_service(service: float) -> None:
    if not 0.5 <= service < 1:
        raise ValueError(f"service level must be in [0.5, 1), not {service}")


def stockout_risk(
    forecast: DemandForecast,
    on_hand: Array,
    days_to_visit: Array | int,
    *,
    arriving: Array | None = None,
    arrival_days: Array | None = None,
) -> Array:
    """P(a stock-out before the next visit), per series (see the module docstring)."""
    stock = np.maximum(np.asarray(on_hand, dtype=np.int64), 0)
    visit = np.maximum(np.broadcast_to(np.asarray(days_to_visit, dtype=np.int64), stock.shape), 1)
    if arriving is None:
        return np.asarray(forecast.prob_demand_exceeds(stock, visit), dtype=np.float64)
    arr = np.maximum(np.asarray(arriving, dtype=np.int64), 0)
    at_visit = np.asarray(forecast.prob_demand_exceeds(stock + arr, visit), dtype=np.float64)
    if arrival_days is None or not np.any(arr > 0):
        return at_visit
    # Before the units arrive only the stock on hand sells; periods of 0 mean "none arriving".
    days = np.asarray(arrival_days, dtype=np.int64)
    early = (arr > 0) & (days > 0) & (days < visit)
    if not np.any(early):
        return at_visit
    before = np.asarray(
        forecast.prob_demand_exceeds(stock, np.where(early, days, visit)), dtype=np.float64
    )
    return np.where(early, np.maximum(before, at_visit), at_visit)


def order_up_to(
    forecast: DemandForecast,
    review_days: Array | int,
    *,
    lead_days: int = DEFAULT_LEAD_DAYS,
    service: float = DEFAULT_SERVICE,
) -> Array:
    """``S``: the ``service`` quantile of demand over review period + lead time (int)."""
    _check_service(service)
    periods = np.maximum(np.asarray(review_days, dtype=np.int64), 1) + max(lead_days, 0)
    return np.asarray(forecast.total_quantile_over(periods, service), dtype=np.int64)


@dataclass(frozen=True)
class RefillArrays:
    """The refill arithmetic for every series (int arrays, (n,))."""

    position: Array  # on hand (≥ 0) + on order
    need: Array  # max(0, S − position)
    room: Array  # max(0, capacity − position)
    quantity: Array  # what to refill
    packs: Array  # quantity ÷ pack size
    capped: Array  # bool: the shelf's room made it smaller than whole packs of the need


def refill_quantities(
    target: Array,
    on_hand: Array,
    on_order: Array,
    capacity: Array,
    pack_size: Array,
    *,
    dead: Array | None = None,
) -> RefillArrays:
    """Order up to ``target`` within capacity, in whole packs (see the module docstring)."""
    s = np.asarray(target, dtype=np.int64)
    on = np.maximum(np.asarray(on_hand, dtype=np.int64), 0)
    position = on + np.maximum(np.asarray(on_order, dtype=np.int64), 0)
    pack = np.maximum(np.asarray(pack_size, dtype=np.int64), 1)
    need = np.maximum(s - position, 0)
    room = np.maximum(np.asarray(capacity, dtype=np.int64) - position, 0)
    up = -(-need // pack) * pack
    down = (np.minimum(need, room) // pack) * pack
    capped = up > room
    quantity = np.where(capped, down, up)
    if dead is not None:
        quantity = np.where(np.asarray(dead, dtype=bool), 0, quantity)
    return RefillArrays(position, need, room, quantity, quantity // pack, capped & (need > 0))


@dataclass(frozen=True)
class RefillReason:
    """The numbers behind one recommendation."""

    expected_before_visit: float
    days_to_visit: int
    stockout_risk: float
    service: float
    review_days: int
    lead_days: int
    #: Days the refill must cover: review period + lead time.
    cover_days: int
    order_up_to: int
    on_hand: int
    on_order: int
    arriving_before_visit: int
    capacity: int
    room: int
    pack_size: int
    need: int
    capped: bool
    demand_class: str
    method: str


@dataclass(frozen=True)
class RefillRecommendation:
    stand_id: str
    product_id: str
    sku: str
    name: str
    quantity: int
    packs: int
    unit_price: Decimal
    value: Decimal
    reason: RefillReason
    message: str


@dataclass(frozen=True)
class PolicyResult:
    """Risk, targets and refills for every series (arrays of shape (n,))."""

    expected_before_visit: Array  # float
    risk: Array  # float
    target: Array  # int, S
    refill: RefillArrays
    dead: Array  # bool


def evaluate(
    forecast: DemandForecast,
    *,
    on_hand: Array,
    on_order: Array,
    capacity: Array,
    pack_size: Array,
    review_days: Array,
    days_to_visit: Array,
    arriving: Array | None = None,
    arrival_days: Array | None = None,
    lead_days: int = DEFAULT_LEAD_DAYS,
    service: float = DEFAULT_SERVICE,
) -> PolicyResult:
    """Risk before the next visit, order-up-to level and refill for every series."""
    visit = np.maximum(np.asarray(days_to_visit, dtype=np.int64), 1)
    expected = np.asarray(forecast.total_mean(visit), dtype=np.float64)
    risk = stockout_risk(forecast, on_hand, visit, arriving=arriving, arrival_days=arrival_days)
    target = order_up_to(forecast, review_days, lead_days=lead_days, service=service)
    dead = np.asarray(forecast.demand_class) == "dead"
    target = np.where(dead, 0, target)
    refill = refill_quantities(target, on_hand, on_order, capacity, pack_size, dead=dead)
    return PolicyResult(expected, risk, target, refill, dead)


def line_value(unit_price: Decimal, quantity: int) -> Decimal:
    """A refill line's value at the catalog price, to the cent."""
    return round_money(unit_price * quantity)


def _amount(x: float) -> str:
    """An expected number of units as people say it: 14, 3.5, 0.4."""
    if x >= 9.5:
        return str(round(x))
    text = f"{x:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


def service_text(service: float) -> str:
    return f"{service * 100:.1f}".rstrip("0").rstrip(".") + " %"


def message(reason: RefillReason, quantity: int, packs: int) -> str:
    """The one-line English reason for a recommendation."""
    on_hand = max(reason.on_hand, 0)
    if reason.demand_class == "dead":
        return f"No sales expected (no demand for a long time); {on_hand} on hand → no refill"
    head = (
        f"Expected {_amount(reason.expected_before_visit)} sold before the next visit in "
        f"{_days(reason.days_to_visit)}; {service_text(reason.service)} cover needs "
        f"{reason.order_up_to}; {on_hand} on hand"
    )
    if reason.on_order:
        head += f", {reason.on_order} on order"
    if quantity > 0:
        tail = f"refill {quantity}"
        if reason.pack_size > 1:
            tail += f" ({packs} pack{'s' if packs != 1 else ''} of {reason.pack_size})"
        if reason.capped:
            tail += f", as much as the capacity of {reason.capacity} allows"
    elif reason.need > 0 and reason.capped:
        tail = (
            f"no refill: a pack of {reason.pack_size} does not fit within the capacity of "
            f"{reason.capacity}"
        )
    else:
        tail = "no refill needed"
    return f"{head} → {tail}"


def recommendations(
    result: PolicyResult,
    forecast: DemandForecast,
    indices: Sequence[int] | Array,
    *,
    stand_ids: Sequence[str],
    product_ids: Sequence[str],
    skus: Sequence[str],
    names: Sequence[str],
    list_price: Sequence[Decimal],
    on_hand: Array,
    on_order: Array,
    capacity: Array,
    pack_size: Array,
    review_days: Array,
    days_to_visit: Array,
    arriving: Array,
    lead_days: int = DEFAULT_LEAD_DAYS,
    service: float = DEFAULT_SERVICE,
) -> list[RefillRecommendation]:
    """:class:`RefillRecommendation` objects for the series at ``indices``."""
    out = []
    classes = np.asarray(forecast.demand_class)
    methods = np.asarray(forecast.method)
    r = result.refill
    for i in (int(k) for k in indices):
        review = int(review_days[i])
        reason = RefillReason(
            expected_before_visit=round(float(result.expected_before_visit[i]), 2),
            days_to_visit=int(max(days_to_visit[i], 1)),
            stockout_risk=round(float(result.risk[i]), 4),
            service=service,
            review_days=review,
            lead_days=lead_days,
            cover_days=max(review, 1) + max(lead_days, 0),
            order_up_to=int(result.target[i]),
            on_hand=int(on_hand[i]),
            on_order=int(on_order[i]),
            arriving_before_visit=int(arriving[i]),
            capacity=int(capacity[i]),
            room=int(r.room[i]),
            pack_size=int(pack_size[i]),
            need=int(r.need[i]),
            capped=bool(r.capped[i]),
            demand_class=str(classes[i]),
            method=str(methods[i]),
        )
        qty, packs = int(r.quantity[i]), int(r.packs[i])
        price = list_price[i]
        out.append(
            RefillRecommendation(
                stand_id=stand_ids[i],
                product_id=product_ids[i],
                sku=skus[i],
                name=names[i],
                quantity=qty,
                packs=packs,
                unit_price=price,
                value=line_value(price, qty),
                reason=reason,
                message=message(reason, qty, packs),
            )
        )
    return out


def days_of_cover(on_hand: Array, mean: Array) -> Array:
    """Days until the expected demand (the forecast's daily means, then their average
    beyond the horizon) uses up the stock on hand; inf when nothing is expected to sell."""
    stock = np.maximum(np.asarray(on_hand, dtype=np.float64), 0)
    m = np.asarray(mean, dtype=np.float64)
    n, h = m.shape
    if h == 0:
        return np.full(n, math.inf)
    cum = np.cumsum(m, axis=1)
    # First day whose cumulative demand exceeds the stock, with the fraction of that day.
    beyond = cum > stock[:, None]
    first = np.where(beyond.any(axis=1), beyond.argmax(axis=1), h)
    prev = np.where(first > 0, cum[np.arange(n), np.maximum(first - 1, 0)], 0.0)
    prev = np.where(first == 0, 0.0, prev)
    inside_day = m[np.arange(n), np.minimum(first, h - 1)]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(inside_day > 0, (stock - prev) / inside_day, 0.0)
        rate = cum[:, -1] / h
        tail = np.where(rate > 0, h + (stock - cum[:, -1]) / rate, math.inf)
    cover = np.where(first < h, first + frac, tail)
    return np.where(stock <= 0, 0.0, cover)
