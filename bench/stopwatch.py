"""What the GUI benchmarks share: a stopwatch that waits in a real Qt event loop and
measures the longest time the GUI thread did not take events, and the ``--size`` parser."""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QEventLoop, QTimer


class Stopwatch:
    """Waits for a condition in a real event loop, timing it and the longest GUI stall."""

    def __init__(self) -> None:
        self.loop = QEventLoop()
        self.ticker = QTimer()
        self.ticker.setInterval(1)
        self.ticker.timeout.connect(self._tick)
        self._check: Callable[[], bool] = lambda: True
        self._last = 0.0
        self.longest_gap = 0.0

    def _tick(self) -> None:
        now = time.perf_counter()
        self.longest_gap = max(self.longest_gap, now - self._last)
        self._last = now
        if self._check():
            self.loop.quit()

    def measure(self, start: Callable[[], object], done: Callable[[], bool]) -> tuple[float, float]:
        """Run ``start`` then wait until ``done``; returns (seconds, longest stall seconds)."""
        self._check = done
        self.longest_gap = 0.0
        t0 = time.perf_counter()
        self._last = t0
        start()
        # ``start`` itself runs on the GUI thread: its own time counts as a stall.
        self.longest_gap = time.perf_counter() - t0
        self._last = time.perf_counter()
        self.ticker.start()
        if not done():
            self.loop.exec()
        self.ticker.stop()
        return time.perf_counter() - t0, self.longest_gap


def window_size(text: str) -> tuple[int, int]:
    w, h = (int(v) for v in text.lower().split("x"))
    return w, h
