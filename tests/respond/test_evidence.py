"""evidence.collect on real things: this machine, a network namespace of the test's own
(`pstf-<pid>`) with a scapy capture of traffic sent inside it, and an ssh target (a real sshd on
127.0.104.2) captured with tcpdump. Every manifest hash is checked against its file."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from scanner.respond.actions.evidence import CHUNK, CollectEvidence
from scanner.respond.connectors.interface import CommandResult
from scanner.respond.connectors.local import LocalConnector
from scanner.respond.connectors.ssh import SshConnector
from tests.respond.step_context import step_context

SSH_ADDRESS, SSH_PORT = "127.0.104.2", 2202
UDP_TARGET = "127.0.104.3"  # nothing listens: the packets are there to be captured
# Sends until the test stops it (at most argv[2] seconds): the capture starts only after the
# other evidence is in, however long that takes on a busy machine.
SENDER = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.monotonic() + float(sys.argv[2])
i = 0
while time.monotonic() < end:
    s.sendto(b"posture-evidence-%d" % i, (sys.argv[1], 9))
    i += 1
    time.sleep(0.1)
"""


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=30)


def _manifest(out: dict[str, Any]) -> dict[str, Any]:
    """The manifest, after checking its own hash and every artifact's hash, size and mode."""
    folder, manifest_file = Path(out["folder"]), Path(out["manifest"])
    assert hashlib.sha256(manifest_file.read_bytes()).hexdigest() == out["manifest_sha256"]
    manifest: dict[str, Any] = json.loads(manifest_file.read_text())
    for artifact in manifest["artifacts"]:
        data = (folder / artifact["name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == artifact["sha256"], artifact["name"]
        assert len(data) == artifact["bytes"]
        assert (folder / artifact["name"]).stat().st_mode & 0o777 == 0o600
    assert manifest_file.stat().st_mode & 0o777 == 0o600
    return manifest


def _entry(manifest: dict[str, Any], source: str) -> dict[str, Any]:
    [entry] = [a for a in manifest["artifacts"] if a.get("source") == source]
    return entry


def test_on_this_machine_files_are_fetched_in_chunks_and_bounded(tmp_path: Path) -> None:
    sources = tmp_path / "sources"
    sources.mkdir()
    log = sources / "auth.log"
    log.write_text("Nov 24 sshd[1]: Accepted publickey for root from 10.9.9.9\n")
    log.chmod(0o640)
    # Over what one command may return: only a file fetched in chunks arrives whole.
    large = sources / "large.bin"
    large.write_bytes(os.urandom(2 * CHUNK + 12345))
    cut = sources / "cut.bin"
    cut.write_bytes(os.urandom(CHUNK + 100))
    fifo = sources / "fifo"
    os.mkfifo(fifo)  # would block a reader forever: refused, not read
    workdir = tmp_path / "run"
    (workdir / "evidence").mkdir(parents=True, mode=0o755)  # left open by someone: tightened
    act = CollectEvidence()
    params = act.validate({
        "files": [str(log), str(large), str(cut), str(fifo), str(sources / "missing")],
        "max_file_bytes": 2 * CHUNK + 20000,
    })  # fmt: skip
    ctx, seen = step_context(workdir)
    out = act.run(params, ctx)
    manifest = _manifest(out)
    folder = Path(out["folder"])
    assert folder == workdir / "evidence" / "step" / "localhost"
    for path in (workdir / "evidence", folder.parent, folder, folder / "files"):
        assert path.stat().st_mode & 0o777 == 0o700, path
    names = {a["name"] for a in manifest["artifacts"]}
    assert {"processes.txt", "connections.txt", "users.txt"} <= names
    assert str(os.getpid()).encode() in (folder / "processes.txt").read_bytes()
    entry = _entry(manifest, str(log))
    assert (folder / entry["name"]).read_bytes() == log.read_bytes()
    assert (entry["mode"], entry["size"], entry["truncated"]) == ("640", log.stat().st_size, False)
    assert entry["owner"] == "root:root" and entry["changed_during_collection"] is False
    assert entry["mtime"].endswith("+00:00") and entry["command"].startswith("sh -c ")
    entry = _entry(manifest, str(large))
    assert entry["sha256"] == hashlib.sha256(large.read_bytes()).hexdigest()
    assert entry["truncated"] is False and entry["truncated_note"] is None
    # Bounded: the first max_file_bytes bytes, and the manifest says so.
    small = act.validate({"files": [str(cut)], "max_file_bytes": CHUNK, "processes": False,
                          "connections": False, "users": False})  # fmt: skip
    cut_out = act.run(small, step_context(tmp_path / "run2")[0])
    entry = _entry(_manifest(cut_out), str(cut))
    assert entry["truncated"] is True and entry["bytes"] == CHUNK and entry["size"] == CHUNK + 100
    assert f"only the first {CHUNK} of {CHUNK + 100} bytes" in entry["truncated_note"]
    assert entry["sha256"] == hashlib.sha256(cut.read_bytes()[:CHUNK]).hexdigest()
    skipped = {s["what"]: s["why"] for s in manifest["skipped"]}
    assert "not a regular file" in skipped[str(fifo)]
    assert "no such file" in skipped[str(sources / "missing")]
    assert set(skipped) == {str(fifo), str(sources / "missing")}
    # Chain of custody: who, for which run and step, on which target, and the audit entry.
    assert manifest["run_id"] == "r-1" and manifest["step"] == "step"
    assert manifest["target"] == "localhost" and manifest["connector"] == "local"
    assert "@" in manifest["collector"]
    [evidence] = seen.kinds("evidence")
    assert evidence["sha256"] == out["manifest_sha256"] and evidence["manifest"] == out["manifest"]
    assert len(seen.kinds("command")) >= 3 + 2 * 5


def test_two_paths_with_one_file_name_are_both_kept(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    nested, flat = tmp_path / "a" / "b", tmp_path / "a_b"
    nested.write_text("nested\n")
    flat.write_text("flat\n")
    act = CollectEvidence()
    params = act.validate({"files": [str(nested), str(flat)], "processes": False,
                           "connections": False, "users": False})  # fmt: skip
    manifest = _manifest(act.run(params, step_context(tmp_path / "run")[0]))
    first, second = _entry(manifest, str(nested)), _entry(manifest, str(flat))
    assert second["name"] == first["name"] + "-2"
    assert second["sha256"] == hashlib.sha256(b"flat\n").hexdigest()


class _Appending(LocalConnector):
    """This machine, with a writer that appends to a file while it is being read: what a live
    log does during a collection."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def run(
        self, argv: Sequence[str], *, input: bytes | None = None, timeout: float = 30.0
    ) -> CommandResult:
        if argv[:1] == ["sh"] and "tail" in argv[2]:
            with self.path.open("ab") as handle:
                handle.write(b"appended during collection\n")
        return super().run(argv, input=input, timeout=timeout)


def test_a_file_that_changes_while_it_is_read_is_marked(tmp_path: Path) -> None:
    live = tmp_path / "live.log"
    live.write_text("first line\n")
    act = CollectEvidence()
    params = act.validate({"files": [str(live)], "processes": False, "connections": False,
                           "users": False})  # fmt: skip
    out = act.run(params, step_context(tmp_path / "run", _Appending(live))[0])
    assert _entry(_manifest(out), str(live))["changed_during_collection"] is True


@pytest.fixture
def netns() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.skip("needs root (a network namespace)")
    name = f"pstf-{os.getpid()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True, timeout=30)
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"],
                       check=True, timeout=30)  # fmt: skip
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)


def test_in_a_namespace_with_a_scapy_capture(tmp_path: Path, netns: str) -> None:
    evidence_file = tmp_path / "auth.log"
    evidence_file.write_text("Nov 24 sshd[1]: Accepted publickey for root\n")
    # Traffic inside the namespace only, for the capture to see: UDP to its own loopback.
    sender = subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, "-c", SENDER, "127.0.0.1", "120"]
    )
    try:
        act = CollectEvidence()
        capture = {"interface": "lo", "seconds": 2, "filter": "udp port 9"}
        params = act.validate({"files": [str(evidence_file)], "capture": capture})
        ctx, _ = step_context(tmp_path / "run", LocalConnector("box", netns=netns))
        out = act.run(params, ctx)
    finally:
        _stop(sender)
    manifest = _manifest(out)
    capture = next(a for a in manifest["artifacts"] if a["name"] == "capture.pcap")
    assert capture["interface"] == "lo" and capture["filter"] == "udp port 9"
    assert f"ip netns exec {netns}" in capture["command"]
    from scapy.all import UDP, rdpcap

    packets = rdpcap(str(Path(out["folder"]) / "capture.pcap"))
    assert len(packets) == capture["packets"] > 0
    assert all(UDP in p and p[UDP].dport == 9 for p in packets)
    assert any(bytes(p[UDP].payload).startswith(b"posture-evidence-") for p in packets)
    # The namespace's own connections, not this machine's: none of ours are listed.
    assert "127.0.104" not in (Path(out["folder"]) / "connections.txt").read_text()
    assert manifest["target"] == "box" and manifest["skipped"] == []


def test_an_empty_capture_is_kept_as_evidence_of_silence(tmp_path: Path, netns: str) -> None:
    act = CollectEvidence()
    params = act.validate({"processes": False, "connections": False, "users": False,
                           "capture": {"interface": "lo", "seconds": 0.5}})  # fmt: skip
    out = act.run(params, step_context(tmp_path, LocalConnector("box", netns=netns))[0])
    capture = _manifest(out)["artifacts"][0]
    assert capture["name"] == "capture.pcap" and capture["packets"] == 0
    from scapy.all import rdpcap

    assert len(rdpcap(str(Path(out["folder"]) / "capture.pcap"))) == 0


@pytest.fixture
def ssh_target(
    private_sshd: Callable[[str, int], tuple[Path, Path]],
) -> SshConnector:
    key, _ = private_sshd(SSH_ADDRESS, SSH_PORT)
    return SshConnector(SSH_ADDRESS, port=SSH_PORT, identity=key, strict=False)


def test_over_ssh_with_tcpdump_blind_to_its_own_session(
    tmp_path: Path, ssh_target: SshConnector
) -> None:
    if shutil.which("tcpdump") is None:
        pytest.skip("needs tcpdump on the target: apt-get install -y tcpdump")
    evidence_file = tmp_path / "auth.log"
    evidence_file.write_bytes(b"line\n" * 1000)
    sender = subprocess.Popen([sys.executable, "-c", SENDER, UDP_TARGET, "120"])
    try:
        act = CollectEvidence()
        # The filter takes in the ssh server's address too: without leaving the session out,
        # the capture would hold (and feed on) its own packets.
        params = act.validate({
            "files": [str(evidence_file)],
            "capture": {"interface": "lo", "seconds": 2,
                        "filter": f"host {SSH_ADDRESS} or host {UDP_TARGET}"},
        })  # fmt: skip
        ctx, seen = step_context(tmp_path / "run", ssh_target)
        out = act.run(params, ctx)
    finally:
        _stop(sender)
    manifest = _manifest(out)
    assert manifest["connector"] == "ssh" and manifest["target"] == SSH_ADDRESS
    entry = _entry(manifest, str(evidence_file))
    assert entry["sha256"] == hashlib.sha256(evidence_file.read_bytes()).hexdigest()
    assert entry["command"].startswith("ssh ")
    capture = next(a for a in manifest["artifacts"] if a["name"] == "capture.pcap")
    assert capture["truncated"] is False and capture["command"].startswith("ssh ")
    from scapy.all import TCP, UDP, rdpcap

    packets = rdpcap(str(Path(out["folder"]) / "capture.pcap"))
    assert capture["packets"] == len(packets) > 0
    assert any(UDP in p and bytes(p[UDP].payload).startswith(b"posture-evidence-") for p in packets)
    assert not [p for p in packets if TCP in p and SSH_PORT in (p[TCP].sport, p[TCP].dport)]
    assert all(r["command"].startswith("ssh ") for r in seen.kinds("command"))


def test_over_ssh_without_tcpdump_the_capture_is_skipped_with_the_reason(
    tmp_path: Path, ssh_target: SshConnector
) -> None:
    empty_path = tmp_path / "bin"
    empty_path.mkdir()
    for tool in ("sh", "timeout"):  # the shell and timeout(1), but no tcpdump on this PATH
        found = shutil.which(tool)
        assert found is not None
        (empty_path / tool).symlink_to(found)

    class NoTcpdump(SshConnector):
        def run(
            self, argv: Sequence[str], *, input: bytes | None = None, timeout: float = 30.0
        ) -> CommandResult:
            return super().run(["env", f"PATH={empty_path}", *argv], input=input, timeout=timeout)

    target = NoTcpdump(SSH_ADDRESS, port=SSH_PORT, identity=ssh_target.identity, strict=False)
    act = CollectEvidence()
    params = act.validate({"processes": False, "connections": False, "users": False,
                           "capture": {"seconds": 1}})  # fmt: skip
    out = act.run(params, step_context(tmp_path, target)[0])
    manifest = _manifest(out)
    assert manifest["artifacts"] == []
    [skipped] = manifest["skipped"]
    assert skipped["what"] == "capture" and "tcpdump is not installed" in skipped["why"]


def test_the_plan_shows_every_command(tmp_path: Path) -> None:
    act = CollectEvidence()
    params = act.validate({"files": ["/etc/hostname"], "capture": {"seconds": 3, "filter": "tcp"}})
    local = act.describe(params, LocalConnector())
    assert local[:3] == ["ps -eo pid,ppid,user,lstart,args --no-headers", "ss -tunap", "who -a"]
    assert "/etc/hostname" in local[3] and "scapy" in local[4]
    remote = act.describe(params, SshConnector(SSH_ADDRESS, port=SSH_PORT, strict=False))
    assert all(line.startswith("ssh ") for line in remote) and "tcpdump" in remote[4]
