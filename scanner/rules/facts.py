"""The facts rules match on: one registry of fact names and types, and the flat fact documents
built from `Host`/`Service` (dotted fact name → value; a missing fact is an absent key).
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scanner.model import Host, Service, Vulnerability
from scanner.probes.inventory import Inventory


class FactKind(enum.Enum):
    STR = "a string"
    INT = "an integer"
    NUMBER = "a number"
    BOOL = "a boolean (true/false)"
    STR_LIST = "a list of strings"


class FactScope(enum.Enum):
    HOST = "host"  # known for every host; visible to host and service rules
    SERVICE = "service"  # from the port scan / service fingerprint
    CHECK = "check"  # from an active check that talked to the service (Service.checks)
    # From an authenticated inventory of the host (posture scan --local / --ssh); visible to
    # host and service rules; absent, and its rules undetermined, where no inventory ran.
    INVENTORY = "inventory"
    # From matching the software a host runs (its banners, its packages) against the offline
    # advisory database: one document per vulnerability, seen only by `for: vulnerability`.
    VULNERABILITY = "vulnerability"


@dataclass(frozen=True)
class FactSpec:
    name: str
    kind: FactKind
    scope: FactScope
    doc: str
    choices: tuple[str, ...] = ()  # allowed values of a string fact; empty = any
    always: bool = False  # present in every document of its scope (never missing)


_S, _I, _B, _L = FactKind.STR, FactKind.INT, FactKind.BOOL, FactKind.STR_LIST
_N = FactKind.NUMBER
_HOST, _SVC, _CHK = FactScope.HOST, FactScope.SERVICE, FactScope.CHECK
_INV, _VULN = FactScope.INVENTORY, FactScope.VULNERABILITY
_SEVERITIES = ("critical", "high", "medium", "low", "info")

# The one table of fact names. A new probe or check adds its rows here; `when`, `evidence`,
# `discriminator` and example documents are all checked against it.
_TABLE: tuple[FactSpec, ...] = (
    FactSpec("host.address", _S, _HOST, "IP address of the host", always=True),
    FactSpec("host.hostname", _S, _HOST, "hostname (reverse DNS or as given)"),
    FactSpec(
        "host.state", _S, _HOST, "scan state", ("up", "down", "timeout", "error"), always=True
    ),
    FactSpec("port", _I, _SVC, "port number", always=True),
    FactSpec("proto", _S, _SVC, "transport protocol", ("tcp", "udp"), always=True),
    FactSpec(
        "state",
        _S,
        _SVC,
        "nmap port state",
        ("open", "filtered", "open|filtered", "closed", "unfiltered", "closed|filtered"),
        always=True,
    ),
    FactSpec("service.name", _S, _SVC, "nmap service name (ftp, redis, ms-wbt-server, ...)"),
    FactSpec("service.product", _S, _SVC, "product from the fingerprint"),
    FactSpec("service.version", _S, _SVC, "version from the fingerprint"),
    FactSpec("service.extrainfo", _S, _SVC, "extra fingerprint information"),
    FactSpec("service.tunnel", _S, _SVC, "TLS in front of the service", ("ssl",)),
    FactSpec("service.method", _S, _SVC, "how nmap named it", ("probed", "table")),
    FactSpec("service.conf", _I, _SVC, "nmap's confidence 0-10"),
    FactSpec("service.cpe", _L, _SVC, "CPE names from the fingerprint"),
    FactSpec("redis.unauthenticated", _B, _CHK, "Redis answered INFO without AUTH"),
    FactSpec("redis.version", _S, _CHK, "redis_version from INFO"),
    FactSpec("redis.protected_mode", _B, _CHK, "protected-mode setting"),
    FactSpec("ftp.anonymous", _B, _CHK, "anonymous FTP login accepted"),
    FactSpec("ftp.banner", _S, _CHK, "FTP greeting"),
    FactSpec("memcached.unauthenticated", _B, _CHK, "memcached answered without SASL"),
    FactSpec("memcached.version", _S, _CHK, "memcached version"),
    FactSpec("docker.unauthenticated", _B, _CHK, "Docker Engine API answered without TLS auth"),
    FactSpec("docker.version", _S, _CHK, "Docker Engine version"),
    FactSpec("docker.api_version", _S, _CHK, "Docker Engine API version"),
    FactSpec("elasticsearch.unauthenticated", _B, _CHK, "Elasticsearch answered without auth"),
    FactSpec("elasticsearch.version", _S, _CHK, "Elasticsearch version number"),
    FactSpec("elasticsearch.cluster_name", _S, _CHK, "Elasticsearch cluster name"),
    FactSpec("etcd.unauthenticated", _B, _CHK, "etcd answered without client auth"),
    FactSpec("etcd.version", _S, _CHK, "etcd server version"),
    # TLS assessment (scanner/probes/tls/, judged in scanner/rating/); list facts are present
    # only when not empty, so `exists: true` reads "at least one".
    FactSpec(
        "tls.starttls",
        _S,
        _CHK,
        "STARTTLS protocol used to reach TLS",
        ("smtp", "imap", "pop3", "ftp", "postgres"),
    ),
    FactSpec("tls.sni", _S, _CHK, "server name sent in the ClientHello"),
    FactSpec("tls.versions", _L, _CHK, "accepted protocol versions (SSLv2 ... TLSv1.3)"),
    FactSpec("tls.sslv2", _B, _CHK, "SSLv2 accepted"),
    FactSpec("tls.sslv3", _B, _CHK, "SSLv3 accepted"),
    FactSpec("tls.tls10", _B, _CHK, "TLS 1.0 accepted"),
    FactSpec("tls.tls11", _B, _CHK, "TLS 1.1 accepted"),
    FactSpec("tls.tls12", _B, _CHK, "TLS 1.2 accepted"),
    FactSpec("tls.tls13", _B, _CHK, "TLS 1.3 accepted"),
    FactSpec("tls.suites", _L, _CHK, "every accepted cipher suite (IANA names)"),
    FactSpec("tls.rc4_suites", _L, _CHK, "accepted RC4 suites"),
    FactSpec("tls.des3_suites", _L, _CHK, "accepted 3DES suites (64-bit block: SWEET32)"),
    FactSpec("tls.des_suites", _L, _CHK, "accepted single-DES suites"),
    FactSpec("tls.export_suites", _L, _CHK, "accepted EXPORT-grade suites"),
    FactSpec("tls.null_suites", _L, _CHK, "accepted suites without encryption"),
    FactSpec("tls.anonymous_suites", _L, _CHK, "accepted suites without authentication"),
    FactSpec("tls.weak_suites", _L, _CHK, "accepted suites under 128-bit strength"),
    FactSpec("tls.non_pfs_suites", _L, _CHK, "accepted suites without forward secrecy"),
    FactSpec("tls.cbc_tls10_suites", _L, _CHK, "CBC suites accepted on SSLv3/TLS 1.0 (BEAST)"),
    FactSpec("tls.forward_secrecy", _B, _CHK, "at least one forward-secret suite accepted"),
    FactSpec("tls.only_forward_secrecy", _B, _CHK, "every accepted suite is forward-secret"),
    FactSpec("tls.aead", _B, _CHK, "at least one AEAD suite accepted"),
    FactSpec("tls.groups", _L, _CHK, "accepted key-exchange groups, server order"),
    FactSpec("tls.dh_bits", _I, _CHK, "smallest finite-field DHE modulus in bits"),
    FactSpec("tls.ecdh_bits", _I, _CHK, "smallest elliptic-curve group size in bits"),
    FactSpec("tls.secure_renegotiation", _B, _CHK, "RFC 5746 secure renegotiation"),
    FactSpec("tls.compression", _B, _CHK, "TLS compression accepted (CRIME)"),
    FactSpec("tls.fallback_scsv", _B, _CHK, "downgrade protection (RFC 7507)"),
    FactSpec("tls.heartbeat", _B, _CHK, "heartbeat extension offered"),
    FactSpec("tls.heartbleed", _B, _CHK, "answered an over-long heartbeat (CVE-2014-0160)"),
    FactSpec("tls.hsts", _B, _CHK, "HTTPS answered with a Strict-Transport-Security header"),
    FactSpec("tls.hsts_max_age", _I, _CHK, "HSTS max-age in seconds"),
    FactSpec("tls.hsts_include_subdomains", _B, _CHK, "HSTS includeSubDomains"),
    FactSpec(
        "tls.grade",
        _S,
        _CHK,
        "SSL Labs-style grade",
        ("A+", "A", "A-", "B", "C", "D", "E", "F", "T", "M"),
    ),
    FactSpec("tls.grade_ignoring_trust", _S, _CHK, "grade if certificate trust is ignored"),
    FactSpec("tls.score", _I, _CHK, "numeric score 0-100 before caps"),
    FactSpec("tls.grade_caps", _L, _CHK, "why the grade was capped"),
    FactSpec(
        "tls.mozilla_profile",
        _S,
        _CHK,
        "strictest Mozilla 5.7 profile met",
        ("modern", "intermediate", "old", "none"),
    ),
    FactSpec("tls.mozilla_intermediate", _B, _CHK, "conforms to Mozilla intermediate"),
    FactSpec(
        "tls.mozilla_intermediate_deviations", _L, _CHK, "deviations from Mozilla intermediate"
    ),
    FactSpec("tls.cert.subject", _S, _CHK, "leaf certificate subject"),
    FactSpec("tls.cert.issuer", _S, _CHK, "leaf certificate issuer"),
    FactSpec("tls.cert.not_after", _S, _CHK, "leaf expiry (ISO 8601, UTC)"),
    FactSpec("tls.cert.days_left", _I, _CHK, "days until the leaf expires (negative: expired)"),
    FactSpec("tls.cert.expired", _B, _CHK, "leaf certificate expired"),
    FactSpec("tls.cert.not_yet_valid", _B, _CHK, "leaf certificate not yet valid"),
    FactSpec("tls.cert.expiring_soon", _B, _CHK, "leaf expires within the warning window"),
    FactSpec("tls.cert.trusted", _B, _CHK, "chain leads to a trusted root"),
    FactSpec("tls.cert.trust_error", _S, _CHK, "why the chain is not trusted"),
    FactSpec("tls.cert.self_signed", _B, _CHK, "leaf certificate is self-signed"),
    FactSpec("tls.cert.incomplete_chain", _B, _CHK, "server left out a needed intermediate"),
    FactSpec("tls.cert.hostname", _S, _CHK, "name the certificate was checked against"),
    FactSpec("tls.cert.hostname_matches", _B, _CHK, "certificate valid for that name"),
    FactSpec(
        "tls.cert.weak_signature", _S, _CHK, "md5 or sha1 signature in the chain", ("md5", "sha1")
    ),
    FactSpec("tls.cert.key_type", _S, _CHK, "leaf key type (rsa, ecdsa, ed25519, ...)"),
    FactSpec("tls.cert.key_bits", _I, _CHK, "leaf key size in bits"),
    FactSpec("tls.cert.signature_algorithm", _S, _CHK, "leaf signature algorithm"),
    FactSpec("os.id", _S, _INV, "distribution id from /etc/os-release (debian, ubuntu, rhel)"),
    FactSpec("os.version", _S, _INV, "distribution VERSION_ID (12, 22.04, 9.3)"),
    FactSpec("os.kernel", _S, _INV, "running kernel release (uname -r)"),
    FactSpec("inventory.manager", _S, _INV, "package manager", ("dpkg", "rpm", "apk")),
    FactSpec("inventory.packages", _I, _INV, "number of installed packages"),
    FactSpec(
        "sshd.permit_root_login",
        _S,
        _INV,
        "sshd PermitRootLogin",
        ("yes", "no", "prohibit-password", "without-password", "forced-commands-only"),
    ),
    FactSpec("sshd.password_authentication", _B, _INV, "sshd PasswordAuthentication"),
    FactSpec(
        "sshd.kbd_interactive_authentication",
        _B,
        _INV,
        "sshd KbdInteractiveAuthentication (ChallengeResponseAuthentication)",
    ),
    FactSpec("sshd.permit_empty_passwords", _B, _INV, "sshd PermitEmptyPasswords"),
    FactSpec("sshd.x11_forwarding", _B, _INV, "sshd X11Forwarding"),
    FactSpec("sshd.max_auth_tries", _I, _INV, "sshd MaxAuthTries"),
    FactSpec("sshd.ciphers", _L, _INV, "sshd Ciphers, as configured"),
    FactSpec("sshd.macs", _L, _INV, "sshd MACs, as configured"),
    FactSpec("sshd.kex_algorithms", _L, _INV, "sshd KexAlgorithms, as configured"),
    FactSpec("vuln.id", _S, _VULN, "advisory id (the CVE where there is one)", always=True),
    FactSpec("vuln.key", _S, _VULN, "what tells one host's vulnerabilities apart", always=True),
    FactSpec("vuln.cves", _L, _VULN, "CVE ids of the advisory"),
    FactSpec("vuln.product", _S, _VULN, "product or distro package", always=True),
    FactSpec("vuln.version", _S, _VULN, "version found (banner or package)", always=True),
    FactSpec("vuln.fixed_version", _S, _VULN, "first version that fixes it, when known"),
    FactSpec(
        "vuln.source",
        _S,
        _VULN,
        "where the version came from",
        ("banner", "nmap", "package"),
        always=True,
    ),
    FactSpec("vuln.ecosystem", _S, _VULN, "version ordering used (upstream, Debian, Ubuntu ...)"),
    FactSpec("vuln.release", _S, _VULN, "distro release of the advisory (12, 22.04)"),
    FactSpec("vuln.cvss", _N, _VULN, "CVSS base score 0.0-10.0"),
    FactSpec("vuln.cvss_vector", _S, _VULN, "CVSS vector"),
    FactSpec("vuln.cvss_severity", _S, _VULN, "severity of the CVSS score alone", _SEVERITIES),
    FactSpec(
        "vuln.severity",
        _S,
        _VULN,
        "CVSS severity raised one level (at least high) when CISA KEV lists it",
        _SEVERITIES,
        always=True,
    ),
    FactSpec("vuln.kev", _B, _VULN, "in CISA's Known Exploited Vulnerabilities", always=True),
    FactSpec("vuln.kev_ransomware", _B, _VULN, "KEV says ransomware campaigns use it"),
    FactSpec("vuln.epss", _N, _VULN, "EPSS probability of exploitation in 30 days, 0-1"),
    FactSpec("vuln.epss_percentile", _N, _VULN, "EPSS percentile, 0-1"),
    FactSpec(
        "vuln.priority",
        _S,
        _VULN,
        "why it ranks where it does: kev, then epss (EPSS >= 0.1), then cvss",
        ("kev", "epss", "cvss"),
        always=True,
    ),
    FactSpec(
        "vuln.confidence",
        _S,
        _VULN,
        "certain (package), firm (banner), tentative (distro build without its advisories)",
        ("certain", "firm", "tentative"),
        always=True,
    ),
    FactSpec("vuln.reason", _S, _VULN, "why the confidence is what it is"),
    FactSpec("vuln.summary", _S, _VULN, "the advisory's summary, clipped"),
    FactSpec("vuln.match", _S, _VULN, "how it matched", ("osv-range", "nvd-cpe")),
)

FACTS: Mapping[str, FactSpec] = {spec.name: spec for spec in _TABLE}

SUBJECTS = ("service", "host", "vulnerability")


def visible_facts(subject: str) -> Mapping[str, FactSpec]:
    """The facts a rule of this subject can name: host rules see only host facts; service
    rules everything but vulnerability facts; vulnerability rules the host's, the port's (when
    the vulnerable software answered on one) and the vulnerability's own."""
    return _VISIBLE[subject]


