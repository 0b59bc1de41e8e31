"""The device's sign-in: kept in the system keyring, or in a private file without one."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail
from keyring.errors import PasswordDeleteError

from sync.credentials import CredentialsError, CredentialStore, DeviceCredentials

CREDS = DeviceCredentials(
    "https://stand.example/", "rep.anna", "01936f6e-8a2b-7c3d-9e4f-5a6b7c8d9e0f", "spd_secret"
)


class MemoryKeyring(KeyringBackend):
    """A stand-in for the operating system's credential store (not ours to run here)."""

    priority = 10

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.items.pop((service, username), None) is None:
            raise PasswordDeleteError("not found")


def test_keyring_round_trip(tmp_path: Path) -> None:
    ring = MemoryKeyring()
    store = CredentialStore(tmp_path, ring)
    store.save(CREDS)
    assert "keyring" in store.describe()
    assert not (tmp_path / "credentials.json").exists()  # the secret is not on disk
    assert store.load("https://stand.example") == CREDS  # the trailing slash does not matter
    assert store.load("https://other.example") is None
    store.delete(CREDS.server_url)
    assert store.load(CREDS.server_url) is None
    store.delete(CREDS.server_url)  # forgetting twice is fine


def test_without_a_keyring_a_private_file_holds_it(tmp_path: Path) -> None:
    folder = tmp_path / "config"
    store = CredentialStore(folder, fail.Keyring())
    assert "readable only by you" in store.describe()
    store.save(CREDS)
    other = DeviceCredentials("https://b.example", "rep.ben", CREDS.device_id, "spd_b")
    store.save(other)
    path = folder / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in folder.iterdir()] == ["credentials.json"]  # no temp files left
    again = CredentialStore(folder, fail.Keyring())
    assert again.load(CREDS.server_url) == CREDS
    assert again.load("https://b.example/") == other
    again.delete(CREDS.server_url)
    assert again.load(CREDS.server_url) is None
    assert again.load(other.server_url) == other
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", json.dumps({"https://x": {"a": 1}})])
def test_a_damaged_file_is_reported_not_guessed(tmp_path: Path, content: str) -> None:
    (tmp_path / "credentials.json").write_text(content)
    store = CredentialStore(tmp_path, fail.Keyring())
    with pytest.raises(CredentialsError, match="sign in to the server again"):
        store.load("https://x")
