"""``standctl user``: server users, their passwords and device credentials."""

from __future__ import annotations

import getpass
import io
from pathlib import Path

import pytest

from app.db import open_db
from app.errors import AuthenticationFailed
from app.services import users
from tests.app.test_cli import assert_refused
from tests.conftest import Cli, Run

PW = "correct horse battery"


@pytest.fixture
def stdin(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """What ``--password-stdin`` reads: write the lines before running standctl."""
    buffer = io.StringIO()
    monkeypatch.setattr("sys.stdin", buffer)
    return buffer


def feed(stdin: io.StringIO, line: str) -> None:
    stdin.seek(0)
    stdin.truncate()
    stdin.write(line + "\n")
    stdin.seek(0)


def add(run: Cli, stdin: io.StringIO, *args: str, password: str = PW) -> Run:
    feed(stdin, password)
    return run("user", "add", *args, "--password-stdin")


def test_add_and_list_users(run: Cli, stdin: io.StringIO) -> None:
    r = add(run, stdin, "Rep.Anna", "--role", "rep", "--display-name", "Anna Schmidt", "--json")
    assert r.code == 0, r.err
    data = r.json()
    assert (data["username"], data["role"], data["territory"]) == ("rep.anna", "rep", "rep.anna")
    assert (data["display_name"], data["active"], data["devices"]) == ("Anna Schmidt", True, 0)
    assert "password" not in r.out
    assert PW not in r.out

    r = add(run, stdin, "mgr.max", "--role", "manager", "--region", "Berlin")
    assert r.code == 0, r.err
    assert "mgr.max (manager)" in r.out
    assert "region Berlin" in r.out

    assert_refused(add(run, stdin, "mgr.eva", "--role", "manager"), "A manager needs a region.")
    assert_refused(add(run, stdin, "rep.ben", "--role", "rep", password="short"), "at least 10")
    assert_refused(add(run, stdin, "rep.anna", "--role", "admin"), "already exists")
    r = add(run, stdin, "x", "--role", "rep", "--json")
    assert r.code == 2
    assert r.json()["error"]["field"] == "username"

    r = run("user", "list")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].split() == ["User", "Role", "Scope", "Active", "Devices", "Tokens"]
    assert lines[2].split() == ["mgr.max", "manager", "region", "Berlin", "yes", "0", "0"]
    assert lines[3].split() == ["rep.anna", "rep", "territory", "rep.anna", "yes", "0", "0"]
    listed = run("--json", "user", "list").json()
    assert [u["username"] for u in listed] == ["mgr.max", "rep.anna"]


def test_password_prompt_asks_twice(
    run: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = iter([PW, PW + "!"])
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(answers))
    assert_refused(run("user", "add", "rep.anna", "--role", "rep"), "passwords do not match")
    assert run("--json", "user", "list").json() == []

    answers = iter([PW, PW])
    r = run("user", "add", "rep.anna", "--role", "rep")
    assert r.code == 0, r.err
    factory = open_db(f"sqlite:///{tmp_path / 'stand.db'}", migrate=False)
    try:
        with factory() as s:
            assert users.token_for_password(s, "rep.anna", PW).principal.username == "rep.anna"
    finally:
        factory.kw["bind"].dispose()


def test_device_password_and_revoke(run: Cli, stdin: io.StringIO, tmp_path: Path) -> None:
    assert add(run, stdin, "rep.anna", "--role", "rep").code == 0

    r = run("user", "device", "rep.anna", "Tablet 7")
    assert r.code == 0, r.err
    assert "Secret:" in r.out
    assert "shown only this once" in r.out
    r = run("--json", "user", "device", "rep.anna", "Tablet 8")
    assert r.code == 0, r.err
    creds = r.json()
    assert creds["secret"].startswith("spd_")
    assert creds["name"] == "Tablet 8"
    assert "shown only this once" in r.err
    assert_refused(run("user", "device", "nobody", "Tablet"), "No user named 'nobody'")

    factory = open_db(f"sqlite:///{tmp_path / 'stand.db'}", migrate=False)
    try:
        with factory() as s:
            device_token = users.token_for_device(s, creds["device_id"], creds["secret"])
            password_token = users.token_for_password(s, "rep.anna", PW)

        feed(stdin, "a brand new password")
        r = run("--json", "user", "password", "rep.anna", "--password-stdin")
        assert r.code == 0, r.err
        assert r.json()["open_tokens"] == 1  # the device's token only
        with factory() as s:
            assert users.token_for_password(s, "rep.anna", "a brand new password")
            with pytest.raises(AuthenticationFailed):
                users.authenticate(s, password_token.token)

        r = run("user", "revoke", "rep.anna")
        assert r.code == 0, r.err
        assert "rep.anna is disabled" in r.out
        with factory() as s, pytest.raises(AuthenticationFailed):
            users.authenticate(s, device_token.token)
    finally:
        factory.kw["bind"].dispose()

    (row,) = run("--json", "user", "list").json()
    assert (row["active"], row["devices"], row["open_tokens"]) == (False, 0, 0)
    assert run("user", "list").out.splitlines()[2].split()[4] == "no"
    assert run("--json", "user", "list", "--active").json() == []
    assert run("user", "revoke", "rep.anna").code == 0  # again: nothing changes
    assert_refused(run("user", "revoke", "nobody"), "No user named 'nobody'")


def test_revoke_device_keeps_the_user(run: Cli, stdin: io.StringIO, tmp_path: Path) -> None:
    assert add(run, stdin, "rep.anna", "--role", "rep").code == 0
    lost = run("--json", "user", "device", "rep.anna", "Lost tablet").json()
    kept = run("--json", "user", "device", "rep.anna", "Laptop").json()
    r = run("user", "revoke-device", lost["device_id"])
    assert r.code == 0, r.err
    assert "revoked" in r.out
    factory = open_db(f"sqlite:///{tmp_path / 'stand.db'}", migrate=False)
    try:
        with factory() as s:
            with pytest.raises(AuthenticationFailed):
                users.token_for_device(s, lost["device_id"], lost["secret"])
            assert users.token_for_device(s, kept["device_id"], kept["secret"]).token
    finally:
        factory.kw["bind"].dispose()
    row = run("--json", "user", "list").json()[0]
    assert (row["active"], row["devices"]) == (True, 1)
    assert_refused(run("user", "revoke-device", "not-an-id"), "No device")
