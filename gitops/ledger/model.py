"""The typed run record kept in the ledger, and the store interface every ledger implements."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gitops.ledger.step_state import Evaluation, HeldShare, Ramp
from gitops.ledger.transitions import Asker, RunStatus, refusal
from gitops.spec.naming import Digests
from gitops.spec.policy import Deadlines, GateRules, Policy, WorkspaceRef

if TYPE_CHECKING:
    from gitops.spec.model import RunSpec


class HistoryEntry(BaseModel):
    at: float
    status: str
    note: str = ""


class SmokeResult(BaseModel):
    ok: bool
    status_code: int | None = None
    latency_ms: float | None = None
    reply_excerpt: str = ""
    reason: str = ""
    at: float = Field(default_factory=time.time)


class Cursor(BaseModel):
    """Where a run's rollout stands: the step, since when, how often it looked, when to look again, its deadline,
    and what the steps so far produced. Persisted with the record, so any process can take the next step."""

    plan: Literal["rollout", "rollback", "hold"] = "rollout"
    step: str
    entered_at: float
    attempt: int = 0  # how many times the step has looked (waits and transient failures)
    not_before: float  # when to look again
    deadline_at: float  # past it, the step fails and the rollout rolls back
    started_at: float  # when the rollout began
    endpoint: str | None = None
    deployment: str | None = None  # the candidate deployment
    previous: str | None = None  # what served before the candidate
    model_version: str | None = None
    model_uri: str | None = None
    reason: str | None = None  # why a rollback runs
    last: str = ""  # what the step saw last time (e.g. "deployment v3-abc Creating"), for status
    evaluation: Evaluation = Field(default_factory=Evaluation)  # the gate's work so far (conversations asked, verdicts)
    decided_by: str | None = None  # a person's decision (promote, rollback): the gate does not apply
    ending: RunStatus | None = None  # how a rollback ends when not "rolled_back" (a held candidate "rejected")
    ramp: Ramp = Field(default_factory=Ramp)  # gradual traffic so far: the share, its visit, the hold's mark
    # Serverless serving (deploy.kind): the candidate is a serverless endpoint of its own (``deployment`` names it), and
    # what served before may be either kind (a run that changes kind keeps the old one serving until the switch).
    serverless: bool = False
    previous_serverless: bool = False
    scoring_uri: str | None = None  # where the candidate answers, once it is ready

    @property
    def serving(self) -> str | None:
        """The deployment that serves beside the candidate (None for a first version, or a redeploy onto itself)."""
        return self.previous if self.previous and self.previous != self.deployment else None


def _split_digests(data: Any) -> Any:
    """Records written before the digest was split carry one, of the whole spec: their training and deployment
    digests are worked out from the stored spec, so the same spec submitted again is still known (no second job)."""
    if isinstance(data, dict) and not data.get("training_digest") and isinstance(data.get("spec"), dict) and data["spec"]:
        from gitops.spec.model import RunSpec
        from gitops.spec.naming import digests

        try:
            both = digests(RunSpec.model_validate(data["spec"]), dict(data.get("params") or {}))
        except (ValueError, TypeError):  # a spec this version cannot read: any new version is a new training
            return data
        return {**data, "training_digest": both.training, "deployment_digest": both.deployment}
    return data


class _Digested(BaseModel):
    """A version of a run: its whole digest, and the digests that decide a new job and a new deployment."""

    digest: str
    training_digest: str = ""
    deployment_digest: str = ""

    _migrate = model_validator(mode="before")(_split_digests)

    @field_validator("gate_rules", mode="before", check_fields=False)
    @classmethod
    def _rules_of_before_the_gate(cls, value: Any) -> Any:
        """A record written before the gate kept no rules (``{}``): it is judged by ``GateRules.before_the_gate``."""
        return GateRules.before_the_gate() if value == {} else value

    def digests(self) -> Digests:
        return Digests(self.digest, self.training_digest or self.digest, self.deployment_digest or self.digest)


class QueuedVersion(_Digested):
    """A new version submitted while a rollout was in progress: it starts when the rollout ends."""

    job_name: str
    spec: dict[str, Any]
    params: dict[str, Any] = Field(default_factory=dict)
    commit: str | None = None
    pr: str | None = None
    test_path: str | None = None
    submitted_at: float
    timeouts: Deadlines = Field(default_factory=Deadlines)
    gate_rules: GateRules = Field(default_factory=GateRules.before_the_gate)
    policy: dict[str, Any] | None = None
    model_name: str | None = None  # None: queued by a release that kept only the spec
    endpoint: str | None = None
    # A later environment's version is a registry model already trained and approved, not a job to check:
    model_version: str | None = None
    model_digest: str | None = None
    approval: Approval | None = None


class PromotionState(StrEnum):
    SHARING = "sharing"  # the conditions held and the model is being copied into the registry (an Azure ML import)
    DUE = "due"  # the conditions held and the model is in the registry: waiting for the target's approval
    RELEASED = "released"  # approved: the target environment's rollout of it began (or waits its turn there)
    SUPERSEDED = "superseded"  # a newer version became due before it was released: never released


class Approval(BaseModel):
    """Who let a version into an environment, when and why (a GitHub Environment's reviewer, through the job it
    approved; or a person at a shell where releasing is allowed)."""

    model_config = ConfigDict(extra="forbid")

    by: str
    at: float
    reason: str = ""
    via: str = ""  # the workflow run (GitHub) or the shell (local) it came through


class Promotion(BaseModel):
    """A version's way into the next environment: its model shared into the registry once (name, version, content
    digest), due since the conditions held."""

    model_config = ConfigDict(extra="forbid")

    to: str  # the environment it goes to
    job_name: str  # the version: the job whose model it is
    model: str  # its name in the registry
    version: str
    digest: str  # the content digest computed where it was trained: what the target must serve
    due_at: float  # when it became due (while sharing: when the share was started)
    state: PromotionState = PromotionState.DUE
    approval: Approval | None = None  # set when released


class RunRecord(_Digested):
    run: str
    # None: the run's first environment (where it trains), or its one workspace without environments. A later
    # environment's state is a record of its own (``key``: ``<run>.<environment>``), walked by the same step machine.
    environment: str | None = None
    backend: str
    job_name: str
    status: RunStatus = RunStatus.SUBMITTED
    spec: dict[str, Any] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    commit: str | None = None
    pr: str | None = None
    model_name: str | None = None
    model_version: str | None = None  # the version last registered for the run: the one tried, whether it went live or not
    model_digest: str | None = None  # that version's content digest, as its trainer computed it (None: not computed)
    serving_model_version: str | None = None  # the version the serving deployment holds (set when a rollout completes)
    endpoint: str | None = None
    deployment: str | None = None
    previous_deployment: str | None = None
    smoke: SmokeResult | None = None
    error: str | None = None
    processed_events: list[str] = Field(default_factory=list)
    history: list[HistoryEntry] = Field(default_factory=list)
    test_path: str | None = None  # the prepared test split: the default smoke-test conversation comes from it
    previous_job: str | None = None  # the job of the version before this one: what a report compares with
    report: dict[str, Any] | None = None  # the run report's summary, attached when the run goes live
    previous_report: dict[str, Any] | None = None  # the summary of the version live before this one
    last_cleanup: dict[str, Any] | None = None  # the latest cleanup decision about the run's endpoint
    claimed_until: float | None = None  # a claim's lease: a step is being taken by some process until then
    claim: str | None = None  # who holds the claim (a token per advance)
    cursor: Cursor | None = None  # the rollout in progress, if any
    queued: QueuedVersion | None = None  # the version that starts when the rollout ends
    promotions: list[Promotion] = Field(default_factory=list)  # to the environments after the first (gitops.yaml)
    approval: Approval | None = None  # a later environment's: who released the version it rolls out or serves
    # A later environment's: the versions released into it, newest last (what its register step receives from the
    # registry, and what a rollback there goes back to), each with its content digest and approval.
    received: list[Promotion] = Field(default_factory=list)
    timeouts: Deadlines = Field(default_factory=Deadlines)  # per-phase deadlines (seconds), resolved at submit
    attempt: int = 1  # the job attempt of this version: a retry of a failed job is a new job, suffixed -a2, -a3...
    gate_rules: GateRules = Field(default_factory=GateRules.before_the_gate)  # resolved at submit (spec, then policy)
    policy: dict[str, Any] | None = None  # the repo policy it was submitted with: what the timers apply to it
    gate: dict[str, Any] | None = None  # the gate's last verdict, with its numbers
    serving_job: str | None = None  # the job whose model the serving deployment holds: what the gate compares with
    previous_serving_job: str | None = None  # the job served before it: what a rollback of a live run goes back to
    previous_kept_until: float | None = None  # the replaced deployment stays at 0% until then (deploy.keep_previous_for)
    # What serves: a deployment (``deployment``) of the managed endpoint ``endpoint``, or the serverless endpoint named
    # ``deployment`` (one per version; ``endpoint`` is then the run's endpoint name they are named after). A client
    # finds it in one place: ``serving_endpoint`` and ``scoring_uri`` (``gitops status --json``).
    serving_kind: Literal["managed", "serverless"] = "managed"
    previous_serving_kind: Literal["managed", "serverless"] = "managed"
    scoring_uri: str | None = None  # where what serves answers (a serverless endpoint's base URL; a managed one's /score)
    previous_scoring_uri: str | None = None  # where the replaced one answers (a rollback to it makes it ``scoring_uri``)
    rollout_steps: list[HeldShare] = Field(default_factory=list)  # the last rollout's shares held, with their figures
    # How long this run's provisionings took, by kind ("endpoint", "deployment <sku>", "serverless"), the last few
    # in seconds: the next wait on the same kind looks near when it is expected to be done (gitops.lifecycle.pacing).
    provisioned: dict[str, list[float]] = Field(default_factory=dict)
    # A person stopped the endpoint's server (`gitops stop`): reconcile leaves it down until `gitops start` or the next
    # rollout; a server that died without this mark is started again.
    stopped_at: float | None = None
    updated_at: float = Field(default_factory=time.time)

    @property
    def key(self) -> str:
        """The record's name in the ledger: the run's, and ``<run>.<environment>`` for a later environment."""
        return environment_key(self.run, self.environment)

    def entered(self, status: str) -> float | None:
        """When the run last moved to ``status`` (its history's last entry of that status; None: never)."""
        return next((h.at for h in reversed(self.history) if h.status == status), None)

    @property
    def serving_endpoint(self) -> str | None:
        """The endpoint a client calls: the managed endpoint, or the serverless endpoint that serves (None: none)."""
        if not self.deployment or self.status == "retired":
            return None
        return self.deployment if self.serving_kind == "serverless" else self.endpoint

    @property
    def serves(self) -> bool:
        """Whether the record declares a deployment serving now that no rollout is moving (a new job may be training:
        the deployment before it still serves)."""
        return bool(self.endpoint and self.deployment) and self.cursor is None and self.status != "retired"

    @property
    def serving_version(self) -> str | None:
        """The model version that serves, apart from the one last tried (a held or rolled-back candidate's). Records
        from before the two were kept apart know it only while live; otherwise it is unknown (None), never guessed."""
        return self.serving_model_version or (self.model_version if self.status == "live" else None)

    @property
    def tried_version(self) -> str | None:
        """The version last tried when it is not the one that serves (a candidate held, rejected or rolled back)."""
        return self.model_version if self.model_version and self.model_version != self.serving_version else None

    def retired(self, reason: str, at: float | None = None) -> RunRecord:
        """What retiring a run means, wherever it is decided (cleanup, the watch, `gitops delete`): its endpoint is
        gone, so nothing serves (no deployment), and a later merge of its spec deploys it anew."""
        return self.moved(RunStatus.RETIRED, reason, at, by=Asker.RETIREMENT).model_copy(update={"deployment": None})

    def moved(self, status: RunStatus, note: str = "", at: float | None = None, *, by: Asker) -> RunRecord:
        """A copy in ``status`` with the step appended to the history; ``TransitionError`` naming the run, both
        statuses and who asked when the run never moves that way, or not at ``by``'s asking (``TRANSITIONS``)."""
        refused = refusal(self.key, self.status, status, by)
        if refused is not None:
            from gitops.errors import TransitionError

            raise TransitionError(refused[0], hint=refused[1])
        now = time.time() if at is None else at
        return self.model_copy(
            update={"status": status, "updated_at": now, "history": [*self.history, HistoryEntry(at=now, status=status, note=note)]}
        )


M = TypeVar("M", bound=BaseModel)


def with_fields(model: M, fields: Mapping[str, Any]) -> M:
    """A copy of ``model`` with ``fields`` set, validated as the model's own fields are (``model_copy(update=)``
    validates nothing: a dict would stay a dict, a misspelt field would be dropped). A name the model lacks is a
    ``TypeError``: a step's outcome that names no field of the cursor or the record is a bug to see."""
    if "status" in fields:
        raise TypeError("a status is moved (RunRecord.moved, along gitops.ledger.transitions), never set")
    unknown = sorted(set(fields) - set(type(model).model_fields))
    if unknown:
        raise TypeError(f"{type(model).__name__} has no field {', '.join(unknown)}")
    return type(model).model_validate({**model.model_dump(), **fields})


def first_error(exc: BaseException) -> str:
    """One line for why data was refused: the first pydantic error with its field path, or the message's first line."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError) and exc.errors():
        first = exc.errors()[0]
        path = ".".join(str(p) for p in first.get("loc", ()))
        return f"{path}: {first['msg']}" if path else str(first["msg"])
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def stored_spec(record: RunRecord | QueuedVersion, run: str | None = None) -> RunSpec:
    """The spec a record (or the version queued on run ``run``) was submitted with, parsed by today's schema, for
    what needs the whole spec (a backend submitting it, the steps deploying it); ``CorruptRecordError`` naming the
    run and the field when an older version accepted what today's refuses (``lifecycle.expire_after: 1000000000d``)."""
    from gitops.errors import CorruptRecordError
    from gitops.spec.model import RunSpec

    try:
        return RunSpec.model_validate(record.spec)
    except (ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
        name = run or getattr(record, "run", "?")
        raise CorruptRecordError(
            f"run {name}: its stored spec fails today's schema at spec.{first_error(exc)[:160]}",
            hint="merge the spec again (fixed) to replace it, or `gitops delete` the run",
        ) from None


# A run's name, and for a later environment's record a '.' and the environment's (no spec name has a '.').
_RECORD_KEY = re.compile(r"[a-z0-9][a-z0-9-]{0,63}(\.[a-z][a-z0-9-]{0,19})?")


def environment_key(run: str, environment: str | None) -> str:
    """The ledger name of a run's state in ``environment`` (None: its first environment, under the run's own name)."""
    return f"{run}.{environment}" if environment else run


def split_key(key: str) -> tuple[str, str | None]:
    """(run, environment) of a ledger name (``environment_key`` inverted)."""
    run, _, environment = key.partition(".")
    return run, environment or None


def is_run_key(value: object) -> bool:
    """Whether ``value`` names a run's state from outside (a queue message, a URL): a spec's name
    (``is_run_name``), with a later environment's '.<environment>'."""
    from gitops.spec.model import ENVIRONMENT_NAME_PATTERN, is_run_name

    if not isinstance(value, str):
        return False
    run, environment = split_key(value)
    return is_run_name(run) and (environment is None or re.fullmatch(ENVIRONMENT_NAME_PATTERN, environment) is not None)


def is_record_key(run: str) -> bool:
    """Whether ``run`` can name a record in storage: one path segment of lowercase letters, digits and '-' (every
    spec name is one), with a later environment's '.<environment>'. Anything else (``../documents/watch``, a slash,
    two dots) names no record, and a ledger never turns it into a path or a blob name."""
    return isinstance(run, str) and _RECORD_KEY.fullmatch(run) is not None


def key_of(record: RunRecord) -> str:
    """The ledger name ``record`` is written under (``RunRecord.key``), or ``RequestError`` when its run or its
    environment could not name a record: a run's name never carries the '.' that sets an environment apart."""
    if "." in record.run:
        from gitops.errors import RequestError

        raise RequestError(
            f"{record.run[:80]!r} cannot name a run", hint="a run is named by its spec's name: lowercase letters, digits, '-'"
        )
    return record_key(record.key)


def record_key(run: str) -> str:
    """``run`` when it can name a record; ``RequestError`` when a record would be written under another name."""
    from gitops.errors import RequestError

    if not is_record_key(run):
        raise RequestError(f"{run[:80]!r} cannot name a run", hint="a run is named by its spec's name: lowercase letters, digits, '-'")
    return run


def parse_record(raw: Any, where: str) -> RunRecord:
    """A stored record, or ``CorruptRecordError`` naming where it is and what is wrong with it."""
    from pydantic import ValidationError

    from gitops.errors import CorruptRecordError

    try:
        data = json.loads(raw) if isinstance(raw, str | bytes) else raw
        return RunRecord.model_validate(data)
    except (ValueError, TypeError, RecursionError, ValidationError) as exc:
        reason = first_error(exc)
        raise CorruptRecordError(
            f"ledger record {where} cannot be read: {reason[:160]}", hint="restore it from a backup, or delete it and submit the spec again"
        ) from None


SUMMARY_SCHEMA = "1"


@dataclass(frozen=True)
class RecordSummary:
    """What a ledger keeps beside each record (a blob's metadata), so that a timer finds the records it must read
    without reading the others: the status, when the rollout's cursor looks again, the claim's lease, whether it
    serves, its backend, whether its policy names environments. ``status`` None: no summary was kept (a record
    written before summaries, or by hand), so the record must be read to know."""

    key: str
    status: str | None = None
    not_before: float | None = None  # the cursor's next look (None: no rollout in progress)
    claimed_until: float | None = None
    serves: bool = False
    backend: str = ""
    staged: bool = False  # its policy names environments: a live run's promotion is looked at

    @property
    def known(self) -> bool:
        return self.status is not None

    @classmethod
    def of(cls, record: RunRecord) -> RecordSummary:
        return cls(
            key=record.key,
            status=str(record.status),
            not_before=record.cursor.not_before if record.cursor is not None else None,
            claimed_until=record.claimed_until if record.claim else None,  # a lease counts only while someone holds it
            serves=record.serves,
            backend=record.backend,
            staged=bool((record.policy or {}).get("environments")),
        )

    def to_metadata(self) -> dict[str, str]:
        """As blob metadata: ASCII names and values."""

        def number(value: float | None) -> str:
            return "" if value is None else repr(float(value))

        return {
            "gitops_summary": SUMMARY_SCHEMA,
            "gitops_status": self.status or "",
            "gitops_not_before": number(self.not_before),
            "gitops_claimed_until": number(self.claimed_until),
            "gitops_serves": "1" if self.serves else "0",
            "gitops_backend": self.backend,
            "gitops_staged": "1" if self.staged else "0",
        }

    @classmethod
    def from_metadata(cls, key: str, metadata: Mapping[str, str] | None) -> RecordSummary:
        """The summary a blob's metadata holds; unknown (``status`` None) when it holds none this version reads."""
        m = {k.lower(): v for k, v in (metadata or {}).items()}
        if m.get("gitops_summary") != SUMMARY_SCHEMA or not m.get("gitops_status"):
            return cls(key)

        def number(name: str) -> float | None:
            try:
                value = float(m.get(name) or "nan")
            except ValueError:
                return None
            return value if value == value else None  # NaN: none

        return cls(
            key=key,
            status=m["gitops_status"],
            not_before=number("gitops_not_before"),
            claimed_until=number("gitops_claimed_until"),
            serves=m.get("gitops_serves") == "1",
            backend=m.get("gitops_backend", ""),
            staged=m.get("gitops_staged") == "1",
        )


class Ledger(Protocol):
    damaged: list[tuple[str, str]]  # what the last ``list`` (or ``summaries``) could not read: (where, why)

    def get(self, run: str) -> tuple[RunRecord, str] | None:
        """The record and its version token (an ETag), or None (a name that cannot name a record, ``is_record_key``,
        is never looked up). ``CorruptRecordError`` when it cannot be read."""
        ...

    def put(self, record: RunRecord, expected: str | None) -> str:
        """Write if the stored version is still ``expected`` (None: must not exist); raise ConflictError if not, and
        RequestError for a run that cannot name a record (``record_key``)."""
        ...

    def summaries(self) -> list[RecordSummary]:
        """Every record's summary, as cheaply as the store allows (Blob Storage: the listing's pages, metadata
        included; no record is read). Names that cannot be a record's are named in ``damaged``."""
        ...

    def list(self) -> list[RunRecord]:
        """Every readable record; the unreadable ones are skipped and named in ``damaged`` (one bad record never
        takes the others down)."""
        ...

    def remember_event(self, event_id: str, summary: dict[str, Any]) -> bool:
        """The processed-event index: record ``event_id``; False when it was already recorded."""
        ...

    def save_document(self, name: str, body: dict[str, Any]) -> None:
        """Keep a document that is not a run (the watch's latest findings), replacing the one of that name."""
        ...

    def load_document(self, name: str) -> dict[str, Any] | None:
        """A document ``save_document`` kept (None when there is none, or it cannot be read)."""
        ...


def lookup(ledger: Ledger) -> Callable[[str], RunRecord | None]:
    """A run's record by name, None when there is none or it cannot be read: for what only informs (a plan's
    duration estimate, a change's effect), where one unreadable record must not stop the answer."""
    from gitops.errors import GitopsError

    def record(run: str) -> RunRecord | None:
        try:
            found = ledger.get(run)
        except GitopsError:
            return None
        return found[0] if found else None

    return record


def update(ledger: Ledger, run: str, change: Callable[[RunRecord], RunRecord | None], attempts: int = 5) -> RunRecord | None:
    """Read-modify-write with retries on conflict; ``change`` returns None to leave the record alone."""
    from gitops.errors import ConflictError, NotFoundError

    for _ in range(attempts):
        current = ledger.get(run)
        if current is None:
            raise NotFoundError(f"no run named '{run}' in the ledger")
        record, version = current
        new = change(record)
        if new is None:
            return None
        try:
            ledger.put(new, version)
            return new
        except ConflictError:
            continue
    raise ConflictError(f"run '{run}' kept changing under us; try again")


def endpoint_move(record: RunRecord, endpoint: str) -> tuple[str, str] | None:
    """(why, hint) when a new version would move a run that serves to another endpoint: the old endpoint would go on
    serving the old model, tagged as this run's and out of every later rollout's reach. Replace, don't move."""
    if record.status == "retired" or not record.deployment or not record.endpoint or record.endpoint == endpoint:
        return None
    return (
        f"run '{record.run}' serves on endpoint {record.endpoint}; moving it to {endpoint} would leave {record.endpoint} "
        "serving the old model",
        f"keep deploy.endpoint: {record.endpoint}, or retire the run first (gitops cleanup, or delete its endpoint), "
        "then merge the new endpoint",
    )


def workspace_of(record: RunRecord) -> WorkspaceRef:
    """The workspace of a later environment's record, as its stored policy names it (``CorruptRecordError`` when the
    policy no longer names the environment: nothing acts on a workspace it cannot name)."""
    from gitops.errors import CorruptRecordError

    try:
        return Policy.model_validate(record.policy or {}).environment(record.environment or "").workspace
    except (KeyError, ValueError):
        raise CorruptRecordError(
            f"run {record.key}: its stored policy names no environment {record.environment!r}",
            hint="release the run into the environment again, or `gitops delete` the record",
        ) from None
