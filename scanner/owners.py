"""Who owns what: `[[owners]]` in posture.toml assigns an owner (a team or person, with an
optional contact) to assets by address, network, range or host-name pattern, optionally only
for some ports or rules. The first entry that matches wins, in file order: list the narrow
entries before the broad ones. An owner a person gives one finding (`posture findings assign`,
kept in the store) outranks them all.

    [[owners]]
    owner = "team-db"
    contact = "db-oncall@example.org"
    match = ["10.20.5.0/24", "db-*.corp.example"]
    ports = [5432, 3306]              # optional
    rules = ["vulns.*", "tls.*"]      # optional, globs of rule ids
"""

from __future__ import annotations

import fnmatch
import functools
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from scanner.errors import ConfigError

if TYPE_CHECKING:
    from scanner.store.rows import OwnerAssignment

UNASSIGNED = "unassigned"
MAX_OWNER = 100  # characters of an owner's name
MAX_CONTACT = 200
_KEYS = {"owner", "contact", "match", "ports", "rules"}


def valid_owner(value: object, what: str) -> str:
    """An owner's name as given (stripped), or ConfigError naming `what` (a key, an option)."""
    name = value.strip() if isinstance(value, str) else ""
    if not name or len(name) > MAX_OWNER or not name.isprintable():
        raise ConfigError(f"{what} must be a name of 1 to {MAX_OWNER} printable characters")
    if name.casefold() == UNASSIGNED:
        raise ConfigError(f"{what}: {UNASSIGNED!r} is what no owner is shown as, not a name")
    return name


def valid_contact(value: object, what: str) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text or len(text) > MAX_CONTACT or not text.isprintable():
        raise ConfigError(f"{what} must be 1 to {MAX_CONTACT} printable characters")
    return text


def same_owner(a: str, b: str) -> bool:
    """Owner names compare without regard to case: `--owner Team-DB` finds "team-db"."""
    return a.casefold() == b.casefold()


class Owned(Protocol):
    """What owner resolution reads of a finding (a StoredFinding has it)."""

    @property
    def fingerprint(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def hostname(self) -> str | None: ...
    @property
    def port(self) -> int | None: ...
    @property
    def rule_id(self) -> str: ...


@dataclass(frozen=True)
class ResolvedOwner:
    """Who owns one finding, and why: "assigned" by a person, "config" ([[owners]] entry
    `entry`), or "none" (shown as unassigned)."""

    name: str
    contact: str | None = None
    source: str = "none"
    entry: int | None = None  # the [[owners]] entry that matched, counted from 1


@dataclass(frozen=True)
class OwnerRule:
    owner: str
    contact: str | None
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    names: tuple[str, ...]  # lower-case globs of host names
    ports: frozenset[int]
    rules: tuple[str, ...]
    entry: int = 0  # its place in posture.toml, counted from 1

    def matches(self, host: str, hostname: str | None, port: int | None, rule_id: str) -> bool:
        if self.ports and port not in self.ports:
            return False
        if self.rules and not any(fnmatch.fnmatchcase(rule_id, g) for g in self.rules):
            return False
        address = _address(host)
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

    def resolve(
        self, finding: Owned, assigned: Mapping[str, OwnerAssignment] | None = None
    ) -> ResolvedOwner:
        """A person's assignment (from `Store.owner_assignments()`) first, then the first
        [[owners]] entry that matches, else unassigned."""
        given = (assigned or {}).get(finding.fingerprint)
        if given is not None and given.owner:
            return ResolvedOwner(given.owner, given.contact, "assigned")
        rule = self.owner_of(finding.host, finding.port, finding.rule_id, finding.hostname)
        if rule is None:
            return ResolvedOwner(UNASSIGNED)
        return ResolvedOwner(rule.owner, rule.contact, "config", rule.entry)

    def names(
        self, findings: Iterable[Owned], assigned: Mapping[str, OwnerAssignment] | None = None
    ) -> dict[str, str]:
        """Fingerprint -> owner name ("unassigned" when nobody owns it)."""
        if not self.rules and not assigned:  # no owners at all: no per-finding work
            return {f.fingerprint: UNASSIGNED for f in findings}
        return {f.fingerprint: self.resolve(f, assigned).name for f in findings}

    @classmethod
    def parse(cls, raw: Any, where: str) -> Owners:
        if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
            raise ConfigError(f"{where}: owners are [[owners]] tables")
        return cls(tuple(_rule(t, f"{where}: [[owners]] #{i}", i) for i, t in enumerate(raw, 1)))


@functools.lru_cache(maxsize=4096)
def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    # cached: a report resolves the owner of every finding, and findings share hosts
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _strings(value: Any, key: str, at: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(f"{at}: '{key}' must be a string or a list of strings")


def _rule(table: dict[str, Any], at: str, entry: int) -> OwnerRule:
    unknown = set(table) - _KEYS
    if unknown:
        raise ConfigError(f"{at}: unknown key(s): {', '.join(sorted(unknown))}")
    owner = valid_owner(table.get("owner"), f"{at}: 'owner'")
    contact = table.get("contact")
    if contact is not None:
        contact = valid_contact(contact, f"{at}: 'contact'")
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
        owner, contact, tuple(networks), tuple(names), frozenset(ports),
        _strings(table.get("rules", []), "rules", at), entry,
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
