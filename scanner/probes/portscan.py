"""Run nmap on one chunk of targets and turn its XML report into `Host` facts.

nmap gets an argument list (never a shell) and writes XML to a temporary file; the XML is checked
by defusedxml, then read with python-nmap's parser. Orchestration (chunks, concurrency, storing,
resuming) belongs to `scanner.scan`.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as SafeET
import nmap

from scanner.errors import ConfigError, ScanFailedError, ToolMissingError
from scanner.model import Host, HostState, Service
from scanner.safetext import clip, for_terminal

if TYPE_CHECKING:
    from scanner.targets import Target

NMAP_INSTALL_HINT = (
    "nmap is not installed: run `apt-get install -y nmap` (Debian/Ubuntu) or `dnf install nmap`, "
    "or see https://nmap.org/download"
)

_TOP_PORTS = {"top100": "100", "top1000": "1000"}
_TIME_SPEC = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_TIME_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_PROGRESS = re.compile(rb"^(.*?) Timing: About (\d{1,3}(?:\.\d+)?)% done")
# nmap restarts "About N% done" at each phase; each phase gets its share of the chunk's progress
# so the bar moves forward only. Shares reflect where -sV scans spend their time.
_PHASES: tuple[tuple[bytes, float, float], ...] = (
    (b"Ping Scan", 0.0, 0.05),
    (b"Service scan", 0.5, 1.0),
    (b"Scan", 0.05, 0.5),  # SYN Stealth / Connect / UDP Scan: the port scan
)


def _overall_progress(line: bytes) -> float | None:
    """A chunk's progress 0..1 from one `--stats-every` line, or None."""
    match = _PROGRESS.search(line)
    if match is None:
        return None
    phase, done = match.group(1), min(float(match.group(2)) / 100.0, 1.0)
    for name, start, end in _PHASES:
        if name in phase:
            return start + (end - start) * done
    return None


_HOST_TIMEOUT_ARG = re.compile(r"--host-timeout[ =](\S+)")

_MAX_STDOUT_LINE = 4096  # nmap's own lines are short; longer ones are split, never buffered whole
# A 4096-host chunk of -sV results is a few MiB of XML; far more means something is wrong.
_MAX_XML_BYTES = 64 * 1024 * 1024
_STDERR_TAIL_BYTES = 4096
_STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
_WATCH_INTERVAL = 0.2  # how quickly a cancel request reaches nmap
_DEADLINE_MARGIN = 120.0  # on top of host-timeout x hosts, before nmap counts as hung
_MAX_CPES = 16


@dataclass(frozen=True)
class PortSpec:
    """Which ports to scan, as the user named them and as nmap arguments."""

    label: str  # "top100", "top1000", "all" or the normalised list ("T:22,80,U:69")
    nmap_args: tuple[str, ...]
    udp: bool  # the list has U: entries: nmap needs -sU (root)

    @property
    def tcp(self) -> bool:
        """Whether any TCP port is to be scanned (a list may name UDP ports only)."""
        return not self.udp or "T:" in self.label


def parse_ports(text: str) -> PortSpec:
    """`--ports` value: top100, top1000, all, or a list like "22,80,8000-8100" / "T:22,U:69".

    Raises ConfigError naming the part that is wrong; U: entries need root.
    """
    spec = text.strip()
    keyword = spec.lower()
    if keyword in _TOP_PORTS:
        return PortSpec(keyword, ("--top-ports", _TOP_PORTS[keyword]), udp=False)
    if keyword == "all":
        return PortSpec("all", ("-p", "1-65535"), udp=False)
    if not spec:
        raise ConfigError("--ports is empty: use top100, top1000, all, or a list like 22,80,443")
    tcp_parts: list[str] = []
    udp_parts: list[str] = []
    current = tcp_parts
    for raw in spec.split(","):
        entry = raw.strip()
        prefix = entry[:2].upper()
        if prefix in ("T:", "U:"):
            current = tcp_parts if prefix == "T:" else udp_parts
            entry = entry[2:].strip()
        current.append(_port_range(entry, raw, text))
    if not udp_parts:
        label = ",".join(tcp_parts)
        return PortSpec(label, ("-p", label), udp=False)
    if not is_privileged():
        raise ConfigError(
            f"--ports {text.strip()!r}: UDP ports (U:) need root, because nmap's UDP scan (-sU) "
            "uses raw sockets: run posture as root or drop the U: entries"
        )
    groups = []
    if tcp_parts:
        groups.append("T:" + ",".join(tcp_parts))
    groups.append("U:" + ",".join(udp_parts))
    label = ",".join(groups)
    return PortSpec(label, ("-p", label), udp=True)


