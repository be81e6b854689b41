"""scanner.probes.portscan: port specs, the nmap command, XML parsing, and real nmap runs.

Addresses: the lab on 127.0.51.x, single-purpose servers on 127.0.54.x. Every nmap run names
the exact ports this file started.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from demo.lab import Lab, ServiceLoop
from scanner.errors import ConfigError, ScanFailedError, ToolMissingError
from scanner.model import HostState
from scanner.probes.checks import run_checks
from scanner.probes.portscan import (
    _MAX_XML_BYTES,
    PortSpec,
    _death_signal_prefix,
    _read_xml,
    build_nmap_command,
    find_nmap,
    parse_nmap_xml,
    parse_ports,
    scan_chunk,
)
from scanner.safetext import MAX_FIELD
from scanner.targets import Target

DATA = Path(__file__).parent / "data"


def targets(*addresses: str) -> list[Target]:
    return [Target(a) for a in addresses]


# --- --ports ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "label", "args"),
    [
        ("top100", "top100", ("--top-ports", "100")),
        ("TOP1000", "top1000", ("--top-ports", "1000")),
        ("all", "all", ("-p", "1-65535")),
        ("22", "22", ("-p", "22")),
        ("22,80,8000-8100", "22,80,8000-8100", ("-p", "22,80,8000-8100")),
        (" 22 , 443 ", "22,443", ("-p", "22,443")),
        ("T:22,25", "22,25", ("-p", "22,25")),
        ("1-65535", "1-65535", ("-p", "1-65535")),
        ("80-80", "80", ("-p", "80")),
    ],
)
def test_parse_ports_tcp(text: str, label: str, args: tuple[str, ...]) -> None:
    spec = parse_ports(text)
    assert spec == PortSpec(label, args, udp=False)
    assert spec.tcp


@pytest.mark.root
def test_parse_ports_udp_as_root() -> None:
    spec = parse_ports("T:22,u:69,161-162")
    assert spec == PortSpec("T:22,U:69,161-162", ("-p", "T:22,U:69,161-162"), udp=True)
    assert spec.tcp
    udp_only = parse_ports("U:53")
    assert udp_only.udp and not udp_only.tcp


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("", "empty"),
        ("22,,80", "''"),
        ("0", "'0'"),
        ("65536", "'65536'"),
        ("80-70", "'80-70'"),
        ("http", "'http'"),
        ("22-", "'22-'"),
        ("T:", "'T:'"),
        ("22;rm -rf /", "'22;rm -rf /'"),
        ("-p-", "'-p-'"),
    ],
)
def test_parse_ports_rejects_naming_the_bad_part(text: str, bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_ports(text)
    assert bad in str(info.value)
    assert info.value.exit_code == 2


def test_udp_ports_need_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(ConfigError, match=r"UDP ports \(U:\) need root"):
        parse_ports("22,U:69")
    assert parse_ports("22,80").udp is False  # TCP alone is fine without root


# --- finding nmap, building its command ------------------------------------------------------


def test_find_nmap_missing_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolMissingError) as info:
        find_nmap()
    assert "apt-get install -y nmap" in str(info.value)
    assert "https://nmap.org/download" in str(info.value)
    assert info.value.exit_code == 2


@pytest.mark.nmap
def test_find_nmap_returns_an_executable() -> None:
    assert os.access(find_nmap(), os.X_OK)


def build(privileged: bool, **kwargs: object) -> list[str]:
    options: dict[str, object] = {
        "host_timeout": "5m",
        "xml_path": Path("/tmp/x/scan.xml"),
        "privileged": privileged,
        "no_ping": False,
        "version_intensity": None,
    }
    options.update(kwargs)
    spec = options.pop("ports", parse_ports("22,80"))
    chosen = options.pop("targets", targets("127.0.54.1", "127.0.54.2"))
    return build_nmap_command("/usr/bin/nmap", chosen, spec, **options)  # type: ignore[arg-type]


def test_command_as_root_is_a_syn_scan() -> None:
    assert build(True) == [
        "/usr/bin/nmap", "-sV", "-sS", "-p", "22,80", "-n", "--host-timeout", "5m",
        "--stats-every", "1s", "-oX", "/tmp/x/scan.xml", "127.0.54.1", "127.0.54.2",
    ]  # fmt: skip


def test_command_without_root_is_a_connect_scan() -> None:
    cmd = build(False)
    assert "-sT" in cmd and "-sS" not in cmd and "-sU" not in cmd
    assert cmd[-2:] == ["127.0.54.1", "127.0.54.2"]


def test_command_options() -> None:
    cmd = build(True, no_ping=True, version_intensity=2, host_timeout="90s")
    assert "-Pn" in cmd
    assert cmd[cmd.index("--version-intensity") + 1] == "2"
    assert cmd[cmd.index("--host-timeout") + 1] == "90s"
    top = build(True, ports=parse_ports("top100"))
    assert top[top.index("--top-ports") + 1] == "100"
    udp = build(True, ports=PortSpec("T:22,U:69", ("-p", "T:22,U:69"), udp=True))
    assert "-sS" in udp and "-sU" in udp
    udp_only = build(True, ports=PortSpec("U:69", ("-p", "U:69"), udp=True))
    assert "-sU" in udp_only and "-sS" not in udp_only
    v6 = build(True, targets=targets("::1"))
    assert v6[-2:] == ["-6", "::1"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"host_timeout": "5 minutes"}, "not a time nmap understands"),
        ({"host_timeout": "0s"}, "not a time nmap understands"),
        ({"version_intensity": 10}, "0-9"),
        ({"targets": targets("-oN/etc/passwd")}, "not an IP address"),
        ({"targets": targets("example.com")}, "not an IP address"),
        ({"targets": targets("127.0.54.1", "::1")}, "mixes IPv4 and IPv6"),
        ({"targets": []}, "no targets"),
        ({"ports": PortSpec("U:69", ("-p", "U:69"), udp=True), "privileged": False}, "root"),
    ],
)
def test_command_refuses_bad_input(kwargs: dict[str, object], message: str) -> None:
    privileged = bool(kwargs.pop("privileged", True))
    with pytest.raises(ConfigError, match=message):
        build(privileged, **kwargs)


# --- parsing recorded XML ---------------------------------------------------------------------


def test_parse_recorded_lab_scan() -> None:
    xml = (DATA / "lab.xml").read_bytes()
    asked = [
        Target("127.0.55.10", "legacy.lab"),
        Target("127.0.55.12"),
        Target("127.0.55.15"),
        Target("127.0.55.99", "gone.lab"),  # not in the XML: no reply to host discovery
    ]
    hosts, scanned = parse_nmap_xml(xml, asked)
    assert scanned == {"tcp": "21-23,2375,2379,6000,10250"}
    assert [h.address for h in hosts] == [t.address for t in asked]
    legacy, container, hardened, gone = hosts
    assert legacy.state is HostState.UP and legacy.hostname == "legacy.lab"
    assert gone.state is HostState.DOWN and gone.hostname == "gone.lab"
    assert gone.reason == "no reply to host discovery" and gone.services == ()

    open_ = {s.port: s for s in legacy.services if s.state == "open"}
    assert set(open_) == {21, 23, 6000}
    ftp = open_[21]
    assert (ftp.name, ftp.product, ftp.version) == ("ftp", "pyftpdlib", "2.2.0")
    assert ftp.method == "probed" and ftp.conf == 10 and ftp.proto == "tcp"
    assert ftp.cpe == ("cpe:/a:giampaolo_rodola:pyftpdlib",)
    assert (open_[23].name, open_[23].product) == ("telnet", "Linux telnetd")
    assert (open_[6000].product, open_[6000].extrainfo) == ("X.Org", "open")
    closed = next(s for s in legacy.services if s.port == 22)
    assert closed.state == "closed" and closed.method == "table" and closed.conf == 3

    by_port = {s.port: s for s in container.services}
    docker = by_port[2375]
    assert (docker.name, docker.product, docker.version) == ("docker", "Docker", "24.0.7")
    assert docker.extrainfo == "API 1.43" and docker.tunnel is None
    kubelet = by_port[10250]
    assert kubelet.tunnel == "ssl" and kubelet.name == "http"  # python-nmap drops the tunnel
    ssh = next(s for s in hardened.services if s.state == "open")
    assert (ssh.name, ssh.product, ssh.version) == ("ssh", "OpenSSH", "9.2p1 Debian 2+deb12u3")
    # every CPE, where python-nmap keeps only the last one
    assert ssh.cpe == ("cpe:/a:openbsd:openssh:9.2p1", "cpe:/o:linux:linux_kernel")


def test_parse_does_not_need_the_nmap_binary(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # python-nmap's PortScanner() would fail here
    hosts, _ = parse_nmap_xml((DATA / "lab.xml").read_bytes(), targets("127.0.55.15"))
    assert hosts[0].state is HostState.UP


def test_parse_timed_out_host_is_recorded() -> None:
    xml = (DATA / "timedout.xml").read_bytes()
    hosts, _ = parse_nmap_xml(xml, targets("127.0.55.30", "127.0.55.31"))
    slow, empty = hosts
    assert slow.state is HostState.TIMEOUT
    assert slow.reason == "nmap --host-timeout 1s reached"
    # Loopback answers host discovery for every 127/8 address: an address with nothing on it
    # is up, with its ports closed (never DOWN).
    assert empty.state is HostState.UP
    assert [(s.port, s.state) for s in empty.services] == [(7000, "closed")]


def test_entity_bomb_is_rejected() -> None:
    with pytest.raises(ScanFailedError, match="cannot be used"):
        parse_nmap_xml((DATA / "entity_bomb.xml").read_bytes(), targets("127.0.55.40"))


@pytest.mark.parametrize(
    "xml",
    [
        b"",
        b"<nmaprun><host>",  # nmap killed mid-write
        b"<html>not nmap</html>",
        b'<?xml version="1.0"?><!DOCTYPE x SYSTEM "http://127.0.54.1/x.dtd"><nmaprun/>',
        b"<nmaprun></nmaprun>",  # no runstats: nmap never finished
    ],
)
def test_unusable_xml_is_a_scan_failure(xml: bytes) -> None:
    with pytest.raises(ScanFailedError):
        parse_nmap_xml(xml, targets("127.0.55.40"))


def test_hostile_service_strings_are_clipped() -> None:
    # nmap writes a target's control bytes as text escapes (\x1b); markup arrives XML-escaped.
    evil = "&lt;script&gt;\\x1b[2J" + "A" * 5000
    xml = (DATA / "lab.xml").read_text()
    xml = xml.replace('product="pyftpdlib"', f'product="{evil}"', 1)
    xml = xml.replace('version="2.2.0"', 'version="' + "9" * 3000 + '"', 1)
    hosts, _ = parse_nmap_xml(xml.encode(), targets("127.0.55.10"))
    ftp = next(s for s in hosts[0].services if s.port == 21)
    assert ftp.product is not None and ftp.version is not None
    assert ftp.product.startswith("<script>\\x1b[2J")  # kept as evidence, but bounded
    assert len(ftp.product) < MAX_FIELD + 40 and ftp.product.endswith("chars]")
    assert len(ftp.version) < MAX_FIELD + 40


# --- real nmap --------------------------------------------------------------------------------

LAB_BASE = "127.0.51"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("the lab serves ports below 1024: needs root")
    with Lab(LAB_BASE, hosts=["legacy-unix", "cache", "windows", "database"]) as running:
        yield running


@pytest.mark.nmap
@pytest.mark.root
def test_scan_chunk_identifies_lab_services(lab: Lab) -> None:
    served = {(ep.address, ep.port): ep.name for ep in lab.endpoints}
    chosen = ["legacy-unix", "cache", "windows", "database"]
    addresses = [lab.address_of(role) for role in chosen]
    empty = f"{LAB_BASE}.99"  # nothing listens here
    ports = "21,23,3306,3389,5432,5900,6000,6379,11211"
    seen: list[float] = []
    result = scan_chunk(
        [Target(a, f"{role}.lab") for a, role in zip(addresses, chosen, strict=True)]
        + [Target(empty)],
        parse_ports(ports),
        host_timeout="2m",
        progress=seen.append,
    )
    assert result.ports_scanned == {"tcp": "21,23,3306,3389,5432,5900,6000,6379,11211"}
    assert "-sS" in result.command and "--stats-every" in result.command
    assert result.nmap_version and result.elapsed > 0
    assert all(0.0 <= f <= 1.0 for f in seen)
    by_address = {h.address: h for h in result.hosts}
    assert list(by_address) == [*addresses, empty]
    assert by_address[addresses[0]].hostname == "legacy-unix.lab"
    names = {
        (h.address, s.port): (s.name, s.product)
        for h in result.hosts
        for s in h.services
        if s.state == "open"
    }
    assert set(names) == set(served) & set(names)  # open ports are exactly the lab's
    found = {served[key]: value for key, value in names.items()}
    assert found["ftp"] == ("ftp", "pyftpdlib")
    assert found["telnet"] == ("telnet", "Linux telnetd")
    assert found["x11"] == ("X11", "X.Org")
    assert found["vnc"] == ("vnc", "VNC")
    assert found["rdp"] == ("ms-wbt-server", "Microsoft Terminal Services")
    assert found["mysql"] == ("mysql", "MySQL")
    assert found["postgresql"] == ("postgresql", "PostgreSQL DB")
    if "redis" in found:  # present when redis-server is installed
        assert found["redis"] == ("redis", "Redis key-value store")
    if "memcached" in found:
        assert found["memcached"] == ("memcached", "Memcached")
    mysql = next(s for s in by_address[addresses[3]].services if s.port == 3306)
    assert mysql.version == "8.0.36"
    # Nothing listens on the empty address; on loopback it is still "up", every port closed.
    assert by_address[empty].state is HostState.UP
    assert {s.state for s in by_address[empty].services} == {"closed"}

    # The active checks run on what nmap found.
    legacy = run_checks(by_address[lab.address_of("legacy-unix")])
    ftp = next(s for s in legacy.services if s.port == 21)
    assert ftp.checks["ftp"]["anonymous"] is True
    cache = run_checks(by_address[lab.address_of("cache")])
    checked = {s.port: s.checks for s in cache.services if s.checks}
    if "redis" in found:
        assert checked[6379]["redis"]["unauthenticated"] is True
    if "memcached" in found:
        assert checked[11211]["memcached"]["unauthenticated"] is True


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(25)  # accepts and never says a word: -sV keeps waiting


@pytest.mark.nmap
def test_host_timeout_is_recorded_not_dropped(loop: ServiceLoop) -> None:
    loop.serve("127.0.54.2", 7001, _silent)
    # privileged=False: the TCP connect scan an unprivileged user gets
    result = scan_chunk(
        targets("127.0.54.2", "127.0.54.3"),
        parse_ports("7001"),
        host_timeout="1s",
        privileged=False,
    )
    assert "-sT" in result.command
    slow, other = result.hosts
    assert slow.address == "127.0.54.2" and slow.state is HostState.TIMEOUT
    assert slow.reason == "nmap --host-timeout 1s reached"
    assert other.state is HostState.UP


@pytest.mark.nmap
def test_cancel_stops_nmap(loop: ServiceLoop) -> None:
    loop.serve("127.0.54.4", 7002, _silent)
    cancel = threading.Event()

    def on_progress(fraction: float) -> None:
        cancel.set()  # nmap is running and reporting: stop it

    with pytest.raises(ScanFailedError, match="cancelled"):
        scan_chunk(
            targets("127.0.54.4"),
            parse_ports("7002"),
            host_timeout="1m",
            progress=on_progress,
            cancel=cancel,
        )
    assert cancel.is_set()


@pytest.mark.nmap
def test_cancel_set_from_another_thread(loop: ServiceLoop) -> None:
    loop.serve("127.0.54.5", 7003, _silent)
    cancel = threading.Event()
    timer = threading.Timer(0.5, cancel.set)
    timer.start()
    try:
        with pytest.raises(ScanFailedError, match="cancelled"):
            scan_chunk(targets("127.0.54.5"), parse_ports("7003"), host_timeout="1m", cancel=cancel)
    finally:
        timer.cancel()


def nmap_processes_scanning(address: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue  # the process ended while we looked
        if args and args[0].endswith(b"nmap") and address.encode() in args:
            found.append(cmdline.parent.name)
    return found


@pytest.mark.nmap
def test_interrupt_stops_nmap_and_propagates(loop: ServiceLoop) -> None:
    loop.serve("127.0.54.7", 7004, _silent)

    def interrupted(fraction: float) -> None:
        raise KeyboardInterrupt  # as Ctrl-C would, in the middle of following nmap

    with pytest.raises(KeyboardInterrupt):
        scan_chunk(
            targets("127.0.54.7"), parse_ports("7004"), host_timeout="1m", progress=interrupted
        )
    assert nmap_processes_scanning("127.0.54.7") == []


@pytest.mark.nmap
def test_nmap_failure_reports_its_error() -> None:
    # A port list nmap itself rejects (parse_ports would never produce it): nmap exits 1
    # before sending anything.
    bogus = replace(parse_ports("22"), nmap_args=("-p", "70000"))
    with pytest.raises(ScanFailedError) as info:
        scan_chunk(targets("127.0.54.6"), bogus, host_timeout="10s")
    message = str(info.value)
    assert "nmap exited with code" in message and "127.0.54.6" in message
    assert "65535" in message  # nmap's own words about the port range
    assert info.value.exit_code == 3


def test_empty_chunk_runs_nothing() -> None:
    result = scan_chunk([], parse_ports("22"))
    assert result.hosts == () and result.command == ()


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"Ping Scan Timing: About 50.00% done; ETC: 10:00 (0:00:01 remaining)", 0.025),
        (b"SYN Stealth Scan Timing: About 0.00% done", 0.05),
        (b"Connect Scan Timing: About 100.00% done; ETC: 10:00", 0.5),
        (b"UDP Scan Timing: About 20.00% done; ETC: 10:00", 0.14),
        (b"Service scan Timing: About 50.00% done; ETC: 10:00", 0.75),
        (b"Stats: 0:00:03 elapsed; 0 hosts completed (1 up), 1 undergoing Service Scan", None),
        (b"Nmap scan report for 127.0.50.1", None),
    ],
)
def test_progress_moves_forward_across_nmap_phases(line: bytes, expected: float | None) -> None:
    from scanner.probes.portscan import _overall_progress

    value = _overall_progress(line)
    assert value == (pytest.approx(expected) if expected is not None else None)


# --- process hygiene and bounds ---------------------------------------------------------------


def test_xml_report_over_the_cap_is_refused(tmp_path: Path) -> None:
    assert _MAX_XML_BYTES == 64 * 1024 * 1024
    report = tmp_path / "scan.xml"
    with report.open("wb") as handle:  # sparse: costs no disk
        handle.truncate(_MAX_XML_BYTES + 1)
    with pytest.raises(ScanFailedError, match="over the 67108864 byte limit"):
        _read_xml(report, "127.0.54.8")
    report.write_bytes(b"<nmaprun/>")
    assert _read_xml(report, "127.0.54.8") == b"<nmaprun/>"


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _orphan_survives(prefix: tuple[str, ...]) -> bool:
    """Start `sleep` (through `prefix`) from a Python that is then SIGKILLed; whether the
    sleep is still running 3 s later. The sleep writes nothing: no broken pipe can end it."""
    code = (
        "import subprocess, time\n"
        f"child = subprocess.Popen({[*prefix, 'sleep', '30']!r}, start_new_session=True)\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(30)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    child = None
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        # Kill the parent only once the prefix has done its work and exec'd `sleep`: the
        # death signal is armed by then (a parent killed before that is a different race).
        armed_by = time.monotonic() + 5
        while time.monotonic() < armed_by and _comm(child) != "sleep":
            time.sleep(0.01)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 3
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        return _alive(child)
    finally:
        parent.kill()
        parent.wait(timeout=10)
        if parent.stdout is not None:
            parent.stdout.close()
        if child is not None and _alive(child):
            os.kill(child, signal.SIGKILL)


def test_the_death_signal_ends_nmap_with_posture() -> None:
    prefix = _death_signal_prefix()
    if not prefix:
        pytest.skip("util-linux setpriv with --pdeathsig is not installed")
    assert prefix[1:] == ("--pdeathsig", "KILL", "--")
    assert not _orphan_survives(prefix)
    assert _orphan_survives(())  # control: without it, the child outlives its killed parent
