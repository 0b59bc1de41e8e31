"""Sales and stock ops applied from their payloads: replay equivalence on a device copy, and
the server's check (rejections, amended counts, review items, field history).

A "server" here is a copy of the database taken before the ops, with an empty feed: the
tests write its feed rows and received ops directly, as the push layer would.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from app.db import SessionFactory
from app.errors import (
    Conflict,
    DomainError,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from app.ids import new_id
from app.models import (
    ApiUser,
    ChangeLog,
    InventoryMovement,
    LocalDevice,
    MovementKind,
    Product,
    Role,
    StandInventory,
    StandInventorySnapshotLine,
    StandLocation,
    StandOrder,
    StandStatus,
    SyncDevice,
    SyncFieldHistory,
    SyncReceivedOp,
    SyncReview,
)
from app.services import apply, inventory, sales
from app.services.base import SCHEMA_VERSION, to_json
from tests.app.apply.replay import diff, open_copy, ops_of, replay, snapshot
from tests.conftest import MANAGER, OTHER_REP, REP, StandFixture

FAMILY = {
    "sale.record",
    "sale.void",
    "count.record",
    "inventory.set_levels",
    "stock.write_off",
    "stock.return",
}
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
DEVICE_B = "device-b"


# --------------------------------------------------------------------------- helpers


def last_seq(factory: SessionFactory) -> int:
    with factory() as s, s.begin():
        return s.scalar(select(LocalDevice.last_seq)) or 0


def device_id(factory: SessionFactory) -> str:
    with factory() as s, s.begin():
        return str(s.scalar(select(LocalDevice.id)))


def ops_after(factory: SessionFactory, seq: int) -> list[apply.Op]:
    return ops_of(factory, after_seq=seq)


def stock_in(factory: SessionFactory, stand: StandFixture, *qty: int) -> None:
    """Returns put ``qty[i]`` units of the stand's i-th product on the stand."""
    for pid, n in zip(stand.product_ids, qty, strict=False):
        with factory() as s:
            inventory.record_stock_change(
                s, REP, stand.stand_id, pid, n, MovementKind.RETURN, occurred_at=T0
            )


def on_hand(factory: SessionFactory, stand_id: str, product_id: str) -> int:
    with factory() as s, s.begin():
        cached = inventory.on_hand(s, stand_id, product_id)
        assert cached == inventory.ledger_on_hand(s, stand_id, product_id)
        return cached


def product_name(factory: SessionFactory, product_id: str) -> str:
    with factory() as s, s.begin():
        return s.get_one(Product, product_id).name


class Server:
    """A copy of the device database as it was before the ops, acting as the server: an
    empty feed, and the two pushing devices registered."""

    def __init__(self, base: Path, dest: Path, device_a: str) -> None:
        self.factory = open_copy(snapshot_file(base, dest))
        with self.factory() as s, s.begin():
            s.execute(delete(ChangeLog))
            user = ApiUser(
                username="rep.anna", display_name="Anna", role=Role.REP, password_hash="x"
            )
            s.add(user)
            s.flush()
            for dev in (device_a, DEVICE_B):
                s.add(SyncDevice(device_id=dev, user_id=user.id, high_water=0))

    def receive(self, op: apply.Op, status: str, *, amended: bool = False) -> None:
        """Store ``op`` as received from its device (what the push layer keeps)."""
        with self.factory() as s, s.begin():
            self._received(s, op, status, amended)

    def _received(self, s: Any, op: apply.Op, status: str, amended: bool) -> None:
        assert op.device_id is not None
        assert op.device_seq is not None
        s.add(
            SyncReceivedOp(
                op_id=op.op_id,
                device_id=op.device_id,
                device_seq=op.device_seq,
                op_type=op.op_type,
                entity_id=op.entity_id,
                schema_version=SCHEMA_VERSION,
                payload=to_json(op.payload),
                status=status,
                amended=amended,
                actor=op.actor,
                actor_role=op.actor_role,
                base_seq=op.base_seq,
                pending_from_seq=op.pending_from_seq,
            )
        )

    def push(self, op: apply.Op) -> dict[str, Any] | None:
        """Check and write ``op`` as the push does, keep it as received and add its feed row.
        Returns the amended payload (None: applied as sent)."""
        spec = apply.get_spec(op.op_type)
        with self.factory() as s, s.begin():
            amended = spec.check(s, op)
            applied = replace(op, payload=dict(amended)) if amended is not None else op
            spec.write(s, applied)
            s.flush()
            stand_id, partner_id = spec.scope(s, applied)
            self._received(s, op, "applied", amended is not None)
            local = s.scalars(select(LocalDevice)).one()
            local.last_seq += 1
            s.add(
                ChangeLog(
                    op_id=op.op_id,
                    device_id=local.id,
                    device_seq=local.last_seq,
                    op_type=op.op_type,
                    entity_id=op.entity_id,
                    payload=to_json(applied.payload),
                    schema_version=SCHEMA_VERSION,
                    actor=op.actor,
                    actor_role=op.actor_role,
                    base_seq=op.base_seq,
                    pending_from_seq=op.pending_from_seq,
                    amended=amended is not None,
                    origin_device_id=op.device_id,
                    scope_stand_id=stand_id,
                    scope_partner_id=partner_id,
                )
            )
        return None if amended is None else dict(amended)

    def feed_seq(self) -> int:
        with self.factory() as s, s.begin():
            return s.scalar(select(LocalDevice.last_seq)) or 0


