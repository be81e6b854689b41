"""Shared fixtures of the TLS probe tests: the test PKI (minted once per session with
`cryptography`) and real TLS servers that each test starts on its own loopback address."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from demo.tlslab import LabServer, OpenSslServer


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """demo.pki's standard set: name -> (certificate file, key file); 'ca' is the test root."""
    from demo.pki import standard_set

    return standard_set(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def s_server(
    pki: dict[str, tuple[Path, Path]],
) -> Iterator[Callable[..., OpenSslServer]]:
    """Start `openssl s_server` on an address and port of the test's choosing; stopped after."""
    started: list[LabServer] = []

    def start(address: str, port: int, cert: str = "good", **kwargs: object) -> OpenSslServer:
        cert_file, key_file = pki[cert]
        server = OpenSslServer(address, port, cert_file, key_file, lifetime=60, **kwargs)  # type: ignore[arg-type]
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
