"""The Azure ML pipeline job for a run, as plain data (no SDK): what ``gitops render`` prints and what
the Azure ML backend submits.

A spec that names a hub dataset gets a two-step pipeline: ``prepare_data`` (``pipelines/prepare_data.py`` on the
cluster, in the environment declared in ``pipelines/environments/``) writes the prefix slices as the files the
registry component ``finetune`` reads. Nothing is downloaded where the job is submitted, so submit stays short.
A submitted job ends with ``model_digest`` (``pipelines/model_digest.py``): the trained model's content digest,
written where the controller reads it, for promotions to hold every environment to the same bytes.

Parameters follow the reference notebook: its defaults <- the model's ``model_specific_defaults``
(filtered to the component's declared inputs) <- the spec's params.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

import pipelines
from gitops.spec import naming
from gitops.spec.component import COMPONENT_NAME, effective_params, model_uri
from gitops.spec.model import RunSpec

PIPELINE_JOB_SCHEMA = "https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json"
PIPELINES_DIR = Path(pipelines.__file__).resolve().parent  # the prepare_data step's code snapshot
PREPARE_ENVIRONMENT = PIPELINES_DIR / "environments" / "prepare-data.conda.yaml"
PREPARE_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"


# Where a job writes a split it prepared (and the gate reads it), on the workspace's default datastore.
HELD_OUT_PATH = "azureml://datastores/workspaceblobstore/paths/gitops/{job}/{split}.jsonl"


def held_out_uri(job_name: str, split: str) -> str:
    return HELD_OUT_PATH.format(job=job_name, split=split)


def component_id(version: str) -> str:
    return f"azureml://registries/azureml/components/{COMPONENT_NAME}/versions/{version}"


def _on_the_cluster(spec: RunSpec, step: dict[str, Any]) -> dict[str, Any]:
    """A command step of ours (``pipelines/``) in its declared environment, on the spec's cluster or instance type."""
    step["environment"] = {"image": PREPARE_IMAGE, "conda_file": yaml.safe_load(PREPARE_ENVIRONMENT.read_text(encoding="utf-8"))}
    if spec.compute.cluster:
        step["compute"] = f"azureml:{spec.compute.cluster}"
    elif spec.compute.instance_type:
        step["resources"] = {"instance_type": spec.compute.instance_type}
    return step


def prepare_command(spec: RunSpec, train_path: str | None, test_path: str | None, code_dir: str | Path = PIPELINES_DIR) -> dict[str, Any]:
    """The command (``pipelines/prepare_data.py``) that slices ``spec.data.dataset`` into the two files a fine-tune
    reads, as a job or a pipeline step: its code, command line, inputs and outputs (at ``train_path``/``test_path``
    where given: datastore paths a later reader knows)."""
    d = spec.data
    return {
        "type": "command",
        "code": str(code_dir),
        "command": (
            "python prepare_data.py --dataset ${{inputs.dataset}} --dataset_split_pc ${{inputs.percent}} "
            f"--download_dir ./splits --output {d.train_split}=${{{{outputs.train_file}}}} "
            f"--output {d.test_split}=${{{{outputs.test_file}}}}"
        ),
        "inputs": {"dataset": d.dataset, "percent": d.sample_percent},
        "outputs": {
            "train_file": {"type": "uri_file", **({"path": train_path} if train_path else {})},
            "test_file": {"type": "uri_file", **({"path": test_path} if test_path else {})},
        },
    }


def prepare_step(spec: RunSpec, code_dir: str | Path = PIPELINES_DIR, held_out_path: str | None = None) -> dict[str, Any]:
    """The command step that slices ``spec.data.dataset`` on the cluster into the two files the fine-tune reads.
    ``held_out_path``: a datastore path for the test split, where the promotion gate reads its conversations."""
    return _on_the_cluster(spec, prepare_command(spec, None, held_out_path, code_dir))


