"""The scan runner (scanner.scan) without root or a network: a fake `nmap` on PATH.

The fake is a small Python script this file writes: it logs the addresses it was asked to scan,
then writes nmap XML for them to the `-oX` path (every host up, telnet open on 23 unless told
otherwise) or exits 1 for the addresses it is told to fail. It sends no packet. Only the
undetermined-check test talks to the network: to its own listener on 127.0.71.10.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from demo.lab import ServiceLoop, docker_api, hang_up
from scanner.cli import cli
from scanner.errors import ConfigError, ScanFailedError
from scanner.model import FindingStatus, Host, HostState, ScanStatus, Service
from scanner.rules import RuleSet, default_pack_paths, evaluate, load_packs, service_facts
from scanner.scan import (
    ScanObserver,
    ScanOptions,
    check_resume_rules,
    resume_scope,
    resume_targets,
    run_scan,
    start_scan,
    undetermined_rules,
)
from scanner.store import Store
from scanner.targets import Scope, TargetSet, parse_targets

FAKE_NMAP = """#!{python}
import ipaddress, json, sys, time
from pathlib import Path

here = Path(__file__).resolve().parent
config = json.loads((here / "config.json").read_text())
args = sys.argv[1:]
xml_path = Path(args[args.index("-oX") + 1])
ports = args[args.index("-p") + 1] if "-p" in args else "1-1000"
addresses = []
for arg in args:
    try:
        addresses.append(str(ipaddress.ip_address(arg)))
    except ValueError:
        pass
with open(here / "calls.log", "a") as log:
    log.write(json.dumps(addresses) + "\\n")
time.sleep(config.get("delay", 0))
if set(addresses) & set(config.get("fail", [])):
    sys.stderr.write("fake nmap: told to fail\\n")
    sys.exit(1)
default = config.get("default", [[23, "open", "telnet"]])
hosts = []
for address in addresses:
    family = "ipv6" if ":" in address else "ipv4"
    rows = "".join(
        f'<port protocol="tcp" portid="{{row[0]}}"><state state="{{row[1]}}" reason="syn-ack"/>'
        f'<service name="{{row[2]}}" method="probed" conf="10"'
        + (f' product="{{row[3]}}" version="{{row[4]}}"' if len(row) > 3 else "")
        + "/></port>"
        for row in config.get("services", {{}}).get(address, default)
    )
    hosts.append(
        f'<host><status state="up" reason="localhost-response"/>'
        f'<address addr="{{address}}" addrtype="{{family}}"/><hostnames/>'
        f"<ports>{{rows}}</ports></host>"
    )
xml_path.write_text(
    '<?xml version="1.0"?>\\n<nmaprun scanner="nmap" args="fake" version="7.93" '
    'xmloutputversion="1.05">'
    f'<scaninfo type="connect" protocol="tcp" numservices="1" services="{{ports}}"/>'
    + "".join(hosts)
    + '<runstats><finished time="0" timestr="now" elapsed="0.1" exit="success"/>'
    f'<hosts up="{{len(hosts)}}" down="0" total="{{len(addresses)}}"/></runstats></nmaprun>'
)
"""


class FakeNmap:
    """The fake nmap's folder: tell it what to do, read which chunks it was run on."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.configure()

    def configure(self, **config: Any) -> None:
        (self.folder / "config.json").write_text(json.dumps(config))

    def calls(self) -> list[list[str]]:
        log = self.folder / "calls.log"
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines()]


@pytest.fixture
def fake_nmap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeNmap:
    folder = tmp_path / "bin"
    folder.mkdir()
    script = folder / "nmap"
    script.write_text(FAKE_NMAP.format(python=sys.executable))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ.get('PATH', '')}")
    return FakeNmap(folder)


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    return load_packs(default_pack_paths())


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "p.db") as opened:
        yield opened


OPTIONS = ScanOptions(ports="23,2375", chunk_size=1, concurrency=1, check_timeout=1.0)


def begin(
    store: Store,
    ruleset: RuleSet,
    specs: list[str],
    options: ScanOptions = OPTIONS,
    scope: Scope | None = None,
) -> tuple[int, TargetSet]:
    targets = parse_targets(specs)
    scan_id = start_scan(store, targets, scope=scope, excludes=(), ruleset=ruleset, options=options)
    return scan_id, targets


