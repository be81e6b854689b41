"""A minimal, bounded HTTP/1.0 client for checks that read a JSON status document.

HTTP/1.0 keeps replies simple (no chunking, the body ends when the server closes) and the whole
reply is capped at MAX_REPLY bytes and the check's time budget.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from scanner.probes.checks.interface import MAX_REPLY, Budget, ServiceCheck, send_all

_MAX_HEADERS = 100


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: dict[str, str]  # lower-case names; a repeated header keeps its last value
    body: bytes

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None


def fetch(
    check: ServiceCheck,
    address: str,
    port: int,
    path: str,
    budget: Budget,
    *,
    tls: bool = False,
    method: str = "GET",
    body: bytes | None = None,
) -> HttpReply | None:
    """One request; None when the answer is not HTTP. Connection errors propagate (OSError)."""
    host = f"[{address}]" if ":" in address else address
    head = [
        f"{method} {path} HTTP/1.0",
        f"Host: {host}:{port}",
        "User-Agent: posture",
        "Accept: application/json",
    ]
    if body is not None:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    request = ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + (body or b"")
    with check.connect(address, port, budget, tls=tls) as sock:
        send_all(sock, request, budget)
        raw = bytearray()
        while len(raw) < MAX_REPLY:
            sock.settimeout(budget.left())
            chunk = sock.recv(MAX_REPLY - len(raw))
            if not chunk:
                break
            raw += chunk
            if _complete(raw):
                break
    return parse_reply(bytes(raw))


def _complete(raw: bytearray) -> bool:
    # Servers that keep the connection open after a Content-Length body need no EOF wait.
    reply = parse_reply(bytes(raw))
    if reply is None:
        return False
    length = reply.headers.get("content-length", "")
    return length.isdigit() and len(reply.body) >= int(length)


def parse_reply(raw: bytes) -> HttpReply | None:
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        return None
    headers: dict[str, str] = {}
    for line in lines[1 : 1 + _MAX_HEADERS]:
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    length = headers.get("content-length", "")
    if length.isdigit():
        body = body[: int(length)]
    return HttpReply(int(parts[1]), headers, body)
