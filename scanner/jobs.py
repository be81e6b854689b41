"""Scheduled jobs: named scans from posture.toml (`[jobs.NAME]`) that run end to end (scan,
reports in a dated folder, retention, a webhook), one run at a time per job, and are installed as
a systemd timer, or a crontab line where systemd is absent.

    [jobs.weekly-internal]
    targets = ["10.20.0.0/24"]
    scope = ["10.20.0.0/16"]           # default: the config's scope
    ports = "top1000"                  # default: [scan] ports
    packs = ["packs/internal.yaml"]    # more rule packs, relative to posture.toml
    formats = ["html", "json", "sarif"] # the technical report (report.html, ...)
    reports = [                        # and any other profile, each in its formats
      { profile = "executive", formats = ["html", "pdf"] },
      { profile = "compliance", framework = "pci-dss-4.0", formats = ["html"] },
    ]
    output = "reports/weekly-internal" # relative to posture.toml
    retention = 12                     # run folders kept
    webhook = "https://hooks.example/posture"   # optional
    notify = "always"                  # or "new-critical": only when new critical findings appear
"""

from __future__ import annotations

import fcntl
import json
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scanner.errors import ConfigError

JOB_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
RUN_FOLDER = re.compile(r"\d{8}T\d{6}Z(-\d{1,4})?")
_JOB_KEYS = {"targets", "scope", "exclude", "ports", "formats", "output", "retention", "webhook"}
_JOB_KEYS |= {"notify", "packs", "reports"}
NOTIFY = ("always", "new-critical", "never")
WEBHOOK_TIMEOUT = 10.0
WEBHOOK_ATTEMPTS = 3


@dataclass(frozen=True)
class ReportSpec:
    """One report profile a job writes, in each of its formats."""

    profile: str
    formats: tuple[str, ...]
    framework: str = "pci-dss-4.0"

    def file_name(self, fmt: str) -> str:
        from scanner.report import FORMATS

        extension = FORMATS[fmt].extension if fmt in FORMATS else fmt
        if self.profile == "technical":
            return f"report.{extension}"
        if self.profile == "compliance":
            return f"compliance-{self.framework}.{extension}"
        return f"{self.profile}.{extension}"


@dataclass(frozen=True)
class Job:
    name: str
    targets: tuple[str, ...]
    scope: tuple[str, ...]
    exclude: tuple[str, ...]
    ports: str | None
    formats: tuple[str, ...]
    output: Path
    retention: int
    webhook: str | None
    notify: str
    packs: tuple[Path, ...] = ()
    reports: tuple[ReportSpec, ...] = ()