# --- every chunk stored, chunks split by family --------------------------------------------


def test_every_chunk_is_stored(fake_nmap: FakeNmap, store: Store, ruleset: RuleSet) -> None:
    options = dataclasses.replace(OPTIONS, chunk_size=2, concurrency=2)
    scan_id, targets = begin(store, ruleset, ["127.0.70.1-5"], options)
    outcome = run_scan(store, scan_id, targets, ruleset, options)
    assert outcome.scan.status is ScanStatus.COMPLETED
    assert outcome.hosts_by_state == {"up": 5} and outcome.new == 5
    assert sorted(fake_nmap.calls()) == [
        ["127.0.70.1", "127.0.70.2"],
        ["127.0.70.3", "127.0.70.4"],
        ["127.0.70.5"],
    ]
    assert store.done_hosts(scan_id) == {f"127.0.70.{i}" for i in range(1, 6)}
    found = store.findings(scan_id=scan_id)
    assert {(f.rule_id, f.host, f.port) for f in found} == {
        ("baseline.telnet-exposed", f"127.0.70.{i}", 23) for i in range(1, 6)
    }


def test_a_chunk_mixing_ipv4_and_ipv6_runs_as_two_nmaps(
    fake_nmap: FakeNmap, store: Store, ruleset: RuleSet
) -> None:
    options = dataclasses.replace(OPTIONS, chunk_size=4)
    # fd00:70::/64 is never reached: the fake nmap sends nothing
    scan_id, targets = begin(store, ruleset, ["127.0.70.6-8", "fd00:70::1-fd00:70::2"], options)
    outcome = run_scan(store, scan_id, targets, ruleset, options)
    assert outcome.hosts_by_state == {"up": 5}
    assert fake_nmap.calls() == [
        ["127.0.70.6", "127.0.70.7", "127.0.70.8"],
        ["fd00:70::1"],
        ["fd00:70::2"],
    ]


# --- failures and interrupts keep what finished; resume does the rest ----------------------


def test_failed_chunk_fails_the_scan_and_resume_scans_only_the_rest(
    fake_nmap: FakeNmap, store: Store, ruleset: RuleSet
) -> None:
    fake_nmap.configure(fail=["127.0.70.13"])
    scan_id, targets = begin(store, ruleset, ["127.0.70.11-14"])
    with pytest.raises(ScanFailedError, match="nmap exited with code 1"):
        run_scan(store, scan_id, targets, ruleset, OPTIONS)
    scan = store.get_scan(scan_id)
    assert scan.status is ScanStatus.FAILED and "told to fail" in (scan.error or "")
    assert store.done_hosts(scan_id) == {"127.0.70.11", "127.0.70.12"}
    assert len(fake_nmap.calls()) == 3  # .14 was never started

    fake_nmap.configure()
    resumed, options = resume_targets(store.get_scan(scan_id))
    outcome = run_scan(store, scan_id, resumed, ruleset, options)
    assert fake_nmap.calls()[3:] == [["127.0.70.13"], ["127.0.70.14"]]
    assert outcome.scan.status is ScanStatus.COMPLETED
    # The whole scan's hosts, not only the two this run stored.
    assert outcome.hosts_by_state == {"up": 4}


class _SlowObserver(ScanObserver):
    """Holds the runner's thread on its first progress report long enough for every chunk in
    flight to finish; then (optionally) interrupts, as Ctrl-C would."""

    def __init__(self, *, hold: float, interrupt: bool) -> None:
        self.hold = hold
        self.interrupt = interrupt
        self.calls = 0

    def advanced(self, progress: float, hosts_stored: int, findings: int) -> None:
        self.calls += 1
        if self.calls == 1:
            time.sleep(self.hold)
            if self.interrupt:
                raise KeyboardInterrupt


def test_interrupt_stores_the_chunks_that_finished_before_it(
    fake_nmap: FakeNmap, store: Store, ruleset: RuleSet
) -> None:
    # Both nmaps take 1 s; the first progress report (at 0.5 s) holds until both are done and
    # then interrupts: neither chunk was stored yet, both must be.
    fake_nmap.configure(delay=1.0)
    options = dataclasses.replace(OPTIONS, concurrency=2)
    scan_id, targets = begin(store, ruleset, ["127.0.70.21-22"], options)
    observer = _SlowObserver(hold=3.0, interrupt=True)
    with pytest.raises(KeyboardInterrupt):
        run_scan(store, scan_id, targets, ruleset, options, observer)
    assert store.get_scan(scan_id).status is ScanStatus.INTERRUPTED
    assert store.done_hosts(scan_id) == {"127.0.70.21", "127.0.70.22"}
    assert len(store.findings(scan_id=scan_id)) == 2


