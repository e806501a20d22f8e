"""Lifecycle commands: ``run``, ``status``, ``invoke``, ``event``, ``reconcile``."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

import typer

from gitops.cli import output
from gitops.cli.app import app
from gitops.util.durations import human, iso_times

ENV_OPTION = typer.Option(None, "--env", help="A later environment of gitops.yaml (default: the first, where the run trains).")


@app.command()
def run(
    file: Path = typer.Argument(..., help="The spec to run (its backend: local, or azureml from this shell)."),
    timeout: float = typer.Option(1800, help="Give up waiting after this many seconds."),
) -> None:
    """Validate -> submit -> wait -> register -> deploy at 0% -> smoke-test -> promote; print how to call it. Exits 0
    when the run is live or held for a person's decision (printed with the command to decide), 1 otherwise."""
    from rich.console import Console

    from gitops.cli.specs import policy_for
    from gitops.errors import GitopsError
    from gitops.ledger.transitions import IN_FLIGHT
    from gitops.lifecycle.wiring import local_lifecycle
    from gitops.settings import Settings
    from gitops.spec.validate import load_spec

    console = Console(file=output.err())
    policy = policy_for(file)
    validated = load_spec(file, policy)
    _synthesize_when_missing(validated, console)
    lifecycle = local_lifecycle()
    checked = lifecycle.check(validated, policy)  # the one spec check, as the Function's submit runs it
    for finding in checked.findings:
        console.print(f"[yellow]{finding.format()}[/]")
    first_use = not (Settings.load().workspace_dir / "models" / "tiny-phi3" / "hf").is_dir()
    before = lifecycle.ledger.get(checked.valid.spec.name)
    with output.Status(console, "submitting (the first run builds and registers the tiny model)..." if first_use else "submitting..."):
        record = lifecycle.submit(checked)
    if before is not None and before[0].job_name == record.job_name:  # nothing new to train: the same job serves again
        console.print(f"job [bold]{record.job_name}[/] reused (the same training as before): run {record.status}")
    else:
        console.print(f"job [bold]{record.job_name}[/] {record.status}")
    backend = lifecycle.backend_for(record.backend)
    started = time.monotonic()
    deadline = started + timeout
    pace = Pace()

    def within_deadline(run: str) -> None:  # the command's own limit, while training and during the rollout alike
        if time.monotonic() > deadline:
            raise GitopsError(f"run '{run}' not finished after {timeout:.0f}s", hint="see `gitops status`")

    with output.Status(console, "waiting for the job") as status:
        while True:
            got = lifecycle.ledger.get(record.run)
            assert got is not None
            record = got[0]
            if record.status not in IN_FLIGHT or record.status == "held":  # ended, or waiting for a person's decision
                break
            within_deadline(record.run)
            if record.cursor is not None:  # the rollout's steps, taken here by the driver, as reconcile takes them

                def show(r: Any) -> None:  # before each step: where the rollout stands
                    within_deadline(r.run)
                    if r.cursor is not None:
                        where = f"rollout: {r.cursor.step}" + (f" ({r.cursor.last})" if r.cursor.last else "")
                        status.update(f"{where} · {human(time.monotonic() - started)}")

                record = lifecycle.settle(record.run, timeout_s=timeout, on_record=show)
                continue
            job = backend.get_job(record.job_name)
            if job is not None:
                status.update(pace.line(job.state.value, job.progress, time.monotonic() - started))
                if job.state.terminal:  # hand the worker's own event to the handler; without one, reconcile finds it
                    event_file = Settings.load().workspace_dir / "events" / f"{job.name}-{job.state.value}.json"
                    if event_file.is_file():
                        lifecycle.on_job_event(event_file.read_text(encoding="utf-8"))
                    else:
                        lifecycle.reconcile(record.run)
                    continue
            time.sleep(1)
    _print_outcome(record, backend)
    _print_comparison(record, lifecycle)
    print(summary_line(record, time.monotonic() - started))
    # Live, or held for a person's decision (the gate did its work; the command to decide is printed above): 0, so a
    # rerun of `make demo` after trying other versions ends as it should. A rollout that failed or rolled back: 1.
    raise typer.Exit(0 if record.status in ("live", "held") else 1)


SYNTHETIC = ("synth", "train_sft.jsonl")  # the documented synthetic dataset's folder and file (runs/local-tiny.yaml)


