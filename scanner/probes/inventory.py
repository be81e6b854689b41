"""Authenticated inventory: the installed packages (dpkg, rpm, apk), OS release, kernel and the
SSH server's effective settings of one host, read locally or over SSH with the system's OpenSSH
client. Facts only: matching them against advisories is scanner/vulndb's work.

Every command is a fixed string chosen here; the only caller-given values are the SSH user,
host, port and key file, which are validated and passed as separate arguments, never through a
local shell.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from scanner.safetext import clip
from scanner.ssh_client import failure_reason, ssh_argv, valid_host, valid_user

MAX_OUTPUT = 64 * 1024 * 1024  # bytes of one command's output (a big RPM host lists ~5 MB)
MAX_PACKAGES = 200_000
COMMAND_TIMEOUT = 120.0

# Tab-separated so that no field can fake another; dpkg's ${source:Package} and
# ${source:Version} name the source package, which is what distro advisories list.
DPKG_COMMAND = (
    "dpkg-query -W -f '${db:Status-Abbrev}\\t${Package}\\t${Version}\\t${Architecture}"
    "\\t${source:Package}\\t${source:Version}\\n'"
)
RPM_COMMAND = (
    "rpm -qa --qf '%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\t%{ARCH}\\t%{SOURCERPM}\\n'"
)
APK_COMMAND = "apk info -v 2>/dev/null || apk list --installed"
# `sshd -T` prints the effective configuration (Match blocks aside); it needs root and a readable
# host key, so the file is the fallback.
SSHD_COMMAND = "sshd -T 2>/dev/null || /usr/sbin/sshd -T 2>/dev/null || cat /etc/ssh/sshd_config"
DETECT_COMMAND = (
    "for m in dpkg-query rpm apk; do command -v $m >/dev/null 2>&1 && echo $m; done; true"
)

_APK_LINE = re.compile(r"([^\s]+?)-(\d[^\s-]*-r\d+)(?:\s|\Z)")


class InventoryError(Exception):
    """The inventory could not be read (login refused, no package manager, output too big)."""


@dataclass(frozen=True)
class Package:
    """One installed package; `source`/`source_version` name the source package when the
    manager records it (Debian advisories are per source package)."""

    name: str
    version: str
    manager: str  # "dpkg" | "rpm" | "apk"
    arch: str | None = None
    source: str | None = None
    source_version: str | None = None


@dataclass(frozen=True)
class OsRelease:
    id: str  # "debian", "ubuntu", "rhel", "rocky", "alpine" ...
    version_id: str | None
    pretty_name: str | None
    id_like: tuple[str, ...] = ()
    version_codename: str | None = None


@dataclass(frozen=True)
class Inventory:
    host: str  # "localhost" or the SSH destination
    os: OsRelease | None
    kernel: str | None
    manager: str | None
    packages: tuple[Package, ...]
    sshd: Mapping[str, str] = field(default_factory=dict)  # lower-case keyword -> value
    warnings: tuple[str, ...] = ()


class Runner(Protocol):
    """Runs one fixed command on the inventoried host: (exit code, stdout)."""

    name: str

    def run(self, command: str) -> tuple[int, str]: ...


def _run(argv: Sequence[str], timeout: float) -> tuple[int, str]:
    try:
        done = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise InventoryError(f"`{argv[0]}` did not finish within {timeout:g}s") from None
    except OSError as exc:
        raise InventoryError(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
    if len(done.stdout) > MAX_OUTPUT:
        raise InventoryError(f"more than {MAX_OUTPUT} bytes of output from {argv[0]}")
    if done.returncode == 255 and argv[0].endswith("ssh"):
        raise InventoryError("ssh failed: " + failure_reason(done.stderr))
    return done.returncode, done.stdout.decode("utf-8", "replace")


@dataclass
class LocalRunner:
    """This machine, through /bin/sh (the commands are fixed strings of this module)."""

    timeout: float = COMMAND_TIMEOUT
    name: str = "localhost"

    def run(self, command: str) -> tuple[int, str]:
        return _run(["/bin/sh", "-c", command], self.timeout)


@dataclass
class SshRunner:
    """Another host through the system OpenSSH client: key authentication only (BatchMode),
    host keys checked against `known_hosts` (or the user's own when None)."""

    user: str
    host: str
    port: int = 22
    key_file: Path | None = None
    known_hosts: Path | None = None
    accept_new_host_key: bool = False
    timeout: float = COMMAND_TIMEOUT
    connect_timeout: float = 10.0
    name: str = field(init=False)

    def __post_init__(self) -> None:
        if not valid_user(self.user):
            raise InventoryError(f"{self.user[:40]!r} is not a valid SSH user name")
        if not valid_host(self.host):
            raise InventoryError(f"{self.host[:80]!r} is not a valid host name or address")
        if not 0 < self.port < 65536:
            raise InventoryError(f"SSH port {self.port} is not 1-65535")
        if self.key_file is not None and not Path(self.key_file).is_file():
            raise InventoryError(f"no key file {self.key_file}")
        if shutil.which("ssh") is None:
            raise InventoryError("the OpenSSH client is missing: apt-get install -y openssh-client")
        self.name = f"{self.user}@{self.host}"

    def argv(self, command: str) -> list[str]:
        destination = ssh_argv(
            self.user,
            self.host,
            port=self.port,
            identity=self.key_file,
            known_hosts=self.known_hosts,
            host_keys="accept-new" if self.accept_new_host_key else "yes",
            connect_timeout=self.connect_timeout,
        )
        return [*destination, command]

    def run(self, command: str) -> tuple[int, str]:
        return _run(self.argv(command), self.timeout)


# --- parsing what the commands print -------------------------------------------------------


def _field(text: str) -> str:
    return clip(text.strip(), 256)


def parse_os_release(text: str) -> OsRelease | None:
    """/etc/os-release (freedesktop format: KEY=value, optionally quoted)."""
    values: dict[str, str] = {}
    for line in text.splitlines()[:200]:
        key, sep, value = line.partition("=")
        if not sep or not key.strip().isidentifier():
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = _field(value)
    if "ID" not in values:
        return None
    return OsRelease(
        id=values["ID"].lower(),
        version_id=values.get("VERSION_ID"),
        pretty_name=values.get("PRETTY_NAME"),
        id_like=tuple(values.get("ID_LIKE", "").lower().split()),
        version_codename=values.get("VERSION_CODENAME"),
    )


def parse_dpkg(text: str) -> list[Package]:
    """DPKG_COMMAND's output: installed packages only (status 'ii'/'hi')."""
    packages = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) != 6 or parts[0].strip()[1:2] != "i":
            continue
        _status, name, version, arch, source, source_version = (p.strip() for p in parts)
        if not name or not version:
            continue
        packages.append(
            Package(
                _field(name),
                _field(version),
                "dpkg",
                _field(arch) or None,
                _field(source or name),
                _field(source_version or version),
            )
        )
        if len(packages) >= MAX_PACKAGES:
            break
    return packages


