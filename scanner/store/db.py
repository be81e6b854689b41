"""The findings store: one SQLite file (WAL) holding scans, hosts, services and findings.

Every write is one `BEGIN IMMEDIATE` transaction, so there is one writer at a time across
processes and a killed scan leaves every chunk it finished and nothing of the one it was in.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import sqlite_utils

from scanner.errors import ConfigError
from scanner.model import (
    Finding,
    FindingStatus,
    Host,
    HostState,
    ScanRecord,
    ScanStatus,
    Severity,
    StoredFinding,
    finding_sort_key,
    host_sort_key,
)
from scanner.probes.inventory import Inventory
from scanner.probes.tls.export import endpoint_from_dict
from scanner.probes.tls.model import TlsEndpoint
from scanner.store.lifecycle import (
    PEOPLE_STATUSES,
    ChunkSummary,
    LifecycleSummary,
    ScanCoverage,
    acceptance_expired,
    on_sighting,
)
from scanner.store.portset import PortSet
from scanner.store.rows import (
    FindingEvent,
    OwnerAssignment,
    event_from_row,
    finding_row,
    inventory_from_row,
    inventory_row,
    owner_assignment_from_row,
    scan_from_row,
    service_from_row,
    service_row,
    stored_finding_from_row,
    tls_row,
    to_json,
)
from scanner.store.schema import migrate
from scanner.store.timestamps import Clock, iso_utc, system_clock, utc_date

DEFAULT_BUSY_TIMEOUT = 30.0  # seconds a writer waits for another one before giving up
MIN_PREFIX = 8  # hex digits of a fingerprint that name it, like a short git hash
_ACTIVE = json.dumps([FindingStatus.OPEN.value, FindingStatus.REOPENED.value])
_SCAN_ACTOR = "scan"
_EXPIRY_ACTOR = "posture"  # the store itself, when an acceptance runs out
_IN_BATCH = 500  # addresses looked up per query: bounded work and memory per statement
MAX_OWNER_NOTE = 1000  # characters of the note that goes with an owner assignment

Undetermined = tuple[str, str, int, str]
"""(address, proto, port, rule_id): a rule whose active check applied there but got no answer."""


def _severities_at_least(severity: Severity) -> str:
    """The severities at least as bad as `severity`, as JSON for `IN (SELECT value FROM
    json_each(?))`: lists are bound as one parameter, never formatted into SQL."""
    return json.dumps([s.value for s in Severity if s.at_least(severity)])


def _is_locked(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


def _undetermined_rows(
    scan_id: int, hosts: Sequence[Host], undetermined: Collection[Undetermined]
) -> list[dict[str, Any]]:
    """Rows for `scan_undetermined`, checked before anything is written."""
    addresses = {h.address for h in hosts}
    rows: dict[tuple[str, str, int, str], dict[str, Any]] = {}
    for address, proto, port, rule_id in undetermined:
        if address not in addresses:
            raise ValueError(f"undetermined {rule_id} on {address}: that host is not in the chunk")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"undetermined {rule_id} on {address}: bad port {port!r}")
        key = (address, proto.lower(), port, rule_id)
        rows[key] = {
            "scan_id": scan_id,
            "address": address,
            "proto": key[1],
            "port": port,
            "rule_id": rule_id,
        }
    return list(rows.values())


class Store:
    """The findings database. Creates and migrates the file on open (unless `create` is False)."""

    def __init__(
        self,
        path: Path | str,
        *,
        clock: Clock | None = None,
        create: bool = True,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    ) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise ConfigError(f"no database at {self.path}; run `posture scan` first")
        self._clock = clock or system_clock
        self._busy_timeout = busy_timeout
        # The scan runner may call from its worker threads: one lock keeps transactions whole.
        self._lock = threading.RLock()
        try:
            conn = sqlite3.connect(
                str(self.path),
                timeout=busy_timeout,
                isolation_level=None,  # transactions are begun explicitly, never implicitly
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise ConfigError(
                f"cannot open database {self.path}: {exc}; check the path and its permissions"
            ) from None
        try:
            self.db = sqlite_utils.Database(conn, execute_plugins=False)
            self.db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000):d}")
            self.db.execute("PRAGMA foreign_keys = ON")
            # Migrate first: it refuses a file that is not ours before anything is written to it.
            migrate(self.db, str(self.path))
            self.db.enable_wal()
        except sqlite3.OperationalError as exc:
            conn.close()
            if _is_locked(exc):
                raise self._locked() from None
            raise ConfigError(
                f"cannot use database {self.path}: {exc}; check the file and its permissions"
            ) from None
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise ConfigError(
                f"{self.path} is not a usable posture database ({exc}); "
                "give another --db or move the file away"
            ) from None
        except BaseException:
            conn.close()
            raise

    # -- plumbing ------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self.db.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[None]:
        """One write transaction holding the database's writer lock until it commits."""
        with self._lock:
            try:
                self.db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if _is_locked(exc):
                    raise self._locked() from None
                raise
            try:
                yield
                self.db.execute("COMMIT")
            except BaseException:
                if self.db.conn.in_transaction:
                    self.db.execute("ROLLBACK")
                raise

    def _locked(self) -> ConfigError:
        return ConfigError(
            f"{self.path} stayed locked by another posture process for "
            f"{self._busy_timeout:g} s; wait for it to finish and retry"
        )

    def _now(self) -> datetime:
        return self._clock()

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return list(self.db.query(sql, list(params)))

    def _scan_row(self, scan_id: int) -> dict[str, Any]:
        rows = self._rows("SELECT * FROM scans WHERE id = ?", (scan_id,))
        if not rows:
            raise ConfigError(
                f"no scan {scan_id} in {self.path}; "
                f"list scans with `posture scans --db {self.path}`"
            )
        return rows[0]

    # -- scans ---------------------------------------------------------------------------------

    def create_scan(
        self,
        *,
        targets: Sequence[str],
        scope: Sequence[str],
        excludes: Sequence[str],
        packs: Sequence[str],
        rules: Sequence[str],
        options: Mapping[str, Any],
        hosts_total: int,
    ) -> int:
        """Record a new running scan and return its id."""
        if hosts_total < 0:
            raise ValueError(f"hosts_total must not be negative, got {hosts_total}")
        row = {
            "started": iso_utc(self._now()),
            "status": ScanStatus.RUNNING.value,
            "targets": to_json(list(targets)),
            "scope": to_json(list(scope)),
            "excludes": to_json(list(excludes)),
            "packs": to_json(list(packs)),
            "rules": to_json(sorted(set(rules))),
            "options": to_json(dict(options)),
            "ports_scanned": to_json({}),
            "hosts_total": hosts_total,
            "hosts_done": 0,
        }
        with self._write():
            scan_id = self.db.table("scans").insert(row).last_pk
        assert isinstance(scan_id, int)  # an INTEGER PRIMARY KEY is the rowid
        return scan_id

    def get_scan(self, scan_id: int) -> ScanRecord:
        with self._lock:
            return scan_from_row(self._scan_row(scan_id))

    def latest_scan(self, *, status: ScanStatus | None = None) -> ScanRecord | None:
        with self._lock:
            if status is None:
                rows = self._rows("SELECT * FROM scans ORDER BY id DESC LIMIT 1")
            else:
                rows = self._rows(
                    "SELECT * FROM scans WHERE status = ? ORDER BY id DESC LIMIT 1",
                    (status.value,),
                )
        return scan_from_row(rows[0]) if rows else None

    def scan_rules(self, scan_id: int) -> frozenset[str]:
        """The ids of the rules a scan evaluated: what it could find, and close."""
        with self._lock:
            row = self._scan_row(scan_id)
        return frozenset(json.loads(row["rules"] or "[]"))

    def list_scans(self) -> list[ScanRecord]:
        with self._lock:
            return [scan_from_row(r) for r in self._rows("SELECT * FROM scans ORDER BY id")]

    @staticmethod
    def _coverage(row: Mapping[str, Any]) -> ScanCoverage:
        ports = json.loads(row["ports_scanned"] or "{}")
        return ScanCoverage(
            rules=frozenset(json.loads(row["rules"] or "[]")),
            ports={proto: PortSet.parse(spec) for proto, spec in ports.items()},
        )

    def done_hosts(self, scan_id: int) -> set[str]:
        """Every address this scan has already stored, whatever its state.

        All of them in memory: for a large resume, filter chunk by chunk with `is_done`.
        """
        with self._lock:
            self._scan_row(scan_id)
            rows = self._rows("SELECT address FROM scan_hosts WHERE scan_id = ?", (scan_id,))
        return {r["address"] for r in rows}

    def is_done(self, scan_id: int, addresses: Sequence[str]) -> set[str]:
        """Those of `addresses` this scan has already stored (whatever their state).

        Resume asks this for each chunk of targets, so memory stays bounded by the chunk.
        """
        unique = list(dict.fromkeys(addresses))
        done: set[str] = set()
        with self._lock:
            self._scan_row(scan_id)
            for start in range(0, len(unique), _IN_BATCH):
                batch = json.dumps(unique[start : start + _IN_BATCH])
                rows = self._rows(
                    "SELECT address FROM scan_hosts WHERE scan_id = ?"
                    " AND address IN (SELECT value FROM json_each(?))",
                    (scan_id, batch),
                )
                done.update(r["address"] for r in rows)
        return done

    def scan_hosts(self, scan_id: int) -> list[Host]:
        """Every host a scan stored, down and timed-out ones included, with its services."""
        with self._lock:
            self._scan_row(scan_id)
            host_rows = self._rows("SELECT * FROM scan_hosts WHERE scan_id = ?", (scan_id,))
            service_rows = self._rows(
                "SELECT * FROM services WHERE scan_id = ? ORDER BY proto, port", (scan_id,)
            )
        services: dict[str, list[dict[str, Any]]] = {}
        for row in service_rows:
            services.setdefault(row["address"], []).append(row)
        hosts = [
            Host(
                address=row["address"],
                state=HostState(row["state"]),
                hostname=row["hostname"],
                services=tuple(service_from_row(s) for s in services.get(row["address"], [])),
                reason=row["reason"],
            )
            for row in host_rows
        ]
        return sorted(hosts, key=lambda h: host_sort_key(h.address))

    def inventories(self, scan_id: int) -> dict[str, Inventory]:
        """The authenticated inventories a scan stored, by host address."""
        with self._lock:
            self._scan_row(scan_id)
            rows = self._rows(
                "SELECT * FROM host_inventories WHERE scan_id = ? ORDER BY address", (scan_id,)
            )
        return {row["address"]: inventory_from_row(row) for row in rows}

    def tls_endpoints(self, scan_id: int) -> list[TlsEndpoint]:
        """The TLS assessments a scan stored, in address and port order."""
        with self._lock:
            self._scan_row(scan_id)
            rows = self._rows("SELECT data FROM tls_endpoints WHERE scan_id = ?", (scan_id,))
        found = [endpoint_from_dict(json.loads(row["data"])) for row in rows]
        return sorted(found, key=lambda e: (host_sort_key(e.host), e.port))

    def record_chunk(
        self,
        scan_id: int,
        hosts: Sequence[Host],
        findings: Sequence[Finding],
        ports_scanned: Mapping[str, str],
        undetermined: Collection[Undetermined] = (),
    ) -> ChunkSummary:
        """Store one finished chunk of a scan in one transaction: all of it or none of it.

        `undetermined` lists (address, proto, port, rule_id) where the rule's active check
        applied but got no answer: closing the scan leaves a finding there as it was instead of
        marking it fixed. Each address must be one of `hosts`; a host stored again (a retried
        chunk) replaces what was stored of it, its undetermined rules included.
        Recording into an interrupted or failed scan resumes it (status running again).
        """
        scanned = {proto.lower(): PortSet.parse(spec) for proto, spec in ports_scanned.items()}
        undecided = _undetermined_rows(scan_id, hosts, undetermined)
        # One rule engine pass can report a finding twice; the last report wins.
        unique = {f.fingerprint: f for f in findings}
        moment = self._now()
        now, today = iso_utc(moment), utc_date(moment)
        outcomes: Counter[str] = Counter()
        with self._write():
            scan = self._scan_row(scan_id)
            if scan["status"] == ScanStatus.COMPLETED.value:
                raise ConfigError(
                    f"scan {scan_id} in {self.path} is already complete; start a new scan"
                )
            for host in hosts:
                self._record_host(scan_id, host, now)
            self.db.table("scan_undetermined").insert_all(undecided)
            for finding in unique.values():
                outcomes[self._record_sighting(scan_id, finding, now, today)] += 1
            coverage = self._coverage(scan)
            merged = dict(coverage.ports)
            for proto, ports in scanned.items():
                merged[proto] = merged.get(proto, PortSet()) | ports
            self.db.execute(
                "UPDATE scans SET ports_scanned = ?,"
                " hosts_done = (SELECT count(*) FROM scan_hosts WHERE scan_id = ?)"
                " WHERE id = ?",
                (to_json({p: str(s) for p, s in merged.items()}), scan_id, scan_id),
            )
            if scan["status"] != ScanStatus.RUNNING.value:
                self.db.execute(
                    "UPDATE scans SET status = ?, finished = NULL, error = NULL WHERE id = ?",
                    (ScanStatus.RUNNING.value, scan_id),
                )
        return ChunkSummary(
            hosts=len(hosts),
            new=outcomes["new"],
            reopened=outcomes["reopened"],
            expired=outcomes["expired"],
            seen=outcomes["seen"],
        )

    def _record_host(self, scan_id: int, host: Host, now: str) -> None:
        self.db.execute(
            "INSERT INTO hosts (address, hostname, first_seen, last_seen, last_state)"
            " VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (address) DO UPDATE SET"
            " hostname = coalesce(excluded.hostname, hostname),"
            " last_seen = excluded.last_seen, last_state = excluded.last_state",
            (host.address, host.hostname, now, now, host.state.value),
        )
        self.db.table("scan_hosts").upsert(
            {
                "scan_id": scan_id,
                "address": host.address,
                "hostname": host.hostname,
                "state": host.state.value,
                "reason": host.reason,
                "finished": now,
            },
            pk=("scan_id", "address"),
        )
        # A host stored again (a retried chunk) replaces what was stored of it before.
        for table in ("services", "scan_undetermined", "tls_endpoints", "host_inventories"):
            self.db.execute(
                f"DELETE FROM {table} WHERE scan_id = ? AND address = ?",  # noqa: S608
                (scan_id, host.address),
            )
        self.db.table("services").upsert_all(
            [service_row(scan_id, host.address, s) for s in host.services],
            pk=("scan_id", "address", "proto", "port"),
        )
        self.db.table("tls_endpoints").upsert_all(
            [tls_row(scan_id, host.address, s) for s in host.services if s.tls is not None],
            pk=("scan_id", "address", "port"),
        )
        if host.inventory is not None:
            self.db.table("host_inventories").insert(
                inventory_row(scan_id, host.address, host.inventory)
            )

    def _record_sighting(self, scan_id: int, finding: Finding, now: str, today: date) -> str:
        values = finding_row(finding)
        fp = values["fingerprint"]
        rows = self._rows("SELECT * FROM findings WHERE fingerprint = ?", (fp,))
        current = rows[0] if rows else None
        status = FindingStatus(current["status"]) if current else None
        expires = (
            date.fromisoformat(current["accept_expires"])
            if current and current["accept_expires"]
            else None
        )
        sighting = on_sighting(status, expires, today, scan_id)
        if current is None:
            self.db.table("findings").insert(
                {
                    **values,
                    "status": sighting.status.value,
                    "first_seen": now,
                    "last_seen": now,
                    "last_scan_id": scan_id,
                }
            )
        else:
            changes = {k: v for k, v in values.items() if k != "fingerprint"}
            changes.update(
                status=sighting.status.value,
                last_seen=now,
                last_scan_id=max(scan_id, current["last_scan_id"]),
            )
            if sighting.outcome == "reopened":
                changes["fixed_at"] = None
            if sighting.outcome == "expired":
                changes.update(accept_expires=None, status_note=None, status_by=None)
            self._update_finding(fp, changes)
        self.db.execute(
            "INSERT OR IGNORE INTO observations (scan_id, fingerprint, seen_at) VALUES (?, ?, ?)",
            (scan_id, fp, now),
        )
        if sighting.note is not None:
            self._event(fp, status, sighting.status, now, sighting.note, _SCAN_ACTOR, scan_id)
        return sighting.outcome

    def _update_finding(self, fingerprint: str, changes: Mapping[str, Any]) -> None:
        # Column names come from this module, never from input.
        assignments = ", ".join(f"{column} = ?" for column in changes)
        self.db.execute(
            f"UPDATE findings SET {assignments} WHERE fingerprint = ?",  # noqa: S608
            [*changes.values(), fingerprint],
        )

    def _event(
        self,
        fingerprint: str,
        from_status: FindingStatus | None,
        to_status: FindingStatus,
        at: str,
        note: str | None,
        actor: str | None,
        scan_id: int | None = None,
    ) -> None:
        self.db.table("finding_events").insert(
            {
                "fingerprint": fingerprint,
                "scan_id": scan_id,
                "at": at,
                "from_status": from_status.value if from_status else None,
                "to_status": to_status.value,
                "note": note,
                "actor": actor,
            }
        )

    def finish_scan(
        self, scan_id: int, status: ScanStatus, error: str | None = None
    ) -> LifecycleSummary:
        """Close a scan. Only a COMPLETED scan marks fixed what it covered and did not see.

        A finding is not marked fixed where this scan recorded its rule undetermined (the active
        check got no answer). Expired risk acceptances are opened again first.
        """
        if status is ScanStatus.RUNNING:
            raise ValueError("a scan is finished as completed, failed or interrupted")
        moment = self._now()
        now = iso_utc(moment)
        with self._write():
            scan = self._scan_row(scan_id)
            if scan["status"] == ScanStatus.COMPLETED.value:
                raise ConfigError(f"scan {scan_id} in {self.path} is already complete")
            self.db.execute(
                "UPDATE scans SET status = ?, finished = ?, error = ? WHERE id = ?",
                (status.value, now, error, scan_id),
            )
            expired = self._expire_acceptances(now, utc_date(moment))
            # Absent: active and not seen by this scan, nor by a later one (a resumed old scan
            # finishing after a newer one must not close what the newer one saw).
            absent = self._rows(
                "SELECT f.fingerprint, f.status, f.rule_id, f.port, f.proto,"
                " sh.state AS host_state,"
                " EXISTS (SELECT 1 FROM scan_undetermined u WHERE u.scan_id = ?"
                "   AND u.address = f.host AND u.proto = lower(coalesce(f.proto, ''))"
                "   AND u.port = coalesce(f.port, 0)"
                "   AND u.rule_id = f.rule_id) AS undetermined"
                " FROM findings f"
                " LEFT JOIN scan_hosts sh ON sh.scan_id = ? AND sh.address = f.host"
                " WHERE f.status IN (SELECT value FROM json_each(?))"
                " AND NOT EXISTS (SELECT 1 FROM observations o"
                "   WHERE o.fingerprint = f.fingerprint AND o.scan_id >= ?)",
                (scan_id, scan_id, _ACTIVE, scan_id),
            )
            fixed = undetermined = 0
            coverage = self._coverage(scan)
            for row in absent:
                host_state = HostState(row["host_state"]) if row["host_state"] else None
                if not coverage.covers(
                    host_state=host_state,
                    rule_id=row["rule_id"],
                    port=row["port"],
                    proto=row["proto"],
                ):
                    continue
                if row["undetermined"]:
                    undetermined += 1
                    continue
                if status is not ScanStatus.COMPLETED:
                    continue
                self._update_finding(
                    row["fingerprint"],
                    {"status": FindingStatus.FIXED.value, "fixed_at": now},
                )
                self._event(
                    row["fingerprint"],
                    FindingStatus(row["status"]),
                    FindingStatus.FIXED,
                    now,
                    f"absent from complete scan {scan_id}, which covered it",
                    _SCAN_ACTOR,
                    scan_id,
                )
                fixed += 1
        return LifecycleSummary(
            scan_id=scan_id,
            status=status,
            fixed=fixed,
            not_covered=len(absent) - fixed,
            undetermined=undetermined,
            expired=expired,
        )

    def expire_acceptances(self) -> int:
        """Open again every risk acceptance whose expiry date has come; return how many.

        An acceptance holds until the day before its expiry date (UTC). Reading findings
        (`findings`, `get_finding`, `has_active_at_least`) and closing a scan call this, so an
        expired acceptance never stays hidden until a scan happens to see the finding again.
        Takes the writer lock only when something has expired.
        """
        moment = self._now()
        today = utc_date(moment)
        with self._lock:
            if not self._expired_acceptances(today):
                return 0
            with self._write():
                return self._expire_acceptances(iso_utc(moment), today)

    def _expired_acceptances(self, today: date) -> list[tuple[str, date]]:
        rows = self._rows(
            "SELECT fingerprint, accept_expires FROM findings"
            " WHERE status = ? AND accept_expires IS NOT NULL AND accept_expires <= ?",
            (FindingStatus.RISK_ACCEPTED.value, today.isoformat()),
        )
        found = [(str(r["fingerprint"]), date.fromisoformat(r["accept_expires"])) for r in rows]
        return [(fp, expires) for fp, expires in found if acceptance_expired(expires, today)]

    def _expire_acceptances(self, now: str, today: date) -> int:
        """Inside a write transaction: flip expired acceptances to open, with an event each."""
        expired = self._expired_acceptances(today)
        for fp, expires in expired:
            self._update_finding(
                fp,
                {
                    "status": FindingStatus.OPEN.value,
                    "accept_expires": None,
                    "status_note": None,
                    "status_by": None,
                },
            )
            self._event(
                fp,
                FindingStatus.RISK_ACCEPTED,
                FindingStatus.OPEN,
                now,
                f"risk acceptance expired on {expires.isoformat()}",
                _EXPIRY_ACTOR,
            )
        return len(expired)

    # -- findings ------------------------------------------------------------------------------

    def _resolve(self, fingerprint: str) -> str:
        """The one full fingerprint starting with `fingerprint` (at least 8 hex digits)."""
        text = fingerprint.strip().lower()
        if not re.fullmatch(rf"[0-9a-f]{{{MIN_PREFIX},64}}", text):
            raise ConfigError(
                f"{fingerprint!r} is not a finding fingerprint: give at least {MIN_PREFIX} of "
                "its hex digits (shown by `posture findings`)"
            )
        # Every hex digit sorts before "g": this range is exactly the fingerprints with the prefix.
        rows = self._rows(
            "SELECT fingerprint FROM findings WHERE fingerprint >= ? AND fingerprint < ?"
            " ORDER BY fingerprint LIMIT 4",
            (text, text + "g"),
        )
        if not rows:
            raise ConfigError(
                f"no finding {text} in {self.path}; list them with "
                f"`posture findings --status all --db {self.path}`"
            )
        if len(rows) > 1:
            shown = ", ".join(r["fingerprint"][:16] for r in rows[:3])
            raise ConfigError(
                f"fingerprint prefix {text} is ambiguous in {self.path} (matches {shown}"
                f"{', …' if len(rows) > 3 else ''}); give more digits"
            )
        return str(rows[0]["fingerprint"])

    def get_finding(self, fingerprint: str) -> StoredFinding:
        """A finding by full fingerprint or unique prefix; ConfigError when there is none."""
        self.expire_acceptances()
        with self._lock:
            fp = self._resolve(fingerprint)
            rows = self._rows("SELECT * FROM findings WHERE fingerprint = ?", (fp,))
        return stored_finding_from_row(rows[0])

    def events(self, fingerprint: str) -> list[FindingEvent]:
        """A finding's status history, oldest first."""
        with self._lock:
            fp = self._resolve(fingerprint)
            rows = self._rows(
                "SELECT * FROM finding_events WHERE fingerprint = ? ORDER BY id", (fp,)
            )
        return [event_from_row(r) for r in rows]

    def set_status(
        self,
        fingerprint: str,
        status: FindingStatus,
        reason: str,
        *,
        expires: date | None = None,
        actor: str | None = None,
    ) -> StoredFinding:
        """A person's verdict on a finding; scans never undo risk_accepted or false_positive."""
        if status not in PEOPLE_STATUSES:
            allowed = ", ".join(sorted(s.value for s in PEOPLE_STATUSES))
            raise ConfigError(f"status {status.value!r} is decided by scans; set one of: {allowed}")
        reason = reason.strip()
        if not reason:
            raise ConfigError("a reason is required to change a finding's status (--reason TEXT)")
        moment = self._now()
        today = utc_date(moment)
        if expires is not None:
            if status is not FindingStatus.RISK_ACCEPTED:
                raise ConfigError("an expiry date (--expires) only applies to risk_accepted")
            if expires <= today:
                raise ConfigError(
                    f"expiry date {expires.isoformat()} is not in the future (today is "
                    f"{today.isoformat()} UTC); give a later --expires"
                )
        now = iso_utc(moment)
        with self._write():
            fp = self._resolve(fingerprint)
            previous = FindingStatus(
                self._rows("SELECT status FROM findings WHERE fingerprint = ?", (fp,))[0]["status"]
            )
            self._update_finding(
                fp,
                {
                    "status": status.value,
                    "status_note": reason,
                    "accept_expires": expires.isoformat() if expires else None,
                    "status_by": actor,
                    "fixed_at": None,
                },
            )
            note = reason if expires is None else f"{reason} (until {expires.isoformat()})"
            self._event(fp, previous, status, now, note, actor)
        return self.get_finding(fp)

    # -- owners --------------------------------------------------------------------------------

    def assign_owner(
        self,
        fingerprint: str,
        owner: str | None,
        *,
        contact: str | None = None,
        note: str | None = None,
        actor: str | None = None,
    ) -> OwnerAssignment | None:
        """A person's owner for one finding, over posture.toml's [[owners]]; `owner` None clears
        it. Every change is kept (`owner_history`); scans never change it. Returns the
        assignment in force afterwards (None: cleared, or there was none to clear)."""
        from scanner.owners import valid_contact, valid_owner

        if owner is not None:
            owner = valid_owner(owner, "the owner (--owner)")
            if contact is not None:
                contact = valid_contact(contact, "the contact (--contact)")
        elif contact is not None:
            raise ConfigError("a contact (--contact) goes with an owner (--owner), not --clear")
        if note is not None:
            note = note.strip() or None
            if note is not None and len(note) > MAX_OWNER_NOTE:
                raise ConfigError(f"the note (--note) is longer than {MAX_OWNER_NOTE} characters")
        now = iso_utc(self._now())
        with self._write():
            fp = self._resolve(fingerprint)
            if owner is None and self._owner_assignment(fp) is None:
                return None
            self.db.table("owner_assignments").insert(
                {
                    "fingerprint": fp,
                    "at": now,
                    "owner": owner,
                    "contact": contact,
                    "note": note,
                    "actor": actor,
                }
            )
        return self.owner_assignment(fp)

    def _owner_assignment(self, fp: str) -> OwnerAssignment | None:
        rows = self._rows(
            "SELECT * FROM owner_assignments WHERE fingerprint = ? ORDER BY id DESC LIMIT 1", (fp,)
        )
        if not rows or rows[0]["owner"] is None:
            return None
        return owner_assignment_from_row(rows[0])

    def owner_assignment(self, fingerprint: str) -> OwnerAssignment | None:
        """The owner a person gave this finding, if one is in force."""
        with self._lock:
            return self._owner_assignment(self._resolve(fingerprint))

    def owner_assignments(self) -> dict[str, OwnerAssignment]:
        """Every owner assignment in force, by fingerprint (few: people make them one by one)."""
        with self._lock:
            rows = self._rows(
                "SELECT * FROM owner_assignments WHERE owner IS NOT NULL AND id IN"
                " (SELECT max(id) FROM owner_assignments GROUP BY fingerprint)"
            )
        return {r["fingerprint"]: owner_assignment_from_row(r) for r in rows}

    def owner_history(self, fingerprint: str) -> list[OwnerAssignment]:
        """Every owner change of a finding, oldest first."""
        with self._lock:
            fp = self._resolve(fingerprint)
            rows = self._rows(
                "SELECT * FROM owner_assignments WHERE fingerprint = ? ORDER BY id", (fp,)
            )
        return [owner_assignment_from_row(r) for r in rows]

    def findings(
        self,
        *,
        min_severity: Severity | None = None,
        host: str | None = None,
        port: int | None = None,
        rule: str | None = None,
        statuses: Collection[FindingStatus] | None = None,
        scan_id: int | None = None,
    ) -> list[StoredFinding]:
        """Findings matching every filter given, in `finding_sort_key` order.

        `host` matches the address or the hostname; `scan_id` keeps findings that scan observed.
        Expired risk acceptances are opened again first.
        """
        where: list[str] = []
        params: list[Any] = []
        if min_severity is not None:
            where.append("severity IN (SELECT value FROM json_each(?))")
            params.append(_severities_at_least(min_severity))
        if host is not None:
            where.append("(host = ? OR hostname = ?)")
            params += [host, host]
        if port is not None:
            where.append("port = ?")
            params.append(port)
        if rule is not None:
            where.append("rule_id = ?")
            params.append(rule)
        if statuses is not None:
            where.append("status IN (SELECT value FROM json_each(?))")
            params.append(json.dumps(sorted({s.value for s in statuses})))
        self.expire_acceptances()
        with self._lock:
            if scan_id is not None:
                self._scan_row(scan_id)
                where.append(
                    "fingerprint IN (SELECT fingerprint FROM observations WHERE scan_id = ?)"
                )
                params.append(scan_id)
            sql = "SELECT * FROM findings"
            if where:
                sql += " WHERE " + " AND ".join(where)
            rows = self._rows(sql, params)
        return sorted((stored_finding_from_row(r) for r in rows), key=finding_sort_key)

    def statuses_as_of(self, moment: str) -> dict[str, FindingStatus]:
        """Each finding's status at `moment` (ISO 8601 UTC), rebuilt from its status history;
        findings not yet found then are absent."""
        with self._lock:
            rows = self._rows(
                "SELECT fingerprint, to_status FROM finding_events WHERE at <= ? ORDER BY id",
                (moment,),
            )
        return {row["fingerprint"]: FindingStatus(row["to_status"]) for row in rows}

    def has_active_at_least(self, scan_id: int, severity: Severity) -> bool:
        """Does this scan leave an open or reopened finding of `severity` or worse (--fail-on)?

        Risk acceptances past their date count again: they are opened first.
        """
        levels = _severities_at_least(severity)
        self.expire_acceptances()
        with self._lock:
            self._scan_row(scan_id)
            rows = self._rows(
                "SELECT 1 FROM findings f"
                " JOIN observations o ON o.fingerprint = f.fingerprint AND o.scan_id = ?"
                " WHERE f.status IN (SELECT value FROM json_each(?))"
                " AND f.severity IN (SELECT value FROM json_each(?)) LIMIT 1",
                (scan_id, _ACTIVE, levels),
            )
        return bool(rows)
