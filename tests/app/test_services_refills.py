"""Refills through their lifecycle (app/services/refills.py), on a real SQLite file.

The expectations below are written out by hand from the design (ARCHITECTURE.md and the
module docstring), not derived from ``TRANSITIONS``, so a wrong table in the service fails
a test instead of agreeing with itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.clock import utcnow
from app.db import SessionFactory
from app.errors import DomainError, InvalidTransition, PermissionDenied, ValidationError
from app.ids import new_id
from app.models import (
    Base,
    ChangeLog,
    DiscrepancyStatus,
    InventoryMovement,
    MovementKind,
    Product,
    RefillAction,
    RefillDiscrepancy,
    RefillStatus,
    Role,
    StandInventory,
    StandLocation,
    StandRefillEvent,
    StandRefillOrder,
    StandRefillOrderItem,
)
from app.services import inventory, refills, sales
from app.services.base import Actor
from tests.conftest import (
    ADMIN,
    MANAGER,
    OTHER_REP,
    PARTNER,
    REP,
    CatalogProduct,
    StandFixture,
    make_stand,
)

S = RefillStatus
A = RefillAction

# ------------------------------------------------------------------ the lifecycle, by hand

#: From each state, the actions the design allows (state guard only).
ALLOWED_FROM: dict[RefillStatus, set[RefillAction]] = {
    S.REQUESTED: {A.APPROVE, A.REJECT, A.CANCEL},
    S.APPROVED: {A.SCHEDULE, A.REJECT, A.CANCEL},
    S.SCHEDULED: {A.DELIVER, A.CANCEL},
    S.DELIVERED: {A.CONFIRM},
    S.CONFIRMED: set(),
    S.REJECTED: set(),
    S.CANCELLED: set(),
}
#: Who may take each action (role guard only).
ALLOWED_ROLES: dict[RefillAction, set[Role]] = {
    A.APPROVE: {Role.MANAGER, Role.ADMIN},
    A.SCHEDULE: {Role.MANAGER, Role.ADMIN},
    A.DELIVER: {Role.REP, Role.MANAGER, Role.ADMIN},
    A.CONFIRM: {Role.PARTNER, Role.REP, Role.MANAGER, Role.ADMIN},
    A.REJECT: {Role.MANAGER, Role.ADMIN},
    A.CANCEL: {Role.REP, Role.MANAGER, Role.ADMIN},
}
TARGET: dict[RefillAction, RefillStatus] = {
    A.APPROVE: S.APPROVED,
    A.SCHEDULE: S.SCHEDULED,
    A.DELIVER: S.DELIVERED,
    A.CONFIRM: S.CONFIRMED,
    A.REJECT: S.REJECTED,
    A.CANCEL: S.CANCELLED,
}
ACTOR_OF_ROLE = {Role.REP: REP, Role.MANAGER: MANAGER, Role.ADMIN: ADMIN, Role.PARTNER: PARTNER}
TRANSITION_ACTIONS = list(TARGET)
ALL_STATES = list(RefillStatus)


def delivery_day() -> date:
    return (utcnow() + timedelta(days=2)).date()


# ------------------------------------------------------------------ database helpers


def dump(factory: SessionFactory) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, ordered by primary key: "nothing written" is equality."""
    out = {}
    with factory() as s, s.begin():
        for table in Base.metadata.sorted_tables:
            rows = s.execute(select(table).order_by(*table.primary_key.columns)).all()
            out[table.name] = [tuple(r) for r in rows]
    return out


def read(factory: SessionFactory, fn: Callable[[Session], Any]) -> Any:
    with factory() as s, s.begin():
        return fn(s)


def ops(factory: SessionFactory) -> list[ChangeLog]:
    return read(
        factory, lambda s: list(s.scalars(select(ChangeLog).order_by(ChangeLog.device_seq)))
    )


def events(factory: SessionFactory, refill_id: str) -> list[StandRefillEvent]:
    return read(
        factory,
        lambda s: list(
            s.scalars(
                select(StandRefillEvent)
                .where(StandRefillEvent.refill_id == refill_id)
                .order_by(StandRefillEvent.occurred_at, StandRefillEvent.id)
            )
        ),
    )


def refill_row(factory: SessionFactory, refill_id: str) -> StandRefillOrder:
    return read(factory, lambda s: s.get_one(StandRefillOrder, refill_id))


def items(factory: SessionFactory, refill_id: str) -> dict[str, StandRefillOrderItem]:
    rows = read(
        factory,
        lambda s: list(
            s.scalars(
                select(StandRefillOrderItem).where(StandRefillOrderItem.refill_id == refill_id)
            )
        ),
    )
    return {i.product_id: i for i in rows}


def on_hand(factory: SessionFactory, stand_id: str, product_id: str) -> int:
    return read(factory, lambda s: inventory.on_hand(s, stand_id, product_id))


def ledger_sum(factory: SessionFactory, stand_id: str, product_id: str) -> int:
    return read(
        factory,
        lambda s: int(
            s.scalar(
                select(func.coalesce(func.sum(InventoryMovement.quantity), 0)).where(
                    InventoryMovement.stand_id == stand_id,
                    InventoryMovement.product_id == product_id,
                )
            )
            or 0
        ),
    )


def movements(factory: SessionFactory, **where: Any) -> list[InventoryMovement]:
    def q(s: Session) -> list[InventoryMovement]:
        stmt = select(InventoryMovement).order_by(InventoryMovement.id)
        for key, value in where.items():
            stmt = stmt.where(getattr(InventoryMovement, key) == value)
        return list(s.scalars(stmt))

    return read(factory, q)


def assert_refused(
    factory: SessionFactory,
    exc_type: type[DomainError],
    call: Callable[[], object],
    *,
    match: str | None = None,
) -> DomainError:
    """``call`` raises ``exc_type`` (a readable message) and the database is untouched."""
    before = dump(factory)
    with pytest.raises(exc_type, match=match) as info:
        call()
    message = str(info.value)
    assert len(message) > 10, message
    assert message.rstrip().endswith("."), message
    assert "RefillStatus." not in message, message
    assert "RefillAction." not in message, message
    assert dump(factory) == before, "a refused action wrote to the database"
    return info.value


