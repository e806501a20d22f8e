"""When a step looks again at a provisioning (gitops/lifecycle/pacing.py): today's backoff without a past; with one,
halving the way to the window of past durations, looks across it as close as the budget of looks allows, and a
look every LATE_S past it."""

from __future__ import annotations

import pytest

from gitops.lifecycle.pacing import (
    LATE_S,
    QUIET_S,
    TARGET_LAG_S,
    Adaptive,
    Backoff,
    Fixed,
    backoff,
    backoff_looks,
    remembered,
)


def test_without_a_past_it_is_todays_backoff() -> None:
    assert [Adaptive().next_look([], 0, a) for a in range(5)] == [10.0, 20.0, 40.0, 60.0, 60.0]
    assert [Backoff().next_look([900.0], 0, a) for a in range(5)] == [backoff(a) for a in range(5)]
    assert Fixed(15).next_look([900.0], 1000, 7) == 15
    assert backoff_looks(20 * 60) == 21  # 10, 30, 70 s, then every minute from 130 s to 20 minutes


def test_with_a_narrow_past_it_approaches_then_looks_at_the_target_lag() -> None:
    past = [1140.0, 1200.0, 1260.0]  # 19, 20, 21 minutes
    pacing = Adaptive()
    start, end = pacing.window(past)
    assert start == pytest.approx(0.85 * 1140) and end == pytest.approx(1.15 * 1260)
    assert pacing.next_look(past, 0, 0) == QUIET_S  # far from it: a look every five minutes (an early failure is seen)
    assert pacing.next_look(past, start - 100, 3) == pytest.approx(50)  # halving the way to the window
    assert pacing.spacing(past) == TARGET_LAG_S
    assert pacing.next_look(past, start + 1, 4) == TARGET_LAG_S
    assert pacing.next_look(past, end + 200, 30) == LATE_S  # later than every duration seen


def test_a_spread_too_wide_for_the_target_keeps_to_the_backoffs_number_of_looks() -> None:
    past = [300.0, 2400.0]  # 5 and 40 minutes
    pacing, budget = Adaptive(), Adaptive(target_lag_s=None)
    assert pacing.spacing(past) > TARGET_LAG_S and pacing.spacing(past) == budget.spacing(past)
    assert budget.spacing([1140.0, 1200.0]) > TARGET_LAG_S  # no target: the backoff's looks, spread over the window
    assert budget.spacing(past) <= 60.0  # ... never further apart than its minute


def test_the_past_kept_is_bounded() -> None:
    kept: list[float] = []
    for seconds in range(10):
        kept = remembered(kept, float(seconds))
    assert kept == [5.0, 6.0, 7.0, 8.0, 9.0]
