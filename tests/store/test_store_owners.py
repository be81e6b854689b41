"""Owners people give single findings: kept with who and when, every change in the history,
untouched by scans, and cleared back to posture.toml's [[owners]]."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from storefacts import Facts, FakeClock

from scanner.errors import ConfigError
from scanner.model import Finding, FindingStatus, ScanStatus
from scanner.owners import Owners
from scanner.store import OwnerAssignment, Store

TCP = {"tcp": "1-1024"}
CONFIG_OWNERS = Owners.parse(
    [
        {"owner": "team-ftp", "match": ["127.0.0.0/8"], "ports": [21]},
        {"owner": "platform", "contact": "ops@example.org", "match": ["127.0.0.0/8"]},
    ],
    "posture.toml",
)


def _scan(
    store: Store, facts: Facts, found: Sequence[Finding], ports: Sequence[int] = (21, 23)
) -> int:
    scan = facts.scan(rules=("ftp.anonymous", "telnet.open"))
    store.record_chunk(scan, [facts.host(ports=ports)], found, TCP)
    store.finish_scan(scan, ScanStatus.COMPLETED)
    return scan


def test_assignment_lifecycle(store: Store, facts: Facts, clock: FakeClock) -> None:
    ftp = facts.finding()
    telnet = facts.finding(rule="telnet.open", port=23, title="Telnet")
    _scan(store, facts, [ftp, telnet])
    fp = ftp.fingerprint
    assert store.owner_assignment(fp) is None and store.owner_assignments() == {}

    clock.advance(hours=1)  # 2026-01-10T13:00:00Z
    given = store.assign_owner(
        fp[:10], " team-db ", contact="db@example.org", note="runs it", actor="ana"
    )
    assert given == OwnerAssignment(
        fp, "2026-01-10T13:00:00Z", "team-db", "db@example.org", "runs it", "ana"
    )
    clock.advance(days=1)
    store.assign_owner(fp, "team-storage", actor="bo")

    # Scans never change it: the finding is fixed (absent) and then seen again.
    clock.advance(days=1)
    _scan(store, facts, [telnet])
    assert store.get_finding(fp).status is FindingStatus.FIXED
    clock.advance(days=1)
    _scan(store, facts, [ftp, telnet])
    assert store.get_finding(fp).status is FindingStatus.REOPENED
    in_force = store.owner_assignments()
    assert list(in_force) == [fp] and in_force[fp].owner == "team-storage"
    assert in_force[fp].at == "2026-01-11T13:00:00Z" and in_force[fp].actor == "bo"

    clock.advance(hours=1)
    assert store.assign_owner(fp, None, actor="cy") is None
    assert store.owner_assignment(fp) is None and store.owner_assignments() == {}
    # Clearing what is not set records nothing.
    assert store.assign_owner(fp, None, actor="cy") is None
    history = [(a.owner, a.actor, a.at) for a in store.owner_history(fp)]
    assert history == [
        ("team-db", "ana", "2026-01-10T13:00:00Z"),
        ("team-storage", "bo", "2026-01-11T13:00:00Z"),
        (None, "cy", "2026-01-13T14:00:00Z"),
    ]
    # The finding's status history holds no owner changes (SLA clocks read it).
    assert [e.to_status for e in store.events(fp)] == [
        FindingStatus.OPEN,
        FindingStatus.FIXED,
        FindingStatus.REOPENED,
    ]


def test_a_persons_assignment_outranks_the_config(store: Store, facts: Facts) -> None:
    ftp = facts.finding()
    telnet = facts.finding(rule="telnet.open", port=23, title="Telnet")
    other = facts.finding(rule="telnet.open", host="127.0.0.9", port=23, title="Telnet")
    scan = facts.scan(rules=("ftp.anonymous", "telnet.open"), hosts_total=2)
    hosts = [facts.host(ports=(21, 23)), facts.host("127.0.0.9", ports=(23,))]
    store.record_chunk(scan, hosts, [ftp, telnet, other], TCP)
    store.finish_scan(scan, ScanStatus.COMPLETED)
    store.assign_owner(telnet.fingerprint, "team-legacy", contact="legacy@example.org")
    assigned = store.owner_assignments()
    by_fp = {f.fingerprint: f for f in store.findings()}

    # Entry 1 (port 21) before entry 2; the assignment before both.
    resolved = CONFIG_OWNERS.resolve(by_fp[ftp.fingerprint], assigned)
    assert (resolved.name, resolved.source, resolved.entry) == ("team-ftp", "config", 1)
    resolved = CONFIG_OWNERS.resolve(by_fp[other.fingerprint], assigned)
    assert (resolved.name, resolved.contact, resolved.entry) == ("platform", "ops@example.org", 2)
    resolved = CONFIG_OWNERS.resolve(by_fp[telnet.fingerprint], assigned)
    assert (resolved.name, resolved.contact, resolved.source) == (
        "team-legacy",
        "legacy@example.org",
        "assigned",
    )
    assert resolved.entry is None
    # No config: only the assignment counts, the rest is unassigned.
    assert Owners().names(by_fp.values(), assigned) == {
        ftp.fingerprint: "unassigned",
        telnet.fingerprint: "team-legacy",
        other.fingerprint: "unassigned",
    }


@pytest.mark.parametrize(
    ("owner", "extra", "why"),
    [
        ("   ", {}, "must be a name of 1 to 100 printable characters"),
        ("x" * 101, {}, "must be a name of 1 to 100"),
        ("team\x1b[2J", {}, "printable characters"),
        ("Unassigned", {}, "'unassigned' is what no owner is shown as"),
        ("team-db", {"contact": "c" * 201}, "contact (--contact) must be 1 to 200"),
        (None, {"contact": "db@example.org"}, "goes with an owner (--owner), not --clear"),
        ("team-db", {"note": "n" * 1001}, "longer than 1000 characters"),
    ],
)
def test_bad_assignments_are_refused(
    store: Store, facts: Facts, owner: str | None, extra: dict[str, str], why: str
) -> None:
    ftp = facts.finding()
    _scan(store, facts, [ftp])
    with pytest.raises(ConfigError) as caught:
        store.assign_owner(ftp.fingerprint, owner, **extra)
    assert why in str(caught.value)
    assert store.owner_history(ftp.fingerprint) == []


def test_unknown_fingerprint_names_the_fix(store: Store, facts: Facts) -> None:
    _scan(store, facts, [facts.finding()])
    with pytest.raises(
        ConfigError, match=r"no finding 00000000 in .*posture findings --status all"
    ):
        store.assign_owner("00000000", "team-db")
