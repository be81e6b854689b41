"""Docker Engine API: does `GET /version` answer without authentication?"""

from __future__ import annotations

from typing import Any

from scanner.model import Service
from scanner.probes.checks.httpget import fetch
from scanner.probes.checks.interface import Budget, ServiceCheck
from scanner.safetext import clip


class DockerCheck(ServiceCheck):
    """Facts: unauthenticated (bool), version (str), api_version (str)."""

    name = "docker"
    names = frozenset({"docker"})
    ports = frozenset({2375})
    products = ("docker",)
    compatible = frozenset({"", "unknown", "tcpwrapped", "http"})
    speaks_tls = True

    def gather(self, address: str, service: Service, timeout: float) -> dict[str, Any] | None:
        reply = fetch(
            self, address, service.port, "/version", Budget(timeout), tls=bool(service.tunnel)
        )
        if reply is None:
            return None
        data = reply.json()
        if reply.status == 200 and isinstance(data, dict) and "ApiVersion" in data:
            return {
                "unauthenticated": True,
                "version": clip(str(data.get("Version", "")), 64),
                "api_version": clip(str(data["ApiVersion"]), 16),
            }
        server = reply.headers.get("server", "").lower()
        if reply.status in (401, 403) and ("docker" in server or "api-version" in reply.headers):
            return {"unauthenticated": False}
        return None
