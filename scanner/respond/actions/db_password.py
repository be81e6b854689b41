"""credentials.rotate_db_password (PostgreSQL): a new random password for a role, set as a
SCRAM-SHA-256 verifier computed on this side (libpq's PQencryptPasswordConn through psycopg), so
the cleartext never reaches the server, its log or pg_stat_statements; then proven: the new
password logs in and the old one is refused.

The action runs on the responder's machine and talks to the server directly; the step's target
only names where it runs. The role's previous verifier (an offline-crackable hash) is kept in
the keystore, never in the journal, so an undo can put back exactly the old password.
"""

from __future__ import annotations

import secrets as random
import string
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import sql
from pydantic import Field

from scanner.respond.actions.interface import Action, Params, StepContext
from scanner.respond.connectors.interface import Connector
from scanner.respond.errors import ActionError, VerifyError
from scanner.respond.secrets import Secret

ALPHABET = string.ascii_letters + string.digits + "-_.~"
CONNECT_TIMEOUT = 10


class DbPasswordParams(Params):
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
            f"generate a {p.length}-character password; keystore:{p.keystore_name} (pending)",
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
                row = conn.execute(
                    "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (p.role,)
                ).fetchone()
        except psycopg.Error as exc:
            raise ActionError(f"{p.host}:{p.port}: cannot read role {p.role}: "
                              f"{str(exc).strip().splitlines()[-1][:200]}") from None  # fmt: skip
        if row is None:
            raise ActionError(f"{p.host}:{p.port}: no role {p.role}")
        verifier = row[0]
        ref = None
        if verifier:
            secret = Secret(f"{p.keystore_name}-previous-verifier", verifier)
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

    def compensate(
        self,
        params: Params,
        ctx: StepContext,
        prestate: Mapping[str, Any],
        outputs: Mapping[str, Any] | None,
    ) -> None:
        p = _p(params)
        ref = prestate.get("verifier")
        with _connect(p, p.admin_user, p.admin_password.reveal()) as conn:
            if ref is None:
                conn.execute(sql.SQL("ALTER ROLE {} PASSWORD NULL").format(sql.Identifier(p.role)))
                return
            from scanner.respond.credentials import resolve

            _set_verifier(conn, p.role, resolve(str(ref)).reveal())


def _p(params: Params) -> DbPasswordParams:
    assert isinstance(params, DbPasswordParams)
    return params
