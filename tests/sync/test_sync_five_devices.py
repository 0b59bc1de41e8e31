"""Five devices (a rep's three tablets and two managers' laptops) work offline on the
same stands, with real conflicts: a delivery to a refill another device cancels, two voids
of one sale, two overlapping counts. They sync in several orders; afterwards every device
holds exactly the server's rows, every rejected change is a dead letter and stays in its
device's log with the reason, and every change is on the server exactly once.

Every one of the 120 orders runs with ``STAND_SYNC_ORDERS=all`` (a long run); ``make test``
runs a seeded sample.
"""

from __future__ import annotations

import itertools
import os
import random
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.models import (
    ChangeLog,
    OpStatus,
    RefillStatus,
    Role,
    StandInventory,
    StandRefillOrder,
    SyncDeadLetter,
    SyncReceivedOp,
)
from app.services import inventory, refills, sales
from app.services.base import Actor
from tests.sync.conftest import Live
from tests.sync.devices import Device, converged, make_device

ANNA = Actor("rep.anna", Role.REP)
MGR = Actor("mgr.north", Role.MANAGER)
ADMIN = Actor("admin", Role.ADMIN)
NAMES = ("anna1", "anna2", "anna3", "mgr1", "mgr2")

_ALL = list(itertools.permutations(NAMES))
if os.environ.get("STAND_SYNC_ORDERS") == "all":
    ORDERS = _ALL
else:
    ORDERS = [_ALL[0], _ALL[-1], *random.Random(7).sample(_ALL[1:-1], 2)]
CASES = [("sqlite", o) for o in ORDERS] + [("postgresql", ORDERS[-1])]


def _skus(live: Live, stand: str) -> list[str]:
    with live.factory() as s, s.begin():
        return list(
            s.scalars(
                select(StandInventory.product_id)
                .where(StandInventory.stand_id == live.world.stand[stand])
                .order_by(StandInventory.product_id)
            )
        )


@pytest.mark.parametrize(("backend", "order"), CASES)
def test_five_devices_with_conflicts_converge(
    backend: str, order: tuple[str, ...], request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    live: Live = request.getfixturevalue("live" if backend == "sqlite" else "pg_live")
    a, b = live.world.stand["North Kiosk A"], live.world.stand["North Kiosk B"]
    a_skus, b_skus = _skus(live, "North Kiosk A"), _skus(live, "North Kiosk B")
    # On the server before the devices copy it: a scheduled refill, a requested one, a sale.
    with live.factory() as s:
        scheduled = refills.request_refill(s, ADMIN, a, {a_skus[0]: 4}).refill_id
        refills.approve_refill(s, ADMIN, scheduled)
        refills.schedule_refill(s, ADMIN, scheduled, date.today() + timedelta(days=1), "Dealer")
        requested = refills.request_refill(s, ADMIN, b, {b_skus[0]: 3}).refill_id
        sold = sales.record_sale(s, ADMIN, b, [sales.SaleLine(b_skus[1], 2)], "cash").order_id
    token = live.world.token
    actors = {"anna1": ANNA, "anna2": ANNA, "anna3": ANNA, "mgr1": MGR, "mgr2": MGR}
    fleet: dict[str, Device] = {
        name: make_device(live.factory, live.url, tmp_path, name, actor, token[actor.user])
        for name, actor in actors.items()
    }
    try:
        with fleet["anna1"].factory() as s:
            sales.record_sale(s, ANNA, a, [sales.SaleLine(a_skus[1], 2)], "cash")
            inventory.record_count(s, ANNA, a, {a_skus[2]: 5})
            refills.deliver_refill(s, ANNA, scheduled)
            sales.void_sale(s, ANNA, sold, reason="Returned")
        with fleet["anna2"].factory() as s:
            sales.record_sale(
                s, ANNA, b, [sales.SaleLine(b_skus[0], 1), sales.SaleLine(b_skus[1], 1)], "card"
            )
            inventory.record_count(s, ANNA, a, {a_skus[2]: 8})
            sales.void_sale(s, ANNA, sold, reason="Scanned twice")
            refills.request_refill(s, ANNA, b, {b_skus[2]: 6})
        with fleet["mgr1"].factory() as s:
            refills.cancel_refill(s, MGR, scheduled, "Supplier out of stock")
            sales.record_sale(s, MGR, a, [sales.SaleLine(a_skus[0], 1)], "qr")
        with fleet["mgr2"].factory() as s:
            refills.approve_refill(s, MGR, requested)
            sales.record_sale(s, MGR, a, [sales.SaleLine(a_skus[3], 2)], "cash")
        with fleet["anna3"].factory() as s:
            sales.record_sale(s, ANNA, b, [sales.SaleLine(b_skus[3], 1)], "cash")
            inventory.record_count(s, ANNA, b, {b_skus[2]: 4})
        for _ in range(2):  # the second pass brings everyone the others' changes
            for name in order:
                result = fleet[name].sync()
                assert result.complete, (name, result.error)
        devices = list(fleet.values())
        assert converged(live.factory, devices) == []
        ops = [o for d in devices for o in d.ops()]
        rejected = sorted(o.op_id for o in ops if o.status == OpStatus.REJECTED)
        accepted = sorted(o.op_id for o in ops if o.status != OpStatus.REJECTED)
        # Exactly one of delivery and cancellation, and one of the two voids, went through.
        assert len(rejected) == 2
        assert {o.op_type for o in ops if o.status == OpStatus.REJECTED} <= {
            "refill.deliver",
            "refill.cancel",
            "sale.void",
        }
        assert all(o.status_reason for o in ops if o.status == OpStatus.REJECTED)
        with live.factory() as s, s.begin():
            mine = [o.op_id for o in ops]
            received = sorted(
                s.scalars(select(SyncReceivedOp.op_id).where(SyncReceivedOp.op_id.in_(mine)))
            )
            fed = sorted(s.scalars(select(ChangeLog.op_id).where(ChangeLog.op_id.in_(mine))))
            dead = sorted(
                s.scalars(select(SyncDeadLetter.op_id).where(SyncDeadLetter.op_id.in_(mine)))
            )
            state = s.get_one(StandRefillOrder, scheduled).status
            voids = s.scalar(
                select(func.count())
                .select_from(ChangeLog)
                .where(ChangeLog.op_type == "sale.void", ChangeLog.op_id.in_(mine))
            )
        assert received == sorted(mine)
        assert fed == accepted
        assert dead == rejected
        assert voids == 1
        first_to_touch = next(n for n in order if n in ("anna1", "mgr1"))
        assert state == (
            RefillStatus.DELIVERED if first_to_touch == "anna1" else RefillStatus.CANCELLED
        )
    finally:
        for d in fleet.values():
            d.close()
