"""Class 15 of CASES.md: what a bot posts cannot be shaped by a spec, a record or a model.

Everything is rendered as GitHub renders it, with cmark-gfm (GitHub's own parser, raw HTML let through as GitHub
does before it sanitises), and the structure is asserted: table rows and cells, no HTML, no comment, no link, no
image and no mention that came from a field.
"""

from __future__ import annotations

import re
from collections import Counter
from html.parser import HTMLParser

import cmarkgfm
import pytest
from cmarkgfm.cmark import Options
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitops.markdown import WORD_JOINER, code, text
from gitops.report.build import RunReport
from gitops.report.render import render_markdown as report_markdown
from gitops.review.plan import build_plan
from gitops.review.plan_render import render_markdown as plan_markdown
from gitops.spec.validate import validate_text
from gitops.watch.findings import WatchFinding
from gitops.watch.findings import render_markdown as watch_markdown
from tests.conftest import REPO_ROOT

# What GitHub would turn into a mention, a team mention or an issue link, in the rendered text.
MENTION = re.compile(r"(?<![\w`])[@#][A-Za-z0-9]")
MARKUP_TAGS = {"table", "thead", "tbody", "tr", "th", "td", "code", "p", "strong", "h2", "h3", "ul", "li", "blockquote", "pre", "em"}


class Rendered(HTMLParser):
    """What GitHub's renderer made of a Markdown text: tags, comments, links, table rows and the text outside code."""

    def __init__(self, markdown: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: Counter[str] = Counter()
        self.comments: list[str] = []
        self.hrefs: list[str] = []
        self.rows: list[list[str]] = []  # each row's cells' text, every table
        self.prose: list[str] = []  # text outside code spans and blocks
        self._code = 0
        self._cell: list[str] | None = None
        self.feed(cmarkgfm.github_flavored_markdown_to_html(markdown, options=Options.CMARK_OPT_UNSAFE))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        if tag in ("a", "img"):
            self.hrefs.append(dict(attrs).get("href") or dict(attrs).get("src") or "")
        if tag in ("code", "pre"):
            self._code += 1
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("code", "pre"):
            self._code -= 1
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if not self._code:
            self.prose.append(data)

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)

    @property
    def foreign_tags(self) -> set[str]:
        return set(self.tags) - MARKUP_TAGS - {"details", "summary", "a", "img"}  # links and images: counted in hrefs

    def mentions(self) -> list[str]:
        return MENTION.findall("".join(self.prose))


def _shown(value: str) -> str:
    """What a reader sees of a value: its line breaks as spaces, its control characters gone."""
    return re.sub(r"[\x00-\x08\x0e-\x1f\x7f]", "", re.sub(r"[\r\n\u2028\u2029\x85\x0b\x0c]+", " ", value))


HOSTILE = [
    "ok`\n<!-- everything after this is hidden",
    "`@acme/admins` see #12",
    "a | b | c",
    "[click](https://evil.example) ![x](https://evil.example/i.png)",
    "<img src=x onerror=alert(1)> <b>bold</b> &lt;script&gt;",
    "*em* _em_ ~~gone~~ $x^2$ www.evil.example http://evil.example",
    "``` fenced\n```\n| forged | row |",
    "line\r\nbreak\u2028and\x00control\x1b[31m",
    "\\`\\| trailing backslash \\",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_value_is_one_literal_cell_as_text_and_as_code(value: str) -> None:
    page = Rendered(f"| a | b |\n|---|---|\n| {text(value)} | {code(value)} |\n")
    assert [[c.replace(WORD_JOINER, "") for c in r] for r in page.rows] == [["a", "b"], [_shown(value), _shown(value)]]
    assert not page.comments and not page.hrefs and not page.foreign_tags and not page.mentions()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=60) | st.text(alphabet="ab1 _*`[]()!<>&~|#@$\\:/.w\n\r-=+\"'{}%^", max_size=60))
def test_any_string_is_one_literal_cell_with_no_markup(value: str) -> None:
    page = Rendered(f"| a | b |\n|---|---|\n| x{text(value)} | {code(value)} |\n- item {text(value)}\n")
    assert len(page.rows) == 2 and [len(r) for r in page.rows] == [2, 2], page.rows
    shown = _shown(value)
    assert page.rows[1][0].replace(WORD_JOINER, "").strip() == ("x" + shown.replace(WORD_JOINER, "")).strip()
    # A code span trims one space on each side when both are there; the value's own text is otherwise kept.
    assert page.rows[1][1] in (shown, shown[1:-1], shown or "-") or not shown.strip()
    assert not page.comments and not page.hrefs and not page.foreign_tags and not page.mentions()
    assert page.tags["li"] == 1


