"""The coach agent: runs the whole coach over a program and keeps its insights current.

:func:`run_coach` loads the history (:mod:`app.coach.data`), forecasts every stand × SKU in
one :func:`~app.coach.forecast.forecast_batch`, computes stock-out risk and refills
(:mod:`app.coach.policy`) and the insights (:mod:`app.coach.insights`), and stores the
insights as :class:`~app.models.StandAIInsight` rows in one write transaction. The reading
and the arithmetic happen before that transaction, in a deferred (read-only) one, so the
database's write lock is held only for the few milliseconds of the upsert.

Keeping insights current (by ``dedup_key``):

- a new key is inserted as *new*;
- an existing *new* or *acknowledged* insight is updated in place (message, severity,
  evidence, action, model version, ``updated_at``) when anything changed;
- a *dismissed* or *done* insight is never reopened by the coach, with one exception: one
  the coach itself closed as "no longer applies" (below) is reopened as *new* when its
  condition returns within the same period bucket;
- an open insight of the run's stands that the run no longer produces *no longer applies*:
  a *new* one (nobody looked at it) is deleted, an *acknowledged* one (someone did) is
  closed as *done* with the reason :data:`RETIRED_REASON`, so whoever acknowledged it sees
  that it resolved itself. Only the coach's own kinds are touched
  (:data:`app.coach.insights.KINDS`).

Coach runs write no change-log ops: insights are derived data that every device computes
from the facts it already syncs, and thousands of rewritten rows a day would flood the
outbox. What a *person* does with an insight (acknowledge, dismiss, done) is a user action
and is logged like every other one (``insight.acknowledge`` / ``insight.dismiss`` /
``insight.done``), with the ``dedup_key`` in the payload so another device applies the
status to its own row for the same insight.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy import Table, bindparam, case, delete, insert, select, update
from sqlalchemy.orm import Session

from app.coach import forecast as fc
from app.coach import insights as rules
from app.coach.data import DEFAULT_DAYS, CoachData, load_coach_data
from app.coach.insights import DEFAULT_THRESHOLDS, Insight, Thresholds
from app.coach.policy import (
    DEFAULT_LEAD_DAYS,
    DEFAULT_SERVICE,
    PolicyResult,
    RefillArrays,
    RefillRecommendation,
    days_of_cover,
    evaluate,
    recommendations,
)
from app.errors import InvalidTransition, ValidationError
from app.ids import new_id
from app.models import (
    InsightStatus,
    Product,
    Severity,
    StandAIInsight,
    StandLocation,
)
from app.rules import round_money
from app.services.base import (
    STAFF,
    Actor,
    get_or_404,
    optional_text,
    record_op,
    require_text,
    to_json,
    to_time,
    transactional,
)

#: Version of the coach's rules, stored with every insight (with the forecast's version).
COACH_VERSION = "coach-1"
#: ``status_reason`` of an acknowledged insight the coach closed because it no longer holds.
RETIRED_REASON = "No longer applies (closed by the coach)."
#: Days the stand outlook forecasts at least.
OUTLOOK_DAYS = 14
OPEN_STATUSES = (InsightStatus.NEW, InsightStatus.ACKNOWLEDGED)

Array = np.ndarray[Any, Any]


def model_version() -> str:
    forecast_version = getattr(fc, "MODEL_VERSION", None) or getattr(fc, "VERSION", None)
    return f"{COACH_VERSION}/{forecast_version}" if forecast_version else COACH_VERSION


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class StandRisk:
    """One stand's stock-out outlook, for ordering visits."""

    stand_id: str
    stand_name: str
    next_visit: date
    days_to_visit: int
    #: The highest SKU probability of running out before the visit.
    max_risk: float
    #: P(at least one SKU runs out), taking the SKUs as independent.
    any_risk: float
    skus_at_risk: int
    refill_units: int
    refill_value: Decimal


