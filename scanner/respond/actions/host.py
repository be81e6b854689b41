"""host.isolate, host.release and host.verify_isolated: an nftables table of posture's own on the
target that keeps the management path and drops everything else, in and out.

Isolation is loaded atomically (`nft -f -`, one transaction that replaces only our table) under
a dead-man timer started on the target first: if the responder cannot prove the management path
right after, the timer deletes the table by itself, so a mistake cannot lock the responder out
for good. Nftables evaluates every base chain of a hook and a drop in any of them is final, so
other tables' accept rules cannot punch holes in the isolation.
"""

from __future__ import annotations

import ipaddress
import json
import sys
import time
from collections.abc import Mapping
from typing import Any

from pydantic import Field, field_validator

from scanner.respond.actions.interface import Action, Params, StepContext
from scanner.respond.connectors.interface import CommandResult, Connector
from scanner.respond.errors import ActionError, ConnectorError, VerifyError

TABLE = "posture_isolation"
FAMILY = "inet"
NFT = "nft"
DEAD_MAN_TAG = "posture-isolation-dead-man"


def _networks(values: list[str]) -> list[str]:
    return [str(ipaddress.ip_network(v, strict=False)) for v in values]


class IsolateParams(Params):
    management: list[str] = Field(default_factory=list, max_length=64)  # IPs or CIDRs
    allow: list[str] = Field(default_factory=list, max_length=64)  # more addresses kept reachable
    dead_man: int = Field(default=60, ge=5, le=3600)  # seconds before an unproven table goes
    outside_netns: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    probe_port: int = Field(default=22, ge=1, le=65535)
    reason: str = Field(default="", max_length=200)

    @field_validator("management", "allow")
    @classmethod
    def _cidrs(cls, values: list[str]) -> list[str]:
        return _networks(values)


class ReleaseParams(Params):
    management: list[str] = Field(default_factory=list, max_length=64)
    reason: str = Field(default="", max_length=200)

    @field_validator("management")
    @classmethod
    def _cidrs(cls, values: list[str]) -> list[str]:
        return _networks(values)


class VerifyParams(Params):
    management: list[str] = Field(default_factory=list, max_length=64)
    outside_netns: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    probe_port: int = Field(default=22, ge=1, le=65535)

    @field_validator("management")
    @classmethod
    def _cidrs(cls, values: list[str]) -> list[str]:
        return _networks(values)


def ruleset(management: list[str], allow: list[str], run_id: str, reason: str) -> str:
    """The table: loopback and the kept addresses in and out, neighbour discovery, drop the
    rest (counted, so verification can read that packets were dropped)."""
    kept = [ipaddress.ip_network(n) for n in [*management, *allow]]
    v4 = ", ".join(str(n) for n in kept if n.version == 4)
    v6 = ", ".join(str(n) for n in kept if n.version == 6)
    note = json.dumps(f"posture isolation, run {run_id}: {reason}"[:120])

    def chain(name: str, hook: str, direction: str, iface: str) -> str:
        rules = [f"type filter hook {hook} priority -300; policy drop;", f'{iface} "lo" accept']
        if v4:
            rules.append(f"ip {direction} {{ {v4} }} accept")
        if v6:
            rules.append(f"ip6 {direction} {{ {v6} }} accept")
        rules.append(
            "icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, "
            "nd-router-advert } accept"
        )
        rules.append("counter drop")
        body = "\n    ".join(rules)
        return f"  chain {name} {{\n    {body}\n  }}"

    return "\n".join([
        f"table {FAMILY} {TABLE} {{",
        f"  comment {note}",
        chain("input", "input", "saddr", "iif"),
        chain("output", "output", "daddr", "oif"),
        "  chain forward {\n    type filter hook forward priority -300; policy drop;\n"
        "    counter drop\n  }",
        "}",
    ]) + "\n"  # fmt: skip


def _record(ctx: StepContext, argv: list[str], result: CommandResult) -> None:
    ctx.record(
        "command",
        {
            "command": ctx.connector.describe(argv),
            "returncode": result.returncode,
            "stderr": ctx.redactor.bytes(result.stderr)[-300:],
        },
    )


def _run(ctx: StepContext, argv: list[str], stdin: str | None = None) -> CommandResult:
    result = ctx.connector.run(argv, input=stdin.encode() if stdin else None, timeout=ctx.timeout)
    _record(ctx, argv, result)
    return result


def current_table(ctx: StepContext) -> str | None:
    """Our table's ruleset on the target, or None when it has none."""
    result = _run(ctx, [NFT, "list", "table", FAMILY, TABLE])
    if result.ok:
        return result.stdout.decode("utf-8", "replace")
    err = result.stderr.decode("utf-8", "replace")
    if "No such file or directory" in err or "does not exist" in err:
        return None
    if "not found" in err.lower() and "nft" in err:
        raise ActionError(f"{ctx.connector.host}: nft is missing: apt-get install -y nftables")
    raise ActionError(f"{ctx.connector.host}: nft list failed: {err.strip()[-300:]}")


