"""What a long step keeps on the run's cursor between its slices, typed: the promotion gate's evaluation so far and
the gradual traffic's progress. Records written before these were models (plain dicts with the same keys, answers
as ``[score, latency_ms, 1.0 or 0.0]``) are read into them unchanged.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _State(BaseModel):
    # A key this version does not know is a record it cannot continue: refused (CorruptRecordError upstream), never
    # dropped, which could lose the evidence a decision rests on.
    model_config = ConfigDict(extra="forbid", revalidate_instances="always")


class Answer(_State):
    """One held-out conversation asked of one deployment: its ROUGE-L against the reference, how long it took, and
    whether it answered at all."""

    score: float
    latency_ms: float
    answered: bool

    @model_validator(mode="before")
    @classmethod
    def _from_row(cls, data: Any) -> Any:
        if isinstance(data, list | tuple) and len(data) == 3:  # the form records were written in before this model
            return {"score": data[0], "latency_ms": data[1], "answered": bool(data[2])}
        return data


class Evaluation(_State):
    """The gate's work so far: the training part's verdict, then the held-out conversations asked of both sides."""

    training: dict[str, Any] | None = None  # gate.Verdict.to_dict() of the training metrics (None: not judged yet)
    total: int | None = None  # conversations to ask (None: the test split is not read yet)
    candidate: list[Answer] = Field(default_factory=list)
    serving: list[Answer] = Field(default_factory=list)
    unanswered: int = 0  # how often a side gave no answer and the question was asked again
    online_failed: str | None = None  # why the online part has no evidence to judge (it then holds)


class HeldShare(_State):
    """One share of gradual traffic, held: the candidate's figures from the endpoint's own metrics over its hold."""

    share: int
    requests: int
    errors: int
    p95_latency_ms: float | None = None
    held_s: float
    ok: bool
    at: float


class Ramp(_State):
    """Gradual traffic so far: which share, and which visit of it (``shift`` asks for the split, ``settle`` waits
    until it took, ``observe`` waits out the hold and reads the figures), since when, from which metrics mark."""

    index: int = 0
    visit: Literal["shift", "settle", "observe"] = "shift"
    seen: list[HeldShare] = Field(default_factory=list)
    since: float | None = None
    mark: dict[str, Any] = Field(default_factory=dict)  # the backend's own mark (Backend.traffic_mark)
