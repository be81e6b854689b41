"""Shared test setup: tests marked `root` or `nmap` are skipped, with the reason printed, when
this machine cannot run them."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from demo.lab import Daemon, wait_for_port

_MISSING = {
    "root": (
        lambda: os.geteuid() != 0,
        "needs root (raw sockets, ports below 1024): run the tests as root",
    ),
    "nmap": (
        lambda: shutil.which("nmap") is None,
        "needs nmap: apt-get install -y nmap",
    ),
}


@pytest.fixture(scope="session", autouse=True)
def bundled_vulndb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every test's default advisory database ($POSTURE_VULNDB): built once from posture's
    bundled advisories, in the session's temporary folder, never in the user's home."""
    from scanner.vulndb.bundled import import_bundle

    path = tmp_path_factory.mktemp("vulndb") / "bundled.sqlite"
    import_bundle(path)
    before = os.environ.get("POSTURE_VULNDB")
    os.environ["POSTURE_VULNDB"] = str(path)
    yield path
    if before is None:
        os.environ.pop("POSTURE_VULNDB", None)
    else:
        os.environ["POSTURE_VULNDB"] = before


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for marker, (missing, reason) in _MISSING.items():
        if not missing():
            continue
        for item in items:
            if item.get_closest_marker(marker) is not None:
                item.add_marker(pytest.mark.skipif(True, reason=reason))


@pytest.fixture
def private_sshd(tmp_path: Path) -> Iterator[Callable[[str, int], tuple[Path, Path]]]:
    """Start a private sshd on (address, port) that lets root in with one test key only;
    returns (client key, sshd_config). Stopped after the test."""
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    if not (os.path.exists(sshd) and shutil.which("ssh-keygen") and shutil.which("ssh")):
        pytest.skip("needs OpenSSH: apt-get install -y openssh-server openssh-client")
    if os.geteuid() != 0:
        pytest.skip("sshd must run as root to log a user in")
    started: list[Daemon] = []

    def start(address: str, port: int) -> tuple[Path, Path]:
        folder = tmp_path / f"sshd-{address}-{port}"
        folder.mkdir()
        for name in ("host_key", "client_key"):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)],
                check=True,
                timeout=30,
            )
        authorized = folder / "authorized_keys"
        shutil.copy(folder / "client_key.pub", authorized)
        config = folder / "sshd_config"
        config.write_text(
            f"ListenAddress {address}\nPort {port}\nHostKey {folder / 'host_key'}\n"
            f"AuthorizedKeysFile {authorized}\nPidFile {folder / 'sshd.pid'}\n"
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
            "Ciphers aes128-ctr,aes256-gcm@openssh.com\n"
        )
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
        argv = [sshd, "-D", "-e", "-f", str(config)]
        daemon = Daemon(argv, lifetime=180, log_path=folder / "log")
        started.append(daemon)
        assert wait_for_port(address, port), daemon.log_tail()
        return folder / "client_key", config

    yield start
    for daemon in started:
        daemon.close()
