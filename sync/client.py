"""The device's sync client: push the outbox, then pull the feed, over HTTP (httpx).

One :meth:`SyncClient.round`:

1. **Push** the pending ops in batches (consecutive sequence numbers; ``push_batch``, 500,
   at first; with ``push_batch_max`` set, as the app does, each full batch answered doubles
   the next up to what the server takes, and a request that had to be retried brings it
   back to ``push_batch``). Each batch's
   answers are stored in one local transaction: an op stops being pending only with the
   server's answer; with no answer (a timeout, a 5xx, the process killed) it stays pending
   and is sent again with the same op id, which the server answers as a duplicate. While
   a batch is on the wire, a worker thread stores the answers to the one before and reads
   the next (see :meth:`SyncClient.push`).
2. **Pull** pages after the cursor; each page and its cursor are applied in one local
   transaction. A page is not applied while the device has unanswered ops (the user wrote
   during the round): the client pushes first, then pulls again.

Network errors, timeouts, 408, 429 and 5xx are retried with exponential backoff and full
jitter (honouring ``Retry-After``); other refusals stop the round with the server's message.
The bearer token comes from the device's credentials (``sync/credentials.py``: the OS
keyring, or a file only the user can read) and is kept in memory only.

A round ends in one :data:`State` (``RoundResult.state``) that a screen can show as it is:
``ok``; ``offline`` (no connection, or timeouts, through every retry); ``busy`` (the server
kept answering "later": 5xx, 408, 429); ``refused`` (it answered no: 401 for a revoked or
unknown sign-in, 403, 409 for a device whose identity clashes, ...; ``status`` and
``code`` say which); ``not_linked`` (no sign-in to use); ``cancelled``; ``error`` (anything
else, e.g. a damaged answer).

**Cancel** (``SyncClient(cancel=threading.Event())`` set from any thread, or
:meth:`SyncClient.cancel`): checked before every request, between push batches, pull pages,
snapshot pages and refreshes, and while waiting to retry (the wait ends at once). A
cancelled round stops after its last committed step, never inside a local transaction, and
the next round carries on from there.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import httpx

from app.db import SessionFactory
from app.services import apply, sync_device
from app.services.base import device_id
from sync import protocol as p
from sync.credentials import DeviceCredentials

RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
#: How large the app's push batches grow on a long outbox (``push_batch_max``): as large as
#: the protocol allows; a server that takes fewer says so in its answers.
GROW_TO = p.MAX_PUSH_OPS
#: Push-then-pull passes in one round before it gives up on a device written to all along.
MAX_PASSES = 20


class SyncError(Exception):
    """A round stopped; the message is for the person at the screen."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


class Offline(SyncError):
    """The server could not be reached (after the retries)."""


class Busy(Offline):
    """The server kept answering "retry later" (5xx, 408, 429) through every retry."""


class NotLinked(SyncError):
    """The client has neither device credentials nor a token to sign in with."""


class Cancelled(SyncError):
    """The round was cancelled; every step before it is stored."""


State = Literal["ok", "offline", "busy", "refused", "not_linked", "cancelled", "error"]


def state_of(exc: SyncError) -> State:
    """How a round that stopped on ``exc`` ended (see the module docstring)."""
    if isinstance(exc, Cancelled):
        return "cancelled"
    if isinstance(exc, NotLinked):
        return "not_linked"
    if isinstance(exc, Busy):
        return "busy"
    if isinstance(exc, Offline):
        return "offline"
    if exc.status is not None and 400 <= exc.status < 500:
        return "refused"
    return "error"


@dataclass
class RoundResult:
    pushed: int = 0
    rejected: int = 0
    pulled: int = 0
    refreshed: int = 0
    bootstrapped: int = 0
    complete: bool = False
    error: str | None = None
    #: How the round ended; ``round()`` always sets it (see the module docstring).
    state: State = "ok"
    #: For ``refused`` (and ``busy``): the server's HTTP status and problem code.
    status: int | None = None
    code: str | None = None


