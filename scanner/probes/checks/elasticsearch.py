"""Elasticsearch: does `GET /` answer without authentication?"""

from __future__ import annotations

from typing import Any

from scanner.model import Service
from scanner.probes.checks.httpget import fetch
from scanner.probes.checks.interface import Budget, ServiceCheck
from scanner.safetext import clip


class ElasticsearchCheck(ServiceCheck):
    """Facts: unauthenticated (bool), version (str), cluster_name (str)."""

    name = "elasticsearch"
    names = frozenset({"elasticsearch"})
    ports = frozenset({9200})
    products = ("elasticsearch",)
    compatible = frozenset({"", "unknown", "tcpwrapped", "http", "wap-wsp"})
    speaks_tls = True

    def gather(self, address: str, service: Service, timeout: float) -> dict[str, Any] | None:
        reply = fetch(self, address, service.port, "/", Budget(timeout), tls=bool(service.tunnel))
        if reply is None:
            return None
        data = reply.json()
        if reply.status == 200 and isinstance(data, dict):
            version = data.get("version")
            if isinstance(version, dict) and "number" in version and "cluster_name" in data:
                return {
                    "unauthenticated": True,
                    "version": clip(str(version["number"]), 64),
                    "cluster_name": clip(str(data["cluster_name"]), 128),
                }
        if reply.status == 401 and (
            "security_exception" in reply.body.decode("latin-1")
            or "x-elastic-product" in reply.headers
        ):
            return {"unauthenticated": False}
        return None