def snapshot_file(src: Path, dest: Path) -> Path:
    dest.write_bytes(src.read_bytes())
    return dest


def check(factory: SessionFactory, op: apply.Op) -> Any:
    with factory() as s, s.begin():
        return apply.get_spec(op.op_type).check(s, op)


def refused(factory: SessionFactory, op: apply.Op, error: type[DomainError]) -> str:
    with pytest.raises(error) as info:
        check(factory, op)
    assert type(info.value) is error
    return info.value.message


def only(ops: list[apply.Op], op_type: str) -> apply.Op:
    (op,) = [o for o in ops if o.op_type == op_type]
    return op


def resend(op: apply.Op) -> apply.Op:
    """The same change sent again as a new op (another op id and device sequence)."""
    return replace(op, op_id=new_id(), device_seq=(op.device_seq or 0) + 1000)


def as_device_b(op: apply.Op, seq: int) -> apply.Op:
    return replace(op, device_id=DEVICE_B, device_seq=seq, pending_from_seq=seq)


# --------------------------------------------------------------------------- replay


def test_replay_rebuilds_every_sale_and_stock_row(
    factory: SessionFactory, stand: StandFixture, tmp_path: Path
) -> None:
    base = snapshot(factory, tmp_path / "base.db")
    start = last_seq(factory)
    a, b, c = stand.product_ids[:3]
    stock_in(factory, stand, 20, 20, 5)
    with factory() as s:
        first = sales.record_sale(
            s,
            REP,
            stand.stand_id,
            [sales.SaleLine(a, 2), sales.SaleLine(b, 1), sales.SaleLine(a, 1)],
            "card",
            occurred_at=T0 + timedelta(hours=1),
        )
    assert first.points_earned > 0
    with factory() as s:  # a price override, and an oversold line (5 on hand)
        sold = sales.record_sale(
            s,
            OTHER_REP,
            stand.stand_id,
            [sales.SaleLine(a, 1, "2.00"), sales.SaleLine(c, 8)],
            "cash",
            occurred_at=T0 + timedelta(hours=2),
        )
    assert sold.oversold
    with factory() as s:
        sales.void_sale(
            s, MANAGER, first.order_id, reason="Wrong stand", occurred_at=T0 + timedelta(hours=3)
        )
    with factory() as s:  # a variance, a zero-variance line, an oversold line counted up
        inventory.record_count(
            s, REP, stand.stand_id, {a: 10, b: 20, c: 0}, counted_at=T0 + timedelta(days=1)
        )
    with factory() as s:  # entered late for an earlier day: the last count time stays
        inventory.record_count(s, REP, stand.stand_id, {a: 9}, counted_at=T0 + timedelta(hours=5))
    with factory() as s:
        inventory.set_levels(s, MANAGER, stand.stand_id, a, par_level=7, reorder_point=2)
    with factory() as s:
        inventory.record_stock_change(
            s, REP, stand.stand_id, b, 2, MovementKind.WRITE_OFF, note="Crushed"
        )

    ops = ops_after(factory, start)
    assert {o.op_type for o in ops} == FAMILY
    target = open_copy(base)
    replay(ops, target)
    assert diff(factory, target) == []
    replay(ops, target)  # idempotent: the second time changes nothing
    assert diff(factory, target) == []
    with target() as s:
        assert inventory.verify_on_hand(s) == []
    with target() as s, s.begin():
        row = s.scalars(
            select(StandInventory).where(
                StandInventory.stand_id == stand.stand_id, StandInventory.product_id == a
            )
        ).one()
        assert row.last_counted_at == T0 + timedelta(days=1)

    # Scope: the stand and its partner, before the op's rows exist and after.
    fresh = open_copy(snapshot_file(base, tmp_path / "fresh.db"))
    for db in (fresh, target):
        with db() as s, s.begin():
            for op in ops:
                scope = apply.get_spec(op.op_type).scope(s, op)
                assert scope == (stand.stand_id, stand.partner_id), op.op_type


