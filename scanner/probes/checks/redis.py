"""Redis: does it answer `INFO server` without authentication (and is protected mode on)?

Sends one read-only command. "-NOAUTH" means a password is required; "-DENIED ... protected
mode" means Redis refuses clients from other hosts because it has no password.
"""

from __future__ import annotations

from typing import Any

from scanner.model import Service
from scanner.probes.checks.interface import (
    MAX_REPLY,
    Budget,
    ServiceCheck,
    recv_line,
    recv_upto,
    send_all,
)
from scanner.safetext import clip, decode_banner

_INFO_SERVER = b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n"


class RedisCheck(ServiceCheck):
    """Facts: unauthenticated (bool), version (str), protected_mode (bool).

    protected_mode is True when protected mode refused this client, False when Redis answered
    (protected mode, if on, would have refused a remote client); it is left out after -NOAUTH.
    """

    name = "redis"
    names = frozenset({"redis"})
    ports = frozenset({6379})

    def gather(self, address: str, service: Service, timeout: float) -> dict[str, Any] | None:
        budget = Budget(timeout)
        with self.connect(address, service.port, budget) as sock:
            send_all(sock, _INFO_SERVER, budget)
            first = recv_line(sock, budget)
            body = b""
            if first.startswith(b"$") and first[1:].isdigit():
                body = recv_upto(sock, min(int(first[1:]), MAX_REPLY), budget)
        return interpret(first, body)


def interpret(first: bytes, body: bytes) -> dict[str, Any] | None:
    """Facts from the first reply line and, for a bulk reply, its payload."""
    if first.startswith(b"$") and first[1:].isdigit():
        facts: dict[str, Any] = {"unauthenticated": True, "protected_mode": False}
        for line in decode_banner(body, MAX_REPLY).splitlines():
            if line.startswith("redis_version:"):
                facts["version"] = clip(line.partition(":")[2].strip(), 64)
                break
        return facts
    upper = first.upper()
    if upper.startswith(b"-NOAUTH"):
        return {"unauthenticated": False}
    if upper.startswith(b"-DENIED"):
        return {"unauthenticated": False, "protected_mode": True}
    if upper.startswith(b"-NOPERM"):
        # ACLs refused INFO to the default user, which means we are logged in without a password
        return {"unauthenticated": True, "protected_mode": False}
    return None
