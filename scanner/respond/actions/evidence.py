"""evidence.collect: what a responder needs before touching a host (processes, network
connections, logged-in users, chosen files, a short packet capture with scapy), saved under the
run's folder with a manifest of SHA-256 hashes: the chain of custody the audit log points to.

Read-only on the target. Files are fetched bounded in size (the manifest says when one was cut);
the capture runs scapy's sniffer on the target side for a local target (inside its network
namespace when it has one) and tcpdump for an ssh target, when the host has it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from scanner.respond.actions.interface import Action, Params, StepContext
from scanner.respond.connectors.interface import Connector
from scanner.respond.connectors.local import LocalConnector

MAX_FILE = 50 * 1024 * 1024
COMMANDS: dict[str, list[str]] = {
    "processes": ["ps", "-eo", "pid,ppid,user,lstart,args", "--no-headers"],
    "connections": ["ss", "-tunap"],
    "users": ["who", "-a"],
}
# scapy's sniffer, run where the packets are (the target's namespace), writing pcap to stdout.
CAPTURE = """
import sys, tempfile, os
from scapy.all import sniff, wrpcap
iface, seconds, count, bpf = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
packets = sniff(iface=iface or None, timeout=seconds, count=count, filter=bpf or None, store=True)
with tempfile.NamedTemporaryFile(suffix=".pcap", delete=False) as f:
    name = f.name
wrpcap(name, packets)
sys.stdout.buffer.write(open(name, "rb").read())
os.unlink(name)
"""


class CaptureParams(Params):
    interface: str = Field(default="", pattern=r"^[A-Za-z0-9_.:-]{0,32}$")
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


class CollectEvidence(Action):
    name = "evidence.collect"
    params = EvidenceParams
    summary = "collect processes, connections, users, files (SHA-256) and a packet capture"
    changes_state = False

    def describe(self, params: Params, connector: Connector) -> list[str]:
        p = _p(params)
        lines = [connector.describe(argv) for key, argv in COMMANDS.items() if getattr(p, key)]
        lines += [connector.describe(["head", "-c", str(p.max_file_bytes + 1), "--", f])
                  for f in p.files]  # fmt: skip
        if p.capture:
            lines.append(f"capture {p.capture.seconds:g}s on {p.capture.interface or 'all'} "
                         f"({p.capture.filter or 'all traffic'})")  # fmt: skip
        return lines

    def run(self, params: Params, ctx: StepContext) -> dict[str, Any]:
        p = _p(params)
        host = ctx.connector.host
        folder = ctx.workdir / "evidence" / ctx.step_id / _safe_name(host)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        artifacts: list[dict[str, Any]] = []
        skipped: list[dict[str, str]] = []

        def keep(name: str, data: bytes, command: str, **extra: Any) -> None:
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            artifacts.append({
                "name": name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                "command": command, "collected": datetime.now(UTC).isoformat(timespec="seconds"),
                **extra,
            })  # fmt: skip

        for key, argv in COMMANDS.items():
            if not getattr(p, key):
                continue
            result = ctx.connector.run(argv, timeout=ctx.timeout)
            command = ctx.connector.describe(argv)
            ctx.record("command", {"command": command, "returncode": result.returncode})
            if result.ok:
                keep(f"{key}.txt", result.stdout, command)
            else:
                skipped.append(
                    {"what": key, "why": result.stderr.decode("utf-8", "replace")[-200:]}
                )
        for path in p.files:
            argv = ["sh", "-c", 'stat -c "%s %a %U:%G %Y" -- "$1" && head -c "$2" -- "$1"', "sh",
                    path, str(p.max_file_bytes + 1)]  # fmt: skip
            result = ctx.connector.run(argv, timeout=ctx.timeout)
            command = ctx.connector.describe(["head", "-c", str(p.max_file_bytes + 1), "--", path])
            ctx.record("command", {"command": command, "returncode": result.returncode})
            if not result.ok:
                skipped.append(
                    {"what": path, "why": result.stderr.decode("utf-8", "replace")[-200:]}
                )
                continue
            head, _, data = result.stdout.partition(b"\n")
            size, mode, owner, mtime = head.decode().split(" ", 3)
            truncated = len(data) > p.max_file_bytes
            data = data[: p.max_file_bytes]
            keep(f"files/{_safe_name(path)}", data, command, source=path, size=int(size),
                 mode=mode, owner=owner, mtime=int(mtime), truncated=truncated)  # fmt: skip
        if p.capture is not None:
            self._capture(ctx, p.capture, keep, skipped)
        manifest = {
            "run_id": ctx.run_id, "step": ctx.step_id, "target": host,
            "connector": ctx.connector.kind, "collector": _collector(),
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "artifacts": artifacts, "skipped": skipped,
        }  # fmt: skip
        text = json.dumps(manifest, indent=2, sort_keys=True).encode()
        fd = os.open(folder / "manifest.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(text)
        digest = hashlib.sha256(text).hexdigest()
        ctx.record("evidence", {"manifest": str(folder / "manifest.json"), "sha256": digest,
                                "artifacts": len(artifacts)})  # fmt: skip
        return {
            "folder": str(folder),
            "manifest": str(folder / "manifest.json"),
            "manifest_sha256": digest,
            "artifacts": len(artifacts),
            "skipped": len(skipped),
        }

    def _capture(self, ctx: StepContext, c: CaptureParams, keep: Any, skipped: list[Any]) -> None:
        if isinstance(ctx.connector, LocalConnector):
            argv = [sys.executable, "-c", CAPTURE, c.interface, f"{c.seconds:g}",
                    str(c.max_packets), c.filter]  # fmt: skip
            command = ctx.connector.describe([sys.executable, "-c", "(scapy sniff)",
                                              c.interface, f"{c.seconds:g}"])  # fmt: skip
        else:
            argv = ["timeout", f"{c.seconds:g}", "tcpdump", "-U", "-w", "-", "-c",
                    str(c.max_packets), *(["-i", c.interface] if c.interface else []),
                    *(c.filter.split() if c.filter else [])]  # fmt: skip
            command = ctx.connector.describe(argv)
        result = ctx.connector.run(argv, timeout=c.seconds + 60)
        ctx.record("command", {"command": command, "returncode": result.returncode})
        # timeout(1) ends tcpdump with 124: the capture is what it wrote until then.
        if result.stdout.startswith((b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4")):
            keep("capture.pcap", result.stdout, command, seconds=c.seconds, filter=c.filter)
        else:
            why = result.stderr.decode("utf-8", "replace").strip()[-200:] or "no capture"
            skipped.append({"what": "capture", "why": why})


def _collector() -> str:
    from scanner.respond.journal import actor

    return actor()


def _p(params: Params) -> EvidenceParams:
    assert isinstance(params, EvidenceParams)
    return params
