"""The compromised-host playbook end to end on a namespace host: evidence, approval, isolation
verified from the namespaces, key rotation, and the team told through a webhook receiver in the
management namespace; the audit chain verifies and holds no secret."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from scanner.respond.keystore import Keystore
from tests.respond.netns import MGMT_ADDRESS, NetnsLab

ROOT = Path(__file__).resolve().parents[2]
RECEIVER = """
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
out = sys.argv[1]
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with open(out, "ab") as f:
            f.write(body + b"\\n")
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass
server = HTTPServer(("127.0.0.1", 8099), H)
server.timeout = 0.5
import time
end = time.monotonic() + 240
while time.monotonic() < end:
    server.handle_request()
"""


def test_contain_a_compromised_host(lab: NetnsLab, tmp_path: Path) -> None:
    key = tmp_path / "root-key"
    key.write_bytes(lab.key.read_bytes())
    key.chmod(0o600)
    keys_file = lab.folder / "h0" / "authorized_keys"
    original = keys_file.read_text()
    evidence_file = tmp_path / "auth.log"
    evidence_file.write_text("Nov 24 sshd[7]: Accepted password for mallory from 203.0.113.9\n")
    store_key = bytes(range(32))
    env = {
        "POSTURE_JOURNAL": str(tmp_path / "journal" / "respond.sqlite"),
        "POSTURE_KEYSTORE": str(tmp_path / "keystore.sqlite"),
        "POSTURE_KEYSTORE_KEY": store_key.hex(),
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(ROOT),
    }  # fmt: skip
    messages = tmp_path / "messages.jsonl"
    receiver = subprocess.Popen(["ip", "netns", "exec", lab.mgmt, sys.executable, "-c", RECEIVER,
                                 str(messages)])  # fmt: skip
    inputs = [
        "-i", f"host={lab.addresses[0]}", "-i", f"management={MGMT_ADDRESS}",
        "-i", f"ssh_key=file:{key}", "-i", f"known_hosts={lab.known_hosts}",
        "-i", f"authorized_keys={keys_file}", "-i", f"evidence_files={evidence_file}",
        "-i", "capture_seconds=1", "-i", "webhook=http://127.0.0.1:8099/hook",
        "-i", "ticket=INC-4711", "-i", f"outside_netns={lab.other}",
    ]  # fmt: skip

    def posture(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", lab.mgmt, sys.executable, "-m", "scanner", *args],
            capture_output=True, text=True, timeout=300, env=env, cwd=ROOT,
        )  # fmt: skip

    try:
        time.sleep(0.5)  # the receiver binds
        first = posture("playbook", "run", "compromised-host", *inputs, "--json")
        assert first.returncode == 4, first.stderr  # evidence taken, stopped before isolating
        run_id = first.stderr.split("resume ")[1].split()[0]
        plan_hash = first.stderr.split("--plan-hash ")[1].split()[0]
        assert lab.connects(lab.other, lab.addresses[0])
        done = posture("playbook", "resume", run_id, "--approve", "isolate", "--plan-hash",
                       plan_hash, "--json")  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert lab.connects(lab.mgmt, lab.addresses[0])
        assert not lab.connects(lab.other, lab.addresses[0])
        assert not lab.host_reaches_other(0)
        with Keystore(tmp_path / "keystore.sqlite", store_key) as store:
            new_key = store.get(f"ssh-root-{lab.addresses[0]}").reveal()
        assert lab.key.read_text().splitlines()[1] not in keys_file.read_text()
        status = json.loads(posture("playbook", "status", run_id, "--json").stdout)
        assert [(s["step"], s["status"]) for s in status["steps"]] == [
            ("evidence", "succeeded"), ("isolate", "succeeded"), ("verify", "succeeded"),
            ("rotate", "succeeded"), ("notify", "succeeded"),
        ]  # fmt: skip
        evidence = status["steps"][0]["outputs"]
        manifest = json.loads(Path(evidence["manifest"]).read_text())
        assert any(a.get("source") == str(evidence_file) for a in manifest["artifacts"])
        sent = [json.loads(line) for line in messages.read_text().splitlines()]
        assert sent[-1]["isolated"] == "succeeded" and sent[-1]["key_rotated"] == "succeeded"
        assert sent[-1]["evidence_manifest_sha256"] == evidence["manifest_sha256"]
        assert sent[-1]["ticket"] == "INC-4711"
        audit = posture("playbook", "audit", run_id, "--verify", "--json")
        assert json.loads(audit.stdout)["verified"] is True
        assert evidence["manifest_sha256"] in audit.stdout  # the chain of custody is audited
        for secret_line in new_key.splitlines()[1:-1] + lab.key.read_text().splitlines()[1:-1]:
            assert secret_line not in audit.stdout
    finally:
        receiver.kill()
        receiver.wait(timeout=10)
        keys_file.write_text(original)
        subprocess.run(["ip", "netns", "exec", lab.host_ns(0), "nft", "delete", "table", "inet",
                        "posture_isolation"], capture_output=True)  # fmt: skip
