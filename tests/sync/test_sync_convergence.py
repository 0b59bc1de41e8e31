"""Several devices working offline on the same stands, then syncing in every order, through
the real client, a real socket and the real server: afterwards the server and every device
hold the same rows (ids included), every cached stock level equals its movements, and the
server holds every op exactly once.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.models import ChangeLog, OpStatus, Role, SyncDeadLetter, SyncReceivedOp
from app.services import inventory, refills, sales, sync_device
from app.services.base import Actor
from tests.sync.conftest import Live
from tests.sync.devices import Device, converged, make_device

ANNA = Actor("rep.anna", Role.REP)
MGR = Actor("mgr.north", Role.MANAGER)
ADMIN = Actor("admin", Role.ADMIN)


def make_fleet(live: Live, tmp_path: Path) -> tuple[dict[str, Device], str]:
    # A refill waiting for approval, made here: the world object is shared by every test.
    with live.factory() as s:
        kiosk_a = live.world.stand["North Kiosk A"]
        refill_id = refills.request_refill(
            s, ADMIN, kiosk_a, {_carried(live, "North Kiosk A")[0]: 5}
        ).refill_id
    token = live.world.token
    devices = {
        "anna1": make_device(live.factory, live.url, tmp_path, "anna1", ANNA, token["rep.anna"]),
        "anna2": make_device(live.factory, live.url, tmp_path, "anna2", ANNA, token["rep.anna"]),
        "mgr": make_device(live.factory, live.url, tmp_path, "mgr", MGR, token["mgr.north"]),
    }
    return devices, refill_id


def _carried(live: Live, stand: str) -> list[str]:
    with live.factory() as s, s.begin():
        from app.models import StandInventory

        return list(
            s.scalars(
                select(StandInventory.product_id)
                .where(StandInventory.stand_id == live.world.stand[stand])
                .order_by(StandInventory.product_id)
            )
        )


def _offline_work(live: Live, fleet: dict[str, Device], refill_id: str) -> None:
    kiosk_a, kiosk_b = live.world.stand["North Kiosk A"], live.world.stand["North Kiosk B"]
    a_skus, b_skus = _carried(live, "North Kiosk A"), _carried(live, "North Kiosk B")
    anna1, anna2, mgr = fleet["anna1"], fleet["anna2"], fleet["mgr"]
    with anna1.factory() as s:
        sales.record_sale(s, ANNA, kiosk_a, [sales.SaleLine(a_skus[0], 2)], "cash")
        sales.record_sale(s, ANNA, kiosk_b, [sales.SaleLine(b_skus[0], 1)], "card")
        inventory.record_count(s, ANNA, kiosk_a, {a_skus[1]: 3})
        refills.request_refill(s, ANNA, kiosk_b, {b_skus[1]: 4})
    with anna2.factory() as s:
        sales.record_sale(
            s, ANNA, kiosk_a, [sales.SaleLine(a_skus[0], 1), sales.SaleLine(a_skus[1], 1)], "cash"
        )
        inventory.record_count(s, ANNA, kiosk_b, {b_skus[0]: 7})
    with mgr.factory() as s:
        sales.record_sale(s, MGR, kiosk_a, [sales.SaleLine(a_skus[1], 2)], "qr")
        refills.approve_refill(s, MGR, refill_id)


def _assert_exactly_once(live: Live, devices: list[Device]) -> None:
    device_ops = {o.op_id for d in devices for o in d.ops()}
    mine = sorted(device_ops)
    with live.factory() as s, s.begin():
        received = s.scalars(
            select(SyncReceivedOp.op_id).where(SyncReceivedOp.op_id.in_(mine))
        ).all()
        fed = s.scalars(select(ChangeLog.op_id).where(ChangeLog.op_id.in_(mine))).all()
        dead = s.scalar(
            select(func.count()).select_from(SyncDeadLetter).where(SyncDeadLetter.op_id.in_(mine))
        )
    assert sorted(received) == mine  # each once (op_id is the key)
    assert sorted(fed) == mine  # each applied once into the feed
    assert dead == 0


ORDERS = list(itertools.permutations(["anna1", "anna2", "mgr"]))
# Every order on SQLite; on PostgreSQL (one world per module) the first and the last.
CASES = [("sqlite", o) for o in ORDERS] + [("postgresql", ORDERS[0]), ("postgresql", ORDERS[-1])]


@pytest.mark.parametrize(("backend", "order"), CASES)
def test_three_devices_converge_in_every_order(
    backend: str, order: tuple[str, ...], request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    live: Live = request.getfixturevalue("live" if backend == "sqlite" else "pg_live")
    fleet, refill_id = make_fleet(live, tmp_path)
    try:
        _check_round_trip(live, fleet, refill_id, order)
    finally:
        for d in fleet.values():
            d.close()


def _check_round_trip(
    live: Live, fleet: dict[str, Device], refill_id: str, order: tuple[str, ...]
) -> None:
    _offline_work(live, fleet, refill_id)
    for name in order:
        result = fleet[name].sync()
        assert result.complete, result.error
    # A second pass brings every device the others' changes.
    for name in order:
        assert fleet[name].sync().complete
    devices = list(fleet.values())
    assert converged(live.factory, devices) == []
    _assert_exactly_once(live, devices)
    for d in devices:
        with d.factory() as s, s.begin():
            assert {o.status for o in d.ops()} == {OpStatus.APPLIED}
            assert sync_device.status(s).unsent == 0
