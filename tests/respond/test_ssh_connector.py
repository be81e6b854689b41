"""The ssh connector against a real sshd in a namespace host, reached from the management
namespace: every argument arrives as one literal argument, stdin and exit codes pass through,
ssh's own failures and timeouts are ConnectorErrors a responder can act on."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from scanner.respond.connectors.ssh import SshConnector
from scanner.respond.errors import ConnectorError
from tests.respond.netns import NetnsLab


def connector(lab: NetnsLab, **changes: object) -> SshConnector:
    return SshConnector(lab.addresses[0], **{**lab.connector_args(), **changes})  # type: ignore[arg-type]


def test_hostile_destinations_are_refused() -> None:
    for host in ("-oProxyCommand=touch /tmp/x", "root@10.0.0.5", "a b", "host;id", ""):
        with pytest.raises(ConnectorError, match="not a host name or address"):
            SshConnector(host)
    with pytest.raises(ConnectorError, match="not a user name"):
        SshConnector("10.0.0.5", user="-oProxyCommand=x")
    with pytest.raises(ConnectorError, match="not a network namespace"):
        SshConnector("10.0.0.5", netns="a b")
    with pytest.raises(ConnectorError, match="empty command"):
        SshConnector("10.0.0.5").run([])


def test_describe_shows_the_whole_command_with_the_key_label() -> None:
    c = SshConnector("2001:db8::5", port=2222, identity=Path("/tmp/.key-x"), netns="mgmt",
                     identity_label="<key ssh_key>")  # fmt: skip
    line = c.describe(["nft", "list", "table", "inet", "my table"])
    assert line.startswith("ip netns exec mgmt ssh -T -o BatchMode=yes")
    assert "-p 2222 -i '<key ssh_key>' -o IdentitiesOnly=yes" in line and "/tmp/.key-x" not in line
    assert line.endswith("-l root -- 2001:db8::5 'nft list table inet '\"'\"'my table'\"'\"''")


def test_each_argument_reaches_the_target_as_one_literal_argument(
    lab: NetnsLab, tmp_path: Path
) -> None:
    planted = tmp_path / "planted"
    words = [
        "two words",
        "semi;colon",
        f"$(touch {planted})",
        f"`touch {planted}`",
        "it's",
        '"double"',
        "*",
        "",
        "back\\slash",
        "line\nbreak",
        "--",
        "|&>",
    ]
    result = connector(lab).run(["printf", "%s\\0", *words])
    assert result.ok, result.stderr
    assert result.stdout.split(b"\0")[:-1] == [w.encode() for w in words]
    # The target's filesystem is this one (a namespace only has its own network): nothing ran.
    assert not planted.exists()


def test_stdin_and_exit_codes_pass_through(lab: NetnsLab) -> None:
    c = connector(lab)
    echoed = c.run(["cat"], input=b"\x00binary\xff and text\n")
    assert echoed.stdout == b"\x00binary\xff and text\n"
    failed = c.run(["sh", "-c", "echo oops >&2; exit 3"])
    assert (failed.returncode, failed.stderr, failed.ok) == (3, b"oops\n", False)
    address = c.run(["ip", "-o", "-4", "addr", "show", "dev", "eth0"]).stdout.decode()
    assert f"inet {lab.addresses[0]}/" in address  # it really ran on the namespace host


def test_ssh_failures_name_the_reason(lab: NetnsLab, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True, timeout=30
    )
    with pytest.raises(ConnectorError, match=r"ssh failed: .*Permission denied"):
        connector(lab, identity=stranger).run(["true"])
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(ConnectorError, match=r"ssh failed: Host key verification failed"):
        connector(lab, known_hosts=empty).run(["true"])
    assert empty.read_text() == ""  # strict: an unknown key is neither trusted nor remembered
    # Nothing listens on port 23 of the host: refused, and the message says where.
    with pytest.raises(ConnectorError, match=rf"root@{lab.addresses[0]}:23: .*refused"):
        connector(lab, port=23).run(["true"])


def test_a_command_that_outlasts_its_timeout_is_killed(lab: NetnsLab) -> None:
    marker = "posture-timeout-marker"
    with pytest.raises(ConnectorError, match="sh over ssh did not finish within 1s and was killed"):
        connector(lab).run(["sh", "-c", "sleep 20", marker], timeout=1)
    # The local ssh client (its whole process group) is gone once run() returns.
    left = subprocess.run(["ps", "-eo", "args="], capture_output=True, text=True).stdout
    assert not [line for line in left.splitlines() if line.startswith("ssh ") and marker in line]