def money(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


# ------------------------------------------------------------------ refill builders


def p(stand: StandFixture, n: int) -> str:
    return stand.product_ids[n]


def new_refill(
    session: Session,
    stand: StandFixture,
    *,
    actor: Actor = REP,
    quantities: dict[str, object] | None = None,
    **kw: Any,
) -> refills.RefillResult:
    qty = quantities if quantities is not None else {p(stand, 0): 12, p(stand, 1): 6}
    return refills.request_refill(session, actor, stand.stand_id, qty, **kw)


def take(
    session: Session, action: RefillAction, actor: Actor, refill_id: str, **kw: Any
) -> refills.RefillResult:
    """Take ``action`` with valid arguments."""
    if action == A.APPROVE:
        return refills.approve_refill(session, actor, refill_id, **kw)
    if action == A.SCHEDULE:
        return refills.schedule_refill(session, actor, refill_id, delivery_day(), "Nordgross", **kw)
    if action == A.DELIVER:
        return refills.deliver_refill(session, actor, refill_id, **kw)
    if action == A.CONFIRM:
        return refills.confirm_refill(session, actor, refill_id, **kw)
    if action == A.REJECT:
        return refills.reject_refill(session, actor, refill_id, "Stand is closing", **kw)
    if action == A.CANCEL:
        return refills.cancel_refill(session, actor, refill_id, "Asked twice", **kw)
    raise AssertionError(action)


PATH_TO: dict[RefillStatus, list[tuple[RefillAction, Actor]]] = {
    S.REQUESTED: [],
    S.APPROVED: [(A.APPROVE, MANAGER)],
    S.SCHEDULED: [(A.APPROVE, MANAGER), (A.SCHEDULE, MANAGER)],
    S.DELIVERED: [(A.APPROVE, MANAGER), (A.SCHEDULE, MANAGER), (A.DELIVER, REP)],
    S.CONFIRMED: [
        (A.APPROVE, MANAGER),
        (A.SCHEDULE, MANAGER),
        (A.DELIVER, REP),
        (A.CONFIRM, PARTNER),
    ],
    S.REJECTED: [(A.REJECT, MANAGER)],
    S.CANCELLED: [(A.CANCEL, REP)],
}


def refill_in(session: Session, stand: StandFixture, status: RefillStatus, **kw: Any) -> str:
    rid = new_refill(session, stand, **kw).refill_id
    for action, actor in PATH_TO[status]:
        take(session, action, actor, rid)
    return rid


# ------------------------------------------------------------------ the happy path


def test_full_lifecycle_stamps_events_and_ops(
    factory: SessionFactory, session: Session, stand: StandFixture
) -> None:
    t0 = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)
    times = {
        A.REQUEST: t0,
        A.APPROVE: t0 + timedelta(hours=2),
        A.SCHEDULE: t0 + timedelta(hours=3),
        A.DELIVER: t0 + timedelta(days=3),
        A.CONFIRM: t0 + timedelta(days=3, minutes=12),
    }
    p0, p1 = p(stand, 0), p(stand, 1)
    seq0 = len(ops(factory))

    res = refills.request_refill(
        session, REP, stand.stand_id, {p0: 12, p1: 6}, note="Weekend rush", now=times[A.REQUEST]
    )
    assert res.status == S.REQUESTED
    assert not res.duplicate
    rid = res.refill_id
    assert refills.approve_refill(session, MANAGER, rid, now=times[A.APPROVE]).status == S.APPROVED
    res = refills.schedule_refill(
        session, MANAGER, rid, date(2030, 3, 4), "  Nordgross KG ", now=times[A.SCHEDULE]
    )
    assert res.status == S.SCHEDULED
    assert refills.deliver_refill(session, REP, rid, now=times[A.DELIVER]).status == S.DELIVERED
    res = refills.confirm_refill(session, PARTNER, rid, now=times[A.CONFIRM])
    assert res.status == S.CONFIRMED
    assert res.discrepancies == ()

    row = refill_row(factory, rid)
    assert row.status == S.CONFIRMED
    assert (row.requested_by, row.requested_at) == (REP.user, times[A.REQUEST])
    assert (row.approved_by, row.approved_at) == (MANAGER.user, times[A.APPROVE])
    assert (row.scheduled_by, row.scheduled_at) == (MANAGER.user, times[A.SCHEDULE])
    assert (row.scheduled_for, row.dealer) == (date(2030, 3, 4), "Nordgross KG")
    assert (row.delivered_by, row.delivered_at) == (REP.user, times[A.DELIVER])
    assert (row.confirmed_by, row.confirmed_at) == (PARTNER.user, times[A.CONFIRM])
    assert row.closed_by is None
    assert row.closed_at is None
    assert row.close_reason is None
    assert row.note == "Weekend rush"
    lines = items(factory, rid)
    assert {
        pid: (i.requested_qty, i.approved_qty, i.delivered_qty, i.received_qty)
        for pid, i in lines.items()
    } == {p0: (12, 12, 12, 12), p1: (6, 6, 6, 6)}

    evs = events(factory, rid)
    expected = [
        (A.REQUEST, None, S.REQUESTED, REP),
        (A.APPROVE, S.REQUESTED, S.APPROVED, MANAGER),
        (A.SCHEDULE, S.APPROVED, S.SCHEDULED, MANAGER),
        (A.DELIVER, S.SCHEDULED, S.DELIVERED, REP),
        (A.CONFIRM, S.DELIVERED, S.CONFIRMED, PARTNER),
    ]
    assert [(e.action, e.from_status, e.to_status, e.actor, e.role) for e in evs] == [
        (a, f, t, who.user, who.role.value) for a, f, t, who in expected
    ]
    assert [e.occurred_at for e in evs] == [times[a] for a, *_ in expected]
    for e in evs:
        json.loads(e.detail)

    log = ops(factory)[seq0:]
    assert [o.op_type for o in log] == [f"refill.{a.value}" for a, *_ in expected]
    assert all(o.entity_id == rid for o in log)
    assert [o.actor for o in log] == [who.user for *_, who in expected]
    payloads = [json.loads(o.payload) for o in log]
    assert [pl["event_id"] for pl in payloads] == [e.id for e in evs]
    assert all(pl["refill_id"] == rid for pl in payloads)
    for pl, (_, frm, to, _) in zip(payloads[1:], expected[1:], strict=True):
        assert (pl["from"], pl["to"]) == (frm.value, to.value)
    assert [o.device_seq for o in log] == list(range(seq0 + 1, seq0 + 6))

    # Delivery put the units on the stand; confirmation without difference changed nothing.
    assert on_hand(factory, stand.stand_id, p0) == 12
    assert on_hand(factory, stand.stand_id, p1) == 6
    assert (
        read(factory, lambda s: s.scalar(select(func.count()).select_from(RefillDiscrepancy))) == 0
    )


def test_delivery_posts_refill_movements(
    factory: SessionFactory, session: Session, stand: StandFixture
) -> None:
    p0, p1 = p(stand, 0), p(stand, 1)
    sales.record_sale(session, REP, stand.stand_id, [sales.SaleLine(p0, 2)], "cash")
    rid = refill_in(session, stand, S.SCHEDULED)
    at = datetime(2030, 1, 5, 14, 0, tzinfo=UTC)
    refills.deliver_refill(session, REP, rid, now=at)

    moves = movements(factory, ref_id=rid)
    assert sorted((m.product_id, m.quantity) for m in moves) == sorted([(p0, 12), (p1, 6)])
    for m in moves:
        assert m.kind == MovementKind.REFILL_DELIVERY
        assert (m.ref_type, m.stand_id, m.actor, m.occurred_at) == (
            "stand_refill_order",
            stand.stand_id,
            REP.user,
            at,
        )
    assert on_hand(factory, stand.stand_id, p0) == 10  # -2 sold, +12 delivered
    assert on_hand(factory, stand.stand_id, p1) == 6
    assert read(factory, lambda s: inventory.verify_on_hand(s)) == []
    op = ops(factory)[-1]
    assert op.op_type == "refill.deliver"
    assert sorted(json.loads(op.payload)["movements"].values()) == sorted(m.id for m in moves)


# ------------------------------------------------------------------ state guard, all cells


