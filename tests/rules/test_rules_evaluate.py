"""evaluate(): which hosts and services rules run on, and what a finding carries."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.model import Confidence, Finding, Host, HostState, Service, Severity
from scanner.rules import default_pack_paths, evaluate, host_facts, load_packs, service_facts
from scanner.rules.facts import FACTS, FactScope
from scanner.safetext import MAX_FIELD

RULES = load_packs([Path(__file__).parent / "data" / "evaluate.yaml"])
check_spaces = {name.split(".")[0] for name, spec in FACTS.items() if spec.scope is FactScope.CHECK}


def by_rule(findings: list[Finding]) -> dict[tuple[str, int | None], Finding]:
    return {(f.rule_id, f.port): f for f in findings}


def test_service_facts_flatten_host_service_and_checks() -> None:
    service = Service(
        21,
        "tcp",
        "open",
        name="ftp",
        product="vsftpd",
        version="3.0.3",
        tunnel=None,
        method="probed",
        conf=10,
        cpe=("cpe:/a:vsftpd:vsftpd:3.0.3",),
        banner="220 raw",  # kept on the model, but not a fact until a probe fills it
        checks={"ftp": {"anonymous": True, "banner": "220 hi", "unused": None}},
    )
    host = Host("127.0.9.1", HostState.UP, hostname="lab-1", services=(service,))
    assert service_facts(host, service) == {
        "host.address": "127.0.9.1",
        "host.state": "up",
        "host.hostname": "lab-1",
        "port": 21,
        "proto": "tcp",
        "state": "open",
        "service.name": "ftp",
        "service.product": "vsftpd",
        "service.version": "3.0.3",
        "service.method": "probed",
        "service.conf": 10,
        "service.cpe": ["cpe:/a:vsftpd:vsftpd:3.0.3"],
        "ftp.anonymous": True,
        "ftp.banner": "220 hi",
    }
    assert host_facts(Host("127.0.9.2", HostState.DOWN)) == {
        "host.address": "127.0.9.2",
        "host.state": "down",
    }


def test_confidence_comes_from_how_the_fact_was_obtained() -> None:
    host = Host(
        "127.0.9.1",
        HostState.UP,
        services=(
            Service(21, "tcp", "open", name="ftp", method="probed"),
            Service(2121, "tcp", "open", name="ftp", method="table"),
            Service(21, "udp", "open|filtered"),
            Service(2100, "tcp", "open", name="ftp", checks={"ftp": {"anonymous": True}}),
            Service(9999, "tcp", "open", method="table"),
        ),
    )
    found = by_rule(evaluate(RULES, [host]))
    assert found["evaluate.ftp", 21].confidence is Confidence.FIRM  # fingerprinted
    assert found["evaluate.ftp", 2121].confidence is Confidence.TENTATIVE  # port table only
    assert found["evaluate.ftp-anonymous", 2100].confidence is Confidence.CERTAIN  # a check
    assert found["evaluate.port-guess", 9999].confidence is Confidence.FIRM  # the rule says
    # A rule naming a port matches that port on either protocol only if it says so.
    assert ("evaluate.ftp", None) not in found


def test_only_open_services_of_up_hosts_are_evaluated() -> None:
    services = tuple(
        Service(21, "tcp", state, name="ftp", method="probed")
        for state in ("open", "closed", "filtered", "unfiltered", "closed|filtered")
    )
    up = Host("127.0.9.1", HostState.UP, services=services)
    udp = Host(
        "127.0.9.2", HostState.UP, services=(Service(21, "tcp", "open|filtered", name="ftp"),)
    )
    down = [
        Host(f"127.0.9.{i}", state, services=services[:1])
        for i, state in enumerate((HostState.DOWN, HostState.TIMEOUT, HostState.ERROR), start=3)
    ]
    findings = evaluate(RULES, [up, udp, *down])
    assert [(f.host, f.port, f.rule_id) for f in findings] == [
        ("127.0.9.1", 21, "evaluate.ftp"),
        ("127.0.9.2", 21, "evaluate.ftp"),
    ]


def test_host_rules_run_once_per_up_host_before_its_services() -> None:
    hosts = [
        Host(
            "127.0.9.1",
            HostState.UP,
            hostname="lab-1",
            services=(Service(21, "tcp", "open", name="ftp"),),
        ),
        Host("127.0.9.2", HostState.UP, hostname="prod-1"),
        Host("127.0.9.3", HostState.DOWN, hostname="lab-2"),
    ]
    findings = evaluate(RULES, hosts)
    assert [(f.rule_id, f.host, f.port, f.proto) for f in findings] == [
        ("evaluate.lab-host", "127.0.9.1", None, None),
        ("evaluate.ftp", "127.0.9.1", 21, "tcp"),
    ]
    lab = findings[0]
    assert lab.hostname == "lab-1"
    assert lab.evidence == {"host.hostname": "lab-1"}
    assert lab.confidence is Confidence.TENTATIVE
    assert lab.severity is Severity.INFO


def test_finding_carries_rule_fields_and_clipped_evidence() -> None:
    banner = "220 " + "A" * 2000 + "\x1b[31m"
    service = Service(
        21,
        "tcp",
        "open",
        name="ftp",
        product="vsftpd",
        version="2.3.4",
        extrainfo="x" * 10,
        banner=banner,
        method="probed",
        checks={"ftp": {"anonymous": True, "banner": banner}},
    )
    host = Host("127.0.9.1", HostState.UP, hostname="ftp.lab", services=(service,))
    found = by_rule(evaluate(RULES, [host]))
    plain = found["evaluate.ftp", 21]
    assert plain.title == "FTP seen"
    assert plain.severity is Severity.MEDIUM
    assert plain.controls == ("CIS-8:4.8",)
    assert plain.hostname == "ftp.lab"
    assert plain.discriminator == ""
    # matched facts, then the rule's evidence facts, then product/version; Service.banner is
    # not a fact (no probe fills it yet), so it never shows up as evidence.
    assert list(plain.evidence) == [
        "service.name",
        "port",
        "proto",
        "service.extrainfo",
        "host.hostname",
        "service.product",
        "service.version",
    ]
    anonymous = found["evaluate.ftp-anonymous", 21]
    assert anonymous.cves == ("CVE-1999-0497",)
    assert anonymous.evidence["ftp.anonymous"] is True
    clipped = anonymous.evidence["ftp.banner"]
    assert clipped.startswith("220 AAA") and clipped.endswith(
        f"…[+{len(banner) - MAX_FIELD} chars]"
    )
    assert "service.banner" not in anonymous.evidence
    assert anonymous.fingerprint != plain.fingerprint


def test_discriminator_names_a_fact_whose_value_splits_findings() -> None:
    host = Host(
        "127.0.9.1",
        HostState.UP,
        services=(
            Service(161, "udp", "open", product="net-snmp"),
            Service(162, "udp", "open"),
        ),
    )
    (finding,) = [f for f in evaluate(RULES, [host]) if f.rule_id == "evaluate.per-product"]
    assert finding.discriminator == "net-snmp"
    other = Host(host.address, HostState.UP, services=(Service(161, "udp", "open", product="x"),))
    (changed,) = [f for f in evaluate(RULES, [other]) if f.rule_id == "evaluate.per-product"]
    assert changed.fingerprint != finding.fingerprint


@pytest.mark.parametrize("hosts", [[], [Host("127.0.9.1", HostState.UP)]])
def test_nothing_to_match_gives_no_findings(hosts: list[Host]) -> None:
    assert evaluate(RULES, hosts) == []


def test_rule_check_namespaces_are_the_checks_its_when_reads(tmp_path: Path) -> None:
    pack = tmp_path / "ns.yaml"
    pack.write_text(
        """pack: ns
