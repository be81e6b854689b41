"""evaluate(): which hosts and services rules run on, and what a finding carries."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.model import Confidence, Finding, Host, HostState, Service, Severity
from scanner.rules import evaluate, host_facts, load_packs, service_facts
from scanner.safetext import MAX_FIELD

RULES = load_packs([Path(__file__).parent / "data" / "evaluate.yaml"])


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
    # matched facts, then the rule's evidence facts, then product/version/banner
    assert list(plain.evidence) == [
        "service.name",
        "port",
        "proto",
        "service.extrainfo",
        "host.hostname",
        "service.product",
        "service.version",
        "service.banner",
    ]
    clipped = plain.evidence["service.banner"]
    assert clipped.startswith("220 AAA") and clipped.endswith(
        f"…[+{len(banner) - MAX_FIELD} chars]"
    )
    anonymous = found["evaluate.ftp-anonymous", 21]
    assert anonymous.cves == ("CVE-1999-0497",)
    assert anonymous.evidence["ftp.anonymous"] is True
    assert len(anonymous.evidence["ftp.banner"]) < len(banner)
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
