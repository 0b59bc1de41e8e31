"""What a device does with the server's "no": a change the server rejected (or applied
differently) leaves no provisional rows behind. The device re-reads the stand or partner it
touched from the server, so it ends with exactly the server's rows, while the change itself
stays in its log with the reason, in the Sync view's Rejected list and in the export.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.models import (
    ChangeLog,
    InventoryMovement,
    OpStatus,
    RefillStatus,
    Role,
    StandInventory,
    StandOrder,
    StandRefillOrder,
    SyncRefresh,
)
from app.services import inventory, refills, sales, sync_device
from app.services.base import Actor
from tests.sync.conftest import Live
from tests.sync.devices import Device, converged, make_device

ANNA = Actor("rep.anna", Role.REP)
MGR = Actor("mgr.north", Role.MANAGER)
ADMIN = Actor("admin", Role.ADMIN)


def _skus(live: Live, stand: str) -> list[str]:
    with live.factory() as s, s.begin():
        return list(
            s.scalars(
                select(StandInventory.product_id)
                .where(StandInventory.stand_id == live.world.stand[stand])
                .order_by(StandInventory.product_id)
            )
        )


def _device(live: Live, tmp_path: Path, name: str, actor: Actor) -> Device:
    token = live.world.token[actor.user]
    return make_device(live.factory, live.url, tmp_path, name, actor, token)


def _op(device: Device, op_type: str) -> ChangeLog:
    (op,) = [o for o in device.ops() if o.op_type == op_type]
    return op


def _on_hand(device: Device, stand: str, sku: str) -> int:
    with device.factory() as s, s.begin():
        return int(
            s.scalar(
                select(StandInventory.on_hand).where(
                    StandInventory.stand_id == stand, StandInventory.product_id == sku
                )
            )
            or 0
        )


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_delivery_to_a_cancelled_refill_is_withdrawn(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    live: Live = request.getfixturevalue("live" if backend == "sqlite" else "pg_live")
    kiosk = live.world.stand["North Kiosk A"]
    sku = _skus(live, "North Kiosk A")[0]
    with live.factory() as s:
        refill = refills.request_refill(s, ADMIN, kiosk, {sku: 6}).refill_id
        refills.approve_refill(s, ADMIN, refill)
        refills.schedule_refill(s, ADMIN, refill, date.today() + timedelta(days=1), "Dealer")
    anna, mgr = _device(live, tmp_path, "anna", ANNA), _device(live, tmp_path, "mgr", MGR)
    try:
        before = _on_hand(anna, kiosk, sku)
        # Offline: the manager cancels; the rep, not knowing, delivers and sells one.
        with mgr.factory() as s:
            refills.cancel_refill(s, MGR, refill, "Supplier out of stock")
        with anna.factory() as s:
            refills.deliver_refill(s, ANNA, refill)
            sale = sales.record_sale(s, ANNA, kiosk, [sales.SaleLine(sku, 1)], "cash").order_id
        assert _on_hand(anna, kiosk, sku) == before + 6 - 1
        assert mgr.sync().complete
        result = anna.sync()
        assert (result.complete, result.pushed, result.rejected) == (True, 2, 1)
        assert result.refreshed >= 1
        # The delivery is withdrawn on the device: state, movements and stock are the server's.
        with anna.factory() as s, s.begin():
            assert s.get_one(StandRefillOrder, refill).status == RefillStatus.CANCELLED
            kinds = s.scalars(
                select(InventoryMovement.kind).where(
                    InventoryMovement.ref_id == refill, InventoryMovement.stand_id == kiosk
                )
            ).all()
            assert kinds == []
            assert s.get(StandOrder, sale) is not None  # the accepted sale stays
            assert s.scalar(select(func.count()).select_from(SyncRefresh)) == 0
        assert _on_hand(anna, kiosk, sku) == before - 1
        # The rep's change is kept, with the reason, where the Sync view and export show it.
        op = _op(anna, "refill.deliver")
        assert op.status == OpStatus.REJECTED
        assert "cancelled" in (op.status_reason or "")
        with anna.factory() as s, s.begin():
            listed = [i for i in sync_device.items(s) if i.kind == "rejected"]
            exported = sync_device.unsent_and_rejected(s)
        assert [(i.op_id, i.label, i.stand_name) for i in listed] == [
            (op.op_id, "Refill delivery", "North Kiosk A")
        ]
        assert [e["op_id"] for e in exported] == [op.op_id]
        assert json.dumps(exported[0]["payload"])  # the whole payload, to re-enter it
        assert mgr.sync().complete
        assert converged(live.factory, [anna, mgr]) == []
    finally:
        anna.close()
        mgr.close()


def test_a_second_void_of_the_same_sale_is_withdrawn(live: Live, tmp_path: Path) -> None:
    kiosk = live.world.stand["North Kiosk B"]
    sku = _skus(live, "North Kiosk B")[0]
    with live.factory() as s:
        sale = sales.record_sale(s, ADMIN, kiosk, [sales.SaleLine(sku, 2)], "cash").order_id
    one, two = _device(live, tmp_path, "one", ANNA), _device(live, tmp_path, "two", ANNA)
    try:
        before = _on_hand(two, kiosk, sku)
        with one.factory() as s:
            sales.void_sale(s, ANNA, sale, reason="Customer returned it")
        with two.factory() as s:
            void = sales.void_sale(s, ANNA, sale, reason="Scanned twice").void_order_id
        assert _on_hand(two, kiosk, sku) == before + 2
        assert one.sync().complete
        result = two.sync()
        assert (result.complete, result.rejected) == (True, 1)
        assert "already been voided" in (_op(two, "sale.void").status_reason or "")
        with two.factory() as s, s.begin():
            assert s.get(StandOrder, void) is None  # never a fact of the program
            assert inventory.verify_on_hand(s) == []
        # Stock went back once, by the first void, as on the server.
        assert _on_hand(two, kiosk, sku) == before + 2
        assert one.sync().complete
        assert converged(live.factory, [one, two]) == []
    finally:
        one.close()
        two.close()


def test_an_overlapping_count_is_held_for_review_on_the_device_too(
    live: Live, tmp_path: Path
) -> None:
    kiosk = live.world.stand["North Kiosk A"]
    sku = _skus(live, "North Kiosk A")[1]
    one, two = _device(live, tmp_path, "one", ANNA), _device(live, tmp_path, "two", ANNA)
    try:
        with one.factory() as s:
            inventory.record_count(s, ANNA, kiosk, {sku: 3})
        with two.factory() as s:
            inventory.record_count(s, ANNA, kiosk, {sku: 9})
        assert _on_hand(two, kiosk, sku) == 9
        assert one.sync().complete
        result = two.sync()
        assert (result.complete, result.rejected) == (True, 0)
        op = _op(two, "count.record")
        assert (op.status, op.amended) == (OpStatus.APPLIED, True)
        with two.factory() as s, s.begin():
            review = [i for i in sync_device.items(s) if i.kind == "review"]
        assert [(i.op_id, i.reason) for i in review] == [(op.op_id, sync_device.REVIEW_REASON)]
        # The device's provisional adjustment is gone: the stand shows the first count.
        assert _on_hand(two, kiosk, sku) == 3
        assert one.sync().complete
        assert converged(live.factory, [one, two]) == []
    finally:
        one.close()
        two.close()


def test_a_refresh_interrupted_by_a_kill_is_done_next_round(live: Live, tmp_path: Path) -> None:
    kiosk = live.world.stand["North Kiosk B"]
    sku = _skus(live, "North Kiosk B")[0]
    with live.factory() as s:
        sale = sales.record_sale(s, ADMIN, kiosk, [sales.SaleLine(sku, 1)], "cash").order_id
    one, two = _device(live, tmp_path, "one", ANNA), _device(live, tmp_path, "two", ANNA)

    class Killed(Exception):
        pass

    def die_before_refresh(point: str) -> None:
        if point == "after_store":
            raise Killed(point)

    try:
        with one.factory() as s:
            sales.void_sale(s, ANNA, sale)
        with two.factory() as s:
            sales.void_sale(s, ANNA, sale)
        assert one.sync().complete
        with pytest.raises(Killed):
            two.client(fault=die_before_refresh).round()
        with two.factory() as s, s.begin():
            # The answer is stored and the refresh remembered, in one transaction.
            assert s.scalar(select(func.count()).select_from(SyncRefresh)) >= 1
        result = two.sync()
        assert result.complete
        assert result.refreshed >= 1
        assert converged(live.factory, [two]) == []
    finally:
        one.close()
        two.close()
