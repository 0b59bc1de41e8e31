"""What every request needs: the database, the caller, retried writes and idempotency.

Writes run in :func:`Server.write`: one transaction per request, retried (up to
``WRITE_ATTEMPTS`` times) when PostgreSQL reports a serialization failure, a deadlock or a
unique violation caused by a concurrent request that got there first. On the retry the
service sees the other request's committed rows, so a repeated sale or refill comes back as
a duplicate instead of a second fact or a 500. On SQLite writers are serialised by
``BEGIN IMMEDIATE`` and these races cannot happen.

Idempotency (``Idempotency-Key`` header, as in the IETF httpapi draft): the key is stored
per caller with a hash of the request in the same transaction as the work, inserted
*before* the work, so a concurrent request with the same key waits on the key's row and is
then answered from the stored response. The same key with another request is a 409. A
request that fails stores nothing; repeating it runs it again.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from app import db as appdb
from app.clock import utcnow
from app.errors import Conflict, ValidationError
from app.models import IdempotencyRecord
from app.services import feed, users
from app.services.scope import AccessScope

T = TypeVar("T")

WRITE_ATTEMPTS = 6
#: PostgreSQL SQLSTATEs that mean "a concurrent transaction won; run again".
RETRY_SQLSTATES = frozenset({"40001", "40P01", "23505"})
IDEMPOTENCY_KEY_MAX = 200


@dataclass(frozen=True)
class Caller:
    principal: users.Principal

    @property
    def access(self) -> AccessScope:
        p = self.principal
        return AccessScope(p.role, region=p.region, territory=p.territory, partner_id=p.partner_id)


def _retryable(exc: DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlstate", None)
    return code in RETRY_SQLSTATES


class Server:
    """The database of one server process: a write and a read session factory."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        # Writes go to the feed: their ops are numbered at commit (app.services.feed).
        self.writer = feed.feed_sessionmaker(engine)
        self.reader = appdb.read_sessionmaker(self.writer)
        # SQLite has one writer at a time. Its busy handler makes waiting writers poll with
        # growing sleeps, so under load a few wait seconds while others pass; queueing the
        # writers of this process on a lock instead keeps their waits even. PostgreSQL
        # locks rows, not the database: no queue there.
        self._write_turn: AbstractContextManager[object] = (
            threading.Lock() if self.dialect == "sqlite" else nullcontext()
        )
        # token id -> when this process last wrote its last_used_at (monotonic seconds)
        self._touched: dict[str, float] = {}

    def read(self, fn: Callable[[Session], T]) -> T:
        with self.reader() as session, session.begin():
            return fn(session)

    def write(self, fn: Callable[[Session], T]) -> T:
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                with self._write_turn, self.writer() as session, session.begin():
                    return fn(session)
            except (IntegrityError, OperationalError) as exc:
                if attempt == WRITE_ATTEMPTS or not _retryable(exc):
                    raise
                # Back off a little, with jitter, so the racers do not collide again.
                time.sleep(random.uniform(0, 0.01 * attempt))
        raise AssertionError("unreachable")

    def authenticate(self, token: str) -> users.Principal:
        """The token's holder, checked in a read transaction. When the token was last
        recorded as used more than ``users.LAST_USED_RESOLUTION`` ago (by this process), a
        short write brings ``last_used_at`` up to date."""
        principal = self.read(lambda s: users.authenticate(s, token, touch=False))
        token_id = principal.token_id
        if token_id is not None:
            now = time.monotonic()
            last = self._touched.get(token_id)
            if last is None or now - last >= users.LAST_USED_RESOLUTION.total_seconds():
                self._touched[token_id] = now
                if len(self._touched) > 10_000:
                    self._touched.clear()
                self.write(lambda s: users.touch_token(s, token_id))
        return principal

    def password_token(self, username: str, password: str) -> users.IssuedToken:
        """Sign in. The slow password hash runs in a read transaction, so sign-ins do not
        hold SQLite's write lock while hashing."""
        user_id = self.read(lambda s: users.verify_password(s, username, password))
        return self.write(lambda s: users.issue_password_token(s, user_id, password))


def claim(session: Session, *keys: str | None) -> None:
    """Serialise concurrent requests naming the same client ids (PostgreSQL: a transaction
    advisory lock per id; SQLite's write lock already serialises writers). The second
    request then sees the first one's rows and is answered as a repeat."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for key in sorted(k for k in keys if k):
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key}
        )


# --------------------------------------------------------------------------- idempotency


def request_hash(method: str, path: str, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


def idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    key = key.strip().strip('"')
    if not key or len(key) > IDEMPOTENCY_KEY_MAX or not key.isprintable():
        raise ValidationError(
            f"The Idempotency-Key header must be 1 to {IDEMPOTENCY_KEY_MAX} printable characters.",
            field="Idempotency-Key",
        )
    return key


@dataclass(frozen=True)
class Outcome:
    """A write's answer: its status code and JSON body."""

    status: int
    body: dict[str, Any]

    def response(self, replayed: bool = False) -> JSONResponse:
        headers = {"Idempotent-Replayed": "true"} if replayed else None
        return JSONResponse(self.body, status_code=self.status, headers=headers)


def idempotent_write(
    server: Server,
    request: Request,
    caller: Caller,
    body: Any,
    work: Callable[[Session], Outcome],
) -> JSONResponse:
    """Run ``work`` in one transaction, once per ``Idempotency-Key`` (when one is sent)."""
    key = idempotency_key(request)
    if key is None:
        return server.write(work).response()
    user_id = caller.principal.user_id
    digest = request_hash(request.method, request.url.path, body)

    def run(session: Session) -> tuple[Outcome, bool]:
        stored = session.scalars(
            select(IdempotencyRecord)
            .where(IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key)
            .with_for_update()
        ).first()
        if stored is not None:
            if stored.request_hash != digest:
                raise Conflict(
                    "This Idempotency-Key was already used for another request; use a new "
                    "key for a new request."
                )
            return Outcome(stored.status_code, json.loads(stored.response_body)), True
        record = IdempotencyRecord(
            user_id=user_id,
            key=key,
            method=request.method,
            path=request.url.path[:300],
            request_hash=digest,
            status_code=0,
            response_body="",
            created_at=utcnow(),
        )
        session.add(record)
        # Claim the key now: a concurrent request with it waits here until this commits.
        session.flush()
        outcome = work(session)
        record.status_code = outcome.status
        record.response_body = json.dumps(outcome.body, separators=(",", ":"))
        return outcome, False

    outcome, replayed = server.write(run)
    return outcome.response(replayed)
