"""Seeded sync fault runs at scale: the runs of tests/sync/test_sync_faults.py (whose
docstring lists the faults and the invariants), thousands of seeds instead of the few
hundred ``make test`` runs, on SQLite or (``--pg``) PostgreSQL.

    .venv/bin/python bench/bench_sync_faults.py [--seeds 2000] [--start 1000] [--pg]
                                                [--seed N] [--verbose] [--folder DIR]

Each seed is a fresh copy of the test world under one real server on 127.0.0.1, two or
three devices that work offline and sync through a network that refuses, drops, repeats,
replays, reorders and splits requests and goes down for a while, while the client is killed
at every point of its round; then the network heals and the invariants of issue 7 are
checked (no op lost, none applied twice, every device equal to the server, the queues
empty, ``PRAGMA integrity_check`` ok). Seeds start at 1000 by default, past those ``make
test`` runs (0-299).

Prints runs/s and CPU per run, the tally of every kind of fault, kill and op, and for a
broken seed its problems, its last events, where its databases were kept and the command
that runs just it (``--seed N --verbose`` prints every event of a seed). Exits 1 when a seed
broke an invariant, or when a run of 50 seeds or more never saw one of the faults it must
(``MUST_HAPPEN``). Nothing is timed against a target: the figures are printed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.db import open_db
from tests.sync import test_sync_faults as faults
from tests.sync.conftest import world_in_pg
from tests.sync.world import build_world


@contextmanager
def sqlite_env(folder: Path) -> Iterator[faults.Env]:
    """The test world in a SQLite file, served to every seed as a fresh copy."""
    world_db = folder / "world.db"
    for old in folder.glob("world.db*"):  # a --folder used before
        old.unlink()
    factory = open_db(f"sqlite:///{world_db}")
    try:
        world = build_world(factory)
    finally:
        factory.kw["bind"].dispose()
    backend = faults.SqliteBackend(world_db, folder)
    with faults.environment(
        backend, world, open_db(f"sqlite:///{world_db}", migrate=False), folder
    ) as env:
        yield env


@contextmanager
def pg_env(folder: Path) -> Iterator[faults.Env]:
    """The test world in PostgreSQL on a throwaway cluster, copied per seed."""
    from tests.pgcluster import find_pg_bin, postgres_cluster

    bin_dir = find_pg_bin()
    if bin_dir is None:
        raise SystemExit("--pg needs the PostgreSQL server binaries (Debian postgresql-15)")
    with postgres_cluster(bin_dir) as cluster:
        url, world = world_in_pg(cluster)
        with faults.environment(
            faults.PostgresBackend(url), world, open_db(url, migrate=False), folder
        ) as env:
            yield env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=2000, help="how many seeds (2000)")
    parser.add_argument(
        "--start", type=int, default=1000, help="the first seed (1000: make test runs 0-299)"
    )
    parser.add_argument("--seed", type=int, help="run only this seed")
    parser.add_argument("--pg", action="store_true", help="the server on PostgreSQL")
    parser.add_argument("--verbose", action="store_true", help="print every seed's events")
    parser.add_argument(
        "--folder", type=Path, help="where the databases go (default: a folder in /dev/shm)"
    )
    args = parser.parse_args(argv)
    seeds = (
        [args.seed] if args.seed is not None else list(range(args.start, args.start + args.seeds))
    )
    with faults.scratch_folder() if args.folder is None else _given(args.folder) as folder:
        return _run(args, seeds, folder)


@contextmanager
def _given(folder: Path) -> Iterator[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    yield folder


def _run(args: argparse.Namespace, seeds: list[int], folder: Path) -> int:
    backend = "postgresql" if args.pg else "sqlite"
    print(f"sync fault runs: {len(seeds)} seeds from {seeds[0]} on {backend}, folder {folder}")
    tally: Counter[str] = Counter()
    broken: list[faults.SeedResult] = []
    ops = 0
    slowest = (0.0, -1)
    setup = time.perf_counter()
    with pg_env(folder) if args.pg else sqlite_env(folder) as env:
        setup = time.perf_counter() - setup
        started, cpu = time.perf_counter(), time.process_time()
        for n, seed in enumerate(seeds, 1):
            result = faults.run_seed(env, seed)
            tally.update(result.tally)
            ops += result.ops
            slowest = max(slowest, (result.seconds, seed))
            if args.verbose:
                print(f"seed {seed}: {result.ops} ops, {result.seconds:.2f} s")
                for line in result.events:
                    print(f"    {line}")
            if result.problems:
                broken.append(result)
                print(faults.report(result, faults_file(args.pg)), flush=True)
            if n % 100 == 0:
                elapsed = time.perf_counter() - started
                print(f"  {n} seeds, {n / elapsed:.2f} runs/s, {len(broken)} broken", flush=True)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(f"setup (world, template{', cluster' if args.pg else ''}): {setup:.1f} s")
    print(
        f"{len(seeds)} runs in {elapsed:.1f} s: {len(seeds) / elapsed:.2f} runs/s "
        f"({cpu / len(seeds):.2f} s of CPU per run, server thread included), {ops} device ops, "
        f"slowest seed {slowest[1]} ({slowest[0]:.2f} s)"
    )
    kills = {k: v for k, v in sorted(tally.items()) if k.startswith("kill:")}
    work = {k: v for k, v in sorted(tally.items()) if k.startswith("op:")}
    net = {k: v for k, v in sorted(tally.items()) if k not in kills and k not in work}
    print(f"kills: {kills}")
    print(f"network, rounds, outcomes: {net}")
    print(f"work: {work}")
    missing = [kind for kind in faults.MUST_HAPPEN if tally[kind] == 0]
    if len(seeds) < faults.TALLY_FROM:
        missing = []  # too few seeds to expect every kind of fault
    if missing:
        print(f"NEVER HAPPENED: {missing}")
    if broken:
        print(f"BROKEN: {len(broken)} of {len(seeds)} seeds: {[r.seed for r in broken]}")
        print(f"the broken seeds' databases are kept in {folder}")
        return 1
    print("every invariant held in every seed")
    return 1 if missing else 0


def faults_file(pg: bool) -> str:
    return "tests/sync/test_sync_faults_pg.py" if pg else "tests/sync/test_sync_faults.py"


if __name__ == "__main__":
    raise SystemExit(main())
