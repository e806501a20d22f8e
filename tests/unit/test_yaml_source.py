"""YAML that YAML lets slip (duplicates, empties, lists) becomes located findings, never a traceback."""

import pytest

from gitops.spec.validate import validate_text
from gitops.spec.yamlsource import parse_yaml


def test_lines_are_where_fields_stand() -> None:
    doc = parse_yaml("a: 1\nb:\n  c: 2\n  d:\n    - x\n    - y\n", "f.yaml")
    assert doc.lines[("a",)] == 1
    assert doc.lines[("b", "c")] == 3
    assert doc.lines[("b", "d", 1)] == 6
    assert doc.line_of(("b", "zzz")) == 2  # nearest existing ancestor


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("", 1, "the file is empty"),
        ("# only a comment\n", 1, "the file is empty"),
        ("- name: x\n- name: y\n", 1, "is a list, not a mapping"),
        ("just a string\n", 1, "is a single value"),
        ("name: a\nmodel: {name: [unclosed\n", 3, "invalid YAML"),
        ("name: a\n  bad: indent\n", 2, "invalid YAML"),
        ("name: a\nowner: b\nname: c\n", 3, "duplicate key 'name' (first on line 1)"),
    ],
)
def test_broken_documents_are_clear(text: str, line: int, needle: str) -> None:
    result = validate_text(text, "runs/x.yaml")
    assert not result.ok
    messages = [f.format() for f in result.findings]
    assert any(needle in m for m in messages), messages
    assert any(m.startswith(f"runs/x.yaml:{line}:") for m in messages), messages


def test_nested_duplicate_key_is_reported_with_path() -> None:
    doc = parse_yaml("deploy:\n  endpoint: a\n  endpoint: b\n", "f.yaml")
    (finding,) = doc.findings
    assert finding.path == "deploy.endpoint"
    assert finding.line == 3


def test_a_specs_text_is_parsed_once_to_place_the_findings_made_after_validation(local_spec_text) -> None:
    """#26: a spec is checked, then submitted, then its later findings placed: the same text is parsed once."""
    from gitops.spec.findings import Code, error
    from gitops.spec.validate import _document, validate_text

    checked = validate_text(local_spec_text("placed-once"), "runs/placed-once.yaml")
    _document.cache_clear()
    valid = checked.valid()
    for _ in range(3):
        (on_valid,) = valid.locate([error("name", "taken", code=Code.CONFLICT)])
        (on_checked,) = checked.locate([error("name", "taken", code=Code.CONFLICT)])
        assert on_valid == on_checked and on_valid.file == "runs/placed-once.yaml" and on_valid.line == 1
    assert _document.cache_info().misses == 1
