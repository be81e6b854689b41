"""notify.webhook: a JSON POST with a timeout and retries; secret header values (a bearer token)
are sent and never recorded. Every POST carries an Idempotency-Key made of the run and step, so
a receiver can drop the copy a resumed run may send again."""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import Field, field_validator

from scanner.respond.actions.interface import Action, Params, StepContext
from scanner.respond.connectors.interface import Connector
from scanner.respond.errors import ActionError
from scanner.respond.secrets import Secret
from scanner.webhook import check_url, post_json


class WebhookParams(Params):
    url: str = Field(max_length=2048)
    body: dict[str, Any] = Field(default_factory=dict)
    headers: dict[str, str | Secret] = Field(default_factory=dict)
    timeout: float = Field(default=10, gt=0, le=120)
    retries: int = Field(default=2, ge=0, le=10)
    backoff: float = Field(default=1.0, ge=0, le=60)

    @field_validator("url")
    @classmethod
    def _http(cls, url: str) -> str:
        problem = check_url(url)
        if problem:
            raise ValueError(problem)
        return url


class Webhook(Action):
    name = "notify.webhook"
    params = WebhookParams
    summary = "POST a JSON message to a webhook (timeout, retries)"

    def describe(self, params: Params, connector: Connector) -> list[str]:
        p = _p(params)
        headers = ", ".join(f"{k}: {v!r}" if isinstance(v, Secret) else f"{k}: {v}"
                            for k, v in p.headers.items())  # fmt: skip
        return [f"POST {p.url} (JSON, {len(p.body)} fields{'; ' + headers if headers else ''})"]

    def run(self, params: Params, ctx: StepContext) -> dict[str, Any]:
        p = _p(params)
        headers = {k: v.reveal() if isinstance(v, Secret) else v for k, v in p.headers.items()}
        for value in p.headers.values():
            if isinstance(value, Secret):
                ctx.redactor.add(value)
        key = hashlib.sha256(
            f"{ctx.run_id}/{ctx.step_id}/{ctx.connector.host}".encode()
        ).hexdigest()
        headers["Idempotency-Key"] = key[:32]
        status, error = post_json(
            p.url, p.body, headers=headers, timeout=p.timeout, attempts=p.retries + 1,
            backoff=p.backoff,
        )  # fmt: skip
        ctx.record("post", {"url": p.url, "status": status, "error": error})
        if error is not None:
            raise ActionError(ctx.redactor(f"webhook {p.url}: {error}"))
        return {"status": status, "idempotency_key": key[:32]}


def _p(params: Params) -> WebhookParams:
    assert isinstance(params, WebhookParams)
    return params
