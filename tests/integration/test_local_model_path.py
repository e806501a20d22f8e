"""A spec may point the local backend at any Hugging Face model directory (model.path)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops.backends.local.backend import LocalBackend
from gitops.errors import NotFoundError
from gitops.spec.validate import validate_text
from pipelines.local_finetune import FinetuneRequest, run_finetune
from pipelines.synth import write_dataset
from pipelines.tiny_model import build_tiny_phi3

pytestmark = pytest.mark.slow


def _spec(path: Path, data: dict[str, Path]):
    text = (
        f"name: from-dir\nbackend: local\nmodel: {{name: my-model, registry: local, path: {path}}}\n"
        f"data: {{train_path: {data['train_sft']}, test_path: {data['test_sft']}}}\n"
    )
    result = validate_text(text, "from-dir.yaml")
    assert result.ok, result.findings
    return result.require()


def test_a_local_hugging_face_directory_is_resolved_and_trains(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "data", rows=40, test_rows=8)
    hf_dir = build_tiny_phi3(tmp_path / "hf")
    backend = LocalBackend(tmp_path / "ws")
    model = backend.resolve_model(_spec(hf_dir, data))
    assert model.uri == str(hf_dir.resolve()) and model.name == "my-model"
    result = run_finetune(
        FinetuneRequest(
            job_name="from-dir",
            base_model_dir=model.uri,
            train_path=str(data["train_sft"]),
            test_path=None,
            output_dir=str(tmp_path / "out"),
            params={"max_steps": 3, "per_device_train_batch_size": 4, "apply_lora": "true"},
            tracking_uri=backend.ws.tracking_uri,
        )
    )
    assert result.model_uri and result.final_train_loss is not None


def test_a_directory_without_a_model_is_a_clear_error(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "data", rows=8)
    with pytest.raises(NotFoundError, match="is not a Hugging Face or MLflow model directory"):
        LocalBackend(tmp_path / "ws").resolve_model(_spec(tmp_path, data))
