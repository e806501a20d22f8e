"""The Azure ML backend: the ``Backend`` interface on azure-ai-ml. ``azure.ai.ml`` is imported only in here.

What the command line asks of Azure beyond ``Backend`` is here, by name (``gitops render``, ``gitops prices``); its
modules are this package's own (an import-linter contract keeps the CLI out of them). Nothing here imports an SDK
until it is called.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gitops.backends.azureml.retail_prices import RetailPrices
    from gitops.spec.model import RunSpec


def workspace_resource_id(subscription: str | None, resource_group: str | None, workspace: str | None) -> str:
    """The ARM id of an Azure ML workspace: the ``topic`` of its Event Grid events, the parent of its endpoints."""
    return (
        f"/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.MachineLearningServices/workspaces/{workspace}"
    )


def job_document(spec: RunSpec, params: Mapping[str, Any], digest: str) -> dict[str, Any]:
    """The pipeline job a spec submits, as the YAML document ``az ml job create -f`` reads."""
    from gitops.backends.azureml.compute import KIND
    from gitops.backends.azureml.jobs import digest_uri
    from gitops.backends.azureml.pipeline_job import build_pipeline_job
    from gitops.spec import naming

    return build_pipeline_job(
        spec,
        params,
        digest=digest,
        gpus=KIND.gpus(spec.compute.instance_type),
        train_uri=spec.data.train_path,
        test_uri=spec.data.test_path,
        digest_path=digest_uri(naming.job_name(spec.name, digest)),
    )


def job_documents(spec: RunSpec, params: Mapping[str, Any], digest: str) -> list[dict[str, Any]]:
    """Every job a spec submits, in order, as YAML documents: the pipeline job, or with ``finetune.kind`` job or
    serverless, the data preparation job (a dataset spec) and the fine-tuning job."""
    if spec.finetune.kind == "pipeline":
        return [job_document(spec, params, digest)]
    from gitops.backends.azureml.finetuning_job import finetuning_documents

    return finetuning_documents(spec, params, digest)


def prices_api() -> RetailPrices:
    """The Azure Retail Prices API (no credentials: it is public)."""
    from gitops.backends.azureml.retail_prices import RetailPrices

    return RetailPrices()
