"""credentials.rotate_db_password (PostgreSQL): a new random password for a role, set as a
SCRAM-SHA-256 verifier computed on this side (libpq's PQencryptPasswordConn through psycopg), so
the cleartext never reaches the server, its log or pg_stat_statements; then proven: the new
password logs in and the old one is refused.

The action runs on the responder's machine and talks to the server directly (host/port in
`with:`); the step's target connector is not used, only named in plans. The role's previous
verifier (a hash, but offline-crackable) is kept in the keystore, never in the journal: the
pre-state holds its reference, so an undo puts back exactly the old password.
"""

from __future__ import annotations

import secrets as random
import string
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import sql
from pydantic import Field, model_validator

from scanner.respond.actions.interface import Action, Params, StepContext
from scanner.respond.actions.minted import newest_versions
from scanner.respond.connectors.interface import Connector
from scanner.respond.errors import ActionError, VerifyError
from scanner.respond.secrets import Secret

ALPHABET = string.ascii_letters + string.digits + "-_.~"
CONNECT_TIMEOUT = 10
READ_VERIFIER = "SELECT rolpassword FROM pg_authid WHERE rolname = %s"


class DbPasswordParams(Params):
    """`with:` of credentials.rotate_db_password.

    host/port/dbname/sslmode: the PostgreSQL server, reached from this machine. admin_user and
    admin_password: a role that may ALTER the role and read pg_authid (a superuser), never the
    rotated role itself (the undo needs a login that the rotation does not change). role and
    current_password: the role rotated and its password today (proven refused afterwards).
    keystore_name: where the new password goes; length: its length (20 to 128 characters).
    """

    host: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,253}$")
    port: int = Field(default=5432, ge=1, le=65535)
    dbname: str = Field(default="postgres", pattern=r"^[A-Za-z0-9_.-]{1,63}$")
    admin_user: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,63}$")
    admin_password: Secret
    role: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,63}$")
    current_password: Secret
    keystore_name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,100}$")
    length: int = Field(default=32, ge=20, le=128)
    sslmode: str = Field(
        default="prefer", pattern=r"^(disable|allow|prefer|require|verify-ca|verify-full)$"
    )

    @model_validator(mode="after")
    def _admin_is_another_role(self) -> DbPasswordParams:
        if self.admin_user == self.role:
            raise ValueError(
                f"admin_user must be another role than {self.role}: the undo and the proofs log "
                "in as admin_user, whose password this rotation would change"
            )
        return self


def _connect(p: DbPasswordParams, user: str, password: str) -> psycopg.Connection[Any]:
    return psycopg.connect(
        host=p.host, port=p.port, dbname=p.dbname, user=user, password=password,
        sslmode=p.sslmode, connect_timeout=CONNECT_TIMEOUT, autocommit=True,
        application_name="posture",
    )  # fmt: skip


def _logs_in(p: DbPasswordParams, password: str) -> bool:
    """Whether `password` logs in as the role; a refusal is False, anything else an error."""
    try:
        with _connect(p, p.role, password) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.OperationalError as exc:
        text = str(exc)
        if "password authentication failed" in text or "authentication failed" in text:
            return False
        raise ActionError(f"{p.host}:{p.port}: cannot tell whether the password works: "
                          f"{text.strip().splitlines()[-1][:200]}") from None  # fmt: skip


def _set_verifier(conn: psycopg.Connection[Any], role: str, verifier: str) -> None:
    # A SCRAM verifier (or md5 hash) is stored as given: the server never sees the password.
    conn.execute(
        sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(verifier))
    )


