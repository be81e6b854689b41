"""A `TlsEndpoint` as a JSON-ready document (posture tls --json, the store, reports), and back."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import fields, is_dataclass
from typing import Any

from scanner.probes.tls.model import (
    CertificateFacts,
    ChainFacts,
    HstsPolicy,
    KeyExchangeGroup,
    ProtocolSupport,
    StartTls,
    TlsEndpoint,
    TlsVersion,
)

FORMAT_VERSION = 1


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value


def endpoint_as_dict(endpoint: TlsEndpoint) -> dict[str, Any]:
    """Every fact of the endpoint, enums as their names and times as ISO 8601 strings."""
    document: dict[str, Any] = _plain(endpoint)
    document["format"] = FORMAT_VERSION
    return document


def _certificate(raw: dict[str, Any]) -> CertificateFacts:
    values = dict(raw)
    for key in ("not_before", "not_after"):
        values[key] = dt.datetime.fromisoformat(values[key])
    for key in ("dns_names", "ip_addresses"):
        values[key] = tuple(values[key])
    return CertificateFacts(**values)


def endpoint_from_dict(document: dict[str, Any]) -> TlsEndpoint:
    """The endpoint `endpoint_as_dict` wrote (for reports reading the store)."""
    values = {k: v for k, v in document.items() if k != "format"}
    values["protocols"] = tuple(
        ProtocolSupport(**{**p, "version": TlsVersion(p["version"]), "suites": tuple(p["suites"])})
        for p in values["protocols"]
    )
    values["groups"] = tuple(
        KeyExchangeGroup(
            name=g["name"], bits=g["bits"], versions=tuple(TlsVersion(v) for v in g["versions"])
        )
        for g in values["groups"]
    )
    if values.get("starttls") is not None:
        values["starttls"] = StartTls(values["starttls"])
    if values.get("chain") is not None:
        chain = dict(values["chain"])
        chain["certificates"] = tuple(_certificate(c) for c in chain["certificates"])
        values["chain"] = ChainFacts(**chain)
    if values.get("hsts") is not None:
        values["hsts"] = HstsPolicy(**values["hsts"])
    values["warnings"] = tuple(values.get("warnings", ()))
    return TlsEndpoint(**values)
