"""Reading the store back: finding filters and order, scans, stored hosts, resume bookkeeping."""

from __future__ import annotations

import json

import pytest
from storefacts import Facts

from scanner.errors import ConfigError
from scanner.model import (
    FindingStatus,
    Host,
    HostState,
    ScanStatus,
    Service,
    Severity,
    StoredFinding,
)
from scanner.report.view import ordered
from scanner.store import Store


@pytest.fixture
def populated(store: Store, facts: Facts) -> dict[str, str]:
    """Two scans over three hosts; returns fingerprints by a short name."""
    found = {
        "ftp_10": facts.finding(host="127.0.0.10", port=21),
        "ftp_2": facts.finding(host="127.0.0.2", port=21, hostname="files.lab"),
        "redis_2": facts.finding(
            rule="redis.noauth", host="127.0.0.2", port=6379, severity=Severity.CRITICAL
        ),
        "telnet_2": facts.finding(
            rule="telnet.open", host="127.0.0.2", port=23, severity=Severity.MEDIUM
        ),
        "ping_3": facts.finding(
            rule="host.rule", host="127.0.0.3", port=None, severity=Severity.LOW
        ),
    }
    first = facts.scan(hosts_total=3)
    store.record_chunk(
        first,
        [facts.host(a) for a in ("127.0.0.10", "127.0.0.2", "127.0.0.3")],
        [f for k, f in found.items() if k != "ping_3"],
        {"tcp": "1-10000"},
    )
    store.finish_scan(first, ScanStatus.COMPLETED)
    second = facts.scan(hosts_total=1, targets=("127.0.0.3",))
    store.record_chunk(second, [facts.host("127.0.0.3")], [found["ping_3"]], {"tcp": "1-10000"})
    store.finish_scan(second, ScanStatus.COMPLETED)
    store.set_status(found["telnet_2"].fingerprint, FindingStatus.FALSE_POSITIVE, "honeypot")
    return {name: f.fingerprint for name, f in found.items()}


def _scan_column(store: Store, scan_id: int, column: str) -> object:
    """A JSON column of the scans table, as a scan stored it (what closing it reads)."""
    sql = f"SELECT {column} FROM scans WHERE id = ?"  # noqa: S608 (column names from the tests)
    return json.loads(store.db.execute(sql, [scan_id]).fetchone()[0])


def _names(found: list[StoredFinding], fps: dict[str, str]) -> list[str]:
    by_fp = {fp: name for name, fp in fps.items()}
    return [by_fp[f.fingerprint] for f in found]


def test_default_lists_everything_by_severity_then_host_numerically_then_port(
    store: Store, populated: dict[str, str]
) -> None:
    assert _names(store.findings(), populated) == [
        "redis_2",
        "ftp_2",
        "ftp_10",
        "telnet_2",
        "ping_3",
    ]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"min_severity": Severity.HIGH}, ["redis_2", "ftp_2", "ftp_10"]),
        ({"min_severity": Severity.CRITICAL}, ["redis_2"]),
        ({"host": "127.0.0.2"}, ["redis_2", "ftp_2", "telnet_2"]),
        ({"host": "files.lab"}, ["ftp_2"]),
        ({"port": 21}, ["ftp_2", "ftp_10"]),
        ({"rule": "redis.noauth"}, ["redis_2"]),
        ({"statuses": [FindingStatus.FALSE_POSITIVE]}, ["telnet_2"]),
        ({"statuses": [FindingStatus.OPEN, FindingStatus.REOPENED], "port": 23}, []),
        ({"statuses": []}, []),
        ({"scan_id": 2}, ["ping_3"]),
        (
            {"scan_id": 1, "min_severity": Severity.MEDIUM, "host": "127.0.0.2"},
            ["redis_2", "ftp_2", "telnet_2"],
        ),
    ],
)
def test_filters(
    store: Store,
    populated: dict[str, str],
    filters: dict[str, object],
    expected: list[str],
) -> None:
    assert _names(store.findings(**filters), populated) == expected  # type: ignore[arg-type]


