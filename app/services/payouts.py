"""Partner commission payouts per period: draft -> scheduled -> paid.

Commission = (sum of the partner's sale totals in the period, voids subtracted)
x the package's commission rate, rounded to cents (:func:`app.rules.commission`).
A period is a range of calendar days in the program's time zone, inclusive at both ends.
Orders count in the period they happened in, so a void of an earlier period's sale lowers
this period; a period whose voids outweigh its sales has a negative amount, a clawback to
settle against the partner's next payment (never silently dropped).

Computing a period is idempotent: a partner gets at most one payout per period. A draft is
brought up to date if late sales arrive (it has not been promised to anyone yet); a
scheduled or paid payout is never recomputed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from app.errors import InvalidTransition, ValidationError
from app.ids import new_id
from app.models import OrderKind, Package, Payout, PayoutStatus, StandOrder, StandPartner
from app.rules import PROGRAM_TIMEZONE, commission, local_date
from app.services.base import (
    MANAGERS,
    Actor,
    get_or_404,
    optional_text,
    record_op,
    to_time,
    transactional,
)


@dataclass(frozen=True)
class PayoutResult:
    payout_id: str
    partner_id: str
    period_start: date
    period_end: date
    sales_total: Decimal
    order_count: int
    commission_rate: Decimal
    amount: Decimal
    status: PayoutStatus
    created: bool
    updated: bool


def _result(p: Payout, created: bool = False, updated: bool = False) -> PayoutResult:
    return PayoutResult(
        p.id,
        p.partner_id,
        p.period_start,
        p.period_end,
        p.sales_total,
        p.order_count,
        p.commission_rate,
        p.amount,
        p.status,
        created,
        updated,
    )


def period_bounds(start: date, end: date, tz: str = PROGRAM_TIMEZONE) -> tuple[datetime, datetime]:
    """UTC instants [from, to) covering local days ``start``..``end`` inclusive."""
    zone = ZoneInfo(tz)
    lo = datetime.combine(start, time(0), zone)
    hi = datetime.combine(end + timedelta(days=1), time(0), zone)
    return lo, hi


@transactional
def compute_payouts(
    session: Session,
    actor: Actor,
    period_start: date,
    period_end: date,
    *,
    partner_id: str | None = None,
    now: datetime | None = None,
) -> list[PayoutResult]:
    """Create or refresh the draft payout of every partner with sales in the period."""
    actor.require(MANAGERS, "compute payouts")
    if period_end < period_start:
        raise ValidationError("The period ends before it starts.", field="period_end")
    at = to_time(now)
    if period_end >= local_date(at):
        raise ValidationError("Payouts are computed for finished periods only.", field="period_end")
    lo, hi = period_bounds(period_start, period_end)
    query = (
        select(
            StandOrder.partner_id,
            func.coalesce(func.sum(StandOrder.total), 0),
            # sales not voided: a void counts against the sale it undoes
            func.sum(case((StandOrder.kind == OrderKind.SALE, 1), else_=-1)),
        )
        .where(StandOrder.occurred_at >= lo, StandOrder.occurred_at < hi)
        .group_by(StandOrder.partner_id)
        .order_by(StandOrder.partner_id)
    )
    if partner_id:
        get_or_404(session, StandPartner, partner_id, "partner")
        query = query.where(StandOrder.partner_id == partner_id)
    results = []
    for pid, total, count in session.execute(query).all():
        sales_total = Decimal(total)
        partner = session.get_one(StandPartner, pid)
        rate = session.get_one(Package, partner.package_id).commission_rate
        amount = commission(sales_total, rate)
        payout = session.scalars(
            select(Payout).where(
                Payout.partner_id == pid,
                Payout.period_start == period_start,
                Payout.period_end == period_end,
            )
        ).first()
        if payout is None:
            payout = Payout(
                id=new_id(),
                partner_id=pid,
                period_start=period_start,
                period_end=period_end,
                sales_total=sales_total,
                order_count=count,
                commission_rate=rate,
                amount=amount,
                status=PayoutStatus.DRAFT,
                created_at=at,
                updated_at=at,
            )
            session.add(payout)
            created, updated = True, False
        elif payout.status == PayoutStatus.DRAFT and (
            payout.sales_total,
            payout.order_count,
            payout.amount,
        ) != (sales_total, count, amount):
            payout.sales_total, payout.order_count = sales_total, count
            payout.commission_rate, payout.amount, payout.updated_at = rate, amount, at
            created, updated = False, True
        else:
            results.append(_result(payout))
            continue
        session.flush()
        record_op(
            session,
            "payout.compute",
            payout.id,
            {
                "payout_id": payout.id,
                "partner_id": pid,
                "period_start": period_start,
                "period_end": period_end,
                "sales_total": sales_total,
                "order_count": count,
                "commission_rate": rate,
                "amount": amount,
                "at": at,
            },
            actor,
        )
        results.append(_result(payout, created, updated))
    return results


def check_schedule(payout: Payout, pay_on: date, at: datetime) -> None:
    """Only a draft can be scheduled, and not for a day already past at ``at``."""
    if payout.status != PayoutStatus.DRAFT:
        raise InvalidTransition(
            f"This payout is {payout.status.value}; only a draft can be scheduled.", field="status"
        )
    if pay_on < local_date(at):
        raise ValidationError("The payment date is in the past.", field="pay_on")


def check_payable(payout: Payout) -> None:
    """Only a scheduled payout can be paid."""
    if payout.status != PayoutStatus.SCHEDULED:
        raise InvalidTransition(
            f"This payout is {payout.status.value}; only a scheduled payout can be paid.",
            field="status",
        )


@transactional
def schedule_payout(
    session: Session, actor: Actor, payout_id: str, pay_on: date, *, now: datetime | None = None
) -> PayoutResult:
    actor.require(MANAGERS, "schedule payouts")
    payout = get_or_404(session, Payout, payout_id, "payout")
    at = to_time(now)
    check_schedule(payout, pay_on, at)
    payout.status, payout.scheduled_for, payout.updated_at = PayoutStatus.SCHEDULED, pay_on, at
    session.flush()
    record_op(
        session,
        "payout.schedule",
        payout.id,
        {"payout_id": payout.id, "scheduled_for": pay_on, "at": at},
        actor,
    )
    return _result(payout, updated=True)


@transactional
def mark_payout_paid(
    session: Session,
    actor: Actor,
    payout_id: str,
    reference: str | None = None,
    *,
    now: datetime | None = None,
) -> PayoutResult:
    actor.require(MANAGERS, "mark payouts as paid")
    payout = get_or_404(session, Payout, payout_id, "payout")
    check_payable(payout)
    at = to_time(now)
    payout.status, payout.paid_at, payout.updated_at = PayoutStatus.PAID, at, at
    payout.payment_reference = optional_text(
        reference, "reference", "Payment reference", max_len=64
    )
    session.flush()
    record_op(
        session,
        "payout.paid",
        payout.id,
        {"payout_id": payout.id, "paid_at": at, "reference": payout.payment_reference},
        actor,
    )
    return _result(payout, updated=True)


@transactional
def list_payouts(
    session: Session, *, partner_id: str | None = None, status: PayoutStatus | None = None
) -> list[PayoutResult]:
    query = select(Payout).order_by(Payout.period_start.desc(), Payout.partner_id)
    if partner_id:
        query = query.where(Payout.partner_id == partner_id)
    if status:
        query = query.where(Payout.status == status)
    return [_result(p) for p in session.scalars(query)]
