"""Shared fixtures: spec files written by the tests, throwaway git repositories, the CLI in-process."""

from __future__ import annotations

import os
import subprocess
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# No network at test time: the real hub-loading code paths fail fast instead of reaching out.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The repository every test's resources belong to (its identity, the salt of derived names), whatever repository
# the machine running the tests is building (GitHub Actions sets GITHUB_REPOSITORY).
os.environ["GITOPS_REPO"] = "acme/models"


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a dedented text file under tmp_path and return its path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return _write


@dataclass
class CliResult:
    exit_code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., CliResult]:
    """Run ``gitops ARGS`` in-process and capture its exit code and output."""
    from gitops.cli import main

    def _run(*args: str, cwd: Path | None = None) -> CliResult:
        if cwd is not None:
            monkeypatch.chdir(cwd)
        capsys.readouterr()
        code = 0
        try:
            main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return _run


class GitRepo:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.email", "dev@example.com")
        self.git("config", "user.name", "dev")

    def git(self, *args: str) -> str:
        return subprocess.run(["git", "-C", str(self.root), *args], check=True, capture_output=True, text=True).stdout.strip()

    def write(self, rel: str, text: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    def commit(self, message: str = "change") -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def git_repo(tmp_path: Path) -> GitRepo:
    return GitRepo(tmp_path / "repo")


LOCAL_SPEC = """
name: {name}
backend: local
owner: team-a
model: {{registry: local, name: tiny-phi3}}
data: {{train_path: data/train.jsonl, test_path: data/test.jsonl}}
finetune:
  params: {{max_steps: 10, learning_rate: 1.0e-3, apply_lora: true}}
deploy: {{endpoint: {name}-ep}}
"""

AZURE_SPEC = """
name: {name}
backend: azureml
owner: team-a
model: {{registry: azureml, name: Phi-4, version: "8"}}
data: {{dataset: HuggingFaceH4/ultrachat_200k, train_split: train_sft, test_split: test_sft, sample_percent: 5}}
compute: {{cluster: gpu-cluster-big, instance_type: Standard_NC24ads_A100_v4, nodes: 1}}
finetune:
  component_version: 0.0.82
  params: {{num_train_epochs: 3, per_device_train_batch_size: 1, learning_rate: 5.0e-6,
           lr_scheduler_type: cosine, apply_lora: true, apply_deepspeed: true, deepspeed_stage: 2}}
deploy:
  endpoint: {name}-ep
  instance_type: Standard_NC48ads_A100_v4
lifecycle: {{idle_after: 24h, expire_after: 7d}}
"""


# The reference run reading the data assets the fake workspace seeds (an Azure spec never reads a local file).
REFERENCE_ON_ASSETS = (
    (REPO_ROOT / "runs" / "phi4-ultrachat.yaml")
    .read_text()
    .replace(
        "dataset: HuggingFaceH4/ultrachat_200k",
        "train_path: azureml:ultrachat-train:1\n  test_path: azureml:ultrachat-test:1\n  # dataset: HuggingFaceH4/ultrachat_200k",
    )
)


def run_report(**overrides: Any) -> Any:
    """A RunReport of a small, plausible run; tests override the fields they look at."""
    from gitops.report.build import RunReport

    fields: dict[str, Any] = dict(
        run="r",
        job_name="j",
        status="live",
        params={"learning_rate": "0.001"},
        duration_s=12.0,
        final_train_loss=1.0,
        best_train_loss=0.9,
        final_eval_loss=1.1,
        best_eval_loss=1.05,
        eval_perplexity=3.0,
        tokens_seen=1000,
        smoke_ok=True,
        smoke_latency_ms=20.0,
        smoke_reply="hi",
        model="m v1",
        endpoint="e",
        deployment="d",
    )
    return RunReport(**{**fields, **overrides})


def assert_golden(name: str, text: str) -> None:
    """``text`` byte for byte against ``tests/golden/<name>``: what users read is reviewed as a file. After a
    deliberate change, regenerate with ``GITOPS_UPDATE_GOLDEN=1 pytest`` and review the diff."""
    import os

    golden = REPO_ROOT / "tests" / "golden" / name
    if os.environ.get("GITOPS_UPDATE_GOLDEN"):
        golden.write_text(text, encoding="utf-8")
    assert golden.is_file(), f"no golden file {golden}: run with GITOPS_UPDATE_GOLDEN=1 once"
    assert text == golden.read_text(encoding="utf-8")


@pytest.fixture
def local_spec_text() -> Callable[..., str]:
    def text(name: str = "tiny-run") -> str:
        return textwrap.dedent(LOCAL_SPEC.format(name=name)).lstrip("\n")

    return text


@pytest.fixture
def azure_spec_text() -> Callable[..., str]:
    def text(name: str = "azure-run") -> str:
        return textwrap.dedent(AZURE_SPEC.format(name=name)).lstrip("\n")

    return text


def _azurite(service: str, location: Path):
    """Run one Azurite service for the session; yields its connection string."""
    from tests import azurite

    try:
        proc, port = azurite.start(service, location)
    except azurite.AzuriteError as exc:
        pytest.fail(str(exc))
    yield azurite.connection_string(service, port)
    azurite.stop(proc)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory):
    """A real Azurite blob service on 127.0.0.1 for this test session; yields its connection string."""
    yield from _azurite("blob", tmp_path_factory.mktemp("azurite"))


@pytest.fixture(scope="session")
def azurite_queue(tmp_path_factory: pytest.TempPathFactory):
    """A real Azurite queue service on 127.0.0.1 for this test session; yields its connection string."""
    yield from _azurite("queue", tmp_path_factory.mktemp("azurite-queue"))


@pytest.fixture(params=["files", "blob"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path):
    """Each ledger implementation, fresh: files in tmp_path, or a new container in Azurite."""
    import uuid

    if request.param == "files":
        from gitops.ledger.local import LocalLedger

        return LocalLedger(tmp_path / "ledger")
    from gitops.ledger.blob import BlobLedger

    return BlobLedger.from_connection_string(request.getfixturevalue("azurite"), f"ledger-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def azure_fake():
    """The fake Azure ML REST API, live for one test; any call it does not know fails the test."""
    from tests.fakes.azureml_api import FakeAzureML, intercept

    fake = FakeAzureML().seed_defaults()
    with intercept(fake):
        yield fake


@pytest.fixture
def azure_backend(azure_fake, tmp_path: Path):
    """The real Azure ML backend (real MLClient) wired to the fake."""
    from tests.fakes.azureml_api import azure_backend_for

    return azure_backend_for(azure_fake)