@pytest.mark.parametrize("action", TRANSITION_ACTIONS, ids=lambda a: a.value)
@pytest.mark.parametrize("status", ALL_STATES, ids=lambda s: s.value)
def test_transition_table(
    factory: SessionFactory,
    session: Session,
    stand: StandFixture,
    status: RefillStatus,
    action: RefillAction,
) -> None:
    rid = refill_in(session, stand, status)
    assert refill_row(factory, rid).status == status
    n_events = len(events(factory, rid))
    if action in ALLOWED_FROM[status]:
        result = take(session, action, ADMIN, rid)
        assert result.status == TARGET[action]
        assert refill_row(factory, rid).status == TARGET[action]
        last = events(factory, rid)[-1]
        assert len(events(factory, rid)) == n_events + 1
        assert (last.action, last.from_status, last.to_status) == (action, status, TARGET[action])
        assert ops(factory)[-1].op_type == f"refill.{action.value}"
    else:
        err = assert_refused(factory, InvalidTransition, lambda: take(session, action, ADMIN, rid))
        assert status.value in str(err)


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
@pytest.mark.parametrize("status", ALL_STATES, ids=lambda s: s.value)
def test_allowed_actions_matches_design_and_transitions(status: RefillStatus, role: Role) -> None:
    expected = {a for a in ALLOWED_FROM[status] if role in ALLOWED_ROLES[a]}
    got = refills.allowed_actions(status, role)
    assert len(got) == len(set(got))
    assert set(got) == expected
    from_table = {
        a for a, t in refills.TRANSITIONS.items() if status in t.from_states and role in t.roles
    }
    assert set(got) == from_table
    for a in got:
        assert refills.TRANSITIONS[a].to_state == TARGET[a]


# ------------------------------------------------------------------ role guard


FROM_STATE = {
    A.APPROVE: S.REQUESTED,
    A.SCHEDULE: S.APPROVED,
    A.DELIVER: S.SCHEDULED,
    A.CONFIRM: S.DELIVERED,
    A.REJECT: S.REQUESTED,
    A.CANCEL: S.REQUESTED,
}


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
@pytest.mark.parametrize("action", TRANSITION_ACTIONS, ids=lambda a: a.value)
def test_role_guard(
    factory: SessionFactory, session: Session, stand: StandFixture, action: RefillAction, role: Role
) -> None:
    rid = refill_in(session, stand, FROM_STATE[action])  # requested by REP
    actor = ACTOR_OF_ROLE[role]
    if role in ALLOWED_ROLES[action]:
        assert take(session, action, actor, rid).status == TARGET[action]
        last = events(factory, rid)[-1]
        assert (last.actor, last.role) == (actor.user, role.value)
    else:
        err = assert_refused(factory, PermissionDenied, lambda: take(session, action, actor, rid))
        assert role.value in str(err)


def test_rep_cannot_approve_schedule_or_reject(
    factory: SessionFactory, session: Session, stand: StandFixture
) -> None:
    rid = refill_in(session, stand, S.REQUESTED)
    assert_refused(factory, PermissionDenied, lambda: refills.approve_refill(session, REP, rid))
    assert_refused(
        factory, PermissionDenied, lambda: refills.reject_refill(session, REP, rid, "no")
    )
    take(session, A.APPROVE, MANAGER, rid)
    assert_refused(
        factory,
        PermissionDenied,
        lambda: refills.schedule_refill(session, REP, rid, delivery_day(), "Nordgross"),
    )


def test_partner_confirms_but_cannot_approve_or_request(
    factory: SessionFactory, session: Session, stand: StandFixture
) -> None:
    assert_refused(factory, PermissionDenied, lambda: new_refill(session, stand, actor=PARTNER))
    rid = refill_in(session, stand, S.REQUESTED)
    assert_refused(factory, PermissionDenied, lambda: refills.approve_refill(session, PARTNER, rid))
    for action, actor in PATH_TO[S.DELIVERED]:
        take(session, action, actor, rid)
    assert refills.confirm_refill(session, PARTNER, rid).status == S.CONFIRMED
    assert refill_row(factory, rid).confirmed_by == PARTNER.user


@pytest.mark.parametrize("status", [S.REQUESTED, S.APPROVED, S.SCHEDULED], ids=lambda s: s.value)
def test_rep_cancels_only_own_request(
    factory: SessionFactory, session: Session, stand: StandFixture, status: RefillStatus
) -> None:
    rid = refill_in(session, stand, status)  # requested by REP
    err = assert_refused(
        factory,
        PermissionDenied,
        lambda: refills.cancel_refill(session, OTHER_REP, rid, "Not mine"),
    )
    assert "requested" in str(err)
    res = refills.cancel_refill(session, REP, rid, "Double request")
    assert res.status == S.CANCELLED
    row = refill_row(factory, rid)
    assert (row.closed_by, row.close_reason) == (REP.user, "Double request")
    # A manager may cancel anyone's.
    other = refill_in(session, stand, status)
    assert refills.cancel_refill(session, MANAGER, other, "Budget").status == S.CANCELLED


def test_manager_rejects_with_stamp_and_reason(
    factory: SessionFactory, session: Session, stand: StandFixture
) -> None:
    rid = refill_in(session, stand, S.APPROVED)
    at = datetime(2030, 2, 2, 8, 0, tzinfo=UTC)
    res = refills.reject_refill(session, MANAGER, rid, "  Stand closes for renovation ", now=at)
    assert res.status == S.REJECTED
    row = refill_row(factory, rid)
    assert (row.closed_by, row.closed_at, row.close_reason) == (
        MANAGER.user,
        at,
        "Stand closes for renovation",
    )
    ev = events(factory, rid)[-1]
    assert (ev.action, ev.from_status, ev.to_status) == (A.REJECT, S.APPROVED, S.REJECTED)
    assert json.loads(ev.detail)["reason"] == "Stand closes for renovation"
    assert json.loads(ops(factory)[-1].payload)["reason"] == "Stand closes for renovation"


@pytest.mark.parametrize("reason", ["", "   ", None])
@pytest.mark.parametrize("action", [A.REJECT, A.CANCEL], ids=lambda a: a.value)
def test_reject_and_cancel_need_a_reason(
    factory: SessionFactory,
    session: Session,
    stand: StandFixture,
    action: RefillAction,
    reason: str | None,
) -> None:
    rid = refill_in(session, stand, S.REQUESTED)
    fn = refills.reject_refill if action == A.REJECT else refills.cancel_refill
    err = assert_refused(factory, ValidationError, lambda: fn(session, MANAGER, rid, reason))
    assert err.field == "reason"
    assert refill_row(factory, rid).status == S.REQUESTED


def test_unknown_refill_is_not_found(
    factory: SessionFactory, session: Session, stand: StandFixture
) -> None:
    from app.errors import NotFound

    assert_refused(factory, NotFound, lambda: refills.approve_refill(session, MANAGER, new_id()))
    assert_refused(factory, NotFound, lambda: refills.approve_refill(session, MANAGER, "junk"))
    assert_refused(
        factory,
        NotFound,
        lambda: refills.resolve_discrepancy(session, MANAGER, new_id(), accept_received=True),
    )


# ------------------------------------------------------------------ approval


def test_partial_approval(factory: SessionFactory, session: Session, stand: StandFixture) -> None:
    p0, p1, p2 = p(stand, 0), p(stand, 1), p(stand, 2)
    rid = new_refill(session, stand, quantities={p0: 12, p1: 6, p2: 4}).refill_id
    res = refills.approve_refill(session, MANAGER, rid, {p0: 5, p2: 0})
    assert {ln.product_id: (ln.requested, ln.approved) for ln in res.lines} == {
        p0: (12, 5),
        p1: (6, 6),
        p2: (4, 0),
    }
    assert {pid: i.approved_qty for pid, i in items(factory, rid).items()} == {p0: 5, p1: 6, p2: 0}
    assert json.loads(events(factory, rid)[-1].detail)["approved"] == {p0: 5, p1: 6, p2: 0}
    # Delivery defaults to the approved quantities; a line approved at zero moves nothing.
    take(session, A.SCHEDULE, MANAGER, rid)
    refills.deliver_refill(session, REP, rid)
    assert sorted((m.product_id, m.quantity) for m in movements(factory, ref_id=rid)) == sorted(
        [(p0, 5), (p1, 6)]
    )
    assert on_hand(factory, stand.stand_id, p2) == 0