def test_failure_keeps_a_chunk_that_finished_alongside_it(
    fake_nmap: FakeNmap, store: Store, ruleset: RuleSet
) -> None:
    fake_nmap.configure(delay=1.0, fail=["127.0.70.32"])
    options = dataclasses.replace(OPTIONS, concurrency=2)
    scan_id, targets = begin(store, ruleset, ["127.0.70.31-32"], options)
    with pytest.raises(ScanFailedError):
        run_scan(
            store, scan_id, targets, ruleset, options, _SlowObserver(hold=3.0, interrupt=False)
        )
    assert store.get_scan(scan_id).status is ScanStatus.FAILED
    assert store.done_hosts(scan_id) == {"127.0.70.31"}


# --- resume scans what the scan meant, with the rules it started with ----------------------


def test_resume_uses_the_targets_expanded_at_the_start(
    fake_nmap: FakeNmap, store: Store, ruleset: RuleSet, tmp_path: Path
) -> None:
    listing = tmp_path / "hosts.txt"
    listing.write_text("127.0.70.41\n127.0.70.42,127.0.70.44\n")
    scope_file = tmp_path / "scope.txt"
    scope_file.write_text("127.0.70.40/29\n")
    scope = Scope.parse([f"@{scope_file}"])
    scan_id, _ = begin(store, ruleset, [f"@{listing}"], scope=scope)
    # The files change (or vanish) after the start; the resumed scan does not care.
    listing.write_text("127.0.70.99\n")
    scope_file.unlink()
    scan = store.get_scan(scan_id)
    targets, options = resume_targets(scan)
    assert targets.canonical() == ["127.0.70.41-127.0.70.42", "127.0.70.44"]
    resumed_scope = resume_scope(scan)
    assert resumed_scope is not None and resumed_scope.canonical() == ["127.0.70.40-127.0.70.47"]
    run_scan(store, scan_id, targets, ruleset, options)
    assert fake_nmap.calls() == [["127.0.70.41"], ["127.0.70.42"], ["127.0.70.44"]]


def test_resume_does_not_resolve_names_again(store: Store, ruleset: RuleSet) -> None:
    asked: list[str] = []

    def first_dns(name: str) -> list[str]:
        asked.append(name)
        return ["127.0.70.51", "127.0.70.52"]

    targets = parse_targets(["app.lab.example"], resolve=first_dns)
    scan_id = start_scan(store, targets, scope=None, excludes=(), ruleset=ruleset, options=OPTIONS)

    def moved_dns(name: str) -> list[str]:
        asked.append(name)
        return ["127.0.70.99"]

    resumed, _ = resume_targets(store.get_scan(scan_id), resolve=moved_dns)
    assert asked == ["app.lab.example"]  # only when the scan started
    assert [(t.address, t.hostname) for t in resumed] == [
        ("127.0.70.51", "app.lab.example"),
        ("127.0.70.52", "app.lab.example"),
    ]


def test_a_scan_stored_without_expanded_targets_resumes_from_its_specs(store: Store) -> None:
    scan_id = store.create_scan(
        targets=["old.lab.example"], scope=[], excludes=[], packs=[], rules=[],
        options=OPTIONS.as_dict(), hosts_total=1,
    )  # fmt: skip
    targets, _ = resume_targets(store.get_scan(scan_id), resolve=lambda name: ["127.0.70.61"])
    assert [(t.address, t.hostname) for t in targets] == [("127.0.70.61", "old.lab.example")]


def test_resume_with_other_rules_is_refused_naming_them(store: Store, ruleset: RuleSet) -> None:
    scan_id, _ = begin(store, ruleset, ["127.0.70.71"])
    scan = store.get_scan(scan_id)
    check_resume_rules(scan, ruleset)  # the same rules: fine
    first = ruleset.packs[0]
    fewer = RuleSet([dataclasses.replace(first, rules=first.rules[1:]), *ruleset.packs[1:]])
    with pytest.raises(ConfigError) as info:
        check_resume_rules(scan, fewer)
    message = str(info.value)
    assert f"scan {scan_id} was started with other rules" in message
    assert first.rules[0].id in message and "not loaded" in message


