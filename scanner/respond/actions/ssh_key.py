"""credentials.rotate_ssh_key: replace the key an account logs in with, in two phases: mint a new
key pair (cryptography), keep its private half in the keystore, add the public half to the
account's authorized_keys and prove it logs in; then remove the old key and prove it is refused.

Other lines of authorized_keys are kept byte for byte, and keys are matched by their key blob,
never by text. The file is read and written as the owner of its folders when that is not root
(setpriv), so an account being rotated (maybe the attacker's) cannot turn posture's root writes
into writes elsewhere with a symlink. Logins are proven with the system ssh client from this
machine, to the target's ssh address unless `address`/`port` say otherwise.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import secrets as random
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from pydantic import Field, field_validator

from scanner.respond.actions.interface import Action, Params, StepContext
from scanner.respond.actions.minted import newest_versions
from scanner.respond.connectors.interface import Connector
from scanner.respond.connectors.ssh import SshConnector
from scanner.respond.errors import ActionError, ConnectorError, VerifyError
from scanner.respond.secrets import Secret

MAX_FILE = 1024 * 1024  # an authorized_keys file larger than this is not one posture edits
KEYFILE_PREFIX = ".posture-rotate-"  # temporary private key files in the run's folder
LOGIN_TIMEOUT = 30.0
STAT_FORMAT = "%u %g %a %F"
# Writes stdin to a fresh temporary file beside $1, sets mode $2 (and owner $3 when given) and
# renames it over $1: one command, so the rename is the last thing a session still does even
# when it removes the key that session logged in with.
WRITE = (
    'set -eu; umask 077; t=$(mktemp -- "$1.posture-XXXXXXXX"); trap \'rm -f -- "$t"\' EXIT; '
    'cat > "$t"; chmod -- "$2" "$t"; if [ -n "$3" ]; then chown -h -- "$3" "$t"; fi; '
    'mv -f -- "$t" "$1"'
)


class RotateParams(Params):
    """`with:` of credentials.rotate_ssh_key.

    user: the account whose key is rotated. current_key: the private key that logs in today
    (OpenSSH or PEM, unencrypted; a credential reference the engine resolves). keystore_name:
    where the new private key goes. key_type: ed25519 (default) or rsa-4096. authorized_keys:
    its absolute path on the target (default: ~user/.ssh/authorized_keys, the home folder as
    the target's `getent passwd` says). address/port: where the logins are proven (default:
    the ssh target's own address and port; required for a local target). known_hosts: the
    known_hosts file for those logins (default: the ssh target's; else ssh's own, strict).
    """

    user: str = Field(default="root", pattern=r"^[a-z_][a-z0-9_.-]{0,31}$")
    current_key: Secret
    keystore_name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,100}$")
    key_type: str = Field(default="ed25519", pattern=r"^(ed25519|rsa-4096)$")
    authorized_keys: str = Field(default="", max_length=4096, pattern=r"^(/[^\x00\n]*)?$")
    address: str = Field(default="", pattern=r"^([A-Za-z0-9_.:][A-Za-z0-9_.:-]{0,252})?$")
    port: int | None = Field(default=None, ge=1, le=65535)
    known_hosts: str = Field(default="", max_length=4096, pattern=r"^[^\x00\n]*$")

    @field_validator("current_key")
    @classmethod
    def _a_private_key(cls, value: Secret) -> Secret:
        public_blob(value.reveal())  # raises a ValueError naming the field, never the key
        return value


def public_blob(private: str) -> bytes:
    """The SSH wire blob of a private key's public half."""
    data = private.encode()
    try:
        key: Any = serialization.load_ssh_private_key(data, password=None)
    except (ValueError, TypeError):
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError):
            raise ValueError("not an unencrypted private key in OpenSSH or PEM format") from None
    line = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return base64.b64decode(line.split()[1])


def fingerprint(blob: bytes) -> str:
    """OpenSSH's SHA256 fingerprint, as `ssh-keygen -l` prints it."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def mint(key_type: str, comment: str) -> tuple[str, str]:
    """(private key in OpenSSH format, authorized_keys line)."""
    key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
    if key_type == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return private, f"{public} {comment}"


def line_key(line: str) -> bytes | None:
    """The key blob of an authorized_keys line (after any options), or None. A blob names its
    own type in its first field, so `TYPE BLOB` is recognised without a list of key types."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    tokens = text.split()
    for kind, data in pairwise(tokens):
        try:
            blob = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            continue
        size = int.from_bytes(blob[:4], "big")
        if len(blob) > 4 + size and blob[4 : 4 + size] == kind.encode():
            return blob
    return None