@dataclass(frozen=True)
class CoachRun:
    at: datetime
    model_version: str
    stands: int
    series: int
    service: float
    lead_days: int
    #: What this run found (sorted: critical first).
    insights: tuple[Insight, ...]
    #: Per SKU with a refill to make (quantity > 0), riskiest first.
    recommendations: tuple[RefillRecommendation, ...]
    stand_risks: tuple[StandRisk, ...]
    created: int
    updated: int
    unchanged: int
    reopened: int
    #: Found again but dismissed or done by a person: left closed.
    kept_closed: int
    #: Open insights that no longer apply: deleted (new) or closed as done (acknowledged).
    retired: int
    #: Seconds spent per step: load, forecast, policy, insights, store.
    timings: tuple[tuple[str, float], ...]
    #: The names of the stands the run covered, by id.
    stand_names: dict[str, str]


@dataclass(frozen=True)
class InsightView:
    """A stored insight as the GUI and the command line show it."""

    id: str
    stand_id: str
    stand_name: str
    product_id: str | None
    sku: str | None
    product_name: str | None
    kind: str
    severity: Severity
    status: InsightStatus
    message: str
    action: dict[str, Any]
    evidence: dict[str, Any]
    model_version: str
    dedup_key: str
    status_reason: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class SkuOutlook:
    product_id: str
    sku: str
    name: str
    on_hand: int
    on_order: int
    #: Expected units per day from today, for ``StandOutlook.horizon`` days.
    forecast: tuple[float, ...]
    #: Days until the expected demand uses up the stock on hand (None: nothing sells).
    days_of_cover: float | None
    stockout_risk: float
    expected_before_visit: float
    demand_class: str
    method: str
    recommendation: RefillRecommendation


@dataclass(frozen=True)
class StandOutlook:
    stand_id: str
    stand_name: str
    today: date
    next_visit: date
    days_to_visit: int
    review_days: int
    lead_days: int
    service: float
    horizon: int
    model_version: str
    skus: tuple[SkuOutlook, ...]
    #: The recommended refill: product id -> units (only quantities above 0).
    quantities: dict[str, int]
    refill_units: int
    refill_value: Decimal


# --------------------------------------------------------------------------- analysis


@contextmanager
def _reading(session: Session) -> Iterator[None]:
    """A read transaction that does not take SQLite's write lock (inside the caller's
    transaction when there is one)."""
    if session.in_transaction():
        yield
        return
    with session.begin():
        session.connection(execution_options={"sqlite_begin": "DEFERRED"})
        yield


@dataclass(frozen=True)
class _Analysis:
    data: CoachData
    idx: Array  # focus series
    forecast: fc.BatchForecast  # of the focus series, in ``idx`` order
    horizon: int
    sub: PolicyResult  # of the focus series, in ``idx`` order
    policy: PolicyResult  # full length (zeros outside the focus)
    version: str


def _scatter(values: Array, idx: Array, n: int) -> Array:
    out = np.zeros(n, dtype=values.dtype)
    out[idx] = values
    return out


def _analyse(data: CoachData, *, service: float, lead_days: int, min_horizon: int = 1) -> _Analysis:
    idx = np.nonzero(data.focus)[0]
    review = data.review_days[idx]
    visit = data.days_to_visit[idx]
    horizon = int(
        max(
            min_horizon,
            int(review.max(initial=1)) + lead_days,
            int(visit.max(initial=1)),
        )
    )
    forecast = fc.forecast_batch(
        data.demand[idx],
        horizon,
        peer_rate=data.peer_rate[idx],
    )
    sub = evaluate(
        forecast,
        on_hand=data.on_hand[idx],
        on_order=data.on_order[idx],
        capacity=data.capacity[idx],
        pack_size=data.pack_size[idx],
        review_days=review,
        days_to_visit=visit,
        arriving=data.arriving[idx],
        arrival_days=data.arrival_days[idx],
        lead_days=lead_days,
        service=service,
    )
    n = data.n
    r = sub.refill
    policy = PolicyResult(
        expected_before_visit=_scatter(sub.expected_before_visit, idx, n),
        risk=_scatter(sub.risk, idx, n),
        target=_scatter(sub.target, idx, n),
        refill=RefillArrays(
            position=_scatter(r.position, idx, n),
            need=_scatter(r.need, idx, n),
            room=_scatter(r.room, idx, n),
            quantity=_scatter(r.quantity, idx, n),
            packs=_scatter(r.packs, idx, n),
            capped=_scatter(r.capped, idx, n),
        ),
        dead=_scatter(sub.dead, idx, n),
    )
    return _Analysis(data, idx, forecast, horizon, sub, policy, model_version())