def _strings(value: Any, key: str, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(f"{where}: '{key}' must be a string or a list of strings")


def parse_jobs(raw: Any, base: Path, where: str) -> dict[str, Job]:
    """The `[jobs]` table of posture.toml; every problem names the file and the job."""
    from scanner.report import FORMATS  # only configs with jobs pay for the report formats

    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: [jobs] must be a table of [jobs.NAME] tables")
    jobs = {}
    for name, table in raw.items():
        at = f"{where}: [jobs.{name}]"
        if not JOB_NAME.fullmatch(name):
            raise ConfigError(f"{at}: a job name is lower-case letters, digits, - and _")
        if not isinstance(table, dict):
            raise ConfigError(f"{at} must be a table")
        unknown = set(table) - _JOB_KEYS
        if unknown:
            raise ConfigError(f"{at}: unknown key(s): {', '.join(sorted(unknown))}")
        if "targets" not in table:
            raise ConfigError(f"{at}: missing 'targets'")
        default_formats = [] if "reports" in table else ["html"]
        formats = _strings(table.get("formats", default_formats), "formats", at)
        bad = [f for f in formats if f not in (*FORMATS, "pdf")]
        if bad:
            known = ", ".join((*FORMATS, "pdf"))
            raise ConfigError(f"{at}: unknown format(s) {', '.join(bad)} (known: {known})")
        reports = _reports(table.get("reports", []), at)
        if formats:
            reports = (ReportSpec("technical", formats), *reports)
        packs = tuple(base / p for p in _strings(table.get("packs", []), "packs", at))
        retention = table.get("retention", 12)
        if isinstance(retention, bool) or not isinstance(retention, int) or retention < 1:
            raise ConfigError(f"{at}: 'retention' must be a whole number of runs, at least 1")
        notify = table.get("notify", "always")
        if notify not in NOTIFY:
            raise ConfigError(f"{at}: 'notify' must be one of: {', '.join(NOTIFY)}")
        webhook = table.get("webhook")
        if webhook is not None and (
            not isinstance(webhook, str) or not re.match(r"https?://[^\s/]+", webhook)
        ):
            raise ConfigError(f"{at}: 'webhook' must be an http(s) URL")
        ports = table.get("ports")
        if ports is not None and not isinstance(ports, str):
            raise ConfigError(f"{at}: 'ports' must be a string")
        output = table.get("output", f"posture-jobs/{name}")
        if not isinstance(output, str):
            raise ConfigError(f"{at}: 'output' must be a string")

        def here(items: tuple[str, ...]) -> tuple[str, ...]:
            # "@file" lists are relative to posture.toml, like every path in it
            return tuple(f"@{base / i[1:]}" if i.startswith("@") else i for i in items)

        jobs[name] = Job(
            name=name,
            targets=here(_strings(table["targets"], "targets", at)),
            scope=here(_strings(table.get("scope", []), "scope", at)),
            exclude=here(_strings(table.get("exclude", []), "exclude", at)),
            ports=ports,
            formats=formats,
            output=base / output,
            retention=retention,
            webhook=webhook,
            notify=notify,
            packs=packs,
            reports=reports,
        )
    return jobs


def _reports(raw: Any, at: str) -> tuple[ReportSpec, ...]:
    """`reports = [{ profile = ..., formats = [...], framework = ... }, ...]`."""
    from scanner.report.profiles import FRAMEWORKS, PROFILES, profile_formats

    if not isinstance(raw, list) or not all(isinstance(r, dict) for r in raw):
        raise ConfigError(
            f"{at}: 'reports' must be a list of tables {{ profile = ..., formats = [...] }}"
        )
    specs = []
    for index, table in enumerate(raw, start=1):
        where = f"{at} reports #{index}"
        unknown = set(table) - {"profile", "formats", "framework"}
        if unknown:
            raise ConfigError(f"{where}: unknown key(s): {', '.join(sorted(unknown))}")
        profile = table.get("profile")
        if profile not in PROFILES:
            raise ConfigError(f"{where}: 'profile' must be one of: {', '.join(PROFILES)}")
        formats = _strings(table.get("formats", ["html"]), "formats", where)
        bad = [f for f in formats if f not in profile_formats(profile)]
        if bad:
            known = ", ".join(profile_formats(profile))
            raise ConfigError(
                f"{where}: the {profile} profile renders {known}, not {', '.join(bad)}"
            )
        framework = table.get("framework", "pci-dss-4.0")
        if "framework" in table and profile != "compliance":
            raise ConfigError(f"{where}: 'framework' belongs to the compliance profile")
        if framework not in FRAMEWORKS:
            raise ConfigError(f"{where}: 'framework' must be one of: {', '.join(FRAMEWORKS)}")
        specs.append(ReportSpec(profile, formats, framework))
    return tuple(specs)


# --- runs ----------------------------------------------------------------------------------------


@contextmanager
def job_lock(job: Job) -> Iterator[None]:
    """One run of a job at a time: a second one fails at once, naming the job."""
    job.output.mkdir(parents=True, exist_ok=True)
    with (job.output / ".lock").open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(
                f"job {job.name} is already running (lock {job.output / '.lock'})"
            ) from None
        yield


def run_folder(job: Job, moment: datetime) -> Path:
    """A new folder for one run, named by its UTC start; a second run within the same second
    gets "-2", then "-3" (they still sort in run order)."""
    stamp = moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    for number in range(1, 10_000):
        folder = job.output / (stamp if number == 1 else f"{stamp}-{number}")
        try:
            folder.mkdir(parents=True)
        except FileExistsError:
            continue
        return folder
    raise ConfigError(f"job {job.name}: too many runs started at {stamp}")


def prune(job: Job) -> list[Path]:
    """Delete the oldest run folders beyond the job's retention; what was deleted."""

    def started(folder: Path) -> tuple[str, int]:
        stamp, _, number = folder.name.partition("-")
        return stamp, int(number or 1)

    runs = sorted(
        (p for p in job.output.iterdir() if p.is_dir() and RUN_FOLDER.fullmatch(p.name)),
        key=started,
    )
    doomed = runs[: max(0, len(runs) - job.retention)]
    for folder in doomed:
        shutil.rmtree(folder)
    return doomed


def record_run(job: Job, outcome: dict[str, Any]) -> None:
    """The last run's outcome, for `posture job list`."""
    from scanner.report.output import write_atomically

    write_atomically(job.output / "last-run.json", json.dumps(outcome, indent=2) + "\n")


def last_run(job: Job) -> dict[str, Any] | None:
    try:
        found = json.loads((job.output / "last-run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def notify(job: Job, payload: dict[str, Any]) -> str | None:
    """POST the payload to the job's webhook, retrying with backoff; None on success, else why
    it failed (the run itself stands)."""
    assert job.webhook is not None
    from scanner.webhook import post_json

    _, error = post_json(
        job.webhook, payload, timeout=WEBHOOK_TIMEOUT, attempts=WEBHOOK_ATTEMPTS, backoff=0.5
    )
    return error


# --- schedules -----------------------------------------------------------------------------------

_DOW = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")
_DOW_NAMES = {name.lower(): i for i, name in enumerate(_DOW)}
_MONTH_NAMES = {
    name: i + 1
    for i, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
    )
}
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12))


