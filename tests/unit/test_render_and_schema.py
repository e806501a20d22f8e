"""``gitops render`` output loads with azure.ai.ml offline; the committed JSON Schema is up to date."""

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitops.spec.schema import run_spec_schema_text

REPO = Path(__file__).resolve().parents[2]


def test_committed_schema_is_current() -> None:
    committed = (REPO / "schemas" / "run-spec.schema.json").read_text()
    assert committed == run_spec_schema_text(), "run `gitops schema --out schemas/run-spec.schema.json`"


def test_examples_point_editors_at_the_schema() -> None:
    for spec in (REPO / "runs").glob("*.yaml"):
        assert spec.read_text().splitlines()[0] == "# yaml-language-server: $schema=../schemas/run-spec.schema.json"


def test_examples_validate_against_the_json_schema() -> None:
    import jsonschema

    schema = json.loads((REPO / "schemas" / "run-spec.schema.json").read_text())
    for spec in (REPO / "runs").glob("*.yaml"):
        jsonschema.validate(yaml.safe_load(spec.read_text()), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": "x", "model": {}, "data": {}, "bogus": 1}, schema)


def test_render_reference_run(cli) -> None:
    result = cli("render", str(REPO / "runs" / "phi4-ultrachat.yaml"))
    assert result.exit_code == 0, result.err
    job = yaml.safe_load(result.out)
    assert job["$schema"].endswith("pipelineJob.schema.json")
    assert job["settings"] == {"force_rerun": True, "continue_on_step_failure": False}
    assert job["outputs"] == {"trained_model": {"type": "mlflow_model"}}
    step = job["jobs"]["finetune"]
    assert step["component"] == "azureml://registries/azureml/components/chat_completion_pipeline/versions/0.0.82"
    assert step["inputs"]["apply_lora"] == "true" and step["inputs"]["deepspeed_stage"] == "3" and step["inputs"]["precision"] == "16"
    assert step["inputs"]["number_of_gpu_to_use_finetuning"] == 1
    assert {step["inputs"][f"compute_{s}"] for s in ("model_import", "preprocess", "finetune", "model_evaluation")} == {"gpu-cluster-big"}
    assert job["display_name"] == "Phi-4-ultrachat_200k-bs1-cosine-ds3-lora"
    assert f"`{job['display_name']}`" in (REPO / "docs" / "spec.md").read_text()  # the documented pattern is what renders
    assert job["experiment_name"] == "chat_completion_Phi-4"
    assert job["tags"]["gitops_run"] == "phi4-ultrachat"


def test_render_loads_with_the_sdk_offline(cli, tmp_path) -> None:
    pytest.importorskip("azure.ai.ml")
    from azure.ai.ml import load_job

    result = cli("render", str(REPO / "runs" / "phi4-ultrachat.yaml"))
    path = tmp_path / "job.yaml"
    path.write_text(result.out)
    job: Any = load_job(path)  # a PipelineJob: settings, jobs and outputs are its own
    assert job.type == "pipeline"
    assert job.settings.force_rerun is True and job.settings.continue_on_step_failure is False
    assert str(job.jobs["finetune"].component).endswith("chat_completion_pipeline/versions/0.0.82")
    assert job.jobs["finetune"].inputs["learning_rate"]._data == 5e-6
    assert "trained_model" in job.outputs
    prepare = job.jobs["prepare_data"]  # the dataset is sliced on the cluster, by the pipeline's first step
    assert prepare.type == "command" and prepare.command.startswith("python prepare_data.py")
    assert prepare.component.environment.conda_file["dependencies"][-1]["pip"][0].startswith("datasets==")
    assert job.jobs["finetune"].inputs["train_file_path"]._data == "${{parent.jobs.prepare_data.outputs.train_file}}"
    digest = job.jobs["model_digest"]  # the last step: the trained model's content digest, where the model is (#27)
    assert digest.command == "python model_digest.py --model ${{inputs.model}} --output ${{outputs.digest}}"
    assert digest.inputs["model"]._data == "${{parent.jobs.finetune.outputs.mlflow_model_folder}}"
    assert digest.outputs["digest"].path.endswith(f"/paths/gitops/{job.name}/content_digest.json")


def test_component_yaml_loads_with_the_sdk() -> None:
    pytest.importorskip("azure.ai.ml")
    from azure.ai.ml import load_component

    component = load_component(REPO / "pipelines" / "components" / "chat_completion_pipeline-0.0.82.yaml")
    assert len(component.inputs) == 69
    assert component.inputs["deepspeed_stage"]["enum"] == ["2", "3"]


def test_render_refuses_other_backends_and_invalid_specs(cli, write) -> None:
    result = cli("render", str(REPO / "runs" / "local-tiny.yaml"), "--backend", "local")
    assert result.exit_code == 1 and "cannot render for backend 'local'" in result.err
    local = cli("render", str(REPO / "runs" / "local-tiny.yaml"))  # once: exit 0 and an Azure job with labels/None
    assert local.exit_code == 1 and "is a local spec: only azureml specs render" in local.err and not local.out
    assert len(local.err.strip().splitlines()) <= 2 and "Traceback" not in local.err
    bad = write("runs/x.yaml", "name: x\n")
    result = cli("render", str(bad))
    assert result.exit_code == 1 and "problem(s)" in result.err
