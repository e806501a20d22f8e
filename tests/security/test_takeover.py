"""Hole 2 of the hostile-input issue, on every backend: an endpoint is ours to deploy to only when it is absent or
this repository's and tagged with this run. One rule, in the lifecycle's step, exercised here on the real local backend (a server of its
own) and on the Azure backend (the real SDK against the fake REST API)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gitops.backends.base import Backend
from gitops.ledger.model import Cursor, RunRecord
from gitops.lifecycle import steps

SPEC = {
    "name": "mine",
    "backend": "local",
    "model": {"registry": "local", "name": "tiny-phi3"},
    "data": {"train_path": "t.jsonl"},
    "deploy": {"endpoint": "theirs"},
}


@pytest.fixture(params=["local", "azureml"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "local":
        from gitops.backends.local.backend import LocalBackend

        local = LocalBackend(tmp_path / "ws")
        yield local
        for info in local.list_endpoints():
            local.delete_endpoint(info.name)
        return
    from tests.fakes.azureml_api import FakeAzureML, azure_backend_for, intercept

    fake = FakeAzureML().seed_defaults()
    with intercept(fake):
        yield azure_backend_for(fake)


def _ensure(backend: Backend, run: str) -> Any:
    now = time.time()
    record = RunRecord(run=run, backend=backend.name, job_name="gitops-mine-1", spec=SPEC, digest="d" * 64)
    cursor = Cursor(step="ensure_endpoint", entered_at=now, not_before=now, deadline_at=now + 60, started_at=now, endpoint="theirs")
    return steps.ensure_endpoint(steps.StepContext(record, cursor, backend, now, repo="acme/models"))


MANAGED = {"managed_by": "finetune-gitops"}


@pytest.mark.parametrize(
    ("tags", "refusal"),
    [
        ({"owner": "another-team"}, "not managed by finetune-gitops"),
        ({**MANAGED, "gitops_repo": "acme/models", "gitops_run": "other"}, "belongs to run 'other'"),
        ({**MANAGED, "gitops_repo": "globex/llm", "gitops_run": "mine"}, "managed by repository globex/llm, not this one"),
        ({**MANAGED, "gitops_run": "mine"}, "names no repository (gitops_repo is missing)"),  # and no record of ours on it
    ],
)
def test_an_endpoint_someone_else_made_is_never_taken_over(backend: Backend, tags: dict[str, str], refusal: str) -> None:
    backend.begin_endpoint("theirs", tags)
    before = backend.get_endpoint("theirs")
    assert before is not None
    outcome = _ensure(backend, "mine")
    assert outcome.kind == "fail" and refusal in outcome.note, outcome.note
    after = backend.get_endpoint("theirs")
    assert after is not None and dict(after.tags) == dict(before.tags)  # no tag merged in: never eligible for our cleanup


def test_an_absent_endpoint_or_one_of_this_run_is_ours(backend: Backend) -> None:
    assert _ensure(backend, "mine").kind == "done"  # absent: made, tagged with the run
    info = backend.get_endpoint("theirs")
    assert info is not None and info.tags.get("gitops_run") == "mine" and info.tags.get("managed_by") == "finetune-gitops"
    assert info.tags.get("gitops_repo") == "acme/models"
    assert _ensure(backend, "mine").kind == "done"  # ours: again, idempotent