def _cron_values(text: str, low: int, high: int, names: dict[str, int], what: str) -> list[int]:
    values: set[int] = set()
    for part in text.lower().split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            raise ConfigError(f"cron {what}: bad step in {part!r}")
        if base == "*":
            first, last = low, high
        else:
            start, dash, end = base.partition("-")
            try:
                first = names[start] if start in names else int(start)
                last = (names[end] if end in names else int(end)) if dash else first
            except ValueError:
                raise ConfigError(f"cron {what}: {part!r} is not a number or a range") from None
            if step is not None and not dash:
                last = high
        if not low <= first <= last <= high:
            raise ConfigError(f"cron {what}: {part!r} is outside {low}-{high}")
        values.update(range(first, last + 1, step or 1))
    return sorted(values)


def cron_to_calendar(expression: str) -> str:
    """A cron schedule (5 fields: minute hour day-of-month month day-of-week) as systemd's
    OnCalendar=. Restricting both day fields is refused: cron ORs them, systemd ANDs them."""
    fields = expression.split()
    if len(fields) != 5:
        raise ConfigError(f"cron {expression!r}: expected 5 fields (minute hour day month weekday)")
    minute, hour, day, month, weekday = fields
    if day != "*" and weekday != "*":
        raise ConfigError(
            f"cron {expression!r}: both day of month and day of week are set; cron runs when "
            "either matches and a systemd timer only when both do: give one of them"
        )
    rendered = []
    for text, (what, low, high) in zip((minute, hour, day, month), _FIELDS, strict=True):
        if text == "*":
            rendered.append("*")
            continue
        names = _MONTH_NAMES if what == "month" else {}
        values = _cron_values(text, low, high, names, what)
        rendered.append(",".join(f"{v:02d}" for v in values))
    calendar = f"*-{rendered[3]}-{rendered[2]} {rendered[1]}:{rendered[0]}:00"
    if weekday != "*":
        days = sorted({d % 7 for d in _cron_values(weekday, 0, 7, _DOW_NAMES, "day of week")})
        calendar = ",".join(_DOW[d] for d in days) + " " + calendar
    return calendar


__all__ = [
    "Job",
    "cron_to_calendar",
    "job_lock",
    "last_run",
    "notify",
    "parse_jobs",
    "prune",
    "record_run",
    "run_folder",
]