def _recommend(
    a: _Analysis, positions: Sequence[int], *, service: float, lead_days: int
) -> list[RefillRecommendation]:
    """Recommendations for focus positions (indices into ``a.idx``)."""
    d = a.data
    idx = a.idx.tolist()
    return recommendations(
        a.sub,
        a.forecast,
        positions,
        stand_ids=[d.stands[int(d.stand_idx[i])].id for i in idx],
        product_ids=[d.product_ids[i] for i in idx],
        skus=[d.skus[i] for i in idx],
        names=[d.names[i] for i in idx],
        list_price=[d.list_price[i] for i in idx],
        on_hand=d.on_hand[a.idx],
        on_order=d.on_order[a.idx],
        capacity=d.capacity[a.idx],
        pack_size=d.pack_size[a.idx],
        review_days=d.review_days[a.idx],
        days_to_visit=d.days_to_visit[a.idx],
        arriving=d.arriving[a.idx],
        lead_days=lead_days,
        service=service,
    )


def _trend_insights(a: _Analysis, th: Thresholds) -> list[Insight]:
    """Forecast the last ``th.trend_days`` days from the history before them, for the focus
    series with enough in-stock days in both parts, and test the error."""
    d = a.data
    k = th.trend_days
    if d.days < k + 28:
        return []
    recent = ~np.isnan(d.demand[a.idx, -k:])
    before = ~np.isnan(d.demand[a.idx, :-k])
    sold_before = np.nansum(d.demand[a.idx, -k - 28 : -k], axis=1)
    sold_recent = np.nansum(d.demand[a.idx, -k:], axis=1)
    # Something to compare: enough in-stock days, and some sales on one side or the other.
    ok = (
        (recent.sum(axis=1) >= th.trend_min_days)
        & (before.sum(axis=1) >= 28)
        & ((sold_before + sold_recent) >= th.trend_min_units)
    )
    series = a.idx[ok]
    if series.size == 0:
        return []
    back = fc.forecast_batch(d.demand[series, :-k], k, peer_rate=d.peer_rate[series])
    return rules.trend_breaks(d, back.mean, back.dispersion, series=series, th=th)


def _stand_risks(a: _Analysis) -> list[StandRisk]:
    d = a.data
    out = []
    by_stand: dict[int, list[int]] = {}
    for i in a.idx.tolist():
        by_stand.setdefault(int(d.stand_idx[i]), []).append(i)
    p = a.policy
    for si, series in by_stand.items():
        s = d.stands[si]
        risks = p.risk[series]
        qty = p.refill.quantity[series]
        value = sum(
            (round_money(d.list_price[i] * int(p.refill.quantity[i])) for i in series),
            Decimal(0),
        )
        out.append(
            StandRisk(
                stand_id=s.id,
                stand_name=s.name,
                next_visit=s.next_visit,
                days_to_visit=s.days_to_visit,
                max_risk=round(float(risks.max(initial=0.0)), 4),
                any_risk=round(float(1 - np.prod(1 - np.clip(risks, 0, 1))), 4),
                skus_at_risk=int((risks >= DEFAULT_THRESHOLDS.risk_warning).sum()),
                refill_units=int(qty.sum()),
                refill_value=value,
            )
        )
    out.sort(key=lambda r: (-r.any_risk, -r.max_risk, r.stand_name, r.stand_id))
    return out


def _check_service(service: float) -> None:
    if not isinstance(service, float | int) or not 0.5 <= float(service) < 1:
        raise ValidationError(
            "The service level must be at least 0.5 and below 1 (e.g. 0.95).", field="service"
        )


