"""evidence.collect: what a responder needs before touching a host (processes, network
connections, logged-in users, chosen files, a short packet capture), saved under the run's folder
with a manifest of SHA-256 hashes: the chain of custody the audit log points to.

Read-only on the target: nothing is written there. Files are fetched in chunks up to a bound
(the manifest says when one was cut, or changed while it was read). The capture runs scapy's
sniffer for a local target (inside its network namespace when it has one) and tcpdump, streamed
back over the session and blind to that session's own packets, for an ssh target that has it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import Field

from scanner.respond.actions.interface import Action, Params, StepContext
from scanner.respond.connectors.interface import OUTPUT_LIMIT, Connector
from scanner.respond.connectors.local import LocalConnector

MANIFEST_VERSION = 1
MAX_FILE = 50 * 1024 * 1024
CHUNK = OUTPUT_LIMIT // 2  # one command's output stays well under what a connector keeps
COMMANDS: dict[str, list[str]] = {
    "processes": ["ps", "-eo", "pid,ppid,user,lstart,args", "--no-headers"],
    "connections": ["ss", "-tunap"],
    "users": ["who", "-a"],
}
# Only regular files: a FIFO would block and a device never ends. /proc files are regular.
_STAT = (
    '[ -e "$1" ] || { echo "no such file" >&2; exit 2; }; '
    '[ -f "$1" ] || { echo "not a regular file (a FIFO, device, socket or folder)" >&2; exit 3; }; '
    'stat -L -c "%s %a %U:%G %Y %i" -- "$1"'
)
_READ = 'tail -c "+$2" -- "$1" | head -c "$3"'
# scapy's sniffer, run where the packets are (the target's namespace), writing the pcap file
# itself (0600) and printing how many packets it holds.
_SCAPY = """
import os, sys
from scapy.all import sniff
from scapy.utils import PcapWriter
iface, seconds, count, bpf, out = sys.argv[1:6]
packets = sniff(iface=iface or None, timeout=float(seconds), count=int(count), filter=bpf or None)
with os.fdopen(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
    writer = PcapWriter(handle, linktype=None if packets else 1, sync=True)
    if packets:
        writer.write(packets)
    else:
        writer.write_header(None)
    writer.flush()
print(len(packets))
"""
# tcpdump on an ssh target, to stdout: the filter leaves out this ssh session's own packets,
# which would otherwise feed the capture with itself.
_TCPDUMP = """s=$1 c=$2 i=$3 f=$4
if [ -n "${SSH_CONNECTION:-}" ]; then
  set -f; set -- $SSH_CONNECTION; set +f
  own="not (tcp and host $1 and port $2 and host $3 and port $4)"
  if [ -n "$f" ]; then f="($f) and $own"; else f=$own; fi
fi
if [ -n "$i" ]; then set -- -i "$i"; else set --; fi
if [ -n "$f" ]; then set -- "$@" -- "$f"; fi
exec timeout "$s" tcpdump -n -U -w - -c "$c" "$@"
"""
_PCAP_MAGIC = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")


class CaptureParams(Params):
    interface: str = Field(default="", pattern=r"^[A-Za-z0-9_.:-]{0,32}$")  # "": all
    seconds: float = Field(default=5, gt=0, le=300)
    max_packets: int = Field(default=1000, ge=1, le=100_000)
    filter: str = Field(default="", max_length=500, pattern=r"^[A-Za-z0-9 ._:/()\[\]!&|<>=-]*$")


class EvidenceParams(Params):
    processes: bool = True
    connections: bool = True
    users: bool = True
    files: list[str] = Field(default_factory=list, max_length=200)
    max_file_bytes: int = Field(default=MAX_FILE, ge=1, le=1024 * 1024 * 1024)
    capture: CaptureParams | None = None


def _safe_name(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", path.strip("/"))[:150] or "root"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _text(data: bytes, limit: int = 200) -> str:
    return data.decode("utf-8", "replace").strip()[-limit:]


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)  # mkdir's mode is cut by the umask and ignored for an existing folder


class _Folder:
    """The evidence folder of one step on one target: every artifact is written 0600 and
    listed with its hash, size, the command that produced it and when."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.artifacts: list[dict[str, Any]] = []
        self.skipped: list[dict[str, str]] = []

    def open(self, name: str) -> BinaryIO:
        target = self.path / name
        _private_dir(target.parent)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        return os.fdopen(fd, "wb")

    def unique(self, name: str) -> str:
        """`name`, or `name-2`, `name-3`...: two paths may map to one file name (`/a/b`, `/a_b`)."""
        taken = {a["name"] for a in self.artifacts}
        candidates = (name if n == 1 else f"{name}-{n}" for n in range(1, len(taken) + 2))
        return next(c for c in candidates if c not in taken)

    def add(self, name: str, data: bytes, command: str, *, started: str, **extra: Any) -> None:
        with self.open(name) as handle:
            handle.write(data)
        self.listed(name, command, started=started, **extra)

    def listed(self, name: str, command: str, *, started: str, **extra: Any) -> None:
        """Lists an artifact already written; its hash and size are read back from disk."""
        digest, size = hashlib.sha256(), 0
        with open(self.path / name, "rb") as handle:
            for block in iter(lambda: handle.read(1024 * 1024), b""):
                digest.update(block)
                size += len(block)
        self.artifacts.append({"name": name, "sha256": digest.hexdigest(), "bytes": size,
                               "command": command, "started": started, "collected": _now(),
                               **extra})  # fmt: skip

    def skip(self, what: str, why: str) -> None:
        self.skipped.append({"what": what, "why": why or "no reason given"})


class CollectEvidence(Action):
    name = "evidence.collect"
    params = EvidenceParams
    summary = "collect processes, connections, users, files (SHA-256) and a packet capture"
    changes_state = False

    def describe(self, params: Params, connector: Connector) -> list[str]:
        p = _p(params)
        lines = [connector.describe(argv) for key, argv in COMMANDS.items() if getattr(p, key)]
        lines += [connector.describe(["sh", "-c", _READ, "sh", f, "1", str(p.max_file_bytes)])
                  + f"  # in chunks of {CHUNK} bytes, at most {p.max_file_bytes}"
                  for f in p.files]  # fmt: skip
        if p.capture:
            lines.append(self._capture_command(p.capture, connector, "CAPTURE.pcap")[1])
        return lines

    def run(self, params: Params, ctx: StepContext) -> dict[str, Any]:
        p = _p(params)
        host = ctx.connector.host
        for folder_path in (ctx.workdir / "evidence", ctx.workdir / "evidence" / ctx.step_id):
            _private_dir(folder_path)
        folder = _Folder(ctx.workdir / "evidence" / ctx.step_id / _safe_name(host))
        _private_dir(folder.path)
        started = _now()
        for key, argv in COMMANDS.items():
            if getattr(p, key):
                self._command(ctx, folder, key, argv)
        for path in p.files:
            self._file(ctx, folder, path, p.max_file_bytes)
        if p.capture is not None:
            self._capture(ctx, p.capture, folder)
        manifest = {
            "manifest_version": MANIFEST_VERSION, "hash": "sha256",
            "run_id": ctx.run_id, "step": ctx.step_id, "target": host,
            "connector": ctx.connector.kind, "collector": _collector(),
            "started": started, "finished": _now(),
            "artifacts": folder.artifacts, "skipped": folder.skipped,
        }  # fmt: skip
        text = json.dumps(manifest, indent=2, sort_keys=True).encode()
        with folder.open("manifest.json") as handle:
            handle.write(text)
        digest = hashlib.sha256(text).hexdigest()
        where = str(folder.path / "manifest.json")
        ctx.record("evidence", {"manifest": where, "sha256": digest,
                                "artifacts": len(folder.artifacts),
                                "skipped": len(folder.skipped)})  # fmt: skip
        return {
            "folder": str(folder.path),
            "manifest": where,
            "manifest_sha256": digest,
            "artifacts": len(folder.artifacts),
            "skipped": len(folder.skipped),
        }

    def _command(self, ctx: StepContext, folder: _Folder, key: str, argv: list[str]) -> None:
        started = _now()
        result = ctx.connector.run(argv, timeout=ctx.timeout)
        command = ctx.connector.describe(argv)
        _record(ctx, command, result.returncode, result.stderr)
        if not result.ok:
            folder.skip(key, f"exit {result.returncode}: {_text(result.stderr)}")
            return
        # A connector keeps OUTPUT_LIMIT bytes of a command's output: say when it was reached.
        folder.add(f"{key}.txt", result.stdout, command, started=started,
                   truncated=len(result.stdout) >= OUTPUT_LIMIT)  # fmt: skip

    def _file(self, ctx: StepContext, folder: _Folder, path: str, limit: int) -> None:
        """Fetches `path` in chunks (never more than `limit` bytes), hashing as it goes; stats
        it before and after, so a file that changed while it was read is marked."""
        started = _now()
        before = self._stat(ctx, path)
        if isinstance(before, str):
            folder.skip(path, before)
            return
        name = folder.unique(f"files/{_safe_name(path)}")
        got, truncated, failed = 0, False, False
        with folder.open(name) as handle:
            while True:
                # One byte past the bound tells whether the file goes on.
                want = min(CHUNK, limit + 1 - got)
                argv = ["sh", "-c", _READ, "sh", path, str(got + 1), str(want)]
                result = ctx.connector.run(argv, timeout=ctx.timeout)
                _record(ctx, ctx.connector.describe(argv), result.returncode, result.stderr)
                if not result.ok:
                    folder.skip(path, f"read failed at byte {got}: {_text(result.stderr)}")
                    failed = True
                    break
                data = result.stdout
                if got + len(data) > limit:
                    data, truncated = data[: limit - got], True
                handle.write(data)
                got += len(data)
                if truncated or len(result.stdout) < want:
                    break
        if failed:
            (folder.path / name).unlink()
            return
        after = self._stat(ctx, path)
        size, mode, owner, mtime, _ = before
        command = ctx.connector.describe(["sh", "-c", _READ, "sh", path, "1", str(limit)])
        folder.listed(
            name, command, started=started, source=path, size=size, mode=mode, owner=owner,
            mtime=datetime.fromtimestamp(mtime, UTC).isoformat(timespec="seconds"),
            truncated=truncated, truncated_note=(
                f"only the first {limit} of {size} bytes were kept (max_file_bytes)"
                if truncated else None
            ),
            changed_during_collection=after != before,
        )  # fmt: skip

    def _stat(self, ctx: StepContext, path: str) -> tuple[int, str, str, int, int] | str:
        """(size, mode, owner, mtime, inode), or why the file cannot be collected."""
        argv = ["sh", "-c", _STAT, "sh", path]
        result = ctx.connector.run(argv, timeout=ctx.timeout)
        _record(ctx, ctx.connector.describe(argv), result.returncode, result.stderr)
        fields = result.stdout.decode("utf-8", "replace").split()
        if not result.ok or len(fields) != 5 or not all(fields[i].isdigit() for i in (0, 3, 4)):
            return _text(result.stderr) or f"stat gave {_text(result.stdout, 80)!r}"
        return int(fields[0]), fields[1], fields[2], int(fields[3]), int(fields[4])

    def _capture_command(
        self, c: CaptureParams, connector: Connector, out: str
    ) -> tuple[list[str], str]:
        """The capture's argv and how plans and the manifest show it."""
        if isinstance(connector, LocalConnector):
            argv = [sys.executable, "-c", _SCAPY, c.interface, f"{c.seconds:g}",
                    str(c.max_packets), c.filter, out]  # fmt: skip
            shown = connector.describe([sys.executable, "-c", "<scapy sniff>", *argv[3:-1]])
            return argv, f"{shown}  # to {Path(out).name}"
        argv = ["sh", "-c", _TCPDUMP, "sh", f"{c.seconds:g}", str(c.max_packets), c.interface,
                c.filter]  # fmt: skip
        return argv, connector.describe(argv)

    def _capture(self, ctx: StepContext, c: CaptureParams, folder: _Folder) -> None:
        local = isinstance(ctx.connector, LocalConnector)
        out = folder.path / "capture.pcap"
        argv, command = self._capture_command(c, ctx.connector, str(out))
        started = _now()
        result = ctx.connector.run(argv, timeout=c.seconds + 60)
        _record(ctx, command, result.returncode, result.stderr)
        extra: dict[str, Any] = {"seconds": c.seconds, "filter": c.filter,
                                 "interface": c.interface or "all"}  # fmt: skip
        if local:
            if not (result.ok and out.exists()):
                out.unlink(missing_ok=True)
                folder.skip("capture", f"scapy exit {result.returncode}: {_text(result.stderr)}")
                return
            packets = result.stdout.decode().strip()
            extra["packets"] = int(packets) if packets.isdigit() else None
            folder.listed("capture.pcap", command, started=started, **extra)
            return
        # timeout(1) ends tcpdump with 124: the capture is what it wrote until then.
        if not result.stdout.startswith(_PCAP_MAGIC):
            why = _text(result.stderr) or f"exit {result.returncode}, no capture"
            if result.returncode == 127:
                why = f"tcpdump is not installed on the target ({why})"
            folder.skip("capture", why)
            return
        counted = re.search(rb"(\d+) packets? captured", result.stderr)
        extra["packets"] = int(counted.group(1)) if counted else None
        extra["truncated"] = len(result.stdout) >= OUTPUT_LIMIT
        if extra["truncated"]:
            extra["truncated_note"] = (
                f"the capture reached {OUTPUT_LIMIT} bytes, what one command may return: "
                "lower max_packets or seconds, or narrow the filter"
            )
        folder.add("capture.pcap", result.stdout, command, started=started, **extra)


def _record(ctx: StepContext, command: str, returncode: int, stderr: bytes) -> None:
    ctx.record("command", {"command": ctx.redactor(command), "returncode": returncode,
                           "stderr": ctx.redactor(_text(stderr))})  # fmt: skip


def _collector() -> str:
    from scanner.respond.journal import actor

    return actor()


def _p(params: Params) -> EvidenceParams:
    assert isinstance(params, EvidenceParams)
    return params
