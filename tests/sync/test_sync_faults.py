"""Seeded fault injection: devices sync through a network that drops requests, loses
replies after the server committed, answers 503 and delivers requests twice, while the client
is killed at random points of its round. After the network heals, a plain sync must end with
nothing lost, nothing applied twice, every device equal to the server, and the queue empty
without anyone doing anything.

Each seed is repeatable (``random.Random(seed)`` drives the work, the network and the kills).
``make test`` runs a few dozen seeds; ``bench/bench_sync_faults.py`` runs thousands.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from app.errors import DomainError
from app.models import ChangeLog, MovementKind, Role, StandInventory, SyncReceivedOp
from app.services import inventory, refills, sales
from app.services.base import Actor
from sync.client import SyncClient
from tests.sync.conftest import Live
from tests.sync.devices import Device, converged, make_device

ANNA = Actor("rep.anna", Role.REP)
MGR = Actor("mgr.north", Role.MANAGER)
#: Seeds per run: a handful in ``make test`` (each takes about 1.5 s: two device databases
#: and a dozen rounds); STAND_SYNC_SEEDS=5000 for a long run.
SEEDS = int(os.environ.get("STAND_SYNC_SEEDS", "10"))
POINTS = (
    "before_push",
    "after_push_reply",
    "after_store",
    "before_pull",
    "after_pull_reply",
    "after_page",
)


class Killed(Exception):
    """The client process died here (everything not committed is gone)."""


class FlakyNetwork(httpx.BaseTransport):
    """A real transport to the real server, with seeded faults."""

    def __init__(self, rng: random.Random, rate: float) -> None:
        self.rng = rng
        self.rate = rate
        self.inner = httpx.HTTPTransport()
        self.seen = {"refused": 0, "lost_reply": 0, "503": 0, "twice": 0}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        roll = self.rng.random()
        if roll < self.rate * 0.25:
            self.seen["refused"] += 1
            raise httpx.ConnectError("connection refused", request=request)
        if roll < self.rate * 0.5:
            self.seen["503"] += 1
            return httpx.Response(503, json={"code": "busy", "detail": "busy"}, request=request)
        if roll < self.rate * 0.75:
            response = self.inner.handle_request(request)
            response.read()
            self.seen["lost_reply"] += 1
            raise httpx.ReadTimeout("reply lost", request=request)
        if roll < self.rate:
            first = self.inner.handle_request(request)
            first.read()
            self.seen["twice"] += 1
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def _skus(d: Device, stand_id: str) -> list[str]:
    with d.factory() as s, s.begin():
        return list(
            s.scalars(
                select(StandInventory.product_id)
                .where(StandInventory.stand_id == stand_id)
                .order_by(StandInventory.product_id)
            )
        )


def _work(d: Device, rng: random.Random, stands: list[str], counts: bool) -> None:
    """A few random actions through the real services (refusals are part of life)."""
    with d.factory() as s:
        for _ in range(rng.randint(1, 6)):
            stand = rng.choice(stands)
            skus = _skus(d, stand)
            kind = rng.random()
            try:
                if kind < 0.5:
                    lines = [sales.SaleLine(p, rng.randint(1, 3)) for p in rng.sample(skus, 2)]
                    sales.record_sale(s, d.actor, stand, lines, rng.choice(["cash", "card"]))
                elif kind < 0.7:
                    inventory.record_stock_change(
                        s,
                        d.actor,
                        stand,
                        rng.choice(skus),
                        rng.randint(1, 2),
                        kind=MovementKind.WRITE_OFF,
                        note="Damaged",
                    )
                elif kind < 0.85 and counts:
                    inventory.record_count(
                        s, d.actor, stand, {rng.choice(skus): rng.randint(0, 30)}
                    )
                elif counts:
                    refills.request_refill(s, d.actor, stand, {rng.choice(skus): rng.randint(1, 9)})
            except DomainError:
                pass


def _sync_with_faults(
    d: Device, url: str, rng: random.Random, rate: float, tally: dict[str, int]
) -> None:
    """Rounds on a flaky network, the client killed at random points and restarted."""
    for _ in range(rng.randint(1, 4)):
        net = FlakyNetwork(rng, rate)

        def fault(point: str) -> None:
            if rng.random() < 0.12:
                raise Killed(point)

        client = SyncClient(
            d.factory,
            url,
            token=d.token,
            transport=net,
            sleep=lambda _s: None,
            rng=rng,
            fault=fault,
            push_batch=rng.choice([1, 2, 5, 500]),
            page_size=rng.choice([1, 3, 1000]),
            max_attempts=3,
        )
        try:
            client.round()
        except Killed:
            tally["killed"] += 1  # the process died; nothing of it survives but the database
        finally:
            client.close()
            for k, v in net.seen.items():
                tally[k] += v


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_seeded_faults_heal_to_one_state(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    live: Live = request.getfixturevalue("live" if backend == "sqlite" else "pg_live")
    seeds = SEEDS if backend == "sqlite" else max(1, SEEDS // 4)
    folder = tmp_path
    kiosks = [live.world.stand["North Kiosk A"], live.world.stand["North Kiosk B"]]
    tally = {"refused": 0, "lost_reply": 0, "503": 0, "twice": 0, "killed": 0}
    for seed in range(seeds):
        rng = random.Random(seed)
        devices = [
            make_device(
                live.factory, live.url, folder, f"s{seed}-anna", ANNA, live.world.token["rep.anna"]
            ),
            make_device(
                live.factory, live.url, folder, f"s{seed}-mgr", MGR, live.world.token["mgr.north"]
            ),
        ]
        try:
            for _step in range(rng.randint(2, 4)):
                for n, d in enumerate(devices):
                    _work(d, rng, kiosks, counts=(n == 0))
                for d in rng.sample(devices, len(devices)):
                    _sync_with_faults(d, live.url, rng, rng.choice([0.2, 0.5]), tally)
            # The network heals: plain rounds, nobody doing anything special.
            for _ in range(2):
                for d in devices:
                    result = d.sync()
                    assert result.complete, (seed, result.error)
            problems = converged(live.factory, devices)
            assert problems == [], (seed, problems[:5])
            mine = {o.op_id for d in devices for o in d.ops()}
            with live.factory() as s, s.begin():
                received = s.scalar(
                    select(func.count())
                    .select_from(SyncReceivedOp)
                    .where(SyncReceivedOp.op_id.in_(mine))
                )
                fed = s.scalar(
                    select(func.count()).select_from(ChangeLog).where(ChangeLog.op_id.in_(mine))
                )
            assert received == len(mine), seed  # every op once
            assert fed == len(mine), seed  # none applied twice, none lost
            for d in devices:
                with d.factory() as s, s.begin():
                    assert s.connection().exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        finally:
            for d in devices:
                d.close()
    # Every kind of fault really happened (a quiet network would prove nothing).
    assert min(tally.values()) > 0, tally