# --- undetermined checks reach the store ---------------------------------------------------


@pytest.fixture
def loops() -> Iterator[list[ServiceLoop]]:
    started: list[ServiceLoop] = []
    yield started
    for loop in started:
        loop.close()


def test_a_check_without_an_answer_leaves_its_rules_undetermined(
    fake_nmap: FakeNmap, store: Store, ruleset: RuleSet, loops: list[ServiceLoop]
) -> None:
    address = "127.0.71.10"
    fake_nmap.configure(services={address: [[2375, "open", "docker"]]})
    rule = "baseline.docker-api-unauthenticated"

    def scan() -> Any:
        scan_id, targets = begin(store, ruleset, [address])
        return run_scan(store, scan_id, targets, ruleset, OPTIONS)

    answering = ServiceLoop()
    loops.append(answering)
    answering.serve(address, 2375, docker_api())
    first = scan()
    [finding] = [f for f in store.findings(scan_id=first.scan.id) if f.rule_id == rule]
    answering.close()

    # The API still listens but does not answer: the check applied and could not tell.
    silent = ServiceLoop()
    loops.append(silent)
    silent.serve(address, 2375, hang_up())
    second = scan()
    assert second.fixed == 0
    assert store.get_finding(finding.fingerprint).status is FindingStatus.OPEN
    silent.close()

    # Control: the port is closed now, nothing to check, so the same finding is fixed.
    fake_nmap.configure(services={address: [[2375, "closed", "docker"]]})
    third = scan()
    assert third.fixed >= 1
    assert store.get_finding(finding.fingerprint).status is FindingStatus.FIXED


def test_undetermined_rules_are_those_reading_a_silent_check(ruleset: RuleSet) -> None:
    docker = Service(port=2375, proto="tcp", state="open", name="docker", checks={"docker": {}})
    answered = dataclasses.replace(docker, port=2376, checks={"docker": {"unauthenticated": True}})
    host = Host("127.0.71.11", HostState.UP, services=(docker, answered))
    everything = undetermined_rules(ruleset, [host])
    # No advisory database was used: the vulnerability rule is undetermined on the host's
    # packages and on every open port.
    vulns = "vulns.known-vulnerability"
    assert {(p, port) for _, p, port, rule in everything if rule == vulns} == {
        ("", 0),
        ("tcp", 2375),
        ("tcp", 2376),
    }
    everything = [row for row in everything if row[3] != vulns]
    # Host-level rows: the host was not inventoried, so the rules reading inventory facts
    # (rules/ssh.yaml) cannot be told either.
    found = [row for row in everything if row[1] != ""]
    inventory = {rule for _, proto, port, rule in everything if (proto, port) == ("", 0)}
    assert inventory == {r.id for r in ruleset.rules if r.id.startswith("ssh.")}
    expected = {r.id for r in ruleset.rules if "docker" in r.check_namespaces}
    assert expected and {rule for *_, rule in found} == expected
    assert {(a, p, port) for a, p, port, _ in found} == {("127.0.71.11", "tcp", 2375)}
    # The empty mapping adds no fact: rules see the check's facts as absent.
    assert not any(name.startswith("docker.") for name in service_facts(host, docker))
    unauthenticated = "baseline.docker-api-unauthenticated"
    assert unauthenticated in expected
    assert [
        (f.rule_id, f.port) for f in evaluate(ruleset, [host]) if f.rule_id == unauthenticated
    ] == [(unauthenticated, 2376)]
    down = Host("127.0.71.12", HostState.DOWN, services=(docker,))
    assert undetermined_rules(ruleset, [down]) == []


# --- the CLI refuses before anything is recorded -------------------------------------------


def posture(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), env={"COLUMNS": "200"})


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--concurrency", "0", "--concurrency must be between 1 and 64, not 0"),
        ("--chunk-size", "0", "--chunk-size must be between 1 and 4096, not 0"),
        ("--timeout", "soon", "--timeout 'soon' is not a time nmap understands"),
        ("--timeout", "0s", "is not a time nmap understands"),
    ],
)
def test_bad_scan_options_exit_2_before_a_scan_exists(
    fake_nmap: FakeNmap, tmp_path: Path, flag: str, value: str, message: str
) -> None:
    db = tmp_path / "cli.db"
    result = posture("scan", "127.0.70.81", flag, value, "--db", str(db))
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not db.exists() and fake_nmap.calls() == []


