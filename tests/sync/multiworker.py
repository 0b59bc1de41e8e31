"""The server as it runs in production, for tests: ``standctl serve`` in a subprocess with
several uvicorn worker processes on one database, so concurrent requests really are
handled by different processes (and different connection pools).

    with multiworker_server(database_url, workers=3) as server:
        httpx.get(server.url + "/api/v1/health")
        server.processes_connected_to(5432)  # which server processes hold a DB connection

The subprocess gets its own session (process group), is waited on until
``GET /api/v1/health`` answers, and is always stopped with its whole group (the uvicorn
supervisor and its workers) when the block ends. Linux only (it reads /proc to tell the
worker processes apart).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class RunningServer:
    url: str
    #: The subprocess's pid, which is also its process group id.
    pid: int

    def processes(self) -> set[int]:
        """The pids of the server's process group (the supervisor and its workers)."""
        out = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # gone meanwhile
            if int(fields[2]) == self.pid:  # pgrp, after the state and the ppid
                out.add(int(stat.parent.name))
        return out

    def processes_connected_to(self, port: int) -> set[int]:
        """The server's processes holding a TCP connection to ``port`` on this machine
        (the database server's port: a worker keeps its pooled connections open)."""
        remote = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with suppress(OSError):
                for line in Path(table).read_text().splitlines()[1:]:
                    parts = line.split()
                    if int(parts[2].rsplit(":", 1)[1], 16) == port:
                        remote.add(parts[9])  # the socket's inode
        out = set()
        for pid in self.processes():
            with suppress(OSError):
                for fd in Path(f"/proc/{pid}/fd").iterdir():
                    with suppress(OSError):
                        target = os.readlink(fd)
                        if target.startswith("socket:[") and target[8:-1] in remote:
                            out.add(pid)
                            break
        return out


def serve_command(database_url: str, *, port: int, workers: int) -> list[str]:
    """The command line that starts the server (``standctl serve``)."""
    return [
        sys.executable,
        "-m",
        "app.cli",
        "serve",
        "--database-url",
        database_url,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
    ]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the whole group (uvicorn shuts its workers down), SIGKILL if it hangs."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=STOP_TIMEOUT)


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise RuntimeError(
                f"the server exited with {proc.returncode} before it was ready:\n"
                + log.read_text(errors="replace")[-4000:]
            )
        try:
            if httpx.get(url + "/api/v1/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the server did not answer /api/v1/health within {STARTUP_TIMEOUT:.0f} s:\n"
                + log.read_text(errors="replace")[-4000:]
            )
        time.sleep(0.1)


@contextmanager
def multiworker_server(database_url: str, *, workers: int = 3) -> Iterator[RunningServer]:
    """Run ``standctl serve --workers N`` on ``database_url`` until the block ends."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="stand-serve-") as folder:
        log = Path(folder) / "server.log"
        env = dict(os.environ)
        # standctl's data folder (the server itself uses --database-url): keep it out of
        # the user's home.
        env["STAND_OS_DATA_DIR"] = str(Path(folder) / "data")
        env.pop("STAND_OS_DB_URL", None)
        with log.open("wb") as out:
            proc = subprocess.Popen(
                serve_command(database_url, port=port, workers=workers),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=ROOT,
                start_new_session=True,
            )
            try:
                _wait_ready(proc, url, log)
                server = RunningServer(url, proc.pid)
                # Wait for every worker (the supervisor and the workers, at least), so the
                # first race meets all of them.
                deadline = time.monotonic() + STARTUP_TIMEOUT
                while len(server.processes()) < workers + 1:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"the server did not start {workers} workers")
                    time.sleep(0.1)
                for _ in range(workers * 4):
                    httpx.get(url + "/api/v1/health", timeout=10)
                yield server
            finally:
                _stop(proc)
