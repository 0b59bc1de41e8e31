"""``standctl sync`` against the real server: link once (device credentials in the store,
never the password), then rounds, status and export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from app.db import open_db
from app.models import Role, StandInventory, StandOrder
from app.paths import DB_FILENAME
from app.services import sales, users
from app.services.base import Actor
from sync.credentials import CredentialStore
from tests.conftest import Cli
from tests.sync.conftest import Live
from tests.sync.devices import make_device
from tests.sync.world import PASSWORD

ANNA = Actor("rep.anna", Role.REP)


def test_link_sync_status_and_export(
    live: Live, run: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = DB_FILENAME.removesuffix(".db")
    make_device(live.factory, live.url, tmp_path, name, ANNA, "").close()
    # Not linked yet: the command says what to do.
    r = run("sync", "--server", live.url)
    assert r.code != 0
    assert "standctl sync --link" in r.err
    monkeypatch.setenv("STAND_OS_PASSWORD", PASSWORD)
    r = run("sync", "--link", "--server", live.url, "--user", "rep.anna")
    assert r.code == 0, r.err
    assert "Linked this device" in r.out
    stored = "".join(p.read_text() for p in tmp_path.glob("*credentials*"))
    assert PASSWORD not in stored
    # Work offline, then one round.
    factory = open_db(f"sqlite:///{tmp_path / DB_FILENAME}", migrate=False)
    kiosk = live.world.stand["North Kiosk A"]
    with factory() as s:
        with s.begin():
            sku = s.scalars(
                select(StandInventory.product_id).where(StandInventory.stand_id == kiosk)
            ).first()
        assert sku is not None
        order = sales.record_sale(s, ANNA, kiosk, [sales.SaleLine(sku, 2)], "cash").order_id
    factory.kw["bind"].dispose()
    r = run("sync", "--status")
    assert r.code == 2
    assert "1 unsent" in r.out
    r = run("sync")
    assert r.code == 0, r.out + r.err
    assert "Sent 1 change(s) (0 rejected)" in r.out
    with live.factory() as s, s.begin():
        assert s.get(StandOrder, order) is not None
    r = run("sync", "--status")
    assert (r.code, r.out.splitlines()[0]) == (0, "0 unsent")
    out = tmp_path / "unsent.jsonl"
    r = run("sync", "--export", str(out))
    assert r.code == 0
    assert out.read_text() == ""
    assert json.loads(run("sync", "--status", "--json").out)["unsent"] == 0
    assert run("sync", "--json").json()["round"]["state"] == "ok"

    # The office revokes this device: the round says it was refused and how to fix it.
    creds = CredentialStore(tmp_path).load(live.url)
    assert creds is not None
    with live.factory() as s, s.begin():
        users.revoke_device(s, creds.device_id)
    r = run("sync")
    assert r.code == 2
    assert f"Refused by the server: {users.INVALID_DEVICE}" in r.out
    assert f"link it again with 'standctl sync --link --server {live.url}" in r.out
    answer = run("sync", "--json").json()["round"]
    assert (answer["state"], answer["status"], answer["complete"]) == ("refused", 401, False)
    r = run("sync", "--link", "--server", live.url, "--user", "rep.anna")
    assert r.code == 0, r.err
    r = run("sync")
    assert r.code == 0, r.out + r.err