def run_coach(
    session: Session,
    *,
    stand_ids: Sequence[str] | None = None,
    now: datetime | None = None,
    service: float = DEFAULT_SERVICE,
    lead_days: int = DEFAULT_LEAD_DAYS,
    days: int = DEFAULT_DAYS,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> CoachRun:
    """Run the coach over ``stand_ids`` (default: every active stand) as of ``now`` and keep
    the stored insights current (see the module docstring)."""
    _check_service(service)
    at = to_time(now)
    timings: list[tuple[str, float]] = []
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        t = time.perf_counter()
        timings.append((name, round(t - clock, 4)))
        clock = t

    with _reading(session):
        data = load_coach_data(session, stand_ids=stand_ids, now=at, days=days, lead_days=lead_days)
    lap("load")
    a = _analyse(data, service=service, lead_days=lead_days)
    lap("forecast")
    qty = a.policy.refill.quantity[a.idx]
    positions = [int(j) for j in np.nonzero(qty > 0)[0]]
    positions.sort(key=lambda j: -float(a.policy.risk[a.idx[j]]))
    recs = _recommend(a, positions, service=service, lead_days=lead_days)
    risks = _stand_risks(a)
    lap("policy")
    th = thresholds
    slow = rules.slow_movers(data, th=th)
    found = [
        *rules.stockout_risk(data, a.policy, service=service, th=th),
        *slow,
        *rules.under_faced(data, a.policy, service=service, th=th),
        *_trend_insights(a, th),
        *rules.below_peers(data, th=th, slow=slow),
        *rules.count_overdue(data, th=th),
        *rules.tiers_within_reach(data, th=th),
    ]
    found.sort(key=rules.sort_key)
    lap("insights")
    focus_ids = [s.id for s in data.stands if s.focus]
    counts = _store(session, found, focus_ids, at, a.version, everything=stand_ids is None)
    lap("store")
    return CoachRun(
        at=at,
        model_version=a.version,
        stands=len(focus_ids),
        series=int(a.idx.size),
        service=service,
        lead_days=lead_days,
        insights=tuple(found),
        recommendations=tuple(recs),
        stand_risks=tuple(risks),
        timings=tuple(timings),
        stand_names={s.id: s.name for s in data.stands if s.focus},
        **counts,
    )


# --------------------------------------------------------------------------- storing


def _text(value: dict[str, Any]) -> str:
    return to_json(value)


@transactional
def _store(
    session: Session,
    found: Sequence[Insight],
    stand_ids: Sequence[str],
    at: datetime,
    version: str,
    *,
    everything: bool,
) -> dict[str, int]:
    ins = StandAIInsight
    keys = {i.dedup_key for i in found}
    in_scope = set(stand_ids)
    cols = (
        ins.id,
        ins.stand_id,
        ins.dedup_key,
        ins.status,
        ins.status_reason,
        ins.severity,
        ins.message,
        ins.action,
        ins.evidence,
        ins.model_version,
    )
    rows: dict[str, Any] = {}
    scope = select(*cols).where(ins.kind.in_(rules.KINDS))
    if not everything:
        scope = scope.where(ins.stand_id.in_(list(in_scope)))
    for row in session.execute(scope):
        if row.stand_id in in_scope:
            rows[row.dedup_key] = row
    # Keys of this run stored on a stand outside the scope (a partner's tier insight).
    outside = [k for k in keys if k not in rows]
    for start in range(0, len(outside), 500):
        for row in session.execute(
            select(*cols).where(ins.dedup_key.in_(outside[start : start + 500]))
        ):
            rows[row.dedup_key] = row

    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    created = updated = unchanged = reopened = kept = 0
    for i in found:
        action, evidence = _text(i.action), _text(i.evidence)
        stored = rows.get(i.dedup_key)
        values = {
            "severity": i.severity,
            "message": i.message,
            "action": action,
            "evidence": evidence,
            "model_version": version,
        }
        if stored is None:
            inserts.append(
                {
                    "id": new_id(),
                    "stand_id": i.stand_id,
                    "product_id": i.product_id,
                    "kind": i.kind,
                    "dedup_key": i.dedup_key,
                    "status": InsightStatus.NEW,
                    "status_reason": None,
                    "created_at": at,
                    "updated_at": at,
                    **values,
                }
            )
            created += 1
            continue
        status = InsightStatus(stored.status)
        if status in OPEN_STATUSES:
            same = (
                stored.severity == i.severity
                and stored.message == i.message
                and stored.action == action
                and stored.evidence == evidence
                and stored.model_version == version
            )
            if same:
                unchanged += 1
                continue
            updates.append(
                {
                    "b_id": stored.id,
                    "status": status,
                    "status_reason": stored.status_reason,
                    "updated_at": at,
                    **values,
                }
            )
            updated += 1
        elif status == InsightStatus.DONE and stored.status_reason == RETIRED_REASON:
            updates.append(
                {
                    "b_id": stored.id,
                    "status": InsightStatus.NEW,
                    "status_reason": None,
                    "updated_at": at,
                    **values,
                }
            )
            reopened += 1
        else:
            kept += 1

    retire_done: list[dict[str, Any]] = []
    remove: list[str] = []
    for key, row in rows.items():
        if key in keys or row.stand_id not in in_scope:
            continue
        status = InsightStatus(row.status)
        if status == InsightStatus.NEW:
            remove.append(row.id)
        elif status == InsightStatus.ACKNOWLEDGED:
            retire_done.append({"b_id": row.id, "updated_at": at})

    # Core statements on the table: executemany, no ORM bookkeeping per row.
    table = StandAIInsight.__table__
    assert isinstance(table, Table)
    conn = session.connection()
    if inserts:
        conn.execute(insert(table), inserts)
    if updates:
        conn.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(
                status=bindparam("status"),
                status_reason=bindparam("status_reason"),
                severity=bindparam("severity"),
                message=bindparam("message"),
                action=bindparam("action"),
                evidence=bindparam("evidence"),
                model_version=bindparam("model_version"),
                updated_at=bindparam("updated_at"),
            ),
            updates,
        )
    if retire_done:
        conn.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(
                status=InsightStatus.DONE,
                status_reason=RETIRED_REASON,
                updated_at=bindparam("updated_at"),
            ),
            retire_done,
        )
    for start in range(0, len(remove), 500):
        conn.execute(delete(table).where(table.c.id.in_(remove[start : start + 500])))
    return {
        "created": created,
        "updated": updated,
        "unchanged": unchanged,
        "reopened": reopened,
        "kept_closed": kept,
        "retired": len(remove) + len(retire_done),
    }


