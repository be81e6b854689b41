"""A real PostgreSQL server for the tests: Debian's postgresql-15 binaries, run as the postgres
user in a temporary data directory, listening on one loopback address and port only, with
SCRAM authentication and every statement logged (so a test can read what reached the server)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

BIN = Path("/usr/lib/postgresql/15/bin")
ADDRESS = "127.0.103.1"
ADMIN_PASSWORD = "admin-Pa55-for-tests-only-7731"


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    folder: Path
    admin: str = "posture_admin"
    admin_password: str = ADMIN_PASSWORD

    @property
    def log(self) -> str:
        return "".join(
            p.read_text(errors="replace") for p in sorted((self.folder / "data" / "log").glob("*"))
        )

    def psql(self, sql: str) -> str:
        env = {**os.environ, "PGPASSWORD": self.admin_password}
        done = subprocess.run(
            ["psql", "-h", self.host, "-p", str(self.port), "-U", self.admin, "-d", "postgres",
             "-Atc", sql], capture_output=True, text=True, timeout=30, env=env, check=True,
        )  # fmt: skip
        return done.stdout


def unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root (to run PostgreSQL as the postgres user)"
    if not (BIN / "postgres").exists() or shutil.which("psql") is None:
        return "needs PostgreSQL 15: apt-get install -y postgresql"
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        return "needs the postgres system user: apt-get install -y postgresql"
    return None


def _as_postgres(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["runuser", "-u", "postgres", "--", *argv], capture_output=True,
                          text=True, timeout=timeout, check=True)  # fmt: skip


def _free_port(address: str) -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def postgres_server(folder: Path, port: int | None = None) -> Iterator[Postgres]:
    """PostgreSQL on ADDRESS:port (default: a free one), stopped and its folder removed on exit."""
    port = port or _free_port(ADDRESS)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.chown(folder, "postgres", "postgres")
    data = folder / "data"
    pwfile = folder / "pw"
    pwfile.write_text(ADMIN_PASSWORD + "\n")
    shutil.chown(pwfile, "postgres", "postgres")
    pwfile.chmod(0o600)
    _as_postgres(str(BIN / "initdb"), "-D", str(data), "-U", "posture_admin", "--pwfile",
                 str(pwfile), "--auth-host=scram-sha-256", "--auth-local=reject", "-E", "UTF8",
                 "--no-sync")  # fmt: skip
    pwfile.unlink()
    # Only password (SCRAM) logins over TCP from this machine (a client's source address for
    # 127.0.103.1 is 127.0.0.1); initdb's defaults go.
    (data / "pg_hba.conf").write_text(
        "host all all 127.0.0.0/8 scram-sha-256\nhost all all 0.0.0.0/0 reject\n"
    )
    (data / "postgresql.auto.conf").write_text(
        f"listen_addresses = '{ADDRESS}'\nport = {port}\nunix_socket_directories = ''\n"
        "password_encryption = 'scram-sha-256'\nlog_statement = 'all'\n"
        "logging_collector = on\nlog_directory = 'log'\nfsync = off\n"
    )
    argv = ["runuser", "-u", "postgres", "--", str(BIN / "postgres"), "-D", str(data)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = Postgres(ADDRESS, port, folder)
    try:
        deadline = time.monotonic() + 30
        while True:
            ready = subprocess.run([str(BIN / "pg_isready"), "-h", ADDRESS, "-p", str(port)],
                                   capture_output=True, timeout=10)  # fmt: skip
            if ready.returncode == 0:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("PostgreSQL did not start")
            time.sleep(0.2)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    # Not under pytest's temporary folders: they are private to root, and the server runs as
    # the postgres user.
    with tempfile.TemporaryDirectory(prefix="posture-pg-") as tmp:
        os.chmod(tmp, 0o711)  # noqa: S103 - traversable by postgres, not listable
        with postgres_server(Path(tmp) / "server") as server:
            yield server