def test_a_description_cannot_end_the_plan_comment_or_hide_another_spec(git_repo, azure_spec_text) -> None:
    """The issue's case: a settings-only change whose description ends the code span and the table and opens an
    HTML comment that hid the next spec's retrain (2 nodes, epochs 1 -> 5) and the online checks."""
    other = azure_spec_text("retrain-me").replace("num_train_epochs: 3", "num_train_epochs: 1")
    git_repo.write("runs/describe-me.yaml", azure_spec_text("describe-me") + 'description: "fine"\n')
    git_repo.write("runs/retrain-me.yaml", other)
    base = git_repo.commit("base")
    hostile = 'description: "ok`\\n<!-- @acme/admins [x](https://e.example)"\n'
    git_repo.write("runs/describe-me.yaml", azure_spec_text("describe-me") + hostile)
    git_repo.write("runs/retrain-me.yaml", other.replace("num_train_epochs: 1", "num_train_epochs: 5").replace("nodes: 1", "nodes: 2"))
    git_repo.commit("head")
    body = plan_markdown(build_plan(git_repo.root, base), extra="### Online checks (workspace, model, compute)\n")
    page = Rendered(body)
    assert page.comments == [" finetune-gitops:plan "]  # the marker, and nothing the spec opened
    assert page.tags["h3"] == 3  # both specs' sections and the online checks: nothing hidden
    assert not page.hrefs and not page.foreign_tags and not page.mentions()
    changed = [r for r in page.rows if len(r) == 3 and r[0] != "field"]
    (description,) = [r for r in changed if r[0] == "description"]
    assert description[1] == "fine" and description[2].startswith("ok` <!-- @acme/admins [x](https://e.exa")  # literal, cut at 40
    assert ["finetune.params.num_train_epochs", "1", "5"] in changed and [
        "compute.nodes",
        "1",
        "2",
    ] in changed  # the base wrote the default
    assert all(len(r) in (2, 3) for r in page.rows)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("owner", "x`@acme/admins` [l](https://e.example)", "owner"),
        ("data.dataset", "HuggingFaceH4/ultrachat_200k | forged", "data.dataset"),
        ("model.version", "8 ![x](https://e.example/i.png) @acme", "model.version"),
        ("data.test_path", "azureml:t:1\n| forged | row |", "data.test_path"),
    ],
)
def test_identifiers_have_strict_formats_at_validation(azure_spec_text, field: str, value: str, message: str) -> None:
    import yaml

    spec = yaml.safe_load(azure_spec_text("strict-me"))
    section, _, leaf = field.rpartition(".")
    target = spec[section] if section else spec
    target[leaf] = value
    if field == "data.test_path":
        spec["data"] = {"train_path": "azureml:t:1", "test_path": value}
    result = validate_text(yaml.safe_dump(spec), "runs/strict-me.yaml")
    assert not result.ok and any(f.path == message for f in result.findings if f.is_error), [f.format() for f in result.findings]
    # And the error itself, quoting the value, renders as one literal line.
    finding = next(f for f in result.findings if f.path == message)
    page = Rendered(f"- {text(finding.message)}\n")
    assert not page.hrefs and not page.foreign_tags and not page.mentions() and not page.comments


