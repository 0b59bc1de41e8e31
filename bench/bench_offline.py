"""The long-offline device at full size: 90 simulated days and 100,000 ops recorded through
the real services, pushed by a client process that is SIGKILLed in the middle, then resumed
by a new one (issue 7: "A device offline for 90 simulated days with 100,000 ops pushes them
all, resuming after a kill in the middle").

    .venv/bin/python bench/bench_offline.py [--ops 100000] [--days 90] [--kill-at 0.5]
                                            [--push-batch 500] [--seed 7]
                                            [--folder build/bench-offline]
                                            [--desktop-engine] [--timeout-minutes 60]

1. **Program**: the sync tests' world (tests/sync/world.py: 4 stands, 30 days of history)
   in a fresh SQLite file; the device is a copy of it for ``rep.anna`` (two kiosks).
2. **Generation**: the device records ``--ops`` ops day by day over ``--days`` simulated
   days (tests/sync/procs.py ``record_offline_days``: 80 % sales, 8 % write-offs, 7 %
   counts, 5 % refill requests), every action its own transaction through the services.
   By default the device keeps one SQLite connection open (a QueuePool of one);
   ``--desktop-engine`` uses ``open_db``'s engine as the desktop does (a new connection per
   transaction, slower).
3. **Server**: ``standctl serve`` (uvicorn, one worker) on a copy of the program, in a
   subprocess on a free 127.0.0.1 port.
4. **Push, killed**: a client process (``python -m tests.sync.procs client``: the real
   ``SyncClient``) pushes in batches of ``--push-batch``; once ``--kill-at`` of the outbox
   is answered it is SIGKILLed.
5. **Resume**: a new client process sends the rest and pulls the feed.
6. **Invariants** (exit status 1 if one fails): every op on the server exactly once, none
   rejected, the queue empty, the device equal to the server (tests/sync/devices.py
   ``converged``: every synced table row by row, ``on_hand`` caches), ``PRAGMA
   integrity_check`` ok on both databases, the server's ops by type equal to what was
   recorded.

Printed: the time and rate of each step, progress every ``--every`` seconds, the peak memory
of the client processes, the database sizes. A push phase that takes longer than
``--timeout-minutes`` is stopped and reported (exit status 1). Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parent.parent
# tests/ is not an installed package: the workload and the checks come from the checkout.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.db import open_db
from app.models import ChangeLog, Role, SyncReceivedOp
from app.services.base import Actor, device_id
from tests.sync import procs
from tests.sync.devices import converged, make_device
from tests.sync.world import build_world

ANNA = Actor("rep.anna", Role.REP)
OP_TYPES = {
    "sale": "sale.record",
    "write_off": "stock.write_off",
    "count": "count.record",
    "refill": "refill.request",
}


def _mib(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:,.0f} MiB"


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())


def _children_peak_rss() -> int:
    """The largest peak RSS of the child processes waited for so far (bytes)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024


def _watch(
    label: str,
    proc: subprocess.Popen[bytes],
    reader: procs.ProgressReader,
    total: int,
    *,
    every: float,
    timeout: float,
    kill_at: int | None = None,
) -> tuple[float, procs.Progress, str]:
    """Follow a client process: print progress every ``every`` s; SIGKILL it once
    ``kill_at`` ops are answered (if given) or after ``timeout`` s. Returns (seconds, the
    progress at the end, how it ended: "killed" | "exited N" | "timeout")."""
    began = time.perf_counter()
    last_t, last_n = began, reader.read().answered
    next_print = began + every
    while True:
        time.sleep(0.05)
        now = time.perf_counter()
        progress = reader.read()
        if kill_at is not None and progress.answered >= kill_at:
            procs.sigkill(proc)
            return now - began, reader.read(), "killed"
        if proc.poll() is not None:
            return now - began, reader.read(), f"exited {proc.returncode}"
        if now - began > timeout:
            procs.sigkill(proc)
            return now - began, reader.read(), "timeout"
        if now >= next_print:
            rate = (progress.answered - last_n) / (now - last_t)
            print(
                f"  {label}: {progress.answered:,}/{total:,} answered, cursor "
                f"{progress.cursor:,}, {rate:,.0f} ops/s over the last {now - last_t:.0f} s "
                f"({now - began:,.0f} s in)",
                flush=True,
            )
            last_t, last_n = now, progress.answered
            next_print = now + every


