"""The dashboard in a real browser, over a workspace whose runs the real lifecycle brought into every state (on the
fake Azure ML REST API and a virtual clock): what each page shows, no console error, no dialog a hostile field could
open, a page that refreshes itself while a rollout moves (and stops when it ends), the keyboard, and axe-core's
accessibility scan with no serious violation. A screenshot of each page is kept under ``.artifacts/dashboard``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gitops.dashboard.local_server import DashboardServer, serving
from gitops.dashboard.pages import DashboardSource
from gitops.ledger.model import update
from gitops.lifecycle.wiring import price_book
from gitops.spec.validate import validate_text
from gitops.watch.findings import WATCH_DOCUMENT
from tests.browser.conftest import AXE
from tests.virtual_azure import SPEC, World, virtual_world

HOSTILE = "<img src=x onerror=alert(1)>\"'><script>alert(2)</script>"
STATES = {
    "chat-live": "live",
    "chat-rolledback": "rolled_back",
    "chat-failed": "failed",
    "chat-retired": "retired",
    "chat-held": "held",
    "chat-training": "submitted",
    "chat-moving": "deploying",
}


def spec_of(name: str, lr: str = "5.0e-6") -> Any:
    text = (
        SPEC.replace("name: phi4-ultrachat", f"name: {name}")
        .replace("endpoint: ultrachat-completion", f"endpoint: {name}-ep")
        .replace("name: Phi-4-ultrachat-200k", f"name: {name}-model")
        .replace("learning_rate: 5.0e-6", f"learning_rate: {lr}")
    )
    result = validate_text(text, f"runs/{name}.yaml")
    assert result.ok, [f.format() for f in result.findings if f.is_error]
    return result


@dataclass
class Fleet:
    world: World
    made: dict[str, str] = field(default_factory=dict)

    def record(self, key: str) -> Any:
        got = self.world.lifecycle.ledger.get(key)
        assert got is not None
        return got[0]

    def settle(self, key: str, until: str | None = None, step: str | None = None) -> None:
        """Deliver due step messages (the clock moving to the next) until ``key`` is ``until`` or at ``step``."""
        self.world.deliver(limit=600, until=until, run=key, step=step)

    def version(
        self, name: str, lr: str, *, commit: str = "c0ffee", pr: str = "7", status: str = "Completed", until: str | None = None
    ) -> str:
        w = self.world
        record = w.lifecycle.submit(spec_of(name, lr), commit=commit, pr=pr)
        w.fake.set_job_status(record.job_name, status)
        if status != "Running":
            w.lifecycle.on_job_event(w.fake.job_event(record.job_name, status.lower()))
            self.settle(name, until)
        return record.job_name

    def live(self, name: str) -> None:
        durations = dict(self.world.fake.provisioning_s)
        self.world.fake.provisioning_s.update(onlineendpoints=0, deployments=0)
        self.version(name, "5.0e-6", until="live")
        self.world.fake.provisioning_s.update(durations)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with virtual_world(tmp_path_factory.mktemp("fleet")) as world:
        f = Fleet(world)
        fake = world.fake
        # live, on its second version (the previous one's curves dashed), from a commit and PR whose text is hostile
        f.live("chat-live")
        f.version("chat-live", "6.0e-6", commit=HOSTILE, pr="javascript:alert(3)", until="live")
        # rolled back: the second version's deployment failed to provision
        f.live("chat-rolledback")
        fake.deployment_state = "Failed"
        f.version("chat-rolledback", "6.0e-6", until="rolled_back")
        fake.deployment_state = "Succeeded"
        # failed: its job failed
        f.version("chat-failed", "5.0e-6", status="Failed", until="failed")
        # retired: live, then its endpoint deleted by cleanup (what cleanup records)
        f.live("chat-retired")
        decision = {
            "at": world.clock.now(),
            "action": "delete",
            "endpoint": "chat-retired-ep",
            "reasons": ["idle for 24h (idle_after 24h)"],
        }
        update(
            world.lifecycle.ledger,
            "chat-retired",
            lambda r: r.model_copy(update={"last_cleanup": decision}).retired("idle for 24h", at=world.clock.now()),
        )
        # held: the candidate answers noise where the serving version answers the question
        f.live("chat-held")
        serving = f.record("chat-held").deployment
        fake.scorer = lambda endpoint, deployment, body: (
            200,
            [{"0": "It matters because life depends on it."}] if deployment == serving else [{"0": "zzz"}],
        )
        f.version("chat-held", "6.0e-6", until="held")
        fake.scorer = lambda endpoint, deployment, body: (200, [{"0": "It matters because life depends on it."}])
        # training: its job still runs
        f.version("chat-training", "5.0e-6", status="Running")
        # moving: its second version's deployment provisions (Azure's 20 minutes)
        f.live("chat-moving")
        f.version("chat-moving", "6.0e-6", status="Completed", until="deploying")
        f.settle("chat-moving", step="await_deployment")
        world.lifecycle.ledger.save_document(
            WATCH_DOCUMENT,
            {
                "at": "2026-12-07T06:00:00+00:00",
                "specs": 7,
                "runs": 7,
                "findings": [
                    {
                        "kind": "model",
                        "severity": "warning",
                        "run": "chat-live",
                        "subject": "model.version",
                        "what": f"a newer version of Phi-4 is published {HOSTILE}",
                        "fix": 'set model.version: "9"',
                    }
                ],
            },
        )
        got = {key: f.record(key).status for key in STATES}
        assert got == STATES, got
        yield f


@pytest.fixture(scope="module")
def server(fleet: Fleet) -> Iterator[DashboardServer]:
    w = fleet.world
    source = DashboardSource(w.lifecycle.ledger, w.fake.mlflow.reader, w.clock.now, price_book(live=False), "acme/models", refresh_s=1)
    with serving(source) as s:
        yield s


class Watched:
    """A page with everything it says on the console, its uncaught errors and any dialog (none may open)."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.console: list[str] = []
        self.dialogs: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        page.on("dialog", self._dialog)

    def _console(self, message: Any) -> None:
        if message.type in ("error", "warning"):
            self.console.append(f"{message.type}: {message.text}")

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def axe(self) -> list[tuple[str, str, int]]:
        self.page.evaluate(AXE.read_text(encoding="utf-8"))  # evaluated, not a <script>: the page's CSP stays as it is
        found = self.page.evaluate("async () => (await axe.run(document)).violations.map(v => [v.id, v.impact, v.nodes.length])")
        return [tuple(v) for v in found]


