"""credentials.rotate_ssh_key: replace the key an account logs in with, in two phases: mint a new
key pair (cryptography), store its private half in the keystore, add the public half to the
account's authorized_keys, prove a login with it; then remove the old key and prove it is
refused. Other lines of authorized_keys are kept byte for byte."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets as random
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from pydantic import Field

from scanner.respond.actions.interface import Action, Params, StepContext
from scanner.respond.connectors.interface import Connector
from scanner.respond.connectors.ssh import SshConnector
from scanner.respond.errors import ActionError, ConnectorError, VerifyError
from scanner.respond.secrets import Secret

_KEY_LINE = re.compile(
    r"(?:^|\s)(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp\d+|sk-\S+)\s+([A-Za-z0-9+/=]+)(?:\s|$)"
)


class RotateParams(Params):
    user: str = Field(default="root", pattern=r"^[a-z_][a-z0-9_.-]{0,31}$")
    current_key: Secret  # the private key that logs in today (OpenSSH or PEM)
    authorized_keys: str = Field(default="", max_length=4096)  # default: ~user/.ssh/...
    key_type: str = Field(default="ed25519", pattern=r"^(ed25519|rsa-4096)$")
    keystore_name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,100}$")


def public_blob(private: str) -> bytes:
    """The SSH wire blob of a private key's public half."""
    data = private.encode()
    try:
        key = serialization.load_ssh_private_key(data, password=None)
    except ValueError:
        key = serialization.load_pem_private_key(data, password=None)  # type: ignore[assignment]
    line = key.public_key().public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return base64.b64decode(line.split()[1])


def fingerprint(blob: bytes) -> str:
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


def without_key(text: str, blob: bytes) -> tuple[str, int]:
    """`text` without the lines holding `blob` (matched by key, not by text), and how many."""
    kept, removed = [], 0
    for line in text.splitlines(keepends=True):
        match = _KEY_LINE.search(line)
        if match and not line.lstrip().startswith("#"):
            try:
                if base64.b64decode(match.group(2)) == blob:
                    removed += 1
                    continue
            except ValueError:
                pass
        kept.append(line)
    return "".join(kept), removed


