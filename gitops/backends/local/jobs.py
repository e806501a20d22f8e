"""Local fine-tune jobs: a detached worker per job, its record surviving the CLI process.

``JOB_DIR/request.json`` is what the worker runs; ``JOB_DIR/status.json`` is its state (queued, running,
completed, failed, canceled), exit reason and progress; ``JOB_DIR/job.log`` its output. A worker that
died without writing an end state is reported as failed, never as running forever.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from gitops.backends.base import JobState, JobStatus
from gitops.backends.local import processes
from gitops.backends.local.workspace import LocalWorkspace
from gitops.errors import NotFoundError
from gitops.util.files import read_json, write_json_atomic
from pipelines.local_finetune import FinetuneRequest, emit_event

WORKER_MODULE = "pipelines.local_finetune"


def _ts(value: Any) -> datetime | None:
    return datetime.fromtimestamp(float(value), UTC) if value else None


class LocalJobs:
    def __init__(self, ws: LocalWorkspace) -> None:
        self.ws = ws

    def submit(self, request: FinetuneRequest) -> JobStatus:
        job_dir = self.ws.job_dir(request.job_name)
        existing = self.get(request.job_name)
        if existing is not None:
            return existing  # same name = same spec digest: never a second run
        job_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(job_dir / "request.json", asdict(request))
        write_json_atomic(job_dir / "status.json", {"state": "queued", "queued_at": time.time(), "tags": request.tags})
        proc = processes.spawn(["-m", WORKER_MODULE, str(job_dir)], job_dir / "job.log", env={"GITOPS_WORKSPACE": str(self.ws.root)})
        # The worker owns status.json; the launcher records the worker's pid beside it, so neither overwrites the other.
        (job_dir / "pid").write_text(str(proc.pid))
        result = self.get(request.job_name)
        assert result is not None
        return result

    def _pid(self, job_name: str) -> int | None:
        try:
            return int((self.ws.job_dir(job_name) / "pid").read_text())
        except (OSError, ValueError):
            return None

    def get(self, job_name: str) -> JobStatus | None:
        job_dir = self.ws.job_dir(job_name)
        status = read_json(job_dir / "status.json")
        if status is None:
            return None
        state = JobState(status["state"])
        if not state.terminal and not processes.is_running(self._pid(job_name), str(job_dir)):
            # Read again now that the worker is seen gone: it may have written its end state just before exiting.
            status = read_json(job_dir / "status.json", status)
            state = JobState(status["state"])
            if not state.terminal:
                status = self._end(job_name, status, "failed", "the worker process exited without a result (crashed or killed)")
                state = JobState.FAILED
        return JobStatus(
            name=job_name,
            state=state,
            tags=status.get("tags", {}),
            error=status.get("error"),
            log_path=str(job_dir / "job.log"),
            started_at=_ts(status.get("started_at")),
            ended_at=_ts(status.get("ended_at")),
            progress={**status.get("progress", {}), **({"result": status["result"]} if "result" in status else {})},
        )

    def result(self, job_name: str) -> dict[str, Any]:
        status = read_json(self.ws.job_dir(job_name) / "status.json") or {}
        if status.get("state") != "completed" or "result" not in status:
            raise NotFoundError(f"job '{job_name}' has no completed result", hint=f"see {self.ws.job_dir(job_name) / 'job.log'}")
        return dict(status["result"])

    def cancel(self, job_name: str) -> None:
        job_dir = self.ws.job_dir(job_name)
        status = read_json(job_dir / "status.json")
        if status is None:
            raise NotFoundError(f"no job named '{job_name}'")
        if JobState(status["state"]).terminal:
            return
        processes.stop(self._pid(job_name), str(job_dir))
        status = read_json(job_dir / "status.json", status)
        if not JobState(status["state"]).terminal:  # stopped before it could record its own end
            self._end(job_name, status, "canceled", "canceled by request")

    def _end(self, job_name: str, status: dict[str, Any], state: str, error: str) -> dict[str, Any]:
        """Record an end the worker could not record itself, and emit its event as the worker would have
        (Azure ML sends RunStatusChanged for every failed or canceled run)."""
        job_dir = self.ws.job_dir(job_name)
        status = {**status, "state": state, "ended_at": time.time(), "error": error}
        write_json_atomic(job_dir / "status.json", status)
        emit_event(FinetuneRequest(**read_json(job_dir / "request.json")), job_dir, state.capitalize())
        return status
