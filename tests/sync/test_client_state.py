"""How a sync round ends (``RoundResult.state``), each state from a real condition, and the
client's cooperative cancel, against the real server on 127.0.0.1.

- offline: a loopback port with nothing listening;
- refused: a revoked device sign-in or an unknown token (401), and a device whose database
  was restored from a backup (409 device_identity_conflict), both from our own server;
- busy: a stand-in server that answers 503 to everything (our server answers 503 only
  after a 15 s database lock, too slow for the suite);
- cancelled: between push batches, between pull pages, between snapshot pages and while
  waiting to retry; each time the device keeps what it stored and the next round completes.
"""

from __future__ import annotations

import json
import random
import socket
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.db import open_db
from app.models import OpStatus, Role, StandInventory, SyncReceivedOp
from app.services import feed, sales, sync_device, sync_server, users
from app.services.base import Actor, device_id
from sync import protocol as p
from sync.client import RoundResult, SyncClient, link_device
from tests.sync.conftest import Live
from tests.sync.devices import Device, converged, make_device, server_db_path
from tests.sync.test_sync_bootstrap import new_device
from tests.sync.world import PASSWORD

ANNA = Actor("rep.anna", Role.REP)
ADMIN = Actor("admin", Role.ADMIN)
KIOSK = "North Kiosk A"


def _no_wait(_seconds: float) -> None:
    return None