def _synthesize_when_missing(validated: Any, console: Any) -> None:
    """The local example runs from a fresh checkout: its documented synthetic dataset is made on first use (as
    `gitops data synth --out <folder>` would), and only that one; any other missing file stays an error."""
    from gitops.spec.capabilities import Feature, kind_of

    spec = validated.spec
    if spec is None or not kind_of(spec.backend).supports(Feature.LOCAL_DATA_FILES) or not spec.data.train_path:
        return
    train = Path(spec.data.train_path)
    if (train.parent.name, train.name) != SYNTHETIC or train.exists():
        return
    from pipelines.synth import write_dataset

    write_dataset(train.parent)
    console.print(f"made the synthetic dataset the spec names in {train.parent} (`gitops data synth --out {train.parent}`)")


class Pace:
    """The training's progress line: step, losses, time spent and, once steps come, the time left at their pace."""

    def __init__(self) -> None:
        self.first: tuple[float, int] | None = None  # (elapsed, step) when steps were first seen

    def line(self, state: str, progress: Mapping[str, Any], elapsed: float) -> str:
        parts = [f"job {state}"]
        step, total = progress.get("step"), progress.get("max_steps")
        if isinstance(step, int):
            parts.append(f"step {step}/{total or '?'}")
            if self.first is None or step < self.first[1]:
                self.first = (elapsed, step)
        if "train_loss" in progress:
            parts.append(f"loss {progress['train_loss']:.3f}")
        if "eval_loss" in progress:
            parts.append(f"eval loss {progress['eval_loss']:.3f}")
        parts.append(human(elapsed))
        if self.first is not None and isinstance(step, int) and isinstance(total, int) and step > self.first[1] and total > step:
            rate = (elapsed - self.first[0]) / (step - self.first[1])
            parts.append(f"~{human(rate * (total - step))} left")
        return " · ".join(parts)


def summary_line(record: Any, elapsed: float) -> str:
    """The last line of ``gitops run``: how it ended, how long it took, and the final losses when known."""
    report = record.report or {}
    losses = [
        f"{label} {report[key]:.3f}"
        for key, label in (("final_train_loss", "final train loss"), ("final_eval_loss", "eval loss"))
        if report.get(key) is not None
    ]
    return f"{record.run} {record.status} after {human(elapsed)}" + (f"; {', '.join(losses)}" if losses else "")


LOWER_IS_BETTER = ("loss", "perplexity", "latency")


def _print_comparison(record, lifecycle) -> None:
    """The new version beside the one before: what changed in its parameters, and its numbers, better or worse."""
    from gitops.errors import GitopsError
    from gitops.report.build import build_report, changed_params, compare, previous_version

    if lifecycle.reader_for is None or not record.previous_job:
        return
    try:
        reader = lifecycle.reader_for(record.backend)
        this, other = build_report(record, reader.job_metrics(record.job_name)), previous_version(record, reader)
    except GitopsError:
        return  # no metrics to compare: the verdict above says what is known
    if other is None:
        return
    print(f"compared with the previous version ({record.previous_job}):")
    for key, new, old in changed_params(this, other):
        print(f"  param {key}: {old} -> {new}")
    for d in compare(this, other):
        if d.change is None or d.change == 0:
            continue
        better = (d.change < 0) == any(word in d.label for word in LOWER_IS_BETTER)
        print(f"  {d.label}: {d.other:.4f} -> {d.this:.4f} ({d.change:+.4f}, {'better' if better else 'worse'})")