# --------------------------------------------------------------------------- outlook


def stand_outlook(
    session: Session,
    stand_id: str,
    *,
    now: datetime | None = None,
    service: float = DEFAULT_SERVICE,
    lead_days: int = DEFAULT_LEAD_DAYS,
    days: int = DEFAULT_DAYS,
) -> StandOutlook:
    """Per SKU of one stand: the daily forecast, days of cover, the risk of running out
    before the next visit and the recommended refill with its reason. Reads only."""
    _check_service(service)
    at = to_time(now)
    with _reading(session):
        data = load_coach_data(
            session,
            stand_ids=[stand_id],
            now=at,
            days=days,
            lead_days=lead_days,
            with_loyalty=False,
        )
    stand = next(s for s in data.stands if s.focus)
    a = _analyse(data, service=service, lead_days=lead_days, min_horizon=OUTLOOK_DAYS)
    positions = list(range(a.idx.size))
    recs = _recommend(a, positions, service=service, lead_days=lead_days)
    mean = np.asarray(a.forecast.mean, dtype=np.float64)
    cover = days_of_cover(data.on_hand[a.idx], mean)
    classes = np.asarray(a.forecast.demand_class)
    methods = np.asarray(a.forecast.method)
    skus = []
    for j, i in enumerate(a.idx.tolist()):
        c = float(cover[j])
        skus.append(
            SkuOutlook(
                product_id=data.product_ids[i],
                sku=data.skus[i],
                name=data.names[i],
                on_hand=int(data.on_hand[i]),
                on_order=int(data.on_order[i]),
                forecast=tuple(round(float(x), 3) for x in mean[j]),
                days_of_cover=round(c, 1) if np.isfinite(c) else None,
                stockout_risk=round(float(a.policy.risk[i]), 4),
                expected_before_visit=round(float(a.policy.expected_before_visit[i]), 2),
                demand_class=str(classes[j]),
                method=str(methods[j]),
                recommendation=recs[j],
            )
        )
    skus.sort(key=lambda s: (-s.stockout_risk, s.name.casefold(), s.sku))
    quantities = {r.product_id: r.quantity for r in recs if r.quantity > 0}
    return StandOutlook(
        stand_id=stand.id,
        stand_name=stand.name,
        today=stand.today,
        next_visit=stand.next_visit,
        days_to_visit=stand.days_to_visit,
        review_days=stand.cadence_days,
        lead_days=lead_days,
        service=service,
        horizon=a.horizon,
        model_version=a.version,
        skus=tuple(skus),
        quantities=quantities,
        refill_units=sum(quantities.values()),
        refill_value=sum((r.value for r in recs), Decimal(0)),
    )


