"""What an active service check is, and the bounded socket I/O every check uses.

A check talks to one open service, safely and read-only, and returns flat facts (or None when it
could not tell: a refused connection is "did not run", never "false").
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, ClassVar

from scanner.model import Service

MAX_REPLY = 64 * 1024  # bytes read from any one service, whatever it sends

# Names nmap gives a port when it could not (or did not try to) identify what answers there.
UNIDENTIFIED = frozenset({"", "unknown", "tcpwrapped"})


class Budget:
    """A check's whole time allowance; every blocking call gets what is left of it."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the check ran out of time")
        return remaining


class ServiceCheck(ABC):
    """One active check; `name` is its fact namespace (facts reach rules as "<name>.<fact>")."""

    name: ClassVar[str]
    names: ClassVar[frozenset[str]] = frozenset()  # nmap service names it speaks to
    ports: ClassVar[frozenset[int]] = frozenset()  # well-known ports
    products: ClassVar[tuple[str, ...]] = ()  # lower-case substrings of nmap's product
    # Names nmap may give this service under its well-known port (e.g. "http" for Elasticsearch)
    compatible: ClassVar[frozenset[str]] = UNIDENTIFIED
    speaks_tls: ClassVar[bool] = False  # whether it can run through nmap's "ssl" tunnel

    def __init__(self, *, source_address: str | None = None) -> None:
        # Where connections come from; None lets the kernel choose (as for any client).
        self.source_address = source_address

    def applies(self, service: Service) -> bool:
        """By nmap's service name or product, else by well-known port unless nmap identified
        something else there."""
        if service.proto != "tcp" or service.state != "open":
            return False
        if service.tunnel and not self.speaks_tls:
            return False
        name = (service.name or "").lower()
        if name in self.names:
            return True
        product = (service.product or "").lower()
        if product and any(p in product for p in self.products):
            return True
        if service.port in self.ports:
            return service.method != "probed" or name in self.compatible
        return False

    def run(self, address: str, service: Service, timeout: float) -> dict[str, Any] | None:
        """Facts about the service at `address`, or None when the check could not tell
        (connection refused or reset, timed out, TLS failed)."""
        try:
            return self.gather(address, service, timeout)
        except (OSError, EOFError):
            return None

    @abstractmethod
    def gather(self, address: str, service: Service, timeout: float) -> dict[str, Any] | None:
        """The check itself; network errors may propagate (`run` turns them into None)."""

    @contextlib.contextmanager
    def connect(
        self, address: str, port: int, budget: Budget, *, tls: bool = False
    ) -> Iterator[socket.socket]:
        """A TCP (optionally TLS) connection whose every operation is bounded by `budget`."""
        source = (self.source_address, 0) if self.source_address else None
        sock = socket.create_connection((address, port), budget.left(), source_address=source)
        try:
            if tls:
                # Facts only, no secrets sent: an unverified handshake is enough to read them.
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                sock.settimeout(budget.left())
                sock = context.wrap_socket(sock)
            yield sock
        finally:
            sock.close()


def send_all(sock: socket.socket, data: bytes, budget: Budget) -> None:
    sock.settimeout(budget.left())
    sock.sendall(data)


def recv_line(sock: socket.socket, budget: Budget, limit: int = 4096) -> bytes:
    """One CRLF/LF-terminated line (terminator stripped), at most `limit` bytes."""
    data = bytearray()
    while len(data) < limit:
        sock.settimeout(budget.left())
        chunk = sock.recv(1)
        if not chunk:
            break
        data += chunk
        if chunk == b"\n":
            break
    return bytes(data).rstrip(b"\r\n")


def recv_upto(sock: socket.socket, size: int, budget: Budget) -> bytes:
    """Up to `size` bytes (never more than MAX_REPLY), fewer if the peer closes."""
    size = min(size, MAX_REPLY)
    data = bytearray()
    while len(data) < size:
        sock.settimeout(budget.left())
        chunk = sock.recv(min(65536, size - len(data)))
        if not chunk:
            break
        data += chunk
    return bytes(data)
