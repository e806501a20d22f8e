"""When a step looks again at something Azure is provisioning (an endpoint, a deployment): the pacing of the waits.

Without history, the schedule every run had: 10 s, 20 s, 40 s, then every minute (``Backoff``). That looks often while
nothing can be ready yet, and up to a minute late when it is.

With history (``Adaptive``): the run's record keeps how long its previous provisionings of the same kind took
(``RunRecord.provisioned``: the endpoint; a deployment on this SKU). The first look comes near the shortest of them,
halving the way to it meanwhile (a look every ``QUIET_S`` at least: an early failure is seen within minutes), then
looks close together across the spread of the past durations, and past the longest every ``LATE_S`` (a past of one or
two durations says little of the spread). How close: see ``Adaptive``.

``Fixed`` is a plain poller (the mlops-v2 loop's 15 s), kept as the baseline the benchmark measures against.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

FIRST_WAIT_S = 10.0
MAX_WAIT_S = 60.0
QUIET_S = 300.0  # before the expected end: one look every five minutes (an early failure is seen)
TARGET_LAG_S = 15.0  # the lag aimed at, where the spread of past durations allows it
FINE_MIN_S = 5.0  # never closer than this
LATE_S = 30.0  # past the longest duration seen
KEPT = 5  # past durations kept per kind


def backoff(attempt: int) -> float:
    return float(min(MAX_WAIT_S, FIRST_WAIT_S * 2 ** max(0, attempt)))


class Pacing(Protocol):
    @property
    def name(self) -> str: ...

    def next_look(self, past: Sequence[float], elapsed: float, attempt: int) -> float:
        """Seconds until the next look, ``elapsed`` seconds into a provisioning looked at ``attempt`` times, given
        the ``past`` durations of the same kind (seconds, newest last; empty: none known)."""
        ...


@dataclass(frozen=True)
class Backoff:
    name: str = "backoff (10 s, 20 s, 40 s, then every minute)"

    def next_look(self, past: Sequence[float], elapsed: float, attempt: int) -> float:
        return backoff(attempt)


@dataclass(frozen=True)
class Fixed:
    every_s: float = 15.0

    @property
    def name(self) -> str:
        return f"fixed, every {self.every_s:g} s"

    def next_look(self, past: Sequence[float], elapsed: float, attempt: int) -> float:
        return self.every_s


def backoff_looks(seconds: float) -> int:
    """How many looks the backoff makes in ``seconds`` (10, 30, 70, 130, then every minute): today's cost of a wait."""
    looks, at, attempt = 0, 0.0, 0
    while True:
        at += backoff(attempt)
        if at > seconds:
            return max(1, looks)
        looks, attempt = looks + 1, attempt + 1


def _approach(start: float, elapsed: float, fine: float) -> float:
    """Before the window: halve the way to it, a look every ``QUIET_S`` at least and ``fine`` apart at most."""
    return max(fine, min(QUIET_S, (start - elapsed) / 2))


def _before(start: float, fine: float) -> int:
    """How many looks ``_approach`` makes before the window starts."""
    looks, at = 0, 0.0
    while at < start:
        at += _approach(start, at, fine)
        looks += 1
    return looks


@dataclass(frozen=True)
class Adaptive:
    """Looks near the shortest past duration and across their spread: ``target_lag_s`` apart when that costs at
    most twice the looks the backoff would make; when it would cost more (a wide spread), or with no target, the
    backoff's number of looks spread over the window only (closer than its minute: less lag, no more looks)."""

    target_lag_s: float | None = TARGET_LAG_S  # None: today's number of looks, no more

    @property
    def name(self) -> str:
        aim = f"a lag of {self.target_lag_s:g} s" if self.target_lag_s is not None else "the backoff's looks"
        return f"adaptive ({aim})"

    def window(self, past: Sequence[float]) -> tuple[float, float]:
        """(from, to): where the end is expected, from the past durations (a margin either side)."""
        return 0.85 * min(past), 1.15 * max(past)

    def spacing(self, past: Sequence[float]) -> float:
        """The looks' spacing in the window: the target lag when that costs at most twice the backoff's looks by the
        window's end; otherwise (or with no target) the backoff's number of looks, spread over the window: never
        more looks, and closer than its minute."""
        start, end = self.window(past)
        span, budget = end - start, backoff_looks(end)
        target = self.target_lag_s
        if target is not None and _before(start, target) + math.ceil(span / target) <= 2 * budget:
            return target
        return min(MAX_WAIT_S, max(FINE_MIN_S, span / max(1, budget - _before(start, MAX_WAIT_S))))

    def next_look(self, past: Sequence[float], elapsed: float, attempt: int) -> float:
        known = [p for p in past if p > 0]
        if not known:
            return backoff(attempt)
        start, end = self.window(known)
        fine = self.spacing(known)
        if elapsed < start:  # not done yet, as far as the past says
            return _approach(start, elapsed, fine)
        if elapsed < end:
            return fine
        return max(fine, LATE_S)  # later than every duration seen: looks half as often as the backoff's at most


PACING: Pacing = Adaptive()


def remembered(past: Sequence[float], seconds: float) -> list[float]:
    """``past`` with a new duration, the last ``KEPT`` of them."""
    return [*past, round(seconds, 1)][-KEPT:]
