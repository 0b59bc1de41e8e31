"""The coach's forecasting engine: each method against statsforecast, classification, dead
items, missing periods, new items, the negative binomial against scipy, the batch API."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from statsforecast import models as sf

from app.coach import forecast as fc
from app.coach.forecast import (
    CLASSES,
    adida,
    classify,
    croston_classic,
    croston_sba,
    forecast_batch,
    holt_damped,
    imapa,
    nb_cdf,
    nb_quantile,
    seasonal_indices,
    ses,
    tsb,
)


def _series() -> np.ndarray:
    """A small mixed batch: intermittent, lumpy and smooth series, and the edge cases
    (no demand, one demand, demand only at the first or the last period)."""
    rng = np.random.default_rng(7)
    n, t = 24, 36
    p = rng.uniform(0.15, 0.95, n)[:, None]
    y = (rng.random((n, t)) < p) * rng.poisson(rng.uniform(0.5, 8.0, n)[:, None], (n, t))
    y = y.astype(float)
    y[0] = 0.0
    y[1] = 0.0
    y[1, 17] = 4.0
    y[2] = 0.0
    y[2, 0] = 3.0
    y[3] = 0.0
    y[3, -1] = 2.0
    return y


def _reference(model: object, y: np.ndarray, h: int = 3) -> np.ndarray:
    return np.array([model.forecast(y=row, h=h)["mean"] for row in y])


# ------------------------------------------------------------------ against statsforecast


@pytest.mark.parametrize("alpha", [0.1, 0.3, 0.8])
def test_ses_matches_statsforecast(alpha: float) -> None:
    y = _series()[4:]  # SES of an all-zero series is 0 in both; keep the data rich
    mine = ses(y, alpha, 3)
    ref = _reference(sf.SimpleExponentialSmoothing(alpha=alpha), y)
    np.testing.assert_allclose(mine.forecast, ref, rtol=1e-10)
    fitted = np.array(
        [
            sf.SimpleExponentialSmoothing(alpha=alpha).forecast(y=r, h=1, fitted=True)["fitted"]
            for r in y
        ]
    )
    np.testing.assert_allclose(mine.fitted, fitted, rtol=1e-10, equal_nan=True)


def test_croston_classic_and_sba_match_statsforecast() -> None:
    y = _series()
    np.testing.assert_allclose(
        croston_classic(y, 0.1, 3).forecast, _reference(sf.CrostonClassic(), y), rtol=1e-10
    )
    np.testing.assert_allclose(
        croston_sba(y, 0.1, 3).forecast, _reference(sf.CrostonSBA(), y), rtol=1e-10
    )


@pytest.mark.parametrize(("alpha_d", "alpha_p"), [(0.1, 0.1), (0.2, 0.05), (0.5, 0.3)])
def test_tsb_matches_statsforecast(alpha_d: float, alpha_p: float) -> None:
    y = _series()
    mine = tsb(y, alpha_d, alpha_p, 3)
    model = sf.TSB(alpha_d=alpha_d, alpha_p=alpha_p)
    np.testing.assert_allclose(mine.forecast, _reference(model, y), rtol=1e-10)
    for row in range(4, 8):
        ref = sf.TSB(alpha_d=alpha_d, alpha_p=alpha_p).forecast(y=y[row], h=1, fitted=True)
        np.testing.assert_allclose(mine.fitted[row], ref["fitted"], rtol=1e-10, equal_nan=True)


def test_adida_and_imapa_match_statsforecast() -> None:
    """Both optimise SES on the bucket sums by golden-section search in [0.1, 0.3]; the
    search is reproduced step by step, so the agreement is to rounding."""
    y = _series()
    np.testing.assert_allclose(adida(y, 3).forecast, _reference(sf.ADIDA(), y), rtol=1e-6)
    np.testing.assert_allclose(imapa(y, 3).forecast, _reference(sf.IMAPA(), y), rtol=1e-6)


def test_adida_with_a_fixed_constant_is_ses_on_bucket_sums() -> None:
    y = _series()[4:6]
    out = adida(y, 1, alpha=0.2, aggregation=3)
    sums = y[:, 36 % 3 :].reshape(2, -1, 3).sum(axis=2)
    np.testing.assert_allclose(out.forecast[:, 0], ses(sums, 0.2).forecast[:, 0] / 3, rtol=1e-12)


def test_holt_matches_statsforecast_on_a_line_and_a_plain_loop() -> None:
    line = 3.0 + 0.5 * np.arange(30.0)
    ref = sf.Holt().forecast(y=line, h=4)["mean"]
    mine = holt_damped(line[None, :], 0.3, 0.1, 1.0, 4, init="first")
    np.testing.assert_allclose(mine.forecast[0], ref, rtol=1e-6)

    y = _series()[4:8] + 1.0
    alpha, beta, phi = 0.3, 0.1, 0.9
    out = holt_damped(y, alpha, beta, phi, 5, init="first")
    for i, row in enumerate(y):
        level, trend = row[1], row[1] - row[0]
        for x in row[2:]:
            prev = level
            level = alpha * x + (1 - alpha) * (prev + phi * trend)
            trend = beta * (level - prev) + (1 - beta) * phi * trend
        expect = [level + sum(phi**j for j in range(1, h + 1)) * trend for h in range(1, 6)]
        np.testing.assert_allclose(out.forecast[i], expect, rtol=1e-10)


def test_methods_take_a_constant_per_series() -> None:
    y = _series()[4:8]
    alphas = np.array([0.1, 0.2, 0.3, 0.4])
    together = ses(y, alphas).forecast[:, 0]
    apart = [ses(y[i : i + 1], float(a)).forecast[0, 0] for i, a in enumerate(alphas)]
    np.testing.assert_allclose(together, apart)
    with pytest.raises(ValueError, match="alpha"):
        ses(y, np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        tsb(y, 0.0, 0.1)


def test_diffuse_start_averages_the_first_observations() -> None:
    """With a small constant the diffuse start is close to the plain mean on a short
    history, where statsforecast's start leans on the first value."""
    y = np.array([[9.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]])
    diffuse = ses(y, 0.05, init="diffuse").forecast[0, 0]
    first = ses(y, 0.05, init="first").forecast[0, 0]
    assert abs(diffuse - y.mean()) < 0.2
    assert first > 5.0