def test_approval_of_product_not_on_refill_is_refused(
    factory: SessionFactory, session: Session, stand: StandFixture
) -> None:
    rid = refill_in(session, stand, S.REQUESTED)
    err = assert_refused(
        factory,
        ValidationError,
        lambda: refills.approve_refill(session, MANAGER, rid, {p(stand, 0): 3, p(stand, 5): 2}),
    )
    assert "not on this refill" in str(err)
    assert refill_row(factory, rid).status == S.REQUESTED


@pytest.mark.parametrize("bad", [-1, "two", Decimal("1.5"), True, 1.0])
def test_approval_quantity_must_be_a_whole_non_negative_number(
    factory: SessionFactory, session: Session, stand: StandFixture, bad: object
) -> None:
    rid = refill_in(session, stand, S.REQUESTED)
    assert_refused(
        factory,
        ValidationError,
        lambda: refills.approve_refill(session, MANAGER, rid, {p(stand, 0): bad}),
    )


def test_approving_all_zeros_is_refused(
    factory: SessionFactory, session: Session, stand: StandFixture
) -> None:
    rid = refill_in(session, stand, S.REQUESTED)
    err = assert_refused(
        factory,
        ValidationError,
        lambda: refills.approve_refill(session, MANAGER, rid, {p(stand, 0): 0, p(stand, 1): "0"}),
    )
    assert err.field == "quantities"
    row = refill_row(factory, rid)
    assert row.status == S.REQUESTED
    assert row.approved_by is None
    assert all(i.approved_qty is None for i in items(factory, rid).values())
    # The same session can still approve properly afterwards (nothing stale left behind).
    res = refills.approve_refill(session, MANAGER, rid, {p(stand, 0): 1})
    assert {ln.product_id: ln.approved for ln in res.lines} == {p(stand, 0): 1, p(stand, 1): 6}


def test_lifecycle_quantities_accept_sku_and_barcode(
    factory: SessionFactory,
    session: Session,
    stand: StandFixture,
    catalog: list[CatalogProduct],
) -> None:
    """What the request accepts (id, SKU or scanned barcode), later steps accept too."""
    c0, c1 = (next(c for c in catalog if c.id == p(stand, n)) for n in (0, 1))
    rid = new_refill(session, stand, quantities={c0.sku: 12, c1.gtin: 6}).refill_id
    res = refills.approve_refill(session, MANAGER, rid, {c0.sku: 10})
    assert {ln.product_id: ln.approved for ln in res.lines} == {c0.id: 10, c1.id: 6}
    take(session, A.SCHEDULE, MANAGER, rid)
    res = refills.deliver_refill(session, REP, rid, {c0.gtin: 9, c1.sku: 6})
    assert {ln.product_id: ln.delivered for ln in res.lines} == {c0.id: 9, c1.id: 6}
    assert_refused(
        factory,
        ValidationError,
        lambda: refills.confirm_refill(session, PARTNER, rid, {c0.sku: 9, c0.id: 8}),
    )
    res = refills.confirm_refill(session, PARTNER, rid, {c1.gtin: 5})
    assert {ln.product_id: ln.received for ln in res.lines} == {c0.id: 9, c1.id: 5}
    assert len(res.discrepancies) == 1


# ------------------------------------------------------------------ scheduling


def test_scheduling_in_the_past_is_refused(
    factory: SessionFactory, session: Session, stand: StandFixture
) -> None:
    rid = refill_in(session, stand, S.APPROVED)
    now = datetime(2030, 6, 10, 12, 0, tzinfo=UTC)
    err = assert_refused(
        factory,
        ValidationError,
        lambda: refills.schedule_refill(
            session, MANAGER, rid, date(2030, 6, 9), "Nordgross", now=now
        ),
    )
    assert err.field == "scheduled_for"
    res = refills.schedule_refill(
        session, MANAGER, rid, date(2030, 6, 10), "Nordgross", now=now
    )  # today is fine
    assert res.status == S.SCHEDULED


def test_schedule_date_is_judged_in_the_stands_local_day(
    factory: SessionFactory, session: Session, stand: StandFixture
) -> None:
    """Days are calendar days in the program's zone, Europe/Berlin (where this stand is).
    At 22:30 UTC on 10 June it is already 11 June there, so 10 June is in the past for the
    people at the stand and must be refused, although it is still 10 June in UTC."""
    rid = refill_in(session, stand, S.APPROVED)
    late = datetime(2030, 6, 10, 22, 30, tzinfo=UTC)  # 00:30 on 11 June in Berlin
    assert_refused(
        factory,
        ValidationError,
        lambda: refills.schedule_refill(
            session, MANAGER, rid, date(2030, 6, 10), "Nordgross", now=late
        ),
    )
    res = refills.schedule_refill(session, MANAGER, rid, date(2030, 6, 11), "Nordgross", now=late)
    assert res.status == S.SCHEDULED


@pytest.mark.parametrize("dealer", ["", "   ", None])
def test_scheduling_needs_a_dealer(
    factory: SessionFactory, session: Session, stand: StandFixture, dealer: str | None
) -> None:
    rid = refill_in(session, stand, S.APPROVED)
    err = assert_refused(
        factory,
        ValidationError,
        lambda: refills.schedule_refill(session, MANAGER, rid, delivery_day(), dealer),
    )
    assert err.field == "dealer"


def test_scheduling_needs_a_date(
    factory: SessionFactory, session: Session, stand: StandFixture
) -> None:
    rid = refill_in(session, stand, S.APPROVED)
    assert_refused(
        factory,
        ValidationError,
        lambda: refills.schedule_refill(session, MANAGER, rid, None, "Nordgross"),
    )


# ------------------------------------------------------------------ delivery


def test_partial_delivery(factory: SessionFactory, session: Session, stand: StandFixture) -> None:
    p0, p1 = p(stand, 0), p(stand, 1)
    rid = refill_in(session, stand, S.SCHEDULED)
    res = refills.deliver_refill(session, REP, rid, {p0: 7})
    assert {ln.product_id: (ln.approved, ln.delivered) for ln in res.lines} == {
        p0: (12, 7),
        p1: (6, 6),
    }
    assert on_hand(factory, stand.stand_id, p0) == 7
    assert on_hand(factory, stand.stand_id, p1) == 6
    assert {pid: i.delivered_qty for pid, i in items(factory, rid).items()} == {p0: 7, p1: 6}


def test_delivering_more_than_approved_is_refused(
    factory: SessionFactory, session: Session, stand: StandFixture
) -> None:
    rid = refill_in(session, stand, S.SCHEDULED)
    err = assert_refused(
        factory,
        ValidationError,
        lambda: refills.deliver_refill(session, REP, rid, {p(stand, 1): 7}),
    )
    assert "approved" in str(err)
    assert on_hand(factory, stand.stand_id, p(stand, 0)) == 0
    assert refill_row(factory, rid).status == S.SCHEDULED


