"""Demand forecasts for the coach: one batch of stand × SKU series at a time, numpy only.

:func:`forecast_batch` takes ``history`` of shape (series, periods) — demand per period (a
day in the app), NaN for a period whose demand was not observed (the stand was out of
stock) — and returns a :class:`BatchForecast`: the expected demand of each future period,
the demand class and method of each series, and a negative binomial law of the total
demand over any number of future periods (quantiles, probability of exceeding a stock).
Everything is vectorised over series: Python loops run over periods, aggregation levels or
a handful of parameter values, never over series. The columns of ``history`` are the same
calendar periods for every series (the last column is the same day for all), so a weekday
pattern, smoothing constants and a dispersion can be pooled across the batch.

Demand classes (:func:`classify`)
    Syntetos & Boylan (2005) cut-offs on ``ADI``, the average demand interval (observed
    periods per period with demand), and ``CV²``, the squared coefficient of variation of the
    non-zero demand sizes (sample variance; 0 for a single demand):

    ============  ========  ========
    class         ADI       CV²
    ============  ========  ========
    smooth        < 1.32    < 0.49
    intermittent  ≥ 1.32    < 0.49
    erratic       < 1.32    ≥ 0.49
    lumpy         ≥ 1.32    ≥ 0.49
    ============  ========  ========

    and, before those:

    - **dead**: the run of observed zero periods since the last demand is at least
      ``max(28, 3 × interval)``, where ``interval`` is the mean interval between demands up
      to the last one (three usual intervals, four weeks at least); or the series has not
      sold in 28 or more observed periods. The floor of 28 means a history shorter than
      four weeks never makes anything dead: slow movers go two or three weeks without a sale.
    - **new**: fewer than 14 observed periods (two weeks: too few to tell a class), or no
      demand yet (and not dead).

Methods (the small functions below, each on a 2-D array, series × periods)
    ============  ======================================================================
    class         candidates
    ============  ======================================================================
    smooth        SES; damped-trend Holt for series with 56+ observed periods
    intermittent  Croston SBA; TSB
    erratic       SES; TSB
    lumpy         ADIDA; IMAPA; Croston SBA
    new           gamma–Poisson posterior of the rate: prior the peer rate (worth 14
                  periods), else a gamma prior learnt from the batch (empirical Bayes)
    dead          TSB with a fast probability update on the raw history: fades to zero
    ============  ======================================================================

    The engine runs the smoothers with a *diffuse* start (``init="diffuse"``): the gain of
    the k-th observation is ``alpha / (1 - (1 - alpha)**k)``, what the Kalman filter of the
    local-level model gives from an uninformative prior — the first observations are
    averaged (a bias-corrected exponentially weighted mean) instead of the first one
    becoming the level, which on sparse daily data is mostly noise. With ``init="first"``
    (their default) the functions reproduce statsforecast's results; the tests check that.

Constants and method choice (rolling origin)
    Forecasts made after each of the last periods are scored against the 1…J periods that
    follow (J = min(horizon, 14)) over the last 28 observed periods (squared errors, each
    series divided by its mean squared one-step change, so series pool fairly).

    1. Per class and method, the smoothing constant from ``ALPHA_GRID`` with the smallest
       pooled error over the class's series (up to 2,000 of them, evenly spaced): one
       constant per class (cross-learning), steadier than a per-series fit on a few weeks
       of sparse data.
    2. Per class, the method with the smallest pooled error is the default.
    3. Per series, its own best method — but only in a class where that helps: each
       series' choice on the first half of the window is scored on the second half,
       pooled, against the default's; per-series choice is used only if it wins there.

    A series takes only a method that could run on it (the damped trend needs 56 observed
    periods).

Weekday pattern (``season``)
    Multiplicative indices from the complete seasons at the end of the history (each
    season normalised by its own mean, so a trend does not leak into the pattern): a pooled
    profile, the demand-weighted average over the batch, used only where a two-way analysis
    of variance (seasons × weekdays) of the pooled seasons finds a weekday effect (F test at
    1 %); and per series an empirical-Bayes mix of its own profile and the pooled one, the
    weight ``tau² / (tau² + v_i)`` with ``v_i`` the sampling variance of its own indices (the
    scatter of its seasons, at least Poisson's) and ``tau²`` the between-series variance
    (method of moments), so a slow mover takes the pooled profile and a steady best seller
    mostly its own. The methods run on the deseasonalised demand and the forecast is
    multiplied back. An index below 0.05 is a closed day: no demand, no level information.

Missing periods (NaN)
    Are skipped, not zero: the rows are compacted (observed periods moved to the end, in
    order) before any method runs, which is running each method on the series with those
    periods removed — every recursion carries its state over them, ADIDA and IMAPA aggregate
    observed periods, ADI/CV² count observed periods only, and the dead test counts observed
    zeros only. The method functions do the same on their own.

The count distribution
    The total demand over ``k`` periods is negative binomial with mean ``m`` (the sum of the
    per-period means) and variance ``m + phi m²`` (``phi = 0``: Poisson). For classified
    series ``phi`` is the method-of-moments estimate ``sum(e² - m) / sum(m²)`` from the
    rolling-origin errors ``e`` of the series' own forecast totals over ``horizon`` periods
    (fewer when the history is short), shrunk towards its class's pooled value with
    credibility ``N / (N + 4)``, N the number of independent windows behind it; for new
    series, the posterior's ``1 / shape`` plus the pooled value; never below 0 nor above 25.
    The law ``m + phi m²`` is that of a gamma-mixed Poisson with one rate over the whole
    span, so the same ``phi`` serves totals over other spans near the horizon (the policy's
    review period plus lead time). Quantiles and probabilities are exact sums in numpy
    (log-space recurrence over ``k`` from 8 sd below the mean; :func:`nb_cdf`,
    :func:`nb_quantile`); quantiles are whole units.

References
    - R. G. Brown (1959), simple exponential smoothing; E. S. Gardner & E. McKenzie (1985),
      damped trend.
    - J. D. Croston (1972), Forecasting and stock control for intermittent demands.
    - A. A. Syntetos & J. E. Boylan (2005), The accuracy of intermittent demand estimates
      (SBA; the ADI/CV² classes: Syntetos, Boylan & Croston 2005).
    - R. H. Teunter, A. A. Syntetos & M. Z. Babai (2011), Intermittent demand: linking
      forecasting to inventory obsolescence (TSB).
    - K. Nikolopoulos, A. A. Syntetos, J. E. Boylan, F. Petropoulos & V. Assimakopoulos
      (2011), An aggregate–disaggregate intermittent demand approach (ADIDA).
    - F. Petropoulos & N. Kourentzes (2015), Forecast combinations for intermittent demand
      (IMAPA).
    - Nixtla statsforecast (``statsforecast.models``): the reference implementations the
      tests compare with.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

Init = Literal["first", "diffuse"]
#: statsforecast's start: the first observation is the level.
INIT_FIRST: Init = "first"
#: Bias-corrected start: gain ``alpha / (1 - (1 - alpha)**k)`` for the ``k``-th observation.
INIT_DIFFUSE: Init = "diffuse"

# ------------------------------------------------------------------ classification

#: Syntetos–Boylan cut-off on the average demand interval.
ADI_CUTOFF = 1.32
#: Syntetos–Boylan cut-off on the squared coefficient of variation of demand sizes.
CV2_CUTOFF = 0.49
#: Fewer observed periods than this: "new".
NEW_MIN_OBSERVED = 14
#: A run of observed zeros of at least max(DEAD_MIN_RUN, DEAD_ADI_MULTIPLE × ADI): "dead".
DEAD_MIN_RUN = 28
DEAD_ADI_MULTIPLE = 3.0

SMOOTH, INTERMITTENT, ERRATIC, LUMPY, NEW, DEAD = (
    "smooth",
    "intermittent",
    "erratic",
    "lumpy",
    "new",
    "dead",
)
CLASSES = (SMOOTH, INTERMITTENT, ERRATIC, LUMPY, NEW, DEAD)

# ------------------------------------------------------------------ the engine's settings

#: Smoothing constants tried per class and method (one is chosen per class).
ALPHA_GRID = (0.02, 0.05, 0.1, 0.2, 0.3)
#: Series per class on which the constants are chosen (evenly spaced; all if fewer).
ALPHA_SAMPLE = 2000
#: Candidate methods per class, best first when nothing tells them apart.
CANDIDATES: dict[str, tuple[str, ...]] = {
    SMOOTH: ("ses", "holt_damped"),
    INTERMITTENT: ("croston_sba", "tsb"),
    ERRATIC: ("ses", "tsb"),
    LUMPY: ("adida", "imapa", "croston_sba"),
}
#: Periods at the end of the history on which forecasts are scored (rolling origin).
EVAL_WINDOW = 28
#: Most forecast lags scored per origin.
EVAL_MAX_LAGS = 14
#: Observed periods a series needs before its first scored origin.
EVAL_BURN_IN = 7
#: Per-series method choice: "auto" (where it beats the class's method on held-out
#: periods, see :func:`_fit_class`), "never" (the class's method), "always".
SELECTION: Literal["auto", "never", "always"] = "auto"
#: Damped trend: observed periods needed before it is a candidate (eight weeks of days), its
#: damping and its trend gain relative to the level's.
HOLT_MIN_OBSERVED = 56
HOLT_PHI = 0.9
HOLT_BETA_RATIO = 0.1
#: TSB for dead items: probability update (the 28 zeros of the shortest dead run leave
#: 0.8**28 = 0.2 % of the last demand probability).
DEAD_ALPHA_P = 0.2
#: Weight of the peer rate for new items, in periods of the series' own history.
PEER_PRIOR_PERIODS = 14.0
#: Series needed to learn the batch's own prior for new items without a peer rate.
BATCH_PRIOR_MIN_SERIES = 20
#: Weekday effect test: significance of the F test on the pooled seasons × weekdays.
SEASON_TEST_LEVEL = 0.01
#: A weekday index below this is a closed day: no demand expected, no level information.
SEASON_CLOSED = 0.05
#: Credibility of a series' own dispersion: windows of evidence worth as much as the pool.
DISPERSION_PRIOR_WINDOWS = 4.0
#: Dispersion bounds (phi): above this the NB tail is beyond anything stand demand shows.
DISPERSION_MAX = 25.0


# ------------------------------------------------------------------ small helpers


def _as_history(history: object) -> FloatArray:
    y = np.array(history, dtype=np.float64, copy=True)
    if y.ndim != 2:
        raise ValueError(f"history must be 2-D (series, periods), got shape {y.shape}")
    y[np.isinf(y)] = np.nan
    # Returns net of sales can make a period negative; demand is not.
    np.maximum(y, 0.0, out=y, where=~np.isnan(y))
    return y


def _alpha_column(alpha: float | FloatArray, n: int) -> FloatArray:
    """``alpha`` (scalar or per series) as an (n, 1) column, checked to lie in (0, 1]."""
    a = np.asarray(alpha, dtype=np.float64)
    if a.ndim == 0:
        a = np.full(n, float(a))
    if a.shape != (n,):
        raise ValueError(f"alpha must be a scalar or have shape ({n},), got {a.shape}")
    if not np.all((a > 0) & (a <= 1)):
        raise ValueError("smoothing constants must lie in (0, 1]")
    return a[:, None]


def _gain(alpha: FloatArray, power: FloatArray, started: BoolArray, init: Init) -> FloatArray:
    """The gain of the next observation; ``power`` is (1 - alpha)**k after k observations."""
    if init == INIT_DIFFUSE:
        return alpha / (1.0 - power * (1.0 - alpha))
    return np.where(started[:, None], alpha, 1.0)


def _compact(y: FloatArray) -> tuple[FloatArray, IntArray | None]:
    """Each row's observed values moved to the end, in order, NaN in front; and the order
    (``order[i, k]``: the period now at position k). Running a method on the compacted rows
    is running it on the series without its missing periods. ``None`` for the order when
    nothing is missing."""
    miss = np.isnan(y)
    if not miss.any():
        return y, None
    order = np.argsort(~miss, axis=1, kind="stable")
    return np.take_along_axis(y, order, axis=1), order


def _move(a: FloatArray, order: IntArray | None) -> FloatArray:
    return a if order is None else np.take_along_axis(a, order, axis=1)


class _Stats(NamedTuple):
    n_obs: IntArray  # observed periods
    n_nz: IntArray  # periods with demand
    adi: FloatArray  # observed periods per demand (inf without demand)
    interval: FloatArray  # mean interval between demands up to the last one (inf without)
    cv2: FloatArray  # squared CV of non-zero sizes (NaN without demand)
    trailing: IntArray  # observed zero periods since the last demand (n_obs without demand)
    mean: FloatArray  # mean demand per observed period (0 without observations)


def _stats(y: FloatArray) -> _Stats:
    obs = ~np.isnan(y)
    n_obs = obs.sum(axis=1).astype(np.int64)
    nz = y > 0  # NaN > 0 is False
    n_nz = nz.sum(axis=1).astype(np.int64)
    # Observed periods up to and including each period; the last demand's count gives ADI.
    seen = np.cumsum(obs, axis=1)
    last_seen = np.where(nz, seen, 0).max(axis=1) if y.shape[1] else np.zeros(len(y), np.int64)
    trailing = np.where(n_nz > 0, n_obs - last_seen, n_obs).astype(np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        adi = np.where(n_nz > 0, n_obs / np.maximum(n_nz, 1), np.inf)
        interval = np.where(n_nz > 0, last_seen / np.maximum(n_nz, 1), np.inf)
        sizes = np.where(nz, y, 0.0)
        s1 = sizes.sum(axis=1)
        s2 = (sizes**2).sum(axis=1)
        mu = s1 / np.maximum(n_nz, 1)
        var = np.where(n_nz > 1, (s2 - n_nz * mu**2) / np.maximum(n_nz - 1, 1), 0.0)
        cv2 = np.where(n_nz > 0, np.maximum(var, 0.0) / np.where(mu > 0, mu**2, 1.0), np.nan)
        mean = np.where(n_obs > 0, np.nansum(y, axis=1) / np.maximum(n_obs, 1), 0.0)
    return _Stats(n_obs, n_nz, adi, interval, cv2, trailing, mean)


def _classify(st: _Stats) -> NDArray[np.str_]:
    dead = (
        (st.n_nz > 0) & (st.trailing >= np.maximum(DEAD_MIN_RUN, DEAD_ADI_MULTIPLE * st.interval))
    ) | ((st.n_nz == 0) & (st.n_obs >= DEAD_MIN_RUN))
    new = ~dead & ((st.n_obs < NEW_MIN_OBSERVED) | (st.n_nz == 0))
    frequent = st.adi < ADI_CUTOFF
    steady = np.nan_to_num(st.cv2, nan=0.0) < CV2_CUTOFF
    out = np.where(
        frequent,
        np.where(steady, SMOOTH, ERRATIC),
        np.where(steady, INTERMITTENT, LUMPY),
    ).astype("<U12")
    out[new] = NEW
    out[dead] = DEAD
    return out


def classify(history: np.ndarray) -> NDArray[np.str_]:
    """The demand class of each series (see the module docstring): an (n,) array of str."""
    return _classify(_stats(_as_history(history)))


# ------------------------------------------------------------------ the methods


class Fit(NamedTuple):
    """A method's result on a batch of series.

    ``forecast`` (n, horizon): the forecast of each future period. ``fitted`` (n, T): the
    one-step forecast of each past period from the periods before it (NaN before the
    method has one; over a missing period, the carried-over forecast).
    """

    forecast: FloatArray
    fitted: FloatArray


def _check_horizon(horizon: int) -> int:
    if int(horizon) != horizon or horizon < 1:
        raise ValueError(f"horizon must be a positive integer, got {horizon!r}")
    return int(horizon)


def _flat(level: FloatArray, horizon: int) -> FloatArray:
    return np.repeat(level[:, None], horizon, axis=1)


def _shift_fitted(after: FloatArray) -> FloatArray:
    """Forecast-after-period paths (n, T) → one-step fitted values (n, T)."""
    fitted = np.full_like(after, np.nan)
    fitted[:, 1:] = after[:, :-1]
    return fitted


def _ses_paths(
    y: FloatArray, alpha: FloatArray, init: Init, keep: int
) -> tuple[FloatArray, FloatArray]:
    """SES on (n, T) with constants ``alpha`` (n, A) or (1, A): the level after the last
    period (n, A) and after each of the last ``keep`` periods (n, A, keep); NaN skipped."""
    n, t_len = y.shape
    a = np.broadcast_to(alpha, (n, alpha.shape[1]))
    comp = 1.0 - a
    level = np.zeros_like(a)
    power = np.ones_like(a)
    started = np.zeros(n, dtype=bool)
    path = np.full((keep, *a.shape), np.nan)
    seen = ~np.isnan(y.T)
    cols = np.where(seen, y.T, 0.0)
    for t in range(t_len):
        ok = seen[t]
        if ok.any():
            if init == INIT_DIFFUSE:
                nxt = power * comp
                gain = a / (1.0 - nxt)
            else:
                gain = np.where(started[:, None], a, 1.0)
            step = gain * (cols[t][:, None] - level)
            if ok.all():
                level += step
                if init == INIT_DIFFUSE:
                    power = nxt
                started[:] = True
            else:
                okc = np.broadcast_to(ok[:, None], a.shape)
                np.add(level, step, out=level, where=okc)
                if init == INIT_DIFFUSE:
                    np.copyto(power, nxt, where=okc)
                started |= ok
        k = t - (t_len - keep)
        if k >= 0:
            path[k] = np.where(started[:, None], level, np.nan)
    final = np.where(started[:, None], level, np.nan)
    return final, np.moveaxis(path, 0, -1)


def ses(
    y: np.ndarray, alpha: float | FloatArray, horizon: int = 1, *, init: Init = INIT_FIRST
) -> Fit:
    """Simple exponential smoothing (Brown 1959): ``l_t = l_{t-1} + alpha (y_t - l_{t-1})``,
    forecast ``l_T`` for every future period.

    ``init="first"``: ``l_1 = y_1`` (statsforecast's ``SimpleExponentialSmoothing``);
    ``"diffuse"``: gain ``alpha / (1 - (1-alpha)**k)`` for the k-th observation. Missing
    periods are skipped. A series with no observation forecasts NaN.
    """
    h = _check_horizon(horizon)
    z = _as_history(y)
    final, path = _ses_paths(z, _alpha_column(alpha, len(z)), init, z.shape[1])
    return Fit(_flat(final[:, 0], h), _shift_fitted(path[:, 0, :]))


def _croston_paths(
    y: FloatArray, alpha: FloatArray, init: Init, keep: int
) -> tuple[FloatArray, FloatArray]:
    """Croston's sizes z and intervals x, smoothed with ``alpha`` (n|1, A): z/x after the
    last period (n, A) and after each of the last ``keep`` (n, A, keep); 0 before a demand."""
    n, t_len = y.shape
    a = np.broadcast_to(alpha, (n, alpha.shape[1]))
    comp = 1.0 - a
    size = np.zeros_like(a)
    interval = np.ones_like(a)
    power = np.ones_like(a)
    seen = np.zeros(n, dtype=bool)  # a demand so far
    since = np.zeros(n)  # observed periods since the last demand (or the start)
    path = np.zeros((keep, *a.shape))
    observed = ~np.isnan(y.T)
    cols = np.where(observed, y.T, 0.0)
    for t in range(t_len):
        x = cols[t]
        since += observed[t]
        d = x > 0
        if d.any():
            if init == INIT_DIFFUSE:
                nxt = power * comp
                gain = a / (1.0 - nxt)
            else:
                gain = np.where(seen[:, None], a, 1.0)
            dc = np.broadcast_to(d[:, None], a.shape)
            np.add(size, gain * (x[:, None] - size), out=size, where=dc)
            np.add(interval, gain * (since[:, None] - interval), out=interval, where=dc)
            if init == INIT_DIFFUSE:
                np.copyto(power, nxt, where=dc)
            seen |= d
            since[d] = 0.0
        k = t - (t_len - keep)
        if k >= 0:
            path[k] = size / interval
    return size / interval, np.moveaxis(path, 0, -1)


def croston_classic(
    y: np.ndarray, alpha: float | FloatArray = 0.1, horizon: int = 1, *, init: Init = INIT_FIRST
) -> Fit:
    """Croston (1972): demand sizes ``z`` and inter-demand intervals ``x`` (in observed
    periods, the first counted from the start) each smoothed by SES with ``alpha`` at the
    periods with demand; forecast ``z / x``.

    statsforecast's ``CrostonClassic`` is ``alpha = 0.1``, ``init="first"``. A series without
    demand forecasts 0.
    """
    h = _check_horizon(horizon)
    z = _as_history(y)
    final, path = _croston_paths(z, _alpha_column(alpha, len(z)), init, z.shape[1])
    return Fit(_flat(final[:, 0], h), _shift_fitted(path[:, 0, :]))


def croston_sba(
    y: np.ndarray, alpha: float | FloatArray = 0.1, horizon: int = 1, *, init: Init = INIT_FIRST
) -> Fit:
    """Syntetos–Boylan approximation (Syntetos & Boylan 2005): Croston's ``z / x`` times
    ``1 - alpha / 2``, which removes Croston's bias. statsforecast's ``CrostonSBA``
    (``alpha = 0.1``, so 0.95)."""
    fit = croston_classic(y, alpha, horizon, init=init)
    a = _alpha_column(alpha, fit.forecast.shape[0])
    return Fit(fit.forecast * (1.0 - a / 2.0), fit.fitted * (1.0 - a / 2.0))


def _tsb_paths(
    y: FloatArray, alpha_d: FloatArray, alpha_p: FloatArray, init: Init, keep: int
) -> tuple[FloatArray, FloatArray]:
    """TSB's probability p (every observed period) and size d (demand periods): p·d after
    the last period (n, A) and after each of the last ``keep`` (n, A, keep)."""
    n, t_len = y.shape
    width = max(alpha_d.shape[1], alpha_p.shape[1])
    ad = np.broadcast_to(alpha_d, (n, width))
    ap = np.broadcast_to(alpha_p, (n, width))
    comp_d = 1.0 - ad
    comp_p = 1.0 - ap
    prob = np.zeros((n, width))
    size = np.zeros((n, width))
    pow_p = np.ones((n, width))
    pow_d = np.ones((n, width))
    started = np.zeros(n, dtype=bool)
    seen = np.zeros(n, dtype=bool)
    path = np.zeros((keep, n, width))
    observed = ~np.isnan(y.T)
    cols = np.where(observed, y.T, 0.0)
    for t in range(t_len):
        ok = observed[t]
        if ok.any():
            x = cols[t]
            if init == INIT_DIFFUSE:
                nxt = pow_p * comp_p
                gain = ap / (1.0 - nxt)
            else:
                gain = np.where(started[:, None], ap, 1.0)
            step = gain * ((x > 0).astype(np.float64)[:, None] - prob)
            if ok.all():
                prob += step
                if init == INIT_DIFFUSE:
                    pow_p = nxt
                started[:] = True
            else:
                okc = np.broadcast_to(ok[:, None], prob.shape)
                np.add(prob, step, out=prob, where=okc)
                if init == INIT_DIFFUSE:
                    np.copyto(pow_p, nxt, where=okc)
                started |= ok
            d = x > 0
            if d.any():
                dc = np.broadcast_to(d[:, None], size.shape)
                if init == INIT_DIFFUSE:
                    nxt = pow_d * comp_d
                    gain = ad / (1.0 - nxt)
                    np.copyto(pow_d, nxt, where=dc)
                else:
                    gain = np.where(seen[:, None], ad, 1.0)
                np.add(size, gain * (x[:, None] - size), out=size, where=dc)
                seen |= d
        k = t - (t_len - keep)
        if k >= 0:
            path[k] = prob * size
    return prob * size, np.moveaxis(path, 0, -1)


def tsb(
    y: np.ndarray,
    alpha_d: float | FloatArray,
    alpha_p: float | FloatArray,
    horizon: int = 1,
    *,
    init: Init = INIT_FIRST,
) -> Fit:
    """Teunter–Syntetos–Babai (2011): the probability of demand ``p`` is smoothed with
    ``alpha_p`` at every observed period (towards 1 after a demand, 0 after none), the size
    ``d`` with ``alpha_d`` at demand periods; forecast ``p · d``. Unlike Croston it decays
    through a run of zeros, so an item that stopped selling fades out.

    statsforecast's ``TSB(alpha_d, alpha_p)`` is ``init="first"``.
    """
    h = _check_horizon(horizon)
    z = _as_history(y)
    n = len(z)
    final, path = _tsb_paths(
        z, _alpha_column(alpha_d, n), _alpha_column(alpha_p, n), init, z.shape[1]
    )
    return Fit(_flat(final[:, 0], h), _shift_fitted(path[:, 0, :]))


def _damping(phi: FloatArray, horizon: int) -> FloatArray:
    """phi + phi² + … + phi^j for j = 1..horizon: (…, horizon)."""
    powers = phi[..., None] ** np.arange(1, horizon + 1)
    out: FloatArray = np.cumsum(powers, axis=-1)
    return out


def _holt_paths(
    y: FloatArray, alpha: FloatArray, beta: FloatArray, phi: FloatArray, init: Init, keep: int
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Damped-trend Holt on (n, T), constants (n|1, A): final level and trend (n, A), and
    their paths after each of the last ``keep`` periods (n, A, keep)."""
    n, t_len = y.shape
    width = max(alpha.shape[1], beta.shape[1], phi.shape[1])
    a = np.broadcast_to(alpha, (n, width))
    b_ = np.broadcast_to(beta, (n, width))
    ph = np.broadcast_to(phi, (n, width))
    level = np.zeros((n, width))
    trend = np.zeros((n, width))
    pow_l = np.ones((n, width))
    pow_b = np.ones((n, width))
    count = np.zeros(n)
    lpath = np.full((keep, n, width), np.nan)
    bpath = np.full((keep, n, width), np.nan)
    cols = np.ascontiguousarray(y.T)
    for t in range(t_len):
        x = cols[t]
        ok = ~np.isnan(x)
        if ok.any():
            okc = ok[:, None]
            started = count > 0
            # "first": the first two observations are taken as they are (l = y_2, b = y_2 - y_1).
            g_l = _gain(a, pow_l, started if init == INIT_DIFFUSE else count > 1, init)
            # The trend starts at the second observation (gain 1 there: the first difference).
            g_b = np.where(started[:, None], _gain(b_, pow_b, count > 1, init), 0.0)
            pred = level + ph * trend
            new_level = pred + g_l * (x[:, None] - pred)
            new_trend = np.where(
                started[:, None], ph * trend + g_b * (new_level - level - ph * trend), 0.0
            )
            level = np.where(okc, new_level, level)
            trend = np.where(okc, new_trend, trend)
            pow_l = np.where(okc, pow_l * (1.0 - a), pow_l)
            pow_b = np.where(okc & started[:, None], pow_b * (1.0 - b_), pow_b)
            count += ok
        k = t - (t_len - keep)
        if k >= 0:
            have = (count > 0)[:, None]
            lpath[k] = np.where(have, level, np.nan)
            bpath[k] = np.where(have, trend, np.nan)
    have = (count > 0)[:, None]
    return (
        np.where(have, level, np.nan),
        np.where(have, trend, np.nan),
        np.moveaxis(lpath, 0, -1),
        np.moveaxis(bpath, 0, -1),
    )


def holt_damped(
    y: np.ndarray,
    alpha: float | FloatArray,
    beta: float | FloatArray,
    phi: float | FloatArray = HOLT_PHI,
    horizon: int = 1,
    *,
    init: Init = INIT_DIFFUSE,
) -> Fit:
    """Additive damped-trend exponential smoothing (Gardner & McKenzie 1985), error form:

    ``l_t = l_{t-1} + phi b_{t-1} + alpha e_t``, ``b_t = phi b_{t-1} + beta (l_t - l_{t-1} -
    phi b_{t-1})`` with ``e_t = y_t - l_{t-1} - phi b_{t-1}``; forecast ``l_T + (phi + … +
    phi^h) b_T``. ``phi = 1`` is Holt's linear trend. Start: ``l = y_1``, ``b = y_2 - y_1``
    (``init="first"``), or the diffuse gains for both (default). Missing periods are skipped
    (the state is carried over, trend included, without a step).
    """
    h = _check_horizon(horizon)
    z = _as_history(y)
    n = len(z)
    ph = np.asarray(phi, dtype=np.float64)
    ph = np.full(n, float(ph)) if ph.ndim == 0 else ph
    if ph.shape != (n,) or not np.all((ph > 0) & (ph <= 1)):
        raise ValueError("phi must lie in (0, 1], scalar or per series")
    lvl, trd, lpath, bpath = _holt_paths(
        z, _alpha_column(alpha, n), _alpha_column(beta, n), ph[:, None], init, z.shape[1]
    )
    forecast = lvl[:, :1] + _damping(ph, h) * trd[:, :1]
    after = lpath[:, 0, :] + ph[:, None] * bpath[:, 0, :]
    return Fit(forecast, _shift_fitted(after))


# ---- aggregation: ADIDA and IMAPA


def _ses_sse(x: FloatArray, alpha: FloatArray) -> FloatArray:
    """statsforecast's in-sample SSE of SES on each row of ``x`` (NaN in front skipped):
    the forecast starts at the first value, errors from the second on."""
    n, t_len = x.shape
    forecast = np.full(n, np.nan)
    prev = np.full(n, np.nan)
    sse = np.zeros(n)
    comp = 1.0 - alpha
    for t in range(t_len):
        v = x[:, t]
        ok = ~np.isnan(v)
        started = ok & ~np.isnan(prev)
        f = np.where(np.isnan(forecast), v, alpha * prev + comp * forecast)
        forecast = np.where(started, f, np.where(ok & np.isnan(forecast), v, forecast))
        err = v - forecast
        sse = np.where(started, sse + err * err, sse)
        prev = np.where(ok, v, prev)
    return sse


def _golden_alpha(x: FloatArray, lower: float = 0.1, upper: float = 0.3) -> FloatArray:
    """statsforecast's golden-section search of the SES constant minimising the SSE in
    ``[lower, upper]``, on every row at once (same steps, same stopping rule)."""
    n = len(x)
    gr = (math.sqrt(5.0) + 1.0) / 2.0
    a = np.full(n, lower)
    b = np.full(n, upper)
    c = b - (b - a) / gr
    d = a + (b - a) / gr
    fc = _ses_sse(x, c)
    fd = _ses_sse(x, d)
    active = np.ones(n, dtype=bool)
    while True:
        active &= np.abs(b - a) >= 1e-12
        left = active & (fc < fd)
        right = active & (fd < fc)
        active = left | right
        if not active.any():
            break
        b = np.where(left, d, b)
        d = np.where(left, c, d)
        fd = np.where(left, fc, fd)
        a = np.where(right, c, a)
        c = np.where(right, d, c)
        fc = np.where(right, fd, fc)
        c = np.where(left, b - (b - a) / gr, c)
        d = np.where(right, a + (b - a) / gr, d)
        probe = np.where(left, c, d)
        sub = np.flatnonzero(active)
        f = _ses_sse(x[sub], probe[sub])
        fc[sub] = np.where(left[sub], f, fc[sub])
        fd[sub] = np.where(right[sub], f, fd[sub])
    out: FloatArray = (a + b) / 2.0
    return out


def _bucket_sums(yc: FloatArray, size: int) -> FloatArray:
    """Sums of consecutive ``size`` periods aligned to the end (the leading remainder is
    dropped, as statsforecast does); a bucket reaching into the NaN front is NaN."""
    n, t_len = yc.shape
    k = t_len // size
    if k == 0:
        return np.zeros((n, 0))
    out: FloatArray = yc[:, t_len - k * size :].reshape(n, k, size).sum(axis=2)
    return out


def _mean_interval(yc: FloatArray) -> FloatArray:
    """Mean interval between demands of compacted rows (NaN only in front): observed
    periods up to the last demand / demands; inf without demand."""
    n, t_len = yc.shape
    if t_len == 0:
        return np.full(n, np.inf)
    nz = yc > 0
    n_nz = nz.sum(axis=1)
    last = t_len - 1 - np.argmax(nz[:, ::-1], axis=1)
    first = t_len - (~np.isnan(yc)).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out: FloatArray = np.where(n_nz > 0, (last - first + 1) / np.maximum(n_nz, 1), np.inf)
    return out


def _aggregate_forecast(
    yc: FloatArray,
    size: IntArray,
    alpha: FloatArray | None,
    init: Init,
    keep: int,
) -> tuple[FloatArray, FloatArray]:
    """Per series: SES on its sums over ``size[i]`` observed periods (compacted rows),
    divided by ``size[i]``. ``alpha`` (n, A); ``None``: statsforecast's golden-section
    optimum in [0.1, 0.3] (A = 1). Returns the forecast (n, A) and, for each of the last
    ``keep`` positions, the forecast made after it (n, A, keep; NaN before the first bucket).
    """
    n, t_len = yc.shape
    width = 1 if alpha is None else alpha.shape[1]
    final = np.full((n, width), np.nan)
    path = np.full((n, width, keep), np.nan)
    for level in np.unique(size):
        rows = np.flatnonzero(size == level)
        lv = int(level)
        sums = _bucket_sums(yc[rows], lv)
        k_buckets = sums.shape[1]
        if k_buckets == 0:
            continue
        if alpha is None:
            # statsforecast: one bucket is its own forecast; otherwise optimised SES.
            a = _golden_alpha(sums)
            f, bpath = _ses_paths(sums, a[:, None], INIT_FIRST, k_buckets)
        else:
            f, bpath = _ses_paths(sums, alpha[rows], init, k_buckets)
        final[rows] = f / lv
        # Position p (of the last ``keep``) has seen the buckets ending at or before p.
        pos = np.arange(t_len - keep, t_len)
        done = (pos - (t_len - k_buckets * lv) + 1) // lv - 1  # index of the last full bucket
        valid = done >= 0
        idx = np.clip(done, 0, k_buckets - 1)
        gathered = bpath[:, :, idx] / lv
        path[rows] = np.where(valid, gathered, np.nan)
    return final, path


def _compact_checked(y: np.ndarray) -> FloatArray:
    z = _as_history(y)
    zc, _ = _compact(z)
    return zc


def adida(
    y: np.ndarray,
    horizon: int = 1,
    *,
    alpha: float | FloatArray | None = None,
    aggregation: int | IntArray | None = None,
    init: Init = INIT_FIRST,
) -> Fit:
    """ADIDA (Nikolopoulos et al. 2011): sum the series over non-overlapping buckets of
    ``aggregation`` periods (default: its mean interval between demands, rounded half to
    even, as statsforecast), forecast the bucket sums by SES, divide by the bucket length.

    ``alpha=None``: per series, the SES constant minimising the in-sample SSE of the bucket
    sums by golden-section search in [0.1, 0.3] — statsforecast's ``ADIDA``. Buckets are
    aligned to the end (the leading remainder is dropped); missing periods are removed
    first. ``fitted`` is the forecast made after each completed bucket, held until the next
    (not statsforecast's per-prefix refit). A series without demand forecasts 0.
    """
    h = _check_horizon(horizon)
    yc = _compact_checked(y)
    n = len(yc)
    if aggregation is None:
        mi = _mean_interval(yc)
        size = np.where(np.isfinite(mi), np.rint(np.where(np.isfinite(mi), mi, 1.0)), 1.0)
    else:
        size = np.broadcast_to(np.asarray(aggregation, dtype=np.float64), (n,))
    size_i = np.maximum(size, 1).astype(np.int64)
    a = None if alpha is None else _alpha_column(alpha, n)
    final, path = _aggregate_forecast(yc, size_i, a, init, yc.shape[1])
    out = final[:, 0]
    n_obs = (~np.isnan(yc)).sum(axis=1)
    # statsforecast: no full bucket → the last value; no demand at all → 0.
    last = yc[:, -1] if yc.shape[1] else np.zeros(n)
    out = np.where(n_obs // size_i == 0, last, out)
    out = np.where(np.nansum(yc, axis=1) > 0, out, 0.0)
    return Fit(_flat(out, h), _uncompact_fitted(y, _shift_fitted(path[:, 0, :])))


def _imapa_forecast(
    yc: FloatArray, max_level: IntArray, alpha: FloatArray | None, init: Init, keep: int
) -> tuple[FloatArray, FloatArray]:
    """IMAPA: the mean over aggregation levels 1..max_level[i] of the ADIDA forecasts."""
    n, _ = yc.shape
    width = 1 if alpha is None else alpha.shape[1]
    total = np.zeros((n, width))
    total_path = np.zeros((n, width, keep))
    count_path = np.zeros((n, width, keep))
    top = int(max_level.max()) if n else 0
    for level in range(1, top + 1):
        rows = np.flatnonzero(max_level >= level)
        sizes = np.full(len(rows), level, dtype=np.int64)
        f, p = _aggregate_forecast(
            yc[rows], sizes, None if alpha is None else alpha[rows], init, keep
        )
        total[rows] += np.nan_to_num(f)
        ok = ~np.isnan(p)
        total_path[rows] += np.where(ok, p, 0.0)
        count_path[rows] += ok
    final = total / np.maximum(max_level, 1)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        path = np.where(count_path > 0, total_path / count_path, np.nan)
    return final, path


def imapa(
    y: np.ndarray,
    horizon: int = 1,
    *,
    alpha: float | FloatArray | None = None,
    init: Init = INIT_FIRST,
) -> Fit:
    """IMAPA (Petropoulos & Kourentzes 2015): ADIDA at every aggregation level from 1 to the
    series' mean interval between demands (rounded half to even), each level's forecast per
    period averaged with equal weights.

    ``alpha=None``: each level's SES constant optimised on its bucket sums by golden-section
    search in [0.1, 0.3] — statsforecast's ``IMAPA``. Missing periods are removed first;
    ``fitted`` is the mean of the levels' held bucket forecasts (see :func:`adida`). A
    series without demand forecasts 0.
    """
    h = _check_horizon(horizon)
    yc = _compact_checked(y)
    n = len(yc)
    mi = _mean_interval(yc)
    top = np.where(np.isfinite(mi), np.rint(np.where(np.isfinite(mi), mi, 1.0)), 1.0)
    top_i = np.maximum(top, 1).astype(np.int64)
    a = None if alpha is None else _alpha_column(alpha, n)
    final, path = _imapa_forecast(yc, top_i, a, init, yc.shape[1])
    out = np.where(np.nansum(yc, axis=1) > 0, final[:, 0], 0.0)
    return Fit(_flat(out, h), _uncompact_fitted(y, _shift_fitted(path[:, 0, :])))


def _uncompact_fitted(y: np.ndarray, fitted_c: FloatArray) -> FloatArray:
    """Fitted values of compacted rows, put back at the observed periods of ``y`` (NaN at
    the missing ones)."""
    z = _as_history(y)
    _, order = _compact(z)
    if order is None:
        return fitted_c
    out = np.empty_like(fitted_c)
    np.put_along_axis(out, order, fitted_c, axis=1)
    out[np.isnan(z)] = np.nan
    return out


# ------------------------------------------------------------------ weekday pattern


def _f_test_significant(f_stat: float, df1: int, df2: int, level: float) -> bool:
    """Whether ``f_stat`` exceeds the (1 - level) quantile of F(df1, df2): Paulson's normal
    approximation of the cube-root F, good to a few per cent of the level; a gate only."""
    if not math.isfinite(f_stat):
        return bool(f_stat > 0)
    if f_stat <= 0:
        return False
    a1 = 2.0 / (9.0 * df1)
    a2 = 2.0 / (9.0 * df2)
    cube = f_stat ** (1.0 / 3.0)
    z = ((1.0 - a2) * cube - (1.0 - a1)) / math.sqrt(a1 + cube * cube * a2)
    return bool(z > NormalDist().inv_cdf(1.0 - level))


def seasonal_indices(history: np.ndarray, season: int = 7) -> FloatArray:
    """Multiplicative seasonal (weekday) indices, (n, season), mean 1 per series; all ones
    where no pattern is shown (see the module docstring).

    Column ``j`` applies to the periods ``t`` with ``(t - T) % season == j`` (T = number of
    periods): the last complete season of the history is columns 0…season-1, and future
    period ``T + k`` (k = 0, 1, …) takes column ``k % season``.
    """
    return _seasonal_indices(_as_history(history), season)


def _seasonal_indices(y: FloatArray, season: int) -> FloatArray:
    n, t_len = y.shape
    ones = np.ones((n, max(season, 1)))
    weeks = t_len // season if season >= 2 else 0
    if n == 0 or weeks < 2:
        return ones
    blocks = y[:, t_len - weeks * season :].reshape(n, weeks, season)
    full = ~np.isnan(blocks).any(axis=2)
    bmean = np.where(full, np.nan_to_num(blocks).mean(axis=2), 0.0)
    valid = full & (bmean > 0)
    vb = np.where(valid[..., None], np.nan_to_num(blocks), 0.0)
    den = float(bmean[valid].sum())
    if den <= 0:
        return ones
    pooled = vb.sum(axis=(0, 1)) / den
    # Is there a weekday effect in the pooled seasons? Two-way ANOVA (seasons × weekdays)
    # on each season's demand relative to its own mean.
    agg = vb.sum(axis=0)
    agg = agg[agg.sum(axis=1) > 0]
    prior = np.ones(season)
    if len(agg) >= 2:
        rel = agg / agg.mean(axis=1, keepdims=True)
        by_day = rel.mean(axis=0)
        ss_day = len(rel) * float(((by_day - 1.0) ** 2).sum())
        ss_err = float(((rel - by_day) ** 2).sum())
        df1, df2 = season - 1, (season - 1) * (len(rel) - 1)
        f_stat = (ss_day / df1) / (ss_err / df2) if ss_err > 0 else math.inf * ss_day
        if _f_test_significant(f_stat, df1, df2, SEASON_TEST_LEVEL):
            prior = pooled
    # Each series' own profile, mixed with the prior by empirical Bayes.
    w_i = valid.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel_i = np.where(valid[..., None], vb / np.where(valid, bmean, 1.0)[..., None], 0.0)
        own = rel_i.sum(axis=1) / np.maximum(w_i, 1)[:, None]
        resid = np.where(valid[..., None], rel_i - own[:, None, :], 0.0)
        ms_err = (resid**2).sum(axis=(1, 2)) / np.maximum((season - 1) * (w_i - 1), 1)
        level = np.where(valid, bmean, 0.0).sum(axis=1) / np.maximum(w_i, 1)
        # Sampling variance of an own index: the seasons' scatter, at least Poisson's.
        var = np.maximum(ms_err, 1.0 / np.where(level > 0, level, np.inf)) / np.maximum(w_i, 1)
    ok = w_i >= 2
    out = np.repeat(prior[None, :], n, axis=0)
    if ok.any():
        dev = ((own[ok] - prior) ** 2).mean(axis=1)
        v = var[ok] * (season - 1) / season
        tau2 = 0.0
        for _ in range(8):  # weighted method of moments (Paule–Mandel style)
            w = 1.0 / (tau2 + v) ** 2
            tau2 = max(0.0, float((w * (dev - v)).sum() / w.sum()))
        z = tau2 / (tau2 + var[ok])
        out[ok] = prior + z[:, None] * (own[ok] - prior)
    out = np.maximum(out, 0.0)
    mean = out.mean(axis=1, keepdims=True)
    result: FloatArray = np.where(mean > 0, out / np.where(mean > 0, mean, 1.0), 1.0)
    return result


# ------------------------------------------------------------------ negative binomial


_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _stirling_tail(x: FloatArray) -> FloatArray:
    """lgamma(x) - ((x - 1/2) log x - x + log(2π)/2) for x >= 8 (error < 1e-11)."""
    inv = 1.0 / x
    inv2 = inv * inv
    out: FloatArray = inv * (1 / 12 - inv2 * (1 / 360 - inv2 * (1 / 1260 - inv2 / 1680)))
    return out


def _lgamma(x: FloatArray) -> FloatArray:
    """log Γ(x) for x > 0, vectorised: shifted up to 8 or more by Γ(x+1) = xΓ(x), then
    Stirling's series."""
    xs = np.array(x, dtype=np.float64, copy=True)
    prod = np.ones_like(xs)
    for _ in range(8):
        small = xs < 8.0
        if not small.any():
            break
        prod = np.where(small, prod * xs, prod)
        xs = np.where(small, xs + 1.0, xs)
    out: FloatArray = (
        (xs - 0.5) * np.log(xs) - xs + _HALF_LOG_2PI + _stirling_tail(xs) - np.log(prod)
    )
    return out


def _lgamma_ratio(k: FloatArray, r: FloatArray) -> FloatArray:
    """log Γ(k + r) - log Γ(r) for k >= 0, r > 0, without the cancellation of two huge
    values when r is large (Stirling's series for both, subtracted term by term)."""
    big = r >= 8.0
    rb = np.where(big, r, 8.0)
    stable = (
        (rb - 0.5) * np.log1p(k / rb)
        + k * np.log(k + rb)
        - k
        + _stirling_tail(k + rb)
        - _stirling_tail(rb)
    )
    rs = np.where(big, 1.0, r)
    direct = _lgamma(k + rs) - _lgamma(rs)
    out: FloatArray = np.where(big, stable, direct)
    return out


def _nb_log_start(k0: FloatArray, m: FloatArray, phi: FloatArray) -> FloatArray:
    """log P(X = k0) for NB(mean m, dispersion phi), Poisson where phi is ~0; m > 0."""
    poisson = phi < 1e-12
    ph = np.where(poisson, 1.0, phi)
    r = 1.0 / ph
    log_nb = (
        _lgamma_ratio(k0, r)
        - _lgamma(k0 + 1.0)
        - np.log1p(ph * m) / ph
        + k0 * (np.log(ph * m) - np.log1p(ph * m))
    )
    log_po = -m + k0 * np.log(m) - _lgamma(k0 + 1.0)
    out: FloatArray = np.where(poisson, log_po, log_nb)
    return out


def _nb_window_cdf(lo: FloatArray, width: int, m: FloatArray, phi: FloatArray) -> FloatArray:
    """P(X <= k) for k = lo .. lo + width - 1 (rows), summing the pmf from ``lo`` (mass
    below ``lo`` is taken as 0: callers put ``lo`` 8 sd below the mean)."""
    k = lo[:, None] + np.arange(width - 1, dtype=np.float64)[None, :]
    ratio = (
        np.log(m)[:, None]
        + np.log1p(k * phi[:, None])
        - np.log(k + 1.0)
        - np.log1p(phi * m)[:, None]
    )
    logp = np.empty((len(lo), width))
    logp[:, 0] = _nb_log_start(lo, m, phi)
    if width > 1:
        logp[:, 1:] = logp[:, :1] + np.cumsum(ratio, axis=1)
    out: FloatArray = np.cumsum(np.exp(logp), axis=1)
    return out


def _nb_prepare(
    mean: np.ndarray | float, dispersion: np.ndarray | float
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    m, phi = np.broadcast_arrays(
        np.asarray(mean, dtype=np.float64), np.asarray(dispersion, dtype=np.float64)
    )
    m = np.nan_to_num(np.clip(m, 0.0, None))
    phi = np.clip(np.nan_to_num(phi), 0.0, None)
    sd = np.sqrt(m + phi * m * m)
    lo = np.floor(np.maximum(m - 8.0 * sd, 0.0))
    return m.ravel(), phi.ravel(), sd.ravel(), lo.ravel()


def _width_groups(need: IntArray) -> list[tuple[int, IntArray]]:
    """Rows grouped by the power of two (at least 16) that covers ``need``."""
    width = np.maximum(16, 2 ** np.ceil(np.log2(np.maximum(need, 1))).astype(np.int64))
    return [(int(w), np.flatnonzero(width == w)) for w in np.unique(width)]


def nb_quantile(mean: np.ndarray | float, dispersion: np.ndarray | float, q: float) -> IntArray:
    """The q-quantile (smallest k with P(X <= k) >= q) of the negative binomial with the
    given means and dispersions (variance ``m + phi m²``; Poisson where phi = 0), elementwise
    over broadcast arrays; 0 where the mean is 0."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile level must lie in (0, 1), got {q}")
    shape = np.broadcast_shapes(np.shape(mean), np.shape(dispersion))
    m, phi, sd, lo = _nb_prepare(mean, dispersion)
    out = np.zeros(m.shape, dtype=np.int64)
    todo = np.flatnonzero(m > 0)
    span = np.ceil(m + 10.0 * sd + 10.0) - lo + 1
    while todo.size:
        later: list[IntArray] = []
        for width, sub in _width_groups(span[todo].astype(np.int64)):
            rows = todo[sub]
            cdf = _nb_window_cdf(lo[rows], width, m[rows], phi[rows])
            hit = cdf >= q - 1e-12
            found = hit.any(axis=1)
            out[rows[found]] = (lo[rows[found]] + hit[found].argmax(axis=1)).astype(np.int64)
            if not found.all():
                later.append(rows[~found])
                span[rows[~found]] = 2 * width
        todo = np.concatenate(later) if later else np.zeros(0, dtype=np.int64)
    return out.reshape(shape)


def nb_cdf(
    k: np.ndarray | float, mean: np.ndarray | float, dispersion: np.ndarray | float
) -> FloatArray:
    """P(X <= k) for the negative binomial with the given means and dispersions (see
    :func:`nb_quantile`), elementwise over broadcast arrays; ``k`` is floored."""
    shape = np.broadcast_shapes(np.shape(k), np.shape(mean), np.shape(dispersion))
    kk = np.floor(np.broadcast_to(np.asarray(k, dtype=np.float64), shape)).ravel()
    m0 = np.broadcast_to(np.asarray(mean, dtype=np.float64), shape)
    d0 = np.broadcast_to(np.asarray(dispersion, dtype=np.float64), shape)
    m, phi, sd, lo = _nb_prepare(m0, d0)
    out = np.where(kk >= 0, 1.0, 0.0)
    # Below lo the mass is < 1e-15; far above the mean it is 1 within rounding.
    far = kk >= m + 50.0 * sd + 50.0
    todo = np.flatnonzero((m > 0) & (kk >= lo) & ~far)
    out[(m > 0) & (kk < lo)] = 0.0
    if todo.size:
        need = (kk[todo] - lo[todo] + 1).astype(np.int64)
        for width, sub in _width_groups(need):
            rows = todo[sub]
            cdf = _nb_window_cdf(lo[rows], width, m[rows], phi[rows])
            col = (kk[rows] - lo[rows]).astype(np.int64)
            out[rows] = np.minimum(cdf[np.arange(len(rows)), col], 1.0)
    result: FloatArray = out.reshape(shape)
    return result


# ------------------------------------------------------------------ the batch forecast


def _periods(periods: int | np.ndarray | None, n: int, default: int) -> IntArray:
    if periods is None:
        return np.full(n, default, dtype=np.int64)
    p = np.asarray(periods)
    if p.ndim == 0:
        p = np.full(n, p.item())
    if p.shape != (n,):
        raise ValueError(f"periods must be an int or have shape ({n},), got {p.shape}")
    if np.any(p < 0) or np.any(p != np.floor(p)):
        raise ValueError("periods must be non-negative integers")
    return p.astype(np.int64)


@dataclass(frozen=True)
class BatchForecast:
    """The forecast of a batch of series (see :func:`forecast_batch`).

    ``mean`` (n, horizon): expected demand per future period, >= 0. ``total_quantile``:
    q → (n,) integer q-quantile of the total demand over the horizon. ``demand_class`` and
    ``method`` (n,) str. ``dispersion`` (n,): the NB ``phi`` with Var(total) = m + phi m².
    ``season``: the seasonal period the forecast used; totals beyond the horizon repeat its
    last ``season`` periods.
    """

    mean: np.ndarray
    total_quantile: dict[float, np.ndarray]
    demand_class: np.ndarray
    method: np.ndarray
    dispersion: np.ndarray
    season: int = 7

    @property
    def horizon(self) -> int:
        return int(self.mean.shape[1])

    def total_mean(self, periods: int | np.ndarray | None = None) -> FloatArray:
        """(n,) expected total demand over the first ``periods`` periods (default: the
        horizon; an int or one per series). Past the horizon, the last season repeats."""
        n, h = self.mean.shape
        p = _periods(periods, n, h)
        cum = np.zeros((n, h + 1))
        np.cumsum(self.mean, axis=1, out=cum[:, 1:])
        within = np.minimum(p, h)
        total = cum[np.arange(n), within]
        extra = p - within
        if np.any(extra > 0):
            cycle_len = max(1, min(self.season, h))
            cycle = self.mean[:, h - cycle_len :]
            ccum = np.zeros((n, cycle_len + 1))
            np.cumsum(cycle, axis=1, out=ccum[:, 1:])
            rounds, rest = np.divmod(extra, cycle_len)
            total = total + rounds * ccum[:, -1] + ccum[np.arange(n), rest]
        result: FloatArray = total
        return result

    def total_quantile_over(self, periods: int | np.ndarray, q: float) -> IntArray:
        """(n,) integer q-quantile of the total demand over the first ``periods`` periods."""
        return nb_quantile(self.total_mean(periods), self.dispersion, q)

    def prob_demand_exceeds(self, stock: np.ndarray, periods: int | np.ndarray) -> FloatArray:
        """(n,) P(total demand over the first ``periods`` periods > ``stock``)."""
        n = self.mean.shape[0]
        s = np.broadcast_to(np.asarray(stock, dtype=np.float64), (n,))
        out: FloatArray = 1.0 - nb_cdf(s, self.total_mean(periods), self.dispersion)
        return np.clip(out, 0.0, 1.0)


# ------------------------------------------------------------------ the engine


class _Candidate(NamedTuple):
    """One method on a class's rows, for every constant of the grid (A of them)."""

    final: FloatArray  # (r, A) level after the history (deseasonalised)
    trend: FloatArray | None  # (r, A) damped trend's slope
    lpath: FloatArray  # (r, A, keep) level forecast made after each of the last keep periods
    tpath: FloatArray | None  # (r, A, keep)


def _run_candidate(name: str, zc: FloatArray, alphas: FloatArray, keep: int) -> _Candidate:
    grid = alphas[None, :]
    if name == "ses":
        final, path = _ses_paths(zc, grid, INIT_DIFFUSE, keep)
        return _Candidate(final, None, path, None)
    if name == "croston_sba":
        final, path = _croston_paths(zc, grid, INIT_DIFFUSE, keep)
        factor = 1.0 - alphas / 2.0
        return _Candidate(final * factor, None, path * factor[:, None], None)
    if name == "tsb":
        final, path = _tsb_paths(zc, grid, grid, INIT_DIFFUSE, keep)
        return _Candidate(final, None, path, None)
    if name == "holt_damped":
        lvl, trd, lpath, tpath = _holt_paths(
            zc, grid, grid * HOLT_BETA_RATIO, np.full((1, 1), HOLT_PHI), INIT_DIFFUSE, keep
        )
        return _Candidate(lvl, trd, lpath, tpath)
    interval = _mean_interval(zc)
    size = np.maximum(np.rint(np.where(np.isfinite(interval), interval, 1.0)), 1).astype(np.int64)
    rows_alpha = np.broadcast_to(grid, (len(zc), len(alphas)))
    if name == "adida":
        final, path = _aggregate_forecast(zc, size, rows_alpha, INIT_DIFFUSE, keep)
    elif name == "imapa":
        final, path = _imapa_forecast(zc, size, rows_alpha, INIT_DIFFUSE, keep)
    else:  # pragma: no cover - the candidates are fixed above
        raise ValueError(f"unknown method {name}")
    return _Candidate(np.nan_to_num(final), None, path, None)


def _forecast_at(cand: _Candidate, idx: IntArray, lag: int) -> FloatArray:
    """The forecast ``lag`` periods ahead made after keep-positions ``idx``: (r, A, len)."""
    f = cand.lpath[:, :, idx]
    if cand.tpath is not None:
        f = f + _damping(np.array(HOLT_PHI), lag)[-1] * cand.tpath[:, :, idx]
    return f


class _Window(NamedTuple):
    """Per series and rolling origin: sums over the periods that the origin's 1..lags-ahead
    forecasts are scored on (those inside the window). Independent of the method, so
    computed once per class; the damped-trend sums only when a trend model is scored."""

    yy: FloatArray  # (r, O) sum y²
    ys: FloatArray  # (r, O) sum y·s
    ss: FloatArray  # (r, O) sum s²
    scored: FloatArray  # (r, O) periods scored
    trend: tuple[FloatArray, FloatArray, FloatArray] | None  # sum d·y·s, d·s², d²·s²


def _origins(t_len: int, window: int, lags: int) -> IntArray:
    """Positions after which the scored forecasts are made (the last one is T - 2)."""
    return np.arange(max(t_len - window - lags, 0), t_len - 1, dtype=np.int64)


def _window_sums(
    yc: FloatArray,
    sc: FloatArray,
    origins: IntArray,
    spans: Sequence[tuple[int, int]],
    lags: int,
    damped: bool,
) -> list[_Window]:
    """The sums for origins ``origins`` over the periods [start, end) of each span."""
    r, t_len = yc.shape
    first_col = int(origins.min(initial=t_len - 1)) + 1
    width = t_len - first_col
    # Time-major, so that gathering origins is copying rows.
    yt = yc[:, first_col:].T
    seen = ~np.isnan(yt)
    yv = np.where(seen, yt, 0.0)
    sv = np.where(seen, sc[:, first_col:].T, 0.0)
    quantities = [yv * yv, yv * sv, sv * sv, seen.astype(np.float64)]
    if damped:
        # d_j = phi + … + phi^j = c (1 - phi^j): sums of d_j x over a range follow from
        # prefix sums of phi^q x (q < window + lags + 1, so phi^q stays well above 0).
        geo = HOLT_PHI ** np.arange(width, dtype=np.float64)[:, None]
        quantities += [geo * yv * sv, geo * sv * sv, geo * geo * sv * sv]
    prefixes = []
    for values in quantities:
        prefix = np.zeros((width + 1, r))
        np.cumsum(values, axis=0, out=prefix[1:])
        prefixes.append(prefix)
    out = []
    for start, end in spans:
        lo = np.maximum(origins + 1, start) - first_col
        hi = np.minimum(origins + lags, end - 1) - first_col
        empty = hi < lo
        lo = np.where(empty, 0, lo)
        hi = np.where(empty, -1, hi)
        sums = [p[hi + 1] - p[lo] for p in prefixes]
        trend = None
        if damped:
            c = HOLT_PHI / (1.0 - HOLT_PHI)
            back = (HOLT_PHI ** -(origins - first_col).astype(np.float64))[:, None]
            ys, ss = sums[1], sums[2]
            ysg, ssg, ssg2 = sums[4], sums[5], sums[6]
            ysd = c * (ys - back * ysg)
            ssd = c * (ss - back * ssg)
            ssd2 = c * c * (ss - 2.0 * back * ssg + back * back * ssg2)
            trend = (ysd.T, ssd.T, ssd2.T)
        out.append(_Window(sums[0].T, sums[1].T, sums[2].T, sums[3].T, trend))
    return out


def _rows(win: _Window, rows: IntArray) -> _Window:
    trend = (
        None if win.trend is None else (win.trend[0][rows], win.trend[1][rows], win.trend[2][rows])
    )
    return _Window(win.yy[rows], win.ys[rows], win.ss[rows], win.scored[rows], trend)


def _lag_errors(
    wins: Sequence[_Window], ok: BoolArray, origins: IntArray, cand: _Candidate, t_len: int
) -> list[tuple[FloatArray, FloatArray]]:
    """Rolling-origin squared errors of the forecasts 1..lags ahead scored on each window,
    from the origins ``ok`` (enough observations before them): (sum, count), each (r, A).

    Per origin the error sum is ``Σy² - 2 l Σys + l² Σs²`` for a flat forecast ``l``
    (plus the trend terms), so all constants are scored from the same window sums."""
    keep = cand.lpath.shape[2]
    idx = origins - (t_len - keep)
    lv = cand.lpath[:, :, np.clip(idx, 0, keep - 1)]  # (r, A, O)
    use = ~np.isnan(lv)
    use &= (ok & (idx >= 0)[None, :])[:, None, :]
    w = use.astype(np.float64)
    lv = np.nan_to_num(lv) * w
    lv2 = lv * lv
    bv = None
    if cand.tpath is not None:
        bv = np.nan_to_num(cand.tpath[:, :, np.clip(idx, 0, keep - 1)]) * w
    out = []
    for win in wins:
        sse = np.einsum("rao,ro->ra", w, win.yy)
        sse -= 2.0 * np.einsum("rao,ro->ra", lv, win.ys)
        sse += np.einsum("rao,ro->ra", lv2, win.ss)
        if bv is not None and win.trend is not None:
            ysd, ssd, ssd2 = win.trend
            sse -= 2.0 * np.einsum("rao,ro->ra", bv, ysd)
            sse += 2.0 * np.einsum("rao,ro->ra", lv * bv, ssd)
            sse += np.einsum("rao,ro->ra", bv * bv, ssd2)
        out.append((np.maximum(sse, 0.0), np.einsum("rao,ro->ra", w, win.scored)))
    return out


def _total_errors(
    yc: FloatArray, sc: FloatArray, first: IntArray, cand: _Candidate, span: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """For the chosen constant (A = 1): over rolling origins, the errors of the forecast
    total of the next ``span`` periods. Returns sum(e² - m), sum(m²) and the origin count."""
    r, t_len = yc.shape
    keep = cand.lpath.shape[2]
    base = t_len - keep
    origins = np.arange(max(base, 0), t_len - span)
    if origins.size == 0 or r == 0:
        return np.zeros(r), np.zeros(r), np.zeros(r)
    idx = origins - base
    actual = np.zeros((r, origins.size))
    mean = np.zeros((r, origins.size))
    for lag in range(1, span + 1):
        actual += yc[:, origins + lag]
        mean += _forecast_at(cand, idx, lag)[:, 0, :] * sc[:, origins + lag]
    ok = (
        (origins[None, :] >= first[:, None] + EVAL_BURN_IN - 1)
        & ~np.isnan(mean)
        & ~np.isnan(actual)
    )
    mean = np.where(ok, np.maximum(mean, 0.0), 0.0)
    err = np.where(ok, actual - mean, 0.0)
    return (
        np.where(ok, err * err - mean, 0.0).sum(axis=1),
        (mean * mean).sum(axis=1),
        ok.sum(axis=1).astype(np.float64),
    )


class _ClassFit(NamedTuple):
    level: FloatArray  # (r, horizon) deseasonalised forecast
    method: NDArray[np.str_]  # (r,)
    disp_num: FloatArray  # (r,) sum(e² - m) over the total errors
    disp_den: FloatArray  # (r,) sum(m²)
    disp_n: FloatArray  # (r,) independent windows behind them


def _fit_class(
    cls: str,
    zc: FloatArray,
    yc: FloatArray,
    sc: FloatArray,
    first: IntArray,
    scale: FloatArray,
    horizon: int,
) -> _ClassFit:
    r, t_len = zc.shape
    window = min(EVAL_WINDOW, t_len)
    lags = min(horizon, EVAL_MAX_LAGS)
    keep = min(t_len, window + lags)
    span = max(1, min(horizon, (t_len - EVAL_BURN_IN) // 2))
    alphas = np.asarray(ALPHA_GRID, dtype=np.float64)
    n_obs = t_len - first
    half = t_len - window // 2
    origins = _origins(t_len, window, lags)
    origins = origins[origins >= int(first.min(initial=0)) + EVAL_BURN_IN - 1]
    ok = origins[None, :] >= first[:, None] + EVAL_BURN_IN - 1
    holt_rows = np.flatnonzero(n_obs >= HOLT_MIN_OBSERVED)
    damped = "holt_damped" in CANDIDATES[cls] and holt_rows.size > 0
    spans = ((t_len - window, t_len), (t_len - window, half), (half, t_len))
    windows = _window_sums(yc, sc, origins, spans, lags, damped)
    names: list[str] = []
    chosen: list[_Candidate] = []
    mse: list[list[FloatArray]] = [[], [], []]
    for name in CANDIDATES[cls]:
        rows = np.arange(r)
        if name == "holt_damped":
            rows = holt_rows
            if rows.size == 0:
                continue
        # The class's constant for this method, from the pooled error of a sample of rows.
        sample = rows[
            np.unique(np.linspace(0, rows.size - 1, min(rows.size, ALPHA_SAMPLE)).astype(np.int64))
        ]
        cand = _run_candidate(name, zc[sample], alphas, keep)
        ((sse, cnt),) = _lag_errors([_rows(windows[0], sample)], ok[sample], origins, cand, t_len)
        with np.errstate(invalid="ignore", divide="ignore"):
            m = sse / cnt
        usable = (cnt > 0).all(axis=1)
        if usable.any():
            best = int(np.argmin((m[usable] / scale[sample][usable, None]).sum(axis=0)))
        else:
            best = int(np.argmin(np.abs(alphas - 0.1)))
        # Every row with that constant, scored on the whole window and on its two halves.
        cand = _run_candidate(name, zc[rows], alphas[best : best + 1], keep)
        wins = windows if rows.size == r else [_rows(w, rows) for w in windows]
        for w, (sse, cnt) in enumerate(_lag_errors(wins, ok[rows], origins, cand, t_len)):
            with np.errstate(invalid="ignore", divide="ignore"):
                m1 = sse[:, 0] / cnt[:, 0]
            full_mse = np.full(r, np.inf)
            full_mse[rows] = np.where(cnt[:, 0] > 0, m1, np.inf)
            mse[w].append(full_mse)
        if rows.size < r:  # only some rows: widen with NaN paths (never chosen elsewhere)
            cand = _widen(cand, rows, r)
        names.append(name)
        chosen.append(cand)
    errors, early, late = (np.stack(e, axis=1) for e in mse)  # (r, methods)
    # The class's default: the best pooled method over the rows every method scored.
    common = np.isfinite(errors).all(axis=1)
    if common.any():
        default = int(np.argmin((errors[common] / scale[common, None]).sum(axis=0)))
    else:
        default = 0
    choice = np.full(r, default, dtype=np.int64)
    # Per-series choice where it helps: chosen on the first half of the window, does it
    # beat the class's default on the second half (pooled, scaled)?
    judged = np.isfinite(early).any(axis=1) & np.isfinite(late[:, default])
    if judged.any() and len(names) > 1:
        pick_early = np.argmin(early[judged], axis=1)
        got = late[judged][np.arange(judged.sum()), pick_early]
        got = np.where(np.isfinite(got), got, late[judged, default])
        per_series = float((got / scale[judged]).sum())
        pooled = float((late[judged, default] / scale[judged]).sum())
        if SELECTION == "always" or (SELECTION == "auto" and per_series < pooled):
            own = np.isfinite(errors).any(axis=1)
            choice[own] = np.argmin(errors[own], axis=1)
    # A series takes only a method that ran on it (the damped trend needs a long history):
    # otherwise its best scored one among those, else the first that ran.
    ran = np.stack([np.isfinite(c.final[:, 0]) for c in chosen], axis=1)
    lost = ~ran[np.arange(r), choice]
    if lost.any():
        scored = np.where(ran[lost], errors[lost], np.inf)
        fallback = np.where(
            np.isfinite(scored).any(axis=1), np.argmin(scored, axis=1), np.argmax(ran[lost], axis=1)
        )
        choice[lost] = fallback
    level = np.zeros((r, horizon))
    num = np.zeros(r)
    den = np.zeros(r)
    cnt_o = np.zeros(r)
    method = np.empty(r, dtype="<U24")
    for k, (name, cand) in enumerate(zip(names, chosen, strict=True)):
        rows = np.flatnonzero(choice == k)
        if rows.size == 0:
            continue
        sub = _Candidate(
            cand.final[rows],
            None if cand.trend is None else cand.trend[rows],
            cand.lpath[rows],
            None if cand.tpath is None else cand.tpath[rows],
        )
        base = sub.final[:, :1]
        if sub.trend is not None:
            level[rows] = base + _damping(np.array(HOLT_PHI), horizon)[None, :] * sub.trend[:, :1]
        else:
            level[rows] = np.repeat(base, horizon, axis=1)
        a, b, c = _total_errors(yc[rows], sc[rows], first[rows], sub, span)
        num[rows], den[rows], cnt_o[rows] = a, b, c
        method[rows] = name
    return _ClassFit(np.nan_to_num(level), method, num, den, cnt_o / span)


def _widen(cand: _Candidate, rows: IntArray, r: int) -> _Candidate:
    def grow(a: FloatArray | None) -> FloatArray | None:
        if a is None:
            return None
        out = np.full((r, *a.shape[1:]), np.nan)
        out[rows] = a
        return out

    final = grow(cand.final)
    lpath = grow(cand.lpath)
    assert final is not None
    assert lpath is not None
    return _Candidate(final, grow(cand.trend), lpath, grow(cand.tpath))


def _pooled_dispersion(num: FloatArray, den: FloatArray) -> float:
    total = float(den.sum())
    if total <= 0:
        return 0.0
    return float(np.clip(num.sum() / total, 0.0, DISPERSION_MAX))


def _batch_rate_prior(st: _Stats, classes: NDArray[np.str_]) -> tuple[float, float]:
    """A gamma prior (shape, rate) for the demand rate of a series of this batch: the
    method of moments on the rates of its established series (neither new nor dead), less
    their Poisson sampling variance; on all observed series when too few are established.
    Worth at most PEER_PRIOR_PERIODS periods (it knows less than same-SKU peers); (0, 0),
    no prior, with fewer than BATCH_PRIOR_MIN_SERIES series to learn it from."""
    est = (classes != NEW) & (classes != DEAD)
    if est.sum() < BATCH_PRIOR_MIN_SERIES:
        est = st.n_obs > 0
    if est.sum() < BATCH_PRIOR_MIN_SERIES:
        return 0.0, 0.0
    rates = st.mean[est]
    mean = float(rates.mean())
    if mean <= 0:
        return 0.0, 0.0
    noise = float((rates / np.maximum(st.n_obs[est], 1)).mean())
    var = max(float(rates.var()) - noise, 1e-3 * mean * mean)
    rate = min(mean / var, PEER_PRIOR_PERIODS)
    return mean * rate, rate


def forecast_batch(
    history: np.ndarray,
    horizon: int,
    *,
    quantiles: Sequence[float] = (),
    season: int = 7,
    peer_rate: np.ndarray | None = None,
) -> BatchForecast:
    """Forecast every series of ``history`` (n, T; NaN = not observed) ``horizon`` periods
    ahead (see the module docstring for the classes, methods and distribution).

    ``quantiles``: levels q in (0, 1) for ``total_quantile``. ``season``: the seasonal period
    (7 for a weekday pattern of daily data; 1 or 0 for none). ``peer_rate`` (n,): a pooled
    demand rate per period for each series from its peers (NaN where there is none), used
    for new series.
    """
    h = _check_horizon(horizon)
    y = _as_history(history)
    n, t_len = y.shape
    qs = [float(q) for q in quantiles]
    for q in qs:
        if not 0.0 < q < 1.0:
            raise ValueError(f"quantile levels must lie in (0, 1), got {q}")
    peer = None
    if peer_rate is not None:
        peer = np.asarray(peer_rate, dtype=np.float64)
        if peer.shape != (n,):
            raise ValueError(f"peer_rate must have shape ({n},), got {peer.shape}")
    season = max(int(season), 1)

    st = _stats(y)
    classes = _classify(st)
    s_idx = _seasonal_indices(y, season) if season >= 2 else np.ones((n, 1))
    sea = s_idx.shape[1]
    s_hist = s_idx[:, (np.arange(t_len) - t_len) % sea]
    closed = s_hist < SEASON_CLOSED
    ym = np.where(closed, np.nan, y)
    z = ym / np.where(closed, 1.0, s_hist)
    zc, order = _compact(z)
    yc, sc = _move(ym, order), _move(s_hist, order)
    n_seen = (~np.isnan(zc)).sum(axis=1)
    first = (t_len - n_seen).astype(np.int64)
    with np.errstate(invalid="ignore"):
        diffs = np.diff(yc, axis=1)
        sq = np.where(np.isnan(diffs), 0.0, diffs * diffs)
        nd = (~np.isnan(diffs)).sum(axis=1)
        scale = np.where(nd > 0, sq.sum(axis=1) / np.maximum(nd, 1), 0.0)
        seen_c = ~np.isnan(yc)
        fallback = np.where(seen_c, yc * yc, 0.0).sum(axis=1) / np.maximum(seen_c.sum(axis=1), 1)
    scale = np.where(scale > 0, scale, fallback)
    scale = np.where(scale > 0, scale, 1.0)

    level = np.zeros((n, h))
    method = np.empty(n, dtype="<U24")
    dispersion = np.zeros(n)
    pools: dict[str, float] = {}
    fits: dict[str, tuple[IntArray, _ClassFit]] = {}
    for cls in (SMOOTH, INTERMITTENT, ERRATIC, LUMPY):
        rows = np.flatnonzero(classes == cls)
        if rows.size == 0 or t_len == 0:
            continue
        fit = _fit_class(cls, zc[rows], yc[rows], sc[rows], first[rows], scale[rows], h)
        level[rows] = fit.level
        method[rows] = fit.method
        fits[cls] = (rows, fit)
        pools[cls] = _pooled_dispersion(fit.disp_num, fit.disp_den)
    all_num = np.concatenate([f.disp_num for _, f in fits.values()]) if fits else np.zeros(0)
    all_den = np.concatenate([f.disp_den for _, f in fits.values()]) if fits else np.zeros(0)
    pool_all = _pooled_dispersion(all_num, all_den)
    for cls, (rows, fit) in fits.items():
        with np.errstate(invalid="ignore", divide="ignore"):
            own = np.where(fit.disp_den > 0, fit.disp_num / fit.disp_den, pools[cls])
        cred = fit.disp_n / (fit.disp_n + DISPERSION_PRIOR_WINDOWS)
        dispersion[rows] = cred * np.clip(own, 0.0, DISPERSION_MAX) + (1 - cred) * pools[cls]

    # New: the gamma–Poisson posterior of the rate. Prior: the peer rate, worth
    # PEER_PRIOR_PERIODS periods; without one, the batch's own gamma prior (empirical Bayes).
    # The posterior shape's inverse is the rate's own dispersion.
    new = np.flatnonzero(classes == NEW)
    if new.size:
        own_sum = np.nansum(zc[new], axis=1) if t_len else np.zeros(new.size)
        seen = n_seen[new].astype(np.float64)
        pr = np.full(new.size, np.nan) if peer is None else peer[new]
        has_peer = np.isfinite(pr) & (pr >= 0)
        a0, b0 = _batch_rate_prior(st, classes)
        prior_shape = np.where(has_peer, PEER_PRIOR_PERIODS * np.nan_to_num(pr), a0)
        prior_rate = np.where(has_peer, PEER_PRIOR_PERIODS, b0)
        shape = own_sum + prior_shape
        rate_den = seen + prior_rate
        rate = np.where(rate_den > 0, shape / np.where(rate_den > 0, rate_den, 1.0), 0.0)
        level[new] = rate[:, None]
        method[new] = np.where(has_peer, "peer_rate", "own_rate")
        with np.errstate(divide="ignore"):
            dispersion[new] = np.where(shape > 0, 1.0 / np.where(shape > 0, shape, 1.0), 0.0)
        dispersion[new] = np.minimum(dispersion[new] + pool_all, DISPERSION_MAX)

    # Dead: TSB whose demand probability has been decaying through the zeros, on the raw
    # history (no weekday model for an item that no longer sells).
    dead = np.flatnonzero(classes == DEAD)
    dead_level = np.zeros(0)
    if dead.size:
        raw, _ = _compact(y[dead])
        ap = np.full((1, 1), DEAD_ALPHA_P)
        final, _ = _tsb_paths(raw, ap, ap, INIT_DIFFUSE, 1)
        dead_level = np.nan_to_num(final[:, 0])
        method[dead] = "tsb_decay"
        dispersion[dead] = pool_all

    future = s_idx[:, np.arange(h) % sea]
    future[dead] = 1.0
    level[dead] = dead_level[:, None]
    mean = np.clip(np.nan_to_num(level * future), 0.0, None)
    seasonal = np.abs(s_idx - 1.0).max(axis=1) > 1e-9
    seasonal[dead] = False
    method = np.where(seasonal, np.char.add(method, "+weekday"), method)
    dispersion = np.clip(np.nan_to_num(dispersion), 0.0, DISPERSION_MAX)
    total = mean.sum(axis=1)
    table = {q: nb_quantile(total, dispersion, q) for q in qs}
    return BatchForecast(
        mean=mean,
        total_quantile=table,
        demand_class=classes,
        method=method,
        dispersion=dispersion,
        season=sea,
    )