def _load(ctx: StepContext, text: str) -> None:
    # Adding then deleting the table first makes the load replace only ours, in one transaction.
    script = f"add table {FAMILY} {TABLE}\ndelete table {FAMILY} {TABLE}\n{text}"
    result = _run(ctx, [NFT, "-f", "-"], script)
    if not result.ok:
        reason = result.stderr.decode("utf-8", "replace").strip()[-400:]
        raise ActionError(f"{ctx.connector.host}: nft refused the isolation table: {reason}")


def _delete(ctx: StepContext) -> None:
    if current_table(ctx) is None:
        return
    result = _run(ctx, [NFT, "delete", "table", FAMILY, TABLE])
    if not result.ok:
        reason = result.stderr.decode("utf-8", "replace").strip()[-300:]
        raise ActionError(f"{ctx.connector.host}: cannot delete the isolation table: {reason}")


def _start_dead_man(ctx: StepContext, seconds: int) -> str:
    """A process on the target that deletes our table after `seconds` unless killed first.
    Returns its process id (its own session, so killing the group stops the sleep too)."""
    inner = f'sleep "$1"; nft delete table {FAMILY} {TABLE}'
    script = f"setsid sh -c '{inner}' {DEAD_MAN_TAG} \"$1\" </dev/null >/dev/null 2>&1 & echo $!"
    result = _run(ctx, ["sh", "-c", script, "sh", str(seconds)])
    pid = result.stdout.decode().strip()
    if not result.ok or not pid.isdigit():
        raise ActionError(f"{ctx.connector.host}: cannot start the dead-man timer")
    return pid


def _stop_dead_man(ctx: StepContext, pid: str) -> None:
    _run(ctx, ["sh", "-c", 'kill -TERM -- "-$1" 2>/dev/null || kill -TERM "$1"', "sh", pid])


def _management(params: Any, ctx: StepContext) -> list[str]:
    management = list(params.management)
    if not management and ctx.management_address:
        management = _networks([ctx.management_address])
    if not management:
        raise ActionError(
            "no management address: give `management` (the address your session comes from), "
            "or the isolation would cut the responder off"
        )
    return management


def _management_reaches(ctx: StepContext) -> bool:
    """A fresh command over the connector: a new connection from the management side."""
    try:
        return ctx.connector.run(["true"], timeout=min(ctx.timeout, 15)).ok
    except ConnectorError:
        return False


def _outside_reaches(netns: str, address: str, port: int, timeout: float = 3.0) -> bool:
    """Whether a TCP connection from local network namespace `netns` reaches address:port (a
    refusal counts as reaching: the packet got through)."""
    import subprocess

    code = (
        "import socket,sys\n"
        "s=socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET)\n"
        f"s.settimeout({timeout})\n"
        "try:\n s.connect((sys.argv[1], int(sys.argv[2]))); print('yes')\n"
        "except ConnectionRefusedError: print('yes')\n"
        "except OSError: print('no')\n"
    )
    done = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-c", code, address, str(port)],
        capture_output=True, text=True, timeout=timeout + 15,
    )  # fmt: skip
    if done.returncode != 0:
        raise VerifyError(f"cannot probe from namespace {netns}: {done.stderr.strip()[-200:]}")
    return done.stdout.strip() == "yes"


def _check_isolated(params: Any, ctx: StepContext, management: list[str]) -> dict[str, Any]:
    """Both ways: the management side still gets in, and the table is ours, loaded, dropping
    by default in, out and forward; from `outside_netns` (when given) nothing gets through."""
    text = current_table(ctx)
    if text is None:
        raise VerifyError(f"{ctx.connector.host}: no isolation table")
    for chain in ("input", "output", "forward"):
        if f"chain {chain}" not in text:
            raise VerifyError(f"{ctx.connector.host}: the isolation table lacks its {chain} chain")
    if text.count("policy drop") < 3:
        raise VerifyError(f"{ctx.connector.host}: the isolation table does not drop by default")
    if not _management_reaches(ctx):
        raise VerifyError(f"{ctx.connector.host}: the management path does not get through")
    outside = None
    netns = getattr(params, "outside_netns", None)
    if netns:
        outside = _outside_reaches(netns, ctx.connector.host, params.probe_port)
        if outside:
            raise VerifyError(
                f"{ctx.connector.host}: isolation leaks: port {params.probe_port} answers from "
                f"namespace {netns}"
            )
    return {"isolated": True, "management": management, "outside_blocked": outside is False}


