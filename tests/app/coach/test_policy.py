"""The refill policy: exact arithmetic, reasons, and how risk and targets move.

The arithmetic tests use a tiny Poisson stand-in for the forecast (private to this file),
so the numbers can be worked out by hand; the monotonicity tests use the real
:func:`app.coach.forecast.forecast_batch` on simulated series.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from app.coach import policy
from app.coach.forecast import forecast_batch

Array = np.ndarray[Any, Any]


class _Poisson:
    """A forecast of constant daily rates with Poisson totals (``target`` overrides the
    quantile, to pin an order-up-to level)."""

    def __init__(
        self, rates: list[float], classes: list[str] | None = None, target: list[int] | None = None
    ) -> None:
        self.rates = np.asarray(rates, dtype=np.float64)
        self.mean = np.repeat(self.rates[:, None], 14, axis=1)
        self.demand_class = np.asarray(classes or ["smooth"] * len(rates))
        self.method = np.asarray(["fake"] * len(rates))
        self.target = None if target is None else np.asarray(target, dtype=np.int64)

    def _periods(self, periods: Any) -> Array:
        return np.broadcast_to(np.asarray(periods, dtype=np.int64), self.rates.shape)

    def total_mean(self, periods: Any = None) -> Array:
        p = 14 if periods is None else periods
        out: Array = self.rates * self._periods(p)
        return out

    @staticmethod
    def _cdf(k: float, m: float) -> float:
        if k < 0:
            return 0.0
        return sum(math.exp(-m) * m**j / math.factorial(j) for j in range(int(k) + 1))

    def total_quantile_over(self, periods: Any, q: float) -> Array:
        if self.target is not None:
            return self.target
        out = []
        for m in self.total_mean(periods):
            k = 0
            while self._cdf(k, float(m)) < q:
                k += 1
            out.append(k)
        return np.asarray(out, dtype=np.int64)

    def prob_demand_exceeds(self, stock: Array, periods: Any) -> Array:
        s = np.broadcast_to(np.asarray(stock, dtype=np.float64), self.rates.shape)
        m = self.total_mean(periods)
        return np.array([1 - self._cdf(k, float(mu)) for k, mu in zip(s, m, strict=True)])


def _refill(
    target: int, on_hand: int, on_order: int, capacity: int, pack: int
) -> tuple[int, int, bool]:
    r = policy.refill_quantities(
        np.array([target]),
        np.array([on_hand]),
        np.array([on_order]),
        np.array([capacity]),
        np.array([pack]),
    )
    return int(r.quantity[0]), int(r.packs[0]), bool(r.capped[0])


def test_refill_is_target_minus_on_hand_and_on_order() -> None:
    assert _refill(22, 5, 6, 100, 1) == (11, 11, False)
    assert _refill(22, 5, 0, 100, 1) == (17, 17, False)


def test_refill_rounds_up_to_whole_packs() -> None:
    assert _refill(22, 5, 6, 100, 6) == (12, 2, False)
    assert _refill(24, 0, 0, 100, 12) == (24, 2, False)
    assert _refill(25, 0, 0, 100, 12) == (36, 3, False)


def test_capacity_caps_the_refill() -> None:
    # Room for 9 (20 - 5 on hand - 6 on order): 11 needed, 9 allowed.
    assert _refill(22, 5, 6, 20, 1) == (9, 9, True)


def test_rounding_goes_down_when_a_whole_pack_would_break_the_capacity() -> None:
    # 11 needed -> 2 packs of 6 = 12, but only 9 fit: one pack.
    assert _refill(22, 5, 6, 20, 6) == (6, 1, True)
    # Not even one pack fits.
    assert _refill(22, 15, 0, 20, 6) == (0, 0, True)


def test_nothing_when_stock_and_orders_cover_the_target() -> None:
    assert _refill(10, 12, 0, 100, 1) == (0, 0, False)
    assert _refill(10, 4, 6, 100, 6) == (0, 0, False)
    assert _refill(0, 0, 0, 100, 1) == (0, 0, False)


def test_negative_stock_counts_as_an_empty_shelf() -> None:
    assert _refill(10, -3, 0, 100, 1) == (10, 10, False)
    assert _refill(10, -3, 0, 8, 1) == (8, 8, True)


def _evaluate(fake: _Poisson, **kw: Any) -> policy.PolicyResult:
    n = len(fake.rates)
    args: dict[str, Any] = {
        "on_hand": np.zeros(n, dtype=np.int64),
        "on_order": np.zeros(n, dtype=np.int64),
        "capacity": np.full(n, 100),
        "pack_size": np.ones(n, dtype=np.int64),
        "review_days": np.full(n, 7),
        "days_to_visit": np.full(n, 6),
    }
    args.update({k: np.asarray(v) for k, v in kw.items()})
    return policy.evaluate(fake, **args)


def test_dead_item_gets_no_refill() -> None:
    fake = _Poisson([0.5, 0.5], classes=["dead", "smooth"], target=[4, 4])
    result = _evaluate(fake)
    assert result.target.tolist() == [0, 4]
    assert result.refill.quantity.tolist() == [0, 4]
    recs = _recommendations(fake, result, list_price=[Decimal("2.00")] * 2)
    assert recs[0].quantity == 0
    assert recs[0].message == "No sales expected (no demand for a long time); 0 on hand → no refill"


def _recommendations(
    fake: _Poisson,
    result: policy.PolicyResult,
    *,
    list_price: list[Decimal],
    on_hand: list[int] | None = None,
    on_order: list[int] | None = None,
    capacity: list[int] | None = None,
    pack_size: list[int] | None = None,
    days_to_visit: list[int] | None = None,
) -> list[policy.RefillRecommendation]:
    n = len(fake.rates)
    return policy.recommendations(
        result,
        fake,
        range(n),
        stand_ids=["s"] * n,
        product_ids=[f"p{i}" for i in range(n)],
        skus=[f"SKU-{i}" for i in range(n)],
        names=[f"Product {i}" for i in range(n)],
        list_price=list_price,
        on_hand=np.asarray(on_hand or [0] * n),
        on_order=np.asarray(on_order or [0] * n),
        capacity=np.asarray(capacity or [100] * n),
        pack_size=np.asarray(pack_size or [1] * n),
        review_days=np.full(n, 7),
        days_to_visit=np.asarray(days_to_visit or [6] * n),
        arriving=np.zeros(n, dtype=np.int64),
    )


def test_reason_message_and_catalog_price() -> None:
    # 14 expected over the 6 days to the visit; the 95 % order-up-to level over 7 + 2 days
    # pinned at 22; 5 on hand, 6 on order: 11 needed, two packs of 6.
    fake = _Poisson([14 / 6], target=[22])
    kw = {"on_hand": [5], "on_order": [6], "pack_size": [6], "days_to_visit": [6]}
    result = _evaluate(fake, **kw)
    (rec,) = _recommendations(fake, result, list_price=[Decimal("1.99")], **kw)
    assert rec.message == (
        "Expected 14 sold before the next visit in 6 days; 95 % cover needs 22; "
        "5 on hand, 6 on order → refill 12 (2 packs of 6)"
    )
    assert (rec.quantity, rec.packs) == (12, 2)
    assert rec.value == Decimal("23.88")
    assert isinstance(rec.value, Decimal)
    r = rec.reason
    assert (r.order_up_to, r.on_hand, r.on_order, r.need, r.pack_size) == (22, 5, 6, 11, 6)
    assert (r.review_days, r.lead_days, r.cover_days, r.days_to_visit) == (7, 2, 9, 6)
    assert r.expected_before_visit == pytest.approx(14)
    assert r.capped is False


def test_messages_for_capped_and_covered_refills() -> None:
    fake = _Poisson([3.0, 0.5, 3.0], target=[30, 3, 30])
    kw = {
        "on_hand": [2, 5, 15],
        "on_order": [0, 0, 0],
        "capacity": [20, 100, 20],
        "pack_size": [6, 1, 6],
        "days_to_visit": [1, 3, 6],
    }
    result = _evaluate(fake, **kw)
    capped, covered, full = _recommendations(fake, result, list_price=[Decimal("1.00")] * 3, **kw)
    assert capped.quantity == 18
    assert capped.message.endswith(
        "→ refill 18 (3 packs of 6), as much as the capacity of 20 allows"
    )
    assert "next visit in 1 day;" in capped.message
    assert covered.quantity == 0
    assert covered.message.endswith("5 on hand → no refill needed")
    assert full.quantity == 0
    assert full.message.endswith("→ no refill: a pack of 6 does not fit within the capacity of 20")


def test_stockout_risk_counts_arrivals_only_after_they_arrive() -> None:
    fake = _Poisson([1.0])
    on_hand = np.array([2])
    alone = policy.stockout_risk(fake, on_hand, 6)
    # 2 on hand for 6 days at 1 a day: P(D > 2), D ~ Poisson(6).
    assert alone[0] == pytest.approx(1 - math.exp(-6) * (1 + 6 + 18))
    # 10 more arriving on day 2: at least P(D(2) > 2), and below the risk without them.
    helped = policy.stockout_risk(
        fake, on_hand, 6, arriving=np.array([10]), arrival_days=np.array([2])
    )
    early = 1 - math.exp(-2) * (1 + 2 + 2)
    assert helped[0] == pytest.approx(early)
    assert helped[0] < alone[0]
    # Arriving "at" the visit (day 6 or later) does not help before it.
    assert policy.stockout_risk(
        fake, on_hand, 6, arriving=np.array([0]), arrival_days=np.array([0])
    )[0] == pytest.approx(alone[0])


def _simulated(n: int = 60, days: int = 91, seed: int = 3) -> Array:
    rng = np.random.default_rng(seed)
    rates = rng.gamma(1.2, 1.0, size=n)
    history = rng.negative_binomial(2, 2 / (2 + rates[:, None]), size=(n, days)).astype(float)
    history[rng.random((n, days)) < 0.05] = np.nan  # some out-of-stock days
    return history


def test_higher_service_never_lowers_the_target_or_the_refill() -> None:
    fc = forecast_batch(_simulated(), 9)
    n = fc.mean.shape[0]
    kw = {
        "on_hand": np.full(n, 3),
        "on_order": np.full(n, 1),
        "capacity": np.full(n, 60),
        "pack_size": np.full(n, 6),
        "review_days": np.full(n, 7),
        "days_to_visit": np.full(n, 5),
    }
    targets, quantities = [], []
    for service in (0.5, 0.8, 0.9, 0.95, 0.975, 0.99):
        result = policy.evaluate(fc, service=service, **kw)
        targets.append(result.target)
        quantities.append(result.refill.quantity)
    t, q = np.stack(targets), np.stack(quantities)
    assert (np.diff(t, axis=0) >= 0).all()
    assert (np.diff(q, axis=0) >= 0).all()
    assert (q <= 60 - 4).all()  # within capacity
    assert (q % 6 == 0).all()  # whole packs
    assert t[-1].sum() > t[0].sum()


def test_risk_grows_with_the_days_to_the_visit_and_falls_with_stock() -> None:
    fc = forecast_batch(_simulated(), 14)
    n = fc.mean.shape[0]
    stock = np.full(n, 4)
    by_days = np.stack([policy.stockout_risk(fc, stock, d) for d in (1, 3, 7, 14)])
    assert (np.diff(by_days, axis=0) >= -1e-12).all()
    by_stock = np.stack([policy.stockout_risk(fc, np.full(n, s), 7) for s in (0, 2, 5, 20)])
    assert (np.diff(by_stock, axis=0) <= 1e-12).all()
    assert ((by_days >= 0) & (by_days <= 1)).all()


def test_service_level_out_of_range_is_refused() -> None:
    fake = _Poisson([1.0])
    with pytest.raises(ValueError, match="service level"):
        policy.order_up_to(fake, 7, service=1.0)


def test_days_of_cover_follows_the_daily_forecast() -> None:
    mean = np.array([[1.0, 1.0, 2.0, 2.0], [0.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.5, 0.5]])
    cover = policy.days_of_cover(np.array([3, 5, 0]), mean)
    assert cover[0] == pytest.approx(2.5)  # 1 + 1 + half of the third day's 2
    assert cover[1] == math.inf
    assert cover[2] == 0.0
    beyond = policy.days_of_cover(np.array([4]), np.array([[0.5, 0.5]]))
    assert beyond[0] == pytest.approx(8.0)  # past the horizon at its average rate
