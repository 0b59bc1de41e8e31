"""``standctl sync`` against the real server: link once (device credentials in the store,
never the password), then rounds, status and export."""

from __future__ import annotations

import json
import shutil
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.cli_sync import interrupt_cancels
from app.db import open_db
from app.models import Role, StandInventory, StandOrder
from app.paths import DB_FILENAME
from app.services import sales, users
from app.services.base import Actor
from sync.credentials import CredentialStore
from tests.conftest import Cli
from tests.sync.conftest import Live, serve
from tests.sync.devices import make_device
from tests.sync.world import PASSWORD

ANNA = Actor("rep.anna", Role.REP)


def _sell_offline(folder: Path, stand: str, quantity: int) -> str:
    """Record a sale of ``quantity`` of the stand's first product on the device database in
    ``folder`` (no server involved); its order id."""
    factory = open_db(f"sqlite:///{folder / DB_FILENAME}", migrate=False)
    try:
        with factory() as s:
            with s.begin():
                sku = s.scalars(
                    select(StandInventory.product_id).where(StandInventory.stand_id == stand)
                ).first()
            assert sku is not None
            line = sales.SaleLine(sku, quantity)
            return sales.record_sale(s, ANNA, stand, [line], "cash").order_id
    finally:
        factory.kw["bind"].dispose()


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
    order = _sell_offline(tmp_path, live.world.stand["North Kiosk A"], 2)
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


# ------------------------------------------------------------------------------ Ctrl+C


def _interrupt_on_push(app: Any) -> Any:
    """The server as it is, except that its first push request presses Ctrl+C: SIGINT is
    raised in the server's thread while the command waits for the answer, and Python runs
    the command's handler in the main thread as soon as that answer is back."""
    pressed = threading.Event()

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        push = scope["type"] == "http" and scope["path"].endswith("/sync/push")
        if push and not pressed.is_set():
            pressed.set()
            signal.raise_signal(signal.SIGINT)
        await app(scope, receive, send)

    return wrapped


def test_ctrl_c_cancels_the_round_after_the_batch_on_the_wire(
    world_template: tuple[Path, Any],
    run: Cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path, world = world_template
    db = tmp_path / "server.db"
    shutil.copyfile(path, db)
    server = open_db(f"sqlite:///{db}", migrate=False)
    before = signal.getsignal(signal.SIGINT)
    with serve(f"sqlite:///{db}", wrap=_interrupt_on_push) as url:
        make_device(server, url, tmp_path, DB_FILENAME.removesuffix(".db"), ANNA, "").close()
        monkeypatch.setenv("STAND_OS_PASSWORD", PASSWORD)
        assert run("sync", "--link", "--server", url, "--user", "rep.anna").code == 0
        order = _sell_offline(tmp_path, world.stand["North Kiosk A"], 1)

        r = run("sync")
        # The push was answered and its answer kept; the round stopped before the pull.
        assert r.code == 130, r.out + r.err
        assert "Stopping after the current step; press Ctrl+C again" in r.err
        assert "Sent 1 change(s) (0 rejected), received 0." in r.out
        assert "Cancelled: Sync was cancelled" in r.out
        assert "Left:" not in r.out
        assert signal.getsignal(signal.SIGINT) is before  # the handler is put back
        with server() as s, s.begin():
            assert s.get(StandOrder, order) is not None
        assert run("sync", "--status").out.splitlines()[0] == "0 unsent"
        # The next round completes; the press was only once.
        r = run("sync", "--json")
        assert r.json()["round"]["state"] == "ok"
        assert r.json()["round"]["pushed"] == 0
    server.kw["bind"].dispose()


def test_a_second_ctrl_c_stops_at_once() -> None:
    cancelled: list[str] = []
    said: list[str] = []
    before = signal.getsignal(signal.SIGINT)
    with interrupt_cancels(lambda: cancelled.append("cancel"), said.append):
        signal.raise_signal(signal.SIGINT)
        assert (cancelled, len(said)) == (["cancel"], 1)
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert cancelled == ["cancel"]
    assert signal.getsignal(signal.SIGINT) is before
    # Outside, Ctrl+C is as before.
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)


def test_ctrl_c_is_left_alone_outside_the_main_thread() -> None:
    before = signal.getsignal(signal.SIGINT)
    seen: list[object] = []

    def body() -> None:
        with interrupt_cancels(lambda: None, lambda _text: None):
            seen.append(signal.getsignal(signal.SIGINT))

    t = threading.Thread(target=body)
    t.start()
    t.join()
    assert seen == [before]
