"""A real sshd on one loopback address for the response tests: its own config, host key and
authorized_keys folder under a temporary directory, letting in the unprivileged `nobody` account
by key (its shell refuses commands, but the key's acceptance is what rotation proves). The keys
folder belongs to nobody, as a user's ~/.ssh does, so posture must act as its owner there."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"
ADDRESS = "127.0.103.2"
USER = "nobody"


@dataclass(frozen=True)
class Sshd:
    address: str
    port: int
    folder: Path
    user: str = USER

    @property
    def known_hosts(self) -> Path:
        return self.folder / "known_hosts"

    @property
    def keys_folder(self) -> Path:
        return self.folder / "keys"

    @property
    def authorized_keys(self) -> Path:
        return self.keys_folder / self.user

    @property
    def log(self) -> str:
        return (self.folder / "sshd.log").read_text(errors="replace")

    def keygen(self, name: str) -> Path:
        """A fresh ed25519 key pair made by OpenSSH's own ssh-keygen (not by the code tested)."""
        path = self.folder / "client" / name
        path.parent.mkdir(mode=0o700, exist_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f",
                        str(path)], check=True, timeout=30)  # fmt: skip
        return path

    def logs_in(self, key: Path) -> bool:
        """Whether sshd accepts `key` for the user (exit 255 with "Permission denied": not)."""
        done = subprocess.run(
            ["ssh", "-T", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
             "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes",
             "-o", "ConnectTimeout=10", "-i", str(key), "-p", str(self.port), "--",
             f"{self.user}@{self.address}", "true"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        if done.returncode == 255 and "Permission denied" not in done.stderr:
            raise RuntimeError(f"ssh failed: {done.stderr.strip()[-300:]}")
        return done.returncode != 255


def unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root (sshd, and acting as the keys folder's owner)"
    if not Path(SSHD).exists():
        return "needs sshd: apt-get install -y openssh-server"
    for tool in ("ssh", "ssh-keygen", "setpriv"):
        if shutil.which(tool) is None:
            return f"needs {tool}: apt-get install -y openssh-client util-linux"
    try:
        pwd.getpwnam(USER)
    except KeyError:
        return f"needs the {USER} account"
    return None


def _free_port(address: str) -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def sshd_server(folder: Path, address: str = ADDRESS) -> Iterator[Sshd]:
    """sshd on address:a free port, stopped (and its folder removed by the caller) on exit."""
    hostkey = folder / "ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(hostkey)],
                   check=True, timeout=30)  # fmt: skip
    port = _free_port(address)
    server = Sshd(address, port, folder)
    server.known_hosts.write_text(f"[{address}]:{port} {hostkey.with_suffix('.pub').read_text()}")
    server.keys_folder.mkdir(mode=0o700)
    server.authorized_keys.touch(mode=0o600)
    user = pwd.getpwnam(USER)
    for path in (server.keys_folder, server.authorized_keys):
        os.chown(path, user.pw_uid, user.pw_gid)
    config = folder / "sshd_config"
    config.write_text(
        f"ListenAddress {address}\nPort {port}\nHostKey {hostkey}\nPidFile {folder}/sshd.pid\n"
        f"AuthorizedKeysFile {server.keys_folder}/%u\nPermitRootLogin no\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        # The keys folder is under root's temporary folder, which StrictModes would refuse.
        "StrictModes no\nLogLevel VERBOSE\nMaxStartups 50:30:100\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation folder sshd insists on
    with open(folder / "sshd.log", "wb") as log:
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as probe:
                probe.settimeout(1)
                if probe.connect_ex((address, port)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sshd did not start: {server.log[-500:]}")
            time.sleep(0.1)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module", name="sshd")
def sshd_fixture() -> Iterator[Sshd]:
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    # Not under pytest's temporary folders: they are private to root, and nobody must reach
    # its keys folder through this one.
    with tempfile.TemporaryDirectory(prefix="posture-sshd-") as tmp:
        os.chmod(tmp, 0o711)  # noqa: S103 - traversable by nobody, not listable
        with sshd_server(Path(tmp)) as server:
            yield server
