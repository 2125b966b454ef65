"""A throw-away PostgreSQL cluster for the pool tests (issue 22).

``PgCluster.start()`` runs Debian's ``initdb`` and ``pg_ctl`` (``apt-get install -y
postgresql``) as the ``postgres`` user (initdb refuses root; ``runuser -u postgres --``)
in a temporary directory, on a free port on 127.0.0.1 with its Unix socket in that
directory, and password authentication over TCP for the role ``alphavol``: the tests
reach it the way a node reaches a real one. ``database()`` makes a fresh database per
test; ``stop()`` stops the server and removes the directory.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

ROLE = "alphavol"
PASSWORD = "pg-Test-Pa55word-8c1f"


def pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgCluster:
    def __init__(self, bindir: Path) -> None:
        self.bin = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="avpg-", dir="/tmp"))
        self.data = self.dir / "data"
        self.port = free_port()
        self._n = 0

    def _as_postgres(self, *args: str, input: str | None = None) -> str:
        as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        proc = subprocess.run(
            [*as_user, *args], capture_output=True, text=True, input=input, timeout=120
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {proc.stderr.strip()}")
        return proc.stdout

    def start(self) -> PgCluster:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        pwfile = self.dir / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if os.geteuid() == 0:
            shutil.chown(pwfile, "postgres", "postgres")
        self._as_postgres(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            f"--pwfile={pwfile}",
            "--no-sync",
        )
        opts = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._as_postgres(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l",
            str(self.dir / "log"), "-w", "start",
        )  # fmt: skip
        self.psql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'")
        return self

    def psql(self, sql: str, db: str = "postgres") -> str:
        return self._as_postgres(
            str(self.bin / "psql"), "-h", str(self.dir), "-p", str(self.port), "-U",
            "postgres", "-d", db, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql,
        )  # fmt: skip

    def database(self) -> str:
        """A fresh database owned by the role; its URL without the password."""
        self._n += 1
        name = f"pool{self._n}"
        self.psql(f"CREATE DATABASE {name} OWNER {ROLE}")
        return f"postgresql://{ROLE}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            self._as_postgres(
                str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"
            )
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
