"""The run journal: one SQLite file holding every run, each step's intent (written before it
acts) and result (after), approvals, per-target locks, and the hash-chained audit log.

Every write is its own transaction (`BEGIN IMMEDIATE`, synchronous=FULL), so a run killed at any
instant leaves a journal that says exactly which side effects may have started.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import pwd
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scanner.respond.errors import RespondError

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY, playbook_id TEXT NOT NULL, playbook_version TEXT NOT NULL,
  playbook_path TEXT NOT NULL, playbook_sha256 TEXT NOT NULL, plan_hash TEXT NOT NULL,
  inputs TEXT NOT NULL, status TEXT NOT NULL, started TEXT NOT NULL, finished TEXT,
  pid INTEGER NOT NULL, hostname TEXT NOT NULL, actor TEXT NOT NULL, workdir TEXT NOT NULL,
  error TEXT, audit_head TEXT, audit_count INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS steps (
  run_id TEXT NOT NULL REFERENCES runs(id), key TEXT NOT NULL, seq INTEGER NOT NULL,
  section TEXT NOT NULL, step_id TEXT NOT NULL, address TEXT NOT NULL, uses TEXT NOT NULL,
  status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, params TEXT, prestate TEXT,
  outputs TEXT, error TEXT, started TEXT, finished TEXT,
  compensation TEXT, compensation_error TEXT,
  PRIMARY KEY (run_id, key)
);
CREATE TABLE IF NOT EXISTS approvals (
  run_id TEXT NOT NULL REFERENCES runs(id), step_id TEXT NOT NULL, plan_hash TEXT NOT NULL,
  approver TEXT NOT NULL, how TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (run_id, step_id)
);
CREATE TABLE IF NOT EXISTS locks (
  target TEXT PRIMARY KEY, run_id TEXT NOT NULL, pid INTEGER NOT NULL, hostname TEXT NOT NULL,
  acquired TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
  run_id TEXT NOT NULL, seq INTEGER NOT NULL, at TEXT NOT NULL, actor TEXT NOT NULL,
  kind TEXT NOT NULL, data TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL, mac TEXT,
  PRIMARY KEY (run_id, seq)
);
"""

GENESIS = "0" * 64
AUDIT_COPY = "audit.jsonl"
_RUN_FIELDS = {"status", "finished", "pid", "hostname", "error"}
_STEP_FIELDS = {"status", "attempts", "prestate", "outputs", "error", "finished", "compensation"}
_STEP_FIELDS |= {"compensation_error"}


def _column(name: str, allowed: set[str]) -> str:
    if name not in allowed:
        raise ValueError(f"no such column: {name}")
    return name


LOCK_POLL = 0.2


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def entry_hash(prev: str, run_id: str, seq: int, at: str, actor: str, kind: str, data: str) -> str:
    body = canonical([prev, run_id, seq, at, actor, kind, data])
    return hashlib.sha256(body.encode()).hexdigest()


def audit_key() -> bytes | None:
    """The key that signs audit entries (HMAC-SHA256 of each hash): $POSTURE_AUDIT_KEY, or the
    file $POSTURE_AUDIT_KEY_FILE (mode 0600 or stricter). Without a key the chain still shows
    any edit made by someone who does not recompute every later hash; with one, nobody without
    the key can rewrite the chain at all."""
    text = os.environ.get("POSTURE_AUDIT_KEY")
    path = os.environ.get("POSTURE_AUDIT_KEY_FILE")
    if not text and path:
        try:
            info = os.stat(path)
            if info.st_mode & 0o077:
                raise RespondError(f"{path}: the audit key file is readable by others: chmod 600")
            text = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise RespondError(f"{path}: cannot read the audit key: {exc.strerror}") from None
    if not text:
        return None
    if len(text) < 16:
        raise RespondError("the audit key must have at least 16 characters")
    return text.encode()


def sign(key: bytes, digest: str) -> str:
    return hmac.new(key, digest.encode(), hashlib.sha256).hexdigest()


