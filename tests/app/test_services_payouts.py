"""Partner commission payouts: computing a period, idempotency, refresh, and the lifecycle."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.orm import Session

from app.db import SessionFactory
from app.errors import InvalidTransition, NotFound, PermissionDenied, ValidationError
from app.ids import new_id
from app.models import Payout, PayoutStatus, Product
from app.rules import commission
from app.services import payouts, sales
from app.services.sales import SaleLine
from tests.conftest import ADMIN, MANAGER, PARTNER, REP, CatalogProduct, make_stand
from tests.helpers import Watch, assert_readable, reading

JAN_START, JAN_END = date(2024, 1, 1), date(2024, 1, 31)
NOW = datetime(2024, 2, 15, 12, 0, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@dataclass(frozen=True)
class Program:
    growth_partner: str
    growth_stand: str
    starter_partner: str
    starter_stand: str


@pytest.fixture
def program(factory: SessionFactory, catalog: list[CatalogProduct]) -> Program:
    """A Growth partner (12%) and a Starter partner (10%), both active, no sales yet.

    Both stands carry P-1000 (10.00), P-2380 (23.80) and P-1005 (10.05).
    """
    with factory() as s, s.begin():
        for sku, price in (("P-1000", "10.00"), ("P-2380", "23.80"), ("P-1005", "10.05")):
            s.add(
                Product(
                    sku=sku,
                    name=f"Test {sku}",
                    category="snacks",
                    list_price=Decimal(price),
                    unit_cost=Decimal("1.00"),
                )
            )
    skus = ["P-1000", "P-2380", "P-1005"]
    with factory() as s:
        g = make_stand(s, "growth", name="Kiosk Nord", products=skus)
        st = make_stand(s, "starter", name="Bäckerei Süd", products=skus)
    return Program(g.partner_id, g.stand_id, st.partner_id, st.stand_id)


def sell(session: Session, stand_id: str, sku: str, at: datetime, qty: int = 1) -> str:
    return sales.record_sale(
        session, REP, stand_id, [SaleLine(sku, qty)], "cash", occurred_at=at
    ).order_id


def payout_row(factory: SessionFactory, payout_id: str) -> Payout:
    with reading(factory) as s:
        return s.get_one(Payout, payout_id)


# --------------------------------------------------------------------------- computing


def test_commission_for_a_period_with_voids(
    factory: SessionFactory, program: Program, session: Session
) -> None:
    g = program.growth_stand
    sell(session, g, "P-1000", utc(2024, 1, 5, 10), qty=2)  # 20.00
    sell(session, g, "P-2380", utc(2024, 1, 20, 10))  # 23.80
    voided = sell(session, g, "P-1000", utc(2024, 1, 25, 10))  # 10.00 ...
    sales.void_sale(session, REP, voided, occurred_at=utc(2024, 1, 26, 10))  # ... voided
    sell(session, g, "P-2380", utc(2024, 2, 2, 10))  # February: not this period

    watch = Watch(factory)
    (result,) = payouts.compute_payouts(session, MANAGER, JAN_START, JAN_END, now=NOW)
    # (20.00 + 23.80 + 10.00 - 10.00) x 0.12 = 5.256 -> 5.26
    assert result.partner_id == program.growth_partner
    assert (result.period_start, result.period_end) == (JAN_START, JAN_END)
    assert result.sales_total == Decimal("43.80")
    assert result.commission_rate == Decimal("0.12")
    assert result.amount == Decimal("5.26") == commission(Decimal("43.80"), Decimal("0.12"))
    assert result.status == PayoutStatus.DRAFT
    assert (result.created, result.updated) == (True, False)

    row = payout_row(factory, result.payout_id)
    assert (
        row.partner_id,
        row.period_start,
        row.period_end,
        row.sales_total,
        row.commission_rate,
        row.amount,
        row.status,
        row.currency,
    ) == (
        program.growth_partner,
        JAN_START,
        JAN_END,
        Decimal("43.80"),
        Decimal("0.12"),
        Decimal("5.26"),
        PayoutStatus.DRAFT,
        "EUR",
    )
    (op,) = watch.ops()
    assert (op.op_type, op.entity_id, op.actor) == (
        "payout.compute",
        result.payout_id,
        MANAGER.user,
    )
    assert Decimal(op.payload["amount"]) == Decimal("5.26")
    assert Decimal(op.payload["sales_total"]) == Decimal("43.80")
    assert op.payload["period_start"] == "2024-01-01"
    assert op.payload["period_end"] == "2024-01-31"
    assert watch.added() == {"payout": 1, "change_log": 1}


def test_order_count_counts_sales(
    factory: SessionFactory, program: Program, session: Session
) -> None:
    for d in (3, 4, 5):
        sell(session, program.growth_stand, "P-1000", utc(2024, 1, d, 9))
    (result,) = payouts.compute_payouts(session, MANAGER, JAN_START, JAN_END, now=NOW)
    assert result.order_count == 3
    assert payout_row(factory, result.payout_id).order_count == 3


def test_commission_rounds_half_up_to_cents(
    factory: SessionFactory, program: Program, session: Session
) -> None:
    sell(session, program.starter_stand, "P-1005", utc(2024, 1, 10, 9))
    (result,) = payouts.compute_payouts(session, ADMIN, JAN_START, JAN_END, now=NOW)
    # 10.05 x 0.10 = 1.005 -> 1.01 (half up; half-even would pay 1.00)
    assert result.commission_rate == Decimal("0.10")
    assert result.amount == Decimal("1.01")


def test_one_payout_per_partner_with_sales(
    factory: SessionFactory, program: Program, session: Session
) -> None:
    sell(session, program.growth_stand, "P-1000", utc(2024, 1, 10, 9))
    sell(session, program.starter_stand, "P-2380", utc(2024, 1, 11, 9), qty=2)
    no_sales = make_stand(session, "pro", name="Leer")
    results = payouts.compute_payouts(session, MANAGER, JAN_START, JAN_END, now=NOW)
    by_partner = {r.partner_id: r for r in results}
    assert set(by_partner) == {program.growth_partner, program.starter_partner}
    assert no_sales.partner_id not in by_partner
    assert by_partner[program.growth_partner].amount == Decimal("1.20")
    assert by_partner[program.starter_partner].amount == Decimal("4.76")  # 47.60 x 0.10

    # One partner only.
    only = payouts.compute_payouts(
        session,
        MANAGER,
        date(2024, 1, 1),
        date(2024, 1, 15),
        partner_id=program.starter_partner,
        now=NOW,
    )
    assert [r.partner_id for r in only] == [program.starter_partner]


# --------------------------------------------------------------------------- period bounds


def test_period_is_local_days_in_winter(
    factory: SessionFactory, program: Program, session: Session
) -> None:
    g = program.growth_stand
    # Berlin is UTC+1 in winter.
    sell(session, g, "P-2380", utc(2023, 12, 31, 22, 59))  # 23:59 on 31 Dec locally: out
    sell(session, g, "P-1000", utc(2023, 12, 31, 23, 30))  # 00:30 on 1 Jan locally: in
    sell(session, g, "P-1000", utc(2024, 1, 31, 22, 59))  # 23:59 on 31 Jan locally: in
    sell(session, g, "P-2380", utc(2024, 1, 31, 23, 30))  # 00:30 on 1 Feb locally: out
    (jan,) = payouts.compute_payouts(session, MANAGER, JAN_START, JAN_END, now=NOW)
    assert jan.sales_total == Decimal("20.00")
    assert jan.order_count == 2
    (feb_1,) = payouts.compute_payouts(
        session, MANAGER, date(2024, 2, 1), date(2024, 2, 1), now=NOW
    )
    assert feb_1.sales_total == Decimal("23.80")


def test_period_is_local_days_in_summer(
    factory: SessionFactory, program: Program, session: Session
) -> None:
    g = program.growth_stand
    # Berlin is UTC+2 in summer.
    sell(session, g, "P-1000", utc(2024, 6, 30, 21, 59))  # 23:59 on 30 June locally: in
    sell(session, g, "P-2380", utc(2024, 6, 30, 22, 30))  # 00:30 on 1 July locally: out
    (june,) = payouts.compute_payouts(
        session, MANAGER, date(2024, 6, 1), date(2024, 6, 30), now=utc(2024, 7, 10, 8)
    )
    assert june.sales_total == Decimal("10.00")


def test_period_must_be_finished(
    factory: SessionFactory, program: Program, session: Session
) -> None:
    sell(session, program.growth_stand, "P-1000", utc(2024, 1, 10, 9))
    watch = Watch(factory)
    for end in (date(2024, 2, 15), date(2024, 2, 29)):
        with pytest.raises(ValidationError) as err:
            payouts.compute_payouts(session, MANAGER, date(2024, 2, 1), end, now=NOW)
        assert err.value.field == "period_end"
        assert "finished" in str(err.value)
        assert_readable(err.value)
    # 31 Jan 22:30 UTC is still 31 Jan in Berlin: January is not finished yet.
    with pytest.raises(ValidationError):
        payouts.compute_payouts(session, MANAGER, JAN_START, JAN_END, now=utc(2024, 1, 31, 22, 30))
    watch.assert_nothing_saved()
    # 31 Jan 23:30 UTC is 1 Feb in Berlin: January is finished.
    assert payouts.compute_payouts(
        session, MANAGER, JAN_START, JAN_END, now=utc(2024, 1, 31, 23, 30)
    )


def test_period_must_be_ordered(
    factory: SessionFactory, program: Program, session: Session
) -> None:
    watch = Watch(factory)
    with pytest.raises(ValidationError) as err:
        payouts.compute_payouts(session, MANAGER, JAN_END, JAN_START, now=NOW)
    assert err.value.field == "period_end"
    watch.assert_nothing_saved()


# --------------------------------------------------------------------------- idempotency


def test_compute_is_idempotent(factory: SessionFactory, program: Program, session: Session) -> None:
    sell(session, program.growth_stand, "P-2380", utc(2024, 1, 10, 9))
    (first,) = payouts.compute_payouts(session, MANAGER, JAN_START, JAN_END, now=NOW)
    watch = Watch(factory)
    (second,) = payouts.compute_payouts(session, MANAGER, JAN_START, JAN_END, now=NOW)
    assert second.payout_id == first.payout_id
    assert (second.amount, second.sales_total, second.status) == (
        first.amount,
        first.sales_total,
        first.status,
    )
    assert (second.created, second.updated) == (False, False)
    watch.assert_nothing_saved()


def test_draft_is_refreshed_by_late_sales_and_voids(
    factory: SessionFactory, program: Program, session: Session
) -> None:
    sell(session, program.growth_stand, "P-2380", utc(2024, 1, 10, 9))
    (first,) = payouts.compute_payouts(session, MANAGER, JAN_START, JAN_END, now=NOW)
    assert first.amount == Decimal("2.86")  # 23.80 x 0.12 = 2.856

    # A device that was offline syncs a January sale in February.
    late = sell(session, program.growth_stand, "P-1000", utc(2024, 1, 28, 16), qty=3)
    watch = Watch(factory)
    (second,) = payouts.compute_payouts(
        session, MANAGER, JAN_START, JAN_END, now=utc(2024, 2, 16, 9)
    )
    assert second.payout_id == first.payout_id
    assert (second.created, second.updated) == (False, True)
    assert second.sales_total == Decimal("53.80")
    assert second.amount == Decimal("6.46")  # 53.80 x 0.12 = 6.456
    assert second.order_count == 2
    row = payout_row(factory, first.payout_id)
    assert (row.sales_total, row.amount, row.order_count, row.status) == (
        Decimal("53.80"),
        Decimal("6.46"),
        2,
        PayoutStatus.DRAFT,
    )
    (op,) = watch.ops()
    assert (op.op_type, op.entity_id) == ("payout.compute", first.payout_id)
    assert Decimal(op.payload["amount"]) == Decimal("6.46")
    assert watch.added() == {"change_log": 1}

    sales.void_sale(session, REP, late, occurred_at=utc(2024, 1, 29, 9))
    (third,) = payouts.compute_payouts(session, MANAGER, JAN_START, JAN_END, now=NOW)
    assert (third.sales_total, third.amount, third.updated) == (
        Decimal("23.80"),
        Decimal("2.86"),
        True,
    )


def test_scheduled_payout_is_not_recomputed(
    factory: SessionFactory, program: Program, session: Session
) -> None:
    sell(session, program.growth_stand, "P-2380", utc(2024, 1, 10, 9))
    (first,) = payouts.compute_payouts(session, MANAGER, JAN_START, JAN_END, now=NOW)
    payouts.schedule_payout(session, MANAGER, first.payout_id, date(2024, 2, 20), now=NOW)
    sell(session, program.growth_stand, "P-1000", utc(2024, 1, 28, 16))
    watch = Watch(factory)
    (again,) = payouts.compute_payouts(session, MANAGER, JAN_START, JAN_END, now=NOW)
    assert again.payout_id == first.payout_id
    assert (again.amount, again.sales_total, again.status) == (
        Decimal("2.86"),
        Decimal("23.80"),
        PayoutStatus.SCHEDULED,
    )
    assert (again.created, again.updated) == (False, False)
    watch.assert_nothing_saved()


# --------------------------------------------------------------------------- lifecycle


def test_schedule_and_pay(factory: SessionFactory, program: Program, session: Session) -> None:
    sell(session, program.growth_stand, "P-2380", utc(2024, 1, 10, 9))
    (draft,) = payouts.compute_payouts(session, MANAGER, JAN_START, JAN_END, now=NOW)

    watch = Watch(factory)
    scheduled = payouts.schedule_payout(
        session, MANAGER, draft.payout_id, date(2024, 2, 20), now=NOW
    )
    assert scheduled.status == PayoutStatus.SCHEDULED
    row = payout_row(factory, draft.payout_id)
    assert (row.status, row.scheduled_for, row.paid_at) == (
        PayoutStatus.SCHEDULED,
        date(2024, 2, 20),
        None,
    )
    (op,) = watch.ops()
    assert (op.op_type, op.entity_id) == ("payout.schedule", draft.payout_id)
    assert op.payload["scheduled_for"] == "2024-02-20"

    paid_at = utc(2024, 2, 20, 8, 30)
    watch = Watch(factory)
    paid = payouts.mark_payout_paid(
        session, ADMIN, draft.payout_id, " SEPA-2024-0042 ", now=paid_at
    )
    assert paid.status == PayoutStatus.PAID
    row = payout_row(factory, draft.payout_id)
    assert (row.status, row.paid_at, row.payment_reference, row.amount) == (
        PayoutStatus.PAID,
        paid_at,
        "SEPA-2024-0042",
        Decimal("2.86"),
    )
    (op,) = watch.ops()
    assert (op.op_type, op.payload["reference"]) == ("payout.paid", "SEPA-2024-0042")
    assert watch.added() == {"change_log": 1}

    with reading(factory) as s:
        assert [p.payout_id for p in payouts.list_payouts(s, status=PayoutStatus.PAID)] == [
            draft.payout_id
        ]
        assert payouts.list_payouts(s, status=PayoutStatus.DRAFT) == []
        assert [
            p.payout_id for p in payouts.list_payouts(s, partner_id=program.growth_partner)
        ] == [draft.payout_id]


def test_invalid_transitions(factory: SessionFactory, program: Program, session: Session) -> None:
    sell(session, program.growth_stand, "P-2380", utc(2024, 1, 10, 9))
    (draft,) = payouts.compute_payouts(session, MANAGER, JAN_START, JAN_END, now=NOW)
    pid = draft.payout_id

    watch = Watch(factory)
    with pytest.raises(InvalidTransition) as err:
        payouts.mark_payout_paid(session, MANAGER, pid, "X", now=NOW)
    assert err.value.field == "status"
    assert "draft" in str(err.value)
    assert_readable(err.value)
    watch.assert_nothing_saved()

    payouts.schedule_payout(session, MANAGER, pid, date(2024, 2, 20), now=NOW)
    watch = Watch(factory)
    with pytest.raises(InvalidTransition):
        payouts.schedule_payout(session, MANAGER, pid, date(2024, 2, 21), now=NOW)
    watch.assert_nothing_saved()

    payouts.mark_payout_paid(session, MANAGER, pid, now=NOW)
    watch = Watch(factory)
    for step in (
        lambda: payouts.schedule_payout(session, MANAGER, pid, date(2024, 3, 1), now=NOW),
        lambda: payouts.mark_payout_paid(session, MANAGER, pid, "again", now=NOW),
    ):
        with pytest.raises(InvalidTransition) as again:
            step()
        assert "paid" in str(again.value)
    watch.assert_nothing_saved()
    assert payout_row(factory, pid).payment_reference is None


def test_payment_date_in_the_past_is_refused(
    factory: SessionFactory, program: Program, session: Session
) -> None:
    sell(session, program.growth_stand, "P-2380", utc(2024, 1, 10, 9))
    (draft,) = payouts.compute_payouts(session, MANAGER, JAN_START, JAN_END, now=NOW)
    watch = Watch(factory)
    with pytest.raises(ValidationError) as err:
        payouts.schedule_payout(session, MANAGER, draft.payout_id, date(2024, 2, 14), now=NOW)
    assert err.value.field == "pay_on"
    assert_readable(err.value)
    watch.assert_nothing_saved()
    # Today is fine.
    payouts.schedule_payout(session, MANAGER, draft.payout_id, date(2024, 2, 15), now=NOW)


def test_payment_date_is_judged_in_program_time(
    factory: SessionFactory, program: Program, session: Session
) -> None:
    """At 23:30 UTC on 15 Feb it is already 16 Feb in Berlin: 15 Feb is in the past."""
    sell(session, program.growth_stand, "P-2380", utc(2024, 1, 10, 9))
    (draft,) = payouts.compute_payouts(session, MANAGER, JAN_START, JAN_END, now=NOW)
    watch = Watch(factory)
    with pytest.raises(ValidationError) as err:
        payouts.schedule_payout(
            session, MANAGER, draft.payout_id, date(2024, 2, 15), now=utc(2024, 2, 15, 23, 30)
        )
    assert err.value.field == "pay_on"
    watch.assert_nothing_saved()


@pytest.mark.parametrize("actor", [REP, PARTNER], ids=lambda a: a.role.value)
def test_payouts_need_a_manager(
    factory: SessionFactory, program: Program, session: Session, actor: Any
) -> None:
    sell(session, program.growth_stand, "P-2380", utc(2024, 1, 10, 9))
    (draft,) = payouts.compute_payouts(session, MANAGER, JAN_START, JAN_END, now=NOW)
    watch = Watch(factory)
    with pytest.raises(PermissionDenied) as err:
        payouts.compute_payouts(session, actor, JAN_START, JAN_END, now=NOW)
    assert_readable(err.value)
    with pytest.raises(PermissionDenied):
        payouts.schedule_payout(session, actor, draft.payout_id, date(2024, 2, 20), now=NOW)
    payouts.schedule_payout(session, MANAGER, draft.payout_id, date(2024, 2, 20), now=NOW)
    watch = Watch(factory)
    with pytest.raises(PermissionDenied):
        payouts.mark_payout_paid(session, actor, draft.payout_id, now=NOW)
    watch.assert_nothing_saved()


def test_unknown_payout_and_partner(
    factory: SessionFactory, program: Program, session: Session
) -> None:
    watch = Watch(factory)
    with pytest.raises(NotFound) as err:
        payouts.schedule_payout(session, MANAGER, new_id(), date(2024, 2, 20), now=NOW)
    assert err.value.field == "payout_id"
    with pytest.raises(NotFound):
        payouts.mark_payout_paid(session, MANAGER, "nope", now=NOW)
    with pytest.raises(NotFound) as partner:
        payouts.compute_payouts(session, MANAGER, JAN_START, JAN_END, partner_id=new_id(), now=NOW)
    assert partner.value.field == "partner_id"
    watch.assert_nothing_saved()
