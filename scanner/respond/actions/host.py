"""host.isolate, host.release and host.verify_isolated: an nftables table of posture's own on the
target that keeps the management path and drops everything else, in and out.

Isolation is loaded atomically (`nft -f -`, one transaction that replaces only our table) under
a dead-man timer started on the target first: if the responder cannot prove the management path
right after, the timer deletes the table by itself, so a mistake cannot lock the responder out
for good. Nftables evaluates every base chain of a hook and a drop in any of them is final, so
other tables' accept rules cannot punch holes in the isolation.

What verification trusts, strongest first: (1) the management proof is a fresh ssh login from
the responder's side, so it does not rest on the host's word; (2) `outside_netns`: a TCP connect
from another vantage point (a namespace of this machine) must not get through, which is evidence
from outside the host; (3) `outbound_address`: the host tries to connect out, and the connection
must fail *and* our output chain's drop counter must rise, so the drop is ours, not a missing
route; (4) the table itself (policy drop on input, output and forward, counted drop rules). Items
(3) and (4) are the host's own report: an attacker with root could fake them, so a demanding
responder adds (2) from a point the host does not control. The drop counters are returned as
evidence either way.
"""

from __future__ import annotations

import ipaddress
import json
import sys
import time
from collections.abc import Mapping
from typing import Any

from pydantic import Field, IPvAnyAddress, field_validator

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
    outbound_address: IPvAnyAddress | None = None  # as in host.verify_isolated
    outbound_port: int = Field(default=443, ge=1, le=65535)
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
    outbound_address: IPvAnyAddress | None = None  # the host must fail to reach this address
    outbound_port: int = Field(default=443, ge=1, le=65535)

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


def drop_counts(ctx: StepContext) -> dict[str, int] | None:
    """Packets dropped so far by each chain of our table ({"input": n, ...}), None without the
    table. VerifyError when a chain is missing, not a drop-by-default base chain, or has no
    counted drop rule: then the table is not the isolation posture loads."""
    host = ctx.connector.host
    result = _run(ctx, [NFT, "-j", "list", "table", FAMILY, TABLE])
    if not result.ok and current_table(ctx) is None:
        return None
    try:
        chains, counts = _chains_and_drops(json.loads(result.stdout)["nftables"])
    except (ValueError, KeyError, TypeError, AttributeError):
        raise VerifyError(
            f"{host}: nft did not list the isolation table as JSON (needs nftables >= 0.9.3)"
        ) from None
    for name in ("input", "output", "forward"):
        chain = chains.get(name, {})
        if chain.get("hook") != name or chain.get("policy") != "drop" or name not in counts:
            raise VerifyError(
                f"{host}: the isolation table's {name} chain is missing or does not drop by "
                "default: release and isolate again"
            )
    return {name: counts[name] for name in ("input", "output", "forward")}


def _chains_and_drops(items: list[Any]) -> tuple[dict[str, Any], dict[str, int]]:
    """From `nft -j list table`: each chain by name, and the packet counter of its counted drop
    rule."""
    chains = {i["chain"]["name"]: i["chain"] for i in items if "chain" in i}
    counts: dict[str, int] = {}
    for rule in (i["rule"] for i in items if "rule" in i):
        expr = rule.get("expr", [])
        if {"drop": None} in expr:
            for e in expr:
                if "counter" in e:
                    counts[rule["chain"]] = int(e["counter"]["packets"])
    return chains, counts


def _outbound_dropped(ctx: StepContext, address: str, port: int, before: int) -> int:
    """The host tries address:port; proves the attempt fails and that our output chain dropped
    it (its counter rose). Returns the packets dropped by the attempt."""
    host = ctx.connector.host
    argv = ["timeout", "5", "bash", "-c", 'exec 3<>"/dev/tcp/$1/$2"', "bash", address, str(port)]
    attempt = _run(ctx, argv)
    if attempt.ok:
        raise VerifyError(f"{host}: isolation leaks: the host connected out to {address}:{port}")
    if attempt.returncode in (126, 127):
        raise VerifyError(f"{host}: cannot try an outbound connection: bash or timeout missing")
    after = drop_counts(ctx)
    dropped = (after or {}).get("output", 0) - before
    if dropped <= 0:
        reason = ctx.redactor.bytes(attempt.stderr).strip()[-200:]
        raise VerifyError(
            f"{host}: the connection to {address}:{port} failed without reaching the isolation "
            f"table's drop rule ({reason}); pick an address the host routes to and does not keep"
        )
    return dropped


def _check_isolated(params: Any, ctx: StepContext, management: list[str]) -> dict[str, Any]:
    """Both ways (see the module's docstring): the management side still gets in, the table is
    ours and drops by default in, out and forward, and, where asked, neither an outside probe
    point nor the host's own outbound attempt gets through."""
    host = ctx.connector.host
    dropped = drop_counts(ctx)
    if dropped is None:
        raise VerifyError(f"{host}: no isolation table")
    if not _management_reaches(ctx):
        raise VerifyError(f"{host}: the management path does not get through")
    outputs: dict[str, Any] = {"isolated": True, "management": management}
    netns = getattr(params, "outside_netns", None)
    if netns:
        if _outside_reaches(netns, host, params.probe_port):
            raise VerifyError(
                f"{host}: isolation leaks: port {params.probe_port} answers from namespace {netns}"
            )
        outputs["outside_blocked"] = True
    outbound = getattr(params, "outbound_address", None)
    if outbound is not None:
        kept = [ipaddress.ip_network(n) for n in management]
        if any(outbound in n for n in kept if n.version == outbound.version):
            raise ActionError(
                f"outbound_address {outbound} is a management address the host must reach: "
                "pick one it must not reach"
            )
        sent = _outbound_dropped(ctx, str(outbound), params.outbound_port, dropped["output"])
        outputs["outbound_blocked"] = True
        outputs["outbound_dropped_packets"] = sent
    outputs["dropped"] = drop_counts(ctx) if outbound is not None else dropped
    return outputs


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
            connector.describe([NFT, "-j", "list", "table", FAMILY, TABLE]),
            connector.describe(["true"]),
        ]
        assert isinstance(params, VerifyParams)
        if params.outside_netns:
            lines.append(
                f"ip netns exec {params.outside_netns} (TCP connect to port "
                f"{params.probe_port}: must fail)"
            )
        if params.outbound_address is not None:
            lines.append(
                connector.describe(["timeout", "5", "bash", "-c", 'exec 3<>"/dev/tcp/$1/$2"',
                                    "bash", str(params.outbound_address),
                                    str(params.outbound_port)])
                + "  # must fail, dropped by the isolation table"
            )  # fmt: skip
        return lines

    def run(self, params: Params, ctx: StepContext) -> dict[str, Any]:
        return _check_isolated(params, ctx, list(getattr(params, "management", [])))


def _isolate(params: Params) -> IsolateParams:
    assert isinstance(params, IsolateParams)
    return params