def _client(
    db: Path, url: str, token: str, args: argparse.Namespace, log: Path
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            procs.client_command(
                db, url, token, push_batch=args.push_batch, page_size=1000, seed=args.seed
            ),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=procs.child_env(),
            cwd=ROOT,
            start_new_session=True,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--kill-at", type=float, default=0.5, help="share of the outbox")
    parser.add_argument("--push-batch", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--folder", type=Path, default=ROOT / "build" / "bench-offline")
    parser.add_argument(
        "--desktop-engine",
        action="store_true",
        help="record through open_db's engine (a new connection per transaction)",
    )
    parser.add_argument("--every", type=float, default=15.0, help="progress interval (s)")
    parser.add_argument("--timeout-minutes", type=float, default=60.0, help="per push phase")
    args = parser.parse_args(argv)

    print(
        f"bench_offline: {args.ops:,} ops over {args.days} simulated days, kill at "
        f"{args.kill_at:.0%}, batches of {args.push_batch}; Python {platform.python_version()}"
        f", {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    folder: Path = args.folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    figures: dict[str, Any] = {}

    # 1. The program and the device.
    t = time.perf_counter()
    server_db = folder / "server.db"
    server_factory = open_db(f"sqlite:///{server_db}")
    world = build_world(server_factory)
    token = world.token["rep.anna"]
    kiosks = [world.stand["North Kiosk A"], world.stand["North Kiosk B"]]
    device = make_device(server_factory, "", folder, "device", ANNA, token)
    db = folder / "device.db"
    print(f"program and device ready in {time.perf_counter() - t:.1f} s", flush=True)

    # 2. 90 days offline.
    writer = device.factory if args.desktop_engine else procs.writer(db)
    day_t = [time.perf_counter(), 0]

    def on_day(day: int, work: procs.Workload) -> None:
        if (day + 1) % 10 == 0 or day + 1 == args.days:
            now = time.perf_counter()
            rate = (work.total - day_t[1]) / (now - day_t[0])
            print(
                f"  day {day + 1:>3}: {work.total:,} ops ({rate:,.0f} ops/s)",
                flush=True,
            )
            day_t[:] = [now, work.total]

    work = procs.record_offline_days(
        writer,
        ANNA,
        kiosks,
        days=args.days,
        ops=args.ops,
        start=world.built_at,
        seed=args.seed,
        on_day=on_day,
    )
    if writer is not device.factory:
        writer.kw["bind"].dispose()
    figures["generate"] = work.seconds
    print(
        f"generated {work.total:,} ops in {work.seconds:,.1f} s ({work.total / work.seconds:,.0f}"
        f" ops/s, {'open_db engine' if args.desktop_engine else 'one open connection'}): "
        + ", ".join(f"{k} {n:,}" for k, n in work.ops.most_common())
        + (f"; refused {sum(work.refused.values())}" if work.refused else "")
        + f"; device database {_mib(_size(db))}",
        flush=True,
    )

    failures: list[str] = []
    timeout = args.timeout_minutes * 60
    reader = procs.ProgressReader(db)
    log = folder / "client.log"
    with procs.server_process(f"sqlite:///{server_db}") as server:
        # 4. The push, killed in the middle.
        kill_at = max(1, math.ceil(args.ops * args.kill_at))
        proc = _client(db, server.url, token, args, log)
        seconds, at_kill, how = _watch(
            "push", proc, reader, args.ops, every=args.every, timeout=timeout, kill_at=kill_at
        )
        figures["push_until_kill"] = seconds
        with server_factory() as s, s.begin():
            received = int(s.scalar(select(func.count()).select_from(SyncReceivedOp)) or 0)
        print(
            f"push: {how} after {seconds:,.1f} s with {at_kill.answered:,} ops answered "
            f"({at_kill.answered / seconds:,.0f} ops/s); the server holds {received:,}",
            flush=True,
        )
        if how != "killed":
            failures.append(f"the first push ended: {how}, not killed in the middle")
        # Nothing is marked sent without the server's answer. At most two batches reached
        # the server without their answers stored: the one on the wire and the one before
        # it, whose answers the push's worker stores beside the request (sync/client.py).
        elif not at_kill.answered <= received <= at_kill.answered + 2 * args.push_batch:
            failures.append(
                f"after the kill the server holds {received} ops, the device has "
                f"{at_kill.answered} answered (batch {args.push_batch}; at most two batches "
                "may be unanswered)"
            )
        # 5. Resume.
        if how == "killed":
            proc = _client(db, server.url, token, args, log)
            seconds, done, how = _watch(
                "resume", proc, reader, args.ops, every=args.every, timeout=timeout
            )
            figures["resume"] = seconds
            sent = done.answered - at_kill.answered
            print(
                f"resume: {how} after {seconds:,.1f} s: {sent:,} ops pushed, feed pulled to "
                f"{done.cursor:,} ({sent / seconds:,.0f} ops/s including the pull)",
                flush=True,
            )
            if how != "exited 0":
                failures.append(f"the resumed round ended: {how}")
        reader.close()
        figures["client_peak_rss"] = _children_peak_rss()  # before the server is waited for

    # 6. Invariants.
    t = time.perf_counter()
    failures += procs.once_on_server(server_factory, device.factory)
    left = procs.pending(device.factory)
    if left:
        failures.append(f"{left} ops still pending on the device")
    failures += converged(server_factory, [device])
    for name, path in (("device", db), ("server", server_db)):
        check = procs.sqlite_integrity(path)
        if check != "ok":
            failures.append(f"{name}: integrity_check: {check}")
    with device.factory() as s, s.begin():
        me = device_id(s)
    with server_factory() as s, s.begin():
        rows = s.execute(
            select(ChangeLog.op_type, func.count())
            .where(ChangeLog.origin_device_id == me)
            .group_by(ChangeLog.op_type)
        ).all()
    by_type = Counter({op_type: int(n) for op_type, n in rows})
    wanted = Counter({OP_TYPES[k]: n for k, n in work.ops.items()})
    if by_type != wanted:
        failures.append(f"the server's ops by type {dict(by_type)} != recorded {dict(wanted)}")
    figures["check"] = time.perf_counter() - t
    device.close()
    server_factory.kw["bind"].dispose()

    push_total = figures.get("push_until_kill", 0) + figures.get("resume", 0)
    print()
    print(f"{'generate':<18}{figures['generate']:>10,.1f} s  ({args.ops:,} ops)")
    print(f"{'push until kill':<18}{figures['push_until_kill']:>10,.1f} s")
    if "resume" in figures:
        print(f"{'resume':<18}{figures['resume']:>10,.1f} s")
        print(
            f"{'push + resume':<18}{push_total:>10,.1f} s  ({args.ops / push_total:,.0f} ops/s; "
            f"{math.ceil(args.ops / args.push_batch)} batches + those sent again after the kill)"
        )
    print(f"{'invariant checks':<18}{figures['check']:>10,.1f} s")
    print(f"{'client peak RSS':<18}{_mib(figures['client_peak_rss']):>12}")
    print(f"{'databases':<18}device {_mib(_size(db))}, server {_mib(_size(server_db))}")
    if failures:
        print(f"\nFAILED ({len(failures)}):")
        for f in failures[:40]:
            print(f"  {f}")
        return 1
    print("\nAll invariants hold.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
