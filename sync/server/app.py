"""The server's app factory: ``create_app(database_url)`` gives a FastAPI app serving the
stand program's contract on the same app/ services as the desktop.

One database URL decides everything: a SQLite file for a small program on one laptop, or
PostgreSQL (``postgresql+psycopg://...``) shared by several server processes. The schema is
created or migrated on start (under an advisory lock on PostgreSQL, so workers starting at
once do not race).
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from sqlalchemy import Engine, event
from sqlalchemy.pool import QueuePool

from app import __version__
from app import db as appdb
from sync.protocol import API_PREFIX, MAX_PUSH_BYTES, SYNC_PREFIX, Problem, PushRequest
from sync.server import auth, problems, routes_stand, routes_sync
from sync.server.context import Server
from sync.server.limits import DEFAULT_MAX_BODY, BodyLimit

DESCRIPTION = """\
The REST contract of the stand program: stands, refills, sales, performance and the AI
Stand Coach, for the desktop app and the company's other services.

* **Authentication**: `POST /api/v1/auth/token` with a password or device credentials
  gives a bearer token; send it as `Authorization: Bearer <token>`.
* **Authorisation**: by role (admin, manager, rep, partner) and scope: a manager sees the
  stands of their region, a rep those of their territory, a partner only their own. A
  record outside the caller's scope answers 404, like one that does not exist.
* **Idempotency**: writes take a client-made id (`order_id`, `refill_id`, `stand_id`) and an
  optional `Idempotency-Key` header; a repeat changes nothing and answers with the first
  result (the same key with another request is a 409).
* **Money** is a decimal string (`"12.50"`), never a JSON number.
* **Errors** are RFC 9457 problem details (`application/problem+json`).
"""


#: Requests one server process works on at once (the others wait their turn in order).
WORKER_THREADS = 4


#: Write-ahead-log pages after which a server commit copies the log into the database
#: (a checkpoint; SQLite's default is 1,000 pages of 4 KiB).
CHECKPOINT_PAGES = 10_000
#: The log file's size kept after a checkpoint restarts it.
LOG_LIMIT_BYTES = 64 * 1024 * 1024


def _server_sqlite(dbapi_conn: Any, _record: Any) -> None:
    """Checkpoint a server's SQLite log every :data:`CHECKPOINT_PAGES` pages, not 1,000.
    A checkpoint copies each page in the log once, however often it changed since the last
    one, and a push changes the same index pages (feed, orders, stock lines) batch after
    batch, so fewer, larger checkpoints copy less. Measured with bench/bench_sync.py on a
    500-stand program: a 20,000-op push went from 2,115 to 2,214 ops/s (p50 batch 207 to
    188 ms); see docs/sync-design.md."""
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_PAGES}")
    cur.execute(f"PRAGMA journal_size_limit={LOG_LIMIT_BYTES}")
    cur.close()


def _engine(database_url: str) -> Engine:
    if database_url.startswith("sqlite"):
        # Unlike the desktop, keep connections open between requests: opening one (and
        # its settings) costs about a millisecond, and a request opens one or two.
        engine = appdb.create_db_engine(
            database_url, poolclass=QueuePool, pool_size=20, max_overflow=30
        )
        event.listen(engine, "connect", _server_sqlite)
        return engine
    # A worker serves up to 40 requests at once (the thread pool); keep a connection each.
    return appdb.create_db_engine(database_url, pool_size=20, max_overflow=20)


def create_app(
    database_url: str,
    *,
    migrate: bool = True,
    max_body_bytes: int = DEFAULT_MAX_BODY,
    worker_threads: int = WORKER_THREADS,
) -> FastAPI:
    """A FastAPI app on the database at ``database_url``."""
    engine = _engine(database_url)
    if migrate:
        appdb.upgrade(engine)
    server = Server(engine)
    appdb.ensure_device(server.writer, "server")

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Requests run in a thread pool; with the GIL, dozens of threads at once only take
        # turns and a write (holding SQLite's one write slot) is slowed by every read. A few
        # threads per worker keep the CPU as busy with far shorter queues behind writes.
        anyio.to_thread.current_default_thread_limiter().total_tokens = worker_threads
        # What exists now (modules, schemas, the app) lives as long as the process: keep it
        # out of the garbage collector's full sweeps, which otherwise walk all of it every
        # few pushes (about 60 ms each; in-process, 500-op pushes went from 4,000 to 4,600
        # ops/s). Requests' own objects are collected as before.
        gc.collect()
        gc.freeze()
        yield

    app = FastAPI(
        lifespan=lifespan,
        title="Stand Program OS API",
        version=__version__,
        description=DESCRIPTION,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.server = server
    app.state.sign_in_throttle = auth.SignInThrottle()
    problems.install(app)
    app.include_router(auth.router, prefix=API_PREFIX)
    app.include_router(routes_stand.router, prefix=API_PREFIX)
    app.include_router(routes_sync.router, prefix=API_PREFIX)
    app.add_middleware(
        BodyLimit,
        max_bytes=max_body_bytes,
        path_limits={f"{SYNC_PREFIX}/push": max(max_body_bytes, MAX_PUSH_BYTES)},
    )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            # Routes name the Problem schema by reference; make sure it is defined.
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.setdefault(
                "Problem", Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            )
            # The push route reads its body itself (routes_sync.push_request): its schema.
            push = PushRequest.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, part in push.pop("$defs", {}).items():
                components.setdefault(name, part)
            components.setdefault("PushRequest", push)
            app.openapi_schema = schema
        return app.openapi_schema

    # FastAPI's documented way to customise the document is to replace this method.
    app.openapi = openapi  # type: ignore[method-assign]
    return app
