"""Every format renders a hand-built report: the right findings, rules, scan and grouping."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re

import pytest
from markdown_it import MarkdownIt
from report_checks import assert_self_contained_html, html_elements
from report_data import make_data, make_finding

from scanner.errors import ConfigError
from scanner.model import StoredFinding
from scanner.probes.tls.model import ProtocolSupport, StartTls, TlsEndpoint, TlsVersion
from scanner.report import FORMATS, get_format
from scanner.report.interface import ReportData


def render(name: str, data: ReportData) -> str:
    return FORMATS[name].render(data)


def test_registry_names_every_format() -> None:
    assert sorted(FORMATS) == ["csv", "html", "json", "md", "sarif"]
    assert {f.extension for f in FORMATS.values()} == {"csv", "html", "json", "md", "sarif"}
    with pytest.raises(ConfigError, match="choose one of: html, md, json, sarif, csv"):
        get_format("pdf")


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_format_names_each_finding(name: str, ordinary: ReportData) -> None:
    text = render(name, ordinary)
    for finding in ordinary.findings:
        assert finding.fingerprint[:12] in text  # enough for `posture findings` commands
        assert finding.host in text
    assert "Set `requirepass`" in text or "Set \\`requirepass\\`" in text  # the rule's remediation


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_format_renders_an_empty_report(name: str) -> None:
    text = render(name, make_data(()))
    assert text.strip()
    if name == "csv":
        assert text.count("\n") == 1  # the header row alone


def test_html_is_self_contained_and_grouped_by_severity(ordinary: ReportData) -> None:
    text = render("html", ordinary)
    assert_self_contained_html(text)
    groups = [a["id"] for tag, a in html_elements(text) if tag == "h3"]
    assert groups == ["severity-high", "severity-medium", "severity-low"]
    # the known rule's remediation and reference; the unknown rule says it has none
    assert "Set `requirepass` or ACLs" in text
    assert (
        '<a href="https://redis.io/docs/latest/operate/oss_and_stack/management/security/"' in text
    )
    assert "Rule not in the loaded rule packs: no remediation available." in text
    assert "7 of 8" in text and "timeout 1" in text
    assert "127.0.31.9 (slow.lab): timeout, host timeout 30s" in text
    assert "@media print" in text


def test_markdown_table_has_one_row_per_finding(ordinary: ReportData) -> None:
    text = render("md", ordinary)
    rendered = MarkdownIt("commonmark").enable("table").render(text)
    findings_table = rendered.split("<h2>Findings</h2>")[1].split("</table>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", findings_table, re.DOTALL)
    assert len(rows) == 1 + len(ordinary.findings)
    assert all(row.count("<td>") == 12 for row in rows[1:])
    assert "<h3>high: Redis answers without authentication (redis-no-auth)</h3>" in rendered
    assert '<a href="https://redis.io/' in rendered
    assert "Not covered: 127.0.31.9 (slow.lab): timeout, host timeout 30s" in text


def test_json_carries_every_stored_finding_field(ordinary: ReportData) -> None:
    document = json.loads(render("json", ordinary))
    assert document["schema_version"] == 1
    assert document["scan"]["id"] == 7
    assert document["summary"]["total"] == 3
    assert document["summary"]["by_severity"] == {
        "critical": 0, "high": 1, "medium": 1, "low": 1, "info": 0,
    }  # fmt: skip
    assert document["summary"]["by_status"]["reopened"] == 1
    assert document["hosts"]["by_state"] == {"up": 3, "down": 1, "timeout": 1, "error": 0}
    fields = {f.name for f in dataclasses.fields(StoredFinding)}
    by_fingerprint = {f["fingerprint"]: f for f in document["findings"]}
    for finding in ordinary.findings:
        entry = by_fingerprint[finding.fingerprint]
        assert fields <= set(entry)
        assert entry["port"] == finding.port
        assert entry["evidence"] == finding.evidence
        assert entry["new"] is (finding.fingerprint in (ordinary.new_fingerprints or ()))
    assert set(document["rules"]) == {"redis-no-auth", "ftp-anonymous", "retired-rule"}
    assert document["rules"]["retired-rule"]["known"] is False
    assert document["rules"]["retired-rule"]["remediation"] is None
    assert document["rules"]["redis-no-auth"]["controls"] == ["CIS-8:4.8", "NIST-800-53:AC-3"]


def test_csv_round_trips_one_row_per_finding(ordinary: ReportData) -> None:
    text = render("csv", ordinary)
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(rows) == len(ordinary.findings)
    first = rows[0]
    assert first["severity"] == "high"
    assert first["rule_id"] == "redis-no-auth"
    assert first["port"] == "6379"
    assert first["evidence"] == 'banner: redis_version:7.0.15; checks: {"auth_required": false}'
    assert first["new"] == "yes"
    assert [r["severity"] for r in rows] == ["high", "medium", "low"]


def test_a_finding_without_its_rule_keeps_its_own_title() -> None:
    finding = make_finding(rule_id="gone.rule", title="Telnet is enabled")
    data = make_data((finding,), rules={})
    for name in FORMATS:
        assert "Telnet is enabled" in render(name, data)
    assert json.loads(render("json", data))["rules"]["gone.rule"]["title"] == "Telnet is enabled"


def _tls_endpoints() -> tuple[TlsEndpoint, ...]:
    from report_data import HOSTILE

    good = TlsEndpoint(
        host="10.0.0.5",
        port=443,
        sni="www.example.com",
        starttls=None,
        protocols=(
            ProtocolSupport(TlsVersion.TLS12, True, ("TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",)),
            ProtocolSupport(TlsVersion.TLS13, True, ("TLS_AES_128_GCM_SHA256",)),
        ),
        dh_bits=2048,
        secure_renegotiation=True,
        compression=False,
        heartbleed=False,
    )
    legacy = TlsEndpoint(
        host="10.0.0.6",
        port=25,
        sni=None,
        starttls=StartTls.SMTP,
        protocols=(
            ProtocolSupport(TlsVersion.SSL3, True, ("TLS_DHE_RSA_WITH_AES_128_CBC_SHA",)),
            ProtocolSupport(TlsVersion.TLS10, True, ("TLS_DHE_RSA_WITH_AES_128_CBC_SHA",)),
        ),
        dh_bits=2048,
        secure_renegotiation=False,
    )
    broken = TlsEndpoint(
        host="10.0.0.7", port=8443, sni=None, starttls=None, protocols=(), error=HOSTILE
    )
    return good, legacy, broken


@pytest.mark.parametrize("name", ["html", "md", "json"])
def test_tls_endpoints_are_listed_with_their_grade(name: str, ordinary: ReportData) -> None:
    data = dataclasses.replace(ordinary, tls_endpoints=_tls_endpoints())
    text = render(name, data)
    if name == "json":
        rows = {(t["host"], t["port"]): t for t in json.loads(text)["tls"]}
        assert rows[("10.0.0.6", 25)]["grade"] == "F"
        assert rows[("10.0.0.6", 25)]["starttls"] == "smtp"
        assert rows[("10.0.0.5", 443)]["versions"] == ["TLSv1.2", "TLSv1.3"]
        assert "\x1b" not in rows[("10.0.0.7", 8443)]["error"]
        return
    assert "TLS endpoints" in text
    assert "10.0.0.6:25 (STARTTLS smtp)" in text
    assert "insecure renegotiation" in text  # the reason behind the F
    assert "<script>" not in text and "\x1b" not in text
    assert "TLS endpoints" not in render(name, ordinary)  # no section without endpoints


def _vulnerability_findings() -> tuple[StoredFinding, ...]:
    from report_data import HOSTILE

    def vuln(ident: str, port: int | None, **evidence: object) -> StoredFinding:
        return make_finding(
            rule_id="vulns.known-vulnerability",
            title=f"{ident} in openssh 7.2p2",
            port=port,
            proto="tcp" if port else None,
            discriminator=f"openssh:{ident}",
            cves=(ident,),
            evidence={
                "vuln.id": ident,
                "vuln.product": "openssh",
                "vuln.version": "7.2p2",
                **evidence,
            },
        )

    return (
        vuln("CVE-2016-6210", 22, **{"vuln.cvss": 5.9, "vuln.priority": "cvss"}),
        vuln(
            "CVE-2023-38408",
            22,
            **{
                "vuln.cvss": 9.8,
                "vuln.epss": 0.62,
                "vuln.priority": "epss",
                "vuln.reason": HOSTILE,
            },
        ),
        vuln(
            "CVE-2021-41773",
            80,
            **{
                "vuln.cvss": 7.5,
                "vuln.kev": True,
                "vuln.kev_ransomware": True,
                "vuln.priority": "kev",
                "vuln.fixed_version": "2.4.50",
            },
        ),
        vuln("CVE-2024-6387", None, **{"vuln.cvss": 8.1, "vuln.priority": "cvss"}),
    )


@pytest.mark.parametrize("name", ["html", "md", "json"])
def test_vulnerabilities_lead_most_urgent_first(name: str) -> None:
    data = make_data(_vulnerability_findings())
    text = render(name, data)
    order = ["CVE-2021-41773", "CVE-2023-38408", "CVE-2024-6387", "CVE-2016-6210"]
    if name == "json":
        rows = json.loads(text)["vulnerabilities"]
        assert [r["id"] for r in rows] == order
        assert rows[0]["kev"] is True and rows[0]["kev_ransomware"] is True
        assert rows[0]["fixed_version"] == "2.4.50" and rows[2]["port"] is None
        assert "\x1b" not in rows[1]["reason"]
        return
    section = text[text.index("Vulnerabilities, most urgent first") :]
    assert [section.index(i) for i in order] == sorted(section.index(i) for i in order)
    assert "KEV, ransomware" in section and "(package)" in section
    assert "<script>" not in text and "\x1b" not in text
    assert "Vulnerabilities, most urgent" not in render(name, make_data((make_finding(),)))