def test_delivering_nothing_is_refused(
    factory: SessionFactory, session: Session, stand: StandFixture
) -> None:
    rid = refill_in(session, stand, S.SCHEDULED)
    err = assert_refused(
        factory,
        ValidationError,
        lambda: refills.deliver_refill(session, REP, rid, {p(stand, 0): 0, p(stand, 1): 0}),
    )
    assert err.field == "quantities"
    assert movements(factory, ref_id=rid) == []


def test_delivery_of_product_not_on_refill_is_refused(
    factory: SessionFactory, session: Session, stand: StandFixture
) -> None:
    rid = refill_in(session, stand, S.SCHEDULED)
    assert_refused(
        factory,
        ValidationError,
        lambda: refills.deliver_refill(session, REP, rid, {p(stand, 7): 1}),
    )


# ------------------------------------------------------------------ delivery in parts


def _detail(event: StandRefillEvent) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(event.detail)
    return value


def test_delivery_in_two_parts(
    factory: SessionFactory, session: Session, stand: StandFixture
) -> None:
    p0, p1 = p(stand, 0), p(stand, 1)
    rid = refill_in(session, stand, S.SCHEDULED)  # p0: 12, p1: 6 approved
    seq0 = len(ops(factory))
    t1 = datetime(2030, 5, 2, 9, 0, tzinfo=UTC)
    t2 = t1 + timedelta(days=1)

    first = refills.deliver_refill(session, REP, rid, {p0: 5}, more_to_come=True, now=t1)
    assert first.status == S.SCHEDULED
    assert {ln.product_id: (ln.approved, ln.delivered) for ln in first.lines} == {
        p0: (12, 5),
        p1: (6, 6),  # not listed: all its remaining units
    }
    row = refill_row(factory, rid)
    assert row.status == S.SCHEDULED
    assert (row.delivered_by, row.delivered_at) == (None, None)  # not complete yet
    assert row.updated_at == t1
    assert (on_hand(factory, stand.stand_id, p0), on_hand(factory, stand.stand_id, p1)) == (5, 6)

    second = refills.deliver_refill(session, MANAGER, rid, now=t2)  # the rest
    assert second.status == S.DELIVERED
    assert {pid: i.delivered_qty for pid, i in items(factory, rid).items()} == {p0: 12, p1: 6}
    row = refill_row(factory, rid)
    assert (row.delivered_by, row.delivered_at) == (MANAGER.user, t2)  # when the last arrived

    # Two movements for p0 (one per part), one for p1; stock and ledger agree.
    moves = movements(factory, ref_id=rid)
    assert sorted((m.product_id, m.quantity, m.occurred_at) for m in moves) == sorted(
        [(p0, 5, t1), (p1, 6, t1), (p0, 7, t2)]
    )
    assert all(m.kind == MovementKind.REFILL_DELIVERY for m in moves)
    assert (on_hand(factory, stand.stand_id, p0), on_hand(factory, stand.stand_id, p1)) == (12, 6)
    assert ledger_sum(factory, stand.stand_id, p0) == 12
    assert read(factory, lambda s: inventory.verify_on_hand(s)) == []

    delivers = [e for e in events(factory, rid) if e.action == A.DELIVER]
    assert [(e.from_status, e.to_status, e.actor, e.occurred_at) for e in delivers] == [
        (S.SCHEDULED, S.SCHEDULED, REP.user, t1),
        (S.SCHEDULED, S.DELIVERED, MANAGER.user, t2),
    ]
    d1, d2 = (_detail(e) for e in delivers)
    by_part = [{m.product_id: m.id for m in moves if m.occurred_at == t} for t in (t1, t2)]
    assert d1 == {
        "delivered": {p0: 5, p1: 6},
        "delivered_total": {p0: 5, p1: 6},
        "movements": by_part[0],
        "partial": True,
    }
    assert d2 == {
        "delivered": {p0: 7, p1: 0},
        "delivered_total": {p0: 12, p1: 6},
        "movements": by_part[1],
    }

    log = ops(factory)[seq0:]
    assert [o.op_type for o in log] == ["refill.deliver", "refill.deliver"]
    assert [o.device_seq for o in log] == [seq0 + 1, seq0 + 2]  # one op per delivery, no gaps
    payloads = [json.loads(o.payload) for o in log]
    assert [pl["event_id"] for pl in payloads] == [e.id for e in delivers]
    assert [(pl["from"], pl["to"]) for pl in payloads] == [
        ("scheduled", "scheduled"),
        ("scheduled", "delivered"),
    ]
    assert payloads[0]["partial"] is True
    assert "partial" not in payloads[1]
    assert [pl["movements"] for pl in payloads] == by_part


def test_more_to_come_that_brings_every_unit_is_the_last_delivery(
    factory: SessionFactory, session: Session, stand: StandFixture
) -> None:
    p0, p1 = p(stand, 0), p(stand, 1)
    rid = refill_in(session, stand, S.SCHEDULED)
    refills.deliver_refill(session, REP, rid, {p0: 4, p1: 0}, more_to_come=True)
    res = refills.deliver_refill(session, REP, rid, {p0: 8, p1: 6}, more_to_come=True)
    assert res.status == S.DELIVERED
    last = events(factory, rid)[-1]
    assert (last.from_status, last.to_status) == (S.SCHEDULED, S.DELIVERED)
    assert "partial" not in _detail(last)
    assert refill_row(factory, rid).delivered_by == REP.user


def test_a_single_delivery_with_more_to_come_and_every_unit_is_final(
    factory: SessionFactory, session: Session, stand: StandFixture
) -> None:
    rid = refill_in(session, stand, S.SCHEDULED)
    assert refills.deliver_refill(session, REP, rid, more_to_come=True).status == S.DELIVERED
    (deliver,) = [e for e in events(factory, rid) if e.action == A.DELIVER]
    assert _detail(deliver)["delivered"] == _detail(deliver)["delivered_total"]


def test_delivering_more_than_approved_over_the_parts_is_refused(
    factory: SessionFactory, session: Session, stand: StandFixture
) -> None:
    p0, p1 = p(stand, 0), p(stand, 1)
    rid = refill_in(session, stand, S.SCHEDULED)
    refills.deliver_refill(session, REP, rid, {p0: 8}, more_to_come=True)  # p1: all 6
    n_moves = len(movements(factory))
    name = {pid: read(factory, lambda s, pid=pid: s.get_one(Product, pid).name) for pid in (p0, p1)}
    err = assert_refused(
        factory,
        ValidationError,
        lambda: refills.deliver_refill(session, REP, rid, {p0: 5}, more_to_come=True),
        match=f"13 {name[p0]} delivered in total but only 12 approved",
    )
    assert err.field == f"qty:{p0}"
    err = assert_refused(
        factory,
        ValidationError,
        lambda: refills.deliver_refill(session, REP, rid, {p0: 4, p1: 1}),
        match=f"7 {name[p1]} delivered in total but only 6 approved",
    )
    assert err.field == f"qty:{p1}"
    assert len(movements(factory)) == n_moves
    assert {pid: i.delivered_qty for pid, i in items(factory, rid).items()} == {p0: 8, p1: 6}
    assert on_hand(factory, stand.stand_id, p0) == 8
    assert refill_row(factory, rid).status == S.SCHEDULED


