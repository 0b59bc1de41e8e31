"""Fixtures of the server tests: the real server on 127.0.0.1, on SQLite or PostgreSQL.

``live`` starts uvicorn in a thread on a free loopback port, serving a fresh copy of the
test world (tests/sync/world.py), and gives an httpx client per user. Nothing of our own
is mocked: requests cross a real socket into the real app and database.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import create_engine, text

from app.db import SessionFactory, open_db
from sync.server.app import create_app
from tests.sync.world import World, build_world


@dataclass
class Live:
    """A running server and the world it serves."""

    url: str
    world: World
    factory: SessionFactory

    def client(self, username: str | None = None, **kwargs: object) -> httpx.Client:
        headers = {}
        if username is not None:
            headers["Authorization"] = f"Bearer {self.world.token[username]}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, **kwargs)

    def api(self, username: str | None = None) -> httpx.Client:
        """A client whose base URL is the stand API (``/api/v1/stand``)."""
        c = self.client(username)
        c.base_url = httpx.URL(self.url + "/api/v1/stand")
        return c


@contextmanager
def serve(
    database_url: str, *, wrap: Callable[[Any], Any] | None = None, **app_kwargs: object
) -> Iterator[str]:
    """Run the server on a free loopback port in a thread; yield its base URL. ``wrap``, if
    given, wraps the ASGI app (a test's look at the requests as they arrive)."""
    app = create_app(database_url, **app_kwargs)
    config = uvicorn.Config(
        app if wrap is None else wrap(app),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        app.state.server.engine.dispose()


def fresh_pg_database(server_url: str) -> str:
    """A new, empty database on the test cluster; its SQLAlchemy URL."""
    name = "stand_" + uuid.uuid4().hex[:12]
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
    finally:
        admin.dispose()
    return server_url.rsplit("/", 1)[0] + "/" + name


def world_in_pg(server_url: str) -> tuple[str, World]:
    """The test world in a fresh database of the PostgreSQL server at ``server_url``."""
    url = fresh_pg_database(server_url)
    sm = open_db(url)
    try:
        world = build_world(sm)
    finally:
        sm.kw["bind"].dispose()
    return url, world


@pytest.fixture(scope="module")
def pg_world(pg_server_url: str) -> tuple[str, World]:
    """The test world in a fresh PostgreSQL database (once per module)."""
    return world_in_pg(pg_server_url)


@pytest.fixture
def pg_live(pg_world: tuple[str, World]) -> Iterator[Live]:
    """The server on the PostgreSQL world (shared by the tests of a module: tests that
    write make their own ids)."""
    url, world = pg_world
    sm = open_db(url, migrate=False)
    with serve(url) as base:
        yield Live(base, world, sm)
    sm.kw["bind"].dispose()


@pytest.fixture(scope="module")
def sqlite_env(world_template: tuple[Path, World]) -> Iterator[Any]:
    """The seeded fault runs' SQLite environment (tests/sync/test_sync_faults.py), one per
    test module: the files that split the seeds share it."""
    from tests.sync.test_sync_faults import sqlite_environment

    with sqlite_environment(world_template) as env:
        yield env
