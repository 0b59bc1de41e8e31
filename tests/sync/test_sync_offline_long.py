"""A device offline for 90 simulated days pushes everything it recorded, resuming after its
sync process is killed in the middle.

The device records its ops day by day through the real services (sales, counts,
write-offs, refill requests; each its own transaction, stamped with its simulated time)
and never syncs meanwhile. Then its client (a separate process) pushes the outbox and is
SIGKILLed once half of it is answered; a second process resumes and finishes the round.
Afterwards every op is on the server exactly once, nothing is left in the queue, the
device equals the server and its database is intact.

``make test`` runs a small device (``STAND_OFFLINE_OPS``, default 1,000 ops over the 90
days); ``bench/bench_offline.py`` runs the full 100,000 and prints the times.
"""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from app.clock import ensure_utc
from app.models import ChangeLog, Role, StandOrder, SyncReceivedOp
from app.services import sync_device
from app.services.base import Actor, device_id
from tests.sync import procs
from tests.sync.conftest import Live
from tests.sync.devices import converged, make_device

ANNA = Actor("rep.anna", Role.REP)
OPS = int(os.environ.get("STAND_OFFLINE_OPS", "1000"))
DAYS = 90
PUSH_BATCH = 100
SEED = 90
OP_TYPES = {
    "sale": "sale.record",
    "write_off": "stock.write_off",
    "count": "count.record",
    "refill": "refill.request",
}


def test_offline_90_days_pushes_everything_resuming_after_a_kill(
    live: Live, tmp_path: Path
) -> None:
    world = live.world
    token = world.token["rep.anna"]
    kiosks = [world.stand["North Kiosk A"], world.stand["North Kiosk B"]]
    device = make_device(live.factory, live.url, tmp_path, "anna", ANNA, token)
    db = tmp_path / "anna.db"
    try:
        # 90 days offline, day by day.
        writer = procs.writer(db)
        try:
            work = procs.record_offline_days(
                writer, ANNA, kiosks, days=DAYS, ops=OPS, start=world.built_at, seed=SEED
            )
        finally:
            writer.kw["bind"].dispose()
        assert work.total == OPS, work
        assert not work.refused, work.refused
        assert set(work.ops) == set(OP_TYPES), work.ops  # every kind of action happened
        with device.factory() as s, s.begin():
            assert sync_device.status(s).unsent == OPS
            first, last = s.execute(
                select(func.min(StandOrder.occurred_at), func.max(StandOrder.occurred_at)).where(
                    StandOrder.occurred_at >= world.built_at
                )
            ).one()
        assert ensure_utc(last) - ensure_utc(first) >= timedelta(days=DAYS - 1)

        # The push, killed once half of the outbox is answered.
        command = procs.client_command(db, live.url, token, push_batch=PUSH_BATCH, seed=SEED)
        reader = procs.ProgressReader(db)
        log = (tmp_path / "push.log").open("wb")
        proc = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=procs.child_env(),
            cwd=procs.ROOT,
            start_new_session=True,
        )
        try:
            reader.wait_for(proc, lambda p: p.answered >= OPS // 2, timeout=600)
            killed = procs.sigkill(proc)
        finally:
            procs.sigkill(proc)
            log.close()
        at_kill = reader.read()
        reader.close()
        assert killed, (tmp_path / "push.log").read_text()
        assert 0 < at_kill.answered < OPS  # killed in the middle of the push
        with live.factory() as s, s.begin():
            received = s.scalar(select(func.count()).select_from(SyncReceivedOp))
        # Nothing is marked sent without the server's answer. At most two batches reached
        # the server without their answers stored: the one on the wire and the one before
        # it, whose answers the push's worker stores beside the request (sync/client.py).
        assert received is not None
        assert at_kill.answered <= received <= at_kill.answered + 2 * PUSH_BATCH

        # Resume in a new process: it sends what is left and pulls.
        done = subprocess.run(
            command, capture_output=True, env=procs.child_env(), cwd=procs.ROOT, timeout=600
        )
        assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()

        assert procs.once_on_server(live.factory, device.factory) == []
        assert procs.pending(device.factory) == 0
        assert converged(live.factory, [device]) == []
        assert procs.sqlite_integrity(db) == "ok"
        with device.factory() as s, s.begin():
            me = device_id(s)
        with live.factory() as s, s.begin():
            rows = s.execute(
                select(ChangeLog.op_type, func.count())
                .where(ChangeLog.origin_device_id == me)
                .group_by(ChangeLog.op_type)
            ).all()
        by_type = Counter({op_type: int(n) for op_type, n in rows})
        assert by_type == Counter({OP_TYPES[k]: n for k, n in work.ops.items()})
    finally:
        device.close()
