"""Who owns what: `[[owners]]` in posture.toml assigns an owner (a team or person, with an
optional contact) to assets by address, network, range or host-name pattern, optionally only
for some ports or rules. The first entry that matches wins, in file order: list the narrow
entries before the broad ones.

    [[owners]]
    owner = "team-db"
    contact = "db-oncall@example.org"
    match = ["10.20.5.0/24", "db-*.corp.example"]
    ports = [5432, 3306]              # optional
    rules = ["vulns.*", "tls.*"]      # optional, globs of rule ids
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from scanner.errors import ConfigError

UNASSIGNED = "unassigned"
_KEYS = {"owner", "contact", "match", "ports", "rules"}


@dataclass(frozen=True)
class OwnerRule:
    owner: str
    contact: str | None
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    names: tuple[str, ...]  # lower-case globs of host names
    ports: frozenset[int]
    rules: tuple[str, ...]

    def matches(self, host: str, hostname: str | None, port: int | None, rule_id: str) -> bool:
        if self.ports and port not in self.ports:
            return False
        if self.rules and not any(fnmatch.fnmatchcase(rule_id, g) for g in self.rules):
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if address is not None and any(address in n for n in self.networks):
            return True
        names = [n.lower() for n in (hostname, None if address else host) if n]
        return any(fnmatch.fnmatchcase(n, g) for n in names for g in self.names)


@dataclass(frozen=True)
class Owners:
    rules: tuple[OwnerRule, ...] = ()

    def owner_of(
        self, host: str, port: int | None = None, rule_id: str = "", hostname: str | None = None
    ) -> OwnerRule | None:
        return next((r for r in self.rules if r.matches(host, hostname, port, rule_id)), None)

    def name_of(
        self, host: str, port: int | None = None, rule_id: str = "", hostname: str | None = None
    ) -> str:
        found = self.owner_of(host, port, rule_id, hostname)
        return found.owner if found else UNASSIGNED

    @classmethod
    def parse(cls, raw: Any, where: str) -> Owners:
        if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
            raise ConfigError(f"{where}: owners are [[owners]] tables")
        return cls(tuple(_rule(t, f"{where}: [[owners]] #{i}") for i, t in enumerate(raw, 1)))


def _strings(value: Any, key: str, at: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(f"{at}: '{key}' must be a string or a list of strings")


def _rule(table: dict[str, Any], at: str) -> OwnerRule:
    unknown = set(table) - _KEYS
    if unknown:
        raise ConfigError(f"{at}: unknown key(s): {', '.join(sorted(unknown))}")
    owner = table.get("owner")
    if not isinstance(owner, str) or not owner.strip() or len(owner) > 100:
        raise ConfigError(f"{at}: 'owner' must be a name of 1 to 100 characters")
    contact = table.get("contact")
    if contact is not None and (not isinstance(contact, str) or len(contact) > 200):
        raise ConfigError(f"{at}: 'contact' must be a string of at most 200 characters")
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    names: list[str] = []
    for item in _strings(table.get("match", []), "match", at):
        networks_of = _networks(item)
        if networks_of is not None:
            networks.extend(networks_of)
        elif all(c.isalnum() or c in "-._*?" for c in item):
            names.append(item.lower())
        else:
            raise ConfigError(f"{at}: {item!r} is not an address, network, range or name pattern")
    if not networks and not names:
        raise ConfigError(f"{at}: 'match' names no address, network, range or host name")
    ports = table.get("ports", [])
    if not isinstance(ports, list) or not all(
        isinstance(p, int) and not isinstance(p, bool) and 1 <= p <= 65535 for p in ports
    ):
        raise ConfigError(f"{at}: 'ports' must be a list of port numbers")
    return OwnerRule(
        owner.strip(), contact, tuple(networks), tuple(names), frozenset(ports),
        _strings(table.get("rules", []), "rules", at),
    )  # fmt: skip


def _networks(item: str) -> Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network] | None:
    try:
        return [ipaddress.ip_network(item, strict=False)]
    except ValueError:
        pass
    first, sep, last = item.partition("-")
    if not sep:
        return None
    try:
        start, end = ipaddress.ip_address(first.strip()), ipaddress.ip_address(last.strip())
    except ValueError:
        return None
    if start.version != end.version or int(end) < int(start):
        return None
    return list(ipaddress.summarize_address_range(start, end))  # type: ignore[arg-type]
