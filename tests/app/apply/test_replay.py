"""Replay equivalence across every family: the change-log scenario of every mutation
(tests/app/test_changelog.py), written op by op onto a copy of the database as it was before,
recreates every synced row with the same ids; written a second time, nothing changes."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from app.db import SessionFactory
from app.errors import DomainError
from app.services import apply, inventory
from tests.app.apply.replay import diff, open_copy, ops_of, replay, snapshot
from tests.app.test_changelog import scenario
from tests.conftest import CatalogProduct


def test_every_op_type_a_service_writes_has_a_spec() -> None:
    specs = apply.all_specs()
    assert len(specs) == 33
    for op_type, spec in specs.items():
        assert spec.op_type == op_type
        assert spec.summary or spec.write.__doc__, op_type


def test_the_whole_scenario_replays_to_the_same_rows(
    factory: SessionFactory, session: Session, catalog: list[CatalogProduct], tmp_path: Path
) -> None:
    base = snapshot(factory, tmp_path / "base.db")
    ctx: dict[str, Any] = {}
    for step in scenario(catalog):
        with contextlib.suppress(DomainError):  # the scenario's refused steps are part of it
            step.run(session, ctx)
    ops = ops_of(factory)
    assert len({o.op_type for o in ops}) >= 25
    target = open_copy(base)
    try:
        replay(ops, target)
        assert diff(factory, target) == []
        replay(ops, target)
        assert diff(factory, target) == []
        with target() as s, s.begin():
            assert inventory.verify_on_hand(s) == []
    finally:
        target.kw["bind"].dispose()
