"""#26: what a finding or an error is, a program learns from its type or its code, never from its words. Only the
Azure adapter reads Azure's own messages (what the service answers is all it has to go on)."""

from __future__ import annotations

import ast

from tests.conftest import REPO_ROOT

WORDS = {"message", "headline", "what", "hint"}  # the prose of a Finding, a GitopsError, a WatchFinding
AZURE_ADAPTER = REPO_ROOT / "gitops" / "backends" / "azureml"


def _reads_words(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr in WORDS


def _matches_on_words(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        contains = (
            isinstance(node, ast.Compare)
            and any(isinstance(op, ast.In | ast.NotIn) for op in node.ops)
            and any(_reads_words(side) for side in node.comparators)
        )
        searches = (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in {"startswith", "endswith", "search", "match", "fullmatch"}
            and (_reads_words(node.func.value) or any(_reads_words(arg) for arg in node.args))
        )
        if contains or searches:
            lines.append(getattr(node, "lineno", 0))
    return lines


def test_nothing_classifies_by_the_words_of_a_message() -> None:
    found = []
    for path in sorted((REPO_ROOT / "gitops").rglob("*.py")) + sorted((REPO_ROOT / "function_app").rglob("*.py")):
        if AZURE_ADAPTER in path.parents:
            continue
        found += [f"{path.relative_to(REPO_ROOT)}:{line}" for line in _matches_on_words(ast.parse(path.read_text(encoding="utf-8")))]
    assert not found, f"classify by a code or an error's type, not by its words: {found}"


def test_the_check_can_fail() -> None:
    assert _matches_on_words(ast.parse('if "quota" in f.message:\n    pass')) == [1]
    assert _matches_on_words(ast.parse("PATTERN.search(exc.headline)")) == [1]
    assert _matches_on_words(ast.parse("exc.headline.startswith('x')")) == [1]
    assert _matches_on_words(ast.parse("f.code is Code.QUOTA")) == []