version: 1.0.0-rc.1+build.5
rules:
  - id: ns.nested
    title: Reads checks deep inside all/any/not
    severity: high
    when:
      all:
        - service.name: {in: [redis, ftp]}
        - any:
            - redis.unauthenticated: true
            - not: {ftp.anonymous: false}
        - not: {any: [{etcd.version: {exists: true}}, {port: 1}]}
    evidence: [docker.version]
    discriminator: memcached.version
    remediation: R
    references: [https://example.org/r]
  - id: ns.plain
    title: Port only
    severity: low
    when: {port: 23, service.tunnel: {ne: ssl}}
    remediation: R
    references: [https://example.org/r]
  - id: ns.host
    title: Host rule
    severity: info
    for: host
    when: {host.hostname: {regex: '^lab-'}}
    remediation: R
    references: [https://example.org/r]
"""
    )
    ruleset = load_packs([pack])
    nested, plain, host = ruleset.rules
    # Only `when` counts: evidence and discriminator facts do not decide whether it matches.
    assert nested.check_namespaces == frozenset({"redis", "ftp", "etcd"})
    assert plain.check_namespaces == frozenset()
    assert host.check_namespaces == frozenset()
    anonymous = RULES.get("evaluate.ftp-anonymous")
    assert anonymous is not None and anonymous.check_namespaces == {"ftp"}
    # The namespaces are the keys of Service.checks, as the fact table names them.
    assert check_spaces == {"redis", "ftp", "memcached", "docker", "elasticsearch", "etcd", "tls"}


def test_baseline_check_namespaces_cover_every_check_rule() -> None:
    baseline = load_packs(default_pack_paths())
    redis = baseline.get("baseline.redis-unauthenticated")
    telnet = baseline.get("baseline.telnet-exposed")
    assert redis is not None and telnet is not None
    assert redis.check_namespaces == {"redis"}
    assert telnet.check_namespaces == frozenset()
    # Every rule that reads a `<check>.` fact names that check, and only checks are named.
    for rule in baseline.rules:
        read = {name.split(".")[0] for name in rule.when.fact_names()}
        assert rule.check_namespaces <= read
        assert {ns for ns in read if ns in check_spaces} == rule.check_namespaces
