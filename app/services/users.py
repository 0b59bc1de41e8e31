"""Who may call the server: users, roles and scopes, passwords, devices and bearer tokens.

A user has one role and the scope that goes with it:

- ``admin``: everything;
- ``manager``: the stands of partners whose ``StandPartner.region`` is the user's region;
- ``rep``: the stands whose ``StandLocation.assigned_rep`` is the user's territory (by
  default the user name);
- ``partner``: the stands of one existing partner.

Signing in gives an opaque bearer token (``spt_`` and 43 random characters): with a user name
and password for 12 hours (:func:`token_for_password`), or with a device's id and secret for
30 days (:func:`token_for_device`). The database keeps only the SHA-256 digest of a token or
a device secret, so a copy of the database signs no one in; passwords are argon2 hashes.

A refused sign-in never says whether the user exists: an unknown user and a wrong password
get the same message, and an unknown user costs the same argon2 verification. A refused
token never says whose it was.

These are administrative actions on the server, not facts of the program: they write no
change-log op.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session

from app.clock import ensure_utc, utcnow
from app.errors import AuthenticationFailed, NotFound, ValidationError
from app.ids import is_valid_id
from app.models import ApiDevice, ApiToken, ApiUser, Role, StandPartner
from app.services.base import Actor, get_or_404, optional_text, require_text, transactional

#: How long a token from a password sign-in lives.
PASSWORD_TOKEN_TTL = timedelta(hours=12)
#: How long a token from a device sign-in lives.
DEVICE_TOKEN_TTL = timedelta(days=30)
#: ``last_used_at`` of a token or device is written at most this often.
LAST_USED_RESOLUTION = timedelta(minutes=5)

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024

TOKEN_PREFIX = "spt_"
DEVICE_SECRET_PREFIX = "spd_"
TOKEN_TYPE = "bearer"
KIND_PASSWORD = "password"
KIND_DEVICE = "device"

WRONG_LOGIN = "Wrong user name or password."
INVALID_TOKEN = "The token is not valid or has expired."
INVALID_DEVICE = "The device credentials are not valid or have been revoked."

_USERNAME_RE = re.compile(r"[a-z0-9._-]{3,60}")
# Longer than any token or secret we issue; anything longer is refused unread.
_MAX_SECRET_LENGTH = 200

_hasher = PasswordHasher()


# =========================================================================== results


@dataclass(frozen=True)
class Principal:
    """Who is calling the server, with the scope of their role."""

    user_id: str
    username: str
    role: Role
    region: str | None
    territory: str | None
    partner_id: str | None
    device_id: str | None = None
    token_id: str | None = None

    @property
    def actor(self) -> Actor:
        return Actor(self.username, self.role)


@dataclass(frozen=True)
class UserRow:
    id: str
    username: str
    display_name: str
    role: Role
    region: str | None
    territory: str | None
    partner_id: str | None
    active: bool
    created_at: datetime
    disabled_at: datetime | None
    #: Devices not revoked.
    devices: int
    #: Tokens neither revoked nor expired.
    open_tokens: int


@dataclass(frozen=True)
class IssuedToken:
    token: str
    token_type: str
    expires_at: datetime
    principal: Principal


@dataclass(frozen=True)
class DeviceCredentials:
    """A device's id and secret; the secret is shown once and stored only as a digest."""

    device_id: str
    secret: str
    name: str
    username: str


