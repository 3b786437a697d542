"""A throwaway PostgreSQL server for tests: Debian's PostgreSQL (``initdb`` / ``pg_ctl``) started in
a temporary folder on a free loopback port, with password authentication over TCP, so what the
tests show (a password from PGPASSWORD, none in any file or URL) is what production needs.

PostgreSQL refuses to run as root; under root (CI containers) the server runs as the ``postgres``
user of Debian's package (or ``nobody``), which then owns the temporary folder.

Use :func:`running_postgres` (a context manager), or the ``postgres`` fixture of a conftest that
imports :func:`postgres_fixture`. Without the binaries the fixture skips with a clear message.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

import pytest

USER = "aurora_qb"
SEARCH_GLOB = "/usr/lib/postgresql/*/bin"
MISSING = ("PostgreSQL server binaries (initdb, pg_ctl) not found on PATH nor in /usr/lib/postgresql/*/bin: "
           "install Debian's postgresql package (apt-get install -y postgresql) to run the Postgres tests")


def find_bin_dir() -> Optional[Path]:
    """The folder holding ``initdb`` and ``pg_ctl``: on PATH, else the newest Debian install."""
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(os.path.realpath(initdb)).parent
    candidates = sorted(Path("/").glob(SEARCH_GLOB.lstrip("/")), key=lambda p: p.parent.name)
    for folder in reversed(candidates):
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_user() -> Optional[str]:
    """Who runs the server: None (ourselves) unless we are root, which PostgreSQL refuses."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise RuntimeError("running as root and no unprivileged user (postgres, nobody) to run PostgreSQL")


@dataclass
class PostgresServer:
    bin_dir: Path
    folder: Path
    port: int
    password: str
    os_user: Optional[str]
    host: str = "127.0.0.1"
    user: str = USER
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.folder / "server.log"

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    def url(self, dbname: str, scheme: str = "postgresql") -> str:
        """A URL without password (libpq takes it from PGPASSWORD)."""
        return f"{scheme}://{self.user}@{self.host}:{self.port}/{dbname}"

    def env(self, dbname: str) -> dict[str, str]:
        """The libpq variables a deployment sets: where the database is, and the password."""
        return {"PGHOST": self.host, "PGPORT": str(self.port), "PGUSER": self.user, "PGDATABASE": dbname,
                "PGPASSWORD": self.password}

    def connect(self, dbname: str = "postgres", autocommit: bool = True):
        import psycopg

        return psycopg.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                               dbname=dbname, autocommit=autocommit, connect_timeout=10)

    def create_database(self, name: str) -> str:
        from psycopg import sql

        with self.connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    # --- life cycle -------------------------------------------------------------------------

    def _run(self, *args: str, timeout: float = 60.0) -> None:
        result = subprocess.run([str(self.bin_dir / args[0]), *args[1:]], user=self.os_user, cwd=self.folder,
                                capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({result.returncode}): {result.stderr or result.stdout}\n"
                               f"{self.log_tail()}")

    def start(self) -> None:
        pwfile = self.folder / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.os_user:
            shutil.chown(pwfile, user=self.os_user)
        self._run("initdb", "-D", str(self.data_dir), "-U", self.user, f"--pwfile={pwfile}", "-E", "UTF8",
                  "--auth-host=scram-sha-256", "--auth-local=trust", "--no-sync", "--no-instructions")
        pwfile.unlink()
        options = " ".join([
            f"-c port={self.port}", f"-c listen_addresses={self.host}", f"-c unix_socket_directories={self.folder}",
            "-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off", "-c max_connections=200",
        ])
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_path), "-o", options, "-w", "-t", "60",
                  "start", timeout=90.0)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop", timeout=30.0)


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A fresh server in a temporary folder, stopped and removed afterwards."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise FileNotFoundError(MISSING)
    os_user = _server_user()
    folder = Path(tempfile.mkdtemp(prefix="aurora_qb_pg_"))
    if os_user:
        shutil.chown(folder, user=os_user)
    server = PostgresServer(bin_dir, folder, _free_port(), secrets.token_urlsafe(18), os_user)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def postgres_fixture() -> Iterator[PostgresServer]:
    """Body of a session fixture: the server, or a skip naming what to install."""
    if find_bin_dir() is None:
        pytest.skip(MISSING)
    with running_postgres() as server:
        yield server
