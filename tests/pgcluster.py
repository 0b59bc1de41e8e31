"""A throwaway PostgreSQL cluster for tests: initdb into a temp folder, start on a free
loopback port, drop it all afterwards.

The server binaries are found through dpkg (Debian's postgresql-NN package), not a fixed
path. PostgreSQL refuses to run as root, so under root the cluster runs as the ``postgres``
system user (or ``nobody``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def find_pg_bin() -> Path | None:
    """The bin folder of the newest installed Debian PostgreSQL server package."""
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Package}\n", "postgresql-[0-9]*"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
    except FileNotFoundError:
        return None
    for package in sorted(out.split(), reverse=True):
        files = subprocess.run(
            ["dpkg", "-L", package], capture_output=True, text=True, check=False
        ).stdout.splitlines()
        for f in files:
            if f.endswith("/bin/initdb") and Path(f).exists():
                return Path(f).parent
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_as() -> tuple[int, int] | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return entry.pw_uid, entry.pw_gid
    raise RuntimeError("running as root and no unprivileged user to run PostgreSQL as")


@contextmanager
def postgres_cluster(bin_dir: Path) -> Iterator[str]:
    """Yield a SQLAlchemy URL of a fresh, empty database on a throwaway cluster."""
    ids = _run_as()
    root = Path(tempfile.mkdtemp(prefix="stand-pg-"))
    data, sock = root / "data", root / "sock"
    data.mkdir()
    sock.mkdir()
    if ids:
        for p in (root, data, sock):
            os.chown(p, *ids)

    def demote() -> None:
        if ids:
            os.setgid(ids[1])
            os.setuid(ids[0])

    def run(*cmd: str) -> None:
        subprocess.run(cmd, check=True, preexec_fn=demote, capture_output=True, cwd=root)

    port = _free_port()
    try:
        run(
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        run(
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(root / "log"),
            "-w",
            "-o",
            f"-h 127.0.0.1 -p {port} -k {sock} -F -c fsync=off",
            "start",
        )
        url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        deadline = time.monotonic() + 20
        import psycopg

        while True:
            try:
                with psycopg.connect(
                    f"host=127.0.0.1 port={port} user=postgres dbname=postgres", autocommit=True
                ) as conn:
                    conn.execute("CREATE DATABASE stand")
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield url.rsplit("/", 1)[0] + "/stand"
    finally:
        subprocess.run(
            [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            preexec_fn=demote,
            capture_output=True,
            check=False,
            cwd=root,
        )
        shutil.rmtree(root, ignore_errors=True)
