"""#26, backends own their identity: each backend's capabilities and offline facts are data in its own folder
(``gitops/backends/<name>/kind.yaml``), read without importing the backend or its SDK."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gitops.errors import ConfigurationError
from gitops.spec.capabilities import KINDS, Feature, _read_kind
from tests.conftest import REPO_ROOT

BACKENDS = REPO_ROOT / "gitops" / "backends"


def test_every_backend_package_declares_its_kind_beside_its_code() -> None:
    packages = sorted(p.parent.name for p in BACKENDS.glob("*/backend.py"))
    assert packages == sorted(KINDS) == ["azureml", "local"]
    for name, kind in KINDS.items():
        factory_module = kind.factory.split(":")[0]
        assert (REPO_ROOT / (factory_module.replace(".", "/") + ".py")).parent == BACKENDS / name


def test_the_kinds_are_read_without_importing_a_backend_or_an_sdk() -> None:
    code = (
        "import sys; from gitops.spec.capabilities import KINDS; "
        "assert KINDS['azureml'].gpus('Standard_NC24ads_A100_v4') == 1; "
        "print(sorted(m for m in sys.modules if m.startswith(('gitops.backends.', 'azure', 'mlflow', 'torch'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT).stdout
    assert out.strip() == "[]", out


def test_the_azure_facts_are_the_azure_backends() -> None:
    azure, local = KINDS["azureml"], KINDS["local"]
    assert azure.default_deploy_sku == "Standard_NC24ads_A100_v4" and local.default_deploy_sku is None
    assert azure.gpus("STANDARD_ND96ISR_H100_V5") == 8 and local.gpus("Standard_ND96isr_H100_v5") is None
    assert azure.job_run_type == "azureml.PipelineRun" and local.job_run_type is None
    assert not local.supports(Feature.HOSTED) and azure.supports(Feature.HOSTED)


def test_a_broken_kind_file_is_an_error_naming_it(tmp_path: Path) -> None:
    folder = tmp_path / "azureml"
    folder.mkdir()
    text = (BACKENDS / "azureml" / "kind.yaml").read_text(encoding="utf-8")
    (folder / "kind.yaml").write_text(text + "\nsupports_everything: true\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="kind.yaml of backend azureml has unknown fields: supports_everything"):
        _read_kind(folder / "kind.yaml")
    (folder / "kind.yaml").write_text(text.replace("multi_node", "x") + "\nunsupported: {teleport: no}\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="kind.yaml of backend azureml is invalid"):
        _read_kind(folder / "kind.yaml")
    (folder / "kind.yaml").write_text(text.replace("name: azureml", "name: local"), encoding="utf-8")
    with pytest.raises(ConfigurationError, match="names backend 'local'"):
        _read_kind(folder / "kind.yaml")
