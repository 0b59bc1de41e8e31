"""Smoke: every endpoint answers over real HTTP for an admin, on SQLite and PostgreSQL; and a
SQLite server's connections take its settings."""

from __future__ import annotations

import asyncio
import gc
import uuid
from pathlib import Path

import pytest

from app.db import head_revision
from sync.server import app as server_app
from sync.server.app import create_app
from tests.sync.conftest import Live


@pytest.fixture(params=["sqlite", "postgresql"])
def any_live(request: pytest.FixtureRequest) -> Live:
    """The server on either database: the same requests, the same answers."""
    return request.getfixturevalue("live" if request.param == "sqlite" else "pg_live")


def test_health_and_openapi(any_live: Live) -> None:
    live = any_live
    with live.client() as c:
        r = c.get("/api/v1/health")
        assert r.status_code == 200, r.text
        assert r.json()["database"] in ("sqlite", "postgresql")
        assert r.json()["schema_revision"] == head_revision()
        spec = c.get("/api/v1/openapi.json").json()
        assert "/api/v1/stand/list" in spec["paths"]


def test_admin_walk(any_live: Live) -> None:
    live = any_live
    w = live.world
    with live.api("admin") as c:
        r = c.get("/list", params={"limit": 2})
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) == 2
        assert page["next_cursor"]
        r2 = c.get("/list", params={"limit": 2, "cursor": page["next_cursor"]})
        assert r2.status_code == 200, r2.text
        sid = w.stand["North Kiosk A"]
        r = c.get(f"/{sid}/details")
        assert r.status_code == 200, r.text
        r = c.get(f"/performance/{sid}", params={"period": "28d"})
        assert r.status_code == 200, r.text
        oid = str(uuid.uuid4())
        body = {
            "order_id": oid,
            "stand_id": sid,
            "payment_method": "cash",
            "lines": [{"product": "SKU-A", "quantity": 1}],
        }
        r = c.post("/sales-record", json=body)
        assert r.status_code == 201, r.text
        r = c.post("/sales-record", json=body)
        assert r.status_code == 200, r.text
        assert r.json()["duplicate"]
        r = c.post("/refill/" + w.open_refill["North Kiosk A"] + "/approve", json={})
        assert r.status_code == 200, r.text
        r = c.post("/ai/refill-forecast", json={"stand_ids": [sid]})
        assert r.status_code == 200, r.text
        r = c.post("/ai/performance-insights", json={"stand_ids": [sid]})
        assert r.status_code == 200, r.text
        r = c.post(
            "/automation/on-low-stock", json={"stand_id": sid, "product": "SKU-B", "on_hand": 1}
        )
        assert r.status_code == 200, r.text
        r = c.post(
            "/ai/location-expansion",
            json={
                "candidates": [
                    {"name": "X", "latitude": 53.5, "longitude": 10.0, "location_type": "kiosk"}
                ]
            },
        )
        assert r.status_code == 200, r.text
        r = c.post(
            "/create",
            json={
                "partner_id": w.partner["N1"],
                "stand": {
                    "name": "North Kiosk C",
                    "address": "Weg 2",
                    "city": "Hamburg",
                    "location_type": "kiosk",
                    "capacity_units": 100,
                },
            },
        )
        assert r.status_code in (201, 409), r.text


def test_a_sqlite_server_checkpoints_its_log_less_often(tmp_path: Path) -> None:
    """Every connection of a SQLite server takes the server's checkpoint settings."""
    app = create_app(f"sqlite:///{tmp_path / 'server.db'}")
    engine = app.state.server.engine
    try:
        held = [engine.raw_connection() for _ in range(2)]  # two at once: two connections
        for raw in held:
            cursor = raw.cursor()
            pages = cursor.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
            limit = cursor.execute("PRAGMA journal_size_limit").fetchone()[0]
            assert (pages, limit) == (server_app.CHECKPOINT_PAGES, server_app.LOG_LIMIT_BYTES)
        for raw in held:
            raw.close()
        assert server_app.CHECKPOINT_PAGES > 1000  # SQLite's default
    finally:
        engine.dispose()


def test_a_server_keeps_its_start_up_objects_out_of_garbage_sweeps(tmp_path: Path) -> None:
    """Once started, the server's process has frozen what it made at start-up (gc.freeze):
    full collections then walk only what requests make."""
    app = create_app(f"sqlite:///{tmp_path / 'server.db'}")

    async def frozen_while_serving() -> int:
        async with app.router.lifespan_context(app):
            return gc.get_freeze_count()

    gc.unfreeze()
    try:
        assert gc.get_freeze_count() == 0
        assert asyncio.run(frozen_while_serving()) > 1000
    finally:
        gc.unfreeze()
        app.state.server.engine.dispose()
