"""FTP: does the server accept an anonymous login? Logs in, reads the banner, says QUIT."""

from __future__ import annotations

import contextlib
import ftplib
import socket
import threading
from typing import Any

from scanner.model import Service
from scanner.probes.checks.interface import Budget, ServiceCheck
from scanner.safetext import clip

# Answers to USER/PASS that mean "not before TLS": they say nothing about anonymous access.
_NEEDS_TLS = ("tls", "ssl", "encrypt", "auth ")


class FtpCheck(ServiceCheck):
    """Facts: anonymous (bool), banner (str)."""

    name = "ftp"
    names = frozenset({"ftp"})
    ports = frozenset({21})

    def gather(self, address: str, service: Service, timeout: float) -> dict[str, Any] | None:
        budget = Budget(timeout)
        source = (self.source_address, 0) if self.source_address else None
        # latin-1 never fails to decode, whatever bytes the server sends. Plain FTP is the very
        # thing under test here, hence S321.
        ftp = ftplib.FTP(  # noqa: S321
            timeout=budget.left(), source_address=source, encoding="latin-1"
        )
        try:
            banner = ftp.connect(address, service.port, timeout=budget.left())
            # ftplib reads multi-line replies until they end: a server that never ends one is
            # cut off when the budget runs out.
            with _cut_off_at(ftp.sock, budget):
                facts: dict[str, Any] = {"banner": clip(banner)}
                try:
                    reply = ftp.login("anonymous", "anonymous@")
                    facts["anonymous"] = reply.startswith("2")
                except ftplib.error_perm as exc:
                    if not any(word in str(exc).lower() for word in _NEEDS_TLS):
                        facts["anonymous"] = False
                except ftplib.error_temp:
                    pass  # e.g. 421 too many connections: anonymous access unknown
                with contextlib.suppress(OSError, ftplib.Error, EOFError):
                    ftp.quit()
                return facts
        except ftplib.Error:
            return None  # not an FTP server after all (or it refused us with 421)
        finally:
            ftp.close()


@contextlib.contextmanager
def _cut_off_at(sock: socket.socket | None, budget: Budget) -> Any:
    def cut() -> None:
        with contextlib.suppress(OSError):
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(budget.left(), cut)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
