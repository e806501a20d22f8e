"""Opt-in checks against a real Azure ML workspace (marker ``azure``); skipped unless configured.

Set AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP, AZUREML_WORKSPACE_NAME and GITOPS_AZURE_TESTS=1, sign in
(``az login``), then ``pytest -m azure``. Read-only: nothing is submitted, created or deleted.
"""

from __future__ import annotations

import os

import pytest

from gitops.spec.validate import validate_file
from tests.conftest import REPO_ROOT

pytestmark = [
    pytest.mark.azure,
    pytest.mark.skipif(
        os.environ.get("GITOPS_AZURE_TESTS") != "1" or not os.environ.get("AZUREML_WORKSPACE_NAME"),
        reason="needs a real workspace: set GITOPS_AZURE_TESTS=1 and the AZURE_* settings",
    ),
]


@pytest.fixture(scope="module")
def backend():
    from gitops.backends.azureml.backend import AzureMLBackend

    return AzureMLBackend()


def test_reference_model_resolves_with_its_fine_tune_metadata(backend) -> None:
    model = backend.resolve_model(validate_file(REPO_ROOT / "runs" / "phi4-ultrachat.yaml").require())
    assert model.uri.startswith("azureml://registries/azureml/models/Phi-4/")
    assert model.finetune_allow_list, "the model declares where it may be fine-tuned"


def test_compute_check_and_endpoint_listing_run(backend) -> None:
    spec = validate_file(REPO_ROOT / "runs" / "phi4-ultrachat.yaml").require()
    findings = backend.check_compute(spec, backend.resolve_model(spec))
    assert all(f.path.startswith(("compute", "deploy")) for f in findings)
    assert isinstance(backend.list_endpoints(), list)