# --------------------------------------------------------------------------- sale.record


def test_sale_is_stored_as_recorded_and_refused_only_for_structure(
    factory: SessionFactory, stand: StandFixture, tmp_path: Path
) -> None:
    base = snapshot(factory, tmp_path / "base.db")
    start = last_seq(factory)
    a, b = stand.product_ids[:2]
    order_id = new_id()
    with factory() as s:
        sales.record_sale(
            s,
            REP,
            stand.stand_id,
            [sales.SaleLine(a, 3), sales.SaleLine(b, 1)],
            "qr",
            order_id=order_id,
        )
    op = only(ops_after(factory, start), "sale.record")

    # The server changed the price and paused the stand meanwhile: the fact stands as sold.
    server = Server(base, tmp_path / "server.db", device_id(factory))
    with server.factory() as s, s.begin():
        s.execute(update(Product).where(Product.id == a).values(list_price="9.99"))
        s.execute(
            update(StandLocation)
            .where(StandLocation.id == stand.stand_id)
            .values(status=StandStatus.PAUSED)
        )
    assert server.push(op) is None
    with server.factory() as s, s.begin():
        order = s.get_one(StandOrder, order_id)
        assert order.total == apply.dec(op.payload["order"]["total"])
        assert [i.unit_price for i in order.items] == [
            apply.dec(i["unit_price"]) for i in op.payload["items"]
        ]
    assert on_hand(server.factory, stand.stand_id, a) == -3
    # The same sale again under another op id: nothing to do, nothing changes.
    again = resend(op)
    assert server.push(again) is None
    assert on_hand(server.factory, stand.stand_id, a) == -3

    # The same order id used by another device for another sale.
    other = Server(base, tmp_path / "other.db", device_id(factory))
    b_dev = open_copy(snapshot_file(base, tmp_path / "b.db"))
    with b_dev() as s:
        sales.record_sale(
            s, OTHER_REP, stand.stand_id, [sales.SaleLine(a, 1)], "cash", order_id=order_id
        )
    other.push(as_device_b(only(ops_after(b_dev, start), "sale.record"), 1))
    assert (
        refused(other.factory, op, Conflict)
        == f"Order id {order_id} is already used by another record."
    )

    # The stand does not carry the product (any more), or the stand is unknown.
    missing = Server(base, tmp_path / "missing.db", device_id(factory))
    with missing.factory() as s, s.begin():
        s.execute(
            delete(StandInventory).where(
                StandInventory.stand_id == stand.stand_id, StandInventory.product_id == b
            )
        )
    name = product_name(factory, b)
    assert refused(missing.factory, op, NotFound) == f"{name} is not carried at this stand."
    ghost = new_id()
    elsewhere = replace(
        op, payload={**op.payload, "order": {**op.payload["order"], "stand_id": ghost}}
    )
    assert refused(missing.factory, elsewhere, NotFound) == f"No stand with id {ghost!r}."

    # A partner may not push sales.
    as_partner = replace(op, actor_role=Role.PARTNER.value)
    assert (
        refused(missing.factory, as_partner, PermissionDenied) == "A partner may not record sales."
    )

    with server.factory() as s, s.begin():
        assert apply.get_spec("sale.record").scope(s, op) == (stand.stand_id, stand.partner_id)


# --------------------------------------------------------------------------- sale.void


