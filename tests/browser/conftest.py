"""A real browser for the dashboard's tests: Debian's chromium (``/usr/bin/chromium``, installed by ``.ci/run``),
driven by Playwright, never a browser Playwright downloads. Where no chromium is installed the tests are skipped,
except in CI (``CI`` set), where a missing browser is a failure: the suite never passes by not looking."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT

CHROMIUM = os.environ.get("GITOPS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
AXE = REPO_ROOT / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = Path(os.environ.get("GITOPS_TEST_ARTIFACTS") or REPO_ROOT / ".artifacts") / "dashboard"
# No network: the flags the machine's closed network needs (no background fetches, no component updates).
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    if not Path(CHROMIUM).is_file() or not AXE.is_file():
        missing = "chromium" if not Path(CHROMIUM).is_file() else f"{AXE} (npm install)"
        if os.environ.get("CI"):
            pytest.fail(f"{missing} is missing: .ci/run installs it, and CI never skips the browser tests")
        pytest.skip(f"{missing} is not installed here (apt-get install chromium; npm install)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
