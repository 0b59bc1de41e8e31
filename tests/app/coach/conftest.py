"""Fixtures of the coach tests: a six-stand world with 84 days of history (built once)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.db import SessionFactory, open_db
from tests.app.coach.test_insights import World, build_world


@pytest.fixture(scope="session")
def world_template(
    migrated_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, World]:
    """The world, built once per test session (about a thousand service calls)."""
    path = tmp_path_factory.mktemp("coach_world") / "stand.db"
    shutil.copyfile(migrated_template, path)
    sm = open_db(f"sqlite:///{path}", migrate=False)
    try:
        with sm() as s:
            w = build_world(s)
    finally:
        sm.kw["bind"].dispose()
    return path, w


@pytest.fixture
def world(
    world_template: tuple[Path, World], db_url: str
) -> Iterator[tuple[SessionFactory, World]]:
    """A fresh copy of the world for one test (at this test's ``db_url``)."""
    path, w = world_template
    shutil.copyfile(path, db_url.split("///", 1)[1])
    sm = open_db(db_url, migrate=False)
    yield sm, w
    sm.kw["bind"].dispose()
