"""Access to the files in the top-level ``resources/`` folder (icons, style sheets)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QIcon

RESOURCES = Path(__file__).resolve().parent.parent / "resources"


def icon(name: str) -> QIcon:
    """An SVG icon from resources/icons, e.g. ``icon("today")``."""
    return QIcon(str(RESOURCES / "icons" / f"{name}.svg"))
