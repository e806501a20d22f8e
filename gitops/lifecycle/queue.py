"""What moves a rollout forward between steps: a message ``{run, step, not_before}`` that comes back when due.

On Azure it is a Storage queue message sent with a visibility delay, consumed by the queue-triggered
function ``advance``; the Functions host moves a message that keeps failing to ``<queue>-poison``
after ``maxDequeueCount`` tries (host.json). Messages are base64 text, as the Functions queue trigger
expects by default (azure-storage-queue sends plain text unless told otherwise). In a process that
drives the lifecycle itself (the CLI, tests, benchmarks) a ``MemoryQueue`` holds them.

A message is only a nudge: the run's cursor in the ledger is the truth, so a duplicate, late or early
message does nothing but look.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from typing import Any, Protocol

from gitops.errors import RequestError
from gitops.ledger.model import is_run_key

# Azure Storage hides a message for at most 7 days.
MAX_DELAY_S = 7 * 24 * 3600


@dataclass(frozen=True)
class StepMessage:
    run: str  # the record's ledger name (``RunRecord.key``: a later environment's is ``<run>.<environment>``)
    step: str
    not_before: float

    def to_json(self) -> str:
        return json.dumps({"run": self.run, "step": self.step, "not_before": self.not_before}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> StepMessage:
        """A message, or ``RequestError`` (dropped, never retried) for anything else: not JSON, nested past the
        parser's depth, fields of another type, a time that is not finite, a run that no spec could be named."""
        try:
            data: Any = json.loads(text)
            if not isinstance(data, dict) or not is_run_key(data.get("run")) or not isinstance(data.get("step", ""), str):
                raise ValueError("run, step")
            not_before = data.get("not_before", 0)
            if isinstance(not_before, bool) or not isinstance(not_before, int | float) or not math.isfinite(not_before):
                raise ValueError("not_before")
            return cls(data["run"], data.get("step", ""), float(not_before))
        except (ValueError, TypeError, RecursionError) as exc:
            raise RequestError(
                f"not a step message: {str(text)[:80]!r}", hint='a step message is {"run": NAME, "step": STEP, "not_before": EPOCH_SECONDS}'
            ) from exc


class StepQueue(Protocol):
    def send(self, message: StepMessage, now: float) -> None:
        """Deliver ``message`` no earlier than ``message.not_before`` (``now`` is the caller's clock)."""
        ...


class MemoryQueue:
    """Messages kept in this process, handed out when due on the caller's clock."""

    def __init__(self) -> None:
        self._messages: list[StepMessage] = []
        self._lock = threading.Lock()
        self.sent = 0

    def send(self, message: StepMessage, now: float) -> None:
        with self._lock:
            self._messages.append(message)
            self.sent += 1

    def due(self, now: float) -> list[StepMessage]:
        """Take every message whose time has come."""
        with self._lock:
            ready = [m for m in self._messages if m.not_before <= now]
            self._messages = [m for m in self._messages if m.not_before > now]
        return sorted(ready, key=lambda m: m.not_before)

    def next_at(self) -> float | None:
        with self._lock:
            return min((m.not_before for m in self._messages), default=None)

    def __len__(self) -> int:
        return len(self._messages)