# =========================================================================== helpers


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against when the user is unknown, so that costs the same time."""
    return _hasher.hash(secrets.token_urlsafe(16))


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _now(now: datetime | None) -> datetime:
    return utcnow() if now is None else ensure_utc(now)


def _ttl(ttl: timedelta | None, default: timedelta) -> timedelta:
    if ttl is None:
        return default
    if ttl <= timedelta(0):
        raise ValidationError("A token's lifetime must be positive.", field="ttl")
    return ttl


def _normal_username(username: str) -> str:
    return (username or "").strip().lower()


def _valid_username(username: str) -> str:
    name = _normal_username(username)
    if not _USERNAME_RE.fullmatch(name):
        raise ValidationError(
            "A user name is 3 to 60 characters: letters a–z, digits, dots, dashes or underscores.",
            field="username",
        )
    return name


def _valid_password(password: str, username: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(
            f"A password needs at least {MIN_PASSWORD_LENGTH} characters.", field="password"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationError(
            f"A password may have at most {MAX_PASSWORD_LENGTH} characters.", field="password"
        )
    if not password.strip():
        raise ValidationError("A password cannot be only spaces.", field="password")
    if password.strip().lower() == username:
        raise ValidationError("The password must not be the user name.", field="password")
    return password


def _role(value: Role | str) -> Role:
    if isinstance(value, Role):
        return value
    try:
        return Role(str(value).strip().lower())
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise ValidationError(
            f"{value!r} is not a role; use one of: {roles}.", field="role"
        ) from None


def _user_by_name(session: Session, username: str) -> ApiUser | None:
    return session.scalars(
        select(ApiUser).where(ApiUser.username == _normal_username(username))
    ).one_or_none()


def _user_or_404(session: Session, username: str) -> ApiUser:
    user = _user_by_name(session, username)
    if user is None:
        raise NotFound(f"No user named {_normal_username(username)!r}.", field="username")
    return user


def _principal(user: ApiUser, token: ApiToken | None = None) -> Principal:
    return Principal(
        user_id=user.id,
        username=user.username,
        role=user.role,
        region=user.region,
        territory=user.territory,
        partner_id=user.partner_id,
        device_id=token.device_id if token else None,
        token_id=token.id if token else None,
    )


def _rows(session: Session, users: list[ApiUser], now: datetime) -> list[UserRow]:
    ids = [u.id for u in users]
    if not ids:
        return []
    devices: dict[str, int] = dict(
        session.execute(
            select(ApiDevice.user_id, func.count())
            .where(ApiDevice.user_id.in_(ids), ApiDevice.revoked_at.is_(None))
            .group_by(ApiDevice.user_id)
        ).all()
    )
    tokens: dict[str, int] = dict(
        session.execute(
            select(ApiToken.user_id, func.count())
            .where(
                ApiToken.user_id.in_(ids),
                ApiToken.revoked_at.is_(None),
                ApiToken.expires_at > now,
            )
            .group_by(ApiToken.user_id)
        ).all()
    )
    return [
        UserRow(
            id=u.id,
            username=u.username,
            display_name=u.display_name,
            role=u.role,
            region=u.region,
            territory=u.territory,
            partner_id=u.partner_id,
            active=u.active,
            created_at=u.created_at,
            disabled_at=u.disabled_at,
            devices=devices.get(u.id, 0),
            open_tokens=tokens.get(u.id, 0),
        )
        for u in users
    ]


def _row(session: Session, user: ApiUser, now: datetime) -> UserRow:
    session.flush()
    return _rows(session, [user], now)[0]


def _issue(
    session: Session,
    user: ApiUser,
    *,
    kind: str,
    ttl: timedelta,
    now: datetime,
    device_id: str | None = None,
) -> IssuedToken:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=user.id,
        device_id=device_id,
        token_hash=_digest(token),
        kind=kind,
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(row)
    session.flush()
    return IssuedToken(token, TOKEN_TYPE, row.expires_at, _principal(user, row))


def _revoke_tokens(session: Session, now: datetime, *conditions: ColumnElement[bool]) -> None:
    session.execute(
        update(ApiToken).where(ApiToken.revoked_at.is_(None), *conditions).values(revoked_at=now)
    )


def _stale(last_used: datetime | None, now: datetime) -> bool:
    return last_used is None or now - last_used >= LAST_USED_RESOLUTION


# =========================================================================== users


@transactional
def add_user(
    session: Session,
    username: str,
    password: str,
    role: Role | str,
    *,
    display_name: str | None = None,
    region: str | None = None,
    territory: str | None = None,
    partner_id: str | None = None,
    now: datetime | None = None,
) -> UserRow:
    """Create a user who can sign in to the server, with the scope of their role."""
    at = _now(now)
    name = _valid_username(username)
    the_role = _role(role)
    shown = optional_text(display_name, "display_name", "The display name", max_len=120) or name
    the_region = optional_text(region, "region", "The region", max_len=60)
    the_territory = optional_text(territory, "territory", "The territory", max_len=60)
    the_partner = (partner_id or "").strip() or None

    if the_region is not None and the_role is not Role.MANAGER:
        raise ValidationError(
            f"Only a manager has a region, not a {the_role.value}.", field="region"
        )
    if the_territory is not None and the_role is not Role.REP:
        raise ValidationError(
            f"Only a rep has a territory, not a {the_role.value}.", field="territory"
        )
    if the_partner is not None and the_role is not Role.PARTNER:
        raise ValidationError(
            f"Only a partner user belongs to a partner, not a {the_role.value}.",
            field="partner_id",
        )
    if the_role is Role.MANAGER and the_region is None:
        raise ValidationError("A manager needs a region.", field="region")
    if the_role is Role.PARTNER:
        if the_partner is None:
            raise ValidationError("A partner user needs the partner's id.", field="partner_id")
        get_or_404(session, StandPartner, the_partner, "partner")
    if the_role is Role.REP and the_territory is None:
        the_territory = name

    _valid_password(password, name)
    if _user_by_name(session, name) is not None:
        raise ValidationError(f"A user named {name!r} already exists.", field="username")

    user = ApiUser(
        username=name,
        display_name=shown,
        role=the_role,
        region=the_region,
        territory=the_territory,
        partner_id=the_partner,
        password_hash=_hasher.hash(password),
        active=True,
        created_at=at,
        updated_at=at,
    )
    session.add(user)
    return _row(session, user, at)


@transactional
def list_users(session: Session, *, include_disabled: bool = True) -> list[UserRow]:
    """Every user by name, with how many devices and open tokens each has."""
    query = select(ApiUser).order_by(ApiUser.username)
    if not include_disabled:
        query = query.where(ApiUser.active.is_(True))
    return _rows(session, list(session.scalars(query)), utcnow())


@transactional
def revoke_user(session: Session, username: str, *, now: datetime | None = None) -> UserRow:
    """Disable a user: they can no longer sign in, and every token and device of theirs is
    revoked. Revoking a disabled user again changes nothing."""
    at = _now(now)
    user = _user_or_404(session, username)
    if user.active:
        user.active = False
        user.disabled_at = at
        user.updated_at = at
    _revoke_tokens(session, at, ApiToken.user_id == user.id)
    session.execute(
        update(ApiDevice)
        .where(ApiDevice.user_id == user.id, ApiDevice.revoked_at.is_(None))
        .values(revoked_at=at)
    )
    return _row(session, user, at)


@transactional
def set_password(
    session: Session, username: str, password: str, *, now: datetime | None = None
) -> UserRow:
    """Give a user a new password; tokens from their old password stop working (device
    tokens keep working: revoke the device for that)."""
    at = _now(now)
    user = _user_or_404(session, username)
    _valid_password(password, user.username)
    user.password_hash = _hasher.hash(password)
    user.updated_at = at
    _revoke_tokens(session, at, ApiToken.user_id == user.id, ApiToken.kind == KIND_PASSWORD)
    return _row(session, user, at)


# =========================================================================== sign-in


@transactional
def verify_password(session: Session, username: str, password: str) -> str:
    """The id of the active user with this name and password; reads only, so a server can
    run the slow hash without holding the database's write lock."""
    user = _user_by_name(session, username)
    if user is None:
        _verify(_dummy_hash(), password or "")
        raise AuthenticationFailed(WRONG_LOGIN)
    if not _verify(user.password_hash, password or "") or not user.active:
        raise AuthenticationFailed(WRONG_LOGIN)
    return user.id


