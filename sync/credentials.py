"""Where a device keeps its sign-in to the server: the operating system's keyring, or a
file only its user can read where there is no keyring.

A desktop signs in once with a person's password, registers itself
(``POST /api/v1/auth/devices``) and from then on signs in with the device id and secret
kept here. The secret is as good as a password: on Windows, macOS and desktop Linux it
goes to the system's credential store (through ``keyring``); on a machine without one
(a headless box, a minimal tablet image) it goes to ``credentials.json`` in the app's
config folder, created with mode 0600 and replaced atomically, and the store says which
of the two it uses so the settings screen can tell the person.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import keyring
import keyring.errors
from keyring.backend import KeyringBackend

SERVICE = "stand-program-os"
FILE_NAME = "credentials.json"


class CredentialsError(Exception):
    """The stored credentials cannot be read or written; the message says what to do."""


@dataclass(frozen=True)
class DeviceCredentials:
    server_url: str
    username: str
    device_id: str
    device_secret: str


def _usable(backend: KeyringBackend) -> bool:
    # keyring falls back to backends that refuse everything (fail.Keyring) or drop
    # everything (null.Keyring); neither may hold a secret we need back.
    return float(getattr(backend, "priority", 0)) > 0 and type(backend).__module__ not in (
        "keyring.backends.fail",
        "keyring.backends.null",
    )


def _key(server_url: str) -> str:
    return server_url.rstrip("/")


class CredentialStore:
    """The device credentials per server URL."""

    def __init__(self, folder: Path, backend: KeyringBackend | None = None) -> None:
        self.folder = folder
        chosen = backend if backend is not None else keyring.get_keyring()
        self.backend: KeyringBackend | None = chosen if _usable(chosen) else None

    @property
    def file(self) -> Path:
        return self.folder / FILE_NAME

    def describe(self) -> str:
        """Where the secret is kept, for the settings screen."""
        if self.backend is not None:
            return f"the system keyring ({type(self.backend).__name__})"
        return f"{self.file} (readable only by you; this system has no keyring)"

    def save(self, creds: DeviceCredentials) -> None:
        value = json.dumps(asdict(creds), sort_keys=True)
        if self.backend is not None:
            try:
                self.backend.set_password(SERVICE, _key(creds.server_url), value)
                return
            except keyring.errors.KeyringError as exc:
                raise CredentialsError(f"The system keyring refused the sign-in: {exc}") from exc
        entries = self._read_file()
        entries[_key(creds.server_url)] = asdict(creds)
        self._write_file(entries)

    def load(self, server_url: str) -> DeviceCredentials | None:
        if self.backend is not None:
            try:
                value = self.backend.get_password(SERVICE, _key(server_url))
            except keyring.errors.KeyringError as exc:
                raise CredentialsError(f"The system keyring cannot be read: {exc}") from exc
            return None if value is None else self._parse(json.loads(value))
        entry = self._read_file().get(_key(server_url))
        return None if entry is None else self._parse(entry)

    def delete(self, server_url: str) -> None:
        """Forget the sign-in to ``server_url`` (signing out); nothing stored is fine."""
        if self.backend is not None:
            with contextlib.suppress(keyring.errors.PasswordDeleteError):
                self.backend.delete_password(SERVICE, _key(server_url))
            return
        entries = self._read_file()
        if entries.pop(_key(server_url), None) is not None:
            self._write_file(entries)

    # ------------------------------------------------------------------ the file fallback

    def _parse(self, entry: object) -> DeviceCredentials:
        fields = ("server_url", "username", "device_id", "device_secret")
        if not isinstance(entry, dict) or not all(isinstance(entry.get(f), str) for f in fields):
            raise CredentialsError("The stored sign-in is damaged; sign in to the server again.")
        return DeviceCredentials(*(str(entry[f]) for f in fields))

    def _read_file(self) -> dict[str, object]:
        try:
            text = self.file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise CredentialsError(f"Cannot read {self.file}: {exc.strerror}.") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CredentialsError(
                f"{self.file} is damaged; delete it and sign in to the server again."
            ) from exc
        if not isinstance(data, dict):
            raise CredentialsError(
                f"{self.file} is damaged; delete it and sign in to the server again."
            )
        return data

    def _write_file(self, entries: dict[str, object]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        # Written to a private temporary file beside it, then renamed over it: the secret
        # is never readable by others, and a crash leaves the old file or the new one.
        fd, tmp = tempfile.mkstemp(prefix=".credentials-", dir=self.folder)
        try:
            if hasattr(os, "fchmod"):  # POSIX; mkstemp already makes it private elsewhere
                os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(entries, f, sort_keys=True, indent=2)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.file)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