# ------------------------------------------------------------------ missing periods


@pytest.mark.parametrize(
    "method",
    [
        lambda y: ses(y, 0.2, init="first"),
        lambda y: ses(y, 0.2, init="diffuse"),
        lambda y: croston_classic(y, 0.1),
        lambda y: croston_sba(y, 0.2, init="diffuse"),
        lambda y: tsb(y, 0.2, 0.1),
        lambda y: tsb(y, 0.1, 0.3, init="diffuse"),
        lambda y: holt_damped(y, 0.3, 0.1, 0.9),
        lambda y: adida(y),
        lambda y: imapa(y),
        lambda y: adida(y, alpha=0.2, init="diffuse"),
    ],
    ids=[
        "ses",
        "ses-diffuse",
        "croston",
        "sba",
        "tsb",
        "tsb-diffuse",
        "holt",
        "adida",
        "imapa",
        "adida-fixed",
    ],
)
def test_missing_periods_are_skipped(method) -> None:
    """A series with NaN periods forecasts what the series without them forecasts."""
    full = _series()[4:10]
    gaps = full.copy()
    gaps[:, [3, 4, 11, 20, 21, 22, 30]] = np.nan
    with_nan = method(gaps).forecast
    for i in range(len(full)):
        kept = full[i][~np.isnan(gaps[i])][None, :]
        np.testing.assert_allclose(with_nan[i], method(kept).forecast[0], rtol=1e-10)
    assert np.isfinite(method(gaps).fitted[:, -1]).all()


def test_missing_periods_do_not_lower_the_batch_forecast() -> None:
    """Stock-out periods as NaN keep the rate; as zeros they would drag it down."""
    rng = np.random.default_rng(3)
    y = rng.poisson(4.0, (50, 56)).astype(float)
    out_of_stock = y.copy()
    out_of_stock[:, -10:-3] = np.nan
    as_zero = y.copy()
    as_zero[:, -10:-3] = 0.0
    f_nan = forecast_batch(out_of_stock, 7, season=1).mean.sum(axis=1)
    f_zero = forecast_batch(as_zero, 7, season=1).mean.sum(axis=1)
    f_full = forecast_batch(y, 7, season=1).mean.sum(axis=1)
    assert f_nan.mean() > f_zero.mean() * 1.15
    np.testing.assert_allclose(f_nan.mean(), f_full.mean(), rtol=0.05)
    np.testing.assert_allclose(f_nan.mean(), 28.0, rtol=0.06)