def test_a_part_delivery_with_nothing_in_it_is_refused(
    factory: SessionFactory, session: Session, stand: StandFixture
) -> None:
    p0, p1 = p(stand, 0), p(stand, 1)
    rid = refill_in(session, stand, S.SCHEDULED)
    err = assert_refused(
        factory,
        ValidationError,
        lambda: refills.deliver_refill(session, REP, rid, {p0: 0, p1: 0}, more_to_come=True),
        match="cancel the refill instead",
    )
    assert err.field == "quantities"
    refills.deliver_refill(session, REP, rid, {p0: 6, p1: 0}, more_to_come=True)
    err = assert_refused(
        factory,
        ValidationError,
        lambda: refills.deliver_refill(session, REP, rid, {p0: 0, p1: 0}, more_to_come=True),
        match="Nothing is in this delivery",
    )
    assert err.field == "quantities"


def test_the_last_delivery_may_bring_nothing_when_the_rest_is_not_coming(
    factory: SessionFactory, session: Session, stand: StandFixture
) -> None:
    p0, p1 = p(stand, 0), p(stand, 1)
    rid = refill_in(session, stand, S.SCHEDULED)
    refills.deliver_refill(session, REP, rid, {p0: 5}, more_to_come=True)
    n_moves = len(movements(factory))
    res = refills.deliver_refill(session, REP, rid, {p0: 0})
    assert res.status == S.DELIVERED
    assert len(movements(factory)) == n_moves
    assert {pid: i.delivered_qty for pid, i in items(factory, rid).items()} == {p0: 5, p1: 6}
    assert _detail(events(factory, rid)[-1]) == {
        "delivered": {p0: 0, p1: 0},
        "delivered_total": {p0: 5, p1: 6},
        "movements": {},
    }
    assert refills.confirm_refill(session, PARTNER, rid).discrepancies == ()


@pytest.mark.parametrize("who", [REP, MANAGER], ids=["rep", "manager"])
def test_cancelling_after_a_part_delivery_is_refused(
    factory: SessionFactory, session: Session, stand: StandFixture, who: Actor
) -> None:
    rid = refill_in(session, stand, S.SCHEDULED)
    refills.deliver_refill(session, REP, rid, {p(stand, 0): 3}, more_to_come=True)
    assert A.CANCEL in refills.allowed_actions(S.SCHEDULED, who.role)  # the table is unchanged
    err = assert_refused(
        factory,
        InvalidTransition,
        lambda: refills.cancel_refill(session, who, rid, "Changed my mind"),
        match="already delivered; record the last delivery instead",
    )
    assert err.field == "status"
    assert refill_row(factory, rid).status == S.SCHEDULED
    assert on_hand(factory, stand.stand_id, p(stand, 0)) == 3


def test_confirmation_compares_with_everything_delivered(
    factory: SessionFactory, session: Session, stand: StandFixture
) -> None:
    p0, p1 = p(stand, 0), p(stand, 1)
    rid = refill_in(session, stand, S.SCHEDULED)
    refills.deliver_refill(session, REP, rid, {p0: 5, p1: 2}, more_to_come=True)
    refills.deliver_refill(session, REP, rid, {p0: 7, p1: 3})  # p1: 5 of 6, closed
    res = refills.confirm_refill(session, PARTNER, rid, {p0: 11})
    (did,) = res.discrepancies
    d = read(factory, lambda s: s.get_one(RefillDiscrepancy, did))
    assert (d.product_id, d.delivered_qty, d.received_qty) == (p0, 12, 11)
    assert {pid: i.received_qty for pid, i in items(factory, rid).items()} == {p0: 11, p1: 5}
    assert on_hand(factory, stand.stand_id, p0) == 12  # stock keeps the delivered figure
    assert read(factory, lambda s: inventory.verify_on_hand(s)) == []


# ------------------------------------------------------------------ confirmation


def _delivered(session: Session, stand: StandFixture) -> str:
    return refill_in(session, stand, S.DELIVERED)  # p0: 12, p1: 6 delivered


def test_confirmation_matching_delivery_opens_no_discrepancy(
    factory: SessionFactory, session: Session, stand: StandFixture
) -> None:
    rid = _delivered(session, stand)
    res = refills.confirm_refill(session, PARTNER, rid, {p(stand, 0): 12, p(stand, 1): "6"})
    assert res.discrepancies == ()
    assert (
        read(factory, lambda s: s.scalar(select(func.count()).select_from(RefillDiscrepancy))) == 0
    )
    assert {pid: i.received_qty for pid, i in items(factory, rid).items()} == {
        p(stand, 0): 12,
        p(stand, 1): 6,
    }


def test_confirmation_with_difference_opens_discrepancy_and_keeps_stock(
    factory: SessionFactory, session: Session, stand: StandFixture
) -> None:
    p0, p1 = p(stand, 0), p(stand, 1)
    rid = _delivered(session, stand)
    n_moves = len(movements(factory))
    res = refills.confirm_refill(session, PARTNER, rid, {p0: 10})
    assert res.status == S.CONFIRMED
    assert len(res.discrepancies) == 1
    disc = read(factory, lambda s: list(s.scalars(select(RefillDiscrepancy))))
    assert len(disc) == 1
    d = disc[0]
    assert d.id == res.discrepancies[0]
    assert (d.refill_id, d.stand_id, d.product_id, d.delivered_qty, d.received_qty, d.status) == (
        rid,
        stand.stand_id,
        p0,
        12,
        10,
        DiscrepancyStatus.OPEN,
    )
    assert on_hand(factory, stand.stand_id, p0) == 12  # stock not changed silently
    assert on_hand(factory, stand.stand_id, p1) == 6
    assert len(movements(factory)) == n_moves
    payload = json.loads(ops(factory)[-1].payload)
    assert payload["discrepancies"] == {d.product_id: d.id}


@pytest.mark.parametrize("received", [10, 15, 0])
def test_accepting_received_posts_correction(
    factory: SessionFactory, session: Session, stand: StandFixture, received: int
) -> None:
    p0 = p(stand, 0)
    rid = _delivered(session, stand)
    res = refills.confirm_refill(session, PARTNER, rid, {p0: received})
    (did,) = res.discrepancies
    seq_before = len(ops(factory))
    at = datetime(2030, 4, 4, 10, 0, tzinfo=UTC)
    out = refills.resolve_discrepancy(
        session, MANAGER, did, accept_received=True, note="Partner counted twice", now=at
    )
    assert out.status == DiscrepancyStatus.ACCEPTED_RECEIVED
    assert out.movement_id is not None
    (m,) = movements(factory, kind=MovementKind.REFILL_CORRECTION)
    assert m.id == out.movement_id
    assert (m.quantity, m.stand_id, m.product_id, m.ref_type, m.ref_id) == (
        received - 12,
        stand.stand_id,
        p0,
        "refill_discrepancy",
        did,
    )
    assert on_hand(factory, stand.stand_id, p0) == received
    assert ledger_sum(factory, stand.stand_id, p0) == received
    d = read(factory, lambda s: s.get_one(RefillDiscrepancy, did))
    assert (d.status, d.resolved_by, d.resolved_at, d.resolution_note) == (
        DiscrepancyStatus.ACCEPTED_RECEIVED,
        MANAGER.user,
        at,
        "Partner counted twice",
    )
    log = ops(factory)
    assert len(log) == seq_before + 1
    assert log[-1].op_type == "refill.resolve_discrepancy"
    assert json.loads(log[-1].payload)["movement_id"] == m.id


def test_keeping_delivered_posts_nothing(
    factory: SessionFactory, session: Session, stand: StandFixture
) -> None:
    p0 = p(stand, 0)
    rid = _delivered(session, stand)
    (did,) = refills.confirm_refill(session, PARTNER, rid, {p0: 9}).discrepancies
    n_moves = len(movements(factory))
    out = refills.resolve_discrepancy(session, ADMIN, did, accept_received=False)
    assert (out.status, out.movement_id) == (DiscrepancyStatus.KEPT_DELIVERED, None)
    assert len(movements(factory)) == n_moves
    assert on_hand(factory, stand.stand_id, p0) == 12
    assert ops(factory)[-1].op_type == "refill.resolve_discrepancy"


