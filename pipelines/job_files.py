"""What a job on compute writes for the rest of the system: JSON files written atomically, and the job-finished
event in the shape Azure ML's Event Grid sends (the local worker writes one where Azure would send it).
``gitops`` reads both; this package depends on nothing of ``gitops``."""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RUN_COMPLETED = "Microsoft.MachineLearningServices.RunCompleted"
RUN_STATUS_CHANGED = "Microsoft.MachineLearningServices.RunStatusChanged"


def write_json_atomic(path: Path, data: Any, mode: int = 0o644) -> None:
    """Write-then-rename, so readers see the old or the new file, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=True, default=str)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_event(
    *, topic: str, experiment: str, run_id: str, status: str, tags: dict[str, str], run_type: str = "azureml.PipelineRun"
) -> dict[str, Any]:
    """An Event Grid event as Azure ML sends it: RunCompleted, or RunStatusChanged for other ends."""
    completed = status.lower() == "completed"
    return {
        "id": str(uuid.uuid4()),
        "topic": topic,
        "subject": f"experiments/{experiment}/runs/{run_id}",
        "eventType": RUN_COMPLETED if completed else RUN_STATUS_CHANGED,
        "eventTime": datetime.now(UTC).isoformat(),
        "data": {
            "experimentId": experiment,
            "experimentName": experiment,
            "runId": run_id,
            "runType": run_type,
            "runTags": dict(tags),
            "runProperties": {},
            "runStatus": status.capitalize(),
        },
        "dataVersion": "2",
        "metadataVersion": "1",
    }