def parse_rpm(text: str) -> list[Package]:
    """RPM_COMMAND's output; the source package name is taken from the .src.rpm file name."""
    packages = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) != 4 or not parts[0] or not parts[1]:
            continue
        name, evr, arch, source_rpm = (p.strip() for p in parts)
        epoch, _, version = evr.partition(":")
        full = version if epoch in ("0", "") else evr
        source = None
        if source_rpm.endswith(".src.rpm"):
            # name-version-release.src.rpm: the name is everything before the last two dashes
            source = source_rpm[: -len(".src.rpm")].rsplit("-", 2)[0] or None
        packages.append(Package(_field(name), _field(full), "rpm", _field(arch) or None, source))
        if len(packages) >= MAX_PACKAGES:
            break
    return packages


def parse_apk(text: str) -> list[Package]:
    """`apk info -v` (name-version-rN per line) or `apk list --installed`."""
    packages = []
    for line in text.splitlines():
        match = _APK_LINE.match(line.strip())
        if match is None:
            continue
        packages.append(Package(_field(match.group(1)), _field(match.group(2)), "apk"))
        if len(packages) >= MAX_PACKAGES:
            break
    return packages


_SSHD_KEYS = frozenset(
    {
        "permitrootlogin",
        "passwordauthentication",
        "kbdinteractiveauthentication",
        "challengeresponseauthentication",
        "permitemptypasswords",
        "pubkeyauthentication",
        "kexalgorithms",
        "ciphers",
        "macs",
        "hostkeyalgorithms",
        "x11forwarding",
        "allowtcpforwarding",
        "maxauthtries",
        "logingracetime",
        "usepam",
        "protocol",
    }
)