@pytest.mark.parametrize("first", [True, False])
def test_resolving_twice_is_refused(
    factory: SessionFactory, session: Session, stand: StandFixture, first: bool
) -> None:
    rid = _delivered(session, stand)
    (did,) = refills.confirm_refill(session, PARTNER, rid, {p(stand, 0): 9}).discrepancies
    refills.resolve_discrepancy(session, MANAGER, did, accept_received=first)
    for again in (True, False):
        assert_refused(
            factory,
            InvalidTransition,
            lambda a=again: refills.resolve_discrepancy(session, MANAGER, did, accept_received=a),
        )


@pytest.mark.parametrize("actor", [REP, PARTNER], ids=lambda a: a.role.value)
def test_only_managers_resolve(
    factory: SessionFactory, session: Session, stand: StandFixture, actor: Actor
) -> None:
    rid = _delivered(session, stand)
    (did,) = refills.confirm_refill(session, PARTNER, rid, {p(stand, 0): 9}).discrepancies
    assert_refused(
        factory,
        PermissionDenied,
        lambda: refills.resolve_discrepancy(session, actor, did, accept_received=True),
    )


# ------------------------------------------------------------------ pricing and totals


def test_list_price_is_the_default(
    factory: SessionFactory, session: Session, stand: StandFixture, catalog: list[CatalogProduct]
) -> None:
    by_id = {c.id: c for c in catalog}
    p0, p1 = p(stand, 0), p(stand, 1)
    res = new_refill(session, stand, quantities={by_id[p0].sku: 3, p1: 5})
    prices = {ln.product_id: ln.unit_price for ln in res.lines}
    assert prices == {p0: by_id[p0].list_price, p1: by_id[p1].list_price}
    expected = money(by_id[p0].list_price * 3) + money(by_id[p1].list_price * 5)
    assert res.total == expected
    assert refill_row(factory, res.refill_id).total == expected


@pytest.mark.parametrize("price", ["1.00", "1.0001", "2.35", "39.99", "40.00", Decimal("12")])
def test_price_override_within_guardrails(
    factory: SessionFactory, session: Session, stand: StandFixture, price: object
) -> None:
    p0 = p(stand, 0)
    res = new_refill(session, stand, quantities={p0: 2}, prices={p0: price})
    (line,) = res.lines
    assert line.unit_price == Decimal(str(price))
    assert items(factory, res.refill_id)[p0].unit_price == Decimal(str(price))
    assert res.total == money(Decimal(str(price)) * 2)


@pytest.mark.parametrize("price", ["0.99", "0", "40.01", "-1", "abc", "1.00001", 2.5])
def test_price_override_outside_guardrails_is_refused(
    factory: SessionFactory, session: Session, stand: StandFixture, price: object
) -> None:
    p0 = p(stand, 0)
    err = assert_refused(
        factory,
        ValidationError,
        lambda: new_refill(session, stand, quantities={p0: 2, p(stand, 1): 1}, prices={p0: price}),
    )
    assert err.field == f"price:{p0}"


def test_price_override_by_sku(
    factory: SessionFactory, session: Session, stand: StandFixture, catalog: list[CatalogProduct]
) -> None:
    sku = {c.id: c.sku for c in catalog}[p(stand, 0)]
    res = new_refill(session, stand, quantities={sku: 1}, prices={sku: "3.33"})
    assert res.lines[0].unit_price == Decimal("3.33")
    assert_refused(
        factory,
        ValidationError,
        lambda: new_refill(session, stand, quantities={sku: 1}, prices={sku: "50"}),
    )


def test_totals_round_each_line_half_up_at_approved_else_requested(
    factory: SessionFactory, session: Session, stand: StandFixture
) -> None:
    p0, p1 = p(stand, 0), p(stand, 1)
    # 1 x 1.0050 = 1.005 -> 1.01 (half up, per line); 1 x 2.0050 -> 2.01. Rounding the sum
    # instead would give 3.01, and banker's rounding would give 1.00 + 2.00.
    res = new_refill(session, stand, quantities={p0: 1, p1: 1}, prices={p0: "1.0050", p1: "2.0050"})
    assert res.total == Decimal("3.02")
    rid = res.refill_id
    assert refill_row(factory, rid).total == Decimal("3.02")
    # Approved 3 x 1.005 = 3.015 -> 3.02; p1 approved as requested -> 2.01.
    res = refills.approve_refill(session, MANAGER, rid, {p0: 3})
    assert res.total == Decimal("5.03")
    assert refill_row(factory, rid).total == Decimal("5.03")
    # Zero approved contributes nothing, even though 1 was requested.
    rid2 = new_refill(
        session, stand, quantities={p0: 1, p1: 4}, prices={p0: "1.0050", p1: "2.0050"}
    ).refill_id
    res = refills.approve_refill(session, MANAGER, rid2, {p1: 0})
    assert res.total == Decimal("1.01")
    # Delivering fewer does not change the refill's value (it is priced as approved).
    take(session, A.SCHEDULE, MANAGER, rid)
    res = refills.deliver_refill(session, REP, rid, {p0: 1})
    assert res.total == Decimal("5.03")


# ------------------------------------------------------------------ request


def test_request_needs_at_least_one_positive_quantity(
    factory: SessionFactory, session: Session, stand: StandFixture
) -> None:
    assert_refused(
        factory, ValidationError, lambda: new_refill(session, stand, quantities={p(stand, 0): 0})
    )
    assert_refused(factory, ValidationError, lambda: new_refill(session, stand, quantities={}))


def test_request_refuses_products_not_carried_or_listed_twice(
    factory: SessionFactory, session: Session, stand: StandFixture, catalog: list[CatalogProduct]
) -> None:
    not_carried = next(c for c in catalog if c.id not in stand.product_ids)
    assert_refused(
        factory, ValidationError, lambda: new_refill(session, stand, quantities={not_carried.id: 1})
    )
    mine = next(c for c in catalog if c.id == p(stand, 0))
    assert_refused(
        factory,
        ValidationError,
        lambda: new_refill(session, stand, quantities={mine.id: 1, mine.sku: 2}),
    )
    assert_refused(
        factory, DomainError, lambda: new_refill(session, stand, quantities={"NO-SUCH-SKU": 1})
    )


def test_request_for_unknown_stand_is_refused(
    factory: SessionFactory, session: Session, stand: StandFixture
) -> None:
    from app.errors import NotFound

    assert_refused(
        factory, NotFound, lambda: refills.request_refill(session, REP, new_id(), {p(stand, 0): 1})
    )


def test_idempotent_request(factory: SessionFactory, session: Session, stand: StandFixture) -> None:
    rid = new_id()
    first = new_refill(session, stand, refill_id=rid)
    assert first.refill_id == rid
    assert not first.duplicate
    before = dump(factory)
    again = new_refill(session, stand, refill_id=rid, quantities={p(stand, 3): 99})
    assert again.duplicate is True
    assert again.refill_id == rid
    assert again.lines == first.lines
    assert again.total == first.total
    assert again.status == S.REQUESTED
    assert dump(factory) == before
    # The duplicate reports the refill as it is now, not as first requested.
    take(session, A.APPROVE, MANAGER, rid)
    assert new_refill(session, stand, refill_id=rid).status == S.APPROVED