class Isolate(Action):
    name = "host.isolate"
    params = IsolateParams
    summary = "isolate the host with an nftables table (management path kept, dead-man timer)"

    def describe(self, params: Params, connector: Connector) -> list[str]:
        p = _isolate(params)
        management = p.management or ["(the management address)"]
        kept = ", ".join([*management, *p.allow])
        return [
            connector.describe(["sh", "-c", "(dead-man timer) ...", "sh", str(p.dead_man)]),
            connector.describe([NFT, "-f", "-"])
            + f"  # table {FAMILY} {TABLE}: keep {kept}, drop the rest",
            connector.describe(["true"]) + "  # prove the management path, then stop the timer",
        ]

    def probe(self, params: Params, ctx: StepContext) -> dict[str, Any]:
        return {"isolated": current_table(ctx) is not None}

    def prestate(self, params: Params, ctx: StepContext) -> dict[str, Any]:
        return {"table": current_table(ctx)}

    def run(self, params: Params, ctx: StepContext) -> dict[str, Any]:
        p = _isolate(params)
        management = _management(p, ctx)
        text = ruleset(management, p.allow, ctx.run_id, p.reason)
        timer = _start_dead_man(ctx, p.dead_man)
        try:
            _load(ctx, text)
        except ActionError:
            _stop_dead_man(ctx, timer)
            raise
        if _management_reaches(ctx):
            _stop_dead_man(ctx, timer)
            # A proof that only got through once the timer had fired proves nothing.
            if current_table(ctx) is not None:
                return {"isolated": True, "management": management, "table": f"{FAMILY} {TABLE}"}
            raise VerifyError(
                f"{ctx.connector.host}: the management path was lost after isolating; the "
                f"dead-man timer removed the table after {p.dead_man}s"
            )
        # Cut off: the timer on the host takes the table away; wait for it, then confirm.
        deadline = time.monotonic() + p.dead_man + 30
        while time.monotonic() < deadline:
            time.sleep(2)
            if _management_reaches(ctx):
                break
        back = _management_reaches(ctx) and current_table(ctx) is None
        raise VerifyError(
            f"{ctx.connector.host}: the management path was lost after isolating; "
            + (
                f"the dead-man timer removed the table after {p.dead_man}s"
                if back
                else "the host is still unreachable: check it from its console"
            )
        )

    def verify(self, params: Params, ctx: StepContext, outputs: Mapping[str, Any]) -> None:
        _check_isolated(params, ctx, list(outputs.get("management", [])))

    def compensate(
        self,
        params: Params,
        ctx: StepContext,
        prestate: Mapping[str, Any],
        outputs: Mapping[str, Any] | None,
    ) -> None:
        previous = prestate.get("table")
        if previous:
            _load(ctx, previous)  # exactly the table that was there before
        else:
            _delete(ctx)

    def reconcile(
        self, params: Params, ctx: StepContext, prestate: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        text = current_table(ctx)
        if text is None or f"run {ctx.run_id}" not in text or not _management_reaches(ctx):
            return None
        return {"isolated": True, "management": _management(params, ctx),
                "table": f"{FAMILY} {TABLE}", "reconciled": True}  # fmt: skip


class Release(Action):
    name = "host.release"
    params = ReleaseParams
    summary = "delete posture's isolation table (nothing else of the host's firewall)"

    def describe(self, params: Params, connector: Connector) -> list[str]:
        return [connector.describe([NFT, "delete", "table", FAMILY, TABLE])]

    def probe(self, params: Params, ctx: StepContext) -> dict[str, Any]:
        return {"isolated": current_table(ctx) is not None}

    def prestate(self, params: Params, ctx: StepContext) -> dict[str, Any]:
        return {"table": current_table(ctx)}

    def run(self, params: Params, ctx: StepContext) -> dict[str, Any]:
        was = current_table(ctx) is not None
        _delete(ctx)
        return {"released": True, "was_isolated": was}

    def verify(self, params: Params, ctx: StepContext, outputs: Mapping[str, Any]) -> None:
        if current_table(ctx) is not None:
            raise VerifyError(f"{ctx.connector.host}: the isolation table is still there")
        if not _management_reaches(ctx):
            raise VerifyError(f"{ctx.connector.host}: not reachable after release")

    def compensate(
        self,
        params: Params,
        ctx: StepContext,
        prestate: Mapping[str, Any],
        outputs: Mapping[str, Any] | None,
    ) -> None:
        if prestate.get("table"):
            _load(ctx, str(prestate["table"]))

    def reconcile(
        self, params: Params, ctx: StepContext, prestate: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        if current_table(ctx) is None:
            return {"released": True, "was_isolated": bool(prestate.get("table"))}
        return None


class VerifyIsolated(Action):
    name = "host.verify_isolated"
    params = VerifyParams
    summary = "prove the isolation both ways (management in, nothing else)"
    changes_state = False

    def describe(self, params: Params, connector: Connector) -> list[str]:
        lines = [
            connector.describe([NFT, "list", "table", FAMILY, TABLE]),
            connector.describe(["true"]),
        ]
        assert isinstance(params, VerifyParams)
        if params.outside_netns:
            lines.append(
                f"ip netns exec {params.outside_netns} (TCP connect to port "
                f"{params.probe_port}: must fail)"
            )
        return lines

    def run(self, params: Params, ctx: StepContext) -> dict[str, Any]:
        return _check_isolated(params, ctx, list(getattr(params, "management", [])))


def _isolate(params: Params) -> IsolateParams:
    assert isinstance(params, IsolateParams)
    return params
