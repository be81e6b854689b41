"""The `local` connector: commands on this machine, or inside one of its network namespaces
(`ip netns exec NS ...`), as argument lists with a hard timeout."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
from collections.abc import Sequence

from scanner.respond.connectors.interface import OUTPUT_LIMIT, CommandResult, Connector
from scanner.respond.errors import ConnectorError

_NETNS = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class LocalConnector(Connector):
    kind = "local"

    def __init__(self, host: str = "localhost", *, netns: str | None = None) -> None:
        if netns is not None and not _NETNS.match(netns):
            raise ConnectorError(f"not a network namespace name: {netns!r}")
        self.host = host
        self.netns = netns

    def _argv(self, argv: Sequence[str]) -> list[str]:
        if not argv:
            raise ConnectorError("an empty command")
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        return [*prefix, *argv]

    def describe(self, argv: Sequence[str]) -> str:
        return shlex.join(self._argv(argv))

    def run(
        self, argv: Sequence[str], *, input: bytes | None = None, timeout: float = 30.0
    ) -> CommandResult:
        full = self._argv(argv)
        try:
            # A session of its own, so a timeout kills the command's children too.
            proc = subprocess.Popen(
                full,
                stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            raise ConnectorError(f"{self.host}: cannot start {argv[0]}: {exc.strerror}") from None
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise ConnectorError(
                f"{self.host}: {argv[0]} did not finish within {timeout:g}s and was killed"
            ) from None
        return CommandResult(tuple(argv), proc.returncode, out[:OUTPUT_LIMIT], err[:OUTPUT_LIMIT])