def test_void_check(factory: SessionFactory, stand: StandFixture, tmp_path: Path) -> None:
    with factory() as s:
        sale = sales.record_sale(
            s,
            REP,
            stand.stand_id,
            [sales.SaleLine(stand.product_ids[0], 2)],
            "card",
            occurred_at=T0,
        )
    base = snapshot(factory, tmp_path / "base.db")
    start = last_seq(factory)
    with factory() as s:
        sales.void_sale(s, REP, sale.order_id, occurred_at=T0 + timedelta(minutes=5))
    void_a = only(ops_after(factory, start), "sale.void")
    b_dev = open_copy(snapshot_file(base, tmp_path / "b.db"))
    with b_dev() as s:
        sales.void_sale(s, OTHER_REP, sale.order_id, occurred_at=T0 + timedelta(minutes=7))
    void_b = as_device_b(only(ops_after(b_dev, start), "sale.void"), 1)

    server = Server(base, tmp_path / "server.db", device_id(factory))
    assert server.push(void_b) is None
    assert (
        refused(server.factory, void_a, InvalidTransition) == "This sale has already been voided."
    )
    # Sent again under another op id: the same void, no second effect.
    assert server.push(resend(void_b)) is None
    assert on_hand(server.factory, stand.stand_id, stand.product_ids[0]) == 0

    fresh = Server(base, tmp_path / "fresh.db", device_id(factory))
    early = replace(void_a, payload={**void_a.payload, "occurred_at": "2025-03-03T08:00:00+00:00"})
    assert (
        refused(fresh.factory, early, ValidationError)
        == "A void cannot be dated before the sale it undoes."
    )
    assert fresh.push(void_a) is None
    assert diff(factory, fresh.factory) == []
    with fresh.factory() as s, s.begin():
        assert apply.get_spec("sale.void").scope(s, void_a) == (stand.stand_id, stand.partner_id)


# --------------------------------------------------------------------------- stock.*


def test_stock_change_check(factory: SessionFactory, stand: StandFixture, tmp_path: Path) -> None:
    base = snapshot(factory, tmp_path / "base.db")
    start = last_seq(factory)
    a = stand.product_ids[0]
    mid = new_id()
    with factory() as s:
        inventory.record_stock_change(
            s, REP, stand.stand_id, a, 4, MovementKind.WRITE_OFF, movement_id=mid
        )
    op = only(ops_after(factory, start), "stock.write_off")

    # A removed stand still takes the fact (the goods left before it was removed).
    server = Server(base, tmp_path / "server.db", device_id(factory))
    with server.factory() as s, s.begin():
        s.execute(
            update(StandLocation)
            .where(StandLocation.id == stand.stand_id)
            .values(status=StandStatus.REMOVED)
        )
    assert server.push(op) is None
    assert server.push(resend(op)) is None
    assert on_hand(server.factory, stand.stand_id, a) == -4

    # The same movement id with other content (another device's return).
    other = Server(base, tmp_path / "other.db", device_id(factory))
    b_dev = open_copy(snapshot_file(base, tmp_path / "b.db"))
    with b_dev() as s:
        inventory.record_stock_change(
            s, REP, stand.stand_id, a, 4, MovementKind.RETURN, movement_id=mid
        )
    other.push(as_device_b(only(ops_after(b_dev, start), "stock.return"), 1))
    assert refused(other.factory, op, Conflict) == f"A stock movement with id {mid} already exists."

    ghost = new_id()
    nowhere = replace(op, payload={**op.payload, "stand_id": ghost})
    fresh = Server(base, tmp_path / "fresh.db", device_id(factory))
    assert refused(fresh.factory, nowhere, NotFound) == f"No stand with id {ghost!r}."
    with fresh.factory() as s, s.begin():
        s.execute(delete(StandInventory).where(StandInventory.product_id == a))
    name = product_name(factory, a)
    assert refused(fresh.factory, op, NotFound) == f"{name} is not carried at this stand."
    upside_down = replace(op, payload={**op.payload, "quantity": 4, "movement_id": new_id()})
    assert refused(other.factory, upside_down, ValidationError) == "Quantity must be at least 1."


# --------------------------------------------------------------------------- inventory.set_levels


def history(server: Server) -> list[SyncFieldHistory]:
    with server.factory() as s, s.begin():
        return list(s.scalars(select(SyncFieldHistory).order_by(SyncFieldHistory.at)))