Fault = Callable[[str], None]


def _no_fault(point: str) -> None:
    return None


class SyncClient:
    def __init__(
        self,
        factory: SessionFactory,
        server_url: str,
        *,
        credentials: DeviceCredentials | None = None,
        token: str | None = None,
        transport: httpx.BaseTransport | None = None,
        push_batch: int = 500,
        push_batch_max: int | None = None,
        page_size: int = 1000,
        snapshot_page: int = 5000,
        max_attempts: int = 6,
        max_backoff: float = 300.0,
        sleep: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
        fault: Fault = _no_fault,
        on_progress: Callable[[str, int, int], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        """``sleep`` waits between retries (default: a wait that a cancel ends at once);
        ``cancel``, once set, ends the round at its next step (see the module docstring).
        ``push_batch`` ops go in a batch; with ``push_batch_max``, batches grow up to it
        (and to what the server says it takes) while the outbox holds more."""
        self.factory = factory
        self.server_url = server_url.rstrip("/")
        self.credentials = credentials
        self._token = token
        self.push_batch = push_batch
        self.push_batch_max = max(push_batch, push_batch_max or push_batch)
        #: The size of the next batch read (see :meth:`_answers`).
        self.batch_size = push_batch
        self._retried = 0  # requests sent again (network error or "later"), for the batch size
        self.page_size = page_size
        self.snapshot_page = snapshot_page
        self.max_attempts = max_attempts
        self.max_backoff = max_backoff
        self._cancel = cancel if cancel is not None else threading.Event()
        self.sleep = sleep if sleep is not None else self._wait
        self.rng = rng or random.Random()
        self.fault = fault
        self.on_progress = on_progress
        self.http = httpx.Client(
            base_url=self.server_url,
            transport=transport,
            timeout=httpx.Timeout(60.0, connect=10.0),
        )
        with factory() as s, s.begin():
            self.device_id = device_id(s)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ cancel

    def cancel(self) -> None:
        """End the round under way at its next step (from any thread)."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def _wait(self, seconds: float) -> None:
        self._cancel.wait(seconds)

    def _check_cancel(self) -> None:
        """Raise :class:`Cancelled` once cancelled. Called only between local transactions."""
        if self._cancel.is_set():
            raise Cancelled("Sync was cancelled; what was sent and received so far is kept.")

    # ------------------------------------------------------------------ HTTP

    def _sign_in(self) -> str:
        if self.credentials is None:
            raise NotLinked("This device is not linked to a server; sign in first.")
        body = {
            "grant_type": "device",
            "device_id": self.credentials.device_id,
            "device_secret": self.credentials.device_secret,
        }
        response = self._send("POST", f"{p.API_PREFIX}/auth/token", json=body, auth=False)
        token = str(response.json()["access_token"])
        self._token = token
        return token

    def _send(
        self,
        method: str,
        path: str,
        *,
        auth: bool = True,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One request, retried on network errors and 'retry later' answers."""
        signed_in_again = False
        attempt = 0
        while True:
            self._check_cancel()
            sent = dict(headers or {})
            if auth:
                sent["Authorization"] = f"Bearer {self._token or self._sign_in()}"
            try:
                response = self.http.request(method, path, headers=sent, **kwargs)
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                attempt += 1
                self._retried += 1
                if attempt >= self.max_attempts:
                    raise Offline(f"The server cannot be reached ({type(exc).__name__}).") from exc
                self._back_off(attempt, None)
                continue
            if response.status_code == 401 and auth and not signed_in_again and self.credentials:
                self._token = None
                signed_in_again = True
                continue
            if response.status_code in RETRY_STATUSES:
                attempt += 1
                self._retried += 1
                if attempt >= self.max_attempts:
                    raise Busy(
                        f"The server is busy or failing (HTTP {response.status_code}); "
                        "your changes are kept and will be sent later.",
                        status=response.status_code,
                    )
                self._back_off(attempt, response.headers.get("Retry-After"))
                continue
            if response.status_code >= 400:
                raise _refusal(response)
            return response

    def _back_off(self, attempt: int, retry_after: str | None) -> None:
        delay = self.rng.uniform(0, min(self.max_backoff, 2.0 ** (attempt - 1)))
        if retry_after:
            with contextlib.suppress(ValueError):
                delay = max(delay, min(self.max_backoff, float(retry_after)))
        self._check_cancel()
        self.sleep(delay)
        self._check_cancel()

    # ------------------------------------------------------------------ push

    def push(self, tally: RoundResult | None = None) -> tuple[int, int]:
        """Push until nothing is pending. Returns (ops answered, rejected); ``tally`` counts
        them as they are stored (so a cancelled round still says what it did).

        While a batch is on the wire, a worker thread does the device's part beside it, in
        one local transaction: it counts the batch's attempt, stores the answers to the
        batch before, and reads and encodes the batch after. Each batch is still sent only
        once the one before it is answered (the server refuses a gap), and an op still stops
        being pending only with its answer: a kill at any point leaves answered ops stored
        or sent again, never lost. Answers that arrived are stored before the push ends,
        however it ends."""
        totals = [0, 0]  # answered, rejected

        def stored(counts: tuple[int, int] | None) -> None:
            if counts is None:
                return
            totals[0] += counts[0]
            totals[1] += counts[1]
            if tally is not None:
                tally.pushed += counts[0]
                tally.rejected += counts[1]
            self.fault("after_store")
            if self.on_progress:
                self.on_progress("push", totals[0], 0)

        batch: _Outgoing | None = None
        reply: _Reply | None = None  # the answers to the batch before, not stored yet
        resend_from: int | None = None
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sync-push") as worker:
            while True:
                if batch is None:  # nothing read ahead: read the outbox here
                    if reply is not None:
                        stored(self._push_step(None, reply, None)[0])
                        reply = None
                    self._check_cancel()
                    batch = self._push_read(resend_from)
                    if batch is None:
                        return totals[0], totals[1]
                self.fault("before_push")
                # After a resent batch, older ops may still be pending: read after its answers.
                after = batch.last_seq if resend_from is None else None
                step = worker.submit(self._push_step, batch, reply, after)
                reply = None
                retried = self._retried
                try:
                    response = self._send(
                        "POST",
                        f"{p.SYNC_PREFIX}/push",
                        content=batch.body,
                        headers={"Content-Type": "application/json"},
                    )
                except BaseException as exc:
                    stored(step.result()[0])  # the answers before are kept
                    if isinstance(exc, _Gap) and resend_from is None:
                        resend_from, batch = exc.expected_seq, None
                        continue
                    raise
                resend_from = None
                self.fault("after_push_reply")
                counts, ahead = step.result()
                stored(counts)
                again = self._retried != retried
                if again:  # a poor connection: smaller batches again
                    self.batch_size = self.push_batch
                reply, batch = _Reply(batch, response.content, again), ahead

    def _push_read(self, from_seq: int | None) -> _Outgoing | None:
        with self.factory() as s, s.begin():
            ops = sync_device.next_batch(s, from_seq=from_seq, limit=self.batch_size)
        return self._outgoing(ops)

    def _push_step(
        self, sending: _Outgoing | None, reply: _Reply | None, after_seq: int | None
    ) -> tuple[tuple[int, int] | None, _Outgoing | None]:
        """One local transaction: count an attempt of the batch being sent, store the
        answers in ``reply``, read the batch after ``after_seq``. Returns (answers stored,
        rejected among them) and the batch read."""
        answers = self._answers(reply) if reply is not None else None
        ops: list[dict[str, Any]] = []
        counts: tuple[int, int] | None = None
        with self.factory() as s, s.begin():
            if sending is not None:
                sync_device.mark_attempt(s, sending.op_ids)
            if answers is not None:
                counts = (len(answers), sync_device.store_answers(s, answers))
            if after_seq is not None:
                ops = sync_device.next_batch(s, after_seq=after_seq, limit=self.batch_size)
        return counts, self._outgoing(ops)

    def _outgoing(self, ops: list[dict[str, Any]]) -> _Outgoing | None:
        if not ops:
            return None
        # As httpx encodes json=..., made here so the worker thread does it.
        body = json.dumps(
            {"device_id": self.device_id, "ops": ops},
            ensure_ascii=False,
            separators=(",", ":"),
            allow_nan=False,
        ).encode()
        return _Outgoing([o["op_id"] for o in ops], ops[-1]["device_seq"], body)

    def _answers(self, reply: _Reply) -> list[sync_device.Answer]:
        try:
            body = p.PushResponse.model_validate_json(reply.content)
        except ValueError as exc:
            raise SyncError("The server sent a damaged answer to a push; try again later.") from exc
        if sorted(r.op_id for r in body.results) != sorted(reply.sent.op_ids):
            # The next batch was read on the premise that this one is answered whole.
            raise SyncError("The server did not answer every change sent; try again later.")
        if len(reply.sent.op_ids) >= self.push_batch and not reply.retried:
            # A full batch answered: more may wait. The next one read (the one after the
            # batch on the wire) is twice as large, up to what both sides take; a server
            # that does not say what it takes gets push_batch.
            most = min(self.push_batch_max, body.max_ops or self.push_batch)
            self.batch_size = max(self.push_batch, min(most, self.batch_size * 2))
        return [
            sync_device.Answer(
                r.op_id, r.status, r.outcome, r.server_seq, r.reason, r.amended, r.payload
            )
            for r in body.results
        ]

    # ------------------------------------------------------------------ pull

    def pull(self, tally: RoundResult | None = None) -> int:
        """Pull and apply pages until the feed's head. Returns how many ops were applied.
        Raises :class:`PushFirst` when the device wrote while pulling."""
        applied = 0
        while True:
            self._check_cancel()
            with self.factory() as s, s.begin():
                cursor = sync_device.state(s).cursor
            self.fault("before_pull")
            response = self._send(
                "GET", f"{p.SYNC_PREFIX}/pull", params={"since": cursor, "limit": self.page_size}
            )
            page = p.PullResponse.model_validate(response.json())
            self.fault("after_pull_reply")
            ops = [
                sync_device.PulledOp(
                    o.seq,
                    apply.Op(
                        op_id=o.op_id,
                        op_type=o.op_type,
                        entity_id=o.entity_id,
                        payload=o.payload,
                        actor=o.actor,
                        actor_role=o.actor_role,
                        created_at=o.created_at,
                    ),
                    o.origin_device_id,
                    o.amended,
                )
                for o in page.ops
            ]
            with self.factory() as s, s.begin():
                if not sync_device.apply_page(s, ops, page.cursor):
                    raise PushFirst()
            applied += len(ops)
            if tally is not None:
                tally.pulled += len(ops)
            self.fault("after_page")
            if self.on_progress:
                self.on_progress("pull", page.cursor, page.head)
            if not page.more:
                return applied

    # ------------------------------------------------------------------ snapshots

    def _stream(self, params: dict[str, Any]) -> Generator[dict[str, Any], None, None]:
        """The messages of one snapshot request (NDJSON), opened with the usual retries.
        A connection lost in the middle raises ``httpx.TransportError`` to the caller,
        which resumes from what it has stored."""
        path = f"{p.SYNC_PREFIX}/bootstrap"
        attempt = 0
        signed_in_again = False
        while True:
            self._check_cancel()
            headers = {"Authorization": f"Bearer {self._token or self._sign_in()}"}
            request = self.http.build_request("GET", path, params=params, headers=headers)
            try:
                response = self.http.send(request, stream=True)
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                attempt += 1
                if attempt >= self.max_attempts:
                    raise Offline(f"The server cannot be reached ({type(exc).__name__}).") from exc
                self._back_off(attempt, None)
                continue
            if response.status_code == 401 and not signed_in_again and self.credentials:
                response.close()
                self._token, signed_in_again = None, True
                continue
            if response.status_code in RETRY_STATUSES:
                response.close()
                attempt += 1
                if attempt >= self.max_attempts:
                    raise Busy(
                        f"The server is busy or failing (HTTP {response.status_code}).",
                        status=response.status_code,
                    )
                self._back_off(attempt, response.headers.get("Retry-After"))
                continue
            if response.status_code >= 400:
                response.read()
                raise _refusal(response)
            break
        try:
            for line in response.iter_lines():
                if line:
                    message = json.loads(line)
                    if not isinstance(message, dict):
                        raise SyncError("The server sent a damaged snapshot; try again later.")
                    yield message
        finally:
            response.close()

    def bootstrap(self, tally: RoundResult | None = None) -> int:
        """Download everything this device may see (a new device), page by page, each page
        with its place in one local transaction, so an interrupted download resumes where
        it stopped. Returns how many rows were written."""
        written = 0
        drops = 0
        while True:
            with self.factory() as s, s.begin():
                progress = sync_device.bootstrap_progress(s)
            params: dict[str, Any] = {"scope": "all", "limit": self.snapshot_page}
            if progress.get("after_partner"):
                params["after_partner"] = progress["after_partner"]
            done = False
            try:
                with contextlib.closing(self._stream(params)) as stream:
                    for message in stream:
                        if "snapshot_seq" in message:
                            with self.factory() as s, s.begin():
                                sync_device.note_snapshot(s, int(message["snapshot_seq"]))
                        elif message.get("done"):
                            done = True
                        elif "partner_done" in message:
                            with self.factory() as s, s.begin():
                                sync_device.bootstrap_partner_done(s, str(message["partner_done"]))
                            self.fault("after_partner_done")
                        else:
                            with self.factory() as s, s.begin():
                                rows = sync_device.apply_bootstrap_page(
                                    s, str(message["table"]), message["rows"]
                                )
                            written += rows
                            if tally is not None:
                                tally.bootstrapped += rows
                            self.fault("after_bootstrap_page")
                            if self.on_progress:
                                self.on_progress("bootstrap", written, 0)
                        if not done:
                            self._check_cancel()  # between pages: each one is stored
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                drops += 1
                if drops >= self.max_attempts:
                    raise Offline(
                        f"The download keeps breaking off ({type(exc).__name__}); "
                        "it resumes where it stopped next time."
                    ) from exc
                self._back_off(drops, None)
                continue
            if not done:
                drops += 1
                if drops >= self.max_attempts:
                    raise Offline("The download keeps breaking off; it resumes next time.")
                continue
            with self.factory() as s, s.begin():
                sync_device.finish_bootstrap(s)
            return written

    def refresh(self, tally: RoundResult | None = None) -> int:
        """Re-read the stands, partners, products and candidates that rejected or amended
        changes touched, replacing the device's provisional rows by the server's. Raises
        :class:`PushFirst` when the device wrote meanwhile. Returns how many were done."""
        with self.factory() as s, s.begin():
            targets = sync_device.pending_refreshes(s)
        for target in targets:
            self._check_cancel()
            pages: list[tuple[str, list[dict[str, Any]]]] = []
            complete = False
            try:
                for message in self._stream({"scope": target, "limit": self.snapshot_page}):
                    if message.get("done"):
                        complete = True
                    elif "table" in message:
                        pages.append((str(message["table"]), list(message["rows"])))
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                raise Offline(
                    f"The server's answer broke off ({type(exc).__name__}); trying again later."
                ) from exc
            if not complete:
                raise Offline("The server's answer broke off; trying again later.")
            with self.factory() as s, s.begin():
                if sync_device.apply_refresh(s, target, pages) is None:
                    raise PushFirst()
            if tally is not None:
                tally.refreshed += 1
            self.fault("after_refresh")
        return len(targets)

    # ------------------------------------------------------------------ round

    def round(self, *, push: bool = True, pull: bool = True) -> RoundResult:
        """Push, then pull; push again whenever the user wrote in between. Never raises a
        :class:`SyncError`: how the round ended is in ``state`` (and ``error``)."""
        result = RoundResult()
        try:
            self._check_cancel()
            if pull:
                with self.factory() as s, s.begin():
                    fresh = sync_device.needs_bootstrap(s)
                if fresh:
                    self.bootstrap(result)
            for _ in range(MAX_PASSES):
                if push:
                    self.push(result)
                if not pull:
                    break
                try:
                    self.refresh(result)
                    self.pull(result)
                    break
                except PushFirst:
                    continue
            else:
                raise SyncError(
                    "Changes kept being made on this device while it received the others'; "
                    "the rest is received in the next round."
                )
            with self.factory() as s, s.begin():
                sync_device.record_success(s, self.server_url)
            result.complete = True
        except SyncError as exc:
            result.error = str(exc)
            result.state = state_of(exc)
            result.status, result.code = exc.status, exc.code
            if result.state != "cancelled":  # a cancel is not a failure to show
                with self.factory() as s, s.begin():
                    sync_device.record_failure(s, str(exc), None)
        return result


@dataclass(frozen=True)
class _Outgoing:
    """A push batch as it goes out: its ops' ids, its last sequence number, the body."""

    op_ids: list[str]
    last_seq: int
    body: bytes


@dataclass(frozen=True)
class _Reply:
    """The server's answers to a batch, as received (parsed and stored by the worker)."""

    sent: _Outgoing
    content: bytes
    retried: bool = False  # the request had to be sent again (the batches then stay small)


class PushFirst(Exception):
    """A pulled page was not applied: the device has unanswered ops; push them first."""


class _Gap(SyncError):
    def __init__(self, message: str, expected_seq: int) -> None:
        super().__init__(message, status=409, code="sequence_gap")
        self.expected_seq = expected_seq


def _refusal(response: httpx.Response) -> SyncError:
    try:
        problem = response.json()
    except ValueError:
        problem = {}
    detail = problem.get("detail") if isinstance(problem, dict) else None
    code = problem.get("code") if isinstance(problem, dict) else None
    message = str(detail or f"The server refused the request (HTTP {response.status_code}).")
    if code == "sequence_gap" and isinstance(problem.get("expected_seq"), int):
        return _Gap(message, problem["expected_seq"])
    return SyncError(message, status=response.status_code, code=code)


def age(since: datetime | None, now: datetime) -> str:
    """'3 h', '2 d' ...: how old the oldest unsent change is, for the status bar."""
    if since is None:
        return ""
    seconds = max(0, int((now - since).total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def link_device(
    server_url: str,
    username: str,
    password: str,
    device_name: str,
    *,
    transport: httpx.BaseTransport | None = None,
) -> DeviceCredentials:
    """Sign in with a password once and register this device: its own id and secret, which
    the caller stores (``CredentialStore.save``); the password is not kept."""
    base = server_url.rstrip("/")
    with httpx.Client(base_url=base, transport=transport, timeout=httpx.Timeout(30.0)) as http:
        try:
            response = http.post(
                f"{p.API_PREFIX}/auth/token",
                json={"grant_type": "password", "username": username, "password": password},
            )
            if response.status_code >= 400:
                raise _refusal(response)
            token = response.json()["access_token"]
            response = http.post(
                f"{p.API_PREFIX}/auth/devices",
                json={"name": device_name},
                headers={"Authorization": f"Bearer {token}"},
            )
            if response.status_code >= 400:
                raise _refusal(response)
        except httpx.TransportError as exc:
            raise Offline(
                f"The server at {base} cannot be reached ({type(exc).__name__})."
            ) from exc
    reg = p.DeviceRegistration.model_validate(response.json())
    return DeviceCredentials(base, reg.username, reg.device_id, reg.device_secret)