def _print_outcome(record, backend) -> None:
    from gitops.settings import Settings

    print(f"run {record.run}: {record.status}" + (f" ({record.error})" if record.error else ""))
    if record.gate is not None:
        verdict = record.gate
        print(f"gate: {'passed' if verdict.get('ok') else 'FAILED'}")
        for line in [*verdict.get("reasons", []), *verdict.get("notes", [])]:
            print(f"  - {line}")
    for held in record.rollout_steps:
        p95 = f", p95 {held.p95_latency_ms:.0f} ms" if held.p95_latency_ms is not None else ""
        print(
            f"traffic: {held.share}% for {human(held.held_s)}: {held.requests} requests, "
            f"{held.errors} failed{p95} ({'within bounds' if held.ok else 'OUT OF BOUNDS: rolled back'})"
        )
    if record.status == "held":
        print(
            f"the candidate waits at 0% traffic: `gitops promote {record.run} --reason ...` lets it take the traffic, "
            f"`gitops rollback {record.run} --reason ...` removes it (it is removed by itself when its hold runs out)"
        )
    if record.smoke is not None:
        print(
            f"smoke test: {'passed' if record.smoke.ok else 'FAILED'} in {record.smoke.latency_ms} ms; "
            f"reply: {record.smoke.reply_excerpt[:80]!r}" + (f"; {record.smoke.reason}" if record.smoke.reason else "")
        )
    if (record.serves or record.status == "held") and record.endpoint and record.deployment:  # what serves, whatever was tried
        info = backend.get_endpoint(record.endpoint)
        if info is not None:
            version = record.serving_version or "-"
            print(f"endpoint: {info.scoring_uri}  (deployment {record.deployment}, model {record.model_name} v{version})")
            print("call it (the key stays in the workspace; it is never printed):")
            key_file = Settings.load().workspace_dir / "endpoints" / record.endpoint / "key"
            with contextlib.suppress(ValueError):
                key_file = key_file.relative_to(Path.cwd())
            print(f'  export GITOPS_KEY="$(cat {key_file})"')
            print(f"  curl -s {info.scoring_uri} -H \"Authorization: Bearer $GITOPS_KEY\" -H 'Content-Type: application/json' \\")
            print(
                '    -d \'{"input_data": {"input_string": [{"role": "user", "content": "Tell me about rain."}], '
                '"parameters": {"max_new_tokens": 32}}}\''
            )
            print(f"  or: gitops invoke {record.run} --message 'Tell me about rain.'")


@app.command()
def status(
    name: Optional[str] = typer.Argument(None, help="One run, described whole (default: every run, a line each)."),
    as_json: bool = typer.Option(False, "--json", help="Records as JSON, times in ISO 8601 (UTC)."),
) -> None:
    """A table of runs: status, rollout step (how long in it, its deadline), job, model, endpoint, traffic, smoke, age;
    with NAME, that run described whole. Exits 1 when a record could not be read (it is named, the others shown)."""
    from gitops.lifecycle.wiring import local_lifecycle

    lifecycle = local_lifecycle()
    records = sorted((r for r in lifecycle.ledger.list() if name is None or r.run == name), key=lambda r: (r.run, _environment_index(r)))
    for _, why in lifecycle.ledger.damaged:  # one bad record is reported, and the others are still shown
        print(f"warning: {why} (skipped)", file=output.err())
    if name is not None and not records:
        from gitops.errors import NotFoundError

        raise NotFoundError(f"no run named '{name}'", hint="`gitops status` lists the runs")
    if name is not None and not as_json:  # one run: described whole, each environment in turn
        from gitops.cli.describe_cmds import describe

        sys.stdout.write("\n".join(describe(lifecycle, r) for r in records))
    else:
        _print_status(lifecycle, records, as_json)
    if lifecycle.ledger.damaged:  # the others were shown; the exit code says some were not
        raise typer.Exit(1)


def serving_of(record: Any) -> dict[str, Any] | None:
    """Where a client calls what serves, in one place: the kind, the endpoint (a managed one and its deployment, or the
    serverless endpoint of the version that serves) and its scoring URI; None while nothing serves."""
    endpoint = record.serving_endpoint
    if endpoint is None:
        return None
    managed = record.serving_kind == "managed"
    return {
        "kind": record.serving_kind,
        "endpoint": endpoint,
        "deployment": record.deployment if managed else None,
        "scoring_uri": record.scoring_uri,
    }


def _serverless_cell(lifecycle: Any, record: Any) -> str:
    from gitops.backends.base import ServesServerless
    from gitops.errors import GitopsError

    backend = lifecycle.backend_of(record)
    try:
        found = backend.get_serverless(record.deployment) if isinstance(backend, ServesServerless) else None
    except GitopsError as exc:
        return f"? ({exc.headline[:60]})"
    state = "GONE" if found is None else ("" if found.serving and found.healthy else f" {found.endpoint_state.value.upper()}")
    return f"serverless {record.deployment}" + (state if found is not None else f" {state}")


