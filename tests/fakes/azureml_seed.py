"""Seed bodies for the fake Azure ML API, built from the SDK's own entities and REST models.

What a real workspace would already hold: the ``azureml`` registry's foundation model and component,
GPU clusters, the region's VM sizes, the default datastore.
"""

from __future__ import annotations

from typing import Any

A100_ALLOW = ["Standard_NC24ads_A100_v4", "Standard_NC48ads_A100_v4", "Standard_NC96ads_A100_v4",
              "Standard_ND96asr_v4", "Standard_ND96amsr_A100_v4"]
INFERENCE_ALLOW = ["Standard_NC6s_v3", "Standard_NC24ads_A100_v4", "Standard_NC48ads_A100_v4"]
VM_SIZES = [("Standard_NC24ads_A100_v4", 1, "NCADSA100v4 Family"), ("Standard_NC48ads_A100_v4", 2, "NCADSA100v4 Family"),
            ("Standard_NC96ads_A100_v4", 4, "NCADSA100v4 Family"), ("Standard_NC6s_v3", 1, "NCSv3 Family"),
            ("Standard_NC12s_v3", 2, "NCSv3 Family"), ("Standard_DS3_v2", 0, "DSv2 Family")]
MODEL_DEFAULTS = "{'apply_deepspeed': 'true', 'deepspeed_stage': '2', 'apply_lora': 'true', 'learning_rate_min': 1e-6}"


def serialize(rest: Any) -> dict[str, Any]:
    body = rest.serialize() if hasattr(rest, "serialize") else rest.as_dict()
    return dict(body)


def foundation_model(name: str = "Phi-3-mini-4k-instruct", version: str = "15", stage: str | None = None,
                     tags: dict[str, str] | None = None, properties: dict[str, str] | None = None) -> dict[str, Any]:
    from azure.ai.ml.entities import Model

    model = Model(name=name, version=version, type="mlflow_model", path="azureml://registries/azureml/models/x/versions/1",
                  description="foundation model", stage=stage, properties=properties or {},
                  tags=tags if tags is not None else {
                      "finetune_compute_allow_list": repr(A100_ALLOW), "inference_compute_allow_list": repr(INFERENCE_ALLOW),
                      "model_specific_defaults": MODEL_DEFAULTS, "FinetuneRetirementDate": "2099-01-01"})
    body = serialize(model._to_rest_object())
    body["properties"]["flavors"] = {"transformers": {"data": {}}}
    return body


def component() -> dict[str, Any]:
    from azure.ai.ml import load_component

    from gitops.component import component_file

    entity = load_component(component_file("0.0.82"))
    return serialize(entity._to_rest_object())


def cluster(name: str, size: str, max_instances: int = 2, state: str = "Succeeded") -> dict[str, Any]:
    from azure.ai.ml.entities import AmlCompute

    body = serialize(AmlCompute(name=name, size=size, min_instances=0, max_instances=max_instances)._to_rest_object())
    body["properties"]["provisioningState"] = state
    return body


def vm_sizes() -> dict[str, Any]:
    return {"value": [{"name": n, "family": f, "vCPUs": 24, "gpus": g, "memoryGB": 220.0, "maxResourceVolumeMB": 65536,
                       "supportedComputeTypes": ["AmlCompute"]} for n, g, f in VM_SIZES]}


def datastore(account: str) -> dict[str, Any]:
    from azure.ai.ml.entities import AzureBlobDatastore

    return serialize(AzureBlobDatastore(name="workspaceblobstore", account_name=account,
                                        container_name="azureml-blobstore")._to_rest_object())


