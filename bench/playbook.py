"""Playbook engine overhead against Ansible, side by side in one run, and the time to isolate
(then release) many network-namespace hosts concurrently in one run.

    .venv/bin/python bench/playbook.py [--steps 50] [--hosts 20] [--skip-ansible]

Overhead: a playbook of N steps, each running /bin/true on this machine, through
`posture playbook run` (every step journaled before and after, fsync'd, and chained into the
audit log) and through `ansible-playbook` (connection local, no fact gathering); plus posture
with a no-op action, which is the engine alone. Ansible lives in its own venv,
bench/.venv-ansible, created on first use (pip install ansible-core).

Isolation (root, `ip netns`): HOSTS namespaces each running sshd, isolated by the shipped
isolate-host playbook in one run (max_parallel hosts at a time) from a management namespace,
verified both ways, then released by release-host. No packet leaves the namespaces.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ANSIBLE_VENV = ROOT / "bench" / ".venv-ansible"
TIMEOUT = 600.0

# A no-op action for the engine-only row, in a module of the bench's temporary folder;
# everything else is the real CLI.
NOOP_MODULE = """
from typing import Any
from scanner.respond.actions.interface import Action, Params

class NoopParams(Params):
    n: int = 0

class Noop(Action):
    name = "bench.noop"
    params = NoopParams
    summary = "nothing"
    changes_state = False

    def describe(self, params: Any, connector: Any) -> list[str]:
        return []

    def run(self, params: Any, ctx: Any) -> dict[str, Any]:
        return {"n": params.n}
