"""The online half of validation, where no backend is called: specs of other backends, and broken specs."""

from __future__ import annotations

from gitops.review.check import SpecText, check_specs, render_checks
from gitops.spec.policy import Policy


def never(name: str):
    raise AssertionError(f"no backend should be asked, got {name}")


def test_a_local_spec_is_marked_without_online_checks_and_a_broken_one_is_not(local_spec_text) -> None:
    checks = check_specs(
        [SpecText("runs/tiny-run.yaml", local_spec_text("tiny-run")), SpecText("runs/broken.yaml", "name: broken\nbackend: nope\n")],
        Policy(),
        never,
    )
    assert [c.online_checked for c in checks] == [False, False]
    text = render_checks(checks)
    assert "- ✅ `runs/tiny-run.yaml` (no online checks for this backend)" in text
    assert "- ❌ `runs/broken.yaml`\n" in text
    assert checks[0].derived is not None and checks[0].derived.backend == "local" and checks[1].derived is None
