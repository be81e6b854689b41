"""`posture tls HOST[:PORT]`: assess one TLS endpoint and print what it accepts, its certificate,
grade, Mozilla conformance and the findings of the TLS rules."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from scanner.cli.common import SEVERITY_STYLE, config, console, json_option, load_ruleset
from scanner.cli.common import rules_option as _rules_option
from scanner.errors import EXIT_FINDINGS, ConfigError, ScanFailedError
from scanner.model import Finding, Host, HostState, Service, Severity, finding_sort_key
from scanner.probes.tls.assess import TlsOptions, assess_endpoint, default_sni
from scanner.probes.tls.connection import STARTTLS_PORTS, Endpoint
from scanner.probes.tls.export import endpoint_as_dict
from scanner.probes.tls.model import StartTls, TlsEndpoint
from scanner.rating.grade import Grade, grade
from scanner.rating.mozilla import check_all
from scanner.rating.summary import tls_summary
from scanner.rating.tls_facts import tls_facts
from scanner.rules import RuleSet, evaluate
from scanner.safetext import for_terminal
from scanner.targets import Scope, check_scope, parse_targets

if TYPE_CHECKING:
    from rich.table import Table

SEVERITIES = [s.value for s in Severity]
STARTTLS_CHOICES = [p.value for p in StartTls]
DEFAULT_PORT = 443


def split_endpoint(text: str) -> tuple[str, int | None]:
    """HOST, HOST:PORT, [V6]:PORT or a bare IPv6 address."""
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise click.BadParameter(f"{text!r}: expected [IPv6]:PORT")
        port_text = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, None  # a name, IPv4, or IPv6 without a port
    if not host:
        raise click.BadParameter(f"{text!r}: no host")
    if port_text is None:
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise click.BadParameter(f"{text!r}: the port must be 1-65535")
    return host, int(port_text)


def _resolve(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ConfigError(f"cannot resolve {host!r}: {exc}") from None
    return str(infos[0][4][0])


def tls_ruleset(ruleset: RuleSet) -> RuleSet:
    """Only the rules that read TLS facts: the port was not fingerprinted, so port-number rules
    of other packs would guess."""
    return ruleset.only(lambda rule: "tls" in rule.check_namespaces)


def tls_findings(endpoint: TlsEndpoint, ruleset: RuleSet, facts: dict[str, Any]) -> list[Finding]:
    service = Service(
        port=endpoint.port,
        proto="tcp",
        state="open",
        tunnel=None if endpoint.starttls else "ssl",
        method="probed",
        checks={"tls": facts},
        tls=endpoint,
    )
    host = Host(endpoint.host, HostState.UP, hostname=endpoint.sni, services=(service,))
    return sorted(evaluate(tls_ruleset(ruleset), [host]), key=finding_sort_key)


@click.command("tls")
@click.argument("target", metavar="HOST[:PORT]")
@click.option("--sni", default=None, help="Server name to send (default: HOST when a name).")
@click.option(
    "--starttls",
    type=click.Choice([*STARTTLS_CHOICES, "none"]),
    default=None,
    help="Upgrade a plain-text protocol first (default: by port: 21, 25, 110, 143, 587, 5432).",
)
@click.option(
    "--ca-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Trust these PEM roots instead of the system store.",
)
@click.option("--cert-warn-days", type=int, default=30, show_default=True)
@click.option("--connections", type=int, default=5, show_default=True, help="At once.")
@click.option("--delay", type=float, default=0.0, show_default=True, help="Between connections.")
@click.option("--timeout", type=float, default=5.0, show_default=True, help="Per connect/read.")
@click.option("--scope", "scope_specs", multiple=True, help="Allowed CIDRs/ranges (repeatable).")
@_rules_option
@click.option(
    "--fail-on",
    type=click.Choice(SEVERITIES),
    default=None,
    help="Exit 1 when a finding of this severity or worse applies.",
)
@json_option
@click.pass_context
def tls_command(
    ctx: click.Context,
    target: str,
    sni: str | None,
    starttls: str | None,
    ca_file: Path | None,
    cert_warn_days: int,
    connections: int,
    delay: float,
    timeout: float,
    scope_specs: tuple[str, ...],
    rule_paths: tuple[Path, ...],
    fail_on: str | None,
    as_json: bool,
) -> None:
    """Assess the TLS endpoint HOST[:PORT] (default port 443): protocols, cipher suites in
    the server's order, key exchange groups, certificate, grade and Mozilla conformance.

    Exit codes: 0 done, 1 a finding at or above --fail-on, 2 usage or configuration error
    (nothing was sent), 3 the endpoint could not be assessed.
    """
    ruleset = load_ruleset(ctx, rule_paths, builtin_namespace="tls")
    host, port = split_endpoint(target)
    if starttls is None and port in STARTTLS_PORTS:
        protocol: StartTls | None = STARTTLS_PORTS[port]
    else:
        protocol = StartTls(starttls) if starttls not in (None, "none") else None
    if port is None:
        port = DEFAULT_PORT
    address = _resolve(host)
    scope_list = scope_specs or config(ctx).scope
    check_scope(parse_targets([address]), Scope.parse(scope_list) if scope_list else None)
    try:
        options = TlsOptions(
            timeout=timeout,
            connections_per_host=connections,
            delay=delay,
            warn_days=cert_warn_days,
            ca_file=ca_file,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    server_name = default_sni(sni if sni is not None else host)
    endpoint = Endpoint(address, port, server_name, protocol)
    result = asyncio.run(assess_endpoint(endpoint, options))
    verdict = grade(result)
    facts = tls_facts(result, verdict)
    findings = tls_findings(result, ruleset, facts) if facts else []
    if as_json:
        document = {
            **endpoint_as_dict(result),
            "grade": _grade_dict(verdict),
            "mozilla": [
                {
                    "profile": c.profile,
                    "conforms": c.conforms,
                    "deviations": [{"kind": d.kind, "message": d.message} for d in c.deviations],
                }
                for c in check_all(result)
            ]
            if result.error is None
            else [],
            "findings": [_finding_dict(f) for f in findings],
        }
        click.echo(json.dumps(document, indent=2))
    else:
        _print_summary(result, verdict, findings)
    if result.error is not None:
        where = str(endpoint)
        error = result.error
        raise ScanFailedError(error if error.startswith(where) else f"{where}: {error}")
    if fail_on is not None:
        threshold = Severity(fail_on)
        if any(f.severity.at_least(threshold) for f in findings):
            sys.exit(EXIT_FINDINGS)


def _grade_dict(verdict: Grade | None) -> dict[str, Any] | None:
    if verdict is None:
        return None
    return {
        "letter": verdict.letter,
        "letter_ignoring_trust": verdict.letter_ignoring_trust,
        "score": verdict.score,
        "protocol_score": verdict.protocol_score,
        "key_exchange_score": verdict.key_exchange_score,
        "cipher_score": verdict.cipher_score,
        "caps": [{"letter": c.letter, "reason": c.reason} for c in verdict.caps],
        "warnings": list(verdict.warnings),
    }


def _finding_dict(finding: Finding) -> dict[str, Any]:
    return {
        "rule_id": finding.rule_id,
        "severity": finding.severity.value,
        "confidence": finding.confidence.value,
        "title": finding.title,
        "host": finding.host,
        "port": finding.port,
        "fingerprint": finding.fingerprint,
        "evidence": finding.evidence,
        "controls": list(finding.controls),
    }


def _yes_no(value: bool | None, good: bool = True) -> str:
    if value is None:
        return "unknown"
    return ("yes" if value else "no") + ("" if value is good else "  (!)")


def _print_summary(result: TlsEndpoint, verdict: Grade | None, findings: list[Finding]) -> None:
    from rich.table import Table
    from rich.text import Text

    out = console()
    t = for_terminal
    via = f" via STARTTLS {result.starttls.value}" if result.starttls else ""
    sni = f" (SNI {t(result.sni)})" if result.sni else ""
    out.print(f"{t(result.host)}:{result.port}{via}{sni}", style="bold")
    if result.error is not None:
        out.print(f"error: {t(result.error)}", style="red")
        return
    if verdict is not None:
        line = f"Grade {verdict.letter}  (score {verdict.score}"
        if verdict.letter_ignoring_trust != verdict.letter:
            line += f"; {verdict.letter_ignoring_trust} if trust issues are ignored"
        out.print(line + ")", style="bold")
        for cap in verdict.caps:
            out.print(f"  capped at {cap.letter}: {t(cap.reason)}")
    protocols = Table(title="Protocols and cipher suites", title_justify="left")
    protocols.add_column("version")
    protocols.add_column("accepted")
    protocols.add_column("suites (server order when the server has one)")
    for support in result.protocols:
        if support.supported is None:
            accepted = f"unknown: {t(support.error or '')}"
        else:
            accepted = "yes" if support.supported else "no"
        order = ""
        if support.server_preference is not None:
            order = "server order: " if support.server_preference else "client order: "
        protocols.add_row(support.version.value, accepted, order + "\n".join(support.suites))
    out.print(protocols)
    if result.groups:
        groups = ", ".join(f"{g.name} ({g.bits})" for g in result.groups)
        out.print(f"Key exchange groups: {groups}")
    if result.dh_bits is not None:
        out.print(f"DHE modulus: {result.dh_bits} bits")
    out.print(
        "Secure renegotiation: "
        + _yes_no(result.secure_renegotiation)
        + "   Compression: "
        + _yes_no(result.compression, good=False)
        + "   Fallback SCSV: "
        + _yes_no(result.fallback_scsv)
        + "   Heartbleed: "
        + _yes_no(result.heartbleed, good=False)
    )
    if result.hsts is not None:
        hsts = result.hsts
        text = f"max-age={hsts.max_age}" if hsts.present else "absent"
        if hsts.include_subdomains:
            text += "; includeSubDomains"
        out.print(f"HSTS: {t(text)}")
    chain = result.chain
    if chain is not None:
        leaf = chain.leaf
        out.print(f"Certificate: {t(leaf.subject)}", style="bold")
        out.print(f"  issuer {t(leaf.issuer)}")
        out.print(
            f"  valid {leaf.not_before:%Y-%m-%d} to {leaf.not_after:%Y-%m-%d} "
            f"({chain.days_left} days left); {chain.key_type} {chain.key_bits} bits; "
            f"{t(leaf.signature_algorithm)}"
        )
        if leaf.dns_names or leaf.ip_addresses:
            names = ", ".join([*leaf.dns_names, *leaf.ip_addresses][:20])
            out.print(f"  names {t(names)}")
        trust = "trusted" if chain.trusted else f"NOT trusted: {t(chain.trust_error or '')}"
        out.print(f"  {trust}; {len(chain.certificates)} certificate(s) sent")
        if chain.hostname_matches is False:
            out.print(f"  does not match {t(chain.hostname or '')}", style="red")
    for conformance in check_all(result):
        status = (
            "conforms" if conformance.conforms else (f"{len(conformance.deviations)} deviation(s)")
        )
        out.print(f"Mozilla {conformance.profile}: {status}")
        if conformance.profile == "intermediate":
            for deviation in conformance.deviations[:30]:
                out.print(f"  - {t(deviation.message)}")
    for warning in result.warnings:
        out.print(f"warning: {t(warning)}", style="dim")
    if findings:
        table = Table(title="Findings", title_justify="left")
        for column in ("severity", "rule", "title"):
            table.add_column(column)
        for f in findings:
            table.add_row(
                Text(f.severity.value),
                Text(f.rule_id),
                Text(t(f.title)),
                style=SEVERITY_STYLE.get(f.severity.value),
            )
        out.print(table)
    out.print(f"{result.connections} connections in {result.elapsed:.2f}s", style="dim")


def tls_table(endpoints: list[TlsEndpoint], title: str | None = None) -> Table:
    """A scan's TLS endpoints: grade, versions, certificate; every server-derived cell escaped."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, header_style="bold")
    for column in ("Endpoint", "Grade", "Versions", "Certificate", "Note"):
        table.add_column(column, overflow="fold")
    for endpoint in endpoints:
        row = tls_summary(endpoint)
        where = f"{endpoint.host}:{endpoint.port}"
        if endpoint.starttls:
            where += f" ({endpoint.starttls.value})"
        chain = endpoint.chain
        cert = ""
        if chain is not None:
            cert = f"{chain.days_left} days left" + ("" if chain.trusted else ", untrusted")
        table.add_row(
            Text(for_terminal(where)),
            Text(row["grade"] or "-", style="bold"),
            Text(" ".join(v.removeprefix("TLSv") for v in row["versions"])),
            Text(cert),
            Text(for_terminal(endpoint.error or "", 120)),
        )
    return table


COMMANDS = [tls_command]
