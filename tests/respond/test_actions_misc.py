# ruff: noqa: E501 - inline scripts and long asserts kept whole
"""command, notify.webhook and evidence.collect on real things: argument lists that reach the
target literally, a local webhook receiver that fails then answers, and evidence gathered in a
network namespace of the test's own with a scapy capture of traffic sent inside it."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from scanner.respond.actions.command import Command
from scanner.respond.actions.evidence import CollectEvidence
from scanner.respond.actions.interface import SecretSink, StepContext
from scanner.respond.actions.notify import Webhook
from scanner.respond.connectors.local import LocalConnector
from scanner.respond.errors import ActionError, ConnectorError
from scanner.respond.secrets import Redactor, Secret

TOKEN = "tok-3f9a8c7e6d5b4a39-secret"


def _ctx(tmp_path: Path, connector: Any = None, records: list[Any] | None = None) -> StepContext:
    return StepContext(
        run_id="r-misc", step_id="step", connector=connector or LocalConnector(), timeout=20,
        redactor=Redactor(), secrets=SecretSink(lambda n, v: "keystore:x@1"), workdir=tmp_path,
        record=(lambda kind, data: records.append((kind, dict(data)))) if records is not None
        else (lambda kind, data: None),
    )  # fmt: skip


def test_command_arguments_arrive_literally(tmp_path: Path) -> None:
    act = Command()
    out = act.run(act.validate({"argv": ["printf", "%s|", "a b", "$(id)", ";rm -rf /", "`x`"]}),
                  _ctx(tmp_path))  # fmt: skip
    assert out["stdout"] == "a b|$(id)|;rm -rf /|`x`|"


def test_command_failure_timeout_and_undo(tmp_path: Path) -> None:
    act = Command()
    ctx = _ctx(tmp_path)
    ctx.redactor.add(TOKEN)
    with pytest.raises(ActionError, match=r"sh exited with 3: no \[redacted\] here") as info:
        act.run(act.validate({"argv": ["sh", "-c", f"echo no {TOKEN} here >&2; exit 3"]}), ctx)
    assert TOKEN not in str(info.value)
    with pytest.raises(ConnectorError, match=r"did not finish within 0\.5s"):
        act.run(act.validate({"argv": ["sleep", "5"]}), _ctx(tmp_path).__class__(
            **{**_ctx(tmp_path).__dict__, "timeout": 0.5}))  # fmt: skip
    marker = tmp_path / "marker"
    params = act.validate({"argv": ["touch", str(marker)], "check_argv": ["test", "-e", str(marker)],
                           "compensate_argv": ["rm", "-f", str(marker)]})  # fmt: skip
    assert act.probe(params, ctx) == {"already_done": False}
    act.run(params, ctx)
    assert marker.exists() and act.reconcile(params, ctx, {}) is not None
    act.compensate(params, ctx, {}, None)
    assert not marker.exists() and act.reconcile(params, ctx, {}) is None


class _Receiver(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[dict[str, str], Any]]] = []
    fail_first = 1

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append((dict(self.headers), body))
        status = 500 if len(type(self).seen) <= type(self).fail_first else 204
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    _Receiver.seen = []
    server = ThreadingHTTPServer(("127.0.104.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield f"http://127.0.104.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_webhook_retries_and_keeps_the_token_out_of_records(tmp_path: Path, receiver: str) -> None:
    records: list[Any] = []
    act = Webhook()
    params = act.validate({"url": receiver, "body": {"event": "isolated", "host": "10.0.0.5"},
                           "headers": {"Authorization": Secret("tok", f"Bearer {TOKEN}")},
                           "retries": 2, "backoff": 0.05})  # fmt: skip
    out = act.run(params, _ctx(tmp_path, records=records))
    assert out["status"] == 204
    assert len(_Receiver.seen) == 2  # one 500, then accepted
    headers, body = _Receiver.seen[-1]
    assert body == {"event": "isolated", "host": "10.0.0.5"}
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["Idempotency-Key"] == out["idempotency_key"]
    assert TOKEN not in json.dumps([out, records]) and TOKEN not in " ".join(
        act.describe(params, LocalConnector())
    )


def test_webhook_gives_up_and_refuses_other_schemes(tmp_path: Path, receiver: str) -> None:
    _Receiver.fail_first = 99
    try:
        act = Webhook()
        with pytest.raises(ActionError, match="HTTP 500"):
            act.run(act.validate({"url": receiver, "retries": 1, "backoff": 0.01}), _ctx(tmp_path))
        assert len(_Receiver.seen) == 2
    finally:
        _Receiver.fail_first = 1
    with pytest.raises(ValueError, match="not an http"):
        Webhook().validate({"url": "file:///etc/passwd"})


@pytest.fixture
def netns() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.skip("needs root (a network namespace)")
    name = f"pstf-{os.getpid()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def test_evidence_in_a_namespace_with_a_capture(tmp_path: Path, netns: str) -> None:
    small = tmp_path / "auth.log"
    small.write_text("Nov 24 sshd[1]: Accepted publickey for root\n")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(4096))
    # Traffic inside the namespace only, for the capture to see: UDP to its own loopback.
    sender = subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, "-c",
        "import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
        "for i in range(40):\n s.sendto(b'posture-evidence-%d' % i, ('127.0.0.1', 9)); time.sleep(0.1)"])  # fmt: skip
    try:
        records: list[Any] = []
        act = CollectEvidence()
        params = act.validate({"files": [str(small), str(big), "/nonexistent/x"],
                               "max_file_bytes": 1024,
                               "capture": {"interface": "lo", "seconds": 2, "filter": "udp port 9"}})  # fmt: skip
        out = act.run(params, _ctx(tmp_path / "run", LocalConnector("box", netns=netns), records))
    finally:
        sender.wait(timeout=30)
    folder = Path(out["folder"])
    manifest = json.loads((folder / "manifest.json").read_text())
    assert (
        hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest()
        == out["manifest_sha256"]
    )
    names = {a["name"]: a for a in manifest["artifacts"]}
    assert {"processes.txt", "connections.txt", "users.txt", "capture.pcap"} <= set(names)
    for artifact in manifest["artifacts"]:
        assert (
            hashlib.sha256((folder / artifact["name"]).read_bytes()).hexdigest()
            == artifact["sha256"]
        )
        assert oct((folder / artifact["name"]).stat().st_mode)[-3:] == "600"
    small_entry = names[f"files/{str(small).strip('/').replace('/', '_')}"]
    assert small_entry["truncated"] is False and small_entry["source"] == str(small)
    big_entry = names[f"files/{str(big).strip('/').replace('/', '_')}"]
    assert (
        big_entry["truncated"] is True and big_entry["bytes"] == 1024 and big_entry["size"] == 4096
    )
    assert [s["what"] for s in manifest["skipped"]] == ["/nonexistent/x"]
    from scapy.all import UDP, rdpcap

    packets = rdpcap(str(folder / "capture.pcap"))
    assert any(UDP in p and bytes(p[UDP].payload).startswith(b"posture-evidence-") for p in packets)
    assert manifest["target"] == "box" and manifest["run_id"] == "r-misc"
    assert any(kind == "evidence" for kind, _ in records)
