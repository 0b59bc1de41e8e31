"""Benchmark the demo generator on a fresh SQLite file.

    .venv/bin/python bench/bench_demo.py [--stands 500] [--days 365] [--seed 7]
                                         [--end 2025-06-01] [--keep demo.db] [--profile]

Prints the rows made per table, the time per phase, rows per second and the database size.
Not part of the test run; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from app.db import open_db
from app.demo import DemoSummary, generate_demo


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def _run(path: Path, args: argparse.Namespace) -> tuple[DemoSummary, dict[str, float], int]:
    factory = open_db(f"sqlite:///{path}")
    started: dict[str, float] = {}

    def progress(phase: str, fraction: float) -> None:
        started.setdefault(phase, time.perf_counter())
        if sys.stderr.isatty():
            print(f"\r{phase:>9s} {fraction:6.1%}", end="", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    summary = generate_demo(
        factory, stands=args.stands, days=args.days, seed=args.seed, end=args.end, progress=progress
    )
    t1 = time.perf_counter()
    factory.kw["bind"].dispose()
    if sys.stderr.isatty():
        print("\r" + " " * 20 + "\r", end="", file=sys.stderr)
    # Time per phase: from its first report to the next phase's first report.
    marks = sorted(started.items(), key=lambda kv: kv[1])
    phases: dict[str, float] = {}
    edges = [t0] + [t for _, t in marks[1:]] + [t1]
    for (name, _), a, b in zip(marks, edges, edges[1:], strict=False):
        phases[name] = b - a
    return summary, phases, _size(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stands", type=int, default=500)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--end", type=date.fromisoformat, default=None, help="as-of date (default: today)"
    )
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="write the database here and keep it (must not exist)",
    )
    parser.add_argument("--profile", action="store_true", help="print a cProfile summary")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "bench.db"
        if path.exists():
            parser.error(f"{path} exists")
        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        summary, phases, size = _run(path, args)
        if profiler:
            profiler.disable()

    secs = summary.elapsed_seconds
    total = summary.total_rows
    print(
        f"demo: {args.stands} stands x {args.days} days, seed {args.seed}, "
        f"{summary.first_day} .. {summary.last_day}"
    )
    print()
    print(f"{'table':34s} {'rows':>12s}")
    print(f"{'-' * 34} {'-' * 12}")
    for table, n in summary.rows().items():
        print(f"{table:34s} {n:12,d}")
    print(f"{'-' * 34} {'-' * 12}")
    print(f"{'total':34s} {total:12,d}")
    print()
    for name, dt in phases.items():
        print(f"{'phase ' + name:34s} {dt:11.2f}s")
    print(f"{'seconds':34s} {secs:11.2f}s")
    print(f"{'rows/s':34s} {total / secs:12,.0f}")
    print(f"{'database size':34s} {size / 2**20:10.1f} MiB")
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(20)
        print(out.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
