"""Starting the server: ``standctl serve`` calls :func:`serve`.

With one worker the app runs in this process. With several, uvicorn starts worker
processes that each build the app from the environment (:func:`app_from_env`); the schema
is migrated once here first, so the workers only check it.
"""

from __future__ import annotations

import os

import uvicorn
from fastapi import FastAPI

from app import db as appdb
from sync.server.app import create_app

ENV_DATABASE_URL = "STAND_SERVER_DATABASE_URL"


def app_from_env() -> FastAPI:
    """The app factory uvicorn's worker processes call."""
    url = os.environ.get(ENV_DATABASE_URL)
    if not url:
        raise RuntimeError(f"{ENV_DATABASE_URL} is not set")
    return create_app(url)


def serve(
    database_url: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    log_level: str = "info",
) -> None:
    """Serve the API until interrupted."""
    engine = appdb.create_db_engine(database_url)
    try:
        appdb.upgrade(engine)
    finally:
        engine.dispose()
    # Keep idle connections longer than clients do (httpx: 5 s), so a client never sends
    # on a connection the server is closing at that moment.
    keep_alive = 30
    if workers <= 1:
        uvicorn.run(
            create_app(database_url, migrate=False),
            host=host,
            port=port,
            log_level=log_level,
            proxy_headers=False,
            timeout_keep_alive=keep_alive,
        )
        return
    os.environ[ENV_DATABASE_URL] = database_url
    uvicorn.run(
        "sync.server.runner:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        proxy_headers=False,
        timeout_keep_alive=keep_alive,
    )