_SCOPES_OF = {
    "host": (FactScope.HOST, FactScope.INVENTORY),
    "service": (FactScope.HOST, FactScope.INVENTORY, FactScope.SERVICE, FactScope.CHECK),
    "vulnerability": (
        FactScope.HOST,
        FactScope.INVENTORY,
        FactScope.SERVICE,
        FactScope.VULNERABILITY,
    ),
}
_VISIBLE: Mapping[str, Mapping[str, FactSpec]] = {
    subject: {name: spec for name, spec in FACTS.items() if spec.scope in scopes}
    for subject, scopes in _SCOPES_OF.items()
}


def is_inventory_fact(name: str) -> bool:
    spec = FACTS.get(name)
    return spec is not None and spec.scope is FactScope.INVENTORY


# Names a pack author may reasonably expect, with why they are not facts (yet).
_NOT_FACTS = {
    "service.banner": "no probe collects raw banners yet; match service.product, "
    "service.version or a check's greeting such as ftp.banner",
}


def unknown_fact_message(name: str, subject: str) -> str:
    """Why `name` cannot be used by a rule of `subject`, with the likely intended name."""
    if subject == "host" and name in FACTS:
        return f"fact '{name}' is not available to host rules (only host.* facts are)"
    if name in FACTS:
        scope = FACTS[name].scope.value
        return f"fact '{name}' is not available to {subject} rules ({scope} facts are not)"
    if name in _NOT_FACTS:
        return f"unknown fact '{name}': {_NOT_FACTS[name]}"
    close = difflib.get_close_matches(name, list(visible_facts(subject)), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown fact '{name}'{hint}"


def is_check_fact(name: str) -> bool:
    spec = FACTS.get(name)
    return spec is not None and spec.scope is FactScope.CHECK


def check_namespace(name: str) -> str | None:
    """The active check a fact comes from ("redis" for "redis.unauthenticated"), the key of
    `Service.checks` that fills it; None for a host or port-scan fact."""
    return name.partition(".")[0] if is_check_fact(name) else None


def value_problem(spec: FactSpec, value: Any) -> str | None:
    """Why `value` is not a valid value of the fact, or None when it is."""
    kind = spec.kind
    if kind is FactKind.BOOL:
        ok = isinstance(value, bool)
    elif kind is FactKind.INT:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is FactKind.NUMBER:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif kind is FactKind.STR:
        ok = isinstance(value, str)
    else:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    if not ok:
        return f"'{spec.name}' must be {kind.value}, not {describe(value)}"
    if spec.choices and value not in spec.choices:
        expected = ", ".join(spec.choices)
        return f"'{spec.name}' cannot be {value!r} (expected one of: {expected})"
    return None


def describe(value: Any) -> str:
    """A value's type as a pack author would name it."""
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    if value is None:
        return "null"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return names.get(type(value), f"a {type(value).__name__}")


def host_facts(host: Host) -> dict[str, Any]:
    facts: dict[str, Any] = {"host.address": host.address, "host.state": host.state.value}
    if host.hostname is not None:
        facts["host.hostname"] = host.hostname
    if host.inventory is not None:
        facts.update(inventory_facts(host.inventory))
    return facts


_SSHD_FLAGS = {
    "passwordauthentication": "sshd.password_authentication",
    "kbdinteractiveauthentication": "sshd.kbd_interactive_authentication",
    "challengeresponseauthentication": "sshd.kbd_interactive_authentication",
    "permitemptypasswords": "sshd.permit_empty_passwords",
    "x11forwarding": "sshd.x11_forwarding",
}
_SSHD_LISTS = {
    "ciphers": "sshd.ciphers",
    "macs": "sshd.macs",
    "kexalgorithms": "sshd.kex_algorithms",
}
_ROOT_LOGIN = FACTS["sshd.permit_root_login"].choices


def inventory_facts(inventory: Inventory) -> dict[str, Any]:
    """The `os.*`, `inventory.*` and `sshd.*` facts of an authenticated inventory. A setting
    the server did not state is absent (the rule cannot tell), except where sshd's own default
    is certain."""
    facts: dict[str, Any] = {"inventory.packages": len(inventory.packages)}
    if inventory.manager is not None:
        facts["inventory.manager"] = inventory.manager
    if inventory.os is not None:
        facts["os.id"] = inventory.os.id
        if inventory.os.version_id is not None:
            facts["os.version"] = inventory.os.version_id
    if inventory.kernel is not None:
        facts["os.kernel"] = inventory.kernel
    sshd = inventory.sshd
    root = sshd.get("permitrootlogin", "").lower()
    if root in _ROOT_LOGIN:
        facts["sshd.permit_root_login"] = root
    for key, fact in _SSHD_FLAGS.items():
        value = sshd.get(key, "").lower()
        if value in ("yes", "no") and fact not in facts:
            facts[fact] = value == "yes"
    for key, fact in _SSHD_LISTS.items():
        if sshd.get(key):
            facts[fact] = [item.strip().lower() for item in sshd[key].split(",") if item.strip()]
    tries = sshd.get("maxauthtries", "")
    if tries.isdigit():
        facts["sshd.max_auth_tries"] = int(tries)
    return facts


def service_facts(host: Host, service: Service) -> dict[str, Any]:
    """The host's facts plus the service's and its active checks' (`<check>.<fact>`)."""
    facts = host_facts(host)
    facts.update(port=service.port, proto=service.proto, state=service.state)
    optional: dict[str, Any] = {
        "service.name": service.name,
        "service.product": service.product,
        "service.version": service.version,
        "service.extrainfo": service.extrainfo,
        "service.tunnel": service.tunnel,
        "service.method": service.method,
        "service.conf": service.conf,
        "service.cpe": list(service.cpe) if service.cpe else None,
    }
    facts.update((name, value) for name, value in optional.items() if value is not None)
    for check, values in service.checks.items():
        for name, value in values.items():
            if value is not None:
                facts[f"{check}.{name}"] = value
    return facts


def vulnerability_facts(host: Host, vulnerability: Vulnerability) -> dict[str, Any]:
    """The host's facts, the port's when the software answered on one, and the `vuln.*` facts
    of one matched advisory."""
    service = next(
        (
            s
            for s in host.services
            if s.port == vulnerability.port and s.proto == vulnerability.proto
        ),
        None,
    )
    found = service_facts(host, service) if service is not None else host_facts(host)
    # Vulnerability rules see no active-check facts (their documents are about software).
    facts = {k: v for k, v in found.items() if k in FACTS and not is_check_fact(k)}
    cvss_severity = vulnerability.cvss_severity
    optional: dict[str, Any] = {
        "vuln.cves": list(vulnerability.cves) if vulnerability.cves else None,
        "vuln.fixed_version": vulnerability.fixed_version,
        "vuln.ecosystem": vulnerability.ecosystem,
        "vuln.release": vulnerability.release,
        "vuln.cvss": vulnerability.cvss_score,
        "vuln.cvss_vector": vulnerability.cvss_vector,
        "vuln.cvss_severity": cvss_severity.value if cvss_severity else None,
        "vuln.kev_ransomware": vulnerability.kev_ransomware,
        "vuln.epss": vulnerability.epss,
        "vuln.epss_percentile": vulnerability.epss_percentile,
        "vuln.reason": vulnerability.reason,
        "vuln.summary": vulnerability.summary,
        "vuln.match": vulnerability.match,
    }
    facts.update(
        {
            "vuln.id": vulnerability.advisory_id,
            "vuln.key": vulnerability.key,
            "vuln.product": vulnerability.product,
            "vuln.version": vulnerability.version,
            "vuln.source": vulnerability.source,
            "vuln.severity": vulnerability.severity.value,
            "vuln.kev": vulnerability.kev,
            "vuln.priority": vulnerability.priority,
            "vuln.confidence": vulnerability.confidence.value,
        }
    )
    facts.update((name, value) for name, value in optional.items() if value is not None)
    return facts