class RotateDbPassword(Action):
    name = "credentials.rotate_db_password"
    params = DbPasswordParams
    summary = "set a new PostgreSQL password as a client-side SCRAM verifier; prove new in, old out"

    def describe(self, params: Params, connector: Connector) -> list[str]:
        p = _p(params)
        at = f"postgresql://{p.admin_user}@{p.host}:{p.port}/{p.dbname}"
        role_at = f"postgresql://{p.role}@{p.host}:{p.port}/{p.dbname}"
        return [
            f"from this machine (the target {connector.host} runs nothing): "
            f"generate a {p.length}-character password; keystore:{p.keystore_name} (pending)",
            f"{at}: {READ_VERIFIER} ({p.role})  # kept as keystore:{p.keystore_name}.verifier",
            f"{at}: ALTER ROLE {p.role} PASSWORD 'SCRAM-SHA-256$4096:...'  # verifier only",
            f"{role_at} with the new password: must log in",
            f"{role_at} with the old password: must be refused",
        ]

    def probe(self, params: Params, ctx: StepContext) -> dict[str, Any]:
        p = _p(params)
        return {"current_password_works": _logs_in(p, p.current_password.reveal())}

    def prestate(self, params: Params, ctx: StepContext) -> dict[str, Any]:
        p = _p(params)
        try:
            with _connect(p, p.admin_user, p.admin_password.reveal()) as conn:
                row = conn.execute(READ_VERIFIER, (p.role,)).fetchone()
        except psycopg.Error as exc:
            raise ActionError(f"{p.host}:{p.port}: cannot read role {p.role}: "
                              f"{str(exc).strip().splitlines()[-1][:200]}") from None  # fmt: skip
        ctx.record("command", {"command": f"{READ_VERIFIER} ({p.role})", "returncode": 0})
        if row is None:
            raise ActionError(f"{p.host}:{p.port}: no role {p.role}")
        verifier = row[0]
        ref = None
        if verifier:
            secret = Secret(f"{p.keystore_name}.verifier", verifier)
            ctx.redactor.add(secret)
            ref = ctx.secrets.put(f"{p.keystore_name}.verifier", secret)
        return {"role": p.role, "had_password": verifier is not None, "verifier": ref}

    def run(self, params: Params, ctx: StepContext) -> dict[str, Any]:
        p = _p(params)
        password = "".join(random.choice(ALPHABET) for _ in range(p.length))
        secret = Secret(p.keystore_name, password)
        ctx.redactor.add(secret)
        ref = ctx.secrets.put(p.keystore_name, secret)  # kept before the server changes
        try:
            with _connect(p, p.admin_user, p.admin_password.reveal()) as conn:
                verifier = conn.pgconn.encrypt_password(
                    password.encode(), p.role.encode(), b"scram-sha-256"
                ).decode()
                ctx.redactor.add(verifier)
                _set_verifier(conn, p.role, verifier)
        except psycopg.Error as exc:
            raise ActionError(ctx.redactor(f"{p.host}:{p.port}: ALTER ROLE {p.role} failed: "
                                           f"{str(exc).strip()[:300]}")) from None  # fmt: skip
        ctx.record("command", {"command": f"ALTER ROLE {p.role} PASSWORD '<scram verifier>'",
                               "returncode": 0})  # fmt: skip
        new_ok = _logs_in(p, password)
        ctx.record("login", {"role": p.role, "password": "new", "accepted": new_ok})
        if not new_ok:
            raise VerifyError(f"{p.host}:{p.port}: the new password does not log in as {p.role}")
        old_ok = _logs_in(p, p.current_password.reveal())
        ctx.record("login", {"role": p.role, "password": "old", "accepted": old_ok})
        if old_ok:
            raise VerifyError(f"{p.host}:{p.port}: the old password still logs in as {p.role}")
        return {"role": p.role, "password": ref, "method": "scram-sha-256"}

    def reconcile(
        self, params: Params, ctx: StepContext, prestate: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """Done when the newest password kept for this rotation logs in and the old one is
        refused; otherwise None and the step runs again (a fresh password, which is safe)."""
        p = _p(params)
        newest = newest_versions(p.keystore_name, limit=1)
        if not newest:
            return None
        ctx.redactor.add(newest[0])
        try:
            if not _logs_in(p, newest[0].reveal()) or _logs_in(p, p.current_password.reveal()):
                return None
        except ActionError:
            return None  # the server cannot tell now: running again re-checks and is safe
        return {"role": p.role, "password": newest[0].name, "method": "scram-sha-256"}

    def compensate(
        self,
        params: Params,
        ctx: StepContext,
        prestate: Mapping[str, Any],
        outputs: Mapping[str, Any] | None,
    ) -> None:
        from scanner.respond.credentials import resolve

        p = _p(params)
        ref = prestate.get("verifier")
        old = resolve(str(ref)) if ref else None  # the keystore first: fail before connecting
        if old is not None:
            ctx.redactor.add(old)
        try:
            with _connect(p, p.admin_user, p.admin_password.reveal()) as conn:
                if old is None:
                    conn.execute(
                        sql.SQL("ALTER ROLE {} PASSWORD NULL").format(sql.Identifier(p.role))
                    )
                else:
                    _set_verifier(conn, p.role, old.reveal())
        except psycopg.Error as exc:
            raise ActionError(ctx.redactor(
                f"{p.host}:{p.port}: cannot restore the old password of {p.role}: "
                f"{str(exc).strip()[:300]}; the old verifier is {ref}"
            )) from None  # fmt: skip
        shown = "'<previous verifier>'" if old else "NULL"
        ctx.record("command", {"command": f"ALTER ROLE {p.role} PASSWORD {shown}", "returncode": 0})


def _p(params: Params) -> DbPasswordParams:
    assert isinstance(params, DbPasswordParams)
    return params