@pytest.fixture
def page(chromium: Any, server: DashboardServer) -> Iterator[Watched]:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    watched = Watched(context.new_page())
    watched.page.goto(server.url)  # the token, exchanged for the cookie
    yield watched
    context.close()
    assert watched.dialogs == [], watched.dialogs
    assert watched.console == [], watched.console


def serious(violations: list[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
    return [v for v in violations if v[1] in ("serious", "critical")]


def test_the_run_list_shows_every_run_in_its_state(page: Watched, server: DashboardServer, artifacts: Path) -> None:
    p = page.page
    assert p.url == f"http://127.0.0.1:{server.port}/"  # the token left the address bar
    assert p.title() == "Runs · finetune-gitops"
    for key, status in STATES.items():
        row = p.locator(f"tr[data-run='{key}']")
        assert row.count() == 1, key
        assert row.locator(".status").inner_text() == status.replace("_", " "), key
    moving = p.locator("tr[data-run='chat-moving']").inner_text()
    assert "await_deployment" in moving and "chat-moving-ep" in moving and "0%" in moving and "100%" in moving
    assert p.locator("tr[data-run='chat-live'] td").nth(5).inner_text().strip().endswith("100%")
    assert "a newer version of Phi-4 is published" in p.locator("#watch-h + p + div").inner_text()
    assert HOSTILE in p.locator("#watch-h + p + div").inner_text()  # shown as text
    cleanup = p.locator("#cleanup-h").locator("xpath=..").inner_text()
    assert "chat-retired" in cleanup and "delete" in cleanup and "idle for 24h" in cleanup
    p.screenshot(path=str(artifacts / "runs.png"), full_page=True)
    assert serious(page.axe()) == []


@pytest.mark.parametrize("key", list(STATES))
def test_each_run_page_shows_its_state_and_passes_the_accessibility_scan(
    page: Watched, server: DashboardServer, artifacts: Path, key: str
) -> None:
    p = page.page
    p.goto(f"http://127.0.0.1:{server.port}/runs/{key}")
    assert p.locator("h1 .status").inner_text() == STATES[key].replace("_", " ")
    text = p.locator("main").inner_text()
    for heading in ("Where it stands", "Evaluation gate", "Traffic ramp", "Loss curves", "Smoke test", "Cost", "Timeline"):
        assert heading in text, (key, heading)
    p.screenshot(path=str(artifacts / f"run-{key}.png"), full_page=True)
    assert serious(page.axe()) == [], key


def test_a_live_run_page_draws_both_versions_curves_and_its_gate_and_cost(page: Watched, server: DashboardServer) -> None:
    p = page.page
    p.goto(f"http://127.0.0.1:{server.port}/runs/chat-live")
    assert p.locator("svg.chart polyline").count() == 4
    assert p.locator("svg.chart polyline.dashed").count() == 2  # the previous version's train and eval loss
    gate = p.locator("#gate-h").locator("xpath=..").inner_text()
    assert "passed" in gate and "eval_loss" in gate
    cost = p.locator("#cost-h").locator("xpath=..").inner_text()
    assert "instance-hours" in cost and "$" in cost and "snapshot of" in cost
    links = p.locator("#actions-h + ul a")
    hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
    assert hrefs == ["https://github.com/acme/models/actions/workflows/decide.yml"]  # neither the hostile PR nor commit made a link
    held = p.goto(f"http://127.0.0.1:{server.port}/runs/chat-held")
    assert held is not None and held.status == 200
    assert "held" in p.locator("#gate-h").locator("xpath=..").inner_text()


def test_a_page_refreshes_itself_while_the_rollout_moves_and_stops_when_it_ends(
    page: Watched, server: DashboardServer, fleet: Fleet
) -> None:
    p = page.page
    p.goto(f"http://127.0.0.1:{server.port}/runs/chat-moving")
    assert p.locator("h1 .status").inner_text() == "deploying"
    assert p.locator("#refresh-toggle").is_visible()
    p.evaluate("window.__same_document = true")
    fleet.settle("chat-moving", until="live")  # Azure's minutes pass; the lifecycle moves the run to live
    p.locator("h1 .status-live").wait_for(timeout=15_000)
    assert p.evaluate("window.__same_document === true")  # refreshed in place, not reloaded
    assert p.locator("main").get_attribute("data-refresh-s") == "0"
    p.locator("#refresh-toggle").wait_for(state="hidden", timeout=5_000)  # nothing moves: no more refreshes
    assert "nothing moves" in p.locator("#refresh-status").inner_text()


def test_the_keyboard_reaches_the_content_and_every_run(page: Watched, server: DashboardServer) -> None:
    p = page.page
    p.goto(f"http://127.0.0.1:{server.port}/")
    p.keyboard.press("Tab")
    assert p.evaluate("document.activeElement.textContent") == "Skip to content"
    p.keyboard.press("Enter")
    assert p.evaluate("document.activeElement.id") == "main"
    p.keyboard.press("Tab")
    first = p.evaluate("document.activeElement.getAttribute('href')")
    assert first is not None and first.startswith("/runs/")
    p.keyboard.press("Enter")
    p.wait_for_url(f"http://127.0.0.1:{server.port}{first}")
    assert p.locator("h1").is_visible()
    # the focus outline is drawn (a keyboard user sees where they are)
    p.keyboard.press("Tab")
    outline = p.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", ""), outline