def test_unknown_scan_is_a_config_error(store: Store) -> None:
    with pytest.raises(ConfigError, match=r"no scan 42 in .*posture scans"):
        store.get_scan(42)
    with pytest.raises(ConfigError, match="no scan 42"):
        store.findings(scan_id=42)


def test_scans_are_listed_and_the_latest_found_by_status(store: Store, facts: Facts) -> None:
    assert store.latest_scan() is None
    first = facts.scan()
    store.finish_scan(first, ScanStatus.COMPLETED)
    second = facts.scan()
    store.finish_scan(second, ScanStatus.FAILED, error="nmap exited with status 1")
    third = facts.scan()
    assert [s.id for s in store.list_scans()] == [first, second, third]
    latest = store.latest_scan()
    assert latest is not None and latest.id == third and latest.status is ScanStatus.RUNNING
    completed = store.latest_scan(status=ScanStatus.COMPLETED)
    assert completed is not None and completed.id == first
    failed = store.get_scan(second)
    assert (failed.error, failed.finished) == ("nmap exited with status 1", "2026-01-10T12:00:00Z")


def test_created_scan_keeps_what_resume_needs(store: Store) -> None:
    scan = store.create_scan(
        targets=["127.0.0.0/30", "@hosts.txt"],
        scope=["127.0.0.0/8"],
        excludes=["127.0.0.3"],
        packs=["baseline@1.2.0"],
        rules=["b", "a", "a"],
        options={"ports": "top100", "timeout": "30s", "udp": False},
        hosts_total=4,
    )
    record = store.get_scan(scan)
    assert record.targets == ("127.0.0.0/30", "@hosts.txt")
    assert (record.scope, record.excludes, record.packs) == (
        ("127.0.0.0/8",),
        ("127.0.0.3",),
        ("baseline@1.2.0",),
    )
    assert record.options == {"ports": "top100", "timeout": "30s", "udp": False}
    assert (record.hosts_total, record.hosts_done, record.status) == (4, 0, ScanStatus.RUNNING)
    assert _scan_column(store, scan, "rules") == ["a", "b"]


def test_done_hosts_after_two_chunks_and_merged_ports(store: Store, facts: Facts) -> None:
    scan = facts.scan(hosts_total=4)
    store.record_chunk(
        scan,
        [facts.host("127.0.0.1"), facts.host("127.0.0.2", HostState.DOWN, reason="no-response")],
        [],
        {"tcp": "1-100"},
    )
    store.finish_scan(scan, ScanStatus.INTERRUPTED, error="interrupted by the user")
    assert store.done_hosts(scan) == {"127.0.0.1", "127.0.0.2"}
    store.record_chunk(
        scan,
        [facts.host("127.0.0.3", HostState.TIMEOUT, reason="host timeout 5m")],
        [],
        {"tcp": "101-200,443", "udp": "53"},
    )
    assert store.done_hosts(scan) == {"127.0.0.1", "127.0.0.2", "127.0.0.3"}
    record = store.get_scan(scan)
    assert (record.hosts_done, record.status, record.error) == (3, ScanStatus.RUNNING, None)
    assert _scan_column(store, scan, "ports_scanned") == {"tcp": "1-200,443", "udp": "53"}


def test_every_host_is_stored_with_its_state_and_services(store: Store, facts: Facts) -> None:
    scan = facts.scan(hosts_total=2)
    service = Service(
        port=6379,
        proto="tcp",
        state="open",
        name="redis",
        product="Redis key-value store",
        version="7.0.15",
        method="probed",
        conf=10,
        cpe=("cpe:/a:redis:redis:7.0.15",),
        banner="-ERR \x1b[31m unknown",
        checks={"redis": {"auth_required": False, "version": "7.0.15"}},
    )
    up = Host("127.0.0.20", HostState.UP, hostname="cache.lab", services=(service,))
    timed_out = Host("127.0.0.9", HostState.TIMEOUT, reason="host timeout 5m")
    store.record_chunk(scan, [up, timed_out], [], {"tcp": "6379"})
    assert store.scan_hosts(scan) == [timed_out, up]
    assert store.get_scan(scan).hosts_done == 2


