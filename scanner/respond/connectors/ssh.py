"""The `ssh` connector: argument lists on a remote host through the OpenSSH client.

The local side is an argument list (no local shell); the remote side always goes through the
login shell, so every argument is quoted with `shlex.join` and reaches the target as exactly one
argument. BatchMode: a missing key or an unknown host key fails instead of prompting. Exit 255
is ssh's own failure (a remote command that exits 255 reads the same: ssh cannot tell them apart).
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
from scanner.ssh_client import failure_reason, ssh_argv, valid_host, valid_user

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
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        if not valid_host(host):
            raise ConnectorError(f"not a host name or address: {host[:80]!r}")
        if not valid_user(user):
            raise ConnectorError(f"not a user name: {user[:40]!r}")
        if not 1 <= port <= 65535:
            raise ConnectorError(f"port {port} is out of range")
        if netns is not None and not _NETNS.match(netns):
            raise ConnectorError(f"not a network namespace name: {netns!r}")
        self.host, self.user, self.port = host, user, port
        self.identity, self.known_hosts, self.strict = identity, known_hosts, strict
        self.netns = netns
        self.connect_timeout = connect_timeout
        # How plans show the key: a temporary key file's path would change every plan's hash.
        self.identity_label = identity_label

    def _ssh(self, *, shown: bool = False) -> list[str]:
        # The management namespace's ssh: the connection leaves from that namespace's address.
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        identity = self.identity_label if shown and self.identity_label else self.identity
        return prefix + ssh_argv(
            self.user,
            self.host,
            port=self.port,
            identity=identity,
            known_hosts=self.known_hosts,
            host_keys="yes" if self.strict else "no",
            connect_timeout=self.connect_timeout,
        )

    def describe(self, argv: Sequence[str]) -> str:
        return shlex.join([*self._ssh(shown=True), shlex.join(argv)])

    def run(
        self, argv: Sequence[str], *, input: bytes | None = None, timeout: float = 30.0
    ) -> CommandResult:
        if not argv:
            raise ConnectorError("an empty command")
        if shutil.which("ssh") is None:
            raise ConnectorError("the OpenSSH client is missing: apt-get install -y openssh-client")
        # The remote login shell parses the command line: shlex.join keeps each item one word.
        code, out, err = run_process(
            [*self._ssh(), shlex.join(argv)], input=input, timeout=timeout, host=self.host,
            what=f"{argv[0]} over ssh",
        )  # fmt: skip
        if code == 255:
            raise ConnectorError(
                f"{self.user}@{self.host}:{self.port}: ssh failed: {failure_reason(err)} "
                "(check the address, the key, and the host key in known_hosts)"
            )
        return CommandResult(tuple(argv), code, out, err)
