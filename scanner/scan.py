"""One scan, end to end: target chunks → nmap + active checks (facts) → rules (findings) → store.

Chunks run concurrently in worker threads (each drives one nmap process); the calling thread is
the only writer and stores every finished chunk at once, so a scan killed midway keeps what it
finished and can be resumed host by host.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from scanner.errors import ConfigError, ScanFailedError
from scanner.model import Finding, Host, HostState, ScanRecord, ScanStatus
from scanner.probes.checks import run_checks
from scanner.probes.inventory import Inventory, InventoryError, LocalRunner, SshRunner, collect
from scanner.probes.portscan import PortSpec, parse_nmap_time, parse_ports, scan_chunk
from scanner.probes.tls.assess import TlsOptions
from scanner.probes.tls.hosts import assess_hosts, tls_endpoint_for
from scanner.rating.tls_facts import tls_facts
from scanner.rules import RuleSet, evaluate
from scanner.rules.facts import is_inventory_fact
from scanner.safetext import for_terminal
from scanner.store.db import Store, Undetermined
from scanner.targets import Resolver, Scope, Target, TargetSet, chunked, parse_targets
from scanner.vulndb.assess import HOST_LEVEL, OPEN_STATES, match_hosts
from scanner.vulndb.db import VulnDb, VulnDbError

log = logging.getLogger(__name__)

# Keys of a scan's stored options that fix what it scans, whatever happens to DNS and files.
_EXPANDED_TARGETS = "expanded_targets"
_HOSTNAMES = "hostnames"
_EXPANDED_SCOPE = "expanded_scope"
_RULE_IDS = "rule_ids"  # the store keeps them too, but does not hand them back
_MAX_IDS_SHOWN = 10


@dataclass(frozen=True)
class ScanOptions:
    """How to scan; stored with the scan so that `--resume` scans the rest the same way."""

    ports: str = "top1000"
    host_timeout: str = "5m"
    concurrency: int = 4
    chunk_size: int = 16
    no_ping: bool = False
    check_timeout: float = 5.0
    version_intensity: int | None = None
    tls: bool = True  # assess every TLS port found (protocols, suites, certificate, grade)
    tls_timeout: float = 5.0
    tls_connections: int = 5  # per host, at once
    tls_delay: float = 0.0  # seconds between connections to one host
    cert_warn_days: int = 30
    ca_file: str | None = None
    # Authenticated inventory over SSH (--ssh USER[@HOST]): every up host with the SSH port
    # open, or only ssh_host when one was named.
    ssh_user: str | None = None
    ssh_host: str | None = None
    ssh_port: int = 22
    ssh_key: str | None = None
    known_hosts: str | None = None
    accept_new_host_key: bool = False
    # Authenticated inventory of the scanning machine itself (--local): the host among the
    # targets that is this machine (a loopback address or one of its own), read without SSH.
    local: bool = False
    # Match software (banners, packages) against this advisory database; None: no matching,
    # and the vulnerability rules are undetermined everywhere.
    vulndb: str | None = None

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.concurrency > 64:
            raise ConfigError(f"--concurrency must be between 1 and 64, not {self.concurrency}")
        if self.chunk_size < 1 or self.chunk_size > 4096:
            raise ConfigError(f"--chunk-size must be between 1 and 4096, not {self.chunk_size}")
        # Fail on a bad port list or timeout before anything starts (or is recorded).
        parse_ports(self.ports)
        parse_nmap_time(self.host_timeout)
        try:
            self.tls_options()
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if self.ssh_user is not None:
            try:
                self.ssh_runner(self.ssh_host or "127.0.0.1")
            except InventoryError as exc:
                raise ConfigError(str(exc)) from None

    def ssh_runner(self, address: str) -> SshRunner:
        return SshRunner(
            self.ssh_user or "root",
            address,
            port=self.ssh_port,
            key_file=Path(self.ssh_key) if self.ssh_key else None,
            known_hosts=Path(self.known_hosts) if self.known_hosts else None,
            accept_new_host_key=self.accept_new_host_key,
        )

    def tls_options(self) -> TlsOptions:
        return TlsOptions(
            timeout=self.tls_timeout,
            connections_per_host=self.tls_connections,
            delay=self.tls_delay,
            warn_days=self.cert_warn_days,
            ca_file=Path(self.ca_file) if self.ca_file else None,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "ports": self.ports,
            "host_timeout": self.host_timeout,
            "concurrency": self.concurrency,
            "chunk_size": self.chunk_size,
            "no_ping": self.no_ping,
            "check_timeout": self.check_timeout,
            "version_intensity": self.version_intensity,
            "tls": self.tls,
            "tls_timeout": self.tls_timeout,
            "tls_connections": self.tls_connections,
            "tls_delay": self.tls_delay,
            "cert_warn_days": self.cert_warn_days,
            "ca_file": self.ca_file,
            "ssh_user": self.ssh_user,
            "ssh_host": self.ssh_host,
            "ssh_port": self.ssh_port,
            "ssh_key": self.ssh_key,
            "known_hosts": self.known_hosts,
            "accept_new_host_key": self.accept_new_host_key,
            "local": self.local,
            "vulndb": self.vulndb,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ScanOptions:
        known = {k: raw[k] for k in cls().as_dict() if k in raw}
        return cls(**known)


class ScanObserver:
    """What a scan reports while it runs (the CLI draws a progress bar from it)."""

    def started(self, scan_id: int, total: int, done: int) -> None:
        """The scan starts (or resumes with `done` hosts already stored)."""

    def advanced(self, progress: float, hosts_stored: int, findings: int) -> None:
        """Hosts' worth of work done (fractional while chunks are in flight), hosts stored,
        findings so far."""


@dataclass
class ScanOutcome:
    scan: ScanRecord
    hosts_by_state: dict[str, int] = field(default_factory=dict)
    new: int = 0
    reopened: int = 0
    fixed: int = 0


def _single_family(chunks: Iterator[list[Target]]) -> Iterator[list[Target]]:
    """Split the one chunk that may straddle IPv4 and IPv6: an nmap run scans one family."""
    for chunk in chunks:
        v4 = [t for t in chunk if ":" not in t.address]
        if len(v4) in (0, len(chunk)):
            yield chunk
        else:
            yield v4
            yield [t for t in chunk if ":" in t.address]


def undetermined_rules(ruleset: RuleSet, hosts: Iterable[Host]) -> list[Undetermined]:
    """(address, proto, port, rule id) for each rule reading facts of a check that applied to a
    service of an up host but got no answer (`Service.checks[name] == {}`), or inventory facts
    of a host that was not inventoried: the scan cannot tell whether that rule holds there, so
    an earlier finding of it must not count as fixed."""
    reading_checks = [rule for rule in ruleset.rules if rule.check_namespaces]
    reading_inventory = [
        rule
        for rule in ruleset.rules
        if rule.subject != "vulnerability" and any(map(is_inventory_fact, rule.when.fact_names()))
    ]
    vulnerability_rules = [rule.id for rule in ruleset.rules if rule.subject == "vulnerability"]
    found: list[Undetermined] = []
    for host in hosts:
        if host.state is not HostState.UP:
            continue
        found.extend(
            (host.address, proto, port, rule_id)
            for proto, port in _unassessed(host)
            for rule_id in vulnerability_rules
        )
        if host.inventory is None:
            # No inventory of this host: what its rules read is unknown, not absent. Host-level
            # rows use proto "" and port 0, as host findings have no port.
            for rule in reading_inventory:
                if rule.subject == "host":
                    found.append((host.address, "", 0, rule.id))
                else:
                    found.extend((host.address, s.proto, s.port, rule.id) for s in host.services)
        for service in host.services:
            silent = {name for name, facts in service.checks.items() if not facts}
            if not silent:
                continue
            found.extend(
                (host.address, service.proto, service.port, rule.id)
                for rule in reading_checks
                if rule.check_namespaces & silent
            )
    return found


def _unassessed(host: Host) -> list[tuple[str, int]]:
    """(proto, port) where the host's software could not be matched against advisories, ("", 0)
    for its packages: everywhere when no advisory database was used."""
    if host.vulnerabilities is not None:
        return list(host.vulnerabilities.unassessed)
    ports = [(s.proto, s.port) for s in host.services if s.state in OPEN_STATES]
    return [HOST_LEVEL, *ports]


def with_tls(hosts: list[Host], options: TlsOptions) -> list[Host]:
    """The hosts with every TLS port's assessment attached: the whole `TlsEndpoint` as
    `Service.tls`, its flat facts as `Service.checks["tls"]` (empty when the assessment failed,
    so TLS rules are undetermined there). A plain-text port that refused STARTTLS gets neither."""
    found = assess_hosts(hosts, options)
    if not found:
        return hosts
    updated = [list(host.services) for host in hosts]
    for (h, s), endpoint in found.items():
        if endpoint.starttls_refused:
            continue
        service = updated[h][s]
        updated[h][s] = dataclasses.replace(
            service, tls=endpoint, checks={**service.checks, "tls": tls_facts(endpoint)}
        )
    return [
        dataclasses.replace(host, services=tuple(services))
        for host, services in zip(hosts, updated, strict=True)
    ]


def without_tls(hosts: list[Host]) -> list[Host]:
    """The hosts with every TLS-looking port marked as assessed-without-answer (an empty
    `checks["tls"]`): with TLS assessment off, the TLS rules are undetermined there, so findings
    an earlier scan made are kept open rather than declared fixed."""
    updated = []
    for host in hosts:
        services = tuple(
            dataclasses.replace(service, checks={**service.checks, "tls": {}})
            if host.state is HostState.UP and tls_endpoint_for(host, service) is not None
            else service
            for service in host.services
        )
        updated.append(dataclasses.replace(host, services=services))
    return updated


MAX_INVENTORIES_AT_ONCE = 4


def is_this_machine(address: str) -> bool:
    """Whether `address` is one of this machine's own (loopback or an interface's): binding a
    socket to it succeeds only then, and sends nothing."""
    try:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((address, 0))
    except OSError:
        return False
    return True


class ScanContext:
    """What the chunks of one scan share: the local inventory (read once, however many of the
    targets are this machine) and one read-only advisory database per worker thread (SQLite
    connections stay in the thread that opened them)."""

    def __init__(self, options: ScanOptions) -> None:
        self.options = options
        self._lock = threading.Lock()
        self._local: Inventory | None = None
        self._local_read = False
        self._threads = threading.local()
        self._opened: list[VulnDb] = []
        self._vulndb_failed = False

    def local_inventory(self) -> Inventory | None:
        with self._lock:
            if not self._local_read:
                self._local_read = True
                try:
                    self._local = collect(LocalRunner())
                except InventoryError as exc:
                    log.warning("inventory of this machine failed: %s", for_terminal(exc, 300))
            return self._local

    def vulndb(self) -> VulnDb | None:
        """This thread's advisory database, or None when there is none to use (why is logged
        once)."""
        path = self.options.vulndb
        if path is None:
            return None
        found: VulnDb | None = getattr(self._threads, "db", None)
        if found is not None:
            return found
        with self._lock:
            if self._vulndb_failed:
                return None
            try:
                found = VulnDb(path)
            except VulnDbError as exc:
                self._vulndb_failed = True
                log.warning(
                    "advisory database unusable, vulnerabilities not matched: %s",
                    for_terminal(exc, 300),
                )
                return None
            self._opened.append(found)
        self._threads.db = found
        return found

    def close(self) -> None:
        """Close every database a thread opened (call once the workers are done)."""
        with self._lock:
            for db in self._opened:
                db.close()
            self._opened.clear()


def with_inventory(hosts: list[Host], options: ScanOptions, context: ScanContext) -> list[Host]:
    """The hosts with an inventory attached where one could be read: this machine's own with
    --local, over SSH with --ssh. A host that could not be inventoried keeps none (its inventory
    rules stay undetermined); why is logged."""
    wanted = [
        index
        for index, host in enumerate(hosts)
        if host.state is HostState.UP and _inventory_source(host, options) is not None
    ]
    if not wanted:
        return hosts

    def one(index: int) -> Inventory | None:
        host = hosts[index]
        if _inventory_source(host, options) == "local":
            return context.local_inventory()
        try:
            return collect(options.ssh_runner(host.address))
        except InventoryError as exc:
            log.warning("inventory of %s failed: %s", host.address, for_terminal(exc, 300))
            return None

    with ThreadPoolExecutor(MAX_INVENTORIES_AT_ONCE) as pool:
        found = dict(zip(wanted, pool.map(one, wanted), strict=True))
    return [
        dataclasses.replace(host, inventory=found[i]) if found.get(i) is not None else host
        for i, host in enumerate(hosts)
    ]


def _inventory_source(host: Host, options: ScanOptions) -> str | None:
    """ "local", "ssh" or None: how this host is inventoried. --local takes this machine's own
    addresses; --ssh the named host, else every host with the SSH port open."""
    if options.local and is_this_machine(host.address):
        return "local"
    if options.ssh_user is None:
        return None
    if options.ssh_host is not None:
        return "ssh" if options.ssh_host in (host.address, host.hostname) else None
    open_ssh = any(
        s.port == options.ssh_port and s.proto == "tcp" and s.state == "open" for s in host.services
    )
    return "ssh" if open_ssh else None


def with_vulnerabilities(hosts: list[Host], context: ScanContext) -> list[Host]:
    """The hosts with their software matched against the advisory database; unchanged (and
    the vulnerability rules undetermined) when there is no database to use."""
    db = context.vulndb()
    return hosts if db is None else match_hosts(hosts, db)


@dataclass(frozen=True)
class _ChunkWork:
    hosts: list[Host]
    findings: list[Finding]
    ports_scanned: dict[str, str]
    undetermined: list[Undetermined] = field(default_factory=list)


def _scan_one_chunk(
    chunk: list[Target],
    ports: PortSpec,
    ruleset: RuleSet,
    context: ScanContext,
    cancel: threading.Event,
    progress: Callable[[float], None],
) -> _ChunkWork:
    options = context.options
    result = scan_chunk(
        chunk,
        ports,
        host_timeout=options.host_timeout,
        no_ping=options.no_ping,
        version_intensity=options.version_intensity,
        progress=progress,
        cancel=cancel,
    )
    hosts = [
        run_checks(h, timeout=options.check_timeout) if h.state is HostState.UP else h
        for h in result.hosts
    ]
    if options.tls and not cancel.is_set():
        hosts = with_tls(hosts, options.tls_options())
    else:
        hosts = without_tls(hosts)
    if (options.ssh_user is not None or options.local) and not cancel.is_set():
        hosts = with_inventory(hosts, options, context)
    if not cancel.is_set():
        hosts = with_vulnerabilities(hosts, context)
    return _ChunkWork(
        hosts,
        evaluate(ruleset, hosts),
        dict(result.ports_scanned),
        undetermined_rules(ruleset, hosts),
    )


def start_scan(
    store: Store,
    targets: TargetSet,
    *,
    scope: Scope | None,
    excludes: tuple[str, ...],
    ruleset: RuleSet,
    options: ScanOptions,
) -> int:
    """Record a new scan (status running) and return its id.

    Besides the specs as given, the scan keeps its targets and scope expanded (address ranges,
    the names each address was given as), so `--resume` scans exactly these addresses even if
    DNS answers, @files or scope files have changed since.
    """
    stored = options.as_dict()
    stored[_EXPANDED_TARGETS] = targets.canonical()
    stored[_HOSTNAMES] = targets.labels
    stored[_EXPANDED_SCOPE] = scope.canonical() if scope is not None else None
    stored[_RULE_IDS] = sorted(rule.id for rule in ruleset.rules)
    return store.create_scan(
        targets=targets.specs,
        scope=scope.specs if scope is not None else (),
        excludes=excludes,
        packs=ruleset.pack_labels(),
        rules=[r.id for r in ruleset.rules],
        options=stored,
        hosts_total=len(targets),
    )


def _damaged(scan: ScanRecord, what: str) -> ConfigError:
    return ConfigError(
        f"scan {scan.id}'s stored {what} is damaged, so it cannot be resumed exactly; "
        "start a new scan"
    )


def _string_list(scan: ScanRecord, key: str) -> list[str] | None:
    value = scan.options.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _damaged(scan, key.replace("_", " "))
    return value


def _refuse_resolving(name: str) -> list[str]:
    raise ConfigError(f"a resumed scan does not look up names, yet {for_terminal(name)!r} came up")


def resume_targets(
    scan: ScanRecord, *, resolve: Resolver | None = None
) -> tuple[TargetSet, ScanOptions]:
    """The targets and options of a stored scan, to scan what it has not finished.

    The targets are the addresses the scan expanded when it started (no name is resolved again,
    no @file read again). A scan stored before posture kept them is parsed from its specs, with
    `resolve` (default: the system resolver) for the names among them.
    """
    if scan.status is ScanStatus.COMPLETED:
        raise ConfigError(f"scan {scan.id} is already complete: nothing to resume")
    options = ScanOptions.from_dict(dict(scan.options))
    expanded = _string_list(scan, _EXPANDED_TARGETS)
    if expanded is None:
        return parse_targets(scan.targets, scan.excludes, resolve=resolve), options
    labels = scan.options.get(_HOSTNAMES) or {}
    if not isinstance(labels, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        raise _damaged(scan, "host names")
    targets = parse_targets(expanded, (), resolve=_refuse_resolving, labels=labels)
    if len(targets) != scan.hosts_total:
        raise _damaged(scan, f"target list ({len(targets)} addresses, not {scan.hosts_total})")
    return targets, options


def resume_scope(scan: ScanRecord) -> Scope | None:
    """The scope a stored scan was started with (as expanded then), or None if it had none."""
    if not scan.scope:
        return None
    expanded = _string_list(scan, _EXPANDED_SCOPE)
    return Scope.parse(expanded if expanded is not None else scan.scope)


def _shown_ids(ids: Collection[str]) -> str:
    ordered = sorted(ids)
    shown = ", ".join(for_terminal(i, 100) for i in ordered[:_MAX_IDS_SHOWN])
    more = len(ordered) - _MAX_IDS_SHOWN
    return f"{shown}, … and {more} more" if more > 0 else shown


def check_resume_rules(scan: ScanRecord, ruleset: RuleSet) -> None:
    """Refuse (ConfigError) to resume a scan with other rules than it started with: its hosts
    would be judged by two rule sets, and findings closed or kept by the wrong ones."""
    stored_ids = _string_list(scan, _RULE_IDS)
    if stored_ids is None:  # a scan stored before its rule ids were kept: compare the packs
        current_packs, stored_packs = set(ruleset.pack_labels()), set(scan.packs)
        if current_packs == stored_packs:
            return
        added, removed, what = current_packs - stored_packs, stored_packs - current_packs, "packs"
    else:
        current, stored = {rule.id for rule in ruleset.rules}, set(stored_ids)
        if current == stored:
            return
        added, removed, what = current - stored, stored - current, "rules"
    parts = []
    if added:
        parts.append(f"{len(added)} {what} loaded now that it did not have: {_shown_ids(added)}")
    if removed:
        parts.append(f"{len(removed)} {what} it had that are not loaded: {_shown_ids(removed)}")
    raise ConfigError(
        f"scan {scan.id} was started with other {what}; {'; '.join(parts)}. Resume it with the "
        "same rule packs (the same --rules and posture.toml packs), or start a new scan"
    )


_DONE_BATCH = 500  # addresses asked of the store at once when resuming


def _pending(store: Store, scan_id: int, targets: TargetSet) -> Iterator[Target]:
    """The targets not yet stored for this scan, asking the store batch by batch so that
    resuming a huge range never holds its finished addresses in memory."""
    remaining = iter(targets)
    while batch := list(islice(remaining, _DONE_BATCH)):
        done = store.is_done(scan_id, [t.address for t in batch])
        yield from (t for t in batch if t.address not in done)


def run_scan(
    store: Store,
    scan_id: int,
    targets: TargetSet,
    ruleset: RuleSet,
    options: ScanOptions,
    observer: ScanObserver | None = None,
) -> ScanOutcome:
    """Scan every target of `targets` not yet stored for `scan_id`, then close the scan.

    Raises ScanFailedError (the scan is marked failed) or KeyboardInterrupt (marked
    interrupted); either way every finished chunk is already stored.
    """
    observer = observer or ScanObserver()
    ports = parse_ports(options.ports)
    stored_hosts = store.get_scan(scan_id).hosts_done
    observer.started(scan_id, len(targets), stored_hosts)
    cancel = threading.Event()
    new_findings = reopened_findings = 0
    # A chunk stays here until it is stored: after a failure, whatever finished is still found.
    in_flight: dict[Future[_ChunkWork], tuple[int, list[float]]] = {}
    findings_so_far = 0

    def report_progress() -> None:
        partial = sum(size * frac[0] for size, frac in in_flight.values())
        observer.advanced(stored_hosts + partial, stored_hosts, findings_so_far)

    def store_chunk(future: Future[_ChunkWork]) -> None:
        nonlocal stored_hosts, findings_so_far, new_findings, reopened_findings
        work = future.result()  # a failed chunk raises: it fails the whole scan
        summary = store.record_chunk(
            scan_id,
            work.hosts,
            work.findings,
            work.ports_scanned,
            undetermined=work.undetermined,
        )
        in_flight.pop(future)
        stored_hosts += len(work.hosts)
        findings_so_far += len(work.findings)
        new_findings += summary.new
        reopened_findings += summary.back_to_active

    def store_what_finished() -> None:
        """After a failure or an interrupt: store every chunk that finished successfully."""
        for future in list(in_flight):
            if not future.done() or future.cancelled() or future.exception() is not None:
                continue
            try:
                store_chunk(future)
            except Exception as exc:  # the store itself fails: the others would fail alike
                log.warning(
                    "scan %d: a finished chunk could not be stored: %s",
                    scan_id,
                    for_terminal(exc, 300),
                )
                return

    chunks = _single_family(chunked(_pending(store, scan_id, targets), options.chunk_size))
    context = ScanContext(options)
    pool = ThreadPoolExecutor(max_workers=options.concurrency, thread_name_prefix="posture-scan")
    try:
        exhausted = False
        while True:
            # At most `concurrency` chunks in flight: the target list stays lazy.
            while not exhausted and len(in_flight) < options.concurrency:
                chunk = next(chunks, None)
                if chunk is None:
                    exhausted = True
                    break
                fraction = [0.0]

                def on_progress(value: float, fraction: list[float] = fraction) -> None:
                    fraction[0] = min(max(value, 0.0), 1.0)

                future = pool.submit(
                    _scan_one_chunk, chunk, ports, ruleset, context, cancel, on_progress
                )
                in_flight[future] = (len(chunk), fraction)
            if not in_flight:
                break
            finished, _ = wait(in_flight, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in finished:
                store_chunk(future)
            report_progress()
    except BaseException as exc:
        # Stop every nmap still running, wait for the workers, then keep what finished.
        cancel.set()
        pool.shutdown(wait=True, cancel_futures=True)
        context.close()
        store_what_finished()
        if isinstance(exc, KeyboardInterrupt):
            store.finish_scan(scan_id, ScanStatus.INTERRUPTED, error="interrupted by the user")
            raise
        if isinstance(exc, ScanFailedError):
            store.finish_scan(scan_id, ScanStatus.FAILED, error=str(exc))
            raise
        if isinstance(exc, Exception):
            store.finish_scan(scan_id, ScanStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
            raise ScanFailedError(f"scan {scan_id} failed: {exc}") from exc
        raise
    pool.shutdown(wait=True)
    context.close()
    lifecycle = store.finish_scan(scan_id, ScanStatus.COMPLETED)
    # Every host of the scan, including those a run before a --resume stored.
    states = Counter(host.state.value for host in store.scan_hosts(scan_id))
    return ScanOutcome(
        scan=store.get_scan(scan_id),
        hosts_by_state=dict(states),
        new=new_findings,
        reopened=reopened_findings,
        fixed=lifecycle.fixed,
    )
