"""docs/architecture.md stays true: every path it names exists, and every module of the lifecycle is in its table."""

from __future__ import annotations

import re

from tests.conftest import REPO_ROOT

DOC = REPO_ROOT / "docs" / "architecture.md"


def test_every_path_the_architecture_names_exists() -> None:
    named = set(re.findall(r"`((?:gitops|function_app|pipelines|schemas|docs)/[\w./-]*)`", DOC.read_text(encoding="utf-8")))
    assert len(named) > 30, named
    missing = sorted(p for p in named if not (REPO_ROOT / p).exists())
    assert missing == [], f"docs/architecture.md names what does not exist: {missing}"


def test_every_lifecycle_module_has_a_row() -> None:
    text = DOC.read_text(encoding="utf-8")
    modules = sorted(p.name for p in (REPO_ROOT / "gitops" / "lifecycle").glob("*.py") if p.name != "__init__.py")
    # the queue's transports and the wiring of parts are plumbing, not concerns a reader looks for
    plumbing = {"queue.py", "storage_queue.py", "wiring.py", "smoke.py", "flow.py"}
    unnamed = [m for m in modules if m not in plumbing and f"`gitops/lifecycle/{m}`" not in text]
    assert unnamed == [], f"lifecycle modules docs/architecture.md does not place: {unnamed}"


def test_every_finding_code_is_documented() -> None:
    """docs/spec.md's table of finding codes names each code once, and no code that does not exist."""
    from gitops.spec.findings import Code

    text = (REPO_ROOT / "docs" / "spec.md").read_text(encoding="utf-8")
    table = text[text.index("## Finding codes") :].split("\n## ")[0]
    documented = re.findall(r"^\| `([a-z-]+)` \|", table, flags=re.MULTILINE)
    assert sorted(documented) == sorted(c.value for c in Code), set(documented) ^ {c.value for c in Code}
