"""The seeded fault runs of test_sync_faults.py (which explains them) with the server on
PostgreSQL: each seed's server database is a ``CREATE DATABASE … TEMPLATE`` copy of the
test world on a throwaway cluster. ``STAND_SYNC_PG_SEEDS=N`` sets how many seeds run,
``STAND_SYNC_SEED=N`` runs only seed N."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sync.test_sync_faults import (
    Env,
    check_tally,
    pg_environment,
    run_seeds,
    seeds_to_run,
)
from tests.sync.world import World

PG_SEEDS = range(0, 60)


@pytest.fixture(scope="module")
def pg_env(pg_world: tuple[str, World]) -> Iterator[Env]:
    with pg_environment(pg_world) as env:
        yield env


def test_seeded_faults_heal_to_one_state_postgresql(pg_env: Env) -> None:
    seeds = seeds_to_run(PG_SEEDS, "STAND_SYNC_PG_SEEDS")
    check_tally(run_seeds(pg_env, seeds, "tests/sync/test_sync_faults_pg.py"), seeds)
