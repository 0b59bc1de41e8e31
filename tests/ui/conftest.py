"""GUI test hygiene: offscreen Qt, and a test fails if it leaves threads running."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _no_dangling_threads(qapp: object) -> Iterator[None]:
    from PySide6.QtCore import QThreadPool

    before = {t.ident for t in threading.enumerate()}
    yield
    assert QThreadPool.globalInstance().waitForDone(5000), "global thread pool still busy"
    leftover = [
        t for t in threading.enumerate() if t.ident not in before and t.is_alive() and not t.daemon
    ]
    assert not leftover, f"threads left running: {leftover}"