def parse_sshd_settings(text: str) -> dict[str, str]:
    """`sshd -T` output or an sshd_config file: the settings that matter for findings, keys
    lower-cased. In a config file the first value wins (as sshd reads it) and Match blocks are
    left out (they apply only to some connections)."""
    settings: dict[str, str] = {}
    for raw in text.splitlines()[:5000]:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.replace("=", " ", 1).partition(" ")
        key = key.lower()
        if key == "match":
            break
        if key in _SSHD_KEYS and key not in settings:
            settings[key] = _field(value.strip().strip('"'))
    return settings


# --- the inventory ---------------------------------------------------------------------------

_PARSERS = {
    "dpkg-query": ("dpkg", DPKG_COMMAND, parse_dpkg),
    "rpm": ("rpm", RPM_COMMAND, parse_rpm),
    "apk": ("apk", APK_COMMAND, parse_apk),
}


def collect(runner: Runner) -> Inventory:
    """Everything the inventory reads, through `runner`. Raises InventoryError when the host
    cannot be reached; a missing piece (no sshd, no package manager) becomes a warning."""
    warnings: list[str] = []
    code, os_text = runner.run("cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release")
    release = parse_os_release(os_text) if code == 0 else None
    if release is None:
        warnings.append("no /etc/os-release: the distribution is unknown")
    code, kernel_text = runner.run("uname -r")
    kernel = _field(kernel_text.splitlines()[0]) if code == 0 and kernel_text.strip() else None
    _, detected = runner.run(DETECT_COMMAND)
    managers = [m for m in detected.split() if m in _PARSERS]
    packages: list[Package] = []
    manager = None
    if not managers:
        warnings.append("no package manager found (dpkg, rpm, apk)")
    else:
        manager, command, parse = _PARSERS[managers[0]]
        code, listing = runner.run(command)
        if code != 0:
            warnings.append(f"{manager}: listing the packages failed (exit {code})")
        packages = parse(listing)
    code, sshd_text = runner.run(SSHD_COMMAND)
    sshd = parse_sshd_settings(sshd_text) if code == 0 else {}
    if not sshd:
        warnings.append("no sshd settings could be read")
    return Inventory(
        host=runner.name,
        os=release,
        kernel=kernel,
        manager=manager,
        packages=tuple(packages),
        sshd=sshd,
        warnings=tuple(warnings),
    )


def local_inventory(timeout: float = COMMAND_TIMEOUT) -> Inventory:
    return collect(LocalRunner(timeout))


def ssh_destination(text: str, default_host: str | None = None) -> tuple[str, str]:
    """USER[@HOST] as `--ssh` takes it: (user, host); the host defaults to the scanned one."""
    user, sep, host = text.partition("@")
    if not sep:
        host = default_host or ""
    if not host:
        raise InventoryError(f"--ssh {text[:60]!r}: no host (write USER@HOST)")
    return user or os.environ.get("USER", "root"), host


__all__ = [
    "Inventory",
    "InventoryError",
    "LocalRunner",
    "OsRelease",
    "Package",
    "SshRunner",
    "collect",
    "local_inventory",
    "parse_apk",
    "parse_dpkg",
    "parse_os_release",
    "parse_rpm",
    "parse_sshd_settings",
    "ssh_destination",
]
