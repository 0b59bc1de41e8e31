"""A new device: an empty database that links to the server and syncs downloads everything
its user may see (the bootstrap stream), then pulls from the snapshot's cursor. The
download resumes where it stopped after the client is killed, and changes made on the
server meanwhile still arrive.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from app.db import SessionFactory, open_db
from app.models import (
    InventoryMovement,
    Payout,
    Role,
    StandInventory,
    StandLocation,
    StandOrder,
    StandPartner,
)
from app.reference import seed_reference_data
from app.services import feed, inventory, sales, snapshot, sync_device
from app.services.base import Actor
from app.services.scope import AccessScope
from sync.client import SyncClient
from tests.app.apply.replay import DEVICE_LOCAL, synced_tables
from tests.sync.conftest import Live
from tests.sync.devices import Device, converged

ADMIN = Actor("admin", Role.ADMIN)
ANNA = Actor("rep.anna", Role.REP)


class Killed(Exception):
    """The client process died here."""


def new_device(live: Live, tmp_path: Path, name: str, actor: Actor) -> Device:
    """An empty database, as `stand-os` makes on first start (reference data only)."""
    factory = open_db(f"sqlite:///{tmp_path / name}.db", device_name=name)
    with factory() as s, s.begin():
        seed_reference_data(s)
    return Device(name, factory, actor, live.world.token[actor.user], live.url)


def _head(factory: SessionFactory) -> int:
    with factory() as s, s.begin():
        return feed.head(s)


def test_snapshot_covers_every_synced_table() -> None:
    # A table added to the schema but not to the snapshot would never reach a new device.
    assert set(snapshot.TABLE_NAMES) == set(synced_tables())
    assert not set(snapshot.TABLE_NAMES) & DEVICE_LOCAL


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_new_device_downloads_the_program_then_syncs(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    live: Live = request.getfixturevalue("live" if backend == "sqlite" else "pg_live")
    device = new_device(live, tmp_path, "fresh", ADMIN)
    try:
        with device.factory() as s, s.begin():
            assert sync_device.needs_bootstrap(s)
        result = device.sync(snapshot_page=97)
        assert result.complete, result.error
        assert result.bootstrapped > 0
        assert converged(live.factory, [device]) == []
        with device.factory() as s, s.begin():
            assert not sync_device.needs_bootstrap(s)
            assert sync_device.state(s).cursor == _head(live.factory)
        # Work on the new device reaches the server, and the server's work the device.
        kiosk = live.world.stand["North Kiosk A"]
        with device.factory() as s:
            with s.begin():
                sku = s.scalars(
                    select(StandInventory.product_id).where(StandInventory.stand_id == kiosk)
                ).first()
            assert sku is not None
            order = sales.record_sale(s, ADMIN, kiosk, [sales.SaleLine(sku, 1)], "cash").order_id
        with live.factory() as s:
            other = sales.record_sale(s, ADMIN, kiosk, [sales.SaleLine(sku, 2)], "card").order_id
        result = device.sync()
        assert (result.complete, result.bootstrapped, result.pushed) == (True, 0, 1)
        with live.factory() as s, s.begin():
            assert s.get(StandOrder, order) is not None
        with device.factory() as s, s.begin():
            assert s.get(StandOrder, other) is not None
        assert converged(live.factory, [device]) == []
    finally:
        device.close()


def test_a_rep_downloads_only_their_territory(live: Live, tmp_path: Path) -> None:
    device = new_device(live, tmp_path, "anna-new", ANNA)
    try:
        assert device.sync().complete
        mine = {live.world.stand[n] for n in live.world.stands_of("rep.anna")}
        with device.factory() as s, s.begin():
            assert set(s.scalars(select(StandLocation.id))) == mine
            partners = set(s.scalars(select(StandPartner.id)))
            assert s.scalar(select(func.count()).select_from(Payout)) == 0
            moves = s.scalar(select(func.count()).select_from(InventoryMovement))
            assert inventory.verify_on_hand(s) == []
        assert partners == {live.world.partner["N1"]}
        with live.factory() as s, s.begin():
            assert moves == s.scalar(
                select(func.count())
                .select_from(InventoryMovement)
                .where(InventoryMovement.stand_id.in_(mine))
            )
    finally:
        device.close()


def test_an_interrupted_download_resumes_where_it_stopped(live: Live, tmp_path: Path) -> None:
    device = new_device(live, tmp_path, "resumed", ADMIN)

    def die_after_first_partner(point: str) -> None:
        if point == "after_partner_done":
            raise Killed(point)

    try:
        with (
            pytest.raises(Killed),
            device.client(snapshot_page=50, fault=die_after_first_partner) as c,
        ):
            c.round()
        with device.factory() as s, s.begin():
            assert sync_device.needs_bootstrap(s)
            progress = sync_device.bootstrap_progress(s)
        assert progress["after_partner"] is not None
        first_snapshot = progress["snapshot_seq"]
        before = _rows(device.factory)
        # The server moves on while the device is away: a sale at a stand of every
        # partner, so some land in the part already downloaded and some after it.
        later = [_sell_on_server(live, name) for name in live.world.stand]
        with live.factory() as s, s.begin():
            total = sum(
                len(snapshot.read_page(s, AccessScope.everything(), _ALL, t, None, 10**9))
                for t in snapshot.TABLE_NAMES
            )
        result = device.sync(snapshot_page=50)
        assert result.complete, result.error
        # Resumed: the pages written before the kill were not fetched again.
        assert before > 100
        assert 0 < result.bootstrapped <= total - before + 50
        with device.factory() as s, s.begin():
            assert all(s.get(StandOrder, order) is not None for order in later)
            # The feed was pulled from the older of the two snapshots.
            assert first_snapshot < _head(live.factory)
        assert converged(live.factory, [device]) == []
    finally:
        device.close()


_ALL = snapshot.Target("all")


def _sell_on_server(live: Live, stand_name: str) -> str:
    kiosk = live.world.stand[stand_name]
    with live.factory() as s:
        with s.begin():
            sku = s.scalars(
                select(StandInventory.product_id).where(StandInventory.stand_id == kiosk)
            ).first()
        assert sku is not None
        return sales.record_sale(s, ADMIN, kiosk, [sales.SaleLine(sku, 1)], "cash").order_id


def _rows(factory: SessionFactory) -> int:
    with factory() as s, s.begin():
        return sum(
            s.scalar(select(func.count()).select_from(snapshot.table(t))) or 0
            for t in snapshot.TABLE_NAMES
        )


def test_bootstrap_refuses_bad_scopes_and_partners(live: Live) -> None:
    token = live.world.token
    with httpx.Client(base_url=live.url) as http:
        bad = http.get(
            "/api/v1/sync/bootstrap",
            params={"scope": "shop:1"},
            headers={"Authorization": f"Bearer {token['admin']}"},
        )
        assert bad.status_code == 422
        assert "stand:<id>" in bad.json()["detail"]
        partner = http.get(
            "/api/v1/sync/bootstrap", headers={"Authorization": f"Bearer {token['partner.n1']}"}
        )
        assert partner.status_code == 403
        nobody = http.get("/api/v1/sync/bootstrap")
        assert nobody.status_code == 401


def test_a_device_that_never_synced_but_has_work_keeps_it(live: Live, tmp_path: Path) -> None:
    """Unsent work is never thrown away: the download writes around it, the push sends it."""
    device = new_device(live, tmp_path, "early", ADMIN)
    try:
        device.sync()
        kiosk = live.world.stand["South Kiosk"]
        with device.factory() as s:
            with s.begin():
                sku = s.scalars(
                    select(StandInventory.product_id).where(StandInventory.stand_id == kiosk)
                ).first()
                sync_device.state(
                    s
                ).bootstrap = '{"table": null, "after": null, "snapshot_seq": null}'
            assert sku is not None
            order = sales.record_sale(s, ADMIN, kiosk, [sales.SaleLine(sku, 1)], "cash").order_id
        result = device.sync(snapshot_page=40)
        assert result.complete, result.error
        with live.factory() as s, s.begin():
            assert s.get(StandOrder, order) is not None
        assert converged(live.factory, [device]) == []
    finally:
        device.close()


def test_client_rejects_a_device_without_token(live: Live, tmp_path: Path) -> None:
    device = new_device(live, tmp_path, "nobody", ADMIN)
    try:
        with SyncClient(device.factory, live.url, token="not-a-token") as c:
            result = c.round()
        assert not result.complete
        assert result.error
        with device.factory() as s, s.begin():
            assert sync_device.needs_bootstrap(s)
    finally:
        device.close()
