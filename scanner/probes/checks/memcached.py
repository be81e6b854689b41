"""memcached: does it answer `version` without authentication?"""

from __future__ import annotations

from typing import Any

from scanner.model import Service
from scanner.probes.checks.interface import Budget, ServiceCheck, recv_line, send_all
from scanner.safetext import clip, decode_banner


class MemcachedCheck(ServiceCheck):
    """Facts: unauthenticated (bool), version (str)."""

    name = "memcached"
    names = frozenset({"memcache", "memcached"})
    ports = frozenset({11211})
    products = ("memcached",)

    def gather(self, address: str, service: Service, timeout: float) -> dict[str, Any] | None:
        budget = Budget(timeout)
        with self.connect(address, service.port, budget) as sock:
            send_all(sock, b"version\r\n", budget)
            line = decode_banner(recv_line(sock, budget, limit=1024))
        if line.startswith("VERSION "):
            return {"unauthenticated": True, "version": clip(line[8:].strip(), 64)}
        if "unauthenticated" in line.lower():  # ASCII auth (-Y): "CLIENT_ERROR unauthenticated"
            return {"unauthenticated": False}
        return None
