"""Where data lives: the platform's user data folder unless told otherwise.

Order of precedence: an explicit ``--data-dir`` flag, then ``STAND_OS_DATA_DIR``, then the
platform folder (``~/.local/share/stand-os`` on Linux). Demo data always lives in a folder
of its own so it is never mixed with a user's real data: ``<folder>/demo`` under an explicit
folder, ``~/.local/share/stand-os-demo`` otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "stand-os"
APP_AUTHOR = "StandProgram"
ENV_DATA_DIR = "STAND_OS_DATA_DIR"
DB_FILENAME = "stand.db"


def data_dir(override: str | os.PathLike[str] | None = None, *, demo: bool = False) -> Path:
    """The data folder to use (not created here)."""
    explicit = override or os.environ.get(ENV_DATA_DIR)
    if explicit:
        base = Path(explicit).expanduser().resolve()
        return base / "demo" if demo else base
    name = f"{APP_NAME}-demo" if demo else APP_NAME
    return Path(platformdirs.user_data_dir(name, APP_AUTHOR))


def database_url(folder: Path) -> str:
    """The SQLite URL of the database file in ``folder``."""
    return f"sqlite:///{folder / DB_FILENAME}"