def _print_status(lifecycle: Any, records: list[Any], as_json: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    from gitops.errors import GitopsError

    if as_json:
        now = time.time()
        dumped = [
            iso_times(
                {
                    **r.model_dump(mode="json", exclude={"spec"}),
                    "environment": environment_name(r),
                    "serving": serving_of(r),
                    "cost": _cost_of(r, now),
                }
            )
            for r in records
        ]
        sys.stdout.write(json.dumps(dumped, indent=2) + "\n")
        return
    if not records:
        print(
            "no runs yet: `gitops data synth --out .gitops/data/synth` then `gitops run runs/local-tiny.yaml` starts one "
            "(on the local backend)"
        )
        return
    now = time.time()
    staged = any(environment_name(r) for r in records)  # with environments: a column says which each line is
    columns = (
        "run",
        *(("env",) if staged else ()),
        "status",
        "step",
        "job",
        "model",
        "endpoint",
        "traffic",
        "smoke",
        "gate",
        "cost",
        "age",
    )
    rows: list[tuple[str, ...]] = []
    for r in records:
        traffic = ""
        if r.serving_kind == "serverless" and r.serves:  # a serverless endpoint of its own: no split to show
            traffic = _serverless_cell(lifecycle, r)
        elif r.endpoint and (r.serves or r.cursor is not None):  # what serves, after a hold or a rollback too; a rollout's split
            try:
                info = lifecycle.backend_of(r).get_endpoint(r.endpoint)
                traffic = ", ".join(f"{d}:{p}%" for d, p in (info.traffic.items() if info else []))
                serving = info.deployment(r.deployment) if info and r.deployment else None
                if info is None or (serving is not None and not serving.healthy):
                    env = f" --env {r.environment}" if r.environment else ""
                    down = f" STOPPED (gitops start {r.run}{env})" if r.stopped_at else " DOWN (gitops reconcile starts it again)"
                    traffic += down if info else "GONE"
            except GitopsError as exc:
                traffic = f"? ({exc.headline[:60]})"
        smoke = "-" if r.smoke is None else ("ok " if r.smoke.ok else "FAIL ") + f"{r.smoke.latency_ms:.0f}ms"
        age = human(now - r.history[0].at) if r.history else "-"
        step = "-"
        if r.cursor is not None:
            c = r.cursor
            step = f"{c.step} {human(now - c.entered_at)} (deadline in {human(c.deadline_at - now)})" + (f": {c.last}" if c.last else "")
        gate = _gate_cell(r.gate)
        rows.append(
            (
                r.run,
                *((environment_name(r) or "-",) if staged else ()),
                r.status,
                step,
                r.job_name,
                _model_cell(r),
                r.endpoint or "-",
                traffic or "-",
                smoke,
                gate,
                _cost_cell(r, now),
                age,
            )
        )
    if not sys.stdout.isatty():  # piped or redirected: plain tab-separated columns, nothing cut to fit 80 columns
        sys.stdout.write("\t".join(columns) + "\n" + "".join("\t".join(row) + "\n" for row in rows))
        return
    table = Table(*columns)
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def _spend(record: Any, now: float) -> Any:
    """The run's cost so far and expected (gitops.cost.spend), or None when it cannot be priced."""
    from gitops.cost.spend import priced
    from gitops.lifecycle.wiring import price_book

    return priced(record, price_book(live=False), now)[0]


def _cost_cell(record: Any, now: float) -> str:
    """Spent so far: dollars where the backend bills, "-" where it does not (this machine), "?" when unknown."""
    spent = _spend(record, now)
    if spent is None or (spent.billed and spent.so_far_usd is None):
        return "?"
    return f"${spent.so_far_usd:,.2f}" if spent.billed else "-"


def _cost_of(record: Any, now: float) -> dict[str, Any] | None:
    spent = _spend(record, now)
    if spent is None:
        return None
    return {
        "billed": spent.billed,
        "so_far_usd": spent.so_far_usd,
        "expected_usd": spent.expected_usd,
        "expected_basis": spent.expected_basis,
        "training_hours": round(spent.training_hours, 3),
        "instance_hours": round(spent.instance_hours, 3),
        "prices": spent.prices_from,
    }


def environment_name(record: Any) -> str | None:
    """The environment a record is the state of: a later one's own name, the first one's from the policy it was
    checked against (None: no environments)."""
    if record.environment:
        return str(record.environment)
    declared = (record.policy or {}).get("environments") or []
    return str(declared[0].get("name")) if declared and isinstance(declared[0], dict) else None


def _environment_index(record: Any) -> int:
    """Where a record's environment stands in its run's path (the first environment first)."""
    declared = [e.get("name") for e in (record.policy or {}).get("environments") or [] if isinstance(e, dict)]
    name = environment_name(record)
    return declared.index(name) if name in declared else 0


def _gate_cell(gate: dict[str, Any] | None, width: int = 48) -> str:
    """The gate in one short cell: its first reason, cut at a word (never mid-phrase) with how many more follow;
    `gitops status NAME` shows every criterion."""
    if gate is None:
        return "-"
    if gate.get("ok"):
        return "ok"
    reasons = [str(r) for r in gate.get("reasons") or []] or ["no reason recorded"]
    first = reasons[0]
    if len(first) > width:
        first = first[: first.rfind(" ", 0, width)].rstrip(" ,;(") + " …" if " " in first[:width] else first[:width] + "…"
    more = f" (+{len(reasons) - 1} more)" if len(reasons) > 1 else ""
    return f"FAILED: {first}{more}"


def _model_cell(r: Any) -> str:
    """What serves, and beside it the version last tried when that is another (held, rejected, rolled back)."""
    serving = f"{r.model_name or '-'} v{r.serving_version or '-'}"
    return f"{serving} (tried v{r.tried_version}: {r.status})" if r.tried_version and r.cursor is None else serving


@app.command()
def invoke(
    name: str = typer.Argument(..., help="A run name, or its endpoint's name."),
    message: str = typer.Option(..., help="The user turn."),
    max_new_tokens: int = typer.Option(64, help="At most this many tokens in the answer."),
    deployment: Optional[str] = typer.Option(
        None,
        "--deployment",
        help="One deployment of the endpoint, e.g. a candidate at 0% (default: the traffic split); for a serverless run, the "
        "candidate's serverless endpoint (default: the one that serves).",
    ),
    env: Optional[str] = ENV_OPTION,
) -> None:
    """One chat turn against what the run's endpoint serves now (held or rolled-back candidates aside), or one deployment
    (a serverless run: its serving endpoint, or a candidate's serverless endpoint), on the contract of its kind."""
    from gitops.errors import BackendError, NotFoundError, UnreachableError
    from gitops.ledger.model import environment_key
    from gitops.lifecycle.serving import chat
    from gitops.lifecycle.smoke import extract_reply
    from gitops.lifecycle.wiring import local_lifecycle

    lifecycle = local_lifecycle()
    record = _run_named(lifecycle, environment_key(name, env))
    if record is None or not record.endpoint or record.status == "retired" or not (record.deployment or deployment):
        raise NotFoundError(
            f"run '{name}' has nothing serving" if record else f"no run or endpoint named '{name}'",
            hint="see `gitops status`; a candidate at 0% is reached with --deployment NAME" if record else "see `gitops status`",
        )
    backend = lifecycle.backend_of(record)
    serverless = _is_serverless(backend, record, deployment)
    managed_candidate = record.cursor is not None and not record.cursor.serverless  # a change of kind under way
    if deployment and not serverless and record.serving_kind == "serverless" and not managed_candidate:
        raise NotFoundError(
            f"run '{name}' has no serverless endpoint named '{deployment}'",
            hint=f"`gitops status {name}` names the one that serves and a candidate's",
        )
    target = deployment or (record.deployment if serverless else None)
    try:
        result = chat(
            backend,
            record.endpoint,
            target,
            serverless=serverless,
            messages=[{"role": "user", "content": message}],
            parameters={"max_new_tokens": max_new_tokens},
            timeout_s=60.0,
        )
    except BackendError as exc:
        from gitops.spec.capabilities import Feature, kind_of

        down = kind_of(record.backend).supports(Feature.SERVER_RESTART) and isinstance(exc, UnreachableError)
        raise BackendError(
            exc.headline, hint=f"the endpoint's server is not running: `gitops start {record.run}` starts it" if down else exc.hint
        ) from None
    if result.status_code != 200:  # one line, and a failing exit code
        raise BackendError(
            f"endpoint {target if serverless else record.endpoint} answered {result.status_code}: {result.body[:200]}",
            hint="see `gitops status`; the endpoint's limits are in README (The local backend)",
        )
    print(extract_reply(result.body))


def _is_serverless(backend: Any, record: Any, deployment: str | None) -> bool:
    """Whether the request goes to a serverless endpoint: the run's serving one, or (``--deployment``) a serverless
    endpoint of this run's, as a candidate's is."""
    from gitops.backends.base import ServesServerless
    from gitops.spec import naming

    if deployment is None:
        return bool(record.serving_kind == "serverless")
    if not isinstance(backend, ServesServerless):
        return False
    found = backend.get_serverless(deployment)
    return found is not None and found.tags.get(naming.TAG_RUN) == record.run


def _run_named(lifecycle: Any, name: str) -> Any:
    """The record of the run called ``name``, else of the run whose endpoint is called ``name`` (None: neither)."""
    got = lifecycle.ledger.get(name)
    if got is not None:
        return got[0]
    return next((r for r in lifecycle.ledger.list() if r.endpoint == name), None)


@app.command()
def event(
    file: Path = typer.Argument(..., help="An Event Grid or CloudEvents event (or an array) as JSON."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would be done, without acting."),
) -> None:
    """Replay a job event (from a dead-letter container, say) through the same handler, then take the first steps.

    One line per event. Exit 0 when every event was read (acted on, or ignored with the reason why), 1 when
    the file or an event in it could not be read, 4 when the file does not exist."""
    from gitops.errors import NotFoundError, RequestError
    from gitops.events import EventFormatError, NotARunEvent, parse_each
    from gitops.lifecycle.wiring import local_lifecycle

    try:
        body = file.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"{file}: no such file") from None
    except OSError as exc:
        raise RequestError(f"{file}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    try:
        events = parse_each(body)
    except EventFormatError as exc:
        raise RequestError(f"{file}: {exc}", hint="give the event JSON as Event Grid delivered it") from None
    from gitops.spec import naming

    lifecycle = local_lifecycle()
    unreadable = sum(1 for e in events if isinstance(e, EventFormatError) and not isinstance(e, NotARunEvent))
    if dry_run:
        for e in events:
            if isinstance(e, EventFormatError):
                print(f"- ignored: {e}" if isinstance(e, NotARunEvent) else f"- malformed: {e}")
                continue
            run = e.tags.get(naming.TAG_RUN)
            got = lifecycle.ledger.get(run) if run else None
            state = f"run is {got[0].status}" if got else "not a run of this repository"
            print(f"{e.id} {e.short_type} run={run or '-'} job={e.run_id} outcome={e.outcome or '-'} ({state})")
    else:
        for d in lifecycle.on_job_event(body):
            print(f"{d.event_id or '-'} {d.run or '-'}: {d.action} - {d.reason}")
            if d.action == "scheduled" and d.run:  # no queue in a shell: take the first steps here
                step = lifecycle.advance(d.run)
                print(
                    f"{d.run}: {step.action} - {step.reason}" + ("  (continue with `gitops reconcile`)" if step.action == "waiting" else "")
                )
    if unreadable:
        raise typer.Exit(1)


@app.command()
def retry(name: str = typer.Argument(..., help="The run whose job failed or was canceled.")) -> None:
    """Start a new attempt of a run's failed job (a new job, -a2, -a3...; at most three attempts of one version)."""
    from gitops.lifecycle.wiring import local_lifecycle

    record = local_lifecycle().retry(name, who="cli")
    print(f"run {record.run}: attempt {record.attempt}, job {record.job_name} {record.status}")
    print("follow it with `gitops status`; `gitops reconcile` takes it on when the job ends")


def _who() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _where(record: Any) -> str:
    """A record as a person names it: the run, and the environment when it is a later one's."""
    return record.run + (f" in {record.environment}" if record.environment else "")


@app.command()
def promote(
    name: str = typer.Argument(..., help="The run whose candidate is held by the gate."),
    reason: str = typer.Option(..., help="Why the candidate goes live although the gate failed (recorded)."),
    env: Optional[str] = ENV_OPTION,
) -> None:
    """Override a held gate: the candidate takes the traffic. Recorded in the run's history with who and why.
    (Letting a version into the next environment is `gitops release`.)"""
    from gitops.ledger.model import environment_key
    from gitops.lifecycle.wiring import local_lifecycle

    lifecycle, key = local_lifecycle(), environment_key(name, env)
    record = lifecycle.promote(key, who=_who(), reason=reason)
    if record.cursor is not None:
        record = lifecycle.settle(key)
    print(f"run {_where(record)}: {record.status}" + (f", {record.deployment} takes the traffic" if record.status == "live" else ""))
    raise typer.Exit(0 if record.status == "live" else 1)


@app.command()
def rollback(
    name: str = typer.Argument(..., help="A held, rolling-out or live run."),
    reason: str = typer.Option(..., help="Why (recorded in the run's history)."),
    env: Optional[str] = ENV_OPTION,
) -> None:
    """A held candidate is removed (the run is rejected); a rollout in progress stops and its candidate is removed;
    a live run goes back to the deployment before it, while that one still exists (in a later environment: to the
    version released there before). Nothing in another environment changes."""
    from gitops.ledger.model import environment_key
    from gitops.lifecycle.wiring import local_lifecycle

    lifecycle, key = local_lifecycle(), environment_key(name, env)
    lifecycle.rollback(key, who=_who(), reason=reason)
    record = lifecycle.settle(key)
    print(f"run {_where(record)}: {record.status}" + (f", {record.deployment} serves" if record.deployment else ""))
    raise typer.Exit(0 if record.cursor is None else 1)


@app.command()
def release(
    name: str = typer.Argument(..., help="The run whose promotion is due (gitops status NAME shows it)."),
    to: str = typer.Option(..., "--to", help="The environment it goes to (gitops.yaml environments:)."),
    reason: str = typer.Option(..., help="Why it goes there now (recorded with who released it)."),
    job: Optional[str] = typer.Option(None, help="The version approved, by its job (default: the promotion due now)."),
) -> None:
    """Let a due promotion into its environment: the model proven before is received from the registry (never
    trained again) and rolled out there by the same steps, gate and deadlines of that environment. An Azure run is
    released by a reviewer of the GitHub Environment, through the promote workflow; from a shell only in admin mode
    (GITOPS_ADMIN_RELEASE=1), recorded as such."""
    from gitops.errors import GitopsError
    from gitops.lifecycle.wiring import local_lifecycle
    from gitops.settings import Settings

    lifecycle = local_lifecycle()
    got = lifecycle.ledger.get(name)
    admin = Settings.load().admin_release
    if got is not None and got[0].backend != "local" and not admin:
        raise GitopsError(
            f"run '{name}' runs on {got[0].backend}: its release is approved in GitHub, not from a shell",
            hint=f"approve the promote workflow's job for environment {to} (its reviewers), or set GITOPS_ADMIN_RELEASE=1 "
            "where your organisation allows an administrator to release",
        )
    via = "gitops release (admin mode)" if admin and got is not None and got[0].backend != "local" else "gitops release"
    record = lifecycle.release(name, to, by=_who(), reason=reason, via=via, job=job)
    if record.cursor is not None:
        record = lifecycle.settle(record.key)
    print(f"run {_where(record)}: {record.status}" + (f", {record.deployment} serves" if record.serves else ""))
    if record.status == "held":
        print(f"next: gitops promote {name} --env {to} --reason ...  or  gitops rollback {name} --env {to} --reason ...")
    raise typer.Exit(0 if record.status in ("live", "held") else 1)


@app.command()
def reconcile(
    name: Optional[str] = typer.Argument(
        None,
        help="One run: also restores its endpoint to what the ledger "
        "declares (traffic, deployments nobody asked for). "
        "Default: every run, steps only.",
    ),
) -> None:
    """Continue runs whose job event never came, and take rollout steps that are due."""
    from gitops.lifecycle.reconcile import SKIPPED
    from gitops.lifecycle.wiring import local_lifecycle
    from gitops.watch.scan import restore_run

    lifecycle = local_lifecycle()
    decisions = lifecycle.reconcile(name)
    skipped = [d for d in decisions if d.action == SKIPPED]
    for d in decisions:
        print(f"{d.run}: {d.action} - {d.reason}", file=output.err() if d.action == SKIPPED else sys.stdout)
    got = lifecycle.ledger.get(name) if name and not skipped else None
    backend = lifecycle.backend_for(got[0].backend) if got else None
    restored = restore_run(lifecycle.ledger, backend, got[0], time.time(), repo=lifecycle.repo) if got and backend else []
    for line in restored:
        print(line)
    if not decisions and not restored:
        print("nothing to do: no run waits for a step that is due" + (f", and {name}'s endpoint runs as declared" if got else ""))
    if skipped:
        print(f"{len(skipped)} run(s) skipped: fix or delete their records (each is named above)", file=output.err())
        raise typer.Exit(1)
