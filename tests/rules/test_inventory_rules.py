"""SSH settings from an authenticated inventory become findings (rules/ssh.yaml), and stay
open, not fixed, when a later scan has no inventory of the host (undetermined)."""

from __future__ import annotations

from pathlib import Path

from scanner.model import Confidence, FindingStatus, Host, HostState, ScanStatus
from scanner.probes.inventory import Inventory, OsRelease, Package, parse_sshd_settings
from scanner.rules import default_pack_paths, evaluate, load_packs
from scanner.rules.facts import inventory_facts
from scanner.scan import undetermined_rules
from scanner.store.db import Store

RULES = load_packs([p for p in default_pack_paths() if p.name == "ssh.yaml"])
WEAK = (
    "PermitRootLogin yes\nPasswordAuthentication yes\nCiphers aes128-ctr,aes256-cbc\n"
    "MACs hmac-sha2-256,hmac-md5\nKexAlgorithms curve25519-sha256,diffie-hellman-group1-sha1\n"
    "X11Forwarding yes\nMaxAuthTries 6\nPermitEmptyPasswords no\n"
)
HARDENED = (
    "PermitRootLogin no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
    "Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com\n"
    "MACs hmac-sha2-512-etm@openssh.com\nKexAlgorithms curve25519-sha256\n"
    "X11Forwarding no\nMaxAuthTries 3\n"
)


def inventory(config: str) -> Inventory:
    return Inventory(
        host="root@10.0.0.5",
        os=OsRelease("debian", "12", "Debian GNU/Linux 12 (bookworm)"),
        kernel="6.1.0-18-amd64",
        manager="dpkg",
        packages=(Package("openssh-server", "1:9.2p1-2+deb12u2", "dpkg", "amd64", "openssh"),),
        sshd=parse_sshd_settings(config),
    )


def host(config: str | None) -> Host:
    return Host(
        "10.0.0.5", HostState.UP, inventory=inventory(config) if config is not None else None
    )


def test_inventory_facts() -> None:
    facts = inventory_facts(inventory(WEAK))
    assert facts["os.id"] == "debian" and facts["os.version"] == "12"
    assert facts["inventory.packages"] == 1 and facts["inventory.manager"] == "dpkg"
    assert facts["sshd.permit_root_login"] == "yes"
    assert facts["sshd.password_authentication"] is True
    assert facts["sshd.ciphers"] == ["aes128-ctr", "aes256-cbc"]
    assert facts["sshd.max_auth_tries"] == 6
    assert "sshd.kbd_interactive_authentication" not in facts  # not stated: unknown


def test_weak_settings_are_findings_and_hardened_ones_are_not() -> None:
    found = {f.rule_id: f for f in evaluate(RULES, [host(WEAK)])}
    assert set(found) == {
        "ssh.root-login",
        "ssh.password-authentication",
        "ssh.weak-ciphers",
        "ssh.weak-macs",
        "ssh.weak-kex",
        "ssh.x11-forwarding",
        "ssh.max-auth-tries",
    }
    assert all(f.confidence is Confidence.CERTAIN and f.port is None for f in found.values())
    assert found["ssh.weak-ciphers"].evidence["sshd.ciphers"] == ["aes128-ctr", "aes256-cbc"]
    assert evaluate(RULES, [host(HARDENED)]) == []
    assert evaluate(RULES, [host(None)]) == []  # nothing known, nothing claimed


def test_hosts_without_inventory_leave_the_ssh_rules_undetermined() -> None:
    rows = set(undetermined_rules(RULES, [host(None)]))
    assert ("10.0.0.5", "", 0, "ssh.root-login") in rows
    assert len(rows) == len(RULES.rules)
    assert undetermined_rules(RULES, [host(WEAK)]) == []


def _scan(store: Store, target: Host) -> tuple[int, int]:
    scan_id = store.create_scan(
        targets=["10.0.0.5"],
        scope=[],
        excludes=[],
        packs=list(RULES.pack_labels()),
        rules=[r.id for r in RULES.rules],
        options={},
        hosts_total=1,
    )
    store.record_chunk(
        scan_id,
        [target],
        evaluate(RULES, [target]),
        {"tcp": "22"},
        undetermined_rules(RULES, [target]),
    )
    return scan_id, store.finish_scan(scan_id, ScanStatus.COMPLETED).fixed


def test_a_scan_without_credentials_does_not_fix_ssh_findings(tmp_path: Path) -> None:
    with Store(tmp_path / "p.db") as store:
        _scan(store, host(WEAK))
        _, fixed = _scan(store, host(None))
        assert fixed == 0
        statuses = {f.rule_id: f.status for f in store.findings()}
        assert statuses["ssh.root-login"] is FindingStatus.OPEN
        _, fixed = _scan(store, host(HARDENED))
        assert fixed == 7
