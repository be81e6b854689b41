"""Running a playbook: locks, approvals bound to the plan hash, each step's intent journaled
before it acts and its result after, retries, timeouts, rollback in reverse from recorded
pre-state, `always` steps, and resume after a crash without repeating a completed side effect."""

from __future__ import annotations

import contextlib
import os
import secrets as random
import socket
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scanner.respond.actions.interface import Action, SecretSink, StepContext
from scanner.respond.actions.registry import action
from scanner.respond.connect import Connectors
from scanner.respond.errors import RespondError
from scanner.respond.inputs import resolve_inputs
from scanner.respond.journal import Journal, actor
from scanner.respond.plan import Plan, PlannedStep, base_context, build_plan, shown, to_secrets
from scanner.respond.schema import Compensation, LoadedPlaybook, load_playbook
from scanner.respond.secrets import Redactor, Secret
from scanner.respond.templating import SecretRef, condition, render_value

EXIT_AWAITING_APPROVAL = 4
FINAL = {"succeeded", "failed", "rolled_back", "rollback_failed", "abandoned"}


class ApprovalNeeded(RespondError):
    """The run stopped before a gated step nobody approved (exit 4)."""

    exit_code = EXIT_AWAITING_APPROVAL


def encode_inputs(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Inputs as the journal keeps them: secrets as {"$secret": reference}."""

    def one(v: Any) -> Any:
        if isinstance(v, SecretRef):
            return {"$secret": v.ref}
        if isinstance(v, list):
            return [one(x) for x in v]
        return v

    return {k: one(v) for k, v in inputs.items()}


def decode_inputs(stored: Mapping[str, Any]) -> dict[str, Any]:
    def one(name: str, v: Any) -> Any:
        if isinstance(v, dict) and set(v) == {"$secret"}:
            return SecretRef(name, v["$secret"])
        if isinstance(v, list):
            return [one(name, x) for x in v]
        return v

    return {k: one(k, v) for k, v in stored.items()}


def secret_refs(loaded: LoadedPlaybook, inputs: Mapping[str, Any]) -> dict[str, str]:
    """Reference -> a display name, for every credential and secret input."""
    refs = {ref: f"credentials.{name}" for name, ref in loaded.playbook.credentials.items()}
    for name, value in inputs.items():
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, SecretRef):
                refs.setdefault(v.ref, f"inputs.{name}")
    return refs


def resolve_secrets(refs: Mapping[str, str], redactor: Redactor) -> dict[str, Secret]:
    if not refs:
        return {}
    from scanner.respond.credentials import resolve

    resolved = {}
    for ref, label in refs.items():
        value = resolve(ref)
        secret = Secret(f"{label} ({ref})", value.reveal())
        redactor.add(secret)
        resolved[ref] = secret
    return resolved


def prepare(
    path: Path, given: Mapping[str, Any], workdir: Path
) -> tuple[LoadedPlaybook, dict[str, Any], Redactor, dict[str, Secret], Connectors, Plan]:
    """Everything `plan` and `run` share: the checked playbook, typed inputs, resolved secrets,
    connectors and the plan."""
    loaded = load_playbook(path)
    try:
        inputs = resolve_inputs(loaded.playbook.inputs, given)
    except ValueError as exc:
        raise RespondError(f"{path}: {exc}") from None
    redactor = Redactor()
    secrets = resolve_secrets(secret_refs(loaded, inputs), redactor)
    creds = {n: secrets[r] for n, r in loaded.playbook.credentials.items()}
    for name, value in inputs.items():
        if isinstance(value, SecretRef):
            creds.setdefault(name, secrets[value.ref])
    from scanner.respond.connect import resolve_targets

    targets = resolve_targets(
        loaded.playbook.targets, base_context(inputs, loaded.playbook.credentials, "")
    )
    connectors = Connectors(loaded.playbook.targets, targets, creds, workdir)
    plan = build_plan(loaded, inputs, secrets, connectors)
    return loaded, inputs, redactor, secrets, connectors, plan


def probe_plan(plan: Plan, connectors: Connectors, redactor: Redactor, workdir: Path) -> None:
    """Reads the current state each ready step's action can see (read-only), into the plan."""
    sink = SecretSink(lambda name, value: "(plan: nothing is stored)")
    for planned in plan.steps:
        if planned.state != "ready" or planned.problem:
            continue
        act = action(planned.step.uses)
        ctx = StepContext(
            run_id="(plan)", step_id=planned.step.id,
            connector=connectors.get(planned.target, planned.address),
            timeout=min(planned.step.timeout, 30), redactor=redactor, secrets=sink,
            workdir=workdir,
        )  # fmt: skip
        try:
            params = act.validate(to_secrets(planned.raw_params, planned.secrets))
            planned.probe = _redact_tree(act.probe(params, ctx), redactor)
        except Exception as exc:
            planned.probe = {"error": redactor(str(exc) or type(exc).__name__)}


@dataclass
class Hooks:
    """How the engine talks to the responder (the CLI fills these in)."""

    say: Callable[[str], None] = lambda text: None
    ask_approval: Callable[[PlannedStep, Any], bool] | None = None  # None: non-interactive


@dataclass
class RunOutcome:
    run_id: str
    status: str
    error: str | None
    steps: list[Any] = field(default_factory=list)


class Runner:
    """One run of one playbook (new, or resumed from the journal)."""

    def __init__(
        self,
        journal: Journal,
        plan: Plan,
        redactor: Redactor,
        secrets: Mapping[str, Secret],
        connectors: Connectors,
        run_id: str,
        workdir: Path,
        hooks: Hooks,
        keystore_put: Callable[[str, Secret], str] | None = None,
    ) -> None:
        self.journal, self.plan, self.redactor = journal, plan, redactor
        self.secrets, self.connectors = secrets, connectors
        self.run_id, self.workdir, self.hooks = run_id, workdir, hooks
        self.who = actor()
        self.book = plan.loaded.playbook
        self._keystore_put = keystore_put
        self.outputs: dict[str, dict[str, Any]] = {}  # step id -> address -> outputs
        self.status: dict[str, str] = {}  # step id -> succeeded/failed/skipped

    # --- audit helpers ------------------------------------------------------------------

    def audit(self, kind: str, data: Mapping[str, Any]) -> None:
        clean = _redact_tree(dict(data), self.redactor)
        self.journal.audit(self.run_id, kind, clean, self.who)

    def _put_secret(self, name: str, value: Secret) -> str:
        """Stores a minted secret as a pending version; the step's success confirms it (the
        version before stays as `previous`), its undo discards it."""
        self.redactor.add(value)
        if self._keystore_put is None:
            from scanner.respond.keystore import default_keystore

            with default_keystore() as store:
                ref = store.put(name, value)
        else:
            ref = self._keystore_put(name, value)
        self.audit("secret.stored", {"name": name, "ref": ref, "state": "pending"})
        return ref

    def _settle_secrets(self, outputs: Mapping[str, Any], confirm: bool) -> None:
        """Confirms (or discards) the pending keystore versions a step's outputs name."""
        refs = [v for v in _strings(outputs) if v.startswith("keystore:") and "@" in v]
        if not refs or self._keystore_put is not None:
            return
        from scanner.respond.keystore import default_keystore

        with default_keystore() as store:
            for ref in refs:
                name, _, version = ref.removeprefix("keystore:").rpartition("@")
                if not version.isdigit():
                    continue
                if confirm:
                    store.confirm(name, int(version))
                else:
                    store.discard(name, int(version))
                self.audit("secret.confirmed" if confirm else "secret.discarded", {"ref": ref})

    # --- contexts ----------------------------------------------------------------------

    def _template_context(self, address: str, target: str) -> dict[str, Any]:
        context = base_context(self.plan.inputs, self.book.credentials, self.run_id)
        steps: dict[str, Any] = {}
        for step_id, by_address in self.outputs.items():
            single = next(iter(by_address.values())) if len(by_address) == 1 else None
            steps[step_id] = {
                "status": self.status.get(step_id),
                "outputs": by_address.get(address, single) or {},
                "by_address": by_address,
            }
        for step_id, status in self.status.items():
            steps.setdefault(step_id, {"status": status, "outputs": {}, "by_address": {}})
        context["steps"] = steps
        context["target"] = {"name": target, "address": address}
        return context

    def _step_context(self, planned: PlannedStep) -> StepContext:
        connector = self.connectors.get(planned.target, planned.address)
        management = self.plan.inputs.get("management")
        return StepContext(
            run_id=self.run_id,
            step_id=planned.step.id,
            connector=connector,
            timeout=planned.step.timeout,
            redactor=self.redactor,
            secrets=SecretSink(self._put_secret),
            workdir=self.workdir,
            record=lambda kind, data: self.audit(
                f"{planned.step.id}.{kind}", {"address": planned.address, **dict(data)}
            ),
            management_address=str(management).split("/")[0] if management else None,
        )

    # --- the run -----------------------------------------------------------------------

    def execute(self, approved: Mapping[str, str], resume: bool = False) -> RunOutcome:
        done = {s.key: s for s in self.journal.steps(self.run_id)} if resume else {}
        for row in done.values():
            if row.status in ("succeeded", "skipped", "failed"):
                if row.outputs is not None:
                    self.outputs.setdefault(row.step_id, {})[row.address] = row.outputs
                self.status[row.step_id] = row.status
        failure: str | None = None
        rollback = False
        main = [s for s in self.plan.steps if s.section == "steps"]
        by_step: dict[str, list[PlannedStep]] = {}
        for planned in main:
            by_step.setdefault(planned.step.id, []).append(planned)
        run = self.journal.run(self.run_id)
        if resume and run.status == "rolling_back":
            rollback, failure = True, run.error or "an earlier step failed"
        else:
            for step_id, instances in by_step.items():
                step = instances[0].step
                if all(done.get(p.key) and done[p.key].status in ("succeeded", "skipped")
                       for p in instances):  # fmt: skip
                    continue
                if step.approval and step_id not in approved:
                    self._approve(instances, approved)
                error = self._run_instances(instances, done)
                if error is None:
                    continue
                self.status[step_id] = "failed"
                if step.on_failure == "continue":
                    self.hooks.say(f"step {step_id} failed ({error}); on_failure: continue")
                    continue
                failure = f"step {step_id}: {error}"
                rollback = step.on_failure == "rollback"
                break
        status = "succeeded" if failure is None else "failed"
        if rollback:
            self.journal.set_run(self.run_id, status="rolling_back", error=failure)
            self.audit("run.rollback", {"reason": failure})
            ok = self._compensate_all()
            status = "rolled_back" if ok else "rollback_failed"
        always = [s for s in self.plan.steps if s.section == "always"]
        for planned in always:
            kept = done.get(planned.key)
            if kept and kept.status in ("succeeded", "skipped"):
                continue
            error = self._run_instances([planned], done)
            if error:
                self.hooks.say(f"always step {planned.step.id} failed: {error}")
        return RunOutcome(self.run_id, status, failure)

    def _approve(self, instances: list[PlannedStep], approved: Mapping[str, str]) -> None:
        step = instances[0].step
        if self.hooks.ask_approval is not None:
            context = self._template_context(instances[0].address, instances[0].target)
            try:
                params = shown(render_value(step.with_, context))
            except Exception:
                params = instances[0].params
            if self.hooks.ask_approval(instances[0], params):
                self.journal.approve(self.run_id, step.id, self.plan.hash, self.who, "terminal")
                self.audit(
                    "approval.given",
                    {"step": step.id, "plan_hash": self.plan.hash, "how": "terminal"},
                )
                return
            self.journal.set_run(self.run_id, status="awaiting_approval")
            self.audit("approval.refused", {"step": step.id, "plan_hash": self.plan.hash})
            raise ApprovalNeeded(f"step {step.id} was not approved; the run stops before it")
        self.journal.set_run(self.run_id, status="awaiting_approval")
        self.audit("approval.needed", {"step": step.id, "plan_hash": self.plan.hash})
        raise ApprovalNeeded(
            f"step {step.id} needs approval: posture playbook resume {self.run_id} "
            f"--approve {step.id} --plan-hash {self.plan.hash}"
        )

    def _run_instances(self, instances: list[PlannedStep], done: Mapping[str, Any]) -> str | None:
        """Runs one step on each of its addresses (concurrently); the first error, or None."""
        step = instances[0].step
        pending = [
            p
            for p in instances
            if not (done.get(p.key) and done[p.key].status in ("succeeded", "skipped"))
        ]
        limit = (
            self.book.targets[step.target].max_parallel if step.target in self.book.targets else 1
        )
        errors: list[str] = []
        if len(pending) == 1:
            result = self._run_one(pending[0], done.get(pending[0].key))
            errors += [result] if result else []
        else:
            with ThreadPoolExecutor(max_workers=min(limit, len(pending))) as pool:
                for result in pool.map(lambda p: self._run_one(p, done.get(p.key)), pending):
                    if result:
                        errors.append(result)
        if not errors:
            statuses = {self.status.get(step.id)}
            self.status[step.id] = "skipped" if statuses == {"skipped"} else "succeeded"
            return None
        return errors[0] if len(errors) == 1 else f"{errors[0]} (and {len(errors) - 1} more)"

    def _run_one(self, planned: PlannedStep, journaled: Any) -> str | None:
        step = planned.step
        act = action(step.uses)
        context = self._template_context(planned.address, planned.target)
        key = planned.key
        try:
            if step.when is not None and not condition(step.when, context):
                self.journal.step_skipped(self.run_id, key, planned.seq, planned.section, step.id,
                                          planned.address, step.uses, "when is false")  # fmt: skip
                self.audit("step.skipped", {"step": step.id, "address": planned.address})
                self.status.setdefault(step.id, "skipped")
                return None
            rendered = render_value(step.with_, context)
            params = act.validate(to_secrets(rendered, self.secrets))
        except Exception as exc:
            message = self.redactor(f"cannot render its parameters: {exc}")
            self.journal.step_skipped(self.run_id, key, planned.seq, planned.section, step.id,
                                      planned.address, step.uses, message)  # fmt: skip
            self.journal.step_update(self.run_id, key, status="failed")
            self.audit(
                "step.failed", {"step": step.id, "address": planned.address, "error": message}
            )
            return message
        ctx = self._step_context(planned)
        if (
            journaled is not None
            and journaled.status == "running"
            and journaled.prestate is not None
        ):
            # Crashed between intent and result: ask the action whether its effect is in place.
            outputs = act.reconcile(params, ctx, journaled.prestate)
            self.audit("step.reconcile", {"step": step.id, "address": planned.address,
                                          "done": outputs is not None})  # fmt: skip
            if outputs is not None:
                return self._succeeded(planned, outputs)
        self.journal.step_intent(self.run_id, key, planned.seq, planned.section, step.id,
                                 planned.address, step.uses, shown(rendered))  # fmt: skip
        self.audit("step.intent", {"step": step.id, "uses": step.uses, "address": planned.address,
                                   "params": shown(rendered)})  # fmt: skip
        self.hooks.say(f"{step.id} [{planned.address}]: {act.summary}")
        if journaled is not None and journaled.prestate is not None:
            prestate = journaled.prestate  # the state before the first try is what undo restores
        else:
            try:
                prestate = act.prestate(params, ctx)
            except Exception as exc:
                return self._failed(planned, f"cannot read the state before acting: {exc}")
        self.journal.step_update(self.run_id, key, prestate=prestate)
        delay = step.retry.delay
        last = ""
        for attempt in range(1, step.retry.count + 2):
            self.journal.step_update(self.run_id, key, attempts=attempt)
            try:
                outputs = self._attempt(act, params, ctx, step.timeout)
                if step.verify:
                    act.verify(params, ctx, outputs)
                return self._succeeded(planned, outputs)
            except Exception as exc:
                last = self.redactor(str(exc) or type(exc).__name__)
                self.audit("step.attempt_failed", {"step": step.id, "address": planned.address,
                                                   "attempt": attempt, "error": last})  # fmt: skip
                if attempt <= step.retry.count:
                    time.sleep(delay)
                    delay *= step.retry.backoff
        return self._failed(planned, last)

    def _attempt(
        self, act: Action, params: Any, ctx: StepContext, timeout: float
    ) -> dict[str, Any]:
        """One try of the action, failed when it outlasts the step's timeout. A late action is
        waited for (its commands are bounded by the connector's timeouts) before anything else
        runs, so a compensation never races the action it undoes."""
        pool = ThreadPoolExecutor(max_workers=1)
        future = pool.submit(act.run, params, ctx)
        try:
            return future.result(timeout=timeout)
        except FutureTimeout:
            with contextlib.suppress(Exception):
                future.result(timeout=timeout)
            raise RespondError(f"did not finish within {timeout:g}s") from None
        finally:
            pool.shutdown(wait=True)

    def _succeeded(self, planned: PlannedStep, outputs: Mapping[str, Any]) -> str | None:
        clean = _redact_tree(dict(outputs), self.redactor)
        self._settle_secrets(clean, confirm=True)
        self.journal.step_update(self.run_id, planned.key, status="succeeded", outputs=clean,
                                 finished=_now())  # fmt: skip
        self.audit("step.succeeded", {"step": planned.step.id, "address": planned.address,
                                      "outputs": clean})  # fmt: skip
        self.outputs.setdefault(planned.step.id, {})[planned.address] = clean
        return None

    def _failed(self, planned: PlannedStep, error: str) -> str:
        self.journal.step_update(self.run_id, planned.key, status="failed", error=error,
                                 finished=_now())  # fmt: skip
        self.audit("step.failed", {"step": planned.step.id, "address": planned.address,
                                   "error": error})  # fmt: skip
        self.hooks.say(f"{planned.step.id} [{planned.address}] failed: {error}")
        return error

    def _compensate_all(self) -> bool:
        """Undoes completed (and half-done) state-changing steps, newest first."""
        ok = True
        plan_by_key = {p.key: p for p in self.plan.steps}
        rows = [r for r in self.journal.steps(self.run_id) if r.section == "steps"]
        for row in sorted(rows, key=lambda r: (r.seq, r.started or ""), reverse=True):
            planned = plan_by_key.get(row.key)
            if planned is None or row.status not in ("succeeded", "failed", "running"):
                continue
            if row.compensation == "done" or row.prestate is None:
                continue
            step = planned.step
            if step.compensate is False:
                continue
            comp_action = action(
                step.compensate.uses if isinstance(step.compensate, Compensation) else step.uses
            )
            if not comp_action.changes_state:
                continue
            self.journal.step_update(self.run_id, row.key, compensation="running")
            self.audit("step.compensate", {"step": step.id, "address": row.address})
            self.hooks.say(f"undoing {step.id} [{row.address}]")
            try:
                context = self._template_context(row.address, planned.target)
                ctx = self._step_context(planned)
                if isinstance(step.compensate, Compensation):
                    rendered = render_value(step.compensate.with_, context)
                    params = comp_action.validate(to_secrets(rendered, self.secrets))
                    comp_action.run(params, ctx)
                else:
                    rendered = render_value(step.with_, context)
                    params = comp_action.validate(to_secrets(rendered, self.secrets))
                    outputs = row.outputs if row.status == "succeeded" else None
                    comp_action.compensate(params, ctx, row.prestate, outputs)
                    if outputs:
                        self._settle_secrets(outputs, confirm=False)
                self.journal.step_update(self.run_id, row.key, compensation="done")
                self.audit("step.compensated", {"step": step.id, "address": row.address})
            except Exception as exc:
                ok = False
                message = self.redactor(str(exc) or type(exc).__name__)
                self.journal.step_update(self.run_id, row.key, compensation="failed",
                                         compensation_error=message)  # fmt: skip
                self.audit("step.compensation_failed", {"step": step.id, "address": row.address,
                                                        "error": message})  # fmt: skip
                self.hooks.say(f"could not undo {step.id} [{row.address}]: {message}")
        return ok


def _now() -> str:
    from scanner.respond.journal import now

    return now()


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


def _redact_tree(value: Any, redactor: Redactor) -> Any:
    if isinstance(value, str):
        return redactor(value)
    if isinstance(value, Secret):
        return repr(value)
    if isinstance(value, dict):
        return {k: _redact_tree(v, redactor) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_tree(v, redactor) for v in value]
    return value


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + random.token_hex(3)


def start_run(
    journal: Journal,
    path: Path,
    given: Mapping[str, Any],
    runs_dir: Path,
    *,
    approve: set[str],
    plan_hash: str | None,
    hooks: Hooks,
    lock_wait: float = 0.0,
    keystore_put: Callable[[str, Secret], str] | None = None,
) -> RunOutcome:
    run_id = new_run_id()
    workdir = runs_dir / run_id
    workdir.mkdir(parents=True, mode=0o700)
    loaded, inputs, redactor, secrets, connectors, plan = prepare(path, given, workdir)
    try:
        _refuse_broken_plan(plan)
        approved = _check_approvals(plan, approve, plan_hash)
        journal.create_run({
            "id": run_id, "playbook_id": loaded.playbook.id,
            "playbook_version": str(loaded.playbook.version), "playbook_path": str(path.resolve()),
            "playbook_sha256": loaded.sha256, "plan_hash": plan.hash,
            "inputs": encode_inputs(inputs), "status": "running", "started": _now(),
            "pid": os.getpid(), "hostname": socket.gethostname(), "actor": actor(),
            "workdir": str(workdir),
        })  # fmt: skip
        runner = Runner(journal, plan, redactor, secrets, connectors, run_id, workdir, hooks,
                        keystore_put)  # fmt: skip
        runner.audit("run.started", {
            "playbook": loaded.playbook.id, "version": str(loaded.playbook.version),
            "file": str(path.resolve()), "sha256": loaded.sha256, "plan_hash": plan.hash,
            "inputs": shown(inputs), "credentials": dict(loaded.playbook.credentials),
        })  # fmt: skip
        _record_approvals(runner, approved)
        return _drive(journal, runner, plan, set(approved), lock_wait, resume=False)
    finally:
        connectors.close()


def resume_run(
    journal: Journal,
    run_id: str,
    *,
    approve: set[str],
    plan_hash: str | None,
    hooks: Hooks,
    lock_wait: float = 0.0,
    keystore_put: Callable[[str, Secret], str] | None = None,
) -> RunOutcome:
    run = journal.run(run_id)
    if run.status in FINAL:
        raise RespondError(f"run {run_id} has ended ({run.status}); there is nothing to resume")
    if not run.crashed and run.status != "awaiting_approval":
        raise RespondError(f"run {run_id} is still going (pid {run.pid} on {run.hostname})")
    path = Path(run.playbook_path)
    workdir = Path(run.workdir)
    loaded, _, redactor, secrets, connectors, plan = prepare(
        path, decode_inputs(run.inputs), workdir
    )
    try:
        if loaded.sha256 != run.playbook_sha256:
            raise RespondError(
                f"{path} changed since run {run_id} started (sha256 {run.playbook_sha256[:12]} "
                f"then, {loaded.sha256[:12]} now); restore it to resume"
            )
        if plan.hash != run.plan_hash:
            raise RespondError(
                f"the plan of run {run_id} no longer renders the same (hash {run.plan_hash[:12]} "
                f"then, {plan.hash[:12]} now): its inputs or credentials changed"
            )
        approved = dict(journal.approvals(run_id))
        given = _check_approvals(plan, approve, plan_hash)
        approved.update(given)
        status = "rolling_back" if run.status == "rolling_back" else "running"
        journal.set_run(run_id, pid=os.getpid(), hostname=socket.gethostname(), status=status)
        runner = Runner(journal, plan, redactor, secrets, connectors, run_id, workdir, hooks,
                        keystore_put)  # fmt: skip
        runner.audit("run.resumed", {"previous_status": run.status, "crashed": run.crashed})
        _record_approvals(runner, given)
        return _drive(journal, runner, plan, set(approved), lock_wait, resume=True)
    finally:
        connectors.close()


def _drive(journal: Journal, runner: Runner, plan: Plan, approved: set[str], lock_wait: float,
           *, resume: bool) -> RunOutcome:  # fmt: skip
    run_id = runner.run_id
    held = sorted({f"{t.connector}:{a}" for n, t in plan.targets.items() if n != "local"
                   for a in t.addresses})  # fmt: skip
    try:
        journal.lock(held, run_id, lock_wait)
    except RespondError as exc:
        journal.set_run(run_id, status="failed", error=str(exc), finished=_now())
        runner.audit("run.finished", {"status": "failed", "error": str(exc)})
        raise
    runner.audit("locks.held", {"targets": held})
    try:
        outcome = runner.execute({s: plan.hash for s in approved}, resume=resume)
    except ApprovalNeeded:
        raise
    except BaseException as exc:
        error = runner.redactor(f"{type(exc).__name__}: {exc}")
        journal.set_run(run_id, status="failed", error=error, finished=_now())
        runner.audit("run.finished", {"status": "failed", "error": error})
        journal.unlock(run_id)
        raise
    journal.set_run(run_id, status=outcome.status, error=outcome.error, finished=_now())
    runner.audit("run.finished", {"status": outcome.status, "error": outcome.error})
    journal.unlock(run_id)
    return outcome


def _record_approvals(runner: Runner, approved: Mapping[str, str]) -> None:
    """Approvals given up front (--approve with the plan's hash), journaled and audited."""
    for step_id, plan_hash in approved.items():
        runner.journal.approve(runner.run_id, step_id, plan_hash, runner.who, "--approve")
        runner.audit(
            "approval.given", {"step": step_id, "plan_hash": plan_hash, "how": "--approve"}
        )


def _refuse_broken_plan(plan: Plan) -> None:
    broken = [p for p in plan.steps if p.problem and p.state != "decided at run time"]
    if broken:
        lines = "; ".join(f"{p.step.id} [{p.address}]: {p.problem}" for p in broken)
        raise RespondError(f"the plan cannot run: {lines}")


def _check_approvals(plan: Plan, approve: set[str], plan_hash: str | None) -> dict[str, str]:
    """`--approve STEP|all` given up front, valid only with the hash of this very plan."""
    if not approve:
        return {}
    if plan_hash is None:
        raise RespondError(
            f"--approve needs --plan-hash: approvals bind to the plan you reviewed "
            f"(this plan's hash is {plan.hash}; see posture playbook plan)"
        )
    if plan_hash != plan.hash:
        raise RespondError(
            f"--plan-hash {plan_hash[:16]} is not this plan's ({plan.hash[:16]}): the playbook, "
            "its inputs or their rendering changed since the plan was approved"
        )
    gated = plan.gated()
    steps = set(gated) if "all" in approve else approve
    unknown = steps - {p.step.id for p in plan.steps}
    if unknown:
        raise RespondError(
            f"--approve names no step of this playbook: {', '.join(sorted(unknown))}"
        )
    return {s: plan.hash for s in steps}


def abandon_run(journal: Journal, run_id: str, reason: str) -> None:
    """Gives up a run that will not be resumed: its targets are released for other runs. What
    it changed stays changed (undo it with the matching playbook, e.g. release-host)."""
    run = journal.run(run_id)
    if run.status in FINAL:
        raise RespondError(f"run {run_id} has ended ({run.status})")
    if not run.crashed and run.status != "awaiting_approval":
        raise RespondError(f"run {run_id} is still going (pid {run.pid} on {run.hostname})")
    journal.set_run(run_id, status="abandoned", error=reason, finished=_now())
    journal.audit(run_id, "run.abandoned", {"reason": reason}, actor())
    journal.unlock(run_id)
