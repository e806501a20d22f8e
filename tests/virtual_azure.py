"""A rollout on Azure's time, on a virtual clock: the real SDK against the fake REST API, whose endpoints and
deployments take virtual minutes to provision, a queue that hands step messages back when they are due, and the
workspace's MLflow where a completed job's metrics lie. The rollout suites and the gate's evidence cases share it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitops.ledger.local import LocalLedger
from gitops.lifecycle.flow import Decision, Lifecycle
from gitops.lifecycle.queue import MemoryQueue
from gitops.spec.validate import SpecValidation, validate_text
from tests.conftest import REFERENCE_ON_ASSETS
from tests.fakes.azureml_api import FakeAzureML, azure_backend_for, intercept
from tests.fakes.workspace_mlflow import WorkspaceMlflow

SPEC = REFERENCE_ON_ASSETS
RUN = "phi4-ultrachat"
MAX_CALLS_PER_INVOCATION = 16  # a handful of GETs and one or two writes per step, a few steps per invocation


class VirtualClock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class Killed(BaseException):
    """Stands for the process dying mid-step: no `except Exception` in the lifecycle catches it."""


@dataclass
class World:
    fake: FakeAzureML
    backend: Any
    clock: VirtualClock
    queue: MemoryQueue
    lifecycle: Lifecycle
    invocations: list[tuple[Decision, int, float]] = field(default_factory=list)  # decision, HTTP calls, virtual seconds

    def spec(self, lr: str = "5.0e-6") -> SpecValidation:
        result = validate_text(SPEC.replace("learning_rate: 5.0e-6", f"learning_rate: {lr}"), f"runs/{RUN}.yaml")
        assert result.ok, result.findings
        return result

    def record(self, run: str = RUN) -> Any:
        got = self.lifecycle.ledger.get(run)
        assert got is not None
        return got[0]

    def event(self, job: str, event_id: str | None = None) -> dict[str, Any]:
        body = self.fake.job_event(job)
        if event_id:
            body["id"] = event_id
        return body

    def deliver(
        self,
        lifecycle: Lifecycle | None = None,
        limit: int = 400,
        until: str | None = None,
        on_decision: Callable[[Decision], None] | None = None,
        *,
        run: str = RUN,
        step: str | None = None,
    ) -> None:
        """Hand every step message to ``advance`` when it is due, moving the clock to the next one, until none is left
        (or ``run``'s status is ``until``, or its rollout reached ``step``); ``on_decision`` sees each invocation's
        answer (users acting meanwhile)."""
        for _ in range(limit):
            if until is not None and self.record(run).status == until:
                return
            cursor = self.record(run).cursor if step is not None else None
            if cursor is not None and cursor.step == step:
                return
            due = self.queue.due(self.clock.now())
            if not due:
                nxt = self.queue.next_at()
                if nxt is None:
                    return
                self.clock.advance(max(0.0, nxt - self.clock.now()))
                continue
            for message in due:
                calls, started = len(self.fake.calls), self.clock.now()
                decision = (lifecycle or self.lifecycle).advance(message.run)
                self.invocations.append((decision, len(self.fake.calls) - calls, self.clock.now() - started))
                if on_decision is not None:
                    on_decision(decision)
        raise AssertionError("the queue did not drain")

    def submit_completed(self, lr: str = "5.0e-6") -> str:
        record = self.lifecycle.submit(self.spec(lr), commit="c0ffee", pr="7")
        self.fake.set_job_status(record.job_name, "Completed")
        return record.job_name

    def deployment_puts(self) -> list[str]:
        return [u for m, u in self.fake.calls if m == "PUT" and "/deployments/" in u]

    def second_version_rolling_out(self) -> str:
        """v1 live, then v2's job done and its rollout begun (its deployment provisioning); v2's job name."""
        self.live_first_version()
        v2 = self.submit_completed(lr="6.0e-6")
        self.lifecycle.on_job_event(self.event(v2))
        self.clock.advance(1)
        for message in self.queue.due(self.clock.now()):
            self.lifecycle.advance(message.run)
        assert self.record().cursor is not None
        return v2

    def live_first_version(self) -> str:
        """v1 live at once (provisioning instant), then provisioning takes Azure's minutes again."""
        durations = dict(self.fake.provisioning_s)
        self.fake.provisioning_s.update(onlineendpoints=0, deployments=0)
        job = self.submit_completed()
        self.lifecycle.on_job_event(self.event(job))
        self.deliver()
        self.fake.provisioning_s.update(durations)
        assert self.record().status == "live"
        return str(self.record().deployment)


@contextmanager
def virtual_world(tmp_path: Path) -> Iterator[World]:
    fake = FakeAzureML().seed_defaults()
    fake.mlflow = WorkspaceMlflow.fresh(tmp_path)  # a completed job's metrics: the gate's training evidence
    clock = VirtualClock()
    fake.clock = clock.now
    fake.provisioning_s.update(onlineendpoints=90, deployments=20 * 60, delete=120)  # an endpoint 1.5 min, an LLM 20 min
    with intercept(fake):
        backend = azure_backend_for(fake)
        queue = MemoryQueue()
        lifecycle = Lifecycle(
            LocalLedger(tmp_path / "ledger"),
            lambda name: backend,
            topic=backend.topic,
            queue=queue,
            clock=clock.now,
            reader_for=fake.mlflow.reader,
        )
        yield World(fake, backend, clock, queue, lifecycle)