@transactional
def issue_password_token(
    session: Session,
    user_id: str,
    password: str,
    *,
    ttl: timedelta | None = None,
    now: datetime | None = None,
) -> IssuedToken:
    """The token of a sign-in whose password :func:`verify_password` has just accepted
    (the second, writing half of :func:`token_for_password`). The user is checked again:
    disabled in between means no token."""
    at = _now(now)
    lifetime = _ttl(ttl, PASSWORD_TOKEN_TTL)
    user = session.get(ApiUser, user_id)
    if user is None or not user.active:
        raise AuthenticationFailed(WRONG_LOGIN)
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
        user.updated_at = at
    return _issue(session, user, kind=KIND_PASSWORD, ttl=lifetime, now=at)


@transactional
def token_for_password(
    session: Session,
    username: str,
    password: str,
    *,
    ttl: timedelta | None = None,
    now: datetime | None = None,
) -> IssuedToken:
    """Sign in with a user name and password; a bearer token for ``ttl`` (default 12 h)."""
    user_id = verify_password(session, username, password)
    return issue_password_token(session, user_id, password, ttl=ttl, now=now)


@transactional
def register_device(
    session: Session, username: str, name: str, *, now: datetime | None = None
) -> DeviceCredentials:
    """Give an active user a device id and secret to sign in with. The secret is in the
    result only: it is stored as a digest and cannot be shown again."""
    at = _now(now)
    user = _user_or_404(session, username)
    if not user.active:
        raise ValidationError(
            f"The user {user.username!r} is disabled; a disabled user gets no devices.",
            field="username",
        )
    device_name = require_text(name, "name", "The device name", max_len=120)
    secret = DEVICE_SECRET_PREFIX + secrets.token_urlsafe(32)
    device = ApiDevice(
        user_id=user.id, name=device_name, secret_hash=_digest(secret), created_at=at
    )
    session.add(device)
    session.flush()
    return DeviceCredentials(device.id, secret, device_name, user.username)


