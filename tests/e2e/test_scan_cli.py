"""`posture scan` as a user runs it: the real CLI in a subprocess, real nmap, real services.

Each test serves its own loopback addresses (127.0.6x.y) and scans only those addresses and the
ports it started.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import jsonschema
import pytest

from demo.lab import Lab, LabEndpoint, ServiceLoop, hang_up, telnet

ROOT = Path(__file__).resolve().parents[2]
SARIF_SCHEMA = ROOT / "tests" / "data" / "sarif-schema-2.1.0.json"
IS_ROOT = os.geteuid() == 0
HAS_NMAP = shutil.which("nmap") is not None

needs_nmap = pytest.mark.skipif(not HAS_NMAP, reason="nmap is not installed (apt-get install nmap)")
needs_root = pytest.mark.skipif(not IS_ROOT, reason="serving ports below 1024 needs root")


def posture(
    *args: str, env: dict[str, str] | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scanner", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
        check=False,
    )


def scan_json(*args: str) -> tuple[int, dict]:
    proc = posture("scan", *args, "--json")
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def rules_found(doc: dict) -> set[tuple[str, str, int | None]]:
    return {(f["rule_id"], f["host"], f["port"]) for f in doc["findings"]}


@pytest.fixture
def loop() -> Iterator[ServiceLoop]:
    service_loop = ServiceLoop()
    yield service_loop
    service_loop.close()


# --- the whole slice on the lab -----------------------------------------------------------------


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    if not (IS_ROOT and HAS_NMAP):
        pytest.skip("the lab needs root (well-known ports) and nmap")
    with Lab("127.0.61") as running:
        yield running


@needs_nmap
@needs_root
def test_scan_of_the_lab_finds_the_insecure_services(lab: Lab, tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    first, last = lab.addresses[0], lab.addresses[-1]
    targets = f"{first}-{last.rsplit('.', 1)[1]}"
    code, doc = scan_json(
        targets, "--ports", lab.port_list(), "--db", str(db), "--fail-on", "critical"
    )
    assert code == 1, "an unauthenticated Docker API is critical: --fail-on critical exits 1"
    assert doc["status"] == "completed"
    assert doc["hosts"]["total"] == len(lab.addresses)
    found = {rule for rule, _, _ in rules_found(doc)}
    by_service: dict[str, LabEndpoint] = {}
    for ep in lab.endpoints:  # the first host serving each protocol (legacy-unix's FTP)
        by_service.setdefault(ep.name, ep)
    expected = {
        "baseline.telnet-exposed",
        "baseline.ftp-anonymous",
        "baseline.rsh-exposed",
        "baseline.vnc-exposed",
        "baseline.smb-exposed",
        "baseline.rdp-exposed",
        "baseline.mysql-exposed",
        "baseline.postgresql-exposed",
        "baseline.docker-api-unauthenticated",
        "baseline.etcd-unauthenticated",
        "baseline.elasticsearch-unauthenticated",
    }
    if "redis" in by_service:
        expected.add("baseline.redis-unauthenticated")
    if "memcached" in by_service:
        expected.add("baseline.memcached-unauthenticated")
    assert expected <= found, f"missing: {sorted(expected - found)}"
    # Each finding sits on the address and port the lab served it on.
    ftp = by_service["ftp"]
    assert ("baseline.ftp-anonymous", ftp.address, ftp.port) in rules_found(doc)
    anon = next(f for f in doc["findings"] if f["rule_id"] == "baseline.ftp-anonymous")
    assert anon["confidence"] == "certain"  # proven by logging in, not guessed from the port
    assert len(anon["fingerprint"]) == 64

    # The same findings through `posture findings --json`, filtered.
    listed = posture("findings", "--db", str(db), "--severity", "critical", "--json")
    assert listed.returncode == 0, listed.stderr
    critical = json.loads(listed.stdout)
    assert critical and all(f["severity"] == "critical" for f in critical)
    required = {"fingerprint", "rule_id", "severity", "host", "port", "proto", "title", "status"}
    required |= {"confidence", "evidence", "first_seen", "last_seen"}
    assert required <= set(critical[0])

    # A report in each format; SARIF is valid against the OASIS schema.
    for fmt in ("html", "md", "json", "csv", "sarif"):
        out = tmp_path / f"report.{fmt}"
        proc = posture("report", "--format", fmt, "--db", str(db), "-o", str(out))
        assert proc.returncode == 0, proc.stderr
        assert out.stat().st_size > 500
    html = (tmp_path / "report.html").read_text()
    assert "baseline.docker-api-unauthenticated" in html and "<script" not in html
    sarif = json.loads((tmp_path / "report.sarif").read_text())
    jsonschema.validate(sarif, json.loads(SARIF_SCHEMA.read_text()))
    assert len(sarif["runs"][0]["results"]) == len(doc["findings"])


# --- lifecycle across scans of changing services ------------------------------------------------


@needs_nmap
@needs_root
def test_lifecycle_open_fixed_reopened_and_accepted(loop: ServiceLoop, tmp_path: Path) -> None:
    db = str(tmp_path / "p.db")
    telnet_host = "127.0.62.10"  # .11 serves nothing: scanned, covered, never a finding
    loop.serve(telnet_host, 23, telnet())
    scan = ["127.0.62.10-11", "--ports", "23,5900", "--db", db]

    _, first = scan_json(*scan)
    assert rules_found(first) == {("baseline.telnet-exposed", telnet_host, 23)}
    fp = first["findings"][0]["fingerprint"]

    # Telnet goes away: the next complete scan covered host and port and marks it fixed.
    loop.close()
    _, second = scan_json(*scan)
    assert second["findings_fixed"] == 1 and second["findings"] == []
    shown_proc = posture("findings", "show", fp, "--db", db, "--json")
    assert shown_proc.returncode == 0, shown_proc.stderr
    shown = json.loads(shown_proc.stdout)  # the finding's fields plus its "events"
    assert shown["fingerprint"] == fp and shown["status"] == "fixed"
    assert shown["events"][-1]["to_status"] == "fixed"

    # It comes back: reopened, same fingerprint.
    again = ServiceLoop()
    try:
        again.serve(telnet_host, 23, telnet())
        _, third = scan_json(*scan)
        assert [(f["fingerprint"], f["status"]) for f in third["findings"]] == [(fp, "reopened")]
        # People's decisions survive scans, present or absent.
        proc = posture(
            "findings", "set-status", fp[:12], "--status", "risk_accepted",
            "--reason", "jump host, isolated VLAN", "--expires", "2099-12-31", "--db", db,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        _, fourth = scan_json(*scan)
        assert fourth["findings"][0]["status"] == "risk_accepted"
    finally:
        again.close()
    _, fifth = scan_json(*scan)
    assert fifth["findings_fixed"] == 0
    listed = json.loads(posture("findings", "--db", db, "--status", "all", "--json").stdout)
    assert [f["status"] for f in listed] == ["risk_accepted"]


# --- hosts that time out, scans that are killed -------------------------------------------------


@needs_nmap
def test_host_that_times_out_is_recorded(loop: ServiceLoop, tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    # Silent services keep -sV probing far longer than the 2 s host timeout.
    for port in (2001, 2002, 2003):
        loop.serve("127.0.63.10", port, hang_up())
    _, doc = scan_json("127.0.63.10", "--ports", "2001-2003", "--timeout", "2s", "--db", str(db))
    assert doc["hosts"].get("timeout") == 1, doc["hosts"]
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT address, state, reason FROM scan_hosts").fetchall()
    assert rows[0][:2] == ("127.0.63.10", "timeout") and "timeout" in rows[0][2]


@needs_nmap
@needs_root
def test_killed_scan_keeps_finished_chunks_and_resumes(loop: ServiceLoop, tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    hosts = [f"127.0.64.{i}" for i in range(10, 18)]
    for host in hosts:
        loop.serve(host, 23, telnet())
    proc = subprocess.Popen(
        [sys.executable, "-m", "scanner", "scan", "127.0.64.10-17", "--ports", "23",
         "--chunk-size", "1", "--concurrency", "1", "--db", str(db), "--json"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        done = 0
        while done < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            if db.exists():
                with closing(sqlite3.connect(db, timeout=30)) as conn:
                    done = conn.execute("SELECT count(*) FROM scan_hosts").fetchone()[0]
        assert proc.poll() is None, "the scan finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    killed_at = time.time()
    with closing(sqlite3.connect(db)) as conn:
        status, done_before = conn.execute("SELECT status, hosts_done FROM scans").fetchone()
        kept = {a for (a,) in conn.execute("SELECT address FROM scan_hosts")}
    assert status == "running" and 2 <= done_before < len(hosts)

    _, doc = scan_json("--resume", "1", "--db", str(db))
    assert doc["status"] == "completed" and doc["scan_id"] == 1
    with closing(sqlite3.connect(db)) as conn:
        rows = dict(conn.execute("SELECT address, finished FROM scan_hosts").fetchall())
        findings = conn.execute("SELECT count(*) FROM findings").fetchone()[0]
    assert set(rows) == set(hosts) and findings == len(hosts)
    # What the killed run finished was kept as it was, not scanned again.
    for address in kept:
        finished = time.mktime(time.strptime(rows[address], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
        assert finished <= killed_at + 1
    resumed = posture("scan", "--resume", "1", "--db", str(db))
    assert resumed.returncode == 2 and "already complete" in resumed.stderr


def _nmap_child(parent: int, address: str, timeout: float) -> int | None:
    """The pid of the nmap `parent` started to scan `address`, read from /proc (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for children in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                pids = children.read_text().split()
            except OSError:
                continue  # a thread ended while we looked
            for pid in pids:
                try:
                    args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if args[0].endswith(b"nmap") and address.encode() in args:
                    return int(pid)
        time.sleep(0.1)
    return None


def _alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@needs_nmap
def test_nmap_dies_with_a_posture_killed_by_sigkill(loop: ServiceLoop, tmp_path: Path) -> None:
    address = "127.0.72.10"
    for port in (2001, 2002):
        loop.serve(address, port, hang_up())  # keeps -sV busy: nmap would run for minutes
    proc = subprocess.Popen(
        [sys.executable, "-m", "scanner", "scan", address, "--ports", "2001-2002",
         "--timeout", "5m", "--db", str(tmp_path / "p.db")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
    )  # fmt: skip
    nmap_pid = None
    try:
        nmap_pid = _nmap_child(proc.pid, address, timeout=60)
        assert nmap_pid is not None, "posture never started nmap"
        assert proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert _gone_within(nmap_pid, 3), "nmap outlived the posture that started it"
    finally:
        proc.kill()
        proc.wait(timeout=30)
        if nmap_pid is not None and _alive(nmap_pid):
            os.kill(nmap_pid, signal.SIGKILL)


@needs_nmap
def test_ctrl_c_reaches_posture_only_which_stops_nmap(loop: ServiceLoop, tmp_path: Path) -> None:
    address = "127.0.72.11"
    loop.serve(address, 2001, hang_up())
    db = tmp_path / "p.db"
    # A process group of its own, as a terminal's foreground job; Ctrl-C signals the group.
    proc = subprocess.Popen(
        [sys.executable, "-m", "scanner", "scan", address, "--ports", "2001",
         "--timeout", "5m", "--db", str(db)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT, start_new_session=True,
    )  # fmt: skip
    nmap_pid = None
    try:
        nmap_pid = _nmap_child(proc.pid, address, timeout=60)
        assert nmap_pid is not None, "posture never started nmap"
        assert os.getpgid(nmap_pid) != os.getpgid(proc.pid)  # out of reach of the terminal
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 130, stderr
        assert b"interrupted" in stderr and b"--resume" in stderr
        assert _gone_within(nmap_pid, 10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        if nmap_pid is not None and _alive(nmap_pid):
            os.kill(nmap_pid, signal.SIGKILL)
    with closing(sqlite3.connect(db)) as conn:
        status, error = conn.execute("SELECT status, error FROM scans").fetchone()
    assert status == "interrupted", error


# --- refusals before a single packet ------------------------------------------------------------


@pytest.fixture
def spy_nmap(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A PATH whose `nmap` only records that it ran: proves refusals happen before any scan."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    marker = tmp_path / "nmap-ran"
    script = bindir / "nmap"
    script.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    script.chmod(0o755)
    env = {**os.environ, "PATH": f"{bindir}:/usr/bin:/bin"}
    return env, marker


def test_out_of_scope_targets_are_refused_naming_each(
    spy_nmap: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, marker = spy_nmap
    db = tmp_path / "p.db"
    proc = posture(
        "scan", "127.0.65.0/24", "127.0.66.7", "--scope", "127.0.65.0/25", "--db", str(db), env=env
    )
    assert proc.returncode == 2
    assert "127.0.65.0/24 (127.0.65.128-127.0.65.255 outside the scope)" in proc.stderr
    assert "127.0.66.7" in proc.stderr
    assert not marker.exists() and not db.exists()


def test_global_addresses_need_an_explicit_scope(
    spy_nmap: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, marker = spy_nmap
    proc = posture("scan", "127.0.65.9", "192.0.2.0/30", "8.8.8.8", env=env, timeout=60)
    assert proc.returncode == 2 and "8.8.8.8" in proc.stderr and "--scope" in proc.stderr
    assert not marker.exists()


def test_broken_rule_pack_is_refused_before_scanning(
    spy_nmap: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, marker = spy_nmap
    pack = tmp_path / "bad.yaml"
    pack.write_text("pack: bad\nversion: '1'\nrules:\n  - id: bad.one\n    severty: high\n")
    proc = posture("scan", "127.0.65.9", "--rules", str(pack), env=env)
    assert proc.returncode == 2
    assert f"{pack}:5" in proc.stderr and "severty" in proc.stderr
    assert not marker.exists()


def test_missing_nmap_exits_2_with_the_install_command(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}
    proc = posture("scan", "127.0.65.9", "--db", str(tmp_path / "p.db"), env=env)
    assert proc.returncode == 2
    assert "apt-get install -y nmap" in proc.stderr


# --- hostile text from a target -----------------------------------------------------------------


@needs_nmap
@needs_root
def test_hostile_ftp_banner_is_escaped_everywhere(tmp_path: Path) -> None:
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import ThreadedFTPServer

    evil = "Evil FTP \x1b[31mRED\x1b]8;;http://evil.example/\x07link\x1b]8;;\x07 <script>x</script>"
    authorizer = DummyAuthorizer()
    authorizer.add_anonymous(str(tmp_path))
    handler = type("EvilHandler", (FTPHandler,), {"authorizer": authorizer, "banner": evil})
    server = ThreadedFTPServer(("127.0.67.10", 21), handler)
    import threading

    thread = threading.Thread(target=server.serve_forever, kwargs={"timeout": 0.5}, daemon=True)
    thread.start()
    db = str(tmp_path / "p.db")
    try:
        _, doc = scan_json("127.0.67.10", "--ports", "21", "--db", db)
    finally:
        server.close_all()
        thread.join(timeout=10)
    anon = next(f for f in doc["findings"] if f["rule_id"] == "baseline.ftp-anonymous")
    assert "\x1b" in json.dumps(anon["evidence"], ensure_ascii=False) or "\\u001b" in json.dumps(
        anon["evidence"]
    )  # kept as evidence, faithfully: JSON escapes it
    shown = posture("findings", "show", anon["fingerprint"], "--db", db)
    table = posture("findings", "--db", db)
    for proc in (shown, table):
        assert proc.returncode == 0, proc.stderr
        assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout
    assert "\\x1b" in shown.stdout  # visible as an escape, not interpreted
    report = tmp_path / "r.html"
    assert posture("report", "--format", "html", "--db", db, "-o", str(report)).returncode == 0
    html = report.read_text()
    assert "\x1b" not in html and "<script>x</script>" not in html


def test_scope_from_posture_toml_is_enforced(
    spy_nmap: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, marker = spy_nmap
    config = tmp_path / "posture.toml"
    config.write_text('db = "cfg.db"\nscope = ["127.0.65.0/28"]\n')
    proc = posture("--config", str(config), "scan", "127.0.65.100", env=env)
    assert proc.returncode == 2 and "127.0.65.100" in proc.stderr
    assert not marker.exists() and not (tmp_path / "cfg.db").exists()


def test_a_failing_nmap_fails_the_scan_with_exit_3(
    spy_nmap: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, marker = spy_nmap  # this nmap records that it ran and exits 1, sending nothing
    db = tmp_path / "p.db"
    proc = posture("scan", "127.0.65.9", "--ports", "9", "--db", str(db), env=env)
    assert proc.returncode == 3, proc.stderr
    assert "nmap exited with code 1" in proc.stderr and marker.exists()
    with closing(sqlite3.connect(db)) as conn:
        status, error = conn.execute("SELECT status, error FROM scans").fetchone()
    assert status == "failed" and "nmap" in error


@needs_nmap
def test_excluded_hosts_are_not_scanned(loop: ServiceLoop, tmp_path: Path) -> None:
    for host in ("127.0.66.20", "127.0.66.21"):
        loop.serve(host, 2323, telnet())
    _, doc = scan_json(
        "127.0.66.20-21", "--exclude", "127.0.66.21", "--ports", "2323", "--db", str(tmp_path / "p")
    )
    assert doc["hosts"]["total"] == 1
    assert rules_found(doc) == {("baseline.telnet-exposed", "127.0.66.20", 2323)}


def _stderr_through_a_terminal(args: list[str]) -> tuple[int, str, str]:
    """Run posture with stderr on a pseudo-terminal (as a person sees it); stdout piped."""
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "scanner", *args],
        stdout=subprocess.PIPE, stderr=slave, cwd=ROOT, env={**os.environ, "COLUMNS": "120"},
    )  # fmt: skip
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    out = proc.stdout.read().decode() if proc.stdout else ""
    code = proc.wait(timeout=30)
    return code, out, b"".join(chunks).decode(errors="replace")


@needs_nmap
def test_progress_bar_on_a_terminal_and_none_with_json(loop: ServiceLoop, tmp_path: Path) -> None:
    loop.serve("127.0.66.30", 2323, telnet())
    loop.serve("127.0.66.31", 2323, telnet())
    scan = ["scan", "127.0.66.30-31", "--ports", "2323", "--chunk-size", "1"]
    code, out, tty = _stderr_through_a_terminal([*scan, "--db", str(tmp_path / "a")])
    assert code == 0
    assert "2/2 hosts" in tty and "2 findings" in tty, tty[-500:]
    assert "completed: 2 hosts" in out
    code, out, tty = _stderr_through_a_terminal([*scan, "--db", str(tmp_path / "b"), "--json"])
    assert code == 0 and "hosts" not in tty
    assert json.loads(out)["hosts"]["up"] == 2
