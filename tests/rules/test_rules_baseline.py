"""The shipped packs (baseline, ssh, tls): load, every example passes, every rule is complete, and
the baseline judges real services right."""

from __future__ import annotations

import pytest

from scanner.model import Confidence, Host, HostState, Service, Severity
from scanner.rules import Rule, default_pack_paths, evaluate, load_packs, run_examples
from scanner.rules.schema import CONTROL_IDS

BASELINE = load_packs(default_pack_paths())
FRAMEWORKS = set(CONTROL_IDS)


def test_baseline_is_shipped_and_loads() -> None:
    assert [path.name for path in default_pack_paths()] == [
        "baseline.yaml",
        "ssh.yaml",
        "tls.yaml",
        "vulns.yaml",
    ]
    assert BASELINE.pack_labels() == (
        "baseline@1.0.0",
        "ssh@1.0.0",
        "tls@1.0.0",
        "vulns@1.0.0",
    )
    ids = [rule.id for rule in BASELINE.rules]
    assert sum(i.startswith("baseline.") for i in ids) >= 22
    assert sum(i.startswith("tls.") for i in ids) >= 30
    assert sum(i.startswith("ssh.") for i in ids) >= 8
    assert ids.count("vulns.known-vulnerability") == 1
    assert all(i.startswith(("baseline.", "ssh.", "tls.", "vulns.")) for i in ids)


def test_every_baseline_example_passes() -> None:
    assert run_examples(BASELINE) == []


@pytest.mark.parametrize("rule", BASELINE.rules, ids=lambda rule: rule.id)
def test_every_rule_is_complete(rule: Rule) -> None:
    assert rule.match_examples and rule.no_match_examples
    assert rule.description and len(rule.remediation) > 40
    assert rule.references and all(ref.startswith("https://") for ref in rule.references)
    assert {control.split(":")[0] for control in rule.controls} == FRAMEWORKS


@pytest.mark.parametrize(
    ("rule_id", "severity"),
    [
        ("baseline.telnet-exposed", Severity.HIGH),
        ("baseline.ftp-cleartext", Severity.MEDIUM),
        ("baseline.ftp-anonymous", Severity.HIGH),
        ("baseline.redis-unauthenticated", Severity.CRITICAL),
        ("baseline.docker-api-unauthenticated", Severity.CRITICAL),
        ("baseline.docker-api-exposed", Severity.HIGH),
        ("baseline.etcd-unauthenticated", Severity.CRITICAL),
        ("baseline.elasticsearch-unauthenticated", Severity.CRITICAL),
        ("baseline.memcached-unauthenticated", Severity.HIGH),
        ("baseline.netbios-name-exposed", Severity.LOW),
    ],
)
def test_key_severities(rule_id: str, severity: Severity) -> None:
    rule = BASELINE.get(rule_id)
    assert rule is not None and rule.severity is severity


@pytest.mark.parametrize(
    "family",
    [
        "telnet",
        "ftp",
        "rsh",
        "rlogin",
        "rexec",
        "tftp",
        "vnc",
        "x11",
        "rdp",
        "smb",
        "netbios",
        "redis",
        "mysql",
        "postgresql",
        "mssql",
        "mongodb",
        "oracle",
        "docker",
        "kubelet",
        "etcd",
        "elasticsearch",
        "memcached",
        "snmp",
        "ldap",
    ],
)
def test_issue_service_families_are_covered(family: str) -> None:
    assert any(f".{family}" in rule.id for rule in BASELINE.rules)


def lab_host() -> Host:
    """What a scan of a badly kept lab server looks like."""
    return Host(
        "127.0.9.10",
        HostState.UP,
        hostname="lab",
        services=(
            Service(22, "tcp", "open", name="ssh", product="OpenSSH", method="probed", conf=10),
            Service(23, "tcp", "open", name="telnet", method="probed", conf=10),
            Service(
                21,
                "tcp",
                "open",
                name="ftp",
                product="vsftpd",
                version="3.0.3",
                method="probed",
                checks={"ftp": {"anonymous": True, "banner": "220 (vsFTPd 3.0.3)"}},
            ),
            Service(
                443, "tcp", "open", name="http", tunnel="ssl", product="nginx", method="probed"
            ),
            Service(
                6379,
                "tcp",
                "open",
                name="redis",
                method="probed",
                checks={"redis": {"unauthenticated": True, "version": "7.0.15"}},
            ),
            Service(
                9200,
                "tcp",
                "open",
                name="http",
                product="Elasticsearch REST API",
                method="probed",
                checks={"elasticsearch": {"unauthenticated": False}},
            ),
            Service(11211, "udp", "open|filtered", name="memcache", method="table"),
            Service(3306, "tcp", "closed", name="mysql", method="table"),
            Service(5432, "tcp", "filtered", name="postgresql", method="table"),
        ),
    )


def test_baseline_on_a_lab_host() -> None:
    found = {(f.rule_id, f.port): f for f in evaluate(BASELINE, [lab_host()])}
    assert set(found) == {
        ("baseline.telnet-exposed", 23),
        ("baseline.ftp-cleartext", 21),
        ("baseline.ftp-anonymous", 21),
        ("baseline.redis-unauthenticated", 6379),
        ("baseline.elasticsearch-exposed", 9200),
        ("baseline.memcached-udp-exposed", 11211),
    }
    assert found["baseline.redis-unauthenticated", 6379].confidence is Confidence.CERTAIN
    assert found["baseline.redis-unauthenticated", 6379].evidence == {
        "redis.unauthenticated": True,
        "redis.version": "7.0.15",
    }
    assert found["baseline.telnet-exposed", 23].confidence is Confidence.FIRM
    assert found["baseline.memcached-udp-exposed", 11211].confidence is Confidence.TENTATIVE
    assert found["baseline.memcached-udp-exposed", 11211].cves == ("CVE-2018-1000115",)
    # The check said Elasticsearch wants credentials: exposure, certain, but not "unauthenticated".
    assert found["baseline.elasticsearch-exposed", 9200].confidence is Confidence.CERTAIN


def test_secure_services_raise_nothing() -> None:
    host = Host(
        "127.0.9.11",
        HostState.UP,
        services=(
            Service(22, "tcp", "open", name="ssh", method="probed"),
            Service(443, "tcp", "open", name="http", tunnel="ssl", method="probed"),
            Service(636, "tcp", "open", name="ldap", tunnel="ssl", method="probed"),
            Service(990, "tcp", "open", name="ftp", tunnel="ssl", method="probed"),
            Service(2376, "tcp", "open", name="docker", tunnel="ssl", method="probed"),
            Service(53, "udp", "open", name="domain", method="probed"),
        ),
    )
    assert evaluate(BASELINE, [host]) == []


def test_moved_service_is_caught_by_name_and_renamed_port_is_not() -> None:
    host = Host(
        "127.0.9.12",
        HostState.UP,
        services=(
            Service(2323, "tcp", "open", name="telnet", method="probed"),  # moved telnet
            Service(23, "tcp", "open", name="ssh", method="probed"),  # ssh on telnet's port
        ),
    )
    assert [(f.rule_id, f.port) for f in evaluate(BASELINE, [host])] == [
        ("baseline.telnet-exposed", 2323)
    ]