def digest_step(spec: RunSpec, digest_path: str, code_dir: str | Path = PIPELINES_DIR) -> dict[str, Any]:
    """The command step that computes the trained model's content digest where the model is (``pipelines/
    model_digest.py``) and writes it to ``digest_path``, a datastore path named after the job, where the controller
    reads it (a few bytes; it never downloads the model) to tag the registered model."""
    step: dict[str, Any] = {
        "type": "command",
        "code": str(code_dir),
        "command": "python model_digest.py --model ${{inputs.model}} --output ${{outputs.digest}}",
        "inputs": {"model": "${{parent.jobs.finetune.outputs.mlflow_model_folder}}"},  # bound as the test split is
        "outputs": {"digest": {"type": "uri_file", "path": digest_path}},
    }
    return _on_the_cluster(spec, step)


def build_pipeline_job(
    spec: RunSpec,
    params: Mapping[str, Any],
    *,
    digest: str,
    gpus: int | None,
    train_uri: str | None = None,
    test_uri: str | None = None,
    tags: Mapping[str, str] | None = None,
    model_defaults: Mapping[str, Any] | None = None,
    model_path: str | None = None,
    code_dir: str | Path = PIPELINES_DIR,
    held_out_path: str | None = None,
    digest_path: str | None = None,
) -> dict[str, Any]:
    """The pipeline job document (``pipelineJob.schema.json``) for this spec. ``train_uri``/``test_uri``: the data
    as given (a spec with a dataset prepares it in the pipeline instead). ``model_path``: the foundation model as
    resolved (a pinned version), else the spec's reference. ``digest_path``: where the ``model_digest`` step writes
    the trained model's content digest (None: no such step)."""
    merged = effective_params(spec, params, model_defaults)
    compute = spec.compute.cluster or "serverless"
    in_pipeline = spec.data.dataset is not None
    test_ref: str | None
    if in_pipeline:
        train_ref, test_ref = ("${{parent.jobs.prepare_data.outputs.train_file}}", "${{parent.jobs.prepare_data.outputs.test_file}}")
    else:
        if train_uri is None:
            raise ValueError("train_uri is required when the spec names no dataset")
        train_ref, test_ref = "${{parent.inputs.train_file}}", ("${{parent.inputs.test_file}}" if test_uri else None)
    step_inputs: dict[str, Any] = {
        "mlflow_model_path": {"type": "mlflow_model", "path": model_path or model_uri(spec)},
        "compute_model_import": compute,
        "compute_preprocess": compute,
        "compute_finetune": compute,
        "compute_model_evaluation": compute,
        "train_file_path": train_ref,
        "number_of_gpu_to_use_finetuning": gpus or 1,
        "num_nodes_finetune": spec.compute.nodes,
    }
    if spec.compute.instance_type and spec.compute.cluster is None:
        for stage in ("model_import", "preprocess", "finetune", "model_evaluation"):
            step_inputs[f"instance_type_{stage}"] = spec.compute.instance_type
    if test_ref is not None:
        step_inputs["test_file_path"] = test_ref
    step_inputs.update(merged)
    inputs: dict[str, Any] = {}
    if not in_pipeline:
        inputs["train_file"] = {"type": "uri_file", "path": train_uri}
        if test_uri is not None:
            inputs["test_file"] = {"type": "uri_file", "path": test_uri}
    jobs: dict[str, Any] = {"prepare_data": prepare_step(spec, code_dir, held_out_path)} if in_pipeline else {}
    jobs["finetune"] = {
        "type": "pipeline",
        "component": component_id(spec.finetune.component_version),
        "inputs": step_inputs,
        "outputs": {"mlflow_model_folder": "${{parent.outputs.trained_model}}"},
    }
    if digest_path is not None:
        jobs["model_digest"] = digest_step(spec, digest_path, code_dir)
    all_tags = {naming.TAG_RUN: spec.name, naming.TAG_DIGEST: digest, **(tags or {})}
    return {
        "$schema": PIPELINE_JOB_SCHEMA,
        "type": "pipeline",
        "name": naming.job_name(spec.name, digest),
        "display_name": naming.display_name(spec, merged, gpus),
        "experiment_name": naming.experiment_name(spec),
        "description": spec.description or f"finetune-gitops run {spec.name}",
        "tags": all_tags,
        "inputs": inputs,
        "outputs": {"trained_model": {"type": "mlflow_model"}},
        "settings": {"force_rerun": True, "continue_on_step_failure": False},
        "jobs": jobs,
    }
