"""Turn facts into findings: every service rule against each open service of each up host,
every host rule once per up host, every vulnerability rule once per advisory matched on a host.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from scanner.model import Confidence, Finding, Host, HostState, Severity
from scanner.rules.facts import host_facts, is_check_fact, service_facts, vulnerability_facts
from scanner.rules.ruleset import Rule, RuleSet
from scanner.safetext import clip

OPEN_STATES = ("open", "open|filtered")
# Shown with every service finding when known: what is listening, as its fingerprint says.
CONTEXT_FACTS = ("service.product", "service.version")


def _clipped(value: Any) -> Any:
    if isinstance(value, str):
        return clip(value)
    if isinstance(value, list | tuple):
        return [clip(item) if isinstance(item, str) else item for item in value]
    return value


def derive_confidence(
    rule: Rule, facts: Mapping[str, Any], matched: Mapping[str, Any]
) -> Confidence:
    """The fact the rule names in `confidence_from` when present, else the rule's own
    confidence, else how the evidence was obtained: an active check that talked to the service
    is certain, a probed fingerprint firm, a port number tentative."""
    if rule.confidence_from is not None and facts.get(rule.confidence_from) is not None:
        return Confidence(facts[rule.confidence_from])
    if rule.confidence is not None:
        return rule.confidence
    if any(is_check_fact(name) for name in matched):
        return Confidence.CERTAIN
    if facts.get("service.method") == "probed":
        return Confidence.FIRM
    return Confidence.TENTATIVE


def _finding(rule: Rule, host: Host, facts: Mapping[str, Any]) -> Finding | None:
    matched = rule.when.match(facts)
    if matched is None:
        return None
    evidence = {name: _clipped(value) for name, value in matched.items()}
    extra = rule.evidence + (CONTEXT_FACTS if rule.subject == "service" else ())
    for name in extra:
        if name not in evidence and facts.get(name) is not None:
            evidence[name] = _clipped(facts[name])
    discriminator = ""
    if rule.discriminator is not None and facts.get(rule.discriminator) is not None:
        value = facts[rule.discriminator]
        discriminator = ",".join(value) if isinstance(value, list) else str(value)
    severity = rule.severity
    if rule.severity_from is not None and facts.get(rule.severity_from) is not None:
        severity = Severity(facts[rule.severity_from])
    cves = rule.cves
    if isinstance(found := facts.get("vuln.cves"), list):
        cves = tuple(dict.fromkeys((*rule.cves, *found)))
    return Finding(
        rule_id=rule.id,
        severity=severity,
        confidence=derive_confidence(rule, facts, matched),
        title=rule.title_for(facts),
        host=host.address,
        port=facts.get("port"),
        proto=facts.get("proto"),
        discriminator=discriminator,
        hostname=host.hostname,
        evidence=evidence,
        cves=cves,
        controls=rule.controls,
    )


def evaluate(ruleset: RuleSet, hosts: Iterable[Host]) -> list[Finding]:
    """Findings in host order; per host its host rules first, then per service in scan order,
    then per vulnerability, most urgent first."""
    host_rules = [rule for rule in ruleset.rules if rule.subject == "host"]
    service_rules = [rule for rule in ruleset.rules if rule.subject == "service"]
    vuln_rules = [rule for rule in ruleset.rules if rule.subject == "vulnerability"]
    findings: list[Finding] = []
    for host in hosts:
        if host.state is not HostState.UP:
            continue
        facts = host_facts(host)
        findings.extend(f for rule in host_rules if (f := _finding(rule, host, facts)))
        for service in host.services:
            if service.state not in OPEN_STATES:
                continue
            facts = service_facts(host, service)
            findings.extend(f for rule in service_rules if (f := _finding(rule, host, facts)))
        if host.vulnerabilities is None or not vuln_rules:
            continue
        for vulnerability in sorted(host.vulnerabilities.found, key=lambda v: v.priority_key):
            facts = vulnerability_facts(host, vulnerability)
            findings.extend(f for rule in vuln_rules if (f := _finding(rule, host, facts)))
    return findings
