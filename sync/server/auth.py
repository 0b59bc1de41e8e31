"""Who is calling: the bearer token, the caller's role check, and the auth endpoints.

Tokens are opaque random strings; only their SHA-256 is stored (app.services.users), so a
copy of the database gives no usable token. A person signs in with a password and gets a
token for 12 hours; a desktop registers itself once (``POST /auth/devices``) and then signs
in with its device credentials, kept in the operating system's keyring.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app import __version__
from app.clock import utcnow
from app.db import current_revision
from app.errors import AuthenticationFailed, PermissionDenied
from app.models import Role
from app.services import users
from sync import protocol as p
from sync.server.context import Caller, Server
from sync.server.problems import TooManyAttempts, problem_responses

bearer = HTTPBearer(
    auto_error=False,
    description="A token from POST /api/v1/auth/token.",
)


class SignInThrottle:
    """Wrong passwords per user name: after ``limit`` within ``window`` seconds, sign-ins
    for that name are refused until the oldest failure is ``window`` old. Kept per server
    process (with N workers an attacker gets at most N times the limit), which is enough
    to make guessing a password through the API hopeless next to argon2's cost."""

    def __init__(
        self, limit: int = 10, window: float = 900.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and now - times[0] >= self.window:
            times.popleft()
        return times

    def check(self, key: str) -> None:
        now = self.clock()
        with self._lock:
            times = self._recent(key, now)
            if len(times) >= self.limit:
                raise TooManyAttempts(max(1, math.ceil(self.window - (now - times[0]))))

    def failed(self, key: str) -> None:
        now = self.clock()
        with self._lock:
            if len(self._failures) > 100_000:
                self._failures.clear()
            self._recent(key, now).append(now)


def throttle_of(request: Request) -> SignInThrottle:
    throttle = request.app.state.sign_in_throttle
    assert isinstance(throttle, SignInThrottle)
    return throttle


def server_of(request: Request) -> Server:
    server = request.app.state.server
    assert isinstance(server, Server)
    return server


def current_caller(
    server: Annotated[Server, Depends(server_of)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    # HTTPBearer gives None for a missing header, another scheme or an empty token.
    if credentials is None or not credentials.credentials.strip():
        raise AuthenticationFailed(
            "Sign in first: send 'Authorization: Bearer <token>' from /api/v1/auth/token."
        )
    return Caller(server.authenticate(credentials.credentials.strip()))


def allow(*roles: Role) -> Callable[[Caller], Caller]:
    """A dependency: the authenticated caller, refused (403) unless in one of ``roles``."""

    def check(caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
        if caller.principal.role not in roles:
            raise PermissionDenied(
                f"A {caller.principal.role.value} may not do this; it takes the role "
                + " or ".join(r.value for r in roles)
                + "."
            )
        return caller

    return check


router = APIRouter()


def _user_info(principal: users.Principal) -> p.UserInfo:
    return p.UserInfo(
        username=principal.username,
        role=principal.role,
        region=principal.region,
        territory=principal.territory,
        partner_id=principal.partner_id,
    )


@router.post(
    "/auth/token",
    response_model=p.TokenResponse,
    responses=problem_responses(401, 413, 422, 429),
    summary="Sign in: a password or device credentials for a bearer token",
    description="After too many wrong passwords for one user name in a short time, further "
    "attempts for it are refused (429, with Retry-After) until the time is up.",
)
def token(
    request: Request,
    body: Annotated[p.TokenRequest, Body(openapi_examples=p.TOKEN_REQUEST_EXAMPLES)],
    server: Annotated[Server, Depends(server_of)],
) -> p.TokenResponse:
    if isinstance(body, p.PasswordGrant):
        key = body.username.strip().lower()
        throttle = throttle_of(request)
        throttle.check(key)
        try:
            issued = server.password_token(body.username, body.password)
        except AuthenticationFailed:
            throttle.failed(key)
            raise
    else:
        issued = server.write(
            lambda s: users.token_for_device(s, body.device_id, body.device_secret)
        )
    now = utcnow()
    return p.TokenResponse(
        access_token=issued.token,
        expires_at=issued.expires_at,
        expires_in=max(0, int((issued.expires_at - now).total_seconds())),
        user=_user_info(issued.principal),
    )


@router.post(
    "/auth/devices",
    response_model=p.DeviceRegistration,
    status_code=201,
    responses=problem_responses(401, 413, 422),
    summary="Register the calling user's device; its secret is shown once",
)
def register_device(
    body: p.DeviceRegistrationRequest,
    server: Annotated[Server, Depends(server_of)],
    caller: Annotated[Caller, Depends(current_caller)],
) -> p.DeviceRegistration:
    creds = server.write(lambda s: users.register_device(s, caller.principal.username, body.name))
    return p.DeviceRegistration(
        device_id=creds.device_id,
        device_secret=creds.secret,
        name=creds.name,
        username=creds.username,
    )


@router.get(
    "/auth/me",
    response_model=p.UserInfo,
    responses=problem_responses(401),
    summary="Who the token belongs to, with role and scope",
)
def me(caller: Annotated[Caller, Depends(current_caller)]) -> p.UserInfo:
    return _user_info(caller.principal)


@router.get("/health", response_model=p.Health, summary="Is the server up, on which database")
def health(server: Annotated[Server, Depends(server_of)]) -> p.Health:
    return p.Health(
        version=__version__,
        database=server.dialect,
        schema_revision=current_revision(server.engine),
        time=datetime.now(UTC),
    )