def dead_url() -> str:
    """A loopback address nobody listens on: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def kiosk_sku(live: Live) -> str:
    """A product the kiosk carries."""
    with live.factory() as s, s.begin():
        sku = s.scalars(
            select(StandInventory.product_id).where(
                StandInventory.stand_id == live.world.stand[KIOSK]
            )
        ).first()
    assert sku is not None
    return sku


def _sell(device_or_server: Device | Live, live: Live, n: int, actor: Actor = ANNA) -> None:
    """``n`` sales of one unit at the kiosk, each its own transaction (one op each)."""
    factory = device_or_server.factory
    sku = kiosk_sku(live)
    for _ in range(n):
        with factory() as s:
            sales.record_sale(s, actor, live.world.stand[KIOSK], [sales.SaleLine(sku, 1)], "cash")


def _device(live: Live, tmp_path: Path, name: str = "anna") -> Device:
    return make_device(live.factory, live.url, tmp_path, name, ANNA, live.world.token[ANNA.user])


def _status(device: Device) -> sync_device.SyncStatus:
    with device.factory() as s, s.begin():
        return sync_device.status(s)


def _cancel_at(point: str, cancel: threading.Event) -> Callable[[str], None]:
    """A fault hook that cancels the round the first time it passes ``point``."""

    def hook(reached: str) -> None:
        if reached == point:
            cancel.set()

    return hook


# ---------------------------------------------------------------------- states


def test_a_port_with_nothing_listening_is_offline(live: Live, tmp_path: Path) -> None:
    device = _device(live, tmp_path)
    try:
        _sell(device, live, 1)
        with SyncClient(
            device.factory,
            dead_url(),
            token=device.token,
            max_attempts=2,
            sleep=_no_wait,
        ) as client:
            result = client.round()
        assert (result.state, result.complete, result.status) == ("offline", False, None)
        assert result.error
        assert "cannot be reached" in result.error
        status = _status(device)
        assert status.unsent == 1  # kept, to be sent later
        assert status.last_error == result.error
        # The same device with the server there: the round completes.
        result = device.sync()
        assert (result.state, result.complete, result.pushed) == ("ok", True, 1)
        assert _status(device).last_error is None
    finally:
        device.close()


def test_a_revoked_sign_in_is_refused_until_the_device_is_linked_again(
    live: Live, tmp_path: Path
) -> None:
    device = _device(live, tmp_path)
    try:
        _sell(device, live, 1)
        creds = link_device(live.url, ANNA.user, PASSWORD, "laptop")
        with live.factory() as s, s.begin():
            users.revoke_device(s, creds.device_id)
        with SyncClient(device.factory, live.url, credentials=creds, sleep=_no_wait) as client:
            result = client.round()
        assert (result.state, result.complete) == ("refused", False)
        assert (result.status, result.code) == (401, "authentication_failed")
        assert result.error == users.INVALID_DEVICE
        assert _status(device).unsent == 1

        # An unknown token: refused the same way.
        with SyncClient(device.factory, live.url, token="no-such-token") as client:
            result = client.round()
        assert (result.state, result.status) == ("refused", 401)

        # Linked again (a new device sign-in): the change goes through.
        again = link_device(live.url, ANNA.user, PASSWORD, "laptop")
        with SyncClient(device.factory, live.url, credentials=again) as client:
            result = client.round()
        assert (result.state, result.complete, result.pushed) == ("ok", True, 1)
        assert converged(live.factory, [device]) == []
    finally:
        device.close()


def test_a_device_restored_from_a_backup_is_refused(live: Live, tmp_path: Path) -> None:
    device = _device(live, tmp_path)
    backup = tmp_path / "backup"
    backup.mkdir()
    restored: Device | None = None
    try:
        source = server_db_path(device.factory)
        with (
            closing(sqlite3.connect(source)) as a,
            closing(sqlite3.connect(backup / "anna.db")) as b,
        ):
            a.backup(b)
        _sell(device, live, 1)
        assert device.sync().complete
        # The backup comes back, and records another change under the same number.
        factory = open_db(f"sqlite:///{backup / 'anna.db'}", migrate=False)
        restored = Device("restored", factory, ANNA, device.token, live.url)
        _sell(restored, live, 1)
        result = restored.sync(sleep=_no_wait)
        assert (result.state, result.complete) == ("refused", False)
        assert (result.status, result.code) == (409, "device_identity_conflict")
        assert "restored from a backup" in (result.error or "")
        assert "export them on the Sync screen" in (result.error or "")
        with factory() as s, s.begin():
            assert sync_device.status(s).unsent == 1
    finally:
        device.close()
        if restored is not None:
            restored.close()


@contextmanager
def always_503() -> Iterator[str]:
    """A stand-in server that answers every request "503, retry after 0 s"."""

    class Busy(BaseHTTPRequestHandler):
        def _busy(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            body = b'{"detail": "The database is busy."}'
            self.send_response(503)
            self.send_header("Retry-After", "0")
            self.send_header("Content-Type", "application/problem+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _busy

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Busy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_a_server_that_keeps_answering_503_is_busy(live: Live, tmp_path: Path) -> None:
    device = _device(live, tmp_path)
    waits: list[float] = []
    try:
        _sell(device, live, 1)
        with (
            always_503() as url,
            SyncClient(
                device.factory, url, token=device.token, max_attempts=3, sleep=waits.append
            ) as client,
        ):
            result = client.round()
        assert (result.state, result.complete, result.status) == ("busy", False, 503)
        assert len(waits) == 2  # retried, with a wait before each retry
        assert _status(device).unsent == 1
    finally:
        device.close()


def test_a_client_with_nothing_to_sign_in_with_is_not_linked(live: Live, tmp_path: Path) -> None:
    device = _device(live, tmp_path)
    try:
        with SyncClient(device.factory, live.url) as client:
            result = client.round()
        assert (result.state, result.complete) == ("not_linked", False)
    finally:
        device.close()


# ---------------------------------------------------------------------- the push pipeline


class _PushTap(httpx.BaseTransport):
    """The real network, except for the pushes named in ``change``: the n-th push (from 1)
    is refused before it leaves (``None``) or its reply is replaced by what the function
    makes of it."""

    def __init__(self, change: dict[int, Callable[[httpx.Response], bytes] | None]) -> None:
        self.inner = httpx.HTTPTransport()
        self.change = change
        self.pushes = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/push"):
            self.pushes += 1
            if self.pushes in self.change:
                make = self.change[self.pushes]
                if make is None:
                    raise httpx.ConnectError("connection refused", request=request)
                response = self.inner.handle_request(request)
                response.read()
                return httpx.Response(200, content=make(response), request=request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def _received(live: Live, device: Device) -> int:
    """How many of the device's ops the server holds."""
    with device.factory() as s, s.begin():
        mine = device_id(s)
    with live.factory() as s, s.begin():
        return int(s.scalar(select(func.count()).where(SyncReceivedOp.device_id == mine)) or 0)