def without_key(text: str, blob: bytes) -> tuple[str, int]:
    """`text` without the lines holding `blob` (matched by key, not by text), and how many."""
    lines = text.splitlines(keepends=True)
    kept = [line for line in lines if line_key(line) != blob]
    return "".join(kept), len(lines) - len(kept)


def _run_lines(text: str, run_id: str) -> list[str]:
    """The lines this run added (a retry after a crash finds the first attempt's line)."""
    tag = re.compile(rf"\sposture-rotated {re.escape(run_id)} \d{{4}}-\d\d-\d\d\s*$")
    return [line for line in text.splitlines(keepends=True) if tag.search(line)]


@dataclass(frozen=True)
class Layout:
    """How posture reads and writes one authorized_keys file on its target."""

    path: str
    owner: str  # uid:gid of the file
    mode: str  # octal, as stat prints it
    drop: tuple[str, ...]  # setpriv prefix: act as the owner of the folders, when not root
    as_root: bool = True  # whether the session is root (only root can give the file back)

    def read_argv(self) -> list[str]:
        return [*self.drop, "head", "-c", str(MAX_FILE + 1), "--", self.path]

    def write_argv(self, mode: str, owner: str) -> list[str]:
        # chown only as root in root-owned folders: as the folders' owner the file is theirs.
        chown = owner if self.as_root and not self.drop else ""
        return [*self.drop, "sh", "-c", WRITE, "sh", self.path, mode, chown]


def _folders(path: str) -> list[str]:
    return [str(p) for p in PurePosixPath(path).parents]