def actor() -> str:
    """Who acts: the login behind sudo when there is one, and the machine."""
    user = os.environ.get("SUDO_USER")
    if not user:
        try:
            user = pwd.getpwuid(os.getuid()).pw_name
        except KeyError:
            user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie has exited too (a parent that never reaped it, e.g. a test's Popen).
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


@dataclass(frozen=True)
class RunRow:
    id: str
    playbook_id: str
    playbook_version: str
    playbook_path: str
    playbook_sha256: str
    plan_hash: str
    inputs: dict[str, Any]
    status: str
    started: str
    finished: str | None
    pid: int
    hostname: str
    actor: str
    workdir: str
    error: str | None
    audit_head: str | None
    audit_count: int

    @property
    def crashed(self) -> bool:
        """Left `running` by a process that is gone (killed, crashed, machine restarted)."""
        return self.status in ("running", "rolling_back") and (
            self.hostname != socket.gethostname() or not pid_alive(self.pid)
        )


@dataclass(frozen=True)
class StepRow:
    key: str
    seq: int
    section: str
    step_id: str
    address: str
    uses: str
    status: str  # running, succeeded, failed, skipped
    attempts: int
    params: Any
    prestate: dict[str, Any] | None
    outputs: dict[str, Any] | None
    error: str | None
    started: str | None
    finished: str | None
    compensation: str | None  # None, running, done, failed
    compensation_error: str | None


@dataclass(frozen=True)
class AuditEntry:
    run_id: str
    seq: int
    at: str
    actor: str
    kind: str
    data: dict[str, Any]
    prev: str
    hash: str
    mac: str | None = None


def _read_copy(path: Path) -> list[dict[str, Any]] | None:
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        return None


class LockHeld(RespondError):
    pass


class Journal:
    """One journal file; safe to use from the threads of one run (writes are serialised)."""

    def __init__(self, path: Path, key: bytes | None = None) -> None:
        self.path = path
        self.key = key if key is not None else audit_key()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._mutex = threading.RLock()
        with self._mutex:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=30000")
            self._db.executescript(SCHEMA)
        with contextlib.suppress(OSError):
            os.chmod(path, 0o600)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._mutex:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # --- runs --------------------------------------------------------------------------

    def create_run(self, run: Mapping[str, Any]) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO runs (id, playbook_id, playbook_version, playbook_path, "
                "playbook_sha256, plan_hash, inputs, status, started, pid, hostname, actor, "
                "workdir) VALUES (:id, :playbook_id, :playbook_version, :playbook_path, "
                ":playbook_sha256, :plan_hash, :inputs, :status, :started, :pid, :hostname, "
                ":actor, :workdir)",
                {**run, "inputs": canonical(run["inputs"])},
            )

    def set_run(self, run_id: str, **fields: Any) -> None:
        names = ", ".join(f"{_column(k, _RUN_FIELDS)} = :{k}" for k in fields)
        with self._write() as db:
            db.execute(
                f"UPDATE runs SET {names} WHERE id = :run_id",  # noqa: S608 - allow-listed names
                {**fields, "run_id": run_id},
            )

    def run(self, run_id: str) -> RunRow:
        row = self._db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise RespondError(f"no run {run_id!r} in {self.path}")
        return RunRow(**{**dict(row), "inputs": json.loads(row["inputs"])})

    def runs(self, limit: int = 50) -> list[RunRow]:
        rows = self._db.execute("SELECT * FROM runs ORDER BY started DESC LIMIT ?", (limit,))
        return [RunRow(**{**dict(r), "inputs": json.loads(r["inputs"])}) for r in rows]

    # --- steps -------------------------------------------------------------------------

    def step_intent(self, run_id: str, key: str, seq: int, section: str, step_id: str,
                    address: str, uses: str, params: Any) -> None:  # fmt: skip
        with self._write() as db:
            db.execute(
                "INSERT INTO steps (run_id, key, seq, section, step_id, address, uses, status, "
                "params, started) VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?) "
                "ON CONFLICT (run_id, key) DO UPDATE SET status = 'running', "
                "params = excluded.params, error = NULL, started = excluded.started",
                (run_id, key, seq, section, step_id, address, uses, canonical(params), now()),
            )

    def step_update(self, run_id: str, key: str, **fields: Any) -> None:
        for name in ("prestate", "outputs"):
            if name in fields and fields[name] is not None:
                fields[name] = canonical(fields[name])
        names = ", ".join(f"{_column(k, _STEP_FIELDS)} = :{k}" for k in fields)
        with self._write() as db:
            db.execute(
                f"UPDATE steps SET {names} WHERE run_id = :run_id AND key = :key",  # noqa: S608
                {**fields, "run_id": run_id, "key": key},
            )

    def step_skipped(self, run_id: str, key: str, seq: int, section: str, step_id: str,
                     address: str, uses: str, reason: str) -> None:  # fmt: skip
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO steps (run_id, key, seq, section, step_id, address, uses,"
                " status, error, started, finished) VALUES (?, ?, ?, ?, ?, ?, ?, 'skipped', ?, ?,"
                " ?)",
                (run_id, key, seq, section, step_id, address, uses, reason, now(), now()),
            )

    def steps(self, run_id: str) -> list[StepRow]:
        rows = self._db.execute(
            "SELECT * FROM steps WHERE run_id = ? ORDER BY seq, key", (run_id,)
        ).fetchall()
        result = []
        for r in rows:
            d = dict(r)
            d.pop("run_id")
            for name in ("params", "prestate", "outputs"):
                d[name] = json.loads(d[name]) if d[name] is not None else None
            result.append(StepRow(**d))
        return result

    # --- approvals ---------------------------------------------------------------------

    def approve(self, run_id: str, step_id: str, plan_hash: str, approver: str, how: str) -> None:
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO approvals VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, step_id, plan_hash, approver, how, now()),
            )

    def approvals(self, run_id: str) -> dict[str, str]:
        rows = self._db.execute(
            "SELECT step_id, plan_hash FROM approvals WHERE run_id = ?", (run_id,)
        )
        return {r["step_id"]: r["plan_hash"] for r in rows}

    # --- locks -------------------------------------------------------------------------

    def lock(self, targets: Sequence[str], run_id: str, wait: float) -> None:
        """Holds every target for `run_id`, all or none; waits up to `wait` seconds for targets
        another live run holds. A target held by a run that died is never taken over: that run
        must be resumed or abandoned first (its host may be half isolated)."""
        deadline = time.monotonic() + wait
        host = socket.gethostname()
        while True:
            with self._write() as db:
                blocking = None
                for target in sorted(set(targets)):
                    row = db.execute("SELECT * FROM locks WHERE target = ?", (target,)).fetchone()
                    if row is not None and row["run_id"] != run_id:
                        blocking = row
                        break
                if blocking is None:
                    for target in sorted(set(targets)):
                        db.execute(
                            "INSERT OR REPLACE INTO locks VALUES (?, ?, ?, ?, ?)",
                            (target, run_id, os.getpid(), host, now()),
                        )
                    return
            holder = self.run(blocking["run_id"])
            if holder.crashed:
                raise LockHeld(
                    f"{blocking['target']} is held by run {holder.id}, which stopped without "
                    f"finishing: resume it (posture playbook resume {holder.id}) or give it up "
                    f"(posture playbook abandon {holder.id})"
                )
            if time.monotonic() >= deadline:
                raise LockHeld(
                    f"{blocking['target']} is held by run {holder.id} ({holder.playbook_id}, "
                    f"pid {holder.pid}, since {blocking['acquired']}); try again when it ends, "
                    "or wait for it with --lock-wait SECONDS"
                )
            time.sleep(LOCK_POLL)

    def unlock(self, run_id: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM locks WHERE run_id = ?", (run_id,))

    def locks(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._db.execute("SELECT * FROM locks ORDER BY target")]

    # --- audit -------------------------------------------------------------------------

    def audit(self, run_id: str, kind: str, data: Mapping[str, Any], who: str) -> str:
        """Appends one entry to the run's chain; returns its hash."""
        with self._write() as db:
            row = db.execute(
                "SELECT audit_head, audit_count FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
            prev = row["audit_head"] or GENESIS
            seq = int(row["audit_count"]) + 1
            at = now()
            body = canonical(dict(data))
            digest = entry_hash(prev, run_id, seq, at, who, kind, body)
            mac = sign(self.key, digest) if self.key else None
            db.execute(
                "INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, seq, at, who, kind, body, prev, digest, mac),
            )
            db.execute(
                "UPDATE runs SET audit_head = ?, audit_count = ? WHERE id = ?",
                (digest, seq, run_id),
            )
            workdir = db.execute("SELECT workdir FROM runs WHERE id = ?", (run_id,)).fetchone()
            self._mirror(Path(workdir["workdir"]), {
                "run_id": run_id, "seq": seq, "at": at, "actor": who, "kind": kind,
                "data": body, "prev": prev, "hash": digest, "mac": mac,
            })  # fmt: skip
            return digest

    @staticmethod
    def _mirror(workdir: Path, entry: Mapping[str, Any]) -> None:
        """A second copy of the chain, one JSON line per entry, in the run's folder: something
        to ship to write-once storage, and what `verify` compares the journal against."""
        if not workdir.is_dir():
            return
        fd = os.open(workdir / AUDIT_COPY, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (canonical(dict(entry)) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def audit_entries(self, run_id: str) -> list[AuditEntry]:
        rows = self._db.execute(
            "SELECT * FROM audit WHERE run_id = ? ORDER BY rowid", (run_id,)
        ).fetchall()
        return [AuditEntry(**{**dict(r), "data": json.loads(r["data"])}) for r in rows]

    def verify_audit(self, run_id: str) -> list[str]:
        """Every break in the run's chain (empty when intact): an altered entry, a removed one,
        entries out of order, or a chain that does not end at the head the run recorded."""
        run = self.run(run_id)
        rows = self._db.execute(
            "SELECT * FROM audit WHERE run_id = ? ORDER BY rowid", (run_id,)
        ).fetchall()
        problems: list[str] = []
        prev = GENESIS
        for expected_seq, r in enumerate(rows, start=1):
            if r["seq"] != expected_seq:
                problems.append(
                    f"entry {r['seq']} is where entry {expected_seq} should be "
                    "(an entry was removed or the entries were reordered)"
                )
            if r["prev"] != prev:
                problems.append(f"entry {r['seq']} does not follow the entry before it")
            digest = entry_hash(
                r["prev"], run_id, r["seq"], r["at"], r["actor"], r["kind"], r["data"]
            )
            if digest != r["hash"]:
                problems.append(f"entry {r['seq']} ({r['kind']}) was altered after it was written")
            if self.key is not None:
                if r["mac"] is None:
                    problems.append(f"entry {r['seq']} carries no signature of the audit key")
                elif not hmac.compare_digest(r["mac"], sign(self.key, r["hash"])):
                    problems.append(
                        f"entry {r['seq']}'s signature does not match: the chain was rewritten "
                        "by someone without the audit key"
                    )
            prev = r["hash"]
        problems += self._compare_copy(run, rows)
        if len(rows) != run.audit_count or prev != (run.audit_head or GENESIS):
            problems.append(
                f"the chain ends at entry {len(rows)} but the run recorded {run.audit_count} "
                "entries ending elsewhere (entries were removed or added)"
            )
        return problems

    def _compare_copy(self, run: RunRow, rows: Sequence[sqlite3.Row]) -> list[str]:
        copy = _read_copy(Path(run.workdir) / AUDIT_COPY)
        if copy is None:
            return (
                [] if not Path(run.workdir).exists() else [f"{AUDIT_COPY} is missing or unreadable"]
            )
        problems = []
        for r, line in zip(rows, copy, strict=False):
            if line.get("hash") != r["hash"] or line.get("data") != r["data"]:
                problems.append(f"entry {r['seq']} differs from its copy in {AUDIT_COPY}")
                break
        if len(copy) != len(rows):
            problems.append(f"{AUDIT_COPY} holds {len(copy)} entries, the journal {len(rows)}")
        return problems
