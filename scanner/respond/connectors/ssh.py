"""The `ssh` connector: argument lists on a remote host through the OpenSSH client.

The local side is an argument list (no local shell); the remote side always goes through the
login shell, so every argument is quoted with `shlex.join` and reaches the target as exactly one
argument. BatchMode: a missing key or an unknown host key fails instead of prompting.
"""

from __future__ import annotations

import re
import shlex
import shutil
from collections.abc import Sequence
from pathlib import Path

from scanner.respond.connectors.interface import CommandResult, Connector
from scanner.respond.connectors.process import run_process
from scanner.respond.errors import ConnectorError

_USER = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
_HOST = re.compile(r"^[A-Za-z0-9_.:-]{1,253}$")
_NETNS = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
CONNECT_TIMEOUT = 10


class SshConnector(Connector):
    kind = "ssh"

    def __init__(
        self,
        host: str,
        *,
        user: str = "root",
        port: int = 22,
        identity: Path | None = None,
        known_hosts: Path | None = None,
        strict: bool = True,
        netns: str | None = None,
        identity_label: str | None = None,
    ) -> None:
        if not _HOST.match(host) or host.startswith("-"):
            raise ConnectorError(f"not a host name or address: {host[:80]!r}")
        if not _USER.match(user):
            raise ConnectorError(f"not a user name: {user[:40]!r}")
        if not 1 <= port <= 65535:
            raise ConnectorError(f"port {port} is out of range")
        if netns is not None and not _NETNS.match(netns):
            raise ConnectorError(f"not a network namespace name: {netns!r}")
        self.host, self.user, self.port = host, user, port
        self.identity, self.known_hosts, self.strict = identity, known_hosts, strict
        self.netns = netns
        # How plans show the key: a temporary key file's path would change every plan's hash.
        self.identity_label = identity_label

    def _ssh(self, *, shown: bool = False) -> list[str]:
        argv = ["ip", "netns", "exec", self.netns] if self.netns else []
        argv += [
            "ssh", "-T", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT}",
            "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=2",
            "-o", f"StrictHostKeyChecking={'yes' if self.strict else 'no'}",
            "-p", str(self.port),
        ]  # fmt: skip
        if self.known_hosts is not None:
            argv += ["-o", f"UserKnownHostsFile={self.known_hosts}"]
        elif not self.strict:
            argv += ["-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]
        if self.identity is not None:
            key = self.identity_label if shown and self.identity_label else str(self.identity)
            argv += ["-i", key, "-o", "IdentitiesOnly=yes"]
        # "--" ends ssh's options: the destination can never be read as one.
        return [*argv, "--", f"{self.user}@{self.host}"]

    def describe(self, argv: Sequence[str]) -> str:
        return shlex.join([*self._ssh(shown=True), shlex.join(argv)])

    def run(
        self, argv: Sequence[str], *, input: bytes | None = None, timeout: float = 30.0
    ) -> CommandResult:
        if not argv:
            raise ConnectorError("an empty command")
        if shutil.which("ssh") is None:
            raise ConnectorError("the OpenSSH client is missing: apt-get install -y openssh-client")
        code, out, err = run_process(
            [*self._ssh(), shlex.join(argv)], input=input, timeout=timeout, host=self.host,
            what=f"{argv[0]} over ssh",
        )  # fmt: skip
        if code == 255:
            lines = [ln for ln in err.decode("utf-8", "replace").splitlines() if ln.strip()]
            reason = lines[-1][:300] if lines else "exit 255"
            raise ConnectorError(f"{self.user}@{self.host}:{self.port}: ssh failed: {reason}")
        return CommandResult(tuple(argv), code, out, err)
