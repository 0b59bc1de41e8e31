"""The one translation function for user-visible text."""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication

CONTEXT = "stand-os"


def tr(text: str) -> str:
    return QCoreApplication.translate(CONTEXT, text)