def test_all_missing_and_empty_histories() -> None:
    y = np.full((3, 20), np.nan)
    y[1, -3:] = [2.0, 0.0, 1.0]
    out = forecast_batch(y, 5, quantiles=(0.9,))
    assert list(out.demand_class) == ["new", "new", "new"]
    assert np.all(out.mean[0] == 0)
    assert out.total_quantile[0.9][0] == 0
    np.testing.assert_allclose(out.mean[1], 1.0)  # its own rate: 3 units in 3 days
    empty = forecast_batch(np.zeros((0, 10)), 3, quantiles=(0.5,))
    assert empty.mean.shape == (0, 3)
    assert empty.total_quantile[0.5].shape == (0,)
    no_days = forecast_batch(np.zeros((2, 0)), 3)
    assert list(no_days.demand_class) == ["new", "new"]
    assert np.all(no_days.mean == 0)


# ------------------------------------------------------------------ classification


def test_classification_of_hand_made_series() -> None:
    t = 42
    smooth = 5.0 + np.tile([0.0, 1.0, -1.0], t // 3)
    intermittent = np.where(np.arange(t) % 3 == 0, 2.0, 0.0)
    erratic = np.tile([1.0, 12.0, 2.0, 20.0, 1.0, 8.0], t // 6)
    lumpy = np.where(np.arange(t) % 4 == 0, np.tile([1.0, 15.0, 2.0], t)[:t], 0.0)
    new = np.concatenate([np.full(t - 10, np.nan), [1.0, 0, 2, 0, 1, 0, 0, 3, 0, 1]])
    never_sold_yet = np.concatenate([np.full(t - 20, np.nan), np.zeros(20)])
    dead = np.concatenate([np.full(t - 34, 3.0), np.zeros(34)])
    never_sold = np.zeros(t)
    gaps = smooth.copy()
    gaps[::5] = np.nan  # stock-outs do not make a smooth series intermittent
    batch = np.vstack(
        [smooth, intermittent, erratic, lumpy, new, never_sold_yet, dead, never_sold, gaps]
    )
    assert list(classify(batch)) == [
        "smooth",
        "intermittent",
        "erratic",
        "lumpy",
        "new",
        "new",
        "dead",
        "dead",
        "smooth",
    ]
    assert set(forecast_batch(batch, 7).demand_class) <= set(CLASSES)


def test_dead_threshold_is_relative_to_the_usual_interval() -> None:
    """30 trailing zeros kill a daily seller, not one that sells every 15 days; and
    nothing is dead within a history shorter than four weeks."""
    daily = np.concatenate([np.full(60, 2.0), np.zeros(30)])
    rare = np.zeros(90)
    rare[[0, 15, 30, 45, 59]] = 1.0
    short = np.concatenate([[3.0], np.zeros(20)])
    assert list(classify(np.vstack([daily, rare]))) == ["dead", "intermittent"]
    assert classify(short[None, :])[0] == "intermittent"


def test_dead_item_forecasts_near_zero_not_a_croston_echo() -> None:
    y = np.concatenate([np.tile([2.0, 0.0, 1.0, 3.0, 0.0, 2.0, 1.0], 8), np.zeros(60)])[None, :]
    out = forecast_batch(y, 14, quantiles=(0.95,))
    assert out.demand_class[0] == "dead"
    assert out.method[0] == "tsb_decay"
    assert out.mean.sum() < 0.01
    assert out.total_quantile[0.95][0] == 0
    assert croston_sba(y, 0.1).forecast[0, 0] > 0.5  # what Croston would have said


# ------------------------------------------------------------------ new items


def test_new_items_use_the_peer_rate_shrunk_towards_their_own() -> None:
    y = np.full((4, 30), np.nan)
    y[:, -5:] = 0.0
    y[1, -5:] = [1.0, 0.0, 2.0, 0.0, 2.0]  # 5 units in 5 days
    peer = np.array([2.0, 2.0, np.nan, 0.5])
    out = forecast_batch(y, 7, season=1, peer_rate=peer)
    assert list(out.demand_class) == ["new"] * 4
    k = fc.PEER_PRIOR_PERIODS
    np.testing.assert_allclose(out.mean[0], (0 + k * 2.0) / (5 + k))
    np.testing.assert_allclose(out.mean[1], (5 + k * 2.0) / (5 + k))
    np.testing.assert_allclose(out.mean[2], 0.0)  # no peer: its own (zero) rate
    np.testing.assert_allclose(out.mean[3], (0 + k * 0.5) / (5 + k))
    assert list(out.method) == ["peer_rate", "peer_rate", "own_rate", "peer_rate"]
    # The less it has seen, the wider its distribution.
    assert out.dispersion[3] > out.dispersion[0]
    with pytest.raises(ValueError, match="peer_rate"):
        forecast_batch(y, 7, peer_rate=np.ones(3))


def test_new_items_without_peers_borrow_the_batch_prior() -> None:
    """Without a peer rate, a new item that has not sold yet is not certain to sell
    nothing: its rate is the posterior under a gamma prior learnt from the batch."""
    rng = np.random.default_rng(12)
    rates = rng.gamma(1.0, 1.0, 200)
    y = rng.poisson(rates[:, None], (200, 42)).astype(float)
    fresh = np.full((5, 42), np.nan)
    fresh[:, -10:] = 0.0
    out = forecast_batch(np.vstack([y, fresh]), 7, season=1, quantiles=(0.95,))
    assert list(out.demand_class[200:]) == ["new"] * 5
    new_rate = out.mean[200:, 0]
    assert np.all(new_rate > 0)
    assert np.all(new_rate < 0.5 * rates.mean())  # ten zero days pull it well below
    # The gamma prior's mean and weight (by moments, less the Poisson noise), learnt from the
    # established series (a few never sold in the 42 days: dead, left out).
    established = ~np.isin(out.demand_class[:200], ["new", "dead"])
    assert 150 < established.sum() < 200
    obs_rates = y[established].mean(axis=1)
    var = obs_rates.var() - (obs_rates / 42).mean()
    b = min(obs_rates.mean() / var, fc.PEER_PRIOR_PERIODS)
    np.testing.assert_allclose(new_rate, obs_rates.mean() * b / (10 + b), rtol=1e-9)
    assert np.all(out.dispersion[200:] >= 1 / (obs_rates.mean() * b))
    assert np.all(out.total_quantile[0.95][200:] >= 1)


# ------------------------------------------------------------------ negative binomial


MEANS = [0.05, 0.5, 2.0, 10.0, 60.0, 400.0]
DISPERSIONS = [0.0, 0.01, 0.3, 1.0, 5.0]


def _scipy(mean: float, phi: float) -> stats.rv_discrete:
    if phi == 0:
        return stats.poisson(mean)
    r = 1.0 / phi
    return stats.nbinom(r, r / (r + mean))


@pytest.mark.parametrize("q", [0.5, 0.8, 0.9, 0.95, 0.99, 0.999])
def test_nb_quantile_matches_scipy(q: float) -> None:
    m, phi = np.meshgrid(MEANS, DISPERSIONS, indexing="ij")
    mine = nb_quantile(m, phi, q)
    ref = np.vectorize(lambda a, b: _scipy(a, b).ppf(q))(m, phi)
    np.testing.assert_array_equal(mine, ref)
    assert mine.dtype.kind == "i"


def test_nb_cdf_matches_scipy() -> None:
    for mean in MEANS:
        for phi in DISPERSIONS:
            dist = _scipy(mean, phi)
            k = np.unique(np.floor(np.linspace(0, dist.ppf(0.9999) + 3, 25)))
            mine = nb_cdf(k, np.full(k.shape, mean), np.full(k.shape, phi))
            np.testing.assert_allclose(mine, dist.cdf(k), atol=1e-9, err_msg=f"{mean}, {phi}")
    assert nb_cdf(-1.0, 3.0, 0.2) == 0.0
    assert nb_cdf(0.0, 0.0, 0.2) == 1.0
    assert nb_cdf(1e9, 3.0, 0.2) == 1.0


def test_nb_large_means_and_tiny_dispersions() -> None:
    ref = stats.nbinom(1e6, 1e6 / (1e6 + 5000.0)).ppf(0.95)
    assert nb_quantile(5000.0, 1e-6, 0.95) == ref
    assert nb_quantile(50_000.0, 0.02, 0.95) == stats.nbinom(50, 50 / 50_050).ppf(0.95)


# ------------------------------------------------------------------ the batch API


@pytest.fixture(scope="module")
def batch() -> fc.BatchForecast:
    rng = np.random.default_rng(11)
    rate = rng.gamma(0.8, 2.0, 300)[:, None]
    y = rng.poisson(rate * rng.gamma(4.0, 0.25, (300, 70))).astype(float)
    y[rng.random(y.shape) < 0.05] = np.nan
    return forecast_batch(y, 14, quantiles=(0.5, 0.9, 0.95))


def test_batch_shapes_and_ranges(batch: fc.BatchForecast) -> None:
    n = 300
    assert batch.mean.shape == (n, 14)
    assert np.all(np.isfinite(batch.mean))
    assert np.all(batch.mean >= 0)
    assert set(batch.total_quantile) == {0.5, 0.9, 0.95}
    assert all(v.shape == (n,) and v.dtype.kind == "i" for v in batch.total_quantile.values())
    assert batch.demand_class.shape == batch.method.shape == batch.dispersion.shape == (n,)
    assert set(batch.demand_class) <= set(CLASSES)
    assert np.all(batch.dispersion >= 0)
    assert np.all(batch.total_quantile[0.5] <= batch.total_quantile[0.9])
    assert np.all(batch.total_quantile[0.9] <= batch.total_quantile[0.95])


def test_total_mean_and_quantiles_over_periods(batch: fc.BatchForecast) -> None:
    np.testing.assert_allclose(batch.total_mean(), batch.mean.sum(axis=1))
    np.testing.assert_allclose(batch.total_mean(3), batch.mean[:, :3].sum(axis=1))
    per_series = np.arange(300) % 15
    expect = [batch.mean[i, : per_series[i]].sum() for i in range(300)]
    np.testing.assert_allclose(batch.total_mean(per_series), expect)
    # Past the horizon the last season repeats.
    np.testing.assert_allclose(
        batch.total_mean(21), batch.mean.sum(axis=1) + batch.mean[:, -7:].sum(axis=1)
    )
    np.testing.assert_array_equal(batch.total_quantile_over(14, 0.95), batch.total_quantile[0.95])
    shorter = batch.total_quantile_over(7, 0.95)
    assert np.all(shorter <= batch.total_quantile[0.95])
    assert np.all(batch.total_quantile_over(per_series, 0.9) <= batch.total_quantile_over(14, 0.9))
    with pytest.raises(ValueError, match="periods"):
        batch.total_mean(-1)


def test_prob_demand_exceeds(batch: fc.BatchForecast) -> None:
    stock = batch.total_quantile[0.9].astype(float)
    p = batch.prob_demand_exceeds(stock, 14)
    assert p.shape == (300,)
    assert np.all((p >= 0) & (p <= 0.1 + 1e-12))
    # The quantile is the smallest stock whose risk is at most 1 - q.
    below = batch.prob_demand_exceeds(stock - 1, 14)
    assert np.all((below > 0.1 - 1e-12) | (stock == 0))
    assert np.all(batch.prob_demand_exceeds(stock + 5, 14) <= p)
    assert np.all(batch.prob_demand_exceeds(stock, 21) >= p)
    assert np.all(batch.prob_demand_exceeds(np.full(300, -1.0), 1) == 1.0)
    np.testing.assert_allclose(
        p, 1.0 - nb_cdf(stock, batch.total_mean(14), batch.dispersion), atol=1e-12
    )


def test_quantiles_cover_negative_binomial_demand() -> None:
    """On gamma–Poisson demand with steady rates the 90 % order-up-to level is met in
    roughly 90 % of the cases (not the 80 % a Poisson level gives on such data)."""
    rng = np.random.default_rng(5)
    n, t, h = 2000, 63, 7
    rate = rng.gamma(1.0, 2.0, n)[:, None]
    y = rng.poisson(rate * rng.gamma(2.0, 0.5, (n, t + h))).astype(float)
    out = forecast_batch(y[:, :t], h, quantiles=(0.9,))
    covered = np.mean(y[:, t:].sum(axis=1) <= out.total_quantile[0.9])
    assert 0.86 <= covered <= 0.96
    poisson = np.mean(y[:, t:].sum(axis=1) <= stats.poisson.ppf(0.9, out.total_mean()))
    assert covered > poisson + 0.03


def test_input_validation() -> None:
    with pytest.raises(ValueError, match="2-D"):
        forecast_batch(np.zeros(10), 3)
    with pytest.raises(ValueError, match="horizon"):
        forecast_batch(np.zeros((2, 10)), 0)
    with pytest.raises(ValueError, match="quantile"):
        forecast_batch(np.zeros((2, 10)), 3, quantiles=(1.0,))
    with pytest.raises(ValueError, match="quantile"):
        nb_quantile(1.0, 0.1, 0.0)
    # Negative demand (returns) counts as none; infinities as missing.
    y = np.full((1, 30), 2.0)
    y[0, 3] = -4.0
    y[0, 4] = np.inf
    assert np.isfinite(forecast_batch(y, 2).mean).all()


# ------------------------------------------------------------------ weekday pattern


WEEK = np.array([0.8, 0.9, 0.9, 0.9, 1.0, 1.4, 1.1])


def _weekly(n: int, weeks: int, rate: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = 7 * weeks
    return rng.poisson(rate * np.tile(WEEK, weeks)[None, :], (n, t)).astype(float)


def test_weekday_pattern_is_recovered() -> None:
    y = _weekly(200, 12, 6.0, seed=1)
    idx = seasonal_indices(y, 7)
    np.testing.assert_allclose(idx.mean(axis=0), WEEK / WEEK.mean(), atol=0.03)
    out = forecast_batch(y, 14)
    profile = out.mean.mean(axis=0)[:7]
    np.testing.assert_allclose(profile / profile.mean(), WEEK / WEEK.mean(), atol=0.04)
    assert all(m.endswith("+weekday") for m in out.method)


def test_weekday_pattern_of_a_shifted_history_stays_on_its_days() -> None:
    """Column j of the indices belongs to future period j (mod 7): dropping the first three
    days of history does not move the pattern off its weekdays."""
    y = _weekly(200, 12, 6.0, seed=2)
    idx = seasonal_indices(y[:, 3:], 7).mean(axis=0)
    np.testing.assert_allclose(idx, WEEK / WEEK.mean(), atol=0.03)


def test_no_weekday_pattern_without_one_in_the_data() -> None:
    rng = np.random.default_rng(4)
    y = rng.poisson(3.0, (100, 84)).astype(float)
    np.testing.assert_array_equal(seasonal_indices(y, 7), np.ones((100, 7)))
    out = forecast_batch(y, 7)
    assert not any(m.endswith("+weekday") for m in out.method)
    assert np.ptp(out.mean, axis=1).max() < 1e-9  # flat
    # Too short a history for a pattern, or season 1: none either.
    np.testing.assert_array_equal(seasonal_indices(y[:, :10], 7), np.ones((100, 7)))
    flat = forecast_batch(_weekly(20, 6, 5.0, seed=3), 7, season=1)
    assert np.ptp(flat.mean, axis=1).max() < 1e-9


# ------------------------------------------------------------------ methods chosen


def test_a_trending_smooth_series_can_take_the_damped_trend() -> None:
    rng = np.random.default_rng(8)
    t = np.arange(112)
    y = 20.0 + 0.3 * t + rng.normal(0, 1.0, (30, 112))
    out = forecast_batch(np.round(np.clip(y, 0, None)), 7, season=1)
    assert set(out.demand_class) == {"smooth"}
    assert set(out.method) == {"holt_damped"}
    assert np.all(np.diff(out.mean, axis=1) > 0)
    # Damped, so it lags a straight line a little, but far less than a level would.
    assert np.all(out.mean[:, 0] > 20.0 + 0.3 * 106)


def test_classes_get_their_methods() -> None:
    rng = np.random.default_rng(9)
    smooth = rng.poisson(8.0, (40, 56)).astype(float)
    intermittent = (rng.random((40, 56)) < 0.3) * 2.0
    lumpy = (rng.random((40, 56)) < 0.2) * rng.choice([1.0, 10.0], (40, 56))
    out = forecast_batch(np.vstack([smooth, intermittent, lumpy]), 7, season=1)
    for cls, allowed in [
        ("smooth", {"ses", "holt_damped"}),
        ("intermittent", {"croston_sba", "tsb"}),
        ("lumpy", {"adida", "imapa", "croston_sba"}),
    ]:
        picked = set(out.method[out.demand_class == cls])
        assert picked, cls
        assert picked <= allowed, (cls, picked)
    # Their forecasts are close to the true rates.
    np.testing.assert_allclose(out.mean[:40].mean(), 8.0, rtol=0.05)
    np.testing.assert_allclose(out.mean[40:80].mean(), 0.6, rtol=0.15)


def test_a_series_without_the_classes_method_takes_one_that_ran_on_it() -> None:
    """Regression: the damped trend needs eight observed weeks. A smooth series observed two
    days a week (out of stock the rest) must not inherit it from its class and forecast 0."""
    rng = np.random.default_rng(10)
    t = np.arange(91)
    trending = np.round(10.0 + 0.1 * t + rng.normal(0, 0.5, (20, 91)))
    short = np.where(t % 7 < 2, 4.0, np.nan)[None, :]
    out = forecast_batch(np.vstack([trending, short]), 9, season=1)
    assert set(out.method[:20]) == {"holt_damped"}
    assert out.demand_class[20] == "smooth"
    assert out.method[20] == "ses"
    np.testing.assert_allclose(out.mean[20], 4.0)
