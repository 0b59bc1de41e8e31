"""The second half of the SQLite seeds of test_sync_faults.py (which explains the runs), in
a file of its own so that ``make test`` (one file per process) runs the halves on both
cores."""

from __future__ import annotations

from tests.sync.test_sync_faults import (
    Env,
    check_tally,
    run_seeds,
    seeds_to_run,
)

SQLITE_SEEDS = range(120, 240)


def test_seeded_faults_heal_to_one_state_sqlite_more(sqlite_env: Env) -> None:
    seeds = seeds_to_run(SQLITE_SEEDS)
    check_tally(run_seeds(sqlite_env, seeds, "tests/sync/test_sync_faults_more.py"), seeds)
