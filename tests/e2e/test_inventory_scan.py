"""`posture scan --ssh`: nmap finds the SSH port of a private sshd (127.0.92.5), posture logs in
with the test key, reads the packages and sshd settings, and the SSH rules apply; a second scan
without --ssh leaves those findings open.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from scanner.model import Host, HostState
from scanner.probes.inventory import LocalRunner, collect
from scanner.rules import default_pack_paths, evaluate, load_packs

ROOT = Path(__file__).resolve().parents[2]
ADDRESS, PORT = "127.0.92.5", 2222


def posture(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scanner", *args],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
        check=False,
    )


@pytest.mark.skipif(shutil.which("nmap") is None, reason="needs nmap")
def test_scan_with_ssh_inventory(
    private_sshd: Callable[[str, int], tuple[Path, Path]], tmp_path: Path
) -> None:
    key, _config = private_sshd(ADDRESS, PORT)
    db = str(tmp_path / "p.db")
    base = ["scan", ADDRESS, "--ports", str(PORT), "--no-ping", "--db", db, "--json"]
    known = str(tmp_path / "known_hosts")
    ssh = ["--ssh", "root", "--ssh-key", str(key), "--ssh-port", str(PORT)]
    proc = posture(*base, *ssh, "--known-hosts", known, "--accept-new-host-key")
    assert proc.returncode in (0, 1), proc.stderr
    rules = {f["rule_id"] for f in json.loads(proc.stdout)["findings"]}
    # Over the login, `sshd -T` reads this machine's own sshd_config (not the test server's
    # file): the findings must be those of the same inventory read locally.
    mine = collect(LocalRunner())
    ssh_pack = load_packs([p for p in default_pack_paths() if p.name == "ssh.yaml"])
    expected = {
        f.rule_id for f in evaluate(ssh_pack, [Host(ADDRESS, HostState.UP, inventory=mine)])
    }
    assert expected and {r for r in rules if r.startswith("ssh.")} == expected
    assert "ssh-ed25519" in Path(known).read_text()
    # Without --ssh the host is not inventoried: its SSH findings stay as they were.
    again = posture(*base)
    assert again.returncode in (0, 1), again.stderr
    assert json.loads(again.stdout)["findings_fixed"] == 0
    # A wrong key: the scan still completes; the inventory failure is said on stderr.
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    refused = posture(
        *base,
        "--ssh",
        "root",
        "--ssh-key",
        str(stranger),
        "--ssh-port",
        str(PORT),
        "--known-hosts",
        known,
    )
    assert refused.returncode in (0, 1), refused.stderr
    assert "inventory of 127.0.92.5 failed" in refused.stderr
    assert "Permission denied" in refused.stderr
