"""posture.toml: settings shared by every command (database, scope, packs, scan defaults).

Looked up as `--config PATH`, else `./posture.toml` when present. Unknown keys are errors, so a
typo never silently widens a scope.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scanner.errors import ConfigError

if TYPE_CHECKING:
    from scanner.jobs import Job
    from scanner.owners import Owners
    from scanner.store.sla import SlaPolicy

DEFAULT_CONFIG = Path("posture.toml")
DEFAULT_DB = Path("posture.db")

_TOP_KEYS = {
    "db",
    "scope",
    "exclude",
    "packs",
    "scan",
    "vulndb",
    "vulndb_max_age_days",
    "sla",
    "jobs",
    "owners",
}
_SCAN_KEYS = {
    "ports",
    "concurrency",
    "timeout",
    "chunk_size",
    "tls",
    "tls_connections",
    "tls_delay",
    "cert_warn_days",
    "ca_file",
}


@dataclass(frozen=True)
class ScanDefaults:
    ports: str = "top1000"
    concurrency: int = 4
    timeout: str = "5m"  # per-host timeout, nmap --host-timeout syntax
    chunk_size: int = 16
    tls: bool = True  # assess TLS ports found by the scan
    tls_connections: int = 5  # TLS connections at once per host
    tls_delay: float = 0.0  # seconds between TLS connections to one host
    cert_warn_days: int = 30
    ca_file: Path | None = None  # trust anchors instead of the system store


@dataclass(frozen=True)
class Config:
    path: Path | None = None
    db: Path = DEFAULT_DB
    scope: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    packs: tuple[Path, ...] = ()
    scan: ScanDefaults = field(default_factory=ScanDefaults)
    vulndb: Path | None = None  # the advisory database (default: ~/.local/share/posture)
    vulndb_max_age_days: float = 7.0  # `posture vulndb status` warns past this age
    sla: SlaPolicy | None = None  # [sla] days per severity; None: the defaults (7/30/90/180)
    jobs: Mapping[str, Job] = field(default_factory=dict)  # [jobs.NAME]: `posture job`
    owners: Owners = field(default_factory=lambda: _no_owners())  # [[owners]]


def _no_owners() -> Owners:
    from scanner.owners import Owners

    return Owners()


def _str_list(value: Any, key: str, path: Path) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(f"{path}: '{key}' must be a string or a list of strings")


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"'{key}' must be true or false")
    return value


def load_config(path: Path | None = None) -> Config:
    """Read the config file; a missing default file means defaults, a missing named file is an
    error."""
    if path is None:
        if not DEFAULT_CONFIG.is_file():
            return Config()
        path = DEFAULT_CONFIG
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    unknown = set(raw) - _TOP_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown key(s): {', '.join(sorted(unknown))}")
    base = path.parent
    scan_raw = raw.get("scan", {})
    if not isinstance(scan_raw, dict):
        raise ConfigError(f"{path}: [scan] must be a table")
    unknown_scan = set(scan_raw) - _SCAN_KEYS
    if unknown_scan:
        raise ConfigError(f"{path}: unknown key(s) in [scan]: {', '.join(sorted(unknown_scan))}")
    defaults = ScanDefaults()
    try:
        scan = ScanDefaults(
            ports=str(scan_raw.get("ports", defaults.ports)),
            concurrency=int(scan_raw.get("concurrency", defaults.concurrency)),
            timeout=str(scan_raw.get("timeout", defaults.timeout)),
            chunk_size=int(scan_raw.get("chunk_size", defaults.chunk_size)),
            tls=_bool(scan_raw.get("tls", defaults.tls), "tls"),
            tls_connections=int(scan_raw.get("tls_connections", defaults.tls_connections)),
            tls_delay=float(scan_raw.get("tls_delay", defaults.tls_delay)),
            cert_warn_days=int(scan_raw.get("cert_warn_days", defaults.cert_warn_days)),
            ca_file=base / str(scan_raw["ca_file"]) if "ca_file" in scan_raw else None,
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: [scan]: {exc}") from None
    db = raw.get("db")
    if db is not None and not isinstance(db, str):
        raise ConfigError(f"{path}: 'db' must be a string")
    vulndb = raw.get("vulndb")
    if vulndb is not None and not isinstance(vulndb, str):
        raise ConfigError(f"{path}: 'vulndb' must be a string")
    max_age = raw.get("vulndb_max_age_days", 7.0)
    if isinstance(max_age, bool) or not isinstance(max_age, int | float) or max_age <= 0:
        raise ConfigError(f"{path}: 'vulndb_max_age_days' must be a positive number")

    sla = None
    if "sla" in raw:
        from scanner.store.sla import SlaPolicy  # only configs that set SLAs pay for it

        sla = SlaPolicy.parse(raw["sla"], str(path))

    jobs: dict[str, Job] = {}
    if "jobs" in raw:
        from scanner.jobs import parse_jobs

        jobs = parse_jobs(raw["jobs"], base, str(path))

    owners = _no_owners()
    if "owners" in raw:
        from scanner.owners import Owners

        owners = Owners.parse(raw["owners"], str(path))

    def relative(items: tuple[str, ...]) -> tuple[str, ...]:
        # "@file" entries are relative to the config file, like every path in it
        return tuple(f"@{base / i[1:]}" if i.startswith("@") else i for i in items)

    return Config(
        path=path,
        db=(base / db) if db else DEFAULT_DB,
        scope=relative(_str_list(raw.get("scope", []), "scope", path)),
        exclude=relative(_str_list(raw.get("exclude", []), "exclude", path)),
        packs=tuple(base / p for p in _str_list(raw.get("packs", []), "packs", path)),
        scan=scan,
        vulndb=(base / vulndb) if vulndb else None,
        vulndb_max_age_days=float(max_age),
        sla=sla,
        jobs=jobs,
        owners=owners,
    )