def test_resume_of_a_missing_database_creates_nothing(fake_nmap: FakeNmap, tmp_path: Path) -> None:
    db = tmp_path / "typo.db"
    result = posture("scan", "--resume", "1", "--db", str(db))
    assert result.exit_code == 2 and "no database" in result.output
    assert not db.exists()


def test_resume_with_an_extra_pack_exits_2_naming_its_rules(
    fake_nmap: FakeNmap, tmp_path: Path
) -> None:
    db = tmp_path / "cli.db"
    fake_nmap.configure(fail=["127.0.70.91"])
    assert posture("scan", "127.0.70.91", "--ports", "23", "--db", str(db)).exit_code == 3
    pack = tmp_path / "extra.yaml"
    pack.write_text(
        'pack: extra\nversion: "1"\nrules:\n  - id: extra.ssh-seen\n    title: SSH seen\n'
        "    severity: info\n    when:\n      service.name: ssh\n"
        "    remediation: Nothing to do.\n"
        "    references: [https://www.rfc-editor.org/rfc/rfc4253]\n"
    )
    fake_nmap.configure()
    refused = posture("scan", "--resume", "1", "--rules", str(pack), "--db", str(db))
    assert refused.exit_code == 2, refused.output
    assert "other rules" in refused.output and "extra.ssh-seen" in refused.output
    assert len(fake_nmap.calls()) == 1
    resumed = posture("scan", "--resume", "1", "--db", str(db), "--json")
    assert resumed.exit_code == 0, resumed.output
    doc = json.loads(resumed.output)
    assert doc["status"] == "completed" and doc["hosts"] == {"total": 1, "up": 1}
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT status FROM scans").fetchone() == ("completed",)


def test_resume_bookkeeping_keys_are_the_ones_reports_hide() -> None:
    from scanner import scan as scan_module
    from scanner.model import RESUME_OPTION_KEYS

    keys = {
        scan_module._EXPANDED_TARGETS,
        scan_module._HOSTNAMES,
        scan_module._EXPANDED_SCOPE,
        scan_module._RULE_IDS,
    }
    assert keys == RESUME_OPTION_KEYS


def test_vulnerability_findings_live_through_scans_with_and_without_answers(
    ruleset: RuleSet, store: Store, fake_nmap: FakeNmap, tmp_path: Path
) -> None:
    """A vulnerable version is found; a scan without the advisory database, or one where the
    port's software is unknown, cannot tell and keeps it open; the patched version fixes it."""
    from scanner.vulndb.db import import_files

    data = Path(__file__).parent / "vulndb" / "data"
    vulndb = tmp_path / "advisories.sqlite"
    import_files(vulndb, [data / "nvd-2.0-daemons.json", data / "epss-daemons.csv"])
    address = "127.0.71.21"
    with_db = dataclasses.replace(OPTIONS, ports="22", vulndb=str(vulndb))

    def scan(options: ScanOptions, *row: object) -> Any:
        fake_nmap.configure(services={address: [[22, "open", "ssh", *row]]})
        scan_id, targets = begin(store, ruleset, [address], options)
        return run_scan(store, scan_id, targets, ruleset, options)

    first = scan(with_db, "OpenSSH", "9.2p1")
    (finding,) = [f for f in store.findings(scan_id=first.scan.id) if "CVE-2023-38408" in f.cves]
    assert finding.rule_id == "vulns.known-vulnerability" and finding.port == 22
    assert finding.evidence["vuln.epss"] == 0.62 and finding.evidence["vuln.source"] == "nmap"
    assert scan(dataclasses.replace(with_db, vulndb=None), "OpenSSH", "9.2p1").fixed == 0
    assert scan(with_db).fixed == 0  # ssh, but which version: nmap could not say
    assert store.get_finding(finding.fingerprint).status is FindingStatus.OPEN
    patched = scan(with_db, "OpenSSH", "9.3p2")
    assert patched.fixed == 1
    assert store.get_finding(finding.fingerprint).status is FindingStatus.FIXED
