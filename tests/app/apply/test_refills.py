"""Refill ops applied from their payloads: replay equivalence on a device copy, and the
server's check (the from-state guards the rep sees, the amended approvals, deliveries,
line numbers and confirmations).

Two offline devices are copies of one database: each runs the real services, and their ops
are then checked and written, in server order, onto a third copy acting as the server.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.db import SessionFactory
from app.errors import (
    Conflict,
    DomainError,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from app.models import (
    DiscrepancyStatus,
    InventoryMovement,
    LocalDevice,
    MovementKind,
    Product,
    RefillDiscrepancy,
    RefillStatus,
    StandRefillEvent,
    StandRefillOrder,
    StandRefillOrderItem,
)
from app.services import apply, automation, inventory, refills
from tests.app.apply.replay import diff, open_copy, ops_of, replay, snapshot
from tests.conftest import (
    ADMIN,
    MANAGER,
    OTHER_REP,
    PARTNER,
    REP,
    StandFixture,
    make_stand,
)

FAMILY = {
    "refill.request",
    "refill.add_line",
    "refill.approve",
    "refill.schedule",
    "refill.deliver",
    "refill.confirm",
    "refill.reject",
    "refill.cancel",
    "refill.resolve_discrepancy",
}
DAY = date.today() + timedelta(days=3)


# --------------------------------------------------------------------------- helpers


def last_seq(factory: SessionFactory) -> int:
    with factory() as s, s.begin():
        return s.scalar(select(LocalDevice.last_seq)) or 0


def clone(base: Path, dest: Path) -> SessionFactory:
    """Another database that was a copy of ``base`` (a device gone offline, or the server)."""
    dest.write_bytes(base.read_bytes())
    return open_copy(dest)


def only(ops: list[apply.Op], op_type: str) -> apply.Op:
    (op,) = [o for o in ops if o.op_type == op_type]
    return op


def check(factory: SessionFactory, op: apply.Op) -> Mapping[str, Any] | None:
    with factory() as s, s.begin():
        return apply.get_spec(op.op_type).check(s, op)


def push(factory: SessionFactory, op: apply.Op) -> dict[str, Any] | None:
    """What the server does with a pushed op: check, then write the payload as applied.
    Returns the amended payload (None: applied as sent)."""
    spec = apply.get_spec(op.op_type)
    with factory() as s, s.begin():
        amended = spec.check(s, op)
        spec.write(s, op if amended is None else replace(op, payload=dict(amended)))
    return None if amended is None else dict(amended)


def refused(factory: SessionFactory, op: apply.Op, error: type[DomainError]) -> str:
    """The reason the server refuses ``op`` with (nothing of it is written)."""
    with pytest.raises(error) as info:
        push(factory, op)
    assert type(info.value) is error
    return info.value.message


def refill_row(factory: SessionFactory, refill_id: str) -> dict[str, Any]:
    with factory() as s, s.begin():
        r = s.get_one(StandRefillOrder, refill_id)
        return {
            "status": r.status,
            "total": r.total,
            "lines": {
                i.product_id: (i.line_no, i.requested_qty, i.approved_qty, i.delivered_qty)
                for i in r.items
            },
        }


def events(factory: SessionFactory, refill_id: str) -> list[tuple[str, str | None, str, str]]:
    with factory() as s, s.begin():
        return [
            (e.action.value, e.from_status, e.to_status.value, e.role)
            for e in s.scalars(
                select(StandRefillEvent)
                .where(StandRefillEvent.refill_id == refill_id)
                .order_by(StandRefillEvent.occurred_at, StandRefillEvent.id)
            )
        ]


def on_hand(factory: SessionFactory, stand_id: str, product_id: str) -> int:
    with factory() as s, s.begin():
        cached = inventory.on_hand(s, stand_id, product_id)
        assert cached == inventory.ledger_on_hand(s, stand_id, product_id)
        return cached


def name(factory: SessionFactory, product_id: str) -> str:
    with factory() as s, s.begin():
        return s.get_one(Product, product_id).name


def scheduled(factory: SessionFactory, stand: StandFixture, **approved: int) -> str:
    """A refill of the stand's first two products (6 and 4), approved (with ``approved``
    by product index, e.g. ``p0=5``) and scheduled."""
    p0, p1 = stand.product_ids[:2]
    with factory() as s:
        rid = refills.request_refill(s, REP, stand.stand_id, {p0: 6, p1: 4}).refill_id
    quantities = {stand.product_ids[int(k[1:])]: v for k, v in approved.items()}
    with factory() as s:
        refills.approve_refill(s, MANAGER, rid, quantities)
    with factory() as s:
        refills.schedule_refill(s, MANAGER, rid, DAY, "Nordgross")
    return rid


# --------------------------------------------------------------------------- replay


def test_replay_rebuilds_every_refill_row(
    factory: SessionFactory, stand: StandFixture, tmp_path: Path
) -> None:
    base = snapshot(factory, tmp_path / "base.db")
    start = last_seq(factory)
    p0, p1, p2, p3 = stand.product_ids[:4]
    sid = stand.stand_id

    # The whole lifecycle: a line added, a partial approval, a delivery in two parts,
    # a confirmation with a shortfall and a surplus, both discrepancies resolved.
    with factory() as s:
        rid = refills.request_refill(
            s, REP, sid, {p0: 6, p1: 4}, prices={p1: "9.90"}, note="  Before the weekend "
        ).refill_id
    with factory() as s:
        refills.add_refill_line(s, REP, rid, p2, 3)
    with factory() as s:
        refills.approve_refill(s, MANAGER, rid, {p0: 5})
    with factory() as s:
        refills.schedule_refill(s, MANAGER, rid, DAY, "Nordgross")
    with factory() as s:
        refills.deliver_refill(s, REP, rid, {p0: 2, p1: 0, p2: 0}, more_to_come=True)
    with factory() as s:
        refills.deliver_refill(s, OTHER_REP, rid)
    with factory() as s:
        confirmed = refills.confirm_refill(s, PARTNER, rid, {p0: 3, p1: 6})
    assert len(confirmed.discrepancies) == 2
    with factory() as s, s.begin():
        by_product = {
            d.product_id: d.id
            for d in s.scalars(select(RefillDiscrepancy).where(RefillDiscrepancy.refill_id == rid))
        }
    with factory() as s:
        refills.resolve_discrepancy(
            s, MANAGER, by_product[p0], accept_received=True, note=" counted twice "
        )
    with factory() as s:
        refills.resolve_discrepancy(s, ADMIN, by_product[p1], accept_received=False)

    # Rejected after approval; cancelled by its requester; a last delivery of nothing after
    # a part; a confirmation without differences; a line added by Automation.
    with factory() as s:
        rejected = refills.request_refill(s, REP, sid, {p3: 2}).refill_id
    with factory() as s:
        refills.approve_refill(s, MANAGER, rejected)
    with factory() as s:
        refills.reject_refill(s, ADMIN, rejected, "Budget is spent")
    with factory() as s:
        cancelled = refills.request_refill(s, OTHER_REP, sid, {p3: 1}).refill_id
    with factory() as s:
        refills.cancel_refill(s, OTHER_REP, cancelled, "Asked twice")
    short = scheduled(factory, stand, p0=3, p1=0)
    with factory() as s:
        refills.deliver_refill(s, REP, short, {p0: 1}, more_to_come=True)
    with factory() as s:
        refills.deliver_refill(s, REP, short, {p0: 0, p1: 0})
    with factory() as s:
        assert refills.confirm_refill(s, PARTNER, short).discrepancies == ()
    with factory() as s:
        open_id = refills.request_refill(s, REP, sid, {p0: 2}).refill_id
    with factory() as s:
        low = automation.on_low_stock(s, REP, sid, p2, on_hand=1)
    assert (low.outcome, low.refill.refill_id) == ("added", open_id)

    ops = ops_of(factory, after_seq=start)
    assert {o.op_type for o in ops} == FAMILY
    target = open_copy(base)
    replay(ops, target)
    assert diff(factory, target) == []
    replay(ops, target)  # again: every write is idempotent
    assert diff(factory, target) == []
    with target() as s:
        assert inventory.verify_on_hand(s) == []
    assert on_hand(target, sid, p0) == 4  # delivered 5 + 1, corrected by -2
    assert on_hand(target, sid, p1) == 4  # the surplus was kept at the delivered figure


def test_a_partial_delivery_replays_in_order_and_stock_moves_once(
    factory: SessionFactory, stand: StandFixture, tmp_path: Path
) -> None:
    rid = scheduled(factory, stand)
    base = snapshot(factory, tmp_path / "base.db")
    start = last_seq(factory)
    p0, p1 = stand.product_ids[:2]
    with factory() as s:
        refills.deliver_refill(s, REP, rid, {p0: 4, p1: 1}, more_to_come=True)
    ops = ops_of(factory, after_seq=start)
    target = open_copy(base)
    replay(ops * 3, target)
    assert diff(factory, target) == []
    assert refill_row(target, rid)["status"] == RefillStatus.SCHEDULED
    assert (on_hand(target, stand.stand_id, p0), on_hand(target, stand.stand_id, p1)) == (4, 1)
    deliver = only(ops, "refill.deliver")
    assert deliver.payload["partial"] is True
    assert deliver.payload["to"] == deliver.payload["from"] == "scheduled"


# --------------------------------------------------------------------------- two devices


@pytest.fixture
def requested(factory: SessionFactory, stand: StandFixture, tmp_path: Path) -> tuple[str, Path]:
    """A refill (6 and 4 of the first two products) requested before the devices went
    offline: the refill id and the database file as it was then."""
    p0, p1 = stand.product_ids[:2]
    with factory() as s:
        rid = refills.request_refill(s, REP, stand.stand_id, {p0: 6, p1: 4}).refill_id
    return rid, snapshot(factory, tmp_path / "base.db")


def offline(base: Path, tmp_path: Path, *names: str) -> list[tuple[SessionFactory, int]]:
    """Devices (and the server) as copies of ``base``, each with its log position."""
    out = []
    for n in names:
        f = clone(base, tmp_path / f"{n}.db")
        out.append((f, last_seq(f)))
    return out


def test_approve_and_reject_on_two_devices(requested: tuple[str, Path], tmp_path: Path) -> None:
    rid, base = requested
    (a, a0), (b, b0), (server, _) = offline(base, tmp_path, "a", "b", "server")
    with a() as s:
        refills.approve_refill(s, MANAGER, rid)
    with a() as s:
        refills.schedule_refill(s, MANAGER, rid, DAY, "Nordgross")
    with b() as s:
        refills.reject_refill(s, ADMIN, rid, "Stand closes for a month")
    approve, schedule = ops_of(a, a0)
    (reject,) = ops_of(b, b0)

    assert push(server, approve) is None
    assert push(server, schedule) is None
    assert refused(server, reject, InvalidTransition) == (
        "This refill is scheduled; it can only be rejected when it is requested or approved."
    )
    assert refill_row(server, rid)["status"] == RefillStatus.SCHEDULED

    # In the other order the approval is refused, with the text the manager sees.
    other = clone(base, tmp_path / "other.db")
    assert push(other, reject) is None
    assert refused(other, approve, InvalidTransition) == (
        "This refill is rejected; it can only be approved when it is requested."
    )


def test_a_reject_after_a_concurrent_approval_applies_from_approved(
    requested: tuple[str, Path], tmp_path: Path
) -> None:
    """Rejecting an approved refill is allowed, so B's reject still applies after A's
    approval; the event records the state the server had (amended ``from``)."""
    rid, base = requested
    (a, a0), (b, b0), (server, _) = offline(base, tmp_path, "a", "b", "server")
    with a() as s:
        refills.approve_refill(s, MANAGER, rid)
    with b() as s:
        refills.reject_refill(s, ADMIN, rid, "Stand closes for a month")
    (approve,) = ops_of(a, a0)
    (reject,) = ops_of(b, b0)
    push(server, approve)
    amended = push(server, reject)
    assert amended == {**reject.payload, "from": "approved"}
    assert events(server, rid)[-1] == ("reject", "approved", "rejected", "admin")
    # Device B takes the amended payload: its event now says so too.
    with b() as s, s.begin():
        apply.write(s, replace(reject, payload=amended))
    assert events(b, rid)[-1] == ("reject", "approved", "rejected", "admin")


def test_deliver_and_cancel_on_two_devices(
    factory: SessionFactory, stand: StandFixture, tmp_path: Path
) -> None:
    rid = scheduled(factory, stand)
    base = snapshot(factory, tmp_path / "base.db")
    (a, a0), (b, b0), (server, _) = offline(base, tmp_path, "a", "b", "server")
    with a() as s:
        refills.deliver_refill(s, REP, rid)
    with b() as s:
        refills.cancel_refill(s, MANAGER, rid, "Dealer is on strike")
    (deliver,) = ops_of(a, a0)
    (cancel,) = ops_of(b, b0)

    assert push(server, deliver) is None
    assert refused(server, cancel, InvalidTransition) == (
        "This refill is delivered; it can only be cancelled when it is requested or approved "
        "or scheduled."
    )
    p0, p1 = stand.product_ids[:2]
    assert (on_hand(server, stand.stand_id, p0), on_hand(server, stand.stand_id, p1)) == (6, 4)

    other = clone(base, tmp_path / "other.db")
    assert push(other, cancel) is None
    assert refused(other, deliver, InvalidTransition) == (
        "This refill is cancelled; it can only be delivered when it is scheduled."
    )
    assert on_hand(other, stand.stand_id, p0) == 0  # the refused delivery moved no stock


def test_cancel_after_a_part_delivery_is_refused(
    factory: SessionFactory, stand: StandFixture, tmp_path: Path
) -> None:
    rid = scheduled(factory, stand)
    base = snapshot(factory, tmp_path / "base.db")
    (a, a0), (b, b0), (server, _) = offline(base, tmp_path, "a", "b", "server")
    p0 = stand.product_ids[0]
    with a() as s:
        refills.deliver_refill(s, REP, rid, {p0: 2}, more_to_come=True)
    with b() as s:
        refills.cancel_refill(s, REP, rid, "Not needed")
    push(server, only(ops_of(a, a0), "refill.deliver"))
    assert refused(server, only(ops_of(b, b0), "refill.cancel"), InvalidTransition) == (
        "Part of this refill was already delivered; record the last delivery instead of "
        "cancelling (with 0 units if nothing more is coming)."
    )


def test_cancel_roles(requested: tuple[str, Path], tmp_path: Path) -> None:
    rid, base = requested
    (a, a0), (server, _) = offline(base, tmp_path, "a", "server")
    with a() as s:
        refills.cancel_refill(s, REP, rid, "Not needed")
    (cancel,) = ops_of(a, a0)
    # Signed in as another rep on the server: not their refill.
    assert refused(server, replace(cancel, actor=OTHER_REP.user), PermissionDenied) == (
        "A rep may cancel only the refills they requested."
    )
    assert refused(server, replace(cancel, actor_role="partner"), PermissionDenied) == (
        "A partner may not cancel a refill."
    )
    assert push(server, cancel) is None


# --------------------------------------------------------------------------- request


def test_request_check(factory: SessionFactory, stand: StandFixture, tmp_path: Path) -> None:
    base = snapshot(factory, tmp_path / "base.db")
    start = last_seq(factory)
    p0, p1 = stand.product_ids[:2]
    with factory() as s:
        rid = refills.request_refill(s, REP, stand.stand_id, {p0: 6, p1: 4}).refill_id
    (request,) = ops_of(factory, start)

    # Same id, same content (the op came back with another op id): nothing to do.
    before = (refill_row(factory, rid), events(factory, rid))
    assert push(factory, request) is None
    assert (refill_row(factory, rid), events(factory, rid)) == before

    # The same id used at another stand on the server.
    server = clone(base, tmp_path / "server.db")
    with server() as s:
        other = make_stand(s, name="Kiosk am Bahnhof")
    with server() as s:
        refills.request_refill(s, REP, other.stand_id, {p0: 1}, refill_id=rid)
    assert refused(server, request, ValidationError) == f"Refill id {rid} belongs to another stand."

    # The same id at the same stand for another request.
    other_server = clone(base, tmp_path / "other.db")
    with other_server() as s:
        refills.request_refill(s, REP, stand.stand_id, {p0: 2}, refill_id=rid)
    assert refused(other_server, request, Conflict) == (
        f"Refill id {rid} is already used by another record."
    )

    fresh = clone(base, tmp_path / "fresh.db")
    assert refused(fresh, replace(request, actor_role="partner"), PermissionDenied) == (
        "A partner may not request refills."
    )
    gone = replace(request, payload={**request.payload, "stand_id": "0" * 32})
    assert type(_error(fresh, gone)) is NotFound
    assert push(fresh, request) is None
    assert refill_row(fresh, rid) == refill_row(factory, rid)


def _error(factory: SessionFactory, op: apply.Op) -> DomainError:
    with pytest.raises(DomainError) as info:
        push(factory, op)
    return info.value


# --------------------------------------------------------------------------- add_line


def test_add_line_check_and_line_number(
    requested: tuple[str, Path], stand: StandFixture, tmp_path: Path
) -> None:
    rid, base = requested
    p2, p3 = stand.product_ids[2:4]
    (a, a0), (b, b0), (server, _) = offline(base, tmp_path, "a", "b", "server")
    with a() as s:
        refills.add_refill_line(s, REP, rid, p2, 3)
    with b() as s:
        refills.add_refill_line(s, OTHER_REP, rid, p3, 5)
    (add_a,) = ops_of(a, a0)
    (add_b,) = ops_of(b, b0)
    assert add_a.payload["item"]["line_no"] == add_b.payload["item"]["line_no"] == 3

    assert push(server, add_b) is None
    amended = push(server, add_a)
    assert amended == {**add_a.payload, "item": {**add_a.payload["item"], "line_no": 4}}
    lines = refill_row(server, rid)["lines"]
    assert (lines[p3][0], lines[p2][0]) == (3, 4)
    # Device A holds the server's numbering once it takes the amended payload.
    with a() as s, s.begin():
        apply.write(s, replace(add_a, payload=amended))
    assert refill_row(a, rid)["lines"][p2][0] == 4
    # The same line again (another op id, same content): nothing to do.
    assert check(server, add_a) is None

    # Two devices adding the same product.
    with b() as s:
        refills.add_refill_line(s, OTHER_REP, rid, p2, 1)
    twice = only(ops_of(b, b0 + 1), "refill.add_line")
    assert refused(server, twice, ValidationError) == (
        f"{name(server, p2)} is already on this refill."
    )

    # Approved on the server before the line arrived.
    approved = clone(base, tmp_path / "approved.db")
    with approved() as s:
        refills.approve_refill(s, MANAGER, rid)
    assert refused(approved, add_a, InvalidTransition) == (
        "This refill is approved; products can only be added while it is requested."
    )


# --------------------------------------------------------------------------- approve


def test_approve_covers_lines_added_on_the_server(
    requested: tuple[str, Path], stand: StandFixture, tmp_path: Path
) -> None:
    rid, base = requested
    p0, p1, p2 = stand.product_ids[:3]
    (a, a0), (b, b0), (server, _) = offline(base, tmp_path, "a", "b", "server")
    with a() as s:
        refills.add_refill_line(s, REP, rid, p2, 12)
    with b() as s:
        refills.approve_refill(s, MANAGER, rid, {p0: 5})
    (add,) = ops_of(a, a0)
    (approve,) = ops_of(b, b0)
    assert approve.payload["approved"] == {p0: 5, p1: 4}

    push(server, add)
    amended = push(server, approve)
    assert amended is not None
    assert amended["approved"] == {p0: 5, p1: 4, p2: 12}
    assert refill_row(server, rid)["lines"][p2][2] == 12
    with server() as s, s.begin():
        event = s.get_one(StandRefillEvent, approve.payload["event_id"])
        assert json.loads(event.detail) == {"approved": {p0: 5, p1: 4, p2: 12}}
        assert (event.role, event.actor) == ("manager", MANAGER.user)

    # Device B adopts the amended approval before it has the line, then pulls the feed
    # (the line, then the approval again) and ends where the server is.
    with b() as s, s.begin():
        apply.write(s, replace(approve, payload=amended))
    replay([add, replace(approve, payload=amended)], b)
    assert refill_row(b, rid) == refill_row(server, rid)

    assert refused(server, replace(approve, actor_role="rep"), PermissionDenied) == (
        "A rep may not approve a refill."
    )


# --------------------------------------------------------------------------- schedule


def test_schedule_after_a_cancel_is_refused(requested: tuple[str, Path], tmp_path: Path) -> None:
    rid, base = requested
    with open_copy(base)() as s:
        refills.approve_refill(s, MANAGER, rid)
    (a, a0), (b, b0), (server, _) = offline(base, tmp_path, "a", "b", "server")
    with a() as s:
        refills.schedule_refill(s, MANAGER, rid, DAY, "Nordgross")
    with b() as s:
        refills.cancel_refill(s, REP, rid, "Not needed")
    (schedule,) = ops_of(a, a0)
    push(server, only(ops_of(b, b0), "refill.cancel"))
    assert refused(server, schedule, InvalidTransition) == (
        "This refill is cancelled; it can only be scheduled when it is approved."
    )
    with server() as s, s.begin():
        assert s.get_one(StandRefillOrder, rid).dealer is None


# --------------------------------------------------------------------------- deliver


def test_deliveries_from_two_devices_add_up(
    factory: SessionFactory, stand: StandFixture, tmp_path: Path
) -> None:
    rid = scheduled(factory, stand, p0=5)
    base = snapshot(factory, tmp_path / "base.db")
    p0, p1 = stand.product_ids[:2]
    (a, a0), (b, b0), (c, c0), (server, _) = offline(base, tmp_path, "a", "b", "c", "server")
    with a() as s:
        refills.deliver_refill(s, REP, rid, {p0: 2, p1: 0}, more_to_come=True)
    with b() as s:  # not the last part on B; with A's part it is everything
        refills.deliver_refill(s, OTHER_REP, rid, {p0: 3, p1: 4}, more_to_come=True)
    with c() as s:
        refills.deliver_refill(s, REP, rid, {p0: 4, p1: 0}, more_to_come=True)
    (first,) = ops_of(a, a0)
    (second,) = ops_of(b, b0)
    (third,) = ops_of(c, c0)

    assert push(server, first) is None
    amended = push(server, second)
    assert amended is not None
    assert amended["delivered_total"] == {p0: 5, p1: 4}
    assert amended["to"] == "delivered"
    assert "partial" not in amended
    assert {k: v for k, v in amended.items() if k not in ("delivered_total", "to", "partial")} == {
        k: v for k, v in second.payload.items() if k not in ("delivered_total", "to", "partial")
    }
    with server() as s, s.begin():
        r = s.get_one(StandRefillOrder, rid)
        assert (r.status, r.delivered_by) == (RefillStatus.DELIVERED, OTHER_REP.user)
    assert (on_hand(server, stand.stand_id, p0), on_hand(server, stand.stand_id, p1)) == (5, 4)

    # Over the approval on the server: refused with the service's text.
    other = clone(base, tmp_path / "other.db")
    push(other, first)
    assert refused(other, third, ValidationError) == (
        f"6 {name(other, p0)} delivered in total but only 5 approved (2 arrived before)."
    )
    assert on_hand(other, stand.stand_id, p0) == 2
    # A movement id already used for something else.
    clash = replace(
        third,
        payload={
            **third.payload,
            "delivered": {p0: 1, p1: 0},
            "movements": first.payload["movements"],
        },
    )
    assert refused(other, clash, Conflict) == (
        f"A stock movement with id {first.payload['movements'][p0]} already exists."
    )


# --------------------------------------------------------------------------- confirm


def test_confirm_opens_the_discrepancy_the_device_could_not_see(
    factory: SessionFactory, stand: StandFixture, tmp_path: Path
) -> None:
    """B delivered a part that A had not seen; A's last delivery and the partner's
    confirmation on A say 3 arrived, the server has 5: the confirmation opens a
    discrepancy the device did not."""
    rid = scheduled(factory, stand, p0=5)
    base = snapshot(factory, tmp_path / "base.db")
    p0, p1 = stand.product_ids[:2]
    (a, a0), (b, b0), (server, _) = offline(base, tmp_path, "a", "b", "server")
    with b() as s:
        refills.deliver_refill(s, OTHER_REP, rid, {p0: 2, p1: 0}, more_to_come=True)
    with a() as s:
        refills.deliver_refill(s, REP, rid, {p0: 3, p1: 4})
    with a() as s:
        refills.confirm_refill(s, PARTNER, rid)
    deliver, confirm = ops_of(a, a0)
    assert confirm.payload["discrepancies"] == {}

    push(server, only(ops_of(b, b0), "refill.deliver"))
    assert push(server, deliver) == {**deliver.payload, "delivered_total": {p0: 5, p1: 4}}
    amended = push(server, confirm)
    assert amended is not None
    assert amended["received"] == {p0: 3, p1: 4}
    (did,) = amended["discrepancies"].values()
    assert list(amended["discrepancies"]) == [p0]
    with server() as s, s.begin():
        disc = s.get_one(RefillDiscrepancy, did)
        assert (disc.delivered_qty, disc.received_qty, disc.status) == (
            5,
            3,
            DiscrepancyStatus.OPEN,
        )
        assert s.get_one(StandRefillOrder, rid).status == RefillStatus.CONFIRMED

    # A second confirmation (another partner device) is refused.
    assert refused(server, replace(confirm, op_id="x"), InvalidTransition) == (
        "This refill is confirmed; it can only be confirmed when it is delivered."
    )


# --------------------------------------------------------------------------- resolve


def test_resolving_a_discrepancy_twice(
    factory: SessionFactory, stand: StandFixture, tmp_path: Path
) -> None:
    rid = scheduled(factory, stand)
    p0 = stand.product_ids[0]
    with factory() as s:
        refills.deliver_refill(s, REP, rid)
    with factory() as s:
        (did,) = refills.confirm_refill(s, PARTNER, rid, {p0: 4}).discrepancies
    base = snapshot(factory, tmp_path / "base.db")
    (a, a0), (b, b0), (server, _) = offline(base, tmp_path, "a", "b", "server")
    with a() as s:
        accepted = refills.resolve_discrepancy(s, MANAGER, did, accept_received=True)
    with b() as s:
        refills.resolve_discrepancy(s, ADMIN, did, accept_received=False, note="Recounted")
    (accept,) = ops_of(a, a0)
    (keep,) = ops_of(b, b0)
    assert accept.payload["movement_id"] == accepted.movement_id

    assert push(server, accept) is None
    assert refused(server, keep, InvalidTransition) == "This discrepancy is already resolved."
    assert on_hand(server, stand.stand_id, p0) == 4
    with server() as s, s.begin():
        movement = s.get_one(InventoryMovement, accepted.movement_id)
        assert (movement.kind, movement.quantity, movement.ref_id) == (
            MovementKind.REFILL_CORRECTION,
            -2,
            did,
        )

    fresh = clone(base, tmp_path / "fresh.db")
    assert refused(fresh, replace(keep, actor_role="rep"), PermissionDenied) == (
        "A rep may not resolve delivery discrepancies."
    )
    assert push(fresh, keep) is None
    assert on_hand(fresh, stand.stand_id, p0) == 6
    with fresh() as s, s.begin():
        disc = s.get_one(RefillDiscrepancy, did)
        assert (disc.status, disc.resolved_by, disc.resolution_note) == (
            DiscrepancyStatus.KEPT_DELIVERED,
            ADMIN.user,
            "Recounted",
        )


# --------------------------------------------------------------------------- scope


def test_scope_is_the_refills_stand_and_partner(
    factory: SessionFactory, stand: StandFixture, tmp_path: Path
) -> None:
    base = snapshot(factory, tmp_path / "base.db")
    start = last_seq(factory)
    rid = scheduled(factory, stand)
    p0 = stand.product_ids[0]
    with factory() as s:
        refills.deliver_refill(s, REP, rid)
    with factory() as s:
        refills.confirm_refill(s, PARTNER, rid, {p0: 1})
    with factory() as s, s.begin():
        did = s.scalars(select(RefillDiscrepancy.id)).one()
    with factory() as s:
        refills.resolve_discrepancy(s, MANAGER, did, accept_received=True)
    ops = ops_of(factory, start)
    assert {o.op_type for o in ops} >= FAMILY - {
        "refill.add_line",
        "refill.reject",
        "refill.cancel",
    }
    expected = (stand.stand_id, stand.partner_id)
    target = open_copy(base)
    for op in ops:
        spec = apply.get_spec(op.op_type)
        with target() as s, s.begin():
            if op.op_type == "refill.request":  # before its refill exists, from the payload
                assert spec.scope(s, op) == expected
            spec.write(s, op)
            assert spec.scope(s, op) == expected, op.op_type
        with factory() as s, s.begin():
            assert spec.scope(s, op) == expected


def test_every_refill_op_type_is_registered() -> None:
    specs = apply.all_specs()
    assert set(specs) >= FAMILY
    assert specs["refill.request"].op_class == apply.OpClass.FACT
    assert specs["refill.add_line"].op_class == apply.OpClass.FACT
    assert all(
        specs[t].op_class == apply.OpClass.TRANSITION
        for t in FAMILY - {"refill.request", "refill.add_line"}
    )
    assert all(specs[t].summary for t in FAMILY)


def test_lines_keep_their_ids_and_prices(
    factory: SessionFactory, stand: StandFixture, tmp_path: Path
) -> None:
    base = snapshot(factory, tmp_path / "base.db")
    start = last_seq(factory)
    p0 = stand.product_ids[0]
    with factory() as s:
        rid = refills.request_refill(s, REP, stand.stand_id, {p0: 2}, prices={p0: "3.30"}).refill_id
    target = open_copy(base)
    replay(ops_of(factory, start), target)
    with target() as s, s.begin():
        (item,) = s.scalars(
            select(StandRefillOrderItem).where(StandRefillOrderItem.refill_id == rid)
        )
        assert item.unit_price == Decimal("3.30")
        assert s.get_one(StandRefillOrder, rid).total == item.unit_price * 2
