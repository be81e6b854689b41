"""notify.webhook: a JSON POST with a timeout and retries; secret header values (a bearer token)
and secret URLs (chat webhooks carry their token in the path) are sent and never recorded.

Every POST carries an Idempotency-Key made of the run, step and target, so a receiver can drop
the copy a resumed run may send again: after a crash between intent and result the message is
sent once more (reconcile cannot ask the receiver whether it arrived), which is acceptable for a
notification and better than a team never told.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import Field, field_validator

from scanner.respond.actions.interface import Action, Params, StepContext
from scanner.respond.connectors.interface import Connector
from scanner.respond.errors import ActionError
from scanner.respond.secrets import Secret
from scanner.webhook import check_header, check_url, post_json


class WebhookParams(Params):
    url: str | Secret
    body: dict[str, Any] = Field(default_factory=dict)
    headers: dict[str, str | Secret] = Field(default_factory=dict, max_length=50)
    timeout: float = Field(default=10, gt=0, le=120)  # seconds per attempt
    retries: int = Field(default=2, ge=0, le=10)
    backoff: float = Field(default=1.0, ge=0, le=60)  # first pause; doubles after each try

    @field_validator("url")
    @classmethod
    def _http(cls, url: str | Secret) -> str | Secret:
        value = url.reveal() if isinstance(url, Secret) else url
        problem = "the webhook URL is over 2048 characters" if len(value) > 2048 else None
        problem = problem or check_url(value)
        if problem:
            raise ValueError(problem)
        return url

    @field_validator("headers")
    @classmethod
    def _headers(cls, headers: dict[str, str | Secret]) -> dict[str, str | Secret]:
        for name, value in headers.items():
            problem = check_header(name, value.reveal() if isinstance(value, Secret) else value)
            if problem:
                raise ValueError(problem)
            if name.lower() == "idempotency-key":
                raise ValueError("Idempotency-Key is set by posture (run, step and target)")
        return headers


class Webhook(Action):
    name = "notify.webhook"
    params = WebhookParams
    summary = "POST a JSON message to a webhook (timeout, retries)"

    def describe(self, params: Params, connector: Connector) -> list[str]:
        p = _p(params)
        headers = ", ".join(f"{k}: {v}" for k, v in p.headers.items())  # a Secret shows its name
        return [
            f"POST {p.url} (JSON, {len(p.body)} fields{'; ' + headers if headers else ''}; "
            f"{p.retries + 1} tries at most, {p.timeout:g}s each)"
        ]

    def run(self, params: Params, ctx: StepContext) -> dict[str, Any]:
        p = _p(params)
        for value in (p.url, *p.headers.values()):
            if isinstance(value, Secret):
                ctx.redactor.add(value)
        headers = {k: v.reveal() if isinstance(v, Secret) else v for k, v in p.headers.items()}
        key = hashlib.sha256(
            f"{ctx.run_id}/{ctx.step_id}/{ctx.connector.host}".encode()
        ).hexdigest()[:32]
        headers["Idempotency-Key"] = key
        url = p.url.reveal() if isinstance(p.url, Secret) else p.url
        status, error = post_json(
            url, p.body, headers=headers, timeout=min(p.timeout, ctx.timeout),
            attempts=p.retries + 1, backoff=p.backoff,
        )  # fmt: skip
        shown = str(p.url)  # `<secret NAME>` for a secret URL
        if error is not None:
            error = ctx.redactor(error)
        ctx.record("post", {"url": shown, "status": status, "error": error,
                            "idempotency_key": key})  # fmt: skip
        if error is not None:
            raise ActionError(f"webhook {shown}: {error}")
        return {"status": status, "idempotency_key": key}


def _p(params: Params) -> WebhookParams:
    assert isinstance(params, WebhookParams)
    return params
