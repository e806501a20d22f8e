"""#27: the local registry carries a model from one environment's workspace to the next: shared once, held to the
content digest computed where it was trained, refused when that digest is missing or the files changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops.backends.base import RegisteredModel, SharesModels
from gitops.backends.local import models
from gitops.backends.local.backend import LocalBackend
from gitops.errors import ConflictError, NotFoundError, UnsupportedError
from gitops.spec import naming
from gitops.spec.policy import RegistryRef
from pipelines.model_digest import content_digest


def _trained(backend: LocalBackend, tmp_path: Path, job: str = "gitops-tiny-000000000001", digest: bool = True) -> RegisteredModel:
    """A model as a job leaves it: its files logged to the workspace's MLflow, registered with their digest."""
    import mlflow

    files = tmp_path / f"files-{job}"
    (files / "model").mkdir(parents=True)
    (files / "model" / "model.safetensors").write_bytes(job.encode() * 100)
    (files / "model" / "config.json").write_text('{"hidden_size": 64}')
    (files / "MLmodel").write_text("flavors: {}\n")
    experiment = models.ensure_experiment(backend.ws, "chat_completion_tiny-phi3")  # artifacts in the workspace
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.log_artifacts(str(files))
    tags = {naming.TAG_CONTENT: content_digest(files)} if digest else {}
    return models.register(backend.ws, f"runs:/{run.info.run_id}", "tiny", tags, job)


def test_a_model_is_shared_once_with_its_digest_and_lineage(tmp_path: Path) -> None:
    dev = LocalBackend(tmp_path / "dev")
    assert isinstance(dev, SharesModels)
    registry = RegistryRef(directory=str(tmp_path / "registry"))
    model = _trained(dev, tmp_path)
    lineage = {naming.TAG_RUN: "tiny", naming.TAG_REPO: "acme/models", naming.TAG_COMMIT: "c0ffee"}
    first = dev.share_model(model, registry, "tiny-3f2a1c", lineage)
    again = dev.share_model(model, registry, "tiny-3f2a1c", lineage)
    assert (first.name, first.version) == (again.name, again.version) == ("tiny-3f2a1c", "1")
    assert first.tags[naming.TAG_CONTENT] == model.tags[naming.TAG_CONTENT] and first.tags[naming.TAG_COMMIT] == "c0ffee"
    # The registry's own record, as another environment's backend reads it.
    prod = LocalBackend(tmp_path / "prod")
    assert prod.registry_model(registry, "tiny-3f2a1c", "1").tags[naming.TAG_CONTENT] == model.tags[naming.TAG_CONTENT]
    with pytest.raises(NotFoundError):
        prod.registry_model(registry, "tiny-3f2a1c", "2")
    # Another model (another job's files) is another version of the same name.
    other = dev.share_model(_trained(dev, tmp_path, "gitops-tiny-000000000002"), registry, "tiny-3f2a1c", lineage)
    assert other.version == "2"


def test_a_model_without_a_digest_or_whose_files_changed_is_never_shared(tmp_path: Path) -> None:
    dev = LocalBackend(tmp_path / "dev")
    registry = RegistryRef(directory=str(tmp_path / "registry"))
    with pytest.raises(ConflictError, match="carries no content digest"):
        dev.share_model(_trained(dev, tmp_path, digest=False), registry, "tiny-3f2a1c", {})
    model = _trained(dev, tmp_path, "gitops-tiny-000000000003")
    (weights,) = [p for p in (tmp_path / "dev" / "mlartifacts").rglob("model.safetensors") if b"000000000003" in p.read_bytes()]
    weights.write_bytes(b"changed after training")
    with pytest.raises(ConflictError, match="is not the model that was trained"):
        dev.share_model(model, registry, "tiny-3f2a1c", {})
    assert not (tmp_path / "registry" / "mlflow.db").exists()  # nothing was registered
    with pytest.raises(UnsupportedError, match="registry directory"):
        dev.share_model(model, RegistryRef(name="acme-models"), "tiny-3f2a1c", {})
