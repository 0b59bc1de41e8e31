"""The app's side of the sync settings: which server this device syncs with, and the
reads the desktop's status bar and Sync view make, each as one transaction.

The server's address is kept in the device's ``sync_state`` row (the cursor there belongs
to that server's feed). The sign-in itself never goes into the database: the desktop keeps
it with ``sync/credentials.py``. Unlinking forgets the sign-in but keeps the address, so
the device can be linked to the same server again and carries on where it stopped; a
device that has synced with one server cannot be pointed at another (its cursor would
skip that server's changes).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from app.errors import ValidationError
from app.models import SyncState
from app.services import sync_device
from app.services.base import transactional
from app.services.sync_device import SyncItem, SyncStatus


def check_server_url(url: str) -> str:
    """``url`` as it is stored (trimmed, no trailing slash), or a ValidationError saying
    what is wrong with it."""
    text = url.strip().rstrip("/")
    if not text:
        raise ValidationError("Enter the server's address.", field="server_url")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https"):
        raise ValidationError(
            "The server address must start with http:// or https://.", field="server_url"
        )
    if not parts.hostname or any(c.isspace() for c in text):
        raise ValidationError(
            "The server address has no host name, e.g. https://stands.example.com.",
            field="server_url",
        )
    if parts.query or parts.fragment:
        raise ValidationError(
            "The server address takes no ?query or #fragment.", field="server_url"
        )
    return text


def _stored(session: Session) -> str | None:
    row = session.get(SyncState, 1)
    return row.server_url if row is not None else None


@transactional
def server_url(session: Session) -> str | None:
    """The server this device syncs with (None: never linked)."""
    return _stored(session)


def _has_synced(session: Session) -> bool:
    row = session.get(SyncState, 1)
    return row is not None and (row.last_ok_at is not None or row.bootstrap is not None)


@transactional
def check_link_target(session: Session, url: str) -> str:
    """Refuse (ValidationError) to link a device that has synced with another server;
    returns the URL as it will be stored. Asked before the device registers with the
    server, so a refused link leaves nothing behind there."""
    return _check_target(session, url)


def _check_target(session: Session, url: str) -> str:
    wanted = check_server_url(url)
    current = _stored(session)
    if current and current != wanted and _has_synced(session):
        raise ValidationError(
            f"This device has synced with {current}; it cannot switch to another server "
            "(the changes it has received belong to that one). Link it to "
            f"{current} again, or set up a new data folder for the other server.",
            field="server_url",
        )
    return wanted


@transactional
def set_server_url(session: Session, url: str) -> str:
    """Remember the server this device syncs with (after linking); returns it as stored."""
    wanted = _check_target(session, url)
    sync_device.state(session).server_url = wanted
    return wanted


@dataclass(frozen=True)
class SyncOverview:
    """What the status bar shows: the server (if any) and the device's sync status."""

    server_url: str | None
    status: SyncStatus


@transactional
def overview(session: Session) -> SyncOverview:
    return SyncOverview(_stored(session), sync_device.status(session))


@transactional
def items(session: Session) -> list[SyncItem]:
    """The Sync view's lists (see :func:`app.services.sync_device.items`)."""
    return sync_device.items(session)


@transactional
def export_unsent(session: Session, path: str) -> int:
    """Write every unsent and rejected change to ``path`` (JSON lines); returns how many."""
    return sync_device.write_export(session, path)
