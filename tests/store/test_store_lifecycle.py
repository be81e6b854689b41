"""Finding lifecycle across scans: open, fixed only when covered, reopened, people's verdicts."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

import pytest
from storefacts import Facts, FakeClock

from scanner.errors import ConfigError
from scanner.model import FindingStatus, HostState, ScanStatus, Severity, fingerprint
from scanner.store import LifecycleSummary, Store, Undetermined

TCP_1024 = {"tcp": "1-1024"}


def _first_scan(facts: Facts, **finding: object) -> str:
    """A completed scan that found one finding; returns its fingerprint."""
    found = facts.finding(**finding)  # type: ignore[arg-type]
    scan = facts.scan()
    facts.store.record_chunk(scan, [facts.host(found.host)], [found], TCP_1024)
    facts.store.finish_scan(scan, ScanStatus.COMPLETED)
    return found.fingerprint


def _empty_scan(facts: Facts, host_state: HostState = HostState.UP, **kwargs: object) -> int:
    """A later scan of 127.0.0.1 that finds nothing; `ports`/`rules`/`status` vary coverage."""
    ports = kwargs.pop("ports", TCP_1024)
    status = kwargs.pop("status", ScanStatus.COMPLETED)
    scan = facts.scan(**kwargs)  # type: ignore[arg-type]
    facts.store.record_chunk(scan, [facts.host("127.0.0.1", host_state)], [], ports)  # type: ignore[arg-type]
    if status is not None:
        facts.store.finish_scan(scan, status)  # type: ignore[arg-type]
    return scan


def test_first_sighting_opens_a_finding_with_an_event(store: Store, facts: Facts) -> None:
    found = facts.finding(evidence={"banner": "220 vsFTPd 3.0.3"}, cves=("CVE-2011-2523",))
    scan = facts.scan()
    summary = store.record_chunk(scan, [facts.host()], [found], TCP_1024)
    assert (summary.hosts, summary.new, summary.reopened, summary.seen) == (1, 1, 0, 0)
    stored = store.get_finding(found.fingerprint)
    assert stored.status is FindingStatus.OPEN
    assert stored.first_seen == stored.last_seen == "2026-01-10T12:00:00Z"
    assert stored.last_scan_id == scan
    assert stored.evidence == {"banner": "220 vsFTPd 3.0.3"}
    assert stored.cves == ("CVE-2011-2523",)
    assert stored.fingerprint == fingerprint("ftp.anonymous", "127.0.0.1", "tcp", 21)
    (event,) = store.events(found.fingerprint)
    assert (event.from_status, event.to_status, event.scan_id) == (None, FindingStatus.OPEN, scan)


def test_absent_from_a_covering_complete_scan_becomes_fixed(
    store: Store, facts: Facts, clock: FakeClock
) -> None:
    fp = _first_scan(facts)
    clock.advance(days=1)
    scan = facts.scan()
    store.record_chunk(scan, [facts.host(ports=())], [], TCP_1024)
    summary = store.finish_scan(scan, ScanStatus.COMPLETED)
    assert summary.fixed == 1 and summary.not_covered == 0
    stored = store.get_finding(fp)
    assert stored.status is FindingStatus.FIXED
    assert stored.fixed_at == "2026-01-11T12:00:00Z"
    assert [e.to_status for e in store.events(fp)] == [FindingStatus.OPEN, FindingStatus.FIXED]
    assert store.events(fp)[-1].scan_id == scan


@pytest.mark.parametrize(
    ("why", "later"),
    [
        ("host down", {"host_state": HostState.DOWN}),
        ("host timed out", {"host_state": HostState.TIMEOUT}),
        ("host errored", {"host_state": HostState.ERROR}),
        ("port not in the scanned range", {"ports": {"tcp": "22,80-443"}}),
        ("no tcp ports scanned", {"ports": {"udp": "1-1024"}}),
        ("rule not evaluated", {"rules": ("tls.weak",)}),
        ("scan failed", {"status": ScanStatus.FAILED}),
        ("scan interrupted", {"status": ScanStatus.INTERRUPTED}),
        ("scan never finished", {"status": None}),
    ],
)
def test_not_fixed_when_the_later_scan_did_not_cover_it(
    store: Store, facts: Facts, why: str, later: dict[str, object]
) -> None:
    fp = _first_scan(facts)
    _empty_scan(facts, **later)  # type: ignore[arg-type]
    assert store.get_finding(fp).status is FindingStatus.OPEN, why


def test_not_fixed_when_the_host_was_not_in_the_later_scan(store: Store, facts: Facts) -> None:
    fp = _first_scan(facts)
    scan = facts.scan(targets=("127.0.0.2",))
    store.record_chunk(scan, [facts.host("127.0.0.2")], [], TCP_1024)
    summary = store.finish_scan(scan, ScanStatus.COMPLETED)
    assert (summary.fixed, summary.not_covered) == (0, 1)
    assert store.get_finding(fp).status is FindingStatus.OPEN


def test_host_level_finding_needs_only_the_host_up(store: Store, facts: Facts) -> None:
    fp = _first_scan(facts, rule="host.rule", port=None)
    _empty_scan(facts, ports={})
    assert store.get_finding(fp).status is FindingStatus.FIXED


def test_fixed_then_seen_again_is_reopened(store: Store, facts: Facts, clock: FakeClock) -> None:
    fp = _first_scan(facts)
    _empty_scan(facts)
    clock.advance(days=2)
    scan = facts.scan()
    summary = store.record_chunk(scan, [facts.host()], [facts.finding()], TCP_1024)
    assert (summary.new, summary.reopened) == (0, 1)
    stored = store.get_finding(fp)
    assert stored.status is FindingStatus.REOPENED
    assert stored.fixed_at is None
    assert stored.first_seen == "2026-01-10T12:00:00Z"
    assert stored.last_seen == "2026-01-12T12:00:00Z"
    assert [e.to_status.value for e in store.events(fp)] == ["open", "fixed", "reopened"]
    assert store.finish_scan(scan, ScanStatus.COMPLETED).fixed == 0
    assert store.get_finding(fp).status is FindingStatus.REOPENED
    assert store.has_active_at_least(scan, Severity.HIGH)


def test_seen_again_keeps_status_and_refreshes_the_rule_text(
    store: Store, facts: Facts, clock: FakeClock
) -> None:
    fp = _first_scan(facts)
    clock.advance(hours=5)
    scan = facts.scan()
    reworded = facts.finding(title="FTP accepts anonymous logins", severity=Severity.CRITICAL)
    summary = store.record_chunk(scan, [facts.host()], [reworded], TCP_1024)
    assert (summary.new, summary.seen) == (0, 1)
    stored = store.get_finding(fp)
    assert reworded.fingerprint == fp
    assert (stored.status, stored.title, stored.severity) == (
        FindingStatus.OPEN,
        "FTP accepts anonymous logins",
        Severity.CRITICAL,
    )
    assert (stored.last_seen, stored.last_scan_id) == ("2026-01-10T17:00:00Z", scan)
    assert len(store.events(fp)) == 1  # no status change, no event


@pytest.mark.parametrize("verdict", [FindingStatus.RISK_ACCEPTED, FindingStatus.FALSE_POSITIVE])
def test_peoples_verdicts_are_never_undone_by_scans(
    store: Store, facts: Facts, verdict: FindingStatus
) -> None:
    fp = _first_scan(facts)
    store.set_status(fp, verdict, "compensating control in place", actor="alice")
    _empty_scan(facts)  # covering, complete, absent: would fix an open finding
    assert store.get_finding(fp).status is verdict
    scan = facts.scan()
    store.record_chunk(scan, [facts.host()], [facts.finding()], TCP_1024)
    store.finish_scan(scan, ScanStatus.COMPLETED)
    stored = store.get_finding(fp)
    assert stored.status is verdict
    assert stored.status_note == "compensating control in place"
    assert not store.has_active_at_least(scan, Severity.INFO)


def test_expired_acceptance_opens_the_finding_when_seen(
    store: Store, facts: Facts, clock: FakeClock
) -> None:
    fp = _first_scan(facts)
    expires = date(2026, 1, 20)
    store.set_status(fp, FindingStatus.RISK_ACCEPTED, "vendor fix due", expires=expires)
    clock.advance(days=9)  # 2026-01-19: the acceptance still holds
    scan = facts.scan()
    store.record_chunk(scan, [facts.host()], [facts.finding()], TCP_1024)
    assert store.get_finding(fp).status is FindingStatus.RISK_ACCEPTED
    clock.advance(days=1)  # 2026-01-20: it ends today
    scan = facts.scan()
    summary = store.record_chunk(scan, [facts.host()], [facts.finding()], TCP_1024)
    assert summary.expired == 1
    stored = store.get_finding(fp)
    assert stored.status is FindingStatus.OPEN
    assert stored.accept_expires is None
    last = store.events(fp)[-1]
    assert (last.from_status, last.to_status) == (FindingStatus.RISK_ACCEPTED, FindingStatus.OPEN)
    assert last.note is not None and "expired on 2026-01-20" in last.note
    assert store.has_active_at_least(scan, Severity.HIGH)


def test_set_status_open_hands_the_finding_back_to_scans(store: Store, facts: Facts) -> None:
    fp = _first_scan(facts)
    store.set_status(fp, FindingStatus.FALSE_POSITIVE, "banner lies")
    reopened = store.set_status(fp, FindingStatus.OPEN, "it was real after all", actor="bob")
    assert reopened.status is FindingStatus.OPEN
    last = store.events(fp)[-1]
    assert (last.actor, last.note, last.scan_id) == ("bob", "it was real after all", None)
    _empty_scan(facts)
    assert store.get_finding(fp).status is FindingStatus.FIXED


@pytest.mark.parametrize(
    ("status", "reason", "expires", "message"),
    [
        (FindingStatus.FIXED, "done", None, "decided by scans"),
        (FindingStatus.REOPENED, "again", None, "decided by scans"),
        (FindingStatus.RISK_ACCEPTED, "   ", None, "reason is required"),
        (FindingStatus.FALSE_POSITIVE, "x", date(2027, 1, 1), "only applies to risk_accepted"),
        (FindingStatus.RISK_ACCEPTED, "x", date(2026, 1, 10), "not in the future"),
        (FindingStatus.RISK_ACCEPTED, "x", date(2025, 6, 1), "not in the future"),
    ],
)
def test_set_status_refuses_what_people_may_not_set(
    store: Store,
    facts: Facts,
    status: FindingStatus,
    reason: str,
    expires: date | None,
    message: str,
) -> None:
    fp = _first_scan(facts)
    with pytest.raises(ConfigError, match=message):
        store.set_status(fp, status, reason, expires=expires)
    assert store.get_finding(fp).status is FindingStatus.OPEN
    assert len(store.events(fp)) == 1


def _colliding_discriminators(digits: int) -> tuple[str, str]:
    """Two discriminators whose fingerprints share their first `digits` hex digits."""
    seen: dict[str, str] = {}
    for i in range(2_000_000):
        disc = f"cipher-{i}"
        prefix = fingerprint("tls.weak", "127.0.0.1", "tcp", 443, disc)[:digits]
        if prefix in seen:
            return seen[prefix], disc
        seen[prefix] = disc
    raise AssertionError("no collision found")  # pragma: no cover


def test_fingerprint_prefix_unique_ambiguous_unknown(store: Store, facts: Facts) -> None:
    first, second = _colliding_discriminators(8)
    found = [facts.finding(rule="tls.weak", port=443, discriminator=d) for d in (first, second)]
    scan = facts.scan(rules=("tls.weak",))
    store.record_chunk(scan, [facts.host(ports=(443,))], found, {"tcp": "443"})
    fp1, fp2 = (f.fingerprint for f in found)
    common = 8
    while fp1[: common + 1] == fp2[: common + 1]:
        common += 1
    assert store.get_finding(fp1[: common + 1]).fingerprint == fp1
    assert store.get_finding(fp2.upper()).fingerprint == fp2  # full and case-insensitive
    with pytest.raises(ConfigError, match="ambiguous"):
        store.get_finding(fp1[:common])
    absent = hashlib.sha256(b"nothing").hexdigest()
    with pytest.raises(ConfigError, match="no finding"):
        store.set_status(absent[:12], FindingStatus.FALSE_POSITIVE, "x")
    with pytest.raises(ConfigError, match="at least 8"):
        store.get_finding(fp1[:7])
    with pytest.raises(ConfigError, match="not a finding fingerprint"):
        store.get_finding("zzzzzzzzzz")


def test_an_older_scan_finishing_late_does_not_fix_what_a_newer_scan_saw(
    store: Store, facts: Facts
) -> None:
    old = facts.scan(hosts_total=2, targets=("127.0.0.1", "127.0.0.2"))
    store.record_chunk(old, [facts.host("127.0.0.2")], [], TCP_1024)
    store.finish_scan(old, ScanStatus.INTERRUPTED)
    fp = _first_scan(facts)  # a newer scan finds it on 127.0.0.1
    store.record_chunk(old, [facts.host("127.0.0.1")], [], TCP_1024)  # resume the old one
    store.finish_scan(old, ScanStatus.COMPLETED)
    assert store.get_finding(fp).status is FindingStatus.OPEN


def test_completed_scans_take_no_more_chunks_and_close_once(store: Store, facts: Facts) -> None:
    scan = _empty_scan(facts)
    with pytest.raises(ConfigError, match="already complete"):
        store.record_chunk(scan, [facts.host("127.0.0.9")], [], TCP_1024)
    with pytest.raises(ConfigError, match="already complete"):
        store.finish_scan(scan, ScanStatus.FAILED, error="late failure")
    assert store.get_scan(scan).status is ScanStatus.COMPLETED


def test_has_active_at_least_counts_only_open_findings_of_that_scan(
    store: Store, facts: Facts
) -> None:
    scan = facts.scan()
    medium = facts.finding(rule="host.rule", port=None, severity=Severity.MEDIUM)
    store.record_chunk(scan, [facts.host()], [medium], TCP_1024)
    other = facts.scan()
    assert store.has_active_at_least(scan, Severity.MEDIUM)
    assert store.has_active_at_least(scan, Severity.LOW)
    assert not store.has_active_at_least(scan, Severity.HIGH)
    assert not store.has_active_at_least(other, Severity.INFO)
    store.set_status(medium.fingerprint, FindingStatus.FALSE_POSITIVE, "lab box")
    assert not store.has_active_at_least(scan, Severity.INFO)


def test_naive_clock_times_are_taken_as_utc(db_path: object, clock: FakeClock) -> None:
    clock.now = clock.now.replace(tzinfo=None) + timedelta(seconds=1.7)
    with Store(str(db_path), clock=clock) as store:
        scan = Facts(store).scan()
        assert store.get_scan(scan).started == "2026-01-10T12:00:01Z"


def _check_scan(facts: Facts, undetermined: list[Undetermined]) -> LifecycleSummary:
    """A complete scan covering 127.0.0.1:21 and ftp.anonymous that does not see the finding."""
    scan = facts.scan()
    facts.store.record_chunk(scan, [facts.host()], [], TCP_1024, undetermined=undetermined)
    return facts.store.finish_scan(scan, ScanStatus.COMPLETED)


def test_an_undetermined_check_keeps_the_finding_open_until_a_scan_decides(
    store: Store, facts: Facts
) -> None:
    fp = _first_scan(facts)
    summary = _check_scan(facts, [("127.0.0.1", "TCP", 21, "ftp.anonymous")])
    assert (summary.fixed, summary.not_covered, summary.undetermined) == (0, 1, 1)
    assert store.get_finding(fp).status is FindingStatus.OPEN
    assert len(store.events(fp)) == 1
    summary = _check_scan(facts, [])
    assert (summary.fixed, summary.undetermined) == (1, 0)
    assert store.get_finding(fp).status is FindingStatus.FIXED


@pytest.mark.parametrize(
    "elsewhere",
    [
        ("127.0.0.1", "tcp", 22, "ftp.anonymous"),  # another port
        ("127.0.0.1", "udp", 21, "ftp.anonymous"),  # another protocol
        ("127.0.0.1", "tcp", 21, "redis.noauth"),  # another rule
    ],
)
def test_undetermined_elsewhere_does_not_save_the_finding(
    store: Store, facts: Facts, elsewhere: Undetermined
) -> None:
    fp = _first_scan(facts)
    summary = _check_scan(facts, [elsewhere])
    assert (summary.fixed, summary.undetermined) == (1, 0)
    assert store.get_finding(fp).status is FindingStatus.FIXED


def test_a_retried_host_replaces_its_undetermined_rules(store: Store, facts: Facts) -> None:
    fp = _first_scan(facts)
    scan = facts.scan()
    store.record_chunk(
        scan, [facts.host()], [], TCP_1024, undetermined=[("127.0.0.1", "tcp", 21, "ftp.anonymous")]
    )
    store.record_chunk(scan, [facts.host()], [], TCP_1024)  # the retry got an answer
    assert store.finish_scan(scan, ScanStatus.COMPLETED).fixed == 1
    assert store.get_finding(fp).status is FindingStatus.FIXED


@pytest.mark.parametrize(
    ("undetermined", "message"),
    [
        (("127.0.0.9", "tcp", 21, "ftp.anonymous"), "not in the chunk"),
        (("127.0.0.1", "tcp", 70000, "ftp.anonymous"), "bad port 70000"),
        (("127.0.0.1", "tcp", "21", "ftp.anonymous"), "bad port '21'"),
    ],
)
def test_undetermined_must_name_a_host_of_the_chunk_and_a_port(
    store: Store, facts: Facts, undetermined: tuple[str, str, object, str], message: str
) -> None:
    scan = facts.scan()
    bad: list[Undetermined] = [undetermined]  # type: ignore[list-item]
    with pytest.raises(ValueError, match=message):
        store.record_chunk(scan, [facts.host()], [facts.finding()], TCP_1024, bad)
    assert store.done_hosts(scan) == set() and store.findings() == []


def _accepted_until(store: Store, facts: Facts, expires: date) -> str:
    fp = _first_scan(facts)
    store.set_status(fp, FindingStatus.RISK_ACCEPTED, "vendor fix due", expires=expires)
    return fp


def test_reading_findings_opens_an_expired_acceptance_without_a_scan(
    store: Store, facts: Facts, clock: FakeClock
) -> None:
    fp = _accepted_until(store, facts, date(2026, 1, 20))
    active = [FindingStatus.OPEN, FindingStatus.REOPENED]
    clock.advance(days=9)  # 2026-01-19: the acceptance still holds
    assert store.findings(statuses=active) == []
    assert store.get_finding(fp).status is FindingStatus.RISK_ACCEPTED
    clock.advance(days=1)  # 2026-01-20: it ends today, and no scan has run since
    (found,) = store.findings(statuses=active)
    assert (found.fingerprint, found.status, found.accept_expires) == (fp, FindingStatus.OPEN, None)
    last = store.events(fp)[-1]
    assert (last.from_status, last.to_status, last.scan_id) == (
        FindingStatus.RISK_ACCEPTED,
        FindingStatus.OPEN,
        None,
    )
    assert last.note == "risk acceptance expired on 2026-01-20"
    assert last.at == "2026-01-20T12:00:00Z"
    assert store.expire_acceptances() == 0  # once only
    assert len(store.events(fp)) == 3


def test_fail_on_counts_an_acceptance_that_expired_after_the_scan(
    store: Store, facts: Facts, clock: FakeClock
) -> None:
    fp = _first_scan(facts)
    scan = facts.scan()
    store.record_chunk(scan, [facts.host()], [facts.finding()], TCP_1024)
    store.set_status(fp, FindingStatus.RISK_ACCEPTED, "until the window", expires=date(2026, 1, 11))
    assert not store.has_active_at_least(scan, Severity.HIGH)
    clock.advance(days=1)
    assert store.has_active_at_least(scan, Severity.HIGH)
    assert store.get_finding(fp).status is FindingStatus.OPEN


def test_closing_a_scan_opens_expired_acceptances_and_counts_them(
    store: Store, facts: Facts, clock: FakeClock
) -> None:
    fp = _accepted_until(store, facts, date(2026, 1, 12))
    other = facts.finding(rule="host.rule", host="127.0.0.2", port=None)
    scan = facts.scan(targets=("127.0.0.2",))
    store.record_chunk(scan, [facts.host("127.0.0.2")], [other], TCP_1024)
    store.set_status(other.fingerprint, FindingStatus.RISK_ACCEPTED, "x", expires=date(2026, 2, 1))
    clock.advance(days=3)
    summary = store.finish_scan(scan, ScanStatus.COMPLETED)
    # 127.0.0.1 was not in this scan: the finding is open again, not fixed.
    assert (summary.expired, summary.fixed) == (1, 0)
    assert store.get_finding(fp).status is FindingStatus.OPEN
    assert store.get_finding(other.fingerprint).status is FindingStatus.RISK_ACCEPTED


def test_seen_expired_acceptances_count_as_back_to_active(
    store: Store, facts: Facts, clock: FakeClock
) -> None:
    fp = _first_scan(facts)
    fixed = _first_scan(facts, rule="host.rule", port=None)
    _empty_scan(facts, ports={})  # host.rule absent: fixed
    assert store.get_finding(fixed).status is FindingStatus.FIXED
    store.set_status(fp, FindingStatus.RISK_ACCEPTED, "x", expires=date(2026, 1, 11))
    clock.advance(days=1)
    scan = facts.scan()
    found = [facts.finding(), facts.finding(rule="host.rule", port=None)]
    summary = store.record_chunk(scan, [facts.host()], found, TCP_1024)
    assert (summary.reopened, summary.expired, summary.back_to_active) == (1, 1, 2)