def test_a_retried_host_replaces_what_was_stored_of_it(store: Store, facts: Facts) -> None:
    scan = facts.scan()
    store.record_chunk(scan, [facts.host(ports=(21, 22))], [], {"tcp": "1-100"})
    store.record_chunk(scan, [facts.host(ports=(80,))], [], {"tcp": "1-100"})
    (host,) = store.scan_hosts(scan)
    assert [s.port for s in host.services] == [80]
    assert store.get_scan(scan).hosts_done == 1


def test_a_finding_reported_twice_in_one_chunk_is_stored_once(store: Store, facts: Facts) -> None:
    scan = facts.scan()
    summary = store.record_chunk(
        scan, [facts.host()], [facts.finding(), facts.finding(title="later")], {"tcp": "21"}
    )
    assert summary.new == 1
    (only,) = store.findings()
    assert only.title == "later"


def test_invalid_ports_scanned_stores_nothing(store: Store, facts: Facts) -> None:
    scan = facts.scan()
    with pytest.raises(ConfigError, match="invalid port list"):
        store.record_chunk(scan, [facts.host()], [facts.finding()], {"tcp": "21-ssh"})
    assert store.done_hosts(scan) == set()
    assert store.findings() == []


def test_is_done_answers_for_one_batch_of_addresses(store: Store, facts: Facts) -> None:
    scan = facts.scan(hosts_total=1300)
    stored = [f"127.0.{i // 250}.{i % 250 + 1}" for i in range(0, 1300, 3)]
    store.record_chunk(scan, [facts.host(a, HostState.DOWN) for a in stored], [], {"tcp": "21"})
    other = facts.scan()
    store.record_chunk(other, [facts.host("127.0.9.9")], [], {"tcp": "21"})
    asked = [f"127.0.{i // 250}.{i % 250 + 1}" for i in range(1300)]  # more than one batch
    assert store.is_done(scan, [*asked, "127.0.9.9", asked[0]]) == set(stored)
    assert store.is_done(scan, asked[1:3]) == set()
    assert store.is_done(scan, []) == set()
    assert store.is_done(other, asked) == set()
    assert store.is_done(other, ["127.0.9.9"]) == {"127.0.9.9"}
    assert store.is_done(scan, asked) == store.done_hosts(scan)
    with pytest.raises(ConfigError, match="no scan 99"):
        store.is_done(99, asked)


def test_store_and_reports_order_findings_the_same_way(store: Store, facts: Facts) -> None:
    scan = facts.scan(rules=("a", "b"), hosts_total=5)
    hosts = ["127.0.0.10", "127.0.0.9", "::1", "10.0.0.1", "db.lab"]
    found = [
        facts.finding(rule=rule, host=host, port=port, proto=proto, severity=severity)
        for host in hosts
        for rule, port, proto, severity in [
            ("a", 0, "tcp", Severity.HIGH),
            ("b", None, None, Severity.HIGH),
            ("a", 53, "udp", Severity.HIGH),
            ("b", 53, "tcp", Severity.HIGH),
            ("a", 22, "tcp", Severity.LOW),
        ]
    ]
    store.record_chunk(scan, [facts.host(h) for h in hosts], found, {"tcp": "1-100"})
    listed = store.findings()
    # Host-level (no port) before port 0, tcp before udp, whatever the rule ids say.
    assert [(f.host, f.port, f.proto, f.rule_id) for f in listed[:6]] == [
        ("10.0.0.1", None, None, "b"),
        ("10.0.0.1", 0, "tcp", "a"),
        ("10.0.0.1", 53, "tcp", "b"),
        ("10.0.0.1", 53, "udp", "a"),
        ("127.0.0.9", None, None, "b"),
        ("127.0.0.9", 0, "tcp", "a"),
    ]
    assert [f.host for f in listed if f.severity is Severity.LOW] == [
        "10.0.0.1",
        "127.0.0.9",
        "127.0.0.10",
        "::1",
        "db.lab",
    ]
    for shuffled in (listed[::-1], sorted(listed, key=lambda f: f.fingerprint)):
        assert ordered(shuffled) == listed
