"""Isolation of real hosts: network namespaces each running sshd, reached over ssh from a
management namespace; checked from the namespaces themselves (management connects, the other
namespace does not, the host cannot reach out), released, undone exactly, and rolled back by
the dead-man timer when the management path is lost."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from scanner.respond.actions.host import TABLE, Isolate, Release, VerifyIsolated, ruleset
from scanner.respond.actions.interface import SecretSink, StepContext
from scanner.respond.connectors.ssh import SshConnector
from scanner.respond.errors import ActionError, VerifyError
from scanner.respond.secrets import Redactor
from tests.respond.netns import MGMT_ADDRESS, OTHER_ADDRESS, NetnsLab

ROOT = Path(__file__).resolve().parents[2]


def ctx(lab: NetnsLab, i: int, tmp_path: Path, records: list[Any] | None = None) -> StepContext:
    connector = SshConnector(lab.addresses[i], **lab.connector_args())  # type: ignore[arg-type]
    return StepContext(
        run_id="r-test", step_id="isolate", connector=connector, timeout=30,
        redactor=Redactor(), secrets=SecretSink(lambda n, v: "keystore:x"), workdir=tmp_path,
        record=(lambda kind, data: records.append((kind, dict(data)))) if records is not None
        else (lambda kind, data: None),
    )  # fmt: skip


def test_ruleset_keeps_management_v4_and_v6() -> None:
    text = ruleset(["10.0.0.1/32", "2001:db8::/64"], ["192.0.2.0/24"], "r1", 'say "hi"')
    assert "ip saddr { 10.0.0.1/32, 192.0.2.0/24 } accept" in text
    assert "ip6 daddr { 2001:db8::/64 } accept" in text
    assert (
        text.count("policy drop") == 3
        and 'comment "posture isolation, run r1: say \\"hi\\""' in text
    )
    only_v6 = ruleset(["2001:db8::1/128"], [], "r2", "")
    assert "ip6 saddr { 2001:db8::1/128 } accept" in only_v6 and "ip saddr" not in only_v6


def test_management_networks_are_normalised_and_checked() -> None:
    params = Isolate().validate({"management": ["10.0.0.5/24", "10.0.0.9", "2001:DB8::1"]})
    assert params.management == ["10.0.0.0/24", "10.0.0.9/32", "2001:db8::1/128"]  # type: ignore[attr-defined]
    for bad in (["10.0.0.0/33"], ["eth0"], ["10.0.0.1; nft flush ruleset"]):
        with pytest.raises(ValidationError):
            Isolate().validate({"management": bad})
    with pytest.raises(ValidationError):
        VerifyIsolated().validate({"outbound_address": "10.0.0.0/8"})


def test_isolate_verify_release_both_ways(lab: NetnsLab, tmp_path: Path) -> None:
    records: list[Any] = []
    c = ctx(lab, 0, tmp_path, records)
    act = Isolate()
    params = act.validate({"management": [MGMT_ADDRESS], "outside_netns": lab.other})
    assert act.probe(params, c) == {"isolated": False}
    prestate = act.prestate(params, c)
    outputs = act.run(params, c)
    try:
        act.verify(params, c, outputs)
        assert lab.connects(lab.mgmt, lab.addresses[0])
        assert not lab.connects(lab.other, lab.addresses[0])
        assert not lab.host_reaches_other(0)
        assert lab.connects(lab.other, lab.addresses[1])  # the other host is untouched
        assert f"inet {TABLE}" in lab.nft_tables(0)
        assert act.probe(params, c) == {"isolated": True}
        assert act.reconcile(params, c, prestate) is not None  # a resumed run sees it done
        verify = VerifyIsolated()
        checked = verify.run(
            verify.validate({"management": [MGMT_ADDRESS], "outside_netns": lab.other,
                             "outbound_address": OTHER_ADDRESS, "outbound_port": 9}), c,
        )  # fmt: skip
        assert checked["outside_blocked"] and checked["outbound_blocked"]
        # The host's own attempt was dropped by our output chain, and counted as evidence.
        assert checked["outbound_dropped_packets"] >= 1 and checked["dropped"]["output"] >= 1
        assert checked["dropped"]["input"] >= 1  # the outside namespace's connection attempt
        commands = [d["command"] for kind, d in records if kind == "command"]
        assert any("nft -f -" in line for line in commands)
        assert all(line.startswith("ip netns exec") for line in commands)
    finally:
        release = Release()
        rparams = release.validate({})
        release.run(rparams, c)
    release.verify(rparams, c, {})
    assert lab.connects(lab.other, lab.addresses[0]) and lab.host_reaches_other(0)
    assert lab.nft_tables(0) == []
    with pytest.raises(VerifyError, match="no isolation table"):
        VerifyIsolated().run(VerifyIsolated().validate({}), c)


def test_verification_fails_on_a_leaky_or_tampered_table(lab: NetnsLab, tmp_path: Path) -> None:
    """Verification can fail: a table that lets the other namespace through, one whose input
    chain accepts by default, and an outbound probe address that the table keeps."""
    c = ctx(lab, 1, tmp_path)
    act, verify = Isolate(), VerifyIsolated()
    act.run(act.validate({"management": [MGMT_ADDRESS], "allow": [OTHER_ADDRESS]}), c)
    try:
        with pytest.raises(VerifyError, match="isolation leaks: port 22 answers from namespace"):
            verify.run(verify.validate({"outside_netns": lab.other}), c)
        with pytest.raises(VerifyError, match="without reaching the isolation table's drop rule"):
            verify.run(verify.validate({"outbound_address": OTHER_ADDRESS, "outbound_port": 9}), c)
        with pytest.raises(ActionError, match="is a management address"):
            verify.run(verify.validate({"management": [MGMT_ADDRESS],
                                        "outbound_address": MGMT_ADDRESS}), c)  # fmt: skip
        nft = ["ip", "netns", "exec", lab.host_ns(1), "nft"]
        subprocess.run([*nft, "chain", "inet", TABLE, "input", "{ policy accept; }"], check=True)
        with pytest.raises(VerifyError, match="input chain is missing or does not drop"):
            verify.run(verify.validate({}), c)
    finally:
        Release().run(Release().validate({}), c)
    assert lab.nft_tables(1) == []


def _table(lab: NetnsLab, i: int) -> str:
    argv = ["ip", "netns", "exec", lab.host_ns(i), "nft", "list", "table", "inet", TABLE]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def test_compensation_restores_a_table_that_was_there_before(
    lab: NetnsLab,
    tmp_path: Path,
) -> None:
    c = ctx(lab, 1, tmp_path)
    act = Isolate()
    first = act.validate({"management": [MGMT_ADDRESS], "reason": "first"})
    act.run(first, c)
    before = _table(lab, 1)
    second = act.validate({"management": [MGMT_ADDRESS, "10.231.9.9"], "reason": "second"})
    prestate = act.prestate(second, c)
    outputs = act.run(second, c)
    assert "10.231.9.9" in _table(lab, 1)
    act.compensate(second, c, prestate, outputs)
    after = _table(lab, 1)
    assert after == before
    act.compensate(first, c, {"table": None}, None)
    assert lab.nft_tables(1) == []


def test_losing_the_management_path_rolls_back_by_itself(
    lab: NetnsLab,
    tmp_path: Path,
) -> None:
    """The responder names a management address that is not theirs: the table would cut them
    off, so the dead-man timer on the host deletes it and the step fails."""
    c = ctx(lab, 0, tmp_path)
    act = Isolate()
    params = act.validate({"management": ["10.231.7.7"], "dead_man": 5})
    with pytest.raises(VerifyError, match="the dead-man timer removed the table after 5s"):
        act.run(params, c)
    assert lab.nft_tables(0) == []
    assert lab.connects(lab.other, lab.addresses[0])


def test_no_management_address_is_refused(lab: NetnsLab, tmp_path: Path) -> None:
    from scanner.respond.errors import ActionError

    with pytest.raises(ActionError, match="no management address"):
        Isolate().run(Isolate().validate({}), ctx(lab, 0, tmp_path))
    assert lab.nft_tables(0) == []


def _posture(lab: NetnsLab, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "POSTURE_JOURNAL": str(tmp_path / "journal" / "respond.sqlite"),
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(
        ["ip", "netns", "exec", lab.mgmt, sys.executable, "-m", "scanner", *args],
        capture_output=True, text=True, timeout=300, env=env, cwd=ROOT,
    )  # fmt: skip


def test_shipped_playbooks_isolate_and_release_through_the_cli(
    lab: NetnsLab,
    tmp_path: Path,
) -> None:
    key = tmp_path / "id"
    key.write_bytes(lab.key.read_bytes())
    key.chmod(0o600)
    inputs = ["-i", f"hosts={','.join(lab.addresses)}", "-i", f"ssh_key=file:{key}",
              "-i", f"known_hosts={lab.known_hosts}"]  # fmt: skip
    iso = [*inputs, "-i", f"management={MGMT_ADDRESS}", "-i", f"outside_netns={lab.other}"]
    plan = _posture(lab, tmp_path, "playbook", "plan", "isolate-host", *iso, "--json")
    assert plan.returncode == 0, plan.stderr
    document = json.loads(plan.stdout)
    assert document["probes"] == {f"isolate@{a}": {"isolated": False} for a in lab.addresses}
    refused = _posture(lab, tmp_path, "playbook", "run", "isolate-host", *iso, "--json")
    assert refused.returncode == 4 and "needs approval" in refused.stderr
    assert lab.nft_tables(0) == []
    run_id = refused.stderr.split("resume ")[1].split()[0]
    done = _posture(lab, tmp_path, "playbook", "resume", run_id, "--approve", "isolate",
                    "--plan-hash", document["plan_hash"], "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    for i in range(2):
        assert lab.connects(lab.mgmt, lab.addresses[i])
        assert not lab.connects(lab.other, lab.addresses[i])
    released = _posture(lab, tmp_path, "playbook", "run", "release-host", *inputs, "--json")
    assert released.returncode == 0, released.stderr
    for i in range(2):
        assert lab.connects(lab.other, lab.addresses[i])
    audit = _posture(lab, tmp_path, "playbook", "audit", run_id, "--verify", "--json")
    entries = json.loads(audit.stdout)["entries"]
    assert json.loads(audit.stdout)["verified"] is True
    assert sum(1 for e in entries if e["kind"] == "isolate.command") >= 6
    assert key.read_text() not in audit.stdout
