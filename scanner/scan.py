"""One scan, end to end: target chunks → nmap + active checks (facts) → rules (findings) → store.

Chunks run concurrently in worker threads (each drives one nmap process); the calling thread is
the only writer and stores every finished chunk at once, so a scan killed midway keeps what it
finished and can be resumed host by host.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from scanner.errors import ConfigError, ScanFailedError
from scanner.model import Finding, Host, HostState, ScanRecord, ScanStatus
from scanner.probes.checks import run_checks
from scanner.probes.portscan import PortSpec, parse_ports, scan_chunk
from scanner.rules import RuleSet, evaluate
from scanner.store.db import Store
from scanner.targets import Target, TargetSet, parse_targets


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

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.concurrency > 64:
            raise ConfigError(f"--concurrency must be between 1 and 64, not {self.concurrency}")
        if self.chunk_size < 1 or self.chunk_size > 4096:
            raise ConfigError(f"--chunk-size must be between 1 and 4096, not {self.chunk_size}")
        parse_ports(self.ports)  # fail on a bad port list before anything starts

    def as_dict(self) -> dict[str, Any]:
        return {
            "ports": self.ports,
            "host_timeout": self.host_timeout,
            "concurrency": self.concurrency,
            "chunk_size": self.chunk_size,
            "no_ping": self.no_ping,
            "check_timeout": self.check_timeout,
            "version_intensity": self.version_intensity,
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
    findings_seen: int = 0
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


@dataclass(frozen=True)
class _ChunkWork:
    hosts: list[Host]
    findings: list[Finding]
    ports_scanned: dict[str, str]


def _scan_one_chunk(
    chunk: list[Target],
    ports: PortSpec,
    ruleset: RuleSet,
    options: ScanOptions,
    cancel: threading.Event,
    progress: Callable[[float], None],
) -> _ChunkWork:
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
    return _ChunkWork(hosts, evaluate(ruleset, hosts), dict(result.ports_scanned))


def start_scan(
    store: Store,
    targets: TargetSet,
    *,
    scope: tuple[str, ...],
    excludes: tuple[str, ...],
    ruleset: RuleSet,
    options: ScanOptions,
) -> int:
    """Record a new scan (status running) and return its id."""
    return store.create_scan(
        targets=targets.specs,
        scope=scope,
        excludes=excludes,
        packs=ruleset.pack_labels(),
        rules=[r.id for r in ruleset.rules],
        options=options.as_dict(),
        hosts_total=len(targets),
    )


def resume_targets(scan: ScanRecord) -> tuple[TargetSet, ScanOptions]:
    """The targets and options of a stored scan, to scan what it has not finished."""
    if scan.status is ScanStatus.COMPLETED:
        raise ConfigError(f"scan {scan.id} is already complete: nothing to resume")
    return parse_targets(scan.targets, scan.excludes), ScanOptions.from_dict(dict(scan.options))


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
    done = store.done_hosts(scan_id)
    total = len(targets)
    observer.started(scan_id, total, len(done))
    cancel = threading.Event()
    outcome_counts = {"new": 0, "reopened": 0, "seen": 0}
    states: dict[str, int] = {}
    stored_hosts = len(done)
    in_flight: dict[Future[_ChunkWork], tuple[int, list[float]]] = {}
    findings_so_far = 0

    def report_progress() -> None:
        partial = sum(size * frac[0] for size, frac in in_flight.values())
        observer.advanced(stored_hosts + partial, stored_hosts, findings_so_far)

    chunks = _single_family(targets.chunks(options.chunk_size, skip=done))
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
                    _scan_one_chunk, chunk, ports, ruleset, options, cancel, on_progress
                )
                in_flight[future] = (len(chunk), fraction)
            if not in_flight:
                break
            finished, _ = wait(in_flight, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in finished:
                in_flight.pop(future)
                work = future.result()  # a failed chunk fails the whole scan
                summary = store.record_chunk(scan_id, work.hosts, work.findings, work.ports_scanned)
                stored_hosts += len(work.hosts)
                findings_so_far += len(work.findings)
                for key in outcome_counts:
                    outcome_counts[key] += getattr(summary, key, 0)
                for host in work.hosts:
                    states[host.state.value] = states.get(host.state.value, 0) + 1
            report_progress()
    except BaseException as exc:
        # Stop every nmap still running before waiting for the workers.
        cancel.set()
        pool.shutdown(wait=True, cancel_futures=True)
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
    lifecycle = store.finish_scan(scan_id, ScanStatus.COMPLETED)
    return ScanOutcome(
        scan=store.get_scan(scan_id),
        hosts_by_state=states,
        findings_seen=findings_so_far,
        new=outcome_counts["new"],
        reopened=outcome_counts["reopened"],
        fixed=getattr(lifecycle, "fixed", 0),
    )