def test_set_levels_keeps_the_overwritten_triple(
    factory: SessionFactory, stand: StandFixture, tmp_path: Path
) -> None:
    base = snapshot(factory, tmp_path / "base.db")
    start = last_seq(factory)
    a = stand.product_ids[0]
    with factory() as s, s.begin():
        before = s.scalars(
            select(StandInventory).where(
                StandInventory.stand_id == stand.stand_id, StandInventory.product_id == a
            )
        ).one()
        original = {
            "par_level": before.par_level,
            "reorder_point": before.reorder_point,
            "capacity": before.capacity,
        }
    with factory() as s:
        inventory.set_levels(s, REP, stand.stand_id, a, par_level=9, reorder_point=4, capacity=12)
    op_a = only(ops_after(factory, start), "inventory.set_levels")
    b_dev = open_copy(snapshot_file(base, tmp_path / "b.db"))
    with b_dev() as s:
        inventory.set_levels(s, MANAGER, stand.stand_id, a, par_level=6, reorder_point=2)
    op_b = as_device_b(only(ops_after(b_dev, start), "inventory.set_levels"), 1)

    # Seen value overwritten: history, not concurrent.
    server = Server(base, tmp_path / "server.db", device_id(factory))
    server.push(op_a)
    (row,) = history(server)
    assert (row.entity_type, row.entity_id, row.field_group) == (
        "stand_inventory",
        op_a.entity_id,
        "levels",
    )
    assert json.loads(row.old_value) == original
    assert json.loads(row.new_value) == {"par_level": 9, "reorder_point": 4, "capacity": 12}
    assert (row.op_id, row.concurrent, row.actor) == (op_a.op_id, False, REP.user)
    # Written again: the value is already there, nothing is overwritten.
    server.push(resend(op_a))
    assert len(history(server)) == 1

    # B's change first, then A's, which had not seen it: last writer wins, B's is concurrent.
    raced = Server(base, tmp_path / "raced.db", device_id(factory))
    raced.push(op_b)
    raced.push(op_a)
    first, second = history(raced)
    assert not first.concurrent
    assert second.concurrent
    assert second.op_id == op_a.op_id
    assert json.loads(second.old_value) == {**original, "par_level": 6, "reorder_point": 2}
    with raced.factory() as s, s.begin():
        row_a = s.get_one(StandInventory, op_a.entity_id)
        assert (row_a.par_level, row_a.reorder_point, row_a.capacity) == (9, 4, 12)

    malformed = replace(
        op_a,
        payload={**op_a.payload, "after": {"par_level": 50, "reorder_point": 3, "capacity": 10}},
    )
    assert (
        refused(raced.factory, malformed, ValidationError)
        == "Par level 50 is above the capacity of 10."
    )


# --------------------------------------------------------------------------- count.record


def counted_line(factory: SessionFactory, snapshot_id: str, product_id: str) -> Any:
    with factory() as s, s.begin():
        return s.scalars(
            select(StandInventorySnapshotLine).where(
                StandInventorySnapshotLine.snapshot_id == snapshot_id,
                StandInventorySnapshotLine.product_id == product_id,
            )
        ).one()


def receive_history(server: Server, factory: SessionFactory, upto: int) -> None:
    """The server had received and applied device A's ops up to ``upto`` (the fixture's and
    the stock put on the stand before the base copy)."""
    for op in ops_of(factory):
        if (op.device_seq or 0) <= upto:
            server.receive(op, "applied")


@pytest.fixture
def stocked(factory: SessionFactory, stand: StandFixture) -> StandFixture:
    stock_in(factory, stand, 10, 10)
    return stand


def test_count_after_unseen_sales_on_another_device(
    factory: SessionFactory, stocked: StandFixture, tmp_path: Path
) -> None:
    stand = stocked
    a = stand.product_ids[0]
    base = snapshot(factory, tmp_path / "base.db")
    start = last_seq(factory)
    b_dev = open_copy(snapshot_file(base, tmp_path / "b.db"))
    with b_dev() as s:
        sales.record_sale(s, OTHER_REP, stand.stand_id, [sales.SaleLine(a, 3)], "cash")
    with factory() as s:  # A had not seen B's sale: it expected 10 and counted 6
        inventory.record_count(s, REP, stand.stand_id, {a: 6})
    count = only(ops_after(factory, start), "count.record")
    assert count.pending_from_seq == 1  # nothing of A's was ever answered

    server = Server(base, tmp_path / "server.db", device_id(factory))
    receive_history(server, factory, start)
    server.push(as_device_b(only(ops_after(b_dev, start), "sale.record"), 1))
    assert server.push(count) is None  # B's sale was not in A's expected: no correction
    assert on_hand(server.factory, stand.stand_id, a) == 6 - 3  # counted + unseen sales
    assert counted_line(server.factory, count.entity_id, a).variance == -4
    with server.factory() as s, s.begin():
        assert s.scalars(select(SyncReview)).all() == []
        assert apply.get_spec("count.record").scope(s, count) == (
            stand.stand_id,
            stand.partner_id,
        )