class RotateSshKey(Action):
    name = "credentials.rotate_ssh_key"
    params = RotateParams
    summary = "mint a new SSH key, prove it logs in, remove the old key, prove it is refused"

    def _path(self, p: RotateParams, ctx: StepContext) -> str:
        if p.authorized_keys:
            return p.authorized_keys
        result = ctx.connector.run(["getent", "passwd", p.user], timeout=ctx.timeout)
        fields = result.stdout.decode("utf-8", "replace").strip().split(":")
        if not result.ok or len(fields) < 6 or not fields[5].startswith("/"):
            raise ActionError(f"{ctx.connector.host}: no account {p.user}")
        return f"{fields[5]}/.ssh/authorized_keys"

    def describe(self, params: Params, connector: Connector) -> list[str]:
        p = _p(params)
        path = p.authorized_keys or f"~{p.user}/.ssh/authorized_keys"
        old = fingerprint(public_blob(p.current_key.reveal()))
        return [
            f"mint a {p.key_type} key pair; private half to keystore:{p.keystore_name} (pending)",
            connector.describe(["sh", "-c", "cat > TMP && chmod && chown && mv", path])
            + "  # append the new public key",
            f"ssh {p.user}@{connector.host} true  # with the new key: must log in",
            connector.describe(["sh", "-c", "...", path]) + f"  # remove {old}",
            f"ssh {p.user}@{connector.host} true  # with the old key {old}: must be refused",
        ]

    def probe(self, params: Params, ctx: StepContext) -> dict[str, Any]:
        p = _p(params)
        text = (ctx.connector.read_file(self._path(p, ctx), timeout=ctx.timeout) or b"").decode()
        blob = public_blob(p.current_key.reveal())
        return {"current_key_installed": without_key(text, blob)[1] > 0,
                "current_key": fingerprint(blob)}  # fmt: skip

    def prestate(self, params: Params, ctx: StepContext) -> dict[str, Any]:
        p = _p(params)
        path = self._path(p, ctx)
        stat = ctx.connector.run(["stat", "-c", "%u:%g %a", path], timeout=ctx.timeout)
        if not stat.ok:
            raise ActionError(f"{ctx.connector.host}: {path} does not exist")
        owner, mode = stat.stdout.decode().split()
        text = ctx.connector.read_file(path, timeout=ctx.timeout) or b""
        return {"path": path, "owner": owner, "mode": mode, "content": text.decode("utf-8"),
                "sha256": hashlib.sha256(text).hexdigest()}  # fmt: skip

    def _write(self, ctx: StepContext, pre: Mapping[str, Any], text: str) -> None:
        """Replaces the file atomically with its owner and mode; the rename is the last command,
        because once the old key is gone the session that removed it cannot log in again."""
        path = str(pre["path"])
        tmp = f"{path}.posture-{random.token_hex(4)}"
        steps: list[tuple[list[str], bytes | None]] = [
            (["sh", "-c", 'umask 077 && cat > "$1"', "sh", tmp], text.encode()),
            (["chmod", str(pre["mode"]), "--", tmp], None),
            (["chown", str(pre["owner"]), "--", tmp], None),
            (["mv", "-f", "--", tmp, path], None),
        ]
        for argv, stdin in steps:
            result = ctx.connector.run(argv, input=stdin, timeout=ctx.timeout)
            ctx.record("command", {"command": ctx.connector.describe(argv),
                                   "returncode": result.returncode})  # fmt: skip
            if not result.ok:
                ctx.connector.run(["rm", "-f", "--", tmp], timeout=ctx.timeout)
                raise ActionError(f"{ctx.connector.host}: cannot write {path} ({argv[0]} failed)")

    def _login(self, ctx: StepContext, p: RotateParams, private: str) -> bool:
        """Whether `private` logs in as the account, from where the connector connects."""
        base = ctx.connector
        if not isinstance(base, SshConnector):
            raise ActionError(
                "credentials.rotate_ssh_key proves logins over ssh: use an ssh target"
            )
        keyfile = ctx.workdir / f".rotate-{random.token_hex(6)}"
        ctx.workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(keyfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(private if private.endswith("\n") else private + "\n")
        try:
            probe = SshConnector(
                base.host, user=p.user, port=base.port, identity=keyfile,
                known_hosts=base.known_hosts, strict=base.strict, netns=base.netns,
            )  # fmt: skip
            try:
                ok = probe.run(["true"], timeout=min(ctx.timeout, 30)).ok
            except ConnectorError as exc:
                if "Permission denied" not in str(exc):
                    raise ActionError(f"cannot tell whether the key logs in: {exc}") from None
                ok = False
            ctx.record("login", {"user": p.user, "key": fingerprint(public_blob(private)),
                                 "accepted": ok})  # fmt: skip
            return ok
        finally:
            _shred(keyfile)

    def run(self, params: Params, ctx: StepContext) -> dict[str, Any]:
        p = _p(params)
        pre = self.prestate(p, ctx)
        stamp = datetime.now(UTC).strftime("%Y-%m-%d")
        private, line = mint(p.key_type, f"posture-rotated {ctx.run_id} {stamp}")
        secret = Secret(p.keystore_name, private)
        ctx.redactor.add(secret)
        ref = ctx.secrets.put(p.keystore_name, secret)  # stored before it is installed
        new_blob = base64.b64decode(line.split()[1])
        content = str(pre["content"])
        self._write(
            ctx,
            pre,
            content + ("" if content.endswith("\n") or not content else "\n") + line + "\n",
        )
        if not self._login(ctx, p, private):
            raise VerifyError(f"{ctx.connector.host}: the new key does not log in as {p.user}")
        old_blob = public_blob(p.current_key.reveal())
        current = (ctx.connector.read_file(str(pre["path"]), timeout=ctx.timeout) or b"").decode()
        kept, removed = without_key(current, old_blob)
        self._write(ctx, pre, kept)
        if self._login(ctx, p, p.current_key.reveal()):
            raise VerifyError(f"{ctx.connector.host}: the old key still logs in as {p.user}")
        return {"user": p.user, "new_key": fingerprint(new_blob), "old_key": fingerprint(old_blob),
                "removed_lines": removed, "private_key": ref}  # fmt: skip

    def compensate(
        self,
        params: Params,
        ctx: StepContext,
        prestate: Mapping[str, Any],
        outputs: Mapping[str, Any] | None,
    ) -> None:
        # Back to exactly the file that was there; the connector still logs in with the
        # old key only if it was never removed, so restore over the new key when needed.
        try:
            self._write(ctx, prestate, str(prestate["content"]))
        except ConnectorError:
            if outputs is None:
                raise
            raise ActionError(
                f"{ctx.connector.host}: the old key is already revoked; log in with "
                f"{outputs.get('private_key')} to restore {prestate['path']} by hand"
            ) from None


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
