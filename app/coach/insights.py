"""The coach's insights: what a rep or manager should do about a stand, and why.

Each rule reads the loaded history (:class:`app.coach.data.CoachData`), the forecasts and
the refill policy, and returns :class:`Insight` values: a kind, a severity, a one-line
message, the evidence (numbers, JSON-able), a recommended action in structured form and a
stable ``dedup_key``. The agent stores them as :class:`~app.models.StandAIInsight` rows,
updating the row with the same key on the next run.

Rules and thresholds (:class:`Thresholds` holds the numbers):

``stockout_risk`` (per stand)
    Some SKU's probability of running out before the next visit is at least 50 %
    (critical from 80 %). Action ``{"type": "refill", "quantities": {product id: units}}``
    with the coach's recommended refill for every SKU of the stand (what "create refill"
    pre-fills); ``{"type": "deliver_sooner"}`` when everything needed is already on order
    but arrives only at the visit.
``slow_mover`` (stand × SKU)
    Stock sitting: over the last 8 weeks the SKU sold so little that its stock on hand
    covers more than 3 review periods (3 × the refill cadence), and it sells at less than
    half the rate of the same SKU at stands of the same location type (or, with no peers,
    less than one unit per review period). SKUs carried for less than 4 weeks are left
    alone. Warning when no sale at all or cover beyond 6 review periods, else info. Action
    ``{"type": "swap_sku", ...}`` with up to three candidates: the best-selling SKUs at
    peer stands of that location type that this stand does not carry.
``under_faced`` (stand × SKU)
    A best seller that keeps selling out: over the last 8 weeks it closed out of stock on
    at least 15 % of the days carried (and at least 4 days; critical from 30 %), and its
    in-stock rate is high — at least the rate at peer stands, or in the top quarter of the
    stand's SKUs — and at least 0.2 a day. Action ``more_facings`` (the order-up-to level
    does not fit the capacity: raise it) or ``raise_par`` / shorter cadence (it fits).
``trend_break`` (stand × SKU)
    Tracking signal on the last 14 days' forecast error: the forecast made before those
    days against what sold on the in-stock ones. It fires when the errors point the same
    way (|Σ error| ≥ 60 % of Σ |error|, i.e. tracking signal |TS| ≥ 0.6 × days), the
    difference is at least 50 % of the expectation and 4 units, the larger of observed and
    expected is at least 10 units, and it is unlikely to be chance (|observed − expected| ≥
    3 standard deviations of the forecast's negative-binomial total).
    At least 7 in-stock days are needed. A drop is a warning (critical when nothing sold
    against 10 or more expected): check the shelf, placement or a competitor. A rise is
    info: the order-up-to level will follow; raise par.
``below_peers`` (stand)
    Revenue per SKU slot (units × list price per day, ÷ SKUs carried that day) over the last
    4 weeks, compared with the stands of the same location type and package (the same
    location type when that group has fewer than 5 stands; no insight with fewer than 5).
    Estimates are shrunk towards the group mean by empirical Bayes (:func:`eb_shrink`: a
    normal-normal model whose within-stand variance is the day-to-day variance of the
    stand's figure ÷ its days, and whose between-stand variance is the DerSimonian–Laird
    estimate of the group's spread beyond that noise), so one bad week at a small stand,
    whose figure is noisy, does not flag it. Warning when
    the shrunk estimate is below 60 % of the group mean, critical below 40 %. Stands open
    for less than 14 days are not compared.
``count_overdue`` (stand)
    No physical count for more than 28 days (:data:`app.services.queries.COUNT_OVERDUE_DAYS`),
    critical beyond twice that; a stand never counted 28 days after it opened. Action
    ``{"type": "count"}``.
``tier_within_reach`` (partner, stored on the partner's first stand in the run)
    The partner's points earned over the tier window are within 10 % of the next tier's
    threshold. Info, with the pace of the last 4 weeks. Action ``loyalty_nudge``.

Dedup keys: ``kind:stand[:product]`` plus a *period bucket* where the same issue may
legitimately come back after it was dismissed or done: the ISO week for stock-out risk (a
new week, a new refill), the quarter for slow movers and under-faced SKUs (assortment
decisions are reviewed quarterly), the month for trend breaks (with the direction), stands
below peers and loyalty tiers (with the tier), and the date of the last count for overdue
counts (a new count starts a new clock). Within a bucket, a dismissed or finished insight
stays closed.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import numpy as np

from app.coach.data import CoachData, StandInfo
from app.coach.policy import PolicyResult, line_value, service_text
from app.models import Severity
from app.services.queries import COUNT_OVERDUE_DAYS

Array = np.ndarray[Any, Any]

STOCKOUT_RISK = "stockout_risk"
SLOW_MOVER = "slow_mover"
UNDER_FACED = "under_faced"
TREND_BREAK = "trend_break"
BELOW_PEERS = "below_peers"
COUNT_OVERDUE = "count_overdue"
TIER_WITHIN_REACH = "tier_within_reach"
#: Every kind the coach writes (and so may update or retire).
KINDS = (
    STOCKOUT_RISK,
    SLOW_MOVER,
    UNDER_FACED,
    TREND_BREAK,
    BELOW_PEERS,
    COUNT_OVERDUE,
    TIER_WITHIN_REACH,
)
_SEVERITY_RANK = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}


@dataclass(frozen=True)
class Thresholds:
    risk_warning: float = 0.5
    risk_critical: float = 0.8
    recent_days: int = 56
    min_carried_days: int = 28
    slow_cover_periods: float = 3.0
    slow_cover_periods_warning: float = 6.0
    slow_peer_ratio: float = 0.5
    #: Without peers: slow below this many units per review period.
    slow_units_per_review: float = 0.5
    oos_share: float = 0.15
    oos_share_critical: float = 0.30
    oos_min_days: int = 4
    best_seller_quantile: float = 0.75
    best_seller_min_rate: float = 0.2
    trend_days: int = 14
    trend_min_days: int = 7
    trend_ts: float = 0.6
    trend_change: float = 0.5
    trend_min_units: float = 4.0
    #: Observed or expected units over the days tested, at least: fewer say too little.
    trend_min_volume: float = 10.0
    trend_sigmas: float = 3.0
    peers_days: int = 28
    peers_min_group: int = 5
    peers_min_days: int = 14
    peers_warning: float = 0.6
    peers_critical: float = 0.4
    count_overdue_days: int = COUNT_OVERDUE_DAYS
    tier_reach: float = 0.10


DEFAULT_THRESHOLDS = Thresholds()


@dataclass(frozen=True)
class Insight:
    kind: str
    severity: Severity
    stand_id: str
    product_id: str | None
    message: str
    evidence: dict[str, Any] = field(hash=False)
    action: dict[str, Any] = field(hash=False)
    dedup_key: str


def sort_key(insight: Insight) -> tuple[int, int, str, str]:
    """Critical first; then by kind in the order of :data:`KINDS` (stock first)."""
    return (
        _SEVERITY_RANK[insight.severity],
        KINDS.index(insight.kind),
        insight.stand_id,
        insight.product_id or "",
    )


# --------------------------------------------------------------------------- helpers


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def quarter(day: date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def month(day: date) -> str:
    return f"{day.year}-{day.month:02d}"


def _r(x: float, places: int = 2) -> float | None:
    """A float for JSON evidence: rounded; None for NaN or infinity."""
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), places)


def _rate_text(x: float) -> str:
    if x >= 10:
        return f"{x:.0f}"
    if x >= 1:
        return f"{x:.1f}"
    return f"{x:.2f}"


def _label(data: CoachData, i: int) -> str:
    return f"{data.names[i]} ({data.skus[i]})"


def recent_rates(data: CoachData, days: int) -> tuple[Array, Array, Array, Array]:
    """Over the last ``days`` days, per series: units sold on in-stock days, in-stock days,
    days carried, and the in-stock daily rate (NaN without an in-stock day)."""
    w = min(days, data.days)
    demand = data.demand[:, -w:]
    instock = ~np.isnan(demand)
    units = np.where(instock, demand, 0.0).sum(axis=1)
    instock_days = instock.sum(axis=1)
    carried = data.tracked[:, -w:].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(instock_days > 0, units / np.maximum(instock_days, 1), np.nan)
    return units, instock_days, carried, rate


def _carried_days(data: CoachData) -> Array:
    """Days each series has been carried up to yesterday (may exceed the window)."""
    return data.days - data.first_day


def _money(x: float | Decimal) -> str:
    return f"€{x:,.2f}"


# --------------------------------------------------------------------------- stock-out risk


def stockout_risk(
    data: CoachData,
    policy: PolicyResult,
    *,
    service: float,
    th: Thresholds = DEFAULT_THRESHOLDS,
) -> list[Insight]:
    """One insight per focus stand with a SKU at risk of running out before the visit."""
    out: list[Insight] = []
    focus = data.focus
    by_stand: dict[int, list[int]] = defaultdict(list)
    for i in np.nonzero(focus)[0].tolist():
        by_stand[int(data.stand_idx[i])].append(i)
    qty = policy.refill.quantity
    for si, series in by_stand.items():
        stand = data.stands[si]
        risky = [i for i in series if policy.risk[i] >= th.risk_warning]
        if not risky:
            continue
        risky.sort(key=lambda i: (-policy.risk[i], data.skus[i]))
        top = float(policy.risk[risky[0]])
        severity = Severity.CRITICAL if top >= th.risk_critical else Severity.WARNING
        quantities = {data.product_ids[i]: int(qty[i]) for i in series if qty[i] > 0}
        value = sum(
            (line_value(data.list_price[i], int(qty[i])) for i in series if qty[i] > 0),
            Decimal(0),
        )
        names = ", ".join(
            f"{data.names[i]} {round(100 * float(policy.risk[i]))} %" for i in risky[:3]
        )
        more = f" and {len(risky) - 3} more" if len(risky) > 3 else ""
        what = "1 product" if len(risky) == 1 else f"{len(risky)} products"
        days = stand.days_to_visit
        head = (
            f"{what} may run out before the next visit in {days} day{'s' if days != 1 else ''}"
            f" ({names}{more})"
        )
        if quantities:
            units = sum(quantities.values())
            message = f"{head} → refill {units} units ({_money(value)})"
            action: dict[str, Any] = {
                "type": "refill",
                "stand_id": stand.id,
                "quantities": quantities,
                "value": str(value),
            }
        else:
            on_order = {data.product_ids[i]: int(data.on_order[i]) for i in risky}
            message = f"{head} → what is on order arrives only at the visit: deliver sooner"
            action = {"type": "deliver_sooner", "stand_id": stand.id, "on_order": on_order}
        evidence = {
            "days_to_visit": days,
            "next_visit": stand.next_visit.isoformat(),
            "service": service,
            "at_risk": [
                {
                    "product_id": data.product_ids[i],
                    "sku": data.skus[i],
                    "risk": _r(float(policy.risk[i]), 3),
                    "expected_before_visit": _r(float(policy.expected_before_visit[i])),
                    "on_hand": int(data.on_hand[i]),
                    "on_order": int(data.on_order[i]),
                    "order_up_to": int(policy.target[i]),
                    "refill": int(qty[i]),
                }
                for i in risky
            ],
        }
        out.append(
            Insight(
                STOCKOUT_RISK,
                severity,
                stand.id,
                None,
                message,
                evidence,
                action,
                f"{STOCKOUT_RISK}:{stand.id}:{iso_week(stand.today)}",
            )
        )
    return out


# --------------------------------------------------------------------------- slow movers


def _swap_candidates(
    data: CoachData,
    stand: StandInfo,
    carried: set[str],
    labels: dict[str, tuple[str, str]],
    limit: int = 3,
) -> list[dict[str, Any]]:
    rates = data.type_rates.get(stand.location_type, {})
    best = sorted(
        ((r, pid) for pid, r in rates.items() if pid not in carried and r > 0),
        key=lambda t: (-t[0], t[1]),
    )[:limit]
    return [
        {
            "product_id": pid,
            "sku": labels[pid][0],
            "name": labels[pid][1],
            "peer_rate": _r(r, 3),
        }
        for r, pid in best
    ]


def stand_traffic(data: CoachData, rate: Array, instock_days: Array, min_days: int) -> Array:
    """Per series, its stand's *traffic factor*: the median, over the stand's SKUs with a
    peer rate and ``min_days`` in-stock days, of rate ÷ peer rate (1 when none), so that a
    quiet stand is not read as a stand full of slow movers."""
    peer = data.peer_rate
    ok = ~np.isnan(peer) & (peer > 0) & ~np.isnan(rate) & (instock_days >= min_days)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(ok, rate / np.where(ok, peer, 1.0), np.nan)
    factor = np.ones(len(data.stands))
    order = np.argsort(data.stand_idx, kind="stable")
    bounds = np.searchsorted(data.stand_idx[order], np.arange(len(data.stands) + 1))
    for si in range(len(data.stands)):
        r = ratio[order[bounds[si] : bounds[si + 1]]]
        r = r[~np.isnan(r)]
        if r.size:
            factor[si] = max(float(np.median(r)), 0.05)
    out: Array = factor[data.stand_idx] if data.n else np.ones(0)
    return out


def slow_movers(data: CoachData, *, th: Thresholds = DEFAULT_THRESHOLDS) -> list[Insight]:
    """Stock sitting on a SKU that sells badly *here* (see the module docstring).

    "Badly here" is relative to what the SKU sells at peer stands, scaled by this stand's
    traffic factor (:func:`stand_traffic`): expected = peer rate × factor. The SKU is slow
    when it sells less than half that and the shortfall is not chance (the units sold are at
    least 2 Poisson standard deviations below the expected units); without peers, when it
    sells less than one unit every two review periods."""
    units, instock_days, _carried, rate = recent_rates(data, th.recent_days)
    carried_days = _carried_days(data)
    review = data.review_days.astype(np.float64)
    on_hand = np.maximum(data.on_hand, 0).astype(np.float64)
    r0 = np.nan_to_num(rate, nan=0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        cover = np.where(r0 > 0, on_hand / np.where(r0 > 0, r0, 1.0), np.inf)
    peer = data.peer_rate
    has_peer = ~np.isnan(peer) & (peer > 0)
    factor = stand_traffic(data, rate, instock_days, th.min_carried_days // 2)
    expected = np.where(has_peer, np.nan_to_num(peer) * factor, np.nan)
    exp_units = np.nan_to_num(expected) * instock_days
    with np.errstate(divide="ignore", invalid="ignore"):
        fit = np.where(has_peer, r0 / np.where(has_peer, expected, 1.0), np.nan)
        z = np.where(exp_units > 0, (units - exp_units) / np.sqrt(np.maximum(exp_units, 1e-9)), 0)
    low = np.where(
        has_peer,
        (np.nan_to_num(fit, nan=1.0) < th.slow_peer_ratio) & (z <= -2.0),
        r0 * review < th.slow_units_per_review,
    )
    flagged = (
        data.focus
        & (on_hand > 0)
        & (carried_days >= th.min_carried_days)
        & (instock_days >= th.min_carried_days // 2)
        & (cover > th.slow_cover_periods * review)
        & low
    )
    carried_by_stand: dict[int, set[str]] = defaultdict(set)
    labels: dict[str, tuple[str, str]] = {}
    for i, pid in enumerate(data.product_ids):
        carried_by_stand[int(data.stand_idx[i])].add(pid)
        labels.setdefault(pid, (data.skus[i], data.names[i]))
    out = []
    w = min(th.recent_days, data.days)
    for i in np.nonzero(flagged)[0].tolist():
        si = int(data.stand_idx[i])
        stand = data.stands[si]
        r, c = float(r0[i]), float(cover[i])
        none_sold = units[i] == 0
        very = has_peer[i] and float(fit[i]) < th.slow_peer_ratio / 2
        severity = (
            Severity.WARNING
            if none_sold or very or c > th.slow_cover_periods_warning * review[i]
            else Severity.INFO
        )
        candidates = _swap_candidates(data, stand, carried_by_stand[si], labels)
        where = f"similar {stand.location_type.replace('_', ' ')} stands"
        if none_sold:
            sold_text = f"sold nothing in {int(instock_days[i])} days in stock"
        elif has_peer[i]:
            sold_text = (
                f"sells {_rate_text(r)} a day, {round(100 * float(fit[i]))} % of what "
                f"{where} sell at this stand's traffic ({_rate_text(float(expected[i]))})"
            )
        else:
            sold_text = f"sells {_rate_text(r)} a day"
        cover_text = "that will not sell" if not math.isfinite(c) else f"for {round(c)} days"
        swap = (
            " for " + " or ".join(f"{x['name']} ({x['sku']})" for x in candidates[:2])
            if candidates
            else ""
        )
        message = (
            f"{_label(data, i)} {sold_text}; {int(on_hand[i])} on hand {cover_text} → swap it{swap}"
        )
        evidence = {
            "window_days": w,
            "units_sold": int(units[i]),
            "in_stock_days": int(instock_days[i]),
            "rate_per_day": _r(r, 3),
            "peer_rate_per_day": _r(float(peer[i]), 3),
            "stand_traffic_factor": _r(float(factor[i]), 3),
            "expected_rate_per_day": _r(float(expected[i]), 3),
            "fit": _r(float(fit[i]), 3),
            "z": _r(float(z[i]), 2),
            "on_hand": int(data.on_hand[i]),
            "days_of_cover": _r(c, 1),
            "review_days": int(review[i]),
            "carried_days": int(carried_days[i]),
        }
        action = {
            "type": "swap_sku",
            "stand_id": stand.id,
            "product_id": data.product_ids[i],
            "candidates": candidates,
        }
        out.append(
            Insight(
                SLOW_MOVER,
                severity,
                stand.id,
                data.product_ids[i],
                message,
                evidence,
                action,
                f"{SLOW_MOVER}:{stand.id}:{data.product_ids[i]}:{quarter(stand.today)}",
            )
        )
    return out


# --------------------------------------------------------------------------- under-faced


def under_faced(
    data: CoachData,
    policy: PolicyResult,
    *,
    service: float,
    th: Thresholds = DEFAULT_THRESHOLDS,
) -> list[Insight]:
    _units, instock_days, carried, rate = recent_rates(data, th.recent_days)
    oos_days = carried - instock_days
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(carried > 0, oos_days / np.maximum(carried, 1), 0.0)
    # The stand's top quarter by in-stock rate.
    top_rate = np.full(data.n, np.inf)
    for si in np.unique(data.stand_idx).tolist():
        members = data.stand_idx == si
        r = rate[members]
        r = r[~np.isnan(r)]
        if r.size:
            top_rate[members] = float(np.quantile(r, th.best_seller_quantile))
    peer = np.nan_to_num(data.peer_rate, nan=np.inf)
    r0 = np.nan_to_num(rate, nan=0.0)
    best = ((r0 >= peer) | (r0 >= top_rate)) & (r0 >= th.best_seller_min_rate)
    flagged = data.focus & best & (oos_days >= th.oos_min_days) & (share >= th.oos_share)
    w = min(th.recent_days, data.days)
    out = []
    for i in np.nonzero(flagged)[0].tolist():
        stand = data.stands[int(data.stand_idx[i])]
        target = int(policy.target[i])
        cap, par = int(data.capacity[i]), int(data.par[i])
        lost = float(oos_days[i] * r0[i])
        severity = Severity.CRITICAL if share[i] >= th.oos_share_critical else Severity.WARNING
        if target >= cap + max(int(data.pack_size[i]), math.ceil(0.1 * cap)):
            action: dict[str, Any] = {
                "type": "more_facings",
                "stand_id": stand.id,
                "product_id": data.product_ids[i],
                "capacity": cap,
                "suggested_capacity": target,
                "par": par,
                "suggested_par": target,
            }
            todo = f"more facings: capacity {cap} → {target}"
        else:
            action = {
                "type": "raise_par",
                "stand_id": stand.id,
                "product_id": data.product_ids[i],
                "par": par,
                "suggested_par": max(par, target),
                "review_days": int(data.review_days[i]),
            }
            todo = (
                f"raise par {par} → {target} or refill more often"
                if target > par
                else "refill more often (a shorter cadence)"
            )
        peer_text = (
            f" (peers {_rate_text(float(data.peer_rate[i]))})"
            if not np.isnan(data.peer_rate[i])
            else ""
        )
        message = (
            f"{_label(data, i)} sold out on {int(oos_days[i])} of {int(carried[i])} days"
            f" ({round(100 * float(share[i]))} %) though it sells {_rate_text(float(r0[i]))}"
            f" a day{peer_text}; about {round(lost)} sales lost → {todo}"
        )
        evidence = {
            "window_days": w,
            "out_of_stock_days": int(oos_days[i]),
            "carried_days": int(carried[i]),
            "out_of_stock_share": _r(float(share[i]), 3),
            "rate_per_day": _r(float(r0[i]), 3),
            "peer_rate_per_day": _r(float(data.peer_rate[i]), 3),
            "lost_units": _r(lost, 1),
            "lost_revenue": str(line_value(data.list_price[i], round(lost))),
            "capacity": cap,
            "par": par,
            "order_up_to": target,
            "service": service_text(service),
        }
        out.append(
            Insight(
                UNDER_FACED,
                severity,
                stand.id,
                data.product_ids[i],
                message,
                evidence,
                action,
                f"{UNDER_FACED}:{stand.id}:{data.product_ids[i]}:{quarter(stand.today)}",
            )
        )
    return out


# --------------------------------------------------------------------------- trend breaks


def trend_breaks(
    data: CoachData,
    expected: Array,
    dispersion: Array,
    *,
    series: Array | None = None,
    th: Thresholds = DEFAULT_THRESHOLDS,
) -> list[Insight]:
    """Tracking-signal test of the last ``th.trend_days`` days.

    ``expected`` (m, trend_days) is the forecast made at the start of those days for the
    series at ``series`` (indices into ``data``; all series when None), ``dispersion``
    (m,) its negative-binomial ``phi`` (a total of mean m has variance m + phi m²; 0 is
    Poisson)."""
    k = expected.shape[1]
    idx = np.arange(data.n) if series is None else np.asarray(series, dtype=np.int64)
    if idx.size == 0 or k == 0:
        return []
    actual = data.demand[idx, -k:]
    instock = ~np.isnan(actual)
    days = instock.sum(axis=1)
    mu = np.where(instock, expected, 0.0)
    err = np.where(instock, actual - expected, 0.0)
    sum_err = err.sum(axis=1)
    mad_sum = np.abs(err).sum(axis=1)
    exp_total = mu.sum(axis=1)
    obs_total = np.where(instock, actual, 0.0).sum(axis=1)
    phi = np.asarray(dispersion, dtype=np.float64)
    phi = np.where(np.isfinite(phi) & (phi > 0), phi, 0.0)
    # The forecast's law for a total of m expected units: variance m + phi m².
    var = exp_total + phi * exp_total**2
    with np.errstate(divide="ignore", invalid="ignore"):
        ts = np.where(mad_sum > 0, sum_err / mad_sum, 0.0)  # in [-1, 1]: TS ÷ days
        z = np.where(var > 0, (obs_total - exp_total) / np.sqrt(np.maximum(var, 1e-12)), 0.0)
        change = np.where(exp_total > 0, (obs_total - exp_total) / exp_total, np.inf)
    big = np.abs(obs_total - exp_total) >= np.maximum(
        th.trend_min_units, th.trend_change * exp_total
    )
    flagged = (
        data.focus[idx]
        & (days >= th.trend_min_days)
        & (np.maximum(obs_total, exp_total) >= th.trend_min_volume)
        & (np.abs(ts) >= th.trend_ts)
        & big
        & (np.abs(change) >= th.trend_change)
        & (np.abs(z) >= th.trend_sigmas)
    )
    out = []
    for j in np.nonzero(flagged)[0].tolist():
        i = int(idx[j])
        stand = data.stands[int(data.stand_idx[i])]
        down = obs_total[j] < exp_total[j]
        direction = "down" if down else "up"
        obs, exp = float(obs_total[j]), float(exp_total[j])
        if down:
            severity = Severity.CRITICAL if obs == 0 and exp >= 10 else Severity.WARNING
            todo = "check the shelf, the placement and the price tag"
            action: dict[str, Any] = {
                "type": "check_shelf",
                "stand_id": stand.id,
                "product_id": data.product_ids[i],
            }
        else:
            severity = Severity.INFO
            todo = "the forecast follows; consider a higher par"
            action = {
                "type": "raise_par",
                "stand_id": stand.id,
                "product_id": data.product_ids[i],
                "par": int(data.par[i]),
            }
        pct = "∞" if not math.isfinite(change[j]) else f"{change[j] * 100:+.0f} %"
        message = (
            f"{_label(data, i)} sales {'dropped' if down else 'jumped'}: {round(obs)} sold in "
            f"the last {int(days[j])} in-stock days vs {_rate_text(exp)} expected ({pct})"
            f" → {todo}"
        )
        evidence = {
            "days": k,
            "in_stock_days": int(days[j]),
            "observed": round(obs),
            "expected": _r(exp),
            "change": _r(float(change[j]), 3),
            "tracking_signal": _r(float(ts[j] * days[j]), 2),
            "z": _r(float(z[j]), 2),
        }
        out.append(
            Insight(
                TREND_BREAK,
                severity,
                stand.id,
                data.product_ids[i],
                message,
                evidence,
                action,
                f"{TREND_BREAK}:{stand.id}:{data.product_ids[i]}:{direction}:{month(stand.today)}",
            )
        )
    return out


# --------------------------------------------------------------------------- below peers


@dataclass(frozen=True)
class PeerScore:
    stand_id: str
    group: str
    group_size: int
    days: int
    raw: float  # revenue per slot per day
    shrunk: float
    peer_mean: float
    weight: float  # how much of the raw difference survives shrinkage (0..1)


def eb_shrink(means: Array, noise: Array) -> tuple[Array, float, Array]:
    """Empirical-Bayes estimates of the true means of a group of noisy means.

    Normal-normal model: ``x_i ~ N(theta_i, v_i)`` with known sampling variances ``v_i``
    (``noise``) and ``theta_i ~ N(mu, tau²)``. ``tau²`` is the DerSimonian–Laird estimate
    (method of moments with precision weights, robust to one very noisy member), ``mu`` the
    precision-weighted mean under it, and each estimate moves towards ``mu`` by
    ``1 - B_i``, ``B_i = tau² / (tau² + v_i)``. Returns (estimates, mu, B)."""
    x = np.asarray(means, dtype=np.float64)
    scale = float(np.mean(x * x)) if x.size else 0.0
    v = np.maximum(np.asarray(noise, dtype=np.float64), 1e-9 * scale + 1e-12)
    k = x.size
    w = 1.0 / v
    xw = float((w * x).sum() / w.sum())
    q = float((w * (x - xw) ** 2).sum())
    denom = float(w.sum() - (w * w).sum() / w.sum())
    tau2 = max(0.0, (q - (k - 1)) / denom) if k > 1 and denom > 0 else 0.0
    wr = 1.0 / (v + tau2)
    mu = float((wr * x).sum() / wr.sum())
    b = tau2 / (tau2 + v)
    return mu + b * (x - mu), mu, b


def peer_scores(data: CoachData, *, th: Thresholds = DEFAULT_THRESHOLDS) -> list[PeerScore]:
    """Empirical-Bayes revenue per SKU slot of every loaded stand, by peer group."""
    w = min(th.peers_days, data.days)
    ns = len(data.stands)
    if ns == 0 or data.n == 0:
        return []
    revenue = np.zeros((ns, w))
    slots = np.zeros((ns, w))
    np.add.at(revenue, data.stand_idx, data.sold[:, -w:] * data.price[:, None])
    np.add.at(slots, data.stand_idx, data.tracked[:, -w:].astype(np.float64))
    open_days = (slots > 0).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        daily = np.where(slots > 0, revenue / np.maximum(slots, 1), np.nan)
        mean = np.nanmean(np.where(open_days[:, None] > 0, daily, 0.0), axis=1)
        var_day = np.nanvar(np.where(open_days[:, None] > 0, daily, 0.0), axis=1, ddof=1)
    ok = open_days >= th.peers_min_days
    noise = np.where(ok, var_day / np.maximum(open_days, 1), np.nan)

    def groups(key: Any) -> dict[str, list[int]]:
        g: dict[str, list[int]] = defaultdict(list)
        for si, s in enumerate(data.stands):
            if ok[si]:
                g[key(s)].append(si)
        return g

    fine = groups(lambda s: f"{s.location_type}/{s.package_code}")
    coarse = groups(lambda s: s.location_type)
    out = []
    for si, s in enumerate(data.stands):
        if not ok[si]:
            continue
        name = f"{s.location_type}/{s.package_code}"
        members = fine[name]
        if len(members) < th.peers_min_group:
            name, members = s.location_type, coarse[s.location_type]
        if len(members) < th.peers_min_group:
            continue
        members_arr = np.asarray(members)
        shrunk_all, mu, weight = eb_shrink(mean[members_arr], noise[members_arr])
        pos = members.index(si)
        shrunk = float(shrunk_all[pos])
        b = float(weight[pos])
        out.append(
            PeerScore(s.id, name, len(members), int(open_days[si]), float(mean[si]), shrunk, mu, b)
        )
    return out


def below_peers(
    data: CoachData, *, th: Thresholds = DEFAULT_THRESHOLDS, slow: Sequence[Insight] = ()
) -> list[Insight]:
    focus = {s.id for s in data.stands if s.focus}
    by_id = {s.id: s for s in data.stands}
    slow_by_stand: dict[str, list[str]] = defaultdict(list)
    for ins in slow:
        if ins.product_id:
            slow_by_stand[ins.stand_id].append(ins.product_id)
    out = []
    for p in peer_scores(data, th=th):
        if p.stand_id not in focus or p.peer_mean <= 0:
            continue
        ratio = p.shrunk / p.peer_mean
        if ratio >= th.peers_warning:
            continue
        stand = by_id[p.stand_id]
        severity = Severity.CRITICAL if ratio < th.peers_critical else Severity.WARNING
        group_text = p.group.replace("/", ", ").replace("_", " ")
        message = (
            f"Revenue per product slot {_money(p.raw)} a day vs {_money(p.peer_mean)} at "
            f"{p.group_size} similar stands ({group_text}); allowing for chance "
            f"{round(100 * ratio)} % of peers → review the assortment and the placement"
        )
        evidence = {
            "window_days": p.days,
            "revenue_per_slot_day": _r(p.raw, 4),
            "shrunk_revenue_per_slot_day": _r(p.shrunk, 4),
            "peer_mean": _r(p.peer_mean, 4),
            "ratio_to_peers": _r(ratio, 3),
            "shrinkage_weight": _r(p.weight, 3),
            "peer_group": p.group,
            "peer_group_size": p.group_size,
            "prices": "catalog list prices",
        }
        action = {
            "type": "review_assortment",
            "stand_id": stand.id,
            "slow_movers": sorted(slow_by_stand.get(stand.id, [])),
        }
        out.append(
            Insight(
                BELOW_PEERS,
                severity,
                stand.id,
                None,
                message,
                evidence,
                action,
                f"{BELOW_PEERS}:{stand.id}:{month(stand.today)}",
            )
        )
    return out


# --------------------------------------------------------------------------- counts


def count_overdue(data: CoachData, *, th: Thresholds = DEFAULT_THRESHOLDS) -> list[Insight]:
    out = []
    limit = th.count_overdue_days
    stands_with_stock = set(np.unique(data.stand_idx).tolist())
    for si, stand in enumerate(data.stands):
        if not stand.focus or si not in stands_with_stock:
            continue
        if stand.last_count is None:
            age = (data.now - stand.created_at).days
            if age <= limit:
                continue
            severity = Severity.WARNING
            message = f"Never counted, open for {age} days → count the stand"
            bucket = "never"
            evidence: dict[str, Any] = {"last_count": None, "open_days": age, "limit_days": limit}
        else:
            ago = (data.now - stand.last_count).days
            if ago <= limit:
                continue
            severity = Severity.CRITICAL if ago > 2 * limit else Severity.WARNING
            message = f"Last count {ago} days ago (due every {limit} days) → count the stand"
            bucket = stand.last_count.date().isoformat()
            evidence = {
                "last_count": stand.last_count.isoformat(),
                "days_since": ago,
                "limit_days": limit,
            }
        out.append(
            Insight(
                COUNT_OVERDUE,
                severity,
                stand.id,
                None,
                message,
                evidence,
                {"type": "count", "stand_id": stand.id},
                f"{COUNT_OVERDUE}:{stand.id}:{bucket}",
            )
        )
    return out


# --------------------------------------------------------------------------- loyalty


def tiers_within_reach(data: CoachData, *, th: Thresholds = DEFAULT_THRESHOLDS) -> list[Insight]:
    first_stand: dict[str, StandInfo] = {}
    for s in sorted((s for s in data.stands if s.focus), key=lambda s: (s.created_at, s.id)):
        first_stand.setdefault(s.partner_id, s)
    out = []
    for pid, stand in first_stand.items():
        loyalty = data.partners.get(pid)
        if loyalty is None:
            continue
        nxt = next((t for t in data.tiers if t.rank > loyalty.tier_rank), None)
        if nxt is None or nxt.threshold_points <= 0:
            continue
        needed = nxt.threshold_points - loyalty.earned_in_window
        if needed <= 0 or needed > th.tier_reach * nxt.threshold_points:
            continue
        pace = loyalty.earned_recent / 28
        eta = math.ceil(needed / pace) if pace > 0 else None
        when = f"; about {eta} days at the current pace" if eta is not None else ""
        message = (
            f"{needed:,} points from {nxt.name} ({loyalty.earned_in_window:,} of "
            f"{nxt.threshold_points:,} earned in the last 365 days{when}) → tell the partner"
        )
        evidence = {
            "partner_id": pid,
            "tier": loyalty.tier_code,
            "next_tier": nxt.code,
            "earned_in_window": loyalty.earned_in_window,
            "threshold": nxt.threshold_points,
            "points_needed": needed,
            "points_per_day_recent": _r(pace, 1),
            "days_to_reach": eta,
        }
        action = {
            "type": "loyalty_nudge",
            "partner_id": pid,
            "tier": nxt.code,
            "points_needed": needed,
        }
        out.append(
            Insight(
                TIER_WITHIN_REACH,
                Severity.INFO,
                stand.id,
                None,
                message,
                evidence,
                action,
                f"{TIER_WITHIN_REACH}:{pid}:{nxt.code}:{month(stand.today)}",
            )
        )
    return out
