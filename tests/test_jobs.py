"""Scheduled jobs: config checks, cron schedules as systemd timers (checked by systemd-analyze)
or crontab lines, and `posture job run` end to end against a real service on 127.0.99.5, with a
webhook receiver on 127.0.99.1, retention and the per-job lock; a job writing several report
profiles (packs, owners, PDF) against 127.0.101.5, its webhook on 127.0.101.1."""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from demo.lab import ServiceLoop, telnet
from scanner.config import load_config
from scanner.errors import ConfigError
from scanner.jobs import cron_to_calendar

ROOT = Path(__file__).resolve().parents[1]


def posture(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scanner", *args],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=cwd,
        env=None,
        check=False,
    )


@pytest.mark.parametrize(
    ("cron", "calendar"),
    [
        ("0 3 * * 1", "Mon *-*-* 03:00:00"),
        ("*/15 * * * *", "*-*-* *:00,15,30,45:00"),
        ("30 2 1 */3 *", "*-01,04,07,10-01 02:30:00"),
        ("0 8-18/2 * * mon-fri", "Mon,Tue,Wed,Thu,Fri *-*-* 08,10,12,14,16,18:00:00"),
        ("5 4 * * 0,7", "Sun *-*-* 04:05:00"),
        ("0 0 15 jan,jul *", "*-01,07-15 00:00:00"),
    ],
)
def test_cron_becomes_on_calendar(cron: str, calendar: str) -> None:
    assert cron_to_calendar(cron) == calendar
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip(
            "systemd-analyze is not installed: the rendering was checked, not systemd's reading"
        )
    done = subprocess.run(
        [analyze, "calendar", calendar], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("cron", "why"),
    [
        ("0 3 * *", "expected 5 fields"),
        ("0 3 1 * 1", "both day of month and day of week"),
        ("61 * * * *", "outside 0-59"),
        ("0 3 * * funday", "is not a number or a range"),
        ("*/0 * * * *", "bad step"),
    ],
)
def test_bad_cron_is_refused(cron: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        cron_to_calendar(cron)


@pytest.mark.parametrize(
    ("table", "why"),
    [
        ("[jobs.Weekly]\ntargets = '127.0.99.5'", "a job name is lower-case"),
        ("[jobs.w]\nports = '22'", "missing 'targets'"),
        ("[jobs.w]\ntargets = '127.0.99.5'\nformats = ['docx']", "unknown format(s) docx"),
        ("[jobs.w]\ntargets = '127.0.99.5'\nretention = 0", "'retention' must be"),
        ("[jobs.w]\ntargets = '127.0.99.5'\nnotify = 'sometimes'", "'notify' must be one of"),
        ("[jobs.w]\ntargets = '127.0.99.5'\nwebhook = 'ftp://x'", "'webhook' must be an http"),
        ("[jobs.w]\ntargets = '127.0.99.5'\nschedule = '0 3 * * 1'", "unknown key(s): schedule"),
        (
            "[jobs.w]\ntargets = '127.0.99.5'\nreports = [{ profile = 'board' }]",
            "'profile' must be one of: technical, executive, compliance",
        ),
        (
            "[jobs.w]\ntargets = '127.0.99.5'\n"
            "reports = [{ profile = 'executive', formats = ['sarif'] }]",
            "the executive profile renders html, md, json, pdf, not sarif",
        ),
        (
            "[jobs.w]\ntargets = '127.0.99.5'\n"
            "reports = [{ profile = 'executive', framework = 'cis-8' }]",
            "'framework' belongs to the compliance profile",
        ),
    ],
)
def test_bad_jobs_name_the_file_and_job(tmp_path: Path, table: str, why: str) -> None:
    config = tmp_path / "posture.toml"
    config.write_text(table + "\n")
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert str(config) in str(caught.value) and why in str(caught.value)


class _Hook(BaseHTTPRequestHandler):
    received: list[dict] = []  # noqa: RUF012 - one receiver per test run

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        _Hook.received.append(json.loads(self.rfile.read(min(length, 1_000_000))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    _Hook.received = []
    server = HTTPServer(("127.0.99.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    yield f"http://127.0.99.1:{server.server_address[1]}/hook"
    server.shutdown()
    thread.join(10)
    server.server_close()


@pytest.fixture
def job_config(tmp_path: Path, webhook: str) -> Iterator[Path]:
    loop = ServiceLoop()
    loop.serve("127.0.99.5", 2323, telnet("jobhost"))
    config = tmp_path / "posture.toml"
    config.write_text(
        f"""db = "posture.db"
[jobs.nightly]
targets = ["127.0.99.5"]
ports = "2323"
formats = ["html", "json"]
output = "out"
retention = 1
webhook = "{webhook}"
"""
    )
    yield config
    loop.close()


@pytest.mark.skipif(shutil.which("nmap") is None, reason="needs nmap (apt-get install nmap)")
def test_job_runs_end_to_end_with_retention_webhook_and_lock(job_config: Path) -> None:
    base = ["--config", str(job_config), "job"]
    first = posture(*base, "run", "nightly", "--json")
    assert first.returncode == 0, first.stderr
    one = json.loads(first.stdout)
    assert one["status"] == "completed" and one["counts"]["high"] >= 1  # telnet on 2323
    reports = [Path(p) for p in one["reports"]]
    assert [p.name for p in reports] == ["report.html", "report.json"]
    assert json.loads(reports[1].read_text())["scan"]["id"] == one["scan_id"]
    assert one["webhook"] == "sent" and _Hook.received[0]["scan_id"] == one["scan_id"]
    again = posture(*base, "run", "nightly", "--json")  # may start within the same second
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout)
    # retention 1: the first run's folder is gone, the second's is there
    assert second["pruned"] == [str(reports[0].parent)]
    assert not reports[0].parent.exists() and Path(second["reports"][0]).exists()
    assert second["new"] == 0 and len(_Hook.received) == 2
    listed = json.loads(posture(*base, "list", "--json").stdout)
    assert [(j["name"], j["last_status"], j["last_scan_id"]) for j in listed] == [
        ("nightly", "completed", second["scan_id"])
    ]
    # A run while another holds the job's lock fails at once, naming the job.
    with (job_config.parent / "out" / ".lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        busy = posture(*base, "run", "nightly")
    assert busy.returncode == 2 and "job nightly is already running" in busy.stderr


def test_install_writes_a_timer_and_uninstall_removes_it(job_config: Path, tmp_path: Path) -> None:
    units = tmp_path / "units"
    base = ["--config", str(job_config), "job"]
    done = posture(*base, "install", "nightly", "--cron", "0 3 * * 1", "--unit-dir", str(units))
    assert done.returncode == 0, done.stderr
    timer = (units / "posture-job-nightly.timer").read_text()
    service = (units / "posture-job-nightly.service").read_text()
    assert "OnCalendar=Mon *-*-* 03:00:00" in timer and "Persistent=true" in timer
    assert f"--config {job_config} job run nightly" in service
    bad = posture(*base, "install", "nightly", "--cron", "0 3 1 * 1", "--unit-dir", str(units))
    assert bad.returncode == 2 and "both day of month and day of week" in bad.stderr
    gone = posture(*base, "uninstall", "nightly", "--unit-dir", str(units))
    assert gone.returncode == 0 and not list(units.iterdir())
    missing = posture(*base, "install", "weekly", "--cron", "0 3 * * 1")
    assert missing.returncode == 2 and "no job 'weekly'" in missing.stderr


@pytest.mark.skipif(
    shutil.which("crontab") is None or Path("/run/systemd/system").is_dir(),
    reason="needs crontab (apt-get install cron) on a machine without systemd",
)
def test_without_systemd_a_crontab_line_is_added_and_removed(job_config: Path) -> None:
    saved = subprocess.run(["crontab", "-l"], capture_output=True, text=True, check=False)
    base = ["--config", str(job_config), "job"]
    try:
        done = posture(*base, "install", "nightly", "--cron", "*/30 * * * *")
        assert done.returncode == 0, done.stderr
        table = subprocess.run(["crontab", "-l"], capture_output=True, text=True, check=True)
        (line,) = [x for x in table.stdout.splitlines() if x.endswith("# posture-job:nightly")]
        assert line.startswith("*/30 * * * * ") and "job run nightly" in line
        listed = json.loads(posture(*base, "list", "--json").stdout)
        assert listed[0]["schedule"] == "cron: */30 * * * *"
        assert posture(*base, "uninstall", "nightly").returncode == 0
        after = subprocess.run(["crontab", "-l"], capture_output=True, text=True, check=False)
        assert "posture-job:nightly" not in after.stdout
    finally:  # the machine's own crontab, as it was
        if saved.returncode == 0:
            subprocess.run(["crontab", "-"], input=saved.stdout, text=True, check=True)
        else:
            subprocess.run(["crontab", "-r"], capture_output=True, check=False)


def test_runs_started_in_the_same_second_get_their_own_folders(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from scanner.jobs import Job, prune, run_folder

    job = Job("j", ("127.0.99.5",), (), (), None, ("json",), tmp_path / "out", 2, None, "never")
    moment = datetime(2026, 11, 24, 3, 0, 0, tzinfo=UTC)
    names = [run_folder(job, moment).name for _ in range(11)]
    assert names[:3] == ["20261124T030000Z", "20261124T030000Z-2", "20261124T030000Z-3"]
    pruned = [p.name for p in prune(job)]  # all but the newest 2: "-10" and "-11"
    assert pruned == names[:9]
    assert sorted(p.name for p in job.output.iterdir()) == [names[9], names[10]]


PACK = """pack: jobtest
version: 1.0.0
rules:
  - id: jobtest.telnet-banner
    title: Something answers on port 2324
    severity: medium
    when: {port: 2324, proto: tcp}
    remediation: Turn it off.
    references: ["https://www.rfc-editor.org/rfc/rfc854"]
    controls: ["PCI-DSS-4.0:2.2.4"]
"""


@pytest.fixture
def webhook_101() -> Iterator[str]:
    """The webhook receiver on 127.0.101.1 (the profile tests' own block)."""
    _Hook.received = []
    server = HTTPServer(("127.0.101.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield f"http://127.0.101.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


@pytest.mark.skipif(shutil.which("nmap") is None, reason="needs nmap (apt-get install nmap)")
def test_a_job_names_its_packs_and_report_profiles(tmp_path: Path, webhook_101: str) -> None:
    from scanner.errors import ToolMissingError
    from scanner.report.pdf import chromium

    try:
        chromium()
    except ToolMissingError:
        pytest.skip("needs chromium for the PDF report (apt-get install chromium)")
    loop = ServiceLoop()
    loop.serve("127.0.101.5", 2324, telnet("profiles"))
    try:
        (tmp_path / "packs").mkdir()
        (tmp_path / "packs" / "jobtest.yaml").write_text(PACK)
        config = tmp_path / "posture.toml"
        config.write_text(
            f"""db = "posture.db"
[[owners]]
owner = "team-lab"
match = ["127.0.101.0/24"]

[jobs.monthly]
targets = ["127.0.101.5"]
ports = "2324"
packs = ["packs/jobtest.yaml"]
formats = ["json"]
reports = [
  {{ profile = "executive", formats = ["html", "json", "pdf"] }},
  {{ profile = "compliance", framework = "pci-dss-4.0", formats = ["md"] }},
]
output = "out"
webhook = "{webhook_101}"
"""
        )
        done = posture("--config", str(config), "job", "run", "monthly", "--json")
        assert done.returncode == 0, done.stderr
        outcome = json.loads(done.stdout)
        names = [Path(p).name for p in outcome["reports"]]
        assert names == [
            "report.json",
            "executive.html",
            "executive.json",
            "executive.pdf",
            "compliance-pci-dss-4.0.md",
        ]
        folder = Path(outcome["reports"][0]).parent
        assert folder.parent == tmp_path / "out" and all(
            Path(p).is_file() for p in outcome["reports"]
        )
        # The webhook body lists every report's path.
        assert outcome["webhook"] == "sent" and _Hook.received[0]["reports"] == outcome["reports"]
        technical = json.loads((folder / "report.json").read_text())
        assert technical["profile"] == "technical"
        mine = [f for f in technical["findings"] if f["rule_id"] == "jobtest.telnet-banner"]
        assert len(mine) == 1 and mine[0]["owner"] == "team-lab"  # the job reads [[owners]]
        executive = json.loads((folder / "executive.json").read_text())
        assert executive["scan"] == outcome["scan_id"]
        assert executive["coverage"]["targets"] == executive["coverage"]["hosts_up"] == 1
        assert "<svg" in (folder / "executive.html").read_text()
        assert (folder / "executive.pdf").read_bytes().startswith(b"%PDF-")
        assert "2.2.4" in (folder / "compliance-pci-dss-4.0.md").read_text()
    finally:
        loop.close()