# --------------------------------------------------------------------------- reading insights

_SEVERITY_ORDER = case(
    (StandAIInsight.severity == Severity.CRITICAL, 0),
    (StandAIInsight.severity == Severity.WARNING, 1),
    else_=2,
)


def _as_tuple(value: Any, enum: Any, label: str, field: str) -> tuple[Any, ...] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, str) else list(value)
    out = []
    for item in items:
        try:
            out.append(enum(item))
        except ValueError:
            allowed = ", ".join(str(e.value) for e in enum)
            raise ValidationError(
                f"{item!r} is not an insight {label}; use one of: {allowed}.", field=field
            ) from None
    return tuple(out)


def _kinds(value: str | Iterable[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, str) else list(value)
    for item in items:
        if item not in rules.KINDS:
            raise ValidationError(
                f"{item!r} is not an insight kind; use one of: {', '.join(rules.KINDS)}.",
                field="kind",
            )
    return tuple(items)


def _view_query() -> Any:
    ins = StandAIInsight
    return (
        select(ins, StandLocation.name, Product.sku, Product.name)
        .join(StandLocation, StandLocation.id == ins.stand_id)
        .outerjoin(Product, Product.id == ins.product_id)
    )


def _view(row: StandAIInsight, stand_name: str, sku: str | None, name: str | None) -> InsightView:
    return InsightView(
        id=row.id,
        stand_id=row.stand_id,
        stand_name=stand_name,
        product_id=row.product_id,
        sku=sku,
        product_name=name,
        kind=row.kind,
        severity=Severity(row.severity),
        status=InsightStatus(row.status),
        message=row.message,
        action=json.loads(row.action or "{}"),
        evidence=json.loads(row.evidence or "{}"),
        model_version=row.model_version,
        dedup_key=row.dedup_key,
        status_reason=row.status_reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


@transactional
def list_insights(
    session: Session,
    *,
    kind: str | Iterable[str] | None = None,
    severity: str | Iterable[str] | None = None,
    status: str | Iterable[str] | None = OPEN_STATUSES,
    stand_id: str | None = None,
    rep: str | None = None,
    limit: int | None = None,
) -> list[InsightView]:
    """Stored insights, critical first, then the most recently updated. ``status=None``
    lists every status; by default the open ones (new and acknowledged). ``rep`` keeps
    the stands assigned to that rep."""
    kinds = _kinds(kind)
    severities = _as_tuple(severity, Severity, "severity", "severity")
    statuses = _as_tuple(status, InsightStatus, "status", "status")
    ins = StandAIInsight
    q = _view_query()
    if kinds is not None:
        q = q.where(ins.kind.in_(kinds))
    if severities is not None:
        q = q.where(ins.severity.in_(severities))
    if statuses is not None:
        q = q.where(ins.status.in_(statuses))
    if stand_id is not None:
        q = q.where(ins.stand_id == stand_id)
    if rep is not None:
        q = q.where(StandLocation.assigned_rep == rep)
    q = q.order_by(_SEVERITY_ORDER, ins.updated_at.desc(), StandLocation.name, ins.kind, ins.id)
    if limit is not None:
        q = q.limit(limit)
    return [_view(*row) for row in session.execute(q)]


@transactional
def get_insight(session: Session, insight_id: str) -> InsightView:
    get_or_404(session, StandAIInsight, insight_id, "insight")
    row = session.execute(_view_query().where(StandAIInsight.id == insight_id)).one()
    return _view(*row)


# --------------------------------------------------------------------------- acting on insights


_OPS = {
    InsightStatus.ACKNOWLEDGED: "insight.acknowledge",
    InsightStatus.DISMISSED: "insight.dismiss",
    InsightStatus.DONE: "insight.done",
}


#: What a person does to an insight, for the permission message.
_VERBS = {
    InsightStatus.ACKNOWLEDGED: "acknowledge",
    InsightStatus.DISMISSED: "dismiss",
    InsightStatus.DONE: "complete",
}


def op_type_of(to: InsightStatus) -> str:
    """The change-log op type of a decision (``insight.acknowledge``...)."""
    return _OPS[to]


def require_decider(actor: Actor, to: InsightStatus) -> None:
    """Only staff decide on coach insights."""
    actor.require(STAFF, f"{_VERBS[to]} coach insights")


def check_decision(before: InsightStatus, to: InsightStatus) -> None:
    """The from-state guard of a decision: only a new insight is acknowledged, only an open
    one is dismissed or done."""
    allowed = (InsightStatus.NEW,) if to == InsightStatus.ACKNOWLEDGED else OPEN_STATUSES
    if before not in allowed:
        raise InvalidTransition(
            f"This insight is already {before.value}; it cannot be {to.value} now.",
            field="status",
        )


def decision_reason(to: InsightStatus, reason: str | None) -> str | None:
    """The reason stored with a decision: required to dismiss, optional when done, none to
    acknowledge."""
    if to == InsightStatus.DISMISSED:
        return require_text(reason, "reason", "A reason for dismissing", max_len=500)
    if to == InsightStatus.DONE:
        return optional_text(reason, "note", "Note", max_len=500)
    return None


def _transition(
    session: Session,
    actor: Actor,
    insight_id: str,
    to: InsightStatus,
    reason: str | None,
    now: datetime | None,
) -> InsightView:
    require_decider(actor, to)
    row = get_or_404(session, StandAIInsight, insight_id, "insight")
    before = InsightStatus(row.status)
    check_decision(before, to)
    at = to_time(now)
    row.status = to
    row.status_reason = reason
    row.updated_at = at
    session.flush()
    record_op(
        session,
        _OPS[to],
        row.id,
        {
            "insight_id": row.id,
            "dedup_key": row.dedup_key,
            "stand_id": row.stand_id,
            "kind": row.kind,
            "from": before,
            "to": to,
            "reason": reason,
            "at": at,
            # The row itself: a device whose coach did not make it can still record the
            # decision (insight rows are made on each device, so their ids differ).
            "insight": {
                "product_id": row.product_id,
                "severity": row.severity,
                "message": row.message,
                "action": row.action,
                "evidence": row.evidence,
                "model_version": row.model_version,
                "created_at": row.created_at,
            },
        },
        actor,
    )
    view = session.execute(_view_query().where(StandAIInsight.id == row.id)).one()
    return _view(*view)


@transactional
def acknowledge_insight(
    session: Session, actor: Actor, insight_id: str, *, now: datetime | None = None
) -> InsightView:
    """Mark a new insight as seen: it stays open, and the coach keeps it up to date."""
    return _transition(session, actor, insight_id, InsightStatus.ACKNOWLEDGED, None, now)


@transactional
def dismiss_insight(
    session: Session,
    actor: Actor,
    insight_id: str,
    reason: str | None,
    *,
    now: datetime | None = None,
) -> InsightView:
    """Close an open insight as not useful, saying why; the coach will not reopen it."""
    text = decision_reason(InsightStatus.DISMISSED, reason)
    return _transition(session, actor, insight_id, InsightStatus.DISMISSED, text, now)


@transactional
def mark_insight_done(
    session: Session,
    actor: Actor,
    insight_id: str,
    note: str | None = None,
    *,
    now: datetime | None = None,
) -> InsightView:
    """Close an open insight as acted upon; the coach will not reopen it."""
    text = decision_reason(InsightStatus.DONE, note)
    return _transition(session, actor, insight_id, InsightStatus.DONE, text, now)
