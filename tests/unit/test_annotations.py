"""Findings as GitHub workflow commands: each on its file, line and column, escaped as the runner parses them. The
reference is @actions/core itself (npm), the library GitHub's own actions write these commands with: for the same
finding, our line and its line are the same bytes, hostile file names and messages included."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from gitops.review.annotations import annotation, escape_data, escape_property, workflow_commands
from gitops.spec.findings import Code, Finding, Severity
from tests.conftest import REPO_ROOT

CORE = REPO_ROOT / "node_modules" / "@actions" / "core"
# Calls @actions/core as a workflow step would, one finding per line of JSON on stdin.
NODE_CORE = """
const core = require(process.argv[1]);
const lines = require('fs').readFileSync(0, 'utf8').split('\\n').filter(Boolean);
for (const l of lines) {
  const f = JSON.parse(l);
  const props = { title: f.title, file: f.file, startLine: f.line, startColumn: f.col };
  core[f.level](f.message, props);
}
"""

HOSTILE = [
    Finding(
        Severity.ERROR,
        "finetune.params.learning_rate",
        "must be greater than 0, got 0",
        "use 2e-5",
        "runs/a.yaml",
        14,
        code=Code.PARAM,
        column=5,
    ),
    Finding(
        Severity.WARNING, "deploy.gate.waive", "100% of it: 50%, then %0A", None, "runs/x%y,z:w.yaml", 3, code=Code.GATE_WAIVER, column=3
    ),
    Finding(Severity.ERROR, "model", "line one\nline two\r\n::error::forged", None, "runs/b.yaml", 1, code=Code.MODEL),
    Finding(Severity.NOTE, "", "a note: with, commas", None, "runs/c.yaml", 2, code=Code.QUOTA),
]


def core_lines(findings: list[Finding]) -> list[str]:
    if shutil.which("node") is None or not CORE.exists():
        pytest.fail("@actions/core is missing: run `make tools` (npm install)")
    levels = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "notice"}
    given = "".join(
        json.dumps(
            {
                "level": levels[f.severity],
                "title": f.path or "(document)",
                "file": f.file,
                "line": f.line,
                "col": f.column,
                "message": f.message + (f" (hint: {f.hint})" if f.hint else ""),
            }
        )
        + "\n"
        for f in findings
    )
    out = subprocess.run(["node", "-e", NODE_CORE, str(CORE)], input=given, capture_output=True, text=True, timeout=60, check=True)
    return out.stdout.splitlines()


def test_each_finding_is_the_command_actions_core_writes_for_it() -> None:
    ours = workflow_commands(HOSTILE)
    assert ours == core_lines(HOSTILE)
    assert (
        ours[0]
        == "::error title=finetune.params.learning_rate,file=runs/a.yaml,line=14,col=5::must be greater than 0, got 0 (hint: use 2e-5)"
    )


def test_nothing_a_spec_or_a_model_writes_ends_a_command_early_or_forges_another() -> None:
    lines = workflow_commands(HOSTILE)
    assert all("\n" not in line and "\r" not in line for line in lines)
    assert lines[1].startswith("::warning title=deploy.gate.waive,file=runs/x%25y%2Cz%3Aw.yaml,line=3,col=3::")
    assert lines[1].endswith("::100% of it: 50%25, then %250A".replace("100%", "100%25"))
    assert "::error::forged" not in lines[2].split("::", 2)[2].replace("%0A", "\n").split("\n")[0]
    assert lines[2].endswith("line one%0Aline two%0D%0A::error::forged") and lines[2].count("\n") == 0
    assert escape_property("a:b,c%d\re\nf") == "a%3Ab%2Cc%25d%0De%0Af" and escape_data("a:b,c") == "a:b,c"
    assert annotation(HOSTILE[3]).startswith("::notice title=(document),file=runs/c.yaml,line=2::")


def test_findings_without_a_place_are_left_out() -> None:
    unplaced = Finding(Severity.ERROR, "x", "no file", code=Code.FIELD)
    assert workflow_commands([unplaced]) == []


def test_the_plan_prints_an_annotation_on_the_line_and_column_of_each_finding(git_repo, cli, local_spec_text) -> None:
    git_repo.write("runs/tiny.yaml", local_spec_text("tiny"))
    base = git_repo.commit("base")
    bad = local_spec_text("tiny").replace("learning_rate: 1.0e-3", "learning_rate: -1")
    git_repo.write("runs/tiny.yaml", bad)
    git_repo.write("runs/odd,name:x.yaml", local_spec_text("odd"))  # a file name with a comma and a colon
    git_repo.commit("head")
    out = cli(
        "plan", "--base", base, "--repo", str(git_repo.root), "--format", "markdown", "--out", str(git_repo.root / "plan.md"), "--annotate"
    )
    assert out.exit_code == 1, out.err
    commands = [line for line in out.out.splitlines() if line.startswith("::")]
    where = next(text for text in bad.splitlines() if "learning_rate: -1" in text)
    line, column = bad.splitlines().index(where) + 1, where.index("learning_rate") + 1
    assert f"::error title=finetune.params.learning_rate,file=runs/tiny.yaml,line={line},col={column}::" in "\n".join(commands)
    assert any(c.startswith("::error title=name,file=runs/odd%2Cname%3Ax.yaml,line=1,col=1::") for c in commands), commands