REPORT_STRINGS = st.text(max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    run=REPORT_STRINGS,
    job=REPORT_STRINGS,
    model=REPORT_STRINGS,
    endpoint=REPORT_STRINGS,
    reply=st.text(max_size=200),
    reason=REPORT_STRINGS,
    key=REPORT_STRINGS,
    value=REPORT_STRINGS,
    metric=REPORT_STRINGS,
)
def test_any_record_and_any_model_reply_give_the_same_report_structure(
    run: str, job: str, model: str, endpoint: str, reply: str, reason: str, key: str, value: str, metric: str
) -> None:
    report = RunReport(
        run=run,
        job_name=job,
        status="live",
        params={key: value, "learning_rate": "5e-6"},
        duration_s=1.0,
        final_train_loss=1.0,
        best_train_loss=0.9,
        final_eval_loss=None,
        best_eval_loss=None,
        eval_perplexity=None,
        tokens_seen=10,
        smoke_ok=True,
        smoke_latency_ms=12.0,
        smoke_reply=reply or "a reply",
        model=model,
        endpoint=endpoint,
        deployment="blue",
        curves={metric or "train_loss": [(1, 2.0), (2, 1.0)]},
        gate={"ok": False, "reasons": [reason], "notes": []},
    )
    page = Rendered(report_markdown(report, png="report files/loss.png"))
    assert page.comments == [" finetune-gitops:report "]
    assert page.hrefs == ["report%20files/loss.png"]  # the image the report links, nothing a field made
    assert not page.foreign_tags and not page.mentions()
    main = page.rows[:12]  # the header row and the eleven facts, each two cells
    assert len(main) == 12 and all(len(r) == 2 for r in main)
    assert [len(r) for r in page.rows[12:]] == [2, 2, 2] if key != "learning_rate" else True  # the parameters
    assert page.tags["blockquote"] == 1 and page.tags["pre"] == 1  # the reply, and the one Mermaid chart


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(REPORT_STRINGS, REPORT_STRINGS, REPORT_STRINGS, REPORT_STRINGS), min_size=1, max_size=4))
def test_any_model_version_or_finding_is_one_row_of_the_watch_issue(findings: list[tuple[str, str, str, str]]) -> None:
    rows = [WatchFinding("model", "warning", run, subject, what, fix, since="2026-01-01") for run, subject, what, fix in findings]
    page = Rendered(watch_markdown(rows, "2026-12-04 06:00 UTC"))
    assert [len(r) for r in page.rows] == [6] * (len(rows) + 1)
    assert page.comments == [" finetune-gitops:watch "] and not page.hrefs and not page.foreign_tags and not page.mentions()


SUMMARY_PROBE = """
const { summaryHtml } = require(process.argv[1]);
const values = JSON.parse(process.argv[2]);
const out = values.map((v) => summaryHtml({ heading: `submitted: ${v}`, lines: [v], items: [v, v],
                                             table: [['job', 'status'], [{ text: v, href: v }, v]] }));
out.push(summaryHtml({ heading: 'ok', table: [['job'], [{ text: 'j1', href: 'https://ml.azure.com/runs/j1?wsid=/x' }]] }));
console.log(JSON.stringify(out));
"""

HOSTILE_SUMMARY_VALUES = [
    "<img src=x onerror=alert(1)>",
    "</li></ul><a href='https://evil.example'>click</a>",
    "ok\n\n[click](https://evil.example) **bold** @acme/admins #12 www.evil.example",
    "javascript:alert(1)",
    '" onmouseover="alert(1)',
    "<!-- hide the rest",
    "`code` | a | b",
    "&lt;entity&gt; &amp;",
]


def test_a_job_summary_shows_every_value_as_text_and_links_only_to_the_studio() -> None:
    """The deploy, retry and decide workflows write the Function's answer (run, job, messages from a spec) into the job
    summary; once, as raw HTML: a message could open a link, an image or a comment there."""
    import json
    import shutil
    import subprocess

    if shutil.which("node") is None:
        pytest.fail("node is missing: the workflows' helpers run under it")
    script = REPO_ROOT / ".github" / "scripts" / "gitops.js"
    probe = ["node", "-e", SUMMARY_PROBE, str(script), json.dumps(HOSTILE_SUMMARY_VALUES)]
    *hostile, studio = json.loads(subprocess.run(probe, capture_output=True, text=True, timeout=60, check=True).stdout)
    for value, html in zip(HOSTILE_SUMMARY_VALUES, hostile, strict=True):
        page = Rendered(html)
        assert page.hrefs == [] and not page.comments and page.mentions() == [], (value, html)
        assert set(page.tags) <= {"h3", "p", "ul", "li", "table", "tr", "th", "td"}, (value, html)
        assert page.tags["li"] == 2 and page.tags["td"] == 2 and page.tags["p"] == 1, (value, html)
        shown = "".join(page.prose).replace(WORD_JOINER, "")
        assert shown.count(" ".join(value.split("\n\n"))) == 6, (value, shown)  # heading, line, two items, two cells
    assert Rendered(studio).hrefs == ["https://ml.azure.com/runs/j1?wsid=/x"]
