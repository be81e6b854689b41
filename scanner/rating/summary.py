"""One line per TLS endpoint (grade, versions, certificate, error) for scan output and reports."""

from __future__ import annotations

from typing import Any

from scanner.probes.tls.model import TlsEndpoint
from scanner.rating.grade import grade


def tls_summary(endpoint: TlsEndpoint) -> dict[str, Any]:
    """The endpoint's overview, machine-readable (raw: callers escape for their medium)."""
    verdict = grade(endpoint) if endpoint.error is None else None
    chain = endpoint.chain
    return {
        "host": endpoint.host,
        "port": endpoint.port,
        "sni": endpoint.sni,
        "starttls": endpoint.starttls.value if endpoint.starttls else None,
        "grade": verdict.letter if verdict else None,
        "caps": [cap.reason for cap in verdict.caps] if verdict else [],
        "versions": [v.value for v in endpoint.supported_versions],
        "certificate_days_left": chain.days_left if chain else None,
        "trusted": chain.trusted if chain else None,
        "error": endpoint.error,
    }
