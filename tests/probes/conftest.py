"""Real servers for the probe tests, each on its own 127.0.5x.y address, stopped by the test."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from demo.lab import Daemon, FtpServer, ServiceLoop, wait_for_port


@pytest.fixture
def loop() -> Iterator[ServiceLoop]:
    """Emulated services (asyncio handlers from demo.lab or the test's own)."""
    service_loop = ServiceLoop()
    yield service_loop
    service_loop.close()


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Callable[[Sequence[str], str, int], Daemon]]:
    """Start a real server binary (skipped if missing); it is stopped after the test."""
    started: list[Daemon] = []

    def start(argv: Sequence[str], address: str, port: int) -> Daemon:
        if shutil.which(argv[0]) is None:
            pytest.skip(f"{argv[0]} is not installed (apt-get install -y {Path(argv[0]).name})")
        proc = Daemon(argv, lifetime=120, log_path=tmp_path / f"{address}-{port}.log")
        started.append(proc)
        assert wait_for_port(address, port), proc.log_tail()
        return proc

    yield start
    for proc in started:
        proc.close()


@pytest.fixture
def ftp_server(tmp_path: Path) -> Iterator[Callable[..., FtpServer]]:
    """pyftpdlib on a given address/port, anonymous or not."""
    servers: list[FtpServer] = []

    def start(address: str, port: int, **kwargs: object) -> FtpServer:
        root = tmp_path / f"ftp-{address}-{port}"
        root.mkdir()
        server = FtpServer(address, port, root, **kwargs)  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()