def _push_with(device: Device, tap: _PushTap) -> RoundResult:
    with device.client(transport=tap, push_batch=2, max_attempts=1, sleep=_no_wait) as c:
        return c.round()


def test_answers_that_arrived_are_stored_when_the_next_batch_fails(
    live: Live, tmp_path: Path
) -> None:
    """The client stores a batch's answers while the next batch is on the wire: when that
    request fails, the answers are stored all the same, and only the rest is sent later."""
    device = _device(live, tmp_path)
    try:
        _sell(device, live, 5)
        result = _push_with(device, _PushTap({2: None}))
        assert (result.state, result.pushed) == ("offline", 2)
        assert _status(device).unsent == 3
        assert _received(live, device) == 2
        result = device.sync(push_batch=2)
        assert (result.state, result.pushed) == ("ok", 3)
        assert [o.status for o in device.ops()] == [OpStatus.APPLIED] * 5  # none duplicate
        assert converged(live.factory, [device]) == []
    finally:
        device.close()


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (lambda r: b'{"results": [', "damaged answer"),
        (lambda r: b'{"results": "none", "high_water": 2}', "damaged answer"),
        (
            lambda r: json.dumps({**r.json(), "results": r.json()["results"][:1]}).encode(),
            "did not answer every change",
        ),
    ],
    ids=["cut_off", "wrong_shape", "one_answer_missing"],
)
def test_a_reply_that_does_not_answer_the_batch_marks_nothing(
    live: Live, tmp_path: Path, reply: Callable[[httpx.Response], bytes], message: str
) -> None:
    """A push reply that is damaged or leaves an op of the batch unanswered ends the round
    with an error; no op is taken as answered, and the next round sends them again (the
    server answers what it had applied as duplicates). The reply is read while the next
    batch is on the wire, so that batch reached the server too."""
    device = _device(live, tmp_path)
    try:
        _sell(device, live, 3)
        result = _push_with(device, _PushTap({1: reply}))
        assert result.state == "error"
        assert result.error is not None
        assert message in result.error
        assert (result.pushed, _status(device).unsent) == (0, 3)
        assert _received(live, device) == 3
        result = device.sync(push_batch=2)
        assert (result.state, result.pushed) == ("ok", 3)
        assert [o.status for o in device.ops()] == [OpStatus.DUPLICATE] * 3
        assert converged(live.factory, [device]) == []
    finally:
        device.close()


# ---------------------------------------------------------------------- batch sizes


class _SizeTap(httpx.BaseTransport):
    """The real network, noting how many ops each push request carries (attempts that
    failed included). ``fail``: the push attempts (from 1) refused before they leave;
    ``silent``: the answers lose ``max_ops``, as from a server that does not say it."""

    def __init__(self, *, fail: frozenset[int] = frozenset(), silent: bool = False) -> None:
        self.inner = httpx.HTTPTransport()
        self.fail, self.silent = fail, silent
        self.sizes: list[int] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not request.url.path.endswith("/push"):
            return self.inner.handle_request(request)
        self.sizes.append(len(json.loads(request.content)["ops"]))
        if len(self.sizes) in self.fail:
            raise httpx.ConnectError("connection reset", request=request)
        response = self.inner.handle_request(request)
        if not self.silent or response.status_code != 200:
            return response
        response.read()
        body = response.json()
        assert body.pop("max_ops") == p.MAX_PUSH_OPS
        return httpx.Response(200, json=body, request=request)

    def close(self) -> None:
        self.inner.close()


