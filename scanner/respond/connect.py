"""Targets of a playbook turned into connectors: the addresses each target name stands for, and
a connector per address (the ssh key written to a 0600 file in the run's folder while it runs)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scanner.respond.connectors.interface import Connector
from scanner.respond.connectors.local import LocalConnector
from scanner.respond.errors import PlaybookError
from scanner.respond.schema import LOCAL, TargetSpec
from scanner.respond.secrets import Secret
from scanner.respond.templating import render_text

MAX_ADDRESSES = 4096


@dataclass(frozen=True)
class TargetPlan:
    name: str
    connector: str
    addresses: tuple[str, ...]
    user: str
    port: int
    netns: str | None
    key: str | None
    known_hosts: str | None = None

    def shown(self) -> dict[str, Any]:
        return {
            "connector": self.connector,
            "addresses": list(self.addresses),
            "user": self.user if self.connector == "ssh" else None,
            "port": self.port if self.connector == "ssh" else None,
            "netns": self.netns,
            "key": self.key,
            "known_hosts": self.known_hosts,
        }


def resolve_targets(
    targets: Mapping[str, TargetSpec], context: Mapping[str, Any]
) -> dict[str, TargetPlan]:
    """Every target's addresses, rendered from the inputs (a list fans a step out)."""
    plans = {LOCAL: TargetPlan(LOCAL, "local", ("localhost",), "", 0, None, None)}
    for name, spec in targets.items():
        try:
            value = render_text(spec.address, context)
            port = int(render_text(str(spec.port), context))
            user = str(render_text(spec.user, context))
            known_hosts = (
                str(render_text(spec.known_hosts, context)).strip() or None
                if spec.known_hosts
                else None
            )
        except Exception as exc:  # a template error or a bad port: the playbook's fault
            raise PlaybookError(f"target '{name}': {exc}") from None
        addresses = value if isinstance(value, list) else [value]
        addresses = [str(a).strip() for a in addresses if str(a).strip()]
        if not addresses:
            raise PlaybookError(f"target '{name}' has no address")
        if len(addresses) > MAX_ADDRESSES:
            raise PlaybookError(
                f"target '{name}' has {len(addresses)} addresses; at most {MAX_ADDRESSES}"
            )
        if not 1 <= port <= 65535:
            raise PlaybookError(f"target '{name}': port {port} is out of range")
        plans[name] = TargetPlan(
            name, spec.connector, tuple(dict.fromkeys(addresses)), user, port, spec.netns,
            spec.key, known_hosts,
        )  # fmt: skip
    return plans


class Connectors:
    """Builds and caches one connector per (target, address) for a run."""

    def __init__(
        self,
        specs: Mapping[str, TargetSpec],
        plans: Mapping[str, TargetPlan],
        credentials: Mapping[str, Secret],
        workdir: Path,
    ) -> None:
        self._specs, self._plans, self._credentials = specs, plans, credentials
        self._workdir = workdir
        self._cache: dict[tuple[str, str], Connector] = {}
        self._keyfiles: list[Path] = []

    def get(self, target: str, address: str) -> Connector:
        if (target, address) not in self._cache:
            self._cache[target, address] = self._make(target, address)
        return self._cache[target, address]

    def _make(self, target: str, address: str) -> Connector:
        plan = self._plans[target]
        if plan.connector == "local":
            return LocalConnector(address, netns=plan.netns)
        from scanner.respond.connectors.ssh import SshConnector

        spec = self._specs[target]
        identity = None
        if plan.key is not None:
            identity = self._keyfile(plan.key)
        return SshConnector(
            address,
            user=plan.user,
            port=plan.port,
            identity=identity,
            known_hosts=Path(plan.known_hosts).expanduser() if plan.known_hosts else None,
            strict=spec.strict_host_keys,
            netns=plan.netns,
            identity_label=f"<key {plan.key}>" if plan.key else None,
        )

    def _keyfile(self, name: str) -> Path:
        path = self._workdir / f".key-{name}"
        if not path.exists():
            self._workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                key = self._credentials[name].reveal()
                handle.write(key if key.endswith("\n") else key + "\n")
            self._keyfiles.append(path)
        return path

    def close(self) -> None:
        """Removes the key files written for ssh (overwritten first)."""
        for path in self._keyfiles:
            try:
                size = path.stat().st_size
                with open(path, "r+b") as handle:
                    handle.write(b"\0" * size)
                path.unlink()
            except OSError:
                pass
        self._keyfiles.clear()
