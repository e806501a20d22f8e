"""Azure ML job events in the Event Grid shape: built by the local backend, parsed by the job-event handler.

Both envelopes are accepted (Event Grid: topic/subject/eventType/eventTime/data; CloudEvents:
source/subject/type/time/data), one event or an array, camelCase or PascalCase data keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pipelines.job_files import RUN_COMPLETED, RUN_STATUS_CHANGED, build_event  # noqa: E402,F401  (the event a job writes)

RUN_EVENTS = (RUN_COMPLETED, RUN_STATUS_CHANGED)


class EventFormatError(ValueError):
    """An event that cannot be read as an Azure ML run event."""


class NotARunEvent(EventFormatError):
    """A well-formed event about something else (ModelRegistered, DatasetDriftDetected...): not ours to act on."""


@dataclass(frozen=True)
class JobEvent:
    """One job event, whichever envelope it came in."""

    id: str
    type: str
    topic: str
    subject: str
    time: str
    run_id: str
    run_status: str | None
    run_type: str | None
    experiment: str | None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def short_type(self) -> str:
        return self.type.rsplit(".", 1)[-1]

    @property
    def outcome(self) -> str | None:
        """completed | failed | canceled | None (a status we do not act on)."""
        if self.type == RUN_COMPLETED:
            return "completed"
        status = (self.run_status or "").lower()
        # NotResponding is terminal (azure-ai-ml's JobStatus): a failure, which the first step confirms on the job itself.
        outcomes = {"completed": "completed", "finished": "completed", "failed": "failed", "notresponding": "failed"}
        return {**outcomes, "canceled": "canceled", "cancelled": "canceled"}.get(status)


def _pick(data: dict[str, Any], name: str) -> Any:
    """camelCase or PascalCase key."""
    if name in data:
        return data[name]
    return data.get(name[0].upper() + name[1:])


def parse_event(raw: dict[str, Any]) -> JobEvent:
    if not isinstance(raw, dict):
        raise EventFormatError("an event must be a JSON object")
    kind = raw.get("eventType") or raw.get("type")
    data = raw.get("data")
    if not kind or not isinstance(kind, str) or not isinstance(data, dict):
        raise EventFormatError("not an Event Grid or CloudEvents event (eventType/type and data are required)")
    if kind not in RUN_EVENTS:
        raise NotARunEvent(f"a {kind.rsplit('.', 1)[-1]} event is not about a job run: ignored")
    run_id = _pick(data, "runId")
    if not run_id or not isinstance(run_id, str):
        raise EventFormatError(f"event {str(raw.get('id'))[:64]!r} has no data.runId")
    tags = _pick(data, "runTags") or {}
    if not isinstance(tags, dict):
        raise EventFormatError(f"event {str(raw.get('id'))[:64]!r}: data.runTags is not an object")
    status = _pick(data, "runStatus")
    return JobEvent(
        id=str(raw.get("id") or ""),
        type=str(kind),
        topic=str(raw.get("topic") or raw.get("source") or ""),
        subject=str(raw.get("subject") or ""),
        time=str(raw.get("eventTime") or raw.get("time") or ""),
        run_id=str(run_id),
        run_status=status if isinstance(status, str) else None,
        run_type=_pick(data, "runType"),
        experiment=_pick(data, "experimentName"),
        tags={str(k): str(v) for k, v in dict(tags).items()},
    )


def parse_events(body: str | bytes | Any) -> list[JobEvent]:
    """One event or an array of them, from JSON text or already-parsed data."""
    return [parse_event(item) for item in _items(body)]


def parse_each(body: str | bytes | Any) -> list[JobEvent | EventFormatError]:
    """Each event of a body on its own: one that cannot be read is its error, and does not stop the others.
    A body that is not JSON at all raises ``EventFormatError``."""
    out: list[JobEvent | EventFormatError] = []
    for item in _items(body):
        try:
            out.append(parse_event(item))
        except EventFormatError as exc:
            out.append(exc)
    return out


def _items(body: str | bytes | Any) -> list[Any]:
    try:
        payload = json.loads(body) if isinstance(body, (str, bytes)) else body
    except (ValueError, RecursionError) as exc:
        raise EventFormatError(f"not JSON: {str(exc)[:120]}") from None
    return payload if isinstance(payload, list) else [payload]