def _push_sizes(live: Live, tmp_path: Path, ops: int, tap: _SizeTap, **kwargs: Any) -> list[int]:
    """Push ``ops`` sales through ``tap``; the batch sizes sent. Every op is applied once."""
    tmp_path.mkdir(exist_ok=True)
    device = _device(live, tmp_path)
    try:
        _sell(device, live, ops)
        with device.client(transport=tap, sleep=_no_wait, max_attempts=3, **kwargs) as c:
            result = c.round()
        assert (result.state, result.pushed) == ("ok", ops)
        assert [o.status for o in device.ops()] == [OpStatus.APPLIED] * ops
        assert _received(live, device) == ops
        assert converged(live.factory, [device]) == []
        return tap.sizes
    finally:
        device.close()


def test_push_batches_grow_while_more_wait(live: Live, tmp_path: Path) -> None:
    """Each full batch answered doubles the batch read next (the one after the batch on the
    wire), up to push_batch_max."""
    sizes = _push_sizes(live, tmp_path, 23, _SizeTap(), push_batch=2, push_batch_max=8)
    assert sizes == [2, 2, 4, 8, 7]


def test_push_batches_stay_put_without_a_maximum_or_a_server_that_says_it(
    live: Live, tmp_path: Path
) -> None:
    assert _push_sizes(live, tmp_path / "a", 7, _SizeTap(), push_batch=2) == [2, 2, 2, 1]
    silent = _SizeTap(silent=True)  # a server that does not say what it takes
    assert _push_sizes(live, tmp_path / "b", 7, silent, push_batch=2, push_batch_max=8) == [
        2,
        2,
        2,
        1,
    ]


def test_a_retried_push_brings_the_batches_back_to_push_batch(live: Live, tmp_path: Path) -> None:
    """The fourth request fails once and is sent again: the batch read beside it was already
    read at 8; the ones after start again from 2 (the retried batch's answer does not
    count as a reason to grow)."""
    tap = _SizeTap(fail=frozenset({4}))
    sizes = _push_sizes(live, tmp_path, 40, tap, push_batch=2, push_batch_max=8)
    assert sizes == [2, 2, 4, 8, 8, 8, 2, 4, 8, 2]


def test_the_push_answer_says_how_many_ops_the_server_takes(live: Live, tmp_path: Path) -> None:
    """Up to MAX_PUSH_OPS in one push (the protocol's limit is the service's); one more is
    refused whole with 422, before anything is applied."""
    assert p.MAX_PUSH_OPS == sync_server.MAX_PUSH_OPS == 2000
    device = _device(live, tmp_path)
    try:
        _sell(device, live, 1)
        with device.factory() as s, s.begin():
            (op,) = sync_device.next_batch(s)
            mine = device_id(s)
        headers = {"Authorization": f"Bearer {live.world.token[ANNA.user]}"}
        with httpx.Client(base_url=live.url, headers=headers) as http:
            body = {"device_id": mine, "ops": [op] * (p.MAX_PUSH_OPS + 1)}
            too_many = http.post(f"{p.SYNC_PREFIX}/push", json=body)
            assert too_many.status_code == 422, too_many.text
            assert _received(live, device) == 0
            one = http.post(f"{p.SYNC_PREFIX}/push", json={**body, "ops": [op]})
            assert one.status_code == 200, one.text
            assert one.json()["max_ops"] == p.MAX_PUSH_OPS
            assert _received(live, device) == 1
    finally:
        device.close()


# ---------------------------------------------------------------------- cancel


