"""The `local` connector: commands on this machine, or inside one of its network namespaces
(`ip netns exec NS ...`), as argument lists with a hard timeout."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

from scanner.respond.connectors.interface import CommandResult, Connector
from scanner.respond.connectors.process import run_process
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
        code, out, err = run_process(
            self._argv(argv), input=input, timeout=timeout, host=self.host, what=argv[0]
        )
        return CommandResult(tuple(argv), code, out, err)
