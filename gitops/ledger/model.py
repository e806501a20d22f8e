"""The typed run record kept in the ledger, and the store interface every ledger implements."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

RunStatus = Literal["submitted", "running", "completed", "deploying", "live", "rolled_back", "failed", "canceled",
                    "superseded", "retired"]
# A run waits for its job's outcome in these states; "deploying" means a handler holds the claim.
AWAITING_JOB: tuple[str, ...] = ("submitted", "running", "completed")
IN_FLIGHT: tuple[str, ...] = (*AWAITING_JOB, "deploying")


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


class RunRecord(BaseModel):
    run: str
    backend: str
    digest: str
    job_name: str
    status: RunStatus = "submitted"
    spec: dict[str, Any] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    commit: str | None = None
    pr: str | None = None
    model_name: str | None = None
    model_version: str | None = None
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
    last_cleanup: dict[str, Any] | None = None  # the latest cleanup decision about the run's endpoint
    claimed_until: float | None = None  # a deploy claim's lease; past it, reconcile may take the run over
    updated_at: float = Field(default_factory=time.time)

    def moved(self, status: RunStatus, note: str = "") -> RunRecord:
        """A copy in ``status`` with the step appended to the history."""
        now = time.time()
        return self.model_copy(update={"status": status, "updated_at": now,
                                       "history": [*self.history, HistoryEntry(at=now, status=status, note=note)]})


class Ledger(Protocol):
    def get(self, run: str) -> tuple[RunRecord, str] | None:
        """The record and its version token (an ETag), or None."""
        ...

    def put(self, record: RunRecord, expected: str | None) -> str:
        """Write if the stored version is still ``expected`` (None: must not exist); raise ConflictError if not."""
        ...

    def list(self) -> list[RunRecord]: ...

    def remember_event(self, event_id: str, summary: dict[str, Any]) -> bool:
        """The processed-event index: record ``event_id``; False when it was already recorded."""
        ...


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
