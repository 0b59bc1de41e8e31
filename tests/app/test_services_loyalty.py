"""Partner loyalty: the points ledger, redemption, adjustments, expiry (FIFO) and tiers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.db import SessionFactory
from app.errors import DomainError, LimitExceeded, NotFound, PermissionDenied, ValidationError
from app.ids import new_id
from app.models import (
    LoyaltyKind,
    LoyaltyTier,
    PartnerStatus,
    StandLoyaltyLedger,
    StandPartner,
)
from app.reference import TIERS
from app.services import loyalty, sales
from app.services.loyalty import expirable_points
from tests.conftest import ADMIN, MANAGER, PARTNER, REP, CatalogProduct, StandFixture, make_stand
from tests.helpers import Watch, assert_readable, reading

D0 = datetime(2023, 1, 10, 12, 0, tzinfo=UTC)


def day(n: float) -> datetime:
    return D0 + timedelta(days=n)


def entries(factory: SessionFactory, partner_id: str) -> list[tuple[LoyaltyKind, int]]:
    with reading(factory) as s:
        return [
            (e.kind, e.points)
            for e in s.scalars(
                select(StandLoyaltyLedger)
                .where(StandLoyaltyLedger.partner_id == partner_id)
                .order_by(StandLoyaltyLedger.occurred_at, StandLoyaltyLedger.id)
            )
        ]


def ledger_sum(factory: SessionFactory, partner_id: str) -> int:
    with reading(factory) as s:
        return (
            s.scalar(
                select(func.coalesce(func.sum(StandLoyaltyLedger.points), 0)).where(
                    StandLoyaltyLedger.partner_id == partner_id
                )
            )
            or 0
        )


def tier_of(factory: SessionFactory, partner_id: str) -> str:
    with reading(factory) as s:
        partner = s.get_one(StandPartner, partner_id)
        return s.get_one(LoyaltyTier, partner.loyalty_tier_id).code


def threshold(code: str) -> int:
    return next(t.threshold_points for t in TIERS if t.code == code)


@pytest.fixture
def partner(factory: SessionFactory, catalog: list[CatalogProduct]) -> StandFixture:
    """A Growth partner activated at D0: 250 activation points."""
    with factory() as s:
        st = make_stand(s, "growth", activate=False)
        loyalty.activate_partner(s, REP, st.partner_id, now=D0)
    return st


@pytest.fixture
def fresh(factory: SessionFactory, catalog: list[CatalogProduct]) -> StandFixture:
    """A Starter partner still in onboarding: an empty ledger."""
    with factory() as s:
        return make_stand(s, "starter", name="Blumen Eck", activate=False)


# --------------------------------------------------------------------------- balance and ledger


def test_balance_is_the_sum_of_the_ledger(
    factory: SessionFactory, partner: StandFixture, session: Session
) -> None:
    pid = partner.partner_id
    loyalty.adjust_points(session, MANAGER, pid, 100, note="Welcome pack", bonus=True, now=day(1))
    loyalty.redeem_points(session, REP, pid, 30, now=day(2))
    loyalty.adjust_points(session, ADMIN, pid, -20, note="Double-counted delivery", now=day(3))
    with reading(factory) as s:
        assert loyalty.balance(s, pid) == 300
        newest_first = loyalty.ledger(s, pid)
    assert ledger_sum(factory, pid) == 300
    assert [(e.kind, e.points) for e in newest_first] == [
        (LoyaltyKind.ADJUST, -20),
        (LoyaltyKind.REDEEM, -30),
        (LoyaltyKind.BONUS, 100),
        (LoyaltyKind.ACTIVATION, 250),
    ]
    assert newest_first[0].note == "Double-counted delivery"
    with reading(factory) as s:
        assert [e.points for e in loyalty.ledger(s, pid, limit=2)] == [-20, -30]


def test_balance_of_unknown_partner(
    factory: SessionFactory, catalog: list[CatalogProduct], session: Session
) -> None:
    with pytest.raises(NotFound) as err:
        loyalty.balance(session, new_id())
    assert err.value.field == "partner_id"


# --------------------------------------------------------------------------- activation


def test_activation_points_once(
    factory: SessionFactory, fresh: StandFixture, session: Session
) -> None:
    watch = Watch(factory)
    result = loyalty.activate_partner(session, REP, fresh.partner_id, now=day(0))
    assert (result.points, result.balance) == (100, 100)  # Starter: 100 points
    assert entries(factory, fresh.partner_id) == [(LoyaltyKind.ACTIVATION, 100)]
    assert [o.op_type for o in watch.ops()] == ["partner.activate"]

    watch = Watch(factory)
    with pytest.raises(ValidationError) as err:
        loyalty.activate_partner(session, REP, fresh.partner_id, now=day(1))
    assert err.value.field == "partner_id"
    assert_readable(err.value)
    watch.assert_nothing_saved()


def test_activation_refusals(
    factory: SessionFactory, fresh: StandFixture, session: Session
) -> None:
    watch = Watch(factory)
    with pytest.raises(PermissionDenied):
        loyalty.activate_partner(session, PARTNER, fresh.partner_id)
    with pytest.raises(NotFound):
        loyalty.activate_partner(session, REP, new_id())
    watch.assert_nothing_saved()
    with reading(factory) as s:
        assert s.get_one(StandPartner, fresh.partner_id).status == PartnerStatus.ONBOARDING


# --------------------------------------------------------------------------- redeem


def test_redeem_points(factory: SessionFactory, partner: StandFixture, session: Session) -> None:
    pid = partner.partner_id
    watch = Watch(factory)
    result = loyalty.redeem_points(session, REP, pid, "200", note="Display kit", now=day(5))
    assert (result.points, result.balance) == (-200, 50)
    with reading(factory) as s:
        entry = s.get_one(StandLoyaltyLedger, result.entry_id)
        assert (entry.kind, entry.points, entry.occurred_at, entry.note, entry.actor) == (
            LoyaltyKind.REDEEM,
            -200,
            day(5),
            "Display kit",
            REP.user,
        )
    (op,) = watch.ops()
    assert (op.op_type, op.entity_id) == ("loyalty.redeem", result.entry_id)
    assert op.payload["points"] == -200
    assert op.payload["partner_id"] == pid
    assert watch.added() == {"stand_loyalty_ledger": 1, "change_log": 1}

    # The whole remaining balance can be redeemed, to exactly zero.
    assert loyalty.redeem_points(session, REP, pid, 50).balance == 0
    assert ledger_sum(factory, pid) == 0


def test_redeem_beyond_balance(
    factory: SessionFactory, partner: StandFixture, session: Session
) -> None:
    watch = Watch(factory)
    with pytest.raises(LimitExceeded) as err:
        loyalty.redeem_points(session, REP, partner.partner_id, 251)
    assert err.value.field == "points"
    assert "250" in str(err.value)
    assert "251" in str(err.value)
    assert_readable(err.value)
    watch.assert_nothing_saved()
    assert ledger_sum(factory, partner.partner_id) == 250


@pytest.mark.parametrize(
    ("points", "words"),
    [
        pytest.param(0, "at least 1", id="zero"),
        pytest.param(-5, "at least 1", id="negative"),
        pytest.param("-5", "at least 1", id="negative-text"),
        pytest.param("ten", "whole number", id="text"),
        pytest.param(1.5, "whole number", id="fraction"),
        pytest.param(None, "whole number", id="none"),
        pytest.param(True, "whole number", id="bool"),
    ],
)
def test_redeem_bad_points(
    factory: SessionFactory, partner: StandFixture, session: Session, points: object, words: str
) -> None:
    watch = Watch(factory)
    with pytest.raises(ValidationError) as err:
        loyalty.redeem_points(session, REP, partner.partner_id, points)
    assert err.value.field == "points"
    assert words in str(err.value)
    assert_readable(err.value)
    watch.assert_nothing_saved()


def test_redeem_refusals(factory: SessionFactory, partner: StandFixture, session: Session) -> None:
    watch = Watch(factory)
    with pytest.raises(PermissionDenied):
        loyalty.redeem_points(session, PARTNER, partner.partner_id, 10)
    with pytest.raises(NotFound) as nf:
        loyalty.redeem_points(session, REP, new_id(), 10)
    assert nf.value.field == "partner_id"
    with pytest.raises(ValidationError) as bad_id:
        loyalty.redeem_points(session, REP, partner.partner_id, 10, entry_id="x")
    assert bad_id.value.field == "entry_id"
    with pytest.raises(ValidationError):
        loyalty.redeem_points(session, REP, partner.partner_id, 10, now=datetime(2024, 1, 1, 12, 0))
    watch.assert_nothing_saved()


def test_redeem_replayed_entry_id_is_not_a_second_redemption(
    factory: SessionFactory, partner: StandFixture, session: Session
) -> None:
    """Ledger entries are facts keyed by their client id: a replay is refused or a no-op,
    never a second effect and never a raw database error."""
    eid = new_id()
    loyalty.redeem_points(session, REP, partner.partner_id, 10, entry_id=eid)
    watch = Watch(factory)
    outcome: object
    try:
        outcome = loyalty.redeem_points(session, REP, partner.partner_id, 10, entry_id=eid)
    except DomainError as exc:
        outcome = exc
    if isinstance(outcome, DomainError):
        assert outcome.field == "entry_id"
        assert_readable(outcome)
    else:
        assert isinstance(outcome, loyalty.PointsResult)
        assert outcome.entry_id == eid
    watch.assert_nothing_saved()
    assert ledger_sum(factory, partner.partner_id) == 240


# --------------------------------------------------------------------------- adjust and bonus


def test_bonus_and_adjustment(
    factory: SessionFactory, partner: StandFixture, session: Session
) -> None:
    pid = partner.partner_id
    watch = Watch(factory)
    bonus = loyalty.adjust_points(
        session, MANAGER, pid, 500, note="  Top stand of Q1 ", bonus=True, now=day(10)
    )
    adjust = loyalty.adjust_points(session, ADMIN, pid, "-100", note="Duplicate earn", now=day(11))
    assert (bonus.points, bonus.balance) == (500, 750)
    assert (adjust.points, adjust.balance) == (-100, 650)
    with reading(factory) as s:
        b = s.get_one(StandLoyaltyLedger, bonus.entry_id)
        a = s.get_one(StandLoyaltyLedger, adjust.entry_id)
        assert (b.kind, b.points, b.note, b.actor, b.occurred_at) == (
            LoyaltyKind.BONUS,
            500,
            "Top stand of Q1",
            MANAGER.user,
            day(10),
        )
        assert (a.kind, a.points, a.note, a.actor) == (
            LoyaltyKind.ADJUST,
            -100,
            "Duplicate earn",
            ADMIN.user,
        )
    ops = watch.ops()
    assert [o.op_type for o in ops] == ["loyalty.bonus", "loyalty.adjust"]
    assert [o.payload["points"] for o in ops] == [500, -100]
    assert ops[0].payload["note"] == "Top stand of Q1"
    assert watch.added() == {"stand_loyalty_ledger": 2, "change_log": 2}


@pytest.mark.parametrize("actor", [REP, PARTNER], ids=lambda a: a.role.value)
def test_adjust_needs_a_manager(
    factory: SessionFactory, partner: StandFixture, session: Session, actor: Any
) -> None:
    watch = Watch(factory)
    with pytest.raises(PermissionDenied) as err:
        loyalty.adjust_points(session, actor, partner.partner_id, 100, note="Because", bonus=True)
    assert_readable(err.value)
    with pytest.raises(PermissionDenied):
        loyalty.adjust_points(session, actor, partner.partner_id, -10, note="Because")
    watch.assert_nothing_saved()


@pytest.mark.parametrize(
    ("points", "note", "bonus", "field", "words"),
    [
        pytest.param(100, "", False, "note", "reason", id="no-reason"),
        pytest.param(100, "   ", True, "note", "reason", id="blank-reason"),
        pytest.param(100, None, False, "note", "reason", id="none-reason"),
        pytest.param(0, "Oops", False, "points", "zero", id="zero"),
        pytest.param(
            -50, "Clawback", True, "points", "bonus must be positive", id="negative-bonus"
        ),
        pytest.param(0, "Nothing", True, "points", "zero", id="zero-bonus"),
        pytest.param("lots", "Because", True, "points", "whole number", id="text"),
        pytest.param(2.5, "Because", False, "points", "whole number", id="fraction"),
        pytest.param(10_000_001, "Because", True, "points", "at most", id="too-many"),
    ],
)
def test_adjust_bad_input(
    factory: SessionFactory,
    partner: StandFixture,
    session: Session,
    points: object,
    note: Any,
    bonus: bool,
    field: str,
    words: str,
) -> None:
    watch = Watch(factory)
    with pytest.raises(ValidationError) as err:
        loyalty.adjust_points(session, MANAGER, partner.partner_id, points, note=note, bonus=bonus)
    assert err.value.field == field
    assert words.lower() in str(err.value).lower()
    assert_readable(err.value)
    watch.assert_nothing_saved()


# --------------------------------------------------------------------------- expiry (FIFO)


def test_expire_points_fifo(factory: SessionFactory, fresh: StandFixture, session: Session) -> None:
    pid = fresh.partner_id
    loyalty.activate_partner(session, REP, pid, now=day(0))  # lot 1: 100 (Starter)
    loyalty.adjust_points(
        session, MANAGER, pid, 50, note="Spring promo", bonus=True, now=day(200)
    )  # lot 2: 50
    loyalty.redeem_points(session, REP, pid, 120, now=day(300))  # takes 100 + 20

    # Day 400: lot 1 is old but empty; lot 2 is 200 days old. Nothing expires.
    watch = Watch(factory)
    assert loyalty.expire_points(session, MANAGER, partner_id=pid, now=day(400)) == []
    watch.assert_nothing_saved()

    # Day 565: lot 2 is exactly 365 days old, not older. Nothing expires.
    assert loyalty.expire_points(session, MANAGER, partner_id=pid, now=day(565)) == []
    watch.assert_nothing_saved()

    # Day 570: lot 2 is 370 days old; its remaining 30 expire.
    (result,) = loyalty.expire_points(session, MANAGER, partner_id=pid, now=day(570))
    assert (result.partner_id, result.points, result.balance) == (pid, -30, 0)
    with reading(factory) as s:
        entry = s.get_one(StandLoyaltyLedger, result.entry_id)
        assert (entry.kind, entry.points, entry.occurred_at, entry.actor) == (
            LoyaltyKind.EXPIRE,
            -30,
            day(570),
            MANAGER.user,
        )
    (op,) = watch.ops()
    assert (op.op_type, op.entity_id) == ("loyalty.expire", result.entry_id)
    assert op.payload["points"] == -30
    assert op.payload["cutoff"] == day(205).isoformat()
    assert watch.added() == {"stand_loyalty_ledger": 1, "change_log": 1}

    # Idempotent: the same run again, or a later one, finds nothing left.
    again = Watch(factory)
    assert loyalty.expire_points(session, MANAGER, partner_id=pid, now=day(570)) == []
    assert loyalty.expire_points(session, MANAGER, partner_id=pid, now=day(900)) == []
    again.assert_nothing_saved()
    assert ledger_sum(factory, pid) == 0


def test_expire_part_of_a_lot_for_every_partner(
    factory: SessionFactory, catalog: list[CatalogProduct], session: Session
) -> None:
    a = make_stand(session, "starter", name="A", activate=False)
    b = make_stand(session, "pro", name="B", activate=False)
    loyalty.activate_partner(session, REP, a.partner_id, now=day(0))  # 100
    loyalty.redeem_points(session, REP, a.partner_id, 30, now=day(100))  # 70 left of lot 1
    loyalty.adjust_points(
        session, MANAGER, a.partner_id, 40, note="New lot", bonus=True, now=day(380)
    )
    loyalty.activate_partner(session, REP, b.partner_id, now=day(300))  # 500, not old yet

    watch = Watch(factory)
    results = loyalty.expire_points(session, ADMIN, now=day(400))
    assert [(r.partner_id, r.points, r.balance) for r in results] == [(a.partner_id, -70, 40)]
    assert [o.op_type for o in watch.ops()] == ["loyalty.expire"]
    assert ledger_sum(factory, b.partner_id) == 500


def test_expire_refusals(factory: SessionFactory, partner: StandFixture, session: Session) -> None:
    watch = Watch(factory)
    with pytest.raises(PermissionDenied):
        loyalty.expire_points(session, REP, now=day(900))
    for bad in (0, -1, "year"):
        with pytest.raises(ValidationError) as err:
            loyalty.expire_points(session, MANAGER, now=day(900), max_age_days=bad)
        assert err.value.field == "max_age_days"
    with pytest.raises(NotFound):
        loyalty.expire_points(session, MANAGER, partner_id=new_id(), now=day(900))
    watch.assert_nothing_saved()


@pytest.mark.parametrize(
    ("entries", "cutoff", "expected"),
    [
        pytest.param([], 10, 0, id="empty"),
        pytest.param([(0, 100), (200, 50), (300, -120)], 35, 0, id="brief-day-400"),
        pytest.param([(0, 100), (200, 50), (300, -120)], 205, 30, id="brief-day-570"),
        pytest.param([(0, 100), (200, 50), (300, -120)], 200, 0, id="lot-at-cutoff-not-older"),
        pytest.param([(0, 100), (1, -30)], 2, 70, id="partly-used-lot"),
        pytest.param([(0, 40), (10, 60), (20, -50)], 15, 50, id="consumes-oldest-first"),
        pytest.param([(0, 40), (10, 60), (20, -50)], 5, 0, id="oldest-lot-empty"),
        # A negative beyond the open lots is a debt the next lot pays first: never expire more
        # than the balance (here the balance is -10).
        pytest.param([(0, 10), (1, -50), (2, 30)], 3, 0, id="over-negative-is-a-debt"),
        pytest.param([(0, -5), (1, 10)], 2, 5, id="negative-before-any-lot-is-a-debt"),
        pytest.param([(0, 10), (1, 20), (2, 30)], 100, 60, id="all-old"),
        pytest.param([(0, 10), (1, 20), (5, -10), (6, -5)], 3, 15, id="two-negatives"),
    ],
)
def test_expirable_points(entries: list[tuple[int, int]], cutoff: int, expected: int) -> None:
    assert expirable_points([(day(d), p) for d, p in entries], day(cutoff)) == expected


# --------------------------------------------------------------------------- tiers


def test_tier_status_and_points_to_next(
    factory: SessionFactory, partner: StandFixture, session: Session
) -> None:
    with reading(factory) as s:
        status = loyalty.tier_status(s, partner.partner_id, now=day(1))
    assert (status.tier_code, status.tier_name, status.earned_in_window) == (
        "bronze",
        "Bronze",
        250,
    )
    assert (status.next_tier_code, status.next_tier_name) == ("silver", "Silver")
    assert status.points_to_next == threshold("silver") - 250 == 1750
    # Redemptions do not lower what was earned.
    loyalty.redeem_points(session, REP, partner.partner_id, 200, now=day(2))
    with reading(factory) as s:
        assert loyalty.tier_status(s, partner.partner_id, now=day(3)).earned_in_window == 250


def test_tier_goes_up_and_down(
    factory: SessionFactory, partner: StandFixture, session: Session
) -> None:
    pid = partner.partner_id
    loyalty.adjust_points(session, MANAGER, pid, 1749, note="Season", bonus=True, now=day(10))
    assert loyalty.reevaluate_tiers(session, MANAGER, partner_id=pid, now=day(11)) == []
    assert tier_of(factory, pid) == "bronze"

    loyalty.adjust_points(session, MANAGER, pid, 1, note="One more", bonus=True, now=day(12))
    watch = Watch(factory)
    changes = loyalty.reevaluate_tiers(session, MANAGER, partner_id=pid, now=day(13))
    assert [(c.partner_id, c.old_tier, c.new_tier) for c in changes] == [(pid, "bronze", "silver")]
    assert tier_of(factory, pid) == "silver"
    (op,) = watch.ops()
    assert (op.op_type, op.entity_id) == ("partner.tier_change", pid)
    assert (op.payload["from"], op.payload["to"]) == ("bronze", "silver")
    assert watch.added() == {"change_log": 1}

    with reading(factory) as s:
        status = loyalty.tier_status(s, pid, now=day(13))
    assert (status.tier_code, status.earned_in_window) == ("silver", 2000)
    assert (status.next_tier_code, status.points_to_next) == ("gold", 4000)

    # Nothing changes on a second run.
    again = Watch(factory)
    assert loyalty.reevaluate_tiers(session, MANAGER, partner_id=pid, now=day(14)) == []
    again.assert_nothing_saved()

    # A year on, the activation has left the window (1750 earned remain): back to bronze.
    (down,) = loyalty.reevaluate_tiers(session, MANAGER, now=day(366))
    assert (down.old_tier, down.new_tier) == ("silver", "bronze")
    assert tier_of(factory, pid) == "bronze"
    # Long after, nothing earned at all.
    with reading(factory) as s:
        assert loyalty.tier_status(s, pid, now=day(800)).earned_in_window == 0


def test_tier_jumps_several_levels_and_platinum_has_no_next(
    factory: SessionFactory, partner: StandFixture, session: Session
) -> None:
    pid = partner.partner_id
    loyalty.adjust_points(
        session, ADMIN, pid, threshold("platinum"), note="Import", bonus=True, now=day(1)
    )
    (change,) = loyalty.reevaluate_tiers(session, ADMIN, partner_id=pid, now=day(2))
    assert (change.old_tier, change.new_tier) == ("bronze", "platinum")
    with reading(factory) as s:
        status = loyalty.tier_status(s, pid, now=day(2))
    assert status.tier_code == "platinum"
    assert (status.next_tier_code, status.next_tier_name, status.points_to_next) == (
        None,
        None,
        None,
    )


def test_manual_negative_adjustment_does_not_lower_earned(
    factory: SessionFactory, partner: StandFixture, session: Session
) -> None:
    pid = partner.partner_id
    loyalty.adjust_points(session, MANAGER, pid, 1750, note="Season", bonus=True, now=day(1))
    loyalty.adjust_points(session, MANAGER, pid, -100, note="Correction", now=day(2))
    with reading(factory) as s:
        assert loyalty.tier_status(s, pid, now=day(3)).earned_in_window == 2000


def test_voided_sales_do_not_count_toward_tier(
    factory: SessionFactory,
    catalog: list[CatalogProduct],
    partner: StandFixture,
    session: Session,
) -> None:
    pid = partner.partner_id
    ten = next(p for p in catalog if p.list_price == 10 and p.id in partner.product_ids)
    loyalty.adjust_points(session, MANAGER, pid, 1700, note="Season", bonus=True, now=day(1))
    # 4 x 10.00 = 40.00 at Growth (x1.25), Bronze: 50 points; 1950 + 50 = 2000 = Silver.
    sale = sales.record_sale(
        session, REP, partner.stand_id, [sales.SaleLine(ten.id, 4)], "cash", occurred_at=day(2)
    )
    assert sale.points_earned == 50
    with reading(factory) as s:
        assert loyalty.tier_status(s, pid, now=day(3)).earned_in_window == 2000

    sales.void_sale(session, REP, sale.order_id, occurred_at=day(2) + timedelta(hours=1))
    with reading(factory) as s:
        assert loyalty.tier_status(s, pid, now=day(3)).earned_in_window == 1950
    assert loyalty.reevaluate_tiers(session, MANAGER, partner_id=pid, now=day(3)) == []
    assert tier_of(factory, pid) == "bronze"

    # The same sale, not voided, does lift the partner.
    sales.record_sale(
        session, REP, partner.stand_id, [sales.SaleLine(ten.id, 4)], "cash", occurred_at=day(4)
    )
    (change,) = loyalty.reevaluate_tiers(session, MANAGER, partner_id=pid, now=day(5))
    assert change.new_tier == "silver"


def test_reevaluate_refusals_and_ended_partners(
    factory: SessionFactory, partner: StandFixture, session: Session
) -> None:
    watch = Watch(factory)
    with pytest.raises(PermissionDenied):
        loyalty.reevaluate_tiers(session, REP)
    with pytest.raises(NotFound):
        loyalty.reevaluate_tiers(session, MANAGER, partner_id=new_id())
    watch.assert_nothing_saved()

    loyalty.adjust_points(
        session, MANAGER, partner.partner_id, 5000, note="x", bonus=True, now=day(1)
    )
    with session.begin():
        session.execute(
            update(StandPartner)
            .where(StandPartner.id == partner.partner_id)
            .values(status=PartnerStatus.ENDED)
        )
    assert loyalty.reevaluate_tiers(session, MANAGER, now=day(2)) == []
    assert tier_of(factory, partner.partner_id) == "bronze"
