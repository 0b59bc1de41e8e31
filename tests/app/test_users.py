"""Server users: roles and scopes, passwords, bearer tokens and device credentials."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine, inspect, select
from sqlalchemy.orm import Session

import app.db as db
from app.errors import AuthenticationFailed, DomainError, NotFound, ValidationError
from app.models import ApiDevice, ApiToken, ApiUser, Role
from app.services import users
from app.services.base import Actor
from tests.app.test_migrations import downgrade
from tests.conftest import StandFixture

T0 = datetime(2030, 3, 1, 8, 0, tzinfo=UTC)
PW = "correct horse battery"


def add(session: Session, name: str = "rep.anna", role: Role | str = Role.REP, **kw: Any) -> Any:
    return users.add_user(session, name, kw.pop("password", PW), role, now=T0, **kw)


# --------------------------------------------------------------------------- users


def test_add_user_for_each_role(session: Session, stand: StandFixture) -> None:
    admin = add(session, "Admin", Role.ADMIN, display_name="The Admin")
    assert (admin.username, admin.display_name, admin.role) == ("admin", "The Admin", Role.ADMIN)
    assert (admin.region, admin.territory, admin.partner_id) == (None, None, None)

    manager = add(session, "mgr.max", "Manager", region=" Berlin ")
    assert (manager.role, manager.region, manager.territory) == (Role.MANAGER, "Berlin", None)

    rep = add(session, "REP.Anna")
    assert (rep.username, rep.display_name, rep.territory) == ("rep.anna", "rep.anna", "rep.anna")
    rep2 = add(session, "rep_ben-2", territory="rep.anna")
    assert rep2.territory == "rep.anna"  # covering a colleague's stands

    shop = add(session, "kiosk.1", Role.PARTNER, partner_id=stand.partner_id)
    assert (shop.role, shop.partner_id, shop.region) == (Role.PARTNER, stand.partner_id, None)
    assert (shop.active, shop.disabled_at, shop.devices, shop.open_tokens) == (True, None, 0, 0)
    assert shop.created_at == T0

    listed = users.list_users(session)
    assert [u.username for u in listed] == ["admin", "kiosk.1", "mgr.max", "rep.anna", "rep_ben-2"]
    with session.begin():
        stored = session.scalars(select(ApiUser.password_hash)).all()
    assert all(h.startswith("$argon2id$") for h in stored)
    assert PW not in "".join(stored)


UNKNOWN_PARTNER = "01900000-0000-7000-8000-000000000000"


@pytest.mark.parametrize(
    ("name", "role", "kw", "error", "field", "message"),
    [
        ("mgr", "manager", {}, ValidationError, "region", "A manager needs a region."),
        ("rep", "rep", {"partner_id": UNKNOWN_PARTNER}, ValidationError, "partner_id", None),
        ("adm", "admin", {"region": "Berlin"}, ValidationError, "region", None),
        ("mgr", "manager", {"region": "B", "territory": "x"}, ValidationError, "territory", None),
        ("shop", "partner", {}, ValidationError, "partner_id", None),
        ("shop", "partner", {"partner_id": UNKNOWN_PARTNER}, NotFound, "partner_id", None),
        ("shop", "partner", {"partner_id": "junk"}, NotFound, "partner_id", None),
        ("ab", "rep", {}, ValidationError, "username", None),
        ("anna smith", "rep", {}, ValidationError, "username", None),
        ("a" * 61, "rep", {}, ValidationError, "username", None),
        ("anna", "boss", {}, ValidationError, "role", None),
        ("anna", "rep", {"password": "short"}, ValidationError, "password", None),
        ("anna", "rep", {"password": " " * 12}, ValidationError, "password", None),
        ("anna.longname", "rep", {"password": "Anna.LongName"}, ValidationError, "password", None),
    ],
)
def test_add_user_refusals(
    session: Session,
    name: str,
    role: str,
    kw: dict[str, Any],
    error: type[DomainError],
    field: str,
    message: str | None,
) -> None:
    with pytest.raises(error) as exc:
        add(session, name, role, **kw)
    assert exc.value.field == field
    if message:
        assert exc.value.message == message
    assert users.list_users(session) == []


def test_duplicate_user_name_is_refused(session: Session) -> None:
    add(session, "anna")
    with pytest.raises(ValidationError, match="A user named 'anna' already exists") as exc:
        add(session, " ANNA ")
    assert exc.value.field == "username"
    assert len(users.list_users(session)) == 1


# --------------------------------------------------------------------------- passwords


def test_password_sign_in_and_authenticate(session: Session) -> None:
    rep = add(session, "rep.anna")
    issued = users.token_for_password(session, "Rep.Anna", PW, now=T0)
    assert issued.token.startswith("spt_")
    assert len(issued.token) > 40
    assert issued.token_type == "bearer"
    assert issued.expires_at == T0 + timedelta(hours=12)
    assert issued.principal.user_id == rep.id
    # Only the digest is stored.
    with session.begin():
        (stored,) = session.scalars(select(ApiToken)).all()
    assert stored.token_hash == hashlib.sha256(issued.token.encode()).hexdigest()
    assert (stored.kind, stored.device_id, stored.last_used_at) == ("password", None, None)

    me = users.authenticate(session, issued.token, now=T0 + timedelta(minutes=1))
    assert me == users.Principal(
        user_id=rep.id,
        username="rep.anna",
        role=Role.REP,
        region=None,
        territory="rep.anna",
        partner_id=None,
        device_id=None,
        token_id=stored.id,
    )
    assert me.actor == Actor("rep.anna", Role.REP)
    assert users.list_users(session)[0].open_tokens == 1


def test_unknown_user_and_wrong_password_look_the_same(session: Session) -> None:
    add(session, "rep.anna")
    failures = []
    for name, password in (("rep.anna", PW + "!"), ("nobody", PW), ("x", ""), ("rep.anna", "")):
        with pytest.raises(AuthenticationFailed) as exc:
            users.token_for_password(session, name, password, now=T0)
        failures.append((exc.value.message, exc.value.field, exc.value.code))
    assert set(failures) == {("Wrong user name or password.", None, "authentication_failed")}
    with session.begin():
        assert session.scalars(select(ApiToken)).all() == []


def test_token_expiry_and_last_used(session: Session) -> None:
    add(session, "rep.anna")
    issued = users.token_for_password(session, "rep.anna", PW, now=T0)
    short = users.token_for_password(session, "rep.anna", PW, ttl=timedelta(minutes=10), now=T0)
    assert short.expires_at == T0 + timedelta(minutes=10)

    def last_used() -> datetime | None:
        with session.begin():
            return session.scalar(
                select(ApiToken.last_used_at).where(ApiToken.id == issued.principal.token_id)
            )

    users.authenticate(session, issued.token, now=T0 + timedelta(minutes=1))
    assert last_used() == T0 + timedelta(minutes=1)
    users.authenticate(session, issued.token, now=T0 + timedelta(minutes=4))
    assert last_used() == T0 + timedelta(minutes=1)  # written at most every 5 minutes
    users.authenticate(session, issued.token, now=T0 + timedelta(minutes=6))
    assert last_used() == T0 + timedelta(minutes=6)

    users.authenticate(session, short.token, now=T0 + timedelta(minutes=9))
    for token, at in ((short.token, 10), (issued.token, 12 * 60), (issued.token, 13 * 60)):
        with pytest.raises(AuthenticationFailed, match=r"^The token is not valid or has expired"):
            users.authenticate(session, token, now=T0 + timedelta(minutes=at))
    with pytest.raises(ValidationError) as exc:
        users.token_for_password(session, "rep.anna", PW, ttl=timedelta(0), now=T0)
    assert exc.value.field == "ttl"


@pytest.mark.parametrize("token", ["", "spt_", "spt_unknown", "Bearer xyz", "spt_" + "x" * 500])
def test_unknown_tokens_are_refused(session: Session, token: str) -> None:
    with pytest.raises(AuthenticationFailed, match=r"^The token is not valid or has expired"):
        users.authenticate(session, token, now=T0)
    users.revoke_token(session, token)  # revoking junk is a no-op, not an error


def test_revoke_token_is_idempotent(session: Session) -> None:
    add(session, "rep.anna")
    a = users.token_for_password(session, "rep.anna", PW, now=T0)
    b = users.token_for_password(session, "rep.anna", PW, now=T0)
    users.revoke_token(session, a.token, now=T0 + timedelta(minutes=1))
    users.revoke_token(session, a.token, now=T0 + timedelta(minutes=2))
    with pytest.raises(AuthenticationFailed):
        users.authenticate(session, a.token, now=T0 + timedelta(minutes=3))
    assert users.authenticate(session, b.token, now=T0 + timedelta(minutes=3)).username
    with session.begin():
        revoked = session.scalar(
            select(ApiToken.revoked_at).where(ApiToken.id == a.principal.token_id)
        )
    assert revoked == T0 + timedelta(minutes=1)


def test_set_password_revokes_password_tokens_only(session: Session) -> None:
    add(session, "rep.anna")
    old = users.token_for_password(session, "rep.anna", PW, now=T0)
    creds = users.register_device(session, "rep.anna", "Tablet 1", now=T0)
    device = users.token_for_device(session, creds.device_id, creds.secret, now=T0)
    with pytest.raises(ValidationError) as exc:
        users.set_password(session, "rep.anna", "too short")
    assert exc.value.field == "password"
    with pytest.raises(NotFound):
        users.set_password(session, "nobody", "a new password")

    row = users.set_password(session, "REP.ANNA", "a new password", now=T0 + timedelta(hours=1))
    assert (row.username, row.open_tokens, row.devices) == ("rep.anna", 1, 1)
    later = T0 + timedelta(hours=2)
    with pytest.raises(AuthenticationFailed):
        users.authenticate(session, old.token, now=later)
    assert users.authenticate(session, device.token, now=later).device_id == creds.device_id
    with pytest.raises(AuthenticationFailed, match="Wrong user name or password"):
        users.token_for_password(session, "rep.anna", PW, now=later)
    new = users.token_for_password(session, "rep.anna", "a new password", now=later)
    assert users.authenticate(session, new.token, now=later).username == "rep.anna"


def test_an_outdated_hash_is_upgraded_at_sign_in(session: Session) -> None:
    add(session, "rep.anna")
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PW)
    with session.begin():
        session.scalars(select(ApiUser)).one().password_hash = weak
    users.token_for_password(session, "rep.anna", PW, now=T0)
    with session.begin():
        upgraded = session.scalars(select(ApiUser.password_hash)).one()
    assert upgraded != weak
    assert not PasswordHasher().check_needs_rehash(upgraded)
    assert PasswordHasher().verify(upgraded, PW)


# --------------------------------------------------------------------------- devices


def test_device_credentials(session: Session) -> None:
    add(session, "rep.anna")
    creds = users.register_device(session, "rep.anna", "  Tablet 7 ", now=T0)
    assert (creds.name, creds.username) == ("Tablet 7", "rep.anna")
    assert creds.secret.startswith("spd_")
    assert len(creds.secret) > 40
    with session.begin():
        stored = session.get_one(ApiDevice, creds.device_id)
        assert stored.secret_hash == hashlib.sha256(creds.secret.encode()).hexdigest()

    issued = users.token_for_device(session, creds.device_id, creds.secret, now=T0)
    assert issued.expires_at == T0 + timedelta(days=30)
    assert issued.principal.device_id == creds.device_id
    me = users.authenticate(session, issued.token, now=T0 + timedelta(days=29))
    assert (me.username, me.device_id, me.token_id) == (
        "rep.anna",
        creds.device_id,
        issued.principal.token_id,
    )
    with session.begin():
        assert session.get_one(ApiDevice, creds.device_id).last_used_at == T0 + timedelta(days=29)

    other = users.register_device(session, "rep.anna", "Tablet 8", now=T0)
    bad = [
        (creds.device_id, other.secret),
        (creds.device_id, creds.secret + "x"),
        (UNKNOWN_PARTNER, creds.secret),
        ("junk", creds.secret),
        (creds.device_id, ""),
    ]
    for device_id, secret in bad:
        with pytest.raises(AuthenticationFailed) as exc:
            users.token_for_device(session, device_id, secret, now=T0)
        assert exc.value.message == "The device credentials are not valid or have been revoked."

    users.revoke_device(session, creds.device_id, now=T0 + timedelta(days=1))
    users.revoke_device(session, creds.device_id)  # idempotent
    with pytest.raises(AuthenticationFailed):
        users.authenticate(session, issued.token, now=T0 + timedelta(days=2))
    with pytest.raises(AuthenticationFailed):
        users.token_for_device(session, creds.device_id, creds.secret, now=T0)
    # The other device is untouched.
    users.token_for_device(session, other.device_id, other.secret, now=T0)
    with pytest.raises(NotFound) as nf:
        users.revoke_device(session, UNKNOWN_PARTNER)
    assert nf.value.field == "device_id"
    with pytest.raises(ValidationError) as ve:
        users.register_device(session, "rep.anna", " ")
    assert ve.value.field == "name"
    with pytest.raises(NotFound):
        users.register_device(session, "nobody", "Tablet")


def test_revoke_user_ends_every_token_and_device(session: Session) -> None:
    add(session, "rep.anna")
    add(session, "rep.ben")
    password_token = users.token_for_password(session, "rep.anna", PW, now=T0)
    creds = users.register_device(session, "rep.anna", "Tablet", now=T0)
    device_token = users.token_for_device(session, creds.device_id, creds.secret, now=T0)
    ben = users.token_for_password(session, "rep.ben", PW, now=T0)

    row = users.revoke_user(session, "Rep.Anna", now=T0 + timedelta(hours=1))
    assert (row.active, row.disabled_at, row.devices, row.open_tokens) == (
        False,
        T0 + timedelta(hours=1),
        0,
        0,
    )
    later = T0 + timedelta(hours=2)
    for token in (password_token.token, device_token.token):
        with pytest.raises(AuthenticationFailed, match=r"^The token is not valid or has expired"):
            users.authenticate(session, token, now=later)
    with pytest.raises(AuthenticationFailed, match=r"^Wrong user name or password"):
        users.token_for_password(session, "rep.anna", PW, now=later)
    with pytest.raises(AuthenticationFailed):
        users.token_for_device(session, creds.device_id, creds.secret, now=later)
    with pytest.raises(ValidationError, match="disabled"):
        users.register_device(session, "rep.anna", "Tablet 2")
    assert users.authenticate(session, ben.token, now=later).username == "rep.ben"

    again = users.revoke_user(session, "rep.anna", now=later)
    assert again.disabled_at == T0 + timedelta(hours=1)
    with pytest.raises(NotFound) as exc:
        users.revoke_user(session, "nobody")
    assert exc.value.field == "username"
    assert [u.username for u in users.list_users(session, include_disabled=False)] == ["rep.ben"]
    assert [u.active for u in users.list_users(session)] == [False, True]


# --------------------------------------------------------------------------- migration


def test_migration_0004_up_and_down(tmp_path: Path) -> None:
    engine: Engine = db.create_db_engine(f"sqlite:///{tmp_path / 'stand.db'}")
    tables = {"api_user", "api_device", "api_token", "idempotency_record"}
    try:
        db.upgrade(engine)
        assert tables <= set(inspect(engine).get_table_names())
        downgrade(engine, "0003")
        assert db.current_revision(engine) == "0003"
        assert not tables & set(inspect(engine).get_table_names())
        db.upgrade(engine)
        assert db.current_revision(engine) == db.head_revision()
        assert tables <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
