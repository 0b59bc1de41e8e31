"""Timing helpers the benchmarks share (plain Python; no Qt)."""

from __future__ import annotations

import itertools
import os
import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

from app.rules import PROGRAM_TIMEZONE


def ms(seconds: float) -> float:
    return seconds * 1000


def evict(path: Path) -> None:
    """Drop the database's pages from the OS page cache (the next read comes from disk).
    Only this file's clean pages are affected; nothing is written."""
    for p in (path, Path(f"{path}-wal")):
        if not p.exists():
            continue
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)  # dirty pages (a fresh copy) cannot be dropped
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def timed(
    fn: Callable[[], object], repeat: int, evict: Callable[[], None] | None
) -> tuple[float, list[float]]:
    """(first run ms, [timed runs ms]); the first runs after ``evict``."""
    if evict is not None:
        evict()
    t0 = time.perf_counter()
    fn()
    first = ms(time.perf_counter() - t0)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(ms(time.perf_counter() - t0))
    return first, times


def end_of(day: date) -> datetime:
    """The last second of ``day`` in the program's time zone, as UTC."""
    zone = ZoneInfo(PROGRAM_TIMEZONE)
    return datetime.combine(day, dtime(23, 59, 59), zone).astimezone(UTC)


def sample(ids: Sequence[str], count: int, seed: int) -> list[str]:
    """``count`` stands spread over the list: one at random from each equal slice."""
    rng = random.Random(seed)
    count = min(count, len(ids))
    edges = [round(i * len(ids) / count) for i in range(count + 1)]
    return [ids[rng.randrange(a, b)] for a, b in itertools.pairwise(edges)]
