"""The system OpenSSH client's command line, shared by the inventory probe and the response
connector: key authentication only (BatchMode, never a prompt), host keys checked, bounded waits,
and `--` before the destination so that no caller-given value can be read as an option."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Literal

from scanner.safetext import decode_banner

HostKeys = Literal["yes", "accept-new", "no"]  # ssh's StrictHostKeyChecking

_USER = re.compile(r"[a-z_][a-z0-9_.-]{0,31}\Z", re.IGNORECASE)
_HOST = re.compile(r"[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?\Z", re.IGNORECASE)


def valid_user(user: str) -> bool:
    """A POSIX login name (and so never an ssh option)."""
    return bool(_USER.match(user))


def valid_host(host: str) -> bool:
    """An IPv4/IPv6 address or a DNS name (and so never an ssh option or a user@host)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return bool(_HOST.match(host)) and ".." not in host
    return True


def ssh_argv(
    user: str,
    host: str,
    *,
    port: int = 22,
    identity: Path | str | None = None,
    known_hosts: Path | None = None,
    host_keys: HostKeys = "yes",
    connect_timeout: float = 10.0,
) -> list[str]:
    """`ssh ... -l USER -- HOST`; the caller appends the remote command (one string, which the
    remote login shell parses) and validates user and host first."""
    argv = ["ssh", "-T", "-o", "BatchMode=yes", "-o", f"StrictHostKeyChecking={host_keys}"]
    argv += ["-o", f"ConnectTimeout={max(1, int(connect_timeout))}"]
    # A link that dies mid-command ends within ~10 s instead of hanging until the step timeout.
    argv += ["-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=2"]
    argv += ["-o", "LogLevel=ERROR", "-p", str(port)]
    if identity is not None:
        argv += ["-i", str(identity), "-o", "IdentitiesOnly=yes"]
    if known_hosts is not None:
        argv += ["-o", f"UserKnownHostsFile={known_hosts}"]
    elif host_keys == "no":
        # Unchecked keys are not remembered either: the user's own known_hosts stays as it was.
        argv += ["-o", "UserKnownHostsFile=/dev/null"]
    return [*argv, "-l", user, "--", host]


def failure_reason(stderr: bytes) -> str:
    """Why ssh gave up (exit 255): its last stderr line, printable and bounded."""
    lines = [ln for ln in decode_banner(stderr[-600:], 600).splitlines() if ln.strip()]
    return lines[-1].strip()[:300] if lines else "exit 255"
