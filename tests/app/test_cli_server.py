"""``standctl serve``: refuses what cannot work, and serves the data folder over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import Cli


def test_serve_refuses_several_workers_on_sqlite(run: Cli) -> None:
    r = run("serve", "--workers", "2")
    assert r.code != 0
    assert "PostgreSQL" in r.err


def test_serve_refuses_a_bad_port(run: Cli) -> None:
    r = run("serve", "--port", "70000")
    assert r.code != 0
    assert "port" in r.err.lower()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_starts_a_server_on_the_data_folder(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "STAND_OS_DATA_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        assert r.status_code == 200
        assert r.json()["database"] == "sqlite"
        assert (tmp_path / "stand.db").exists()
        r = httpx.get(f"http://127.0.0.1:{port}/api/v1/stand/list", timeout=5)
        assert r.status_code == 401
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert "Serving" in err
