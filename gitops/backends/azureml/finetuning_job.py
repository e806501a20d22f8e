"""The standalone fine-tuning job for a run (``finetune.kind: job | serverless``), as plain data (no SDK): what
``gitops render`` prints and what the Azure ML backend submits through ``azure.ai.ml.load_job``'s schema.

A spec that names a hub dataset gets a command job first (``prepare_data``): ``pipelines/prepare_data.py`` on
serverless compute writes the prefix slices to datastore paths named after the fine-tuning job, and the fine-tuning
job reads them from there (``held_out_uri``). The step machine chains the two: nothing is downloaded where the job
is submitted. Local files are refused at validation on Azure; ``azureml:`` assets and URIs need no step.

The job registers the model itself (``outputs.registered_model``): the register step reads the name and version the
service reports. Validation data is always given (azure-ai-ml 1.35 fails without it).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from gitops.backends.azureml.pipeline_job import PIPELINES_DIR, PREPARE_ENVIRONMENT, PREPARE_IMAGE, held_out_uri, prepare_command
from gitops.spec import naming
from gitops.spec.component import model_uri
from gitops.spec.finetuning_job import as_strings
from gitops.spec.model import RunSpec

COMMAND_JOB_SCHEMA = "https://azuremlschemas.azureedge.net/latest/commandJob.schema.json"
# The serverless compute a prepare step runs on when the run names no cluster: CPU is enough to slice a dataset.
PREPARE_INSTANCE_TYPE = "Standard_E4s_v3"


def prepare_job_name(job_name: str) -> str:
    """The data preparation job that runs before the fine-tuning job ``job_name`` (deterministic, so idempotent)."""
    return f"{job_name}-data"


def prepare_job(spec: RunSpec, job_name: str, train_uri: str, test_uri: str, code_dir: str | Path = PIPELINES_DIR) -> dict[str, Any]:
    """The command job that slices ``spec.data.dataset`` into the two files the fine-tuning job reads."""
    return {
        "$schema": COMMAND_JOB_SCHEMA,
        **prepare_command(spec, train_uri, test_uri, code_dir),
        "name": prepare_job_name(job_name),
        "experiment_name": naming.experiment_name(spec),
        "display_name": f"prepare {naming.data_slug(spec)} for {job_name}",
        "tags": {naming.TAG_RUN: spec.name, naming.TAG_PREPARES: job_name},
        "environment": {"image": PREPARE_IMAGE, "conda_file": yaml.safe_load(PREPARE_ENVIRONMENT.read_text(encoding="utf-8"))},
        "resources": {"instance_type": PREPARE_INSTANCE_TYPE},
    }


def build_finetuning_job(
    spec: RunSpec,
    params: Mapping[str, Any],
    *,
    digest: str,
    train_uri: str,
    test_uri: str,
    tags: Mapping[str, str] | None = None,
    model_path: str | None = None,
) -> dict[str, Any]:
    """The fine-tuning job document (``type: finetuning``, the YAML ``az ml job create -f`` and ``load_job`` read).
    ``job`` runs on ``compute.instance_type`` (or the cluster); ``serverless`` names no compute and is billed per
    token."""
    job: dict[str, Any] = {
        "type": "finetuning",
        "name": naming.job_name(spec.name, digest),
        "display_name": naming.display_name(spec, dict(params), None),
        "experiment_name": naming.experiment_name(spec),
        "description": spec.description or f"finetune-gitops run {spec.name}",
        "tags": {naming.TAG_RUN: spec.name, naming.TAG_DIGEST: digest, **(tags or {})},
        "task": "chat_completion",
        "model_provider": "custom",
        "model": {"path": model_path or model_uri(spec), "type": "mlflow_model"},
        "training_data": {"path": train_uri, "type": "uri_file"},
        "validation_data": {"path": test_uri, "type": "uri_file"},
        "hyperparameters": as_strings(dict(params)),
        "outputs": {"registered_model": {"name": naming.model_name(spec), "type": "mlflow_model"}},
    }
    if spec.finetune.kind == "job":
        if spec.compute.cluster:
            job["compute"] = f"azureml:{spec.compute.cluster}"
        else:
            job["resources"] = {"instance_types": [spec.compute.instance_type]}
    return job


def finetuning_documents(spec: RunSpec, params: Mapping[str, Any], digest: str) -> list[dict[str, Any]]:
    """What a fine-tuning-job spec submits, in order: the data preparation job (a dataset spec only), then the job."""
    job_name = naming.job_name(spec.name, digest)
    d = spec.data
    if d.dataset is not None:
        train_uri, test_uri = held_out_uri(job_name, d.train_split), held_out_uri(job_name, d.test_split)
        docs = [prepare_job(spec, job_name, train_uri, test_uri)]
    else:
        train_uri, test_uri, docs = d.train_path or "", d.test_path or "", []
    return [*docs, build_finetuning_job(spec, params, digest=digest, train_uri=train_uri, test_uri=test_uri)]
