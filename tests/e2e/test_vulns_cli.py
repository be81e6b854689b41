"""Known vulnerabilities through the real CLI: real nmap against the lab's "unpatched" and
"hardened" hosts (127.0.98.16 and .15), matched offline against posture's bundled advisories
(the session's $POSTURE_VULNDB); and `--local`, this machine's own packages.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo.lab import Lab, ServiceLoop, ssh_banner
from scanner.model import Host, HostState
from scanner.probes.inventory import LocalRunner, collect
from scanner.rules import default_pack_paths, evaluate, load_packs

ROOT = Path(__file__).resolve().parents[2]
HAS_NMAP = shutil.which("nmap") is not None


def posture(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scanner", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=False,
    )


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    if os.geteuid() != 0 or not HAS_NMAP:
        pytest.skip("the lab serves well-known ports (root) and the scan needs nmap")
    with Lab("127.0.98", hosts=["hardened", "unpatched"]) as running:
        yield running


def test_unpatched_software_is_found_and_ranked_kev_first(lab: Lab, tmp_path: Path) -> None:
    db = str(tmp_path / "p.db")
    hardened, unpatched = lab.address_of("hardened"), lab.address_of("unpatched")
    proc = posture(
        "scan",
        hardened,
        unpatched,
        "--ports",
        lab.port_list(),
        "--db",
        db,
        "--json",
        "--fail-on",
        "critical",
    )
    assert proc.returncode == 1, proc.stderr  # KEV-listed criticals: a CI gate fails
    doc = json.loads(proc.stdout)
    vulns = doc["vulnerabilities"]
    by = {(v["host"], v["port"], v["id"]): v for v in vulns}
    vsftpd = by[(unpatched, 21, "CVE-2011-2523")]
    assert (vsftpd["product"], vsftpd["version"], vsftpd["confidence"]) == (
        "vsftpd",
        "2.3.4",
        "firm",
    )
    assert vsftpd["severity"] == "critical" and vsftpd["cvss"] == 9.8
    apache = by[(unpatched, 80, "CVE-2021-41773")]
    assert apache["kev"] is True and apache["priority"] == "kev"
    assert apache["severity"] == "critical"  # CVSS 7.5, raised: exploited in the wild
    assert apache["cvss"] == 7.5
    # NVD lists 2.4.49 alone for it (no range), so no fixed version is claimed; where NVD
    # gives a range, its end is the fix.
    assert apache["fixed_version"] is None
    assert by[(unpatched, 25, "CVE-2018-6789")]["fixed_version"] == "4.90.1"
    assert (unpatched, 80, "CVE-2021-42013") in by
    exim = by[(unpatched, 25, "CVE-2019-10149")]
    assert exim["kev"] is True and exim["product"] == "exim"
    # Most urgent first: every KEV entry before any other.
    priorities = [v["priority"] for v in vulns]
    assert priorities[: priorities.count("kev")] == ["kev"] * priorities.count("kev")
    # Ubuntu 16.04's OpenSSH build: the bundle has no Ubuntu 16.04 advisories, so upstream
    # matches are tentative and say why.
    xenial = [v for v in vulns if v["host"] == unpatched and v["port"] == 22]
    assert xenial and {v["confidence"] for v in xenial} == {"tentative"}
    assert all("Ubuntu build 4ubuntu2.8 may carry backported" in v["reason"] for v in xenial)
    # Debian 12's patched build: judged by Debian's own fixed versions, it is clean of the
    # CVEs whose upstream range still covers 9.2p1.
    debian = {v["id"] for v in vulns if v["host"] == hardened}
    assert not debian & {"CVE-2024-6387", "CVE-2023-38408"}, debian
    # Every vulnerability is a finding of rules/vulns.yaml with its CVEs and controls.
    finding = next(f for f in doc["findings"] if f["fingerprint"] == apache["fingerprint"])
    assert finding["rule_id"] == "vulns.known-vulnerability"
    assert finding["title"] == "CVE-2021-41773 in apache_httpd 2.4.49"
    assert "CVE-2021-41773" in finding["cves"] and "PCI-DSS-4.0:6.3.3" in finding["controls"]

    # The reports lead with them too.
    html = tmp_path / "r.html"
    assert posture("report", "--db", db, "--format", "html", "-o", str(html)).returncode == 0
    page = html.read_text()
    assert "Vulnerabilities, most urgent first" in page and "CVE-2021-41773" in page
    report = tmp_path / "r.json"
    assert posture("report", "--db", db, "--format", "json", "-o", str(report)).returncode == 0
    assert json.loads(report.read_text())["vulnerabilities"][0]["priority"] == "kev"

    # A scan without the advisory database cannot tell: nothing is declared fixed.
    again = posture("scan", hardened, unpatched, "--ports", lab.port_list(), "--db", db)
    assert again.returncode == 0, again.stderr
    blind = posture(
        "scan", unpatched, "--ports", lab.port_list(), "--db", db, "--no-vulns", "--json"
    )
    assert blind.returncode == 0, blind.stderr
    assert json.loads(blind.stdout)["findings_fixed"] == 0


def test_local_inventory_of_this_machine(tmp_path: Path) -> None:
    if not HAS_NMAP:
        pytest.skip("needs nmap")
    address, port = "127.0.98.30", 2222
    loop = ServiceLoop()
    try:
        loop.serve(address, port, ssh_banner(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"))
        proc = posture(
            "scan",
            address,
            "--local",
            "--ports",
            str(port),
            "--db",
            str(tmp_path / "p.db"),
            "--json",
        )
    finally:
        loop.close()
    assert proc.returncode in (0, 1), proc.stderr
    doc = json.loads(proc.stdout)
    mine = collect(LocalRunner())
    stored = doc["inventories"][address]
    assert stored["inventoried_as"] == "localhost"
    assert stored["packages"] == len(mine.packages) > 0
    assert mine.os is not None and stored["os"]["id"] == mine.os.id
    assert stored["kernel"] == os.uname().release
    # Packages are judged by the distro's advisories (certain, host-level), never by banners.
    for v in doc["vulnerabilities"]:
        if v["port"] is None:
            assert (v["source"], v["confidence"]) == ("package", "certain")
    # The SSH rules judged this machine's own sshd settings.
    ssh_pack = load_packs([p for p in default_pack_paths() if p.name == "ssh.yaml"])
    expected = {
        f.rule_id for f in evaluate(ssh_pack, [Host(address, HostState.UP, inventory=mine)])
    }
    found = {f["rule_id"] for f in doc["findings"] if f["rule_id"].startswith("ssh.")}
    assert found == expected


def test_local_needs_one_of_this_machines_addresses() -> None:
    from scanner.scan import is_this_machine

    assert is_this_machine("127.0.98.31") and is_this_machine("::1")
    assert not is_this_machine("192.0.2.1")  # TEST-NET-1: bind() fails, nothing is sent
    refused = posture("scan", "192.0.2.1", "--local", "--ports", "22", "--db", "/dev/null/x")
    assert refused.returncode == 2
    assert "none of the targets is one of its addresses" in refused.stderr


def test_ssh_key_options_need_ssh(tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    key.write_text("not used\n")
    for flag in ("--key", "--ssh-key"):
        proc = posture("scan", "127.0.98.32", "--ports", "22", flag, str(key))
        assert proc.returncode == 2
        assert (
            "--ssh-key (--key), --known-hosts and --accept-new-host-key need --ssh" in proc.stderr
        )