def test_count_after_own_rejected_sale_is_amended(
    factory: SessionFactory, stocked: StandFixture, tmp_path: Path
) -> None:
    stand = stocked
    a, b = stand.product_ids[:2]
    base = snapshot(factory, tmp_path / "base.db")
    start = last_seq(factory)
    with factory() as s:  # provisional: the server will reject it
        sales.record_sale(s, REP, stand.stand_id, [sales.SaleLine(a, 2)], "cash")
    with factory() as s:  # A expects 8 of a (after its own sale) and counts 7; b is right
        inventory.record_count(s, REP, stand.stand_id, {a: 7, b: 10})
    sale_op, count = ops_after(factory, start)
    assert count.pending_from_seq is not None
    assert count.pending_from_seq <= (sale_op.device_seq or 0)

    server = Server(base, tmp_path / "server.db", device_id(factory))
    receive_history(server, factory, start)
    server.receive(sale_op, "rejected")
    amended = server.push(count)
    assert amended is not None
    lines = {x["product_id"]: x for x in amended["lines"]}
    # On the server the sale never happened: 10 on hand, so the count corrects by -3.
    assert lines[a]["adjustment"] == -3
    sent = {x["product_id"]: x for x in count.payload["lines"]}
    assert lines[a]["movement_id"] == sent[a]["movement_id"]
    assert lines[b]["adjustment"] == 0
    assert lines[b]["movement_id"] is None
    assert (lines[a]["expected"], lines[a]["counted"]) == (8, 7)  # the observation as made
    assert on_hand(server.factory, stand.stand_id, a) == 7
    assert on_hand(server.factory, stand.stand_id, b) == 10
    line = counted_line(server.factory, count.entity_id, a)
    assert (line.expected_qty, line.counted_qty, line.variance) == (8, 7, -1)

    # A replica writing the amended op gets the server's movement.
    replica = open_copy(snapshot_file(base, tmp_path / "replica.db"))
    replay([replace(count, payload=amended)], replica)
    assert on_hand(replica, stand.stand_id, a) == 7
    assert diff(server.factory, replica) == []


def test_own_earlier_count_in_the_window_is_not_corrected_twice(
    factory: SessionFactory, stocked: StandFixture, tmp_path: Path
) -> None:
    """A's sale is rejected; A's first count (no variance on the device) is amended to take
    the sale back out; A's second count, still written before any answer, must see that the
    first count already corrected it."""
    stand = stocked
    a = stand.product_ids[0]
    base = snapshot(factory, tmp_path / "base.db")
    start = last_seq(factory)
    with factory() as s:
        sales.record_sale(s, REP, stand.stand_id, [sales.SaleLine(a, 2)], "cash")
    with factory() as s:
        inventory.record_count(s, REP, stand.stand_id, {a: 8})
    with factory() as s:
        inventory.record_count(s, REP, stand.stand_id, {a: 8})
    sale_op, first, second = ops_after(factory, start)

    server = Server(base, tmp_path / "server.db", device_id(factory))
    receive_history(server, factory, start)
    server.receive(sale_op, "rejected")
    amended = server.push(first)
    assert amended is not None
    (line,) = amended["lines"]
    assert line["adjustment"] == -2
    assert line["movement_id"] is not None  # the server's own movement for it
    assert on_hand(server.factory, stand.stand_id, a) == 8
    assert server.push(second) is None
    assert on_hand(server.factory, stand.stand_id, a) == 8