def _port_range(entry: str, raw: str, text: str) -> str:
    def bad(why: str) -> ConfigError:
        return ConfigError(
            f"--ports {text.strip()!r}: {raw.strip()!r} {why} "
            "(expected top100, top1000, all, or ports/ranges like 22,80,8000-8100,T:25,U:53)"
        )

    if not entry:
        raise bad("is an empty entry")
    low_text, dash, high_text = entry.partition("-")
    if not low_text.isdigit() or (dash and not high_text.isdigit()):
        raise bad("is not a port number or a range low-high")
    low = int(low_text)
    high = int(high_text) if dash else low
    if not 1 <= low <= 65535 or not 1 <= high <= 65535:
        raise bad("is outside 1-65535")
    if low > high:
        raise bad("is a range whose start is above its end")
    return str(low) if low == high else f"{low}-{high}"


def find_nmap() -> str:
    """Path of the nmap binary; ToolMissingError (exit 2) with the install command if absent."""
    path = shutil.which("nmap")
    if path is None:
        raise ToolMissingError(NMAP_INSTALL_HINT)
    return path


@cache
def _death_signal_prefix() -> tuple[str, ...]:
    """`setpriv --pdeathsig KILL --` when util-linux's setpriv supports it, else nothing.

    The kernel then kills nmap when the thread that started it ends, even if posture itself is
    killed with SIGKILL. (`preexec_fn` could set PR_SET_PDEATHSIG too, but it is unsafe in a
    threaded program.) The worker thread waits for nmap, so its end means posture's end.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return ()
    try:
        probe = subprocess.run(
            [setpriv, "--help"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ()
    if b"--pdeathsig" not in probe.stdout + probe.stderr:
        return ()  # util-linux before 2.33
    return (setpriv, "--pdeathsig", "KILL", "--")


def is_privileged() -> bool:
    """Root can open raw sockets: SYN scan (-sS) and UDP scan (-sU); others use -sT."""
    return os.geteuid() == 0


def parse_nmap_time(text: str) -> float:
    """An nmap time value ("500ms", "30s", "5m", "1h", "90") in seconds; ConfigError if not."""
    match = _TIME_SPEC.match(text.strip())
    if match is None or float(match.group(1)) <= 0:
        raise ConfigError(
            f"--timeout {text!r} is not a time nmap understands: use a positive number with "
            "ms, s, m or h (e.g. 30s, 5m, 1h)"
        )
    return float(match.group(1)) * _TIME_UNITS[match.group(2)]


@dataclass(frozen=True)
class ChunkResult:
    """What one nmap run found, plus how it was run."""

    hosts: tuple[Host, ...]
    ports_scanned: dict[str, str]  # proto -> nmap's scaninfo "services", e.g. {"tcp": "1,3-4"}
    command: tuple[str, ...]
    elapsed: float  # seconds, wall clock
    nmap_version: str


def _ip_text(target: Target) -> str:
    try:
        return ipaddress.ip_address(target.address).compressed
    except ValueError:
        raise ConfigError(
            f"target {for_terminal(target.address)!r} is not an IP address: posture resolves "
            "names before it runs nmap (-n)"
        ) from None


def build_nmap_command(
    nmap_path: str,
    targets: Sequence[Target],
    ports: PortSpec,
    *,
    host_timeout: str,
    xml_path: Path,
    privileged: bool,
    no_ping: bool,
    version_intensity: int | None,
) -> list[str]:
    """The nmap argument list for one chunk (no shell ever sees it)."""
    addresses = [_ip_text(t) for t in targets]
    if not addresses:
        raise ConfigError("nothing to scan: the chunk has no targets")
    families = {ipaddress.ip_address(a).version for a in addresses}
    if len(families) > 1:
        raise ConfigError(
            "a chunk mixes IPv4 and IPv6 addresses, which one nmap run cannot scan: "
            "chunk the targets by address family"
        )
    parse_nmap_time(host_timeout)
    cmd = [nmap_path, "-sV"]
    if ports.tcp:
        cmd.append("-sS" if privileged else "-sT")
    if ports.udp:
        if not privileged:
            raise ConfigError("UDP ports (U:) need root: nmap's UDP scan (-sU) uses raw sockets")
        cmd.append("-sU")
    cmd += [*ports.nmap_args, "-n", "--host-timeout", host_timeout.strip()]
    cmd += ["--stats-every", "1s", "-oX", str(xml_path)]
    if no_ping:
        cmd.append("-Pn")
    if version_intensity is not None:
        if not 0 <= version_intensity <= 9:
            raise ConfigError(f"version intensity must be 0-9, not {version_intensity}")
        cmd += ["--version-intensity", str(version_intensity)]
    if families == {6}:
        cmd.append("-6")
    cmd += addresses
    return cmd


def scan_chunk(
    targets: Sequence[Target],
    ports: PortSpec,
    *,
    host_timeout: str = "5m",
    privileged: bool | None = None,
    no_ping: bool = False,
    version_intensity: int | None = None,
    progress: Callable[[float], None] | None = None,
    cancel: threading.Event | None = None,
) -> ChunkResult:
    """Run nmap -sV on `targets` and return one Host per target (none is ever dropped).

    `progress` gets the chunk's progress 0..1, from nmap's per-phase "About N% done".
    Setting `cancel` stops nmap (SIGTERM, then SIGKILL) and raises ScanFailedError; a
    KeyboardInterrupt stops nmap the same way and propagates. A non-zero nmap exit raises
    ScanFailedError.
    """
    if not targets:
        return ChunkResult((), {}, (), 0.0, "")
    nmap_path = find_nmap()
    if privileged is None:
        privileged = is_privileged()
    budget = parse_nmap_time(host_timeout) * len(targets) + _DEADLINE_MARGIN
    with tempfile.TemporaryDirectory(prefix="posture-nmap-") as tmp:
        xml_path = Path(tmp) / "scan.xml"
        stderr_path = Path(tmp) / "stderr.txt"
        cmd = build_nmap_command(
            nmap_path,
            targets,
            ports,
            host_timeout=host_timeout,
            xml_path=xml_path,
            privileged=privileged,
            no_ping=no_ping,
            version_intensity=version_intensity,
        )
        started = time.monotonic()
        with stderr_path.open("wb") as stderr:
            try:
                # stdin from /dev/null: nmap reads keystrokes from a terminal to interact.
                # A session of its own: a terminal's Ctrl-C reaches only posture, which then
                # stops nmap itself (and marks the scan interrupted, not failed).
                proc = subprocess.Popen(
                    [*_death_signal_prefix(), *cmd],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                    start_new_session=True,
                )
            except OSError as exc:
                raise ScanFailedError(f"cannot run {nmap_path}: {exc}") from None
        run = _NmapRun(proc, cancel, deadline=started + budget)
        try:
            run.follow(progress)
        finally:
            run.stop()
        elapsed = time.monotonic() - started
        what = _describe_targets(targets)
        if run.why_stopped == "cancel":
            raise ScanFailedError(f"scan of {what} cancelled: nmap was stopped before it finished")
        if run.why_stopped == "deadline":
            raise ScanFailedError(
                f"nmap scanning {what} did not finish within {budget:.0f}s although each host "
                f"has --host-timeout {host_timeout}: it looks hung; check nmap and retry"
            )
        if proc.returncode != 0:
            tail = _tail(stderr_path)
            how = (
                f"was killed by signal {-proc.returncode}"
                if proc.returncode < 0
                else f"exited with code {proc.returncode}"
            )
            raise ScanFailedError(
                f"nmap {how} scanning {what}: {for_terminal(tail, 1500) or 'no error message'}"
            )
        xml = _read_xml(xml_path, what)
    hosts, ports_scanned, version = _parse(xml, targets)
    return ChunkResult(
        hosts=tuple(hosts),
        ports_scanned=ports_scanned,
        command=tuple(cmd),
        elapsed=elapsed,
        nmap_version=version,
    )


class _NmapRun:
    """One nmap process: stdout followed line by line, stopped on cancel or when hung."""

    def __init__(
        self, proc: subprocess.Popen[bytes], cancel: threading.Event | None, deadline: float
    ) -> None:
        self.proc = proc
        self.cancel = cancel
        self.deadline = deadline
        self.why_stopped: str | None = None
        self._finished = threading.Event()
        self._lock = threading.Lock()
        self._watcher = threading.Thread(target=self._watch, name="posture-nmap-watch", daemon=True)
        self._watcher.start()

    def follow(self, progress: Callable[[float], None] | None) -> None:
        # A blocking read keeps the pipe drained and costs nothing while nmap is quiet.
        stdout = self.proc.stdout
        assert stdout is not None
        while True:
            line = stdout.readline(_MAX_STDOUT_LINE)
            if not line:
                break
            if progress is not None:
                value = _overall_progress(line)
                if value is not None:
                    progress(value)
            if self.cancel is not None and self.cancel.is_set():
                self._terminate("cancel")
        self.proc.wait()

    def _watch(self) -> None:
        # Wakes at once when nmap ends (follow's finally sets _finished); otherwise looks at the
        # cancel flag and the deadline a few times a second.
        while not self._finished.wait(_WATCH_INTERVAL):
            if self.cancel is not None and self.cancel.is_set():
                self._terminate("cancel")
                return
            if time.monotonic() > self.deadline:
                self._terminate("deadline")
                return

    def _terminate(self, why: str) -> None:
        with self._lock:
            if self.proc.poll() is not None:
                return
            if self.why_stopped is None:
                self.why_stopped = why
            self.proc.terminate()
            try:
                self.proc.wait(_STOP_GRACE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def stop(self) -> None:
        """Make sure nmap is gone (an exception or Ctrl-C may have cut `follow` short)."""
        if self.proc.poll() is None:
            self._terminate(self.why_stopped or "interrupted")
        self._finished.set()
        self._watcher.join()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _describe_targets(targets: Sequence[Target]) -> str:
    shown = ", ".join(for_terminal(t.address, 64) for t in targets[:3])
    more = len(targets) - 3
    return f"{shown} and {more} more" if more > 0 else shown


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - _STDERR_TAIL_BYTES))
            data = handle.read()
    except OSError:
        return ""
    lines = [ln.strip() for ln in data.decode("utf-8", "replace").splitlines() if ln.strip()]
    return " | ".join(lines[-5:])


def _read_xml(path: Path, what: str) -> bytes:
    try:
        size = path.stat().st_size
        if size > _MAX_XML_BYTES:
            raise ScanFailedError(
                f"nmap's XML report for {what} is {size} bytes, over the "
                f"{_MAX_XML_BYTES} byte limit: scan fewer hosts per chunk"
            )
        return path.read_bytes()
    except FileNotFoundError:
        raise ScanFailedError(
            f"nmap finished scanning {what} but wrote no XML report ({path}): check that the "
            "temporary directory is writable"
        ) from None


class _XmlReportParser(nmap.PortScanner):
    """python-nmap's XML parser without its constructor, which runs `nmap -V` to find the binary.

    analyse_nmap_xml_scan only reads `_nmap_last_output` and writes `_scan_result`, so those are
    all this instance needs; it never runs nmap.
    """

    def __init__(self) -> None:  # deliberately not calling PortScanner.__init__
        self._nmap_last_output: bytes | str = ""
        self._scan_result: dict[str, Any] = {}


def parse_nmap_xml(xml: bytes, targets: Sequence[Target]) -> tuple[list[Host], dict[str, str]]:
    """Hosts (one per target, in target order) and the ports nmap covered, from nmap's XML.

    defusedxml checks the document first (no entities, no external references); python-nmap
    then parses it. What python-nmap leaves out is read from the checked tree: timed-out hosts,
    TLS tunnels, the service detection method and every CPE. Targets missing from the XML were
    not answering host discovery and come back DOWN.
    """
    hosts, ports_scanned, _ = _parse(xml, targets)
    return hosts, ports_scanned


def _parse(xml: bytes, targets: Sequence[Target]) -> tuple[list[Host], dict[str, str], str]:
    try:
        root = SafeET.fromstring(xml)
    except (defusedxml.DefusedXmlException, ParseError) as exc:
        raise ScanFailedError(f"nmap's XML report cannot be used: {exc}") from None
    if root.tag != "nmaprun":
        raise ScanFailedError(f"not an nmap XML report (root element <{root.tag[:40]}>)")
    try:
        report = _XmlReportParser().analyse_nmap_xml_scan(xml)
    except (nmap.PortScannerError, AttributeError, ValueError, TypeError) as exc:
        raise ScanFailedError(
            f"nmap's XML report is incomplete (was nmap stopped?): {for_terminal(exc, 200)}"
        ) from None
    scaninfo = report.get("nmap", {}).get("scaninfo", {})
    ports_scanned = {
        str(proto): str(info.get("services") or "")
        for proto, info in scaninfo.items()
        if isinstance(info, dict) and "services" in info
    }
    timeout_reason = _timeout_reason(root.get("args") or "")
    by_address = {_normalise(t.address): t for t in targets}
    found: dict[str, Host] = {}
    for element in root.iter("host"):
        address = _host_address(element)
        if address is None:
            continue
        key = _normalise(address)
        target = by_address.get(key)
        parsed = report.get("scan", {}).get(address, {})
        found[key] = _host(
            element, address, parsed, target.hostname if target else None, timeout_reason
        )
    hosts = [
        found.pop(key)
        if key in found
        else Host(
            address=target.address,
            state=HostState.DOWN,
            hostname=target.hostname,
            reason="no reply to host discovery",
        )
        for key, target in by_address.items()
    ]
    hosts.extend(found.values())  # hosts nmap reported that were not asked for by this name
    return hosts, ports_scanned, clip(root.get("version") or "", 40)


def _normalise(address: str) -> str:
    try:
        return ipaddress.ip_address(address).compressed
    except ValueError:
        return address


def _host_address(element: Element) -> str | None:
    addresses = {a.get("addrtype"): a.get("addr") for a in element.iter("address")}
    return addresses.get("ipv4") or addresses.get("ipv6")


def _timeout_reason(args: str) -> str:
    match = _HOST_TIMEOUT_ARG.search(args)
    value = f" {match.group(1)}" if match else ""
    return f"nmap --host-timeout{value} reached"


def _host(
    element: Element,
    address: str,
    parsed: dict[str, Any],
    hostname: str | None,
    timeout_reason: str,
) -> Host:
    status = element.find("status")
    state_text = status.get("state", "") if status is not None else ""
    reason = status.get("reason") if status is not None else None
    if element.get("timedout") == "true":
        state, reason = HostState.TIMEOUT, timeout_reason
    elif state_text == "up":
        state, reason = HostState.UP, None
    elif state_text == "down":
        state = HostState.DOWN
    else:
        state = HostState.ERROR
        reason = f"nmap reported host state {state_text or 'nothing'!r}"
    details = {(p.get("protocol"), p.get("portid")): p for p in element.iterfind("ports/port")}
    services = []
    for proto in ("tcp", "udp", "sctp"):
        for port, info in sorted(parsed.get(proto, {}).items()):
            services.append(_service(proto, int(port), info, details.get((proto, str(port)))))
    return Host(
        address=address,
        state=state,
        hostname=hostname,
        services=tuple(services),
        reason=clip(reason, 200) if reason else None,
    )


def _service(proto: str, port: int, info: dict[str, Any], element: Element | None) -> Service:
    detail = element.find("service") if element is not None else None
    conf = info.get("conf")
    cpes: tuple[str, ...] = ()
    if detail is not None:
        cpes = tuple(clip(c.text) for c in detail.iterfind("cpe") if c.text)[:_MAX_CPES]
    return Service(
        port=port,
        proto=proto,
        state=str(info.get("state") or "unknown"),
        name=_text(info.get("name")),
        product=_text(info.get("product")),
        version=_text(info.get("version")),
        extrainfo=_text(info.get("extrainfo")),
        tunnel=_text(detail.get("tunnel")) if detail is not None else None,
        method=_text(detail.get("method")) if detail is not None else None,
        conf=int(conf) if isinstance(conf, str) and conf.isdigit() else None,
        cpe=cpes,
    )


def _text(value: object) -> str | None:
    # Product and version strings are captured from the target's answers: hostile, so bounded.
    if value is None or value == "":
        return None
    return clip(str(value))