def test_cancel_between_push_batches_keeps_the_answers_and_resumes(
    live: Live, tmp_path: Path
) -> None:
    device = _device(live, tmp_path)
    try:
        _sell(device, live, 5)
        cancel = threading.Event()
        # Cancelled once the first batch's answers are stored: the second batch, answered
        # meanwhile (the client stores a batch's answers while the next is on the wire), is
        # stored too; the third is not sent.
        result = device.sync(push_batch=2, cancel=cancel, fault=_cancel_at("after_store", cancel))
        assert (result.state, result.complete, result.pushed) == ("cancelled", False, 4)
        status = _status(device)
        assert status.unsent == 1
        assert status.last_error is None  # a cancel is not a failure
        with device.factory() as s, s.begin():
            mine = device_id(s)
        with live.factory() as s, s.begin():
            received = select(func.count()).where(SyncReceivedOp.device_id == mine)
            assert s.scalar(received) == 4
        result = device.sync(push_batch=2)
        assert (result.state, result.complete, result.pushed) == ("ok", True, 1)
        assert converged(live.factory, [device]) == []
    finally:
        device.close()


def test_cancel_between_pull_pages_keeps_the_page_and_resumes(live: Live, tmp_path: Path) -> None:
    device = _device(live, tmp_path)
    try:
        with device.factory() as s, s.begin():
            start = sync_device.state(s).cursor
        _sell(live, live, 5, ADMIN)  # five changes made on the server
        with live.factory() as s, s.begin():
            head = feed.head(s)
        assert head > start
        cancel = threading.Event()
        client = device.client(page_size=2, cancel=cancel, fault=_cancel_at("after_page", cancel))
        result = client.round()
        assert (result.state, result.complete) == ("cancelled", False)
        assert result.pulled == 2
        with device.factory() as s, s.begin():
            cursor = sync_device.state(s).cursor
        assert start < cursor < head  # the first page is stored, with its cursor
        # The same client cannot go on once cancelled; a new round carries on from there.
        assert client.round().state == "cancelled"
        result = device.sync(page_size=2)
        assert (result.state, result.complete) == ("ok", True)
        assert result.pulled == head - cursor
        assert converged(live.factory, [device]) == []
    finally:
        device.close()


def test_cancel_between_snapshot_pages_resumes_the_download(live: Live, tmp_path: Path) -> None:
    device = new_device(live, tmp_path, "fresh", ADMIN)
    try:
        cancel = threading.Event()
        result = device.sync(
            snapshot_page=50, cancel=cancel, fault=_cancel_at("after_bootstrap_page", cancel)
        )
        assert (result.state, result.complete) == ("cancelled", False)
        with device.factory() as s, s.begin():
            assert sync_device.needs_bootstrap(s)
        result = device.sync(snapshot_page=50)
        assert (result.state, result.complete) == ("ok", True)
        assert converged(live.factory, [device]) == []
    finally:
        device.close()


class _LongWaits(random.Random):
    """Backoff draws that always wait an hour; the first one also starts a timer that
    cancels the round while it waits."""

    def __init__(self, cancel: threading.Event) -> None:
        super().__init__(0)
        self.cancel = cancel
        self.timer: threading.Timer | None = None

    def uniform(self, a: float, b: float) -> float:
        if self.timer is None:
            self.timer = threading.Timer(0.05, self.cancel.set)
            self.timer.start()
        return 3600.0


@pytest.mark.timeout(120)  # a wait the cancel does not end fails here, an hour early
def test_cancel_ends_a_wait_before_a_retry_at_once(live: Live, tmp_path: Path) -> None:
    device = _device(live, tmp_path)
    cancel = threading.Event()
    rng = _LongWaits(cancel)
    try:
        _sell(device, live, 1)
        # Offline, with an hour's wait before the retry: the cancel ends the wait.
        with SyncClient(
            device.factory,
            dead_url(),
            token=device.token,
            max_attempts=2,
            max_backoff=3600.0,
            rng=rng,
            cancel=cancel,
        ) as client:
            result = client.round()
        assert rng.timer is not None  # it did wait
        assert (result.state, result.complete) == ("cancelled", False)
        assert _status(device).unsent == 1
    finally:
        if rng.timer is not None:
            rng.timer.cancel()
        device.close()