def test_reused_refill_id_for_another_stand_is_refused(
    factory: SessionFactory, session: Session, stand: StandFixture
) -> None:
    rid = new_refill(session, stand).refill_id
    other = make_stand(session, name="Bahnhof Kiosk")
    assert_refused(
        factory,
        ValidationError,
        lambda: refills.request_refill(
            session, REP, other.stand_id, {other.product_ids[0]: 1}, refill_id=rid
        ),
    )


def test_invalid_refill_id_is_refused(
    factory: SessionFactory, session: Session, stand: StandFixture
) -> None:
    assert_refused(
        factory, ValidationError, lambda: new_refill(session, stand, refill_id="not-a-uuid")
    )


# ------------------------------------------------------------------ suggested quantities


def _one_sku_stand(session: Session, catalog: list[CatalogProduct], pack: int) -> StandFixture:
    product = next(c for c in catalog if c.pack_size == pack)
    return make_stand(session, name=f"Pack {pack} stand", products=[product.id])


def _set_on_hand(session: Session, stand: StandFixture, product_id: str, qty: int) -> None:
    if qty >= 0:
        inventory.record_count(session, REP, stand.stand_id, {product_id: qty})
    else:
        sales.record_sale(session, REP, stand.stand_id, [sales.SaleLine(product_id, -qty)], "cash")


# (pack, par, capacity, on hand) -> suggestion (None: nothing)
SUGGESTIONS = [
    (1, 8, 10, 0, 8),
    (1, 8, 10, 5, 3),
    (1, 8, 10, 8, None),
    (1, 8, 10, 9, None),
    (1, 8, 10, -3, 8),  # oversold: the ledger is below zero, the shelf is empty
    (6, 8, 10, 0, 6),  # two packs (12) would pass capacity 10
    (6, 8, 12, 0, 12),
    (6, 20, 30, 3, 18),
    (6, 20, 22, 3, 18),
    (6, 20, 20, 3, 12),
    (6, 8, 10, 7, None),  # gap 1, but a pack of 6 does not fit in the 3 left
    (12, 8, 10, 0, None),  # a single pack is larger than the capacity
    (12, 20, 40, 0, 24),
    (12, 20, 40, 17, 12),
]


@pytest.mark.parametrize(("pack", "par", "cap", "have", "expected"), SUGGESTIONS)
def test_suggested_quantities(
    factory: SessionFactory,
    session: Session,
    catalog: list[CatalogProduct],
    pack: int,
    par: int,
    cap: int,
    have: int,
    expected: int | None,
) -> None:
    st = _one_sku_stand(session, catalog, pack)
    (pid,) = st.product_ids
    inventory.set_levels(
        session, MANAGER, st.stand_id, pid, capacity=cap, par_level=par, reorder_point=0
    )
    _set_on_hand(session, st, pid, have)
    assert on_hand(factory, st.stand_id, pid) == have
    got = refills.suggest_refill(session, st.stand_id)
    assert got == ({pid: expected} if expected else {})
    if expected:
        assert expected % pack == 0
        assert expected <= cap - max(have, 0)
        res = refills.request_refill(session, REP, st.stand_id)
        assert [(ln.product_id, ln.requested) for ln in res.lines] == [(pid, expected)]
    else:
        err = assert_refused(
            factory, ValidationError, lambda: refills.request_refill(session, REP, st.stand_id)
        )
        assert err.field == "quantities"


def test_request_without_quantities_uses_suggestion_for_the_whole_stand(
    factory: SessionFactory, session: Session, stand: StandFixture, catalog: list[CatalogProduct]
) -> None:
    packs = {c.id: c.pack_size for c in catalog}
    levels = read(
        factory,
        lambda s: {
            i.product_id: (i.par_level, i.capacity, i.on_hand)
            for i in s.scalars(
                select(StandInventory).where(StandInventory.stand_id == stand.stand_id)
            )
        },
    )
    expected = {}
    for pid, (par, cap, have) in levels.items():
        fits = [
            k * packs[pid] for k in range(0, cap // packs[pid] + 1) if k * packs[pid] <= cap - have
        ]
        enough = [q for q in fits if q >= par - have]
        qty = min(enough) if enough else max(fits)
        if qty:
            expected[pid] = qty
    assert expected  # the fixture stand is empty
    res = refills.request_refill(session, REP, stand.stand_id)
    assert {ln.product_id: ln.requested for ln in res.lines} == expected


def test_request_without_quantities_refuses_when_all_at_par(
    factory: SessionFactory, session: Session, stand: StandFixture
) -> None:
    pars = read(
        factory,
        lambda s: {
            i.product_id: i.par_level
            for i in s.scalars(
                select(StandInventory).where(StandInventory.stand_id == stand.stand_id)
            )
        },
    )
    inventory.record_count(session, REP, stand.stand_id, pars)
    assert refills.suggest_refill(session, stand.stand_id) == {}
    err = assert_refused(
        factory, ValidationError, lambda: refills.request_refill(session, REP, stand.stand_id)
    )
    assert "par" in str(err)


def test_product_prices_come_from_catalog_at_request_time(
    factory: SessionFactory, session: Session, stand: StandFixture
) -> None:
    p0 = p(stand, 0)
    rid = new_refill(session, stand, quantities={p0: 2}).refill_id
    old = read(factory, lambda s: s.get_one(Product, p0).list_price)
    with factory() as s, s.begin():
        s.get_one(Product, p0).list_price = old + 1
    res = refills.approve_refill(session, MANAGER, rid)
    assert res.lines[0].unit_price == old  # the refill keeps its price


# ------------------------------------------------------------------ prices and dates


def test_price_for_a_product_not_on_the_refill_is_refused(
    factory: SessionFactory, stand: StandFixture, session: Session
) -> None:
    assert_refused(
        factory,
        ValidationError,
        lambda: new_refill(
            session, stand, quantities={p(stand, 0): 6}, prices={p(stand, 1): "2.00"}
        ),
        match="not on this refill",
    )


def test_price_keyed_by_product_id_applies_to_a_line_keyed_by_sku(
    factory: SessionFactory, stand: StandFixture, session: Session
) -> None:
    sku = read(factory, lambda s: s.get_one(Product, p(stand, 0)).sku)
    price = read(factory, lambda s: s.get_one(Product, p(stand, 0)).list_price) + 1
    result = new_refill(session, stand, quantities={sku: 6}, prices={p(stand, 0): price})
    assert result.lines[0].unit_price == price


def test_delivery_date_is_judged_in_the_stands_time_zone(
    factory: SessionFactory, stand: StandFixture, session: Session
) -> None:
    """At 23:30 UTC it is already the next day in Tokyo: that day's UTC date is the past."""
    with session.begin():
        session.get_one(StandLocation, stand.stand_id).timezone = "Asia/Tokyo"
    rid = refill_in(session, stand, S.APPROVED)
    late_evening_utc = datetime(2031, 3, 10, 23, 30, tzinfo=UTC)
    assert_refused(
        factory,
        ValidationError,
        lambda: refills.schedule_refill(
            session, MANAGER, rid, date(2031, 3, 10), "Dealer", now=late_evening_utc
        ),
        match="in the past",
    )
    done = refills.schedule_refill(
        session, MANAGER, rid, date(2031, 3, 11), "Dealer", now=late_evening_utc
    )
    assert done.status == S.SCHEDULED