class RotateSshKey(Action):
    name = "credentials.rotate_ssh_key"
    params = RotateParams
    summary = "mint a new SSH key, prove it logs in, remove the old key, prove it is refused"

    # --- the file ----------------------------------------------------------------------

    def _path(self, p: RotateParams, conn: Connector, timeout: float) -> str:
        if p.authorized_keys:
            return p.authorized_keys
        result = conn.run(["getent", "passwd", p.user], timeout=timeout)
        fields = result.stdout.decode("utf-8", "replace").strip().split(":")
        if not result.ok or len(fields) < 6 or not fields[5].startswith("/"):
            raise ActionError(f"{conn.host}: no account {p.user} (getent passwd {p.user})")
        return f"{fields[5].rstrip('/')}/.ssh/authorized_keys"

    def _layout(self, p: RotateParams, conn: Connector, timeout: float) -> Layout:
        path = self._path(p, conn, timeout)
        me = conn.run(["id", "-u"], timeout=timeout)
        folders = _folders(path)
        stat = conn.run(["stat", "-c", STAT_FORMAT, "--", path, *folders], timeout=timeout)
        rows = [ln.split(" ", 3) for ln in stat.stdout.decode("utf-8", "replace").splitlines()]
        if not me.ok or not stat.ok or len(rows) != len(folders) + 1:
            reason = stat.stderr.decode("utf-8", "replace").strip()[-200:]
            raise ActionError(f"{conn.host}: cannot inspect {path}: {reason or 'stat failed'}")
        uid, gid, mode, kind = rows[0]
        if kind not in ("regular file", "regular empty file"):
            raise ActionError(
                f"{conn.host}: {path} is a {kind}, not a regular file; posture does not follow "
                "links: give the real path in authorized_keys"
            )
        owners = {(row[0], row[1]) for row in rows[1:] if row[0] != "0"}
        if len({o[0] for o in owners}) > 1:
            raise ActionError(
                f"{conn.host}: the folders above {path} belong to several accounts "
                f"(uids {', '.join(sorted(o[0] for o in owners))}); fix their ownership first"
            )
        drop: tuple[str, ...] = ()
        as_root = me.stdout.strip() == b"0"
        if as_root and owners:
            # The first (nearest) non-root folder owner: the account that could swap files.
            duid, dgid = next((row[0], row[1]) for row in rows[1:] if row[0] != "0")
            if uid != duid:
                raise ActionError(
                    f"{conn.host}: {path} belongs to uid {uid} but its folder to uid {duid}; "
                    "posture writes it as the folder's owner: make them the same (chown)"
                )
            drop = ("setpriv", f"--reuid={duid}", f"--regid={dgid}", "--clear-groups", "--")
        return Layout(path, f"{uid}:{gid}", mode, drop, as_root)

    def _read(self, conn: Connector, layout: Layout, timeout: float) -> str:
        result = conn.run(layout.read_argv(), timeout=timeout)
        if not result.ok:
            reason = result.stderr.decode("utf-8", "replace").strip()[-200:]
            raise ActionError(f"{conn.host}: cannot read {layout.path}: {reason}")
        if len(result.stdout) > MAX_FILE:
            raise ActionError(f"{conn.host}: {layout.path} is larger than {MAX_FILE} bytes")
        try:
            return result.stdout.decode("utf-8")
        except UnicodeDecodeError:
            raise ActionError(f"{conn.host}: {layout.path} is not UTF-8 text") from None

    def _write(
        self, ctx: StepContext, conn: Connector, layout: Layout, text: str, mode: str, owner: str
    ) -> None:
        argv = layout.write_argv(mode, owner)
        result = conn.run(argv, input=text.encode(), timeout=ctx.timeout)
        stderr = ctx.redactor(result.stderr.decode("utf-8", "replace").strip()[-300:])
        ctx.record("command", {"command": conn.describe(argv), "returncode": result.returncode,
                               "stderr": stderr})  # fmt: skip
        if not result.ok:
            raise ActionError(
                f"{conn.host}: cannot write {layout.path}: {stderr or f'exit {result.returncode}'}"
            )

    # --- logins ------------------------------------------------------------------------

    def _login_connector(
        self, p: RotateParams, base: Connector, identity: Path, label: str, user: str
    ) -> SshConnector:
        if isinstance(base, SshConnector):
            known = Path(p.known_hosts).expanduser() if p.known_hosts else base.known_hosts
            strict = True if p.known_hosts else base.strict
            host, port, netns = p.address or base.host, p.port or base.port, base.netns
        else:
            if not p.address:
                raise ActionError(
                    f"{self.name} on a local target: give `address` (and `port`), where the "
                    "account's sshd is reached, so the new key's login can be proven"
                )
            known = Path(p.known_hosts).expanduser() if p.known_hosts else None
            host, port, strict = p.address, p.port or 22, True
            netns = getattr(base, "netns", None)
        return SshConnector(
            host, user=user, port=port, identity=identity, known_hosts=known, strict=strict,
            netns=netns, identity_label=label,
        )  # fmt: skip

    @contextmanager
    def _keyfile(self, ctx: StepContext, private: str) -> Iterator[Path]:
        """The key in a 0600 file of the run's folder for as long as ssh needs it."""
        ctx.workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = ctx.workdir / f"{KEYFILE_PREFIX}{random.token_hex(6)}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(private if private.endswith("\n") else private + "\n")
        try:
            yield path
        finally:
            _shred(path)

    def _logs_in(self, p: RotateParams, ctx: StepContext, private: str) -> bool:
        """Whether `private` is accepted for the account: ssh authenticated (the `true` it runs
        may still fail for an account without a shell) or was refused ("Permission denied").
        Anything else (unreachable, unknown host key) is an error, never a "refused"."""
        label = fingerprint(public_blob(private))
        with self._keyfile(ctx, private) as path:
            probe = self._login_connector(p, ctx.connector, path, label, p.user)
            try:
                code = probe.run(["true"], timeout=min(ctx.timeout, LOGIN_TIMEOUT)).returncode
                accepted = True
            except ConnectorError as exc:
                if "Permission denied" not in str(exc):
                    raise ActionError(
                        ctx.redactor(f"cannot tell whether {label} logs in as {p.user}: {exc}")
                    ) from None
                code, accepted = 255, False
            ctx.record("command", {"command": probe.describe(["true"]), "returncode": code})
            ctx.record("login", {"user": p.user, "key": label, "accepted": accepted})
            return accepted

    @contextmanager
    def _session(self, p: RotateParams, ctx: StepContext, private: str) -> Iterator[Connector]:
        """A connector that logs in as the account with `private` (the new key), for when the
        target's own session used the old key and is refused now."""
        label = fingerprint(public_blob(private))
        with self._keyfile(ctx, private) as path:
            yield self._login_connector(p, ctx.connector, path, label, p.user)

    def _sweep(self, ctx: StepContext) -> None:
        """Key files a killed run left in its folder (a finally never ran) are removed first."""
        if ctx.workdir.is_dir():
            for leftover in ctx.workdir.glob(f"{KEYFILE_PREFIX}*"):
                _shred(leftover)

    # --- the action --------------------------------------------------------------------

    def describe(self, params: Params, connector: Connector) -> list[str]:
        p = _p(params)
        old = fingerprint(public_blob(p.current_key.reveal()))
        path = p.authorized_keys or f"~{p.user}/.ssh/authorized_keys"
        folders = _folders(path) if p.authorized_keys else ["<its folders>"]
        read = connector.describe(["head", "-c", str(MAX_FILE + 1), "--", path])
        write = connector.describe(["sh", "-c", WRITE, "sh", path, "<mode>", "<owner>"])
        shown = Path("<key>")
        new_login = self._login_connector(p, connector, shown, "<new key>", p.user)
        old_login = self._login_connector(p, connector, shown, f"<old key {old}>", p.user)
        lines = [f"mint a new {p.key_type} key pair; its private half to "
                 f"keystore:{p.keystore_name} (pending) before anything changes"]  # fmt: skip
        if not p.authorized_keys:
            lines.append(connector.describe(["getent", "passwd", p.user]) + "  # home folder")
        as_owner = "  # as the folders' owner (setpriv) when not root"
        lines += [
            connector.describe(["id", "-u"]),
            connector.describe(["stat", "-c", STAT_FORMAT, "--", path, *folders]),
            read + as_owner,
            write + f"{as_owner}; adds the new key (posture-rotated RUN_ID DATE)",
            new_login.describe(["true"]) + "  # the new key must log in",
            read + as_owner,
            write + f"{as_owner}; removes every line of {old}",
            old_login.describe(["true"]) + "  # the old key must be refused",
        ]
        return lines

    def probe(self, params: Params, ctx: StepContext) -> dict[str, Any]:
        p = _p(params)
        layout = self._layout(p, ctx.connector, ctx.timeout)
        text = self._read(ctx.connector, layout, ctx.timeout)
        blob = public_blob(p.current_key.reveal())
        installed = any(line_key(line) == blob for line in text.splitlines())
        return {"path": layout.path, "current_key": fingerprint(blob),
                "current_key_installed": installed}  # fmt: skip

    def prestate(self, params: Params, ctx: StepContext) -> dict[str, Any]:
        # authorized_keys holds public keys only: its content may be journaled as it is.
        p = _p(params)
        layout = self._layout(p, ctx.connector, ctx.timeout)
        text = self._read(ctx.connector, layout, ctx.timeout)
        return {"path": layout.path, "owner": layout.owner, "mode": layout.mode, "content": text,
                "sha256": hashlib.sha256(text.encode()).hexdigest()}  # fmt: skip

    def run(self, params: Params, ctx: StepContext) -> dict[str, Any]:
        p = _p(params)
        self._sweep(ctx)
        conn = ctx.connector
        layout = self._layout(p, conn, ctx.timeout)
        text = self._read(conn, layout, ctx.timeout)
        for stale in _run_lines(text, ctx.run_id):  # an earlier, crashed attempt of this run
            text = text.replace(stale, "", 1)
        stamp = datetime.now(UTC).strftime("%Y-%m-%d")
        private, line = mint(p.key_type, f"posture-rotated {ctx.run_id} {stamp}")
        secret = Secret(p.keystore_name, private)
        ctx.redactor.add(secret)
        ref = ctx.secrets.put(p.keystore_name, secret)  # kept before the target changes
        new_blob = public_blob(private)
        self._write(ctx, conn, layout, text + ("\n" if text and not text.endswith("\n") else "")
                    + line + "\n", layout.mode, layout.owner)  # fmt: skip
        if not self._logs_in(p, ctx, private):
            raise VerifyError(f"{conn.host}: the new key does not log in as {p.user}")
        old_blob = public_blob(p.current_key.reveal())
        current = self._read(conn, layout, ctx.timeout)
        kept, removed = without_key(current, old_blob)
        self._write(ctx, conn, layout, kept, layout.mode, layout.owner)
        # From here on the target's session may be refused: it may have used the old key.
        if self._logs_in(p, ctx, p.current_key.reveal()):
            raise VerifyError(
                f"{conn.host}: the old key {fingerprint(old_blob)} still logs in as {p.user} "
                f"({removed} line(s) removed from {layout.path}; is it authorized elsewhere?)"
            )
        return self._outputs(p, new_blob, old_blob, removed, ref)

    def reconcile(
        self, params: Params, ctx: StepContext, prestate: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """Done when this run's new key is in the file and logs in, and the old key is gone and
        refused; otherwise None, and the step runs again (it replaces this run's earlier line,
        so a retry leaves one new key)."""
        p = _p(params)
        self._sweep(ctx)
        try:
            return self._reconciled(p, ctx, prestate)
        except (ActionError, ConnectorError):
            return None  # not provable now: running again re-checks everything and is safe

    def _reconciled(
        self, p: RotateParams, ctx: StepContext, prestate: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        old_blob = public_blob(p.current_key.reveal())
        candidates = newest_versions(p.keystore_name)
        text = self._read_any(p, ctx, candidates)
        if text is None:
            return None
        ours = {line_key(line) for line in _run_lines(text, ctx.run_id)}
        minted = [c for c in candidates if public_blob(c.reveal()) in ours]
        if not minted or any(line_key(line) == old_blob for line in text.splitlines()):
            return None
        new = minted[0]
        if not self._logs_in(p, ctx, new.reveal()) or self._logs_in(p, ctx, p.current_key.reveal()):
            return None
        removed = without_key(str(prestate.get("content", "")), old_blob)[1]
        return self._outputs(p, public_blob(new.reveal()), old_blob, removed, new.name)

    def compensate(
        self,
        params: Params,
        ctx: StepContext,
        prestate: Mapping[str, Any],
        outputs: Mapping[str, Any] | None,
    ) -> None:
        """Puts back the exact file the step found. When the target's session is refused (it
        logged in with the old key, now removed), it restores through a session of the new key
        from the keystore."""
        p = _p(params)
        self._sweep(ctx)
        content, mode, owner = (
            str(prestate["content"]),
            str(prestate["mode"]),
            str(prestate["owner"]),
        )
        try:
            layout = self._layout(p, ctx.connector, ctx.timeout)
            self._write(ctx, ctx.connector, layout, content, mode, owner)
            return
        except ConnectorError as exc:
            if not isinstance(ctx.connector, SshConnector):
                raise
            first = str(exc)
        for new in newest_versions(p.keystore_name):
            with self._session(p, ctx, new.reveal()) as conn:
                try:
                    layout = self._layout(p, conn, ctx.timeout)
                except ConnectorError:
                    continue
                self._write(ctx, conn, layout, content, mode, owner)
                return
        ref = (outputs or {}).get("private_key") or f"keystore:{p.keystore_name}"
        raise ActionError(
            f"{ctx.connector.host}: cannot restore {prestate['path']} ({first}); log in with "
            f"{ref} and put back the lines of its journaled pre-state by hand"
        )

    # --- helpers -----------------------------------------------------------------------

    def _read_any(self, p: RotateParams, ctx: StepContext, candidates: list[Secret]) -> str | None:
        """The file through the target's session, else through a session of a minted key."""
        try:
            layout = self._layout(p, ctx.connector, ctx.timeout)
            return self._read(ctx.connector, layout, ctx.timeout)
        except ConnectorError:
            if not isinstance(ctx.connector, SshConnector):
                raise
        for new in candidates:
            with self._session(p, ctx, new.reveal()) as conn:
                try:
                    return self._read(conn, self._layout(p, conn, ctx.timeout), ctx.timeout)
                except ConnectorError:
                    continue
        return None

    @staticmethod
    def _outputs(
        p: RotateParams, new_blob: bytes, old_blob: bytes, removed: int, ref: str
    ) -> dict[str, Any]:
        return {"user": p.user, "new_key": fingerprint(new_blob), "old_key": fingerprint(old_blob),
                "removed_lines": removed, "private_key": ref}  # fmt: skip


def _p(params: Params) -> RotateParams:
    assert isinstance(params, RotateParams)
    return params


def _shred(path: Path) -> None:
    try:
        size = path.stat().st_size
        with open(path, "r+b") as handle:
            handle.write(b"\0" * size)
        path.unlink()
    except OSError:
        pass
