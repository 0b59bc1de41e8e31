"""bench/bench_sync.py works: a tiny run against the real server (a subprocess, as `make
bench` runs it) exits 0, which it does only when its invariants hold (every op on the
server once, the devices equal to the server), and prints every figure. Speed is not
checked here; the figures are the bench's business."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.sync.procs import child_env

ROOT = Path(__file__).resolve().parents[2]
FIGURES = ("push ", "pull ", "incremental round ", "bootstrap ")


def test_bench_sync_quick_run_checks_and_prints_every_figure(tmp_path: Path) -> None:
    command = [
        sys.executable,
        str(ROOT / "bench" / "bench_sync.py"),
        "--quick",
        "--stands",
        "8",
        "--ops",
        "120",
        "--repeats",
        "1",
        "--build",
        str(tmp_path),
        "--folder",
        str(tmp_path / "work"),
    ]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=child_env(tmp_path / "data"),
        timeout=240,
        check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    assert "All invariants hold." in done.stdout, out[-4000:]
    figures = done.stdout.split("=== figures", 1)[1].splitlines()
    for name in FIGURES:
        assert any(line.startswith(name) for line in figures), (name, out[-4000:])
    # Every figure was measured: a number of ops or rows, not a placeholder.
    assert "push        120 ops in " in done.stdout, out[-4000:]
    assert "not built yet" not in done.stdout