@transactional
def token_for_device(
    session: Session,
    device_id: str,
    secret: str,
    *,
    ttl: timedelta | None = None,
    now: datetime | None = None,
) -> IssuedToken:
    """Sign in with a device's id and secret; a bearer token for ``ttl`` (default 30 days)."""
    at = _now(now)
    lifetime = _ttl(ttl, DEVICE_TOKEN_TTL)
    device_id = (device_id or "").strip()
    if not is_valid_id(device_id) or not secret or len(secret) > _MAX_SECRET_LENGTH:
        raise AuthenticationFailed(INVALID_DEVICE)
    device = session.get(ApiDevice, device_id)
    if device is None or not hmac.compare_digest(device.secret_hash, _digest(secret)):
        raise AuthenticationFailed(INVALID_DEVICE)
    user = session.get(ApiUser, device.user_id)
    if device.revoked_at is not None or user is None or not user.active:
        raise AuthenticationFailed(INVALID_DEVICE)
    device.last_used_at = at
    return _issue(session, user, kind=KIND_DEVICE, ttl=lifetime, now=at, device_id=device.id)


@transactional
def authenticate(
    session: Session, token: str, *, now: datetime | None = None, touch: bool = True
) -> Principal:
    """Who holds this bearer token. Refused (:class:`AuthenticationFailed`) if the token is
    unknown, expired or revoked, its device is revoked or its user disabled.

    With ``touch`` (the default) the token's and device's ``last_used_at`` are brought up
    to date (at most every ``LAST_USED_RESOLUTION``); without it nothing is written, so a
    server can check tokens in read transactions and call :func:`touch_token` now and
    then."""
    at = _now(now)
    if (
        not isinstance(token, str)
        or not token.startswith(TOKEN_PREFIX)
        or len(token) > _MAX_SECRET_LENGTH
    ):
        raise AuthenticationFailed(INVALID_TOKEN)
    found = session.execute(
        select(ApiToken, ApiUser)
        .join(ApiUser, ApiUser.id == ApiToken.user_id)
        .where(ApiToken.token_hash == _digest(token))
    ).one_or_none()
    if found is None:
        raise AuthenticationFailed(INVALID_TOKEN)
    row, user = found
    if row.revoked_at is not None or row.expires_at <= at or not user.active:
        raise AuthenticationFailed(INVALID_TOKEN)
    device = session.get(ApiDevice, row.device_id) if row.device_id else None
    if device is not None and device.revoked_at is not None:
        raise AuthenticationFailed(INVALID_TOKEN)
    if touch:
        _touch(row, device, at)
    return _principal(user, row)


def _touch(row: ApiToken, device: ApiDevice | None, at: datetime) -> None:
    if _stale(row.last_used_at, at):
        row.last_used_at = at
    if device is not None and _stale(device.last_used_at, at):
        device.last_used_at = at


@transactional
def touch_token(session: Session, token_id: str, *, now: datetime | None = None) -> None:
    """Record that a token (and its device) was used, at most every
    ``LAST_USED_RESOLUTION``."""
    row = session.get(ApiToken, token_id)
    if row is None:
        return
    device = session.get(ApiDevice, row.device_id) if row.device_id else None
    _touch(row, device, _now(now))


@transactional
def revoke_token(session: Session, token: str, *, now: datetime | None = None) -> None:
    """Sign out: the token stops working. An unknown or already revoked token is fine."""
    if not isinstance(token, str) or len(token) > _MAX_SECRET_LENGTH:
        return
    _revoke_tokens(session, _now(now), ApiToken.token_hash == _digest(token))


@transactional
def revoke_device(session: Session, device_id: str, *, now: datetime | None = None) -> None:
    """Revoke a device's credentials and every token it was given. Idempotent."""
    at = _now(now)
    device = get_or_404(session, ApiDevice, (device_id or "").strip(), "device")
    if device.revoked_at is None:
        device.revoked_at = at
    _revoke_tokens(session, at, ApiToken.device_id == device.id)