def test_overlapping_counts_open_one_review(
    factory: SessionFactory, stocked: StandFixture, tmp_path: Path
) -> None:
    stand = stocked
    a, b = stand.product_ids[:2]
    base = snapshot(factory, tmp_path / "base.db")
    start = last_seq(factory)
    b_dev = open_copy(snapshot_file(base, tmp_path / "b.db"))
    with b_dev() as s:
        inventory.record_count(s, OTHER_REP, stand.stand_id, {a: 8})
    with factory() as s:  # A counts the same shortfall of a, not having seen B's count
        inventory.record_count(s, REP, stand.stand_id, {a: 9, b: 10})
    count_b = as_device_b(only(ops_after(b_dev, start), "count.record"), 1)
    count_a = only(ops_after(factory, start), "count.record")

    server = Server(base, tmp_path / "server.db", device_id(factory))
    receive_history(server, factory, start)
    assert server.push(count_b) is None
    amended = server.push(count_a)
    assert amended is not None
    lines = {x["product_id"]: x for x in amended["lines"]}
    assert (lines[a]["movement_id"], lines[a]["adjustment"]) == (None, 0)
    assert (lines[b]["movement_id"], lines[b]["adjustment"]) == (None, 0)
    assert on_hand(server.factory, stand.stand_id, a) == 8  # corrected once, by B's count
    line = counted_line(server.factory, count_a.entity_id, a)
    assert (line.counted_qty, line.adjustment_movement_id) == (9, None)  # kept as observed
    with server.factory() as s, s.begin():
        (review,) = s.scalars(select(SyncReview)).all()
        assert (review.kind, review.status) == ("count_overlap", "open")
        assert (review.stand_id, review.product_id, review.partner_id) == (
            stand.stand_id,
            a,
            stand.partner_id,
        )
        assert json.loads(review.refs) == {
            "snapshot_id": count_a.entity_id,
            "line_id": lines[a]["id"],
            "other_snapshot_id": count_b.entity_id,
            "proposed_adjustment": -1,
        }
        assert (
            s.scalar(
                select(InventoryMovement.id).where(InventoryMovement.ref_id == count_a.entity_id)
            )
            is None
        )

    # Had A seen B's count (pulled past its feed row), there is no overlap.
    seen = Server(base, tmp_path / "seen.db", device_id(factory))
    receive_history(seen, factory, start)
    seen.push(count_b)
    after_seen = replace(count_a, base_seq=seen.feed_seq())
    assert seen.push(after_seen) is None
    assert on_hand(seen.factory, stand.stand_id, a) == 8 - 1


def test_count_check_refusals(
    factory: SessionFactory, stocked: StandFixture, tmp_path: Path
) -> None:
    stand = stocked
    a = stand.product_ids[0]
    base = snapshot(factory, tmp_path / "base.db")
    start = last_seq(factory)
    sid = new_id()
    with factory() as s:
        inventory.record_count(s, REP, stand.stand_id, {a: 7}, snapshot_id=sid)
    count = only(ops_after(factory, start), "count.record")
    b_dev = open_copy(snapshot_file(base, tmp_path / "b.db"))
    with b_dev() as s:
        inventory.record_count(s, REP, stand.stand_id, {a: 4}, snapshot_id=sid)
    count_b = as_device_b(only(ops_after(b_dev, start), "count.record"), 1)

    server = Server(base, tmp_path / "server.db", device_id(factory))
    server.push(count_b)
    assert refused(server.factory, count, Conflict) == f"A count with id {sid} already exists."
    # B's own count again under another op id: the same fact, no second movement or review.
    assert server.push(resend(count_b)) is None
    assert on_hand(server.factory, stand.stand_id, a) == 4

    fresh = Server(base, tmp_path / "fresh.db", device_id(factory))
    with fresh.factory() as s, s.begin():
        s.execute(delete(StandInventory).where(StandInventory.product_id == a))
    name = product_name(factory, a)
    assert refused(fresh.factory, count, NotFound) == f"{name} is not carried at this stand."
    as_partner = replace(count, actor_role=Role.PARTNER.value)
    assert refused(fresh.factory, as_partner, PermissionDenied) == "A partner may not count stock."


def test_every_op_type_of_the_family_is_registered() -> None:
    specs = apply.all_specs()
    assert set(specs) >= FAMILY
    for op_type in FAMILY:
        assert specs[op_type].summary
    assert specs["inventory.set_levels"].op_class == apply.OpClass.DESCRIPTIVE
    assert specs["sale.record"].op_class == apply.OpClass.FACT