"""
RUNNER = """
import sys
from scanner.respond.actions import registry
registry.ACTIONS["bench.noop"] = "bench_noop:Noop"
from scanner.cli import cli
cli(sys.argv[1:], prog_name="posture")
"""


def ansible() -> Path | None:
    """bench/.venv-ansible/bin/ansible-playbook, created when missing (None: cannot)."""
    binary = ANSIBLE_VENV / "bin" / "ansible-playbook"
    if binary.exists():
        return binary
    try:
        subprocess.run([sys.executable, "-m", "venv", str(ANSIBLE_VENV)], check=True, timeout=120)
        subprocess.run(
            [str(ANSIBLE_VENV / "bin" / "pip"), "install", "-q", "ansible-core"],
            check=True,
            timeout=600,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"ansible-core could not be installed ({exc}); its rows are skipped")
        return None
    return binary if binary.exists() else None


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed


def posture_book(steps: int, uses: str, with_: str) -> str:
    lines = [f"id: bench-{uses.replace('.', '-')}", "version: 1", "name: bench", "steps:"]
    for i in range(steps):
        lines.append(f"  - {{id: s{i}, uses: {uses}, with: {with_}}}")
    return "\n".join(lines) + "\n"


def ansible_book(steps: int) -> str:
    tasks = "\n".join(
        f"    - name: s{i}\n      ansible.builtin.command: /bin/true" for i in range(steps)
    )
    return (
        textwrap.dedent(
            """\
        - hosts: localhost
          connection: local
          gather_facts: false
          tasks:
        """
        )
        + tasks
        + "\n"
    )


def overhead(steps: int, skip_ansible: bool) -> list[tuple[str, float]]:
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="posture-bench-") as tmp:
        work = Path(tmp)
        (work / "bench_noop.py").write_text(NOOP_MODULE)
        env = {
            **os.environ,
            "POSTURE_JOURNAL": str(work / "journal" / "respond.sqlite"),
            "PYTHONPATH": f"{work}:{ROOT}",
        }
        noop = work / "noop.yaml"
        noop.write_text(posture_book(steps, "bench.noop", "{n: 1}"))
        true = work / "true.yaml"
        true.write_text(posture_book(steps, "command", '{argv: ["/bin/true"]}'))
        runner = [sys.executable, "-c", RUNNER, "playbook", "run", "--yes"]
        rows.append(("posture, no-op action (engine only)", timed([*runner, str(noop)], env, work)))
        rows.append(("posture, command /bin/true", timed([*runner, str(true)], env, work)))
        binary = None if skip_ansible else ansible()
        if binary is not None:
            book = work / "ansible.yaml"
            book.write_text(ansible_book(steps))
            aenv = {**env, "ANSIBLE_LOCALHOST_WARNING": "False", "ANSIBLE_NOCOLOR": "1",
                    "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False"}  # fmt: skip
            rows.append(
                ("ansible-playbook, command /bin/true", timed([str(binary), str(book)], aenv, work))
            )
    return rows


def isolation(hosts: int) -> list[tuple[str, float]]:
    """Isolate then release `hosts` namespace hosts in one run each (root and ip netns)."""
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("nft") is None:
        print("isolation rows skipped: need root, ip (iproute2) and nft (nftables)")
        return []
    from tests.respond.netns import bench_lab  # the tests' namespace hosts

    with bench_lab(hosts) as lab:
        run = lab.posture_argv
        env = lab.env
        common = ["-i", f"hosts={','.join(lab.addresses)}", "-i", f"ssh_key=file:{lab.lab.key}",
                  "-i", f"known_hosts={lab.lab.known_hosts}"]  # fmt: skip
        isolate_inputs = [*common, "-i", f"management={lab.management}",
                          "-i", f"outside_netns={lab.lab.other}"]  # fmt: skip
        plan = subprocess.run(
            [*run, "playbook", "plan", "isolate-host", "--json", "--no-probe", *isolate_inputs],
            env=env, capture_output=True, text=True, timeout=TIMEOUT, cwd=ROOT,
        )  # fmt: skip
        if plan.returncode != 0:
            raise SystemExit(f"plan failed: {plan.stderr[-2000:]}")
        plan_hash = json.loads(plan.stdout)["plan_hash"]
        start = time.perf_counter()
        isolate = subprocess.run(
            [*run, "playbook", "run", "isolate-host", "--yes", "--json", *isolate_inputs,
             "--approve", "all", "--plan-hash", plan_hash],
            env=env, capture_output=True, text=True, timeout=TIMEOUT, cwd=ROOT,
        )  # fmt: skip
        isolated = time.perf_counter() - start
        if isolate.returncode != 0:
            raise SystemExit(f"isolate-host failed: {isolate.stderr[-2000:]}")
        lab.check_isolated(True)
        start = time.perf_counter()
        release = subprocess.run(
            [*run, "playbook", "run", "release-host", "--yes", "--json", *common],
            env=env, capture_output=True, text=True, timeout=TIMEOUT, cwd=ROOT,
        )  # fmt: skip
        released = time.perf_counter() - start
        if release.returncode != 0:
            raise SystemExit(f"release-host failed: {release.stderr[-2000:]}")
        lab.check_isolated(False)
    return [
        (f"isolate {hosts} hosts (verified both ways), one run", isolated),
        (f"release {hosts} hosts, one run", released),
    ]


def table(rows: list[tuple[str, float]], steps: int | None) -> None:
    width = max(len(name) for name, _ in rows)
    print(f"{'':<{width}}  {'total s':>8}  {'ms/step':>8}  {'vs posture':>10}")
    base = next((t for n, t in rows if n.startswith("posture, command")), None)
    for name, seconds in rows:
        per = f"{seconds / steps * 1000:8.1f}" if steps else " " * 8
        ratio = f"{seconds / base:9.2f}x" if base and "ansible" in name else ""
        print(f"{name:<{width}}  {seconds:8.2f}  {per}  {ratio:>10}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--skip-ansible", action="store_true")
    parser.add_argument("--skip-isolation", action="store_true")
    args: Any = parser.parse_args(argv)
    rows = overhead(args.steps, args.skip_ansible)
    print(f"\nplaybook of {args.steps} steps, 2 cores; each row one process from start to exit\n")
    table(rows, args.steps)
    if not args.skip_isolation:
        iso = isolation(args.hosts)
        if iso:
            print()
            table(iso, None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
