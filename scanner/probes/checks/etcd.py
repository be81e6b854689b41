"""etcd: version from `GET /version`, and whether a read needs authentication.

The auth test is a v3 gateway Range (`POST /v3/kv/range`, count_only) on a key posture never
writes: read-only, and it returns a count, not data. With auth enabled and no token, etcd 3.4+
answers "etcdserver: user name is empty"; without auth it answers with a response header.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from scanner.model import Service
from scanner.probes.checks.httpget import fetch
from scanner.probes.checks.interface import Budget, ServiceCheck
from scanner.safetext import clip

_PROBE_KEY = base64.b64encode(b"/posture/auth-probe").decode("ascii")
_RANGE = json.dumps({"key": _PROBE_KEY, "count_only": True}).encode("ascii")
_AUTH_ERRORS = ("user name is empty", "invalid auth token", "permission denied")


class EtcdCheck(ServiceCheck):
    """Facts: version (str) and, when the v3 gateway answers, unauthenticated (bool)."""

    name = "etcd"
    names = frozenset({"etcd", "etcd-client"})
    ports = frozenset({2379})
    products = ("etcd",)
    compatible = frozenset({"", "unknown", "tcpwrapped", "http"})
    speaks_tls = True

    def gather(self, address: str, service: Service, timeout: float) -> dict[str, Any] | None:
        budget = Budget(timeout)
        tls = bool(service.tunnel)
        facts: dict[str, Any] = {}
        reply = fetch(self, address, service.port, "/version", budget, tls=tls)
        data = reply.json() if reply is not None and reply.status == 200 else None
        if isinstance(data, dict) and "etcdserver" in data:
            facts["version"] = clip(str(data["etcdserver"]), 64)
        reply = fetch(
            self, address, service.port, "/v3/kv/range", budget, tls=tls, method="POST", body=_RANGE
        )
        if reply is not None:
            data = reply.json()
            text = reply.body.decode("latin-1").lower()
            if reply.status == 200 and isinstance(data, dict) and "header" in data:
                facts["unauthenticated"] = True
            elif reply.status in (400, 401, 403) and any(e in text for e in _AUTH_ERRORS):
                facts["unauthenticated"] = False
        return facts or None
