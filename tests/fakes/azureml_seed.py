"""Seed bodies for the fake Azure ML API, built from the SDK's own entities and REST models and from real material.

What a real workspace would already hold: the ``azureml`` registry's foundation models (from azureml-assets
specs in ``tests/contracts/``, published as azureml-assets publishes them), the component, GPU clusters, the
region's VM sizes (2026: no retired NCv3), the default datastore.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

CONTRACTS = Path(__file__).resolve().parent.parent / "contracts"
PHI4_SPEC = CONTRACTS / "azureml-assets" / "phi-4.v8.2026-07.spec.yaml"
PHI3_SPEC = CONTRACTS / "azureml-assets" / "phi-3-mini-4k-instruct.v15.2026-07.spec.yaml"
PHI3_2025_SPEC = CONTRACTS / "azureml-assets" / "phi-3-mini-4k-instruct.2025-08.spec.yaml"
A100_ALLOW = [
    "Standard_NC24ads_A100_v4",
    "Standard_NC48ads_A100_v4",
    "Standard_NC96ads_A100_v4",
    "Standard_ND96asr_v4",
    "Standard_ND96amsr_A100_v4",
]
INFERENCE_ALLOW = ["Standard_NC4as_T4_v3", "Standard_NC24ads_A100_v4", "Standard_NC48ads_A100_v4"]
# (name, GPUs, vCPUs, family) of the region's sizes; families spelled as the VirtualMachineSize/list example spells
# them (``standardDSv2Family``), which is how a size's quota line in Usage/list is found.
VM_SIZES = [
    ("Standard_NC24ads_A100_v4", 1, 24, "standardNCADSA100v4Family"),
    ("Standard_NC48ads_A100_v4", 2, 48, "standardNCADSA100v4Family"),
    ("Standard_NC96ads_A100_v4", 4, 96, "standardNCADSA100v4Family"),
    ("Standard_ND96asr_v4", 8, 96, "standardNDASv4_A100Family"),
    ("Standard_ND96amsr_A100_v4", 8, 96, "standardNDAMSv4_A100Family"),
    ("Standard_NC40ads_H100_v5", 1, 40, "standardNCadsH100v5Family"),
    ("Standard_NC80adis_H100_v5", 2, 80, "standardNCadsH100v5Family"),
    ("Standard_ND96isr_H100_v5", 8, 96, "standardNDSH100v5Family"),
    ("Standard_NC4as_T4_v3", 1, 4, "standardNCASv3_T4Family"),
    ("Standard_DS3_v2", 0, 4, "standardDSv2Family"),
]
# Dedicated vCPU quota of the region: family (as Usage/list names it) -> (in use, limit). The regional total is
# the "Total Cluster Dedicated Regional vCPUs" line.
QUOTA = {
    "NCADSA100v4": (0, 96),
    "NCadsH100v5": (0, 80),
    "NCASv3_T4": (0, 24),
    "DSv2": (4, 24),
    "NDASv4_A100": (0, 0),
    "NDAMSv4_A100": (0, 0),
    "NDSH100v5": (0, 0),
}
REGIONAL_VCPUS = (4, 200)
MODEL_DEFAULTS = "{'apply_deepspeed': 'true', 'deepspeed_stage': '2', 'apply_lora': 'true', 'learning_rate_min': 1e-6}"


def stringify(values: dict[str, Any]) -> dict[str, str]:
    """What azureml-assets' publish_utils.stringify_dictionary stores: dicts as JSON, anything else as str()."""
    return {k: json.dumps(v) if isinstance(v, dict) else str(v) for k, v in values.items()}


def registry_model(spec_path: Path) -> dict[str, Any]:
    """The registry's REST body for a model published from an azureml-assets ``spec.yaml``: tags and properties
    stringified, ``systemMetadata`` stringified in ``properties``, ``isArchived`` as the spec says."""
    from azure.ai.ml.entities import Model

    spec = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
    model = Model(
        name=spec["name"],
        version=str(spec["version"]),
        type="mlflow_model",
        path=f"azureml://registries/azureml/models/{spec['name']}/versions/{spec['version']}",
        tags=stringify(spec.get("tags") or {}),
        properties=stringify(spec.get("properties") or {}),
    )
    body = serialize(model._to_rest_object())
    body["properties"]["flavors"] = {"transformers": {"data": {}}}
    body["properties"]["isArchived"] = bool(spec.get("isArchived", False))
    if spec.get("system_metadata"):
        body["properties"]["systemMetadata"] = stringify(spec["system_metadata"])
    return body


def serialize(rest: Any) -> dict[str, Any]:
    body = rest.serialize() if hasattr(rest, "serialize") else rest.as_dict()
    return dict(body)


def foundation_model(
    name: str = "Phi-4",
    version: str = "8",
    stage: str | None = None,
    tags: dict[str, str] | None = None,
    properties: dict[str, str] | None = None,
) -> dict[str, Any]:
    from azure.ai.ml.entities import Model

    model = Model(
        name=name,
        version=version,
        type="mlflow_model",
        path="azureml://registries/azureml/models/x/versions/1",
        description="foundation model",
        stage=stage,
        properties=properties or {},
        tags=tags
        if tags is not None
        else {
            "finetune_compute_allow_list": repr(A100_ALLOW),
            "inference_compute_allow_list": repr(INFERENCE_ALLOW),
            "model_specific_defaults": MODEL_DEFAULTS,
            "FinetuneRetirementDate": "2099-01-01",
        },
    )
    body = serialize(model._to_rest_object())
    body["properties"]["flavors"] = {"transformers": {"data": {}}}
    return body


def component() -> dict[str, Any]:
    from azure.ai.ml import load_component

    from gitops.spec.component import component_file

    entity = load_component(component_file("0.0.82"))
    return serialize(entity._to_rest_object())


def cluster(name: str, size: str, max_instances: int = 2, state: str = "Succeeded") -> dict[str, Any]:
    from azure.ai.ml.entities import AmlCompute

    body = serialize(AmlCompute(name=name, size=size, min_instances=0, max_instances=max_instances)._to_rest_object())
    props: dict[str, Any] = body["properties"]
    props["provisioningState"] = state
    props["properties"]["vmSize"] = size.upper()  # as the service answers it (tests/contracts/sdk-recordings)
    # The rest as a recorded cluster read has them (tests/contracts/sdk-recordings/aml_compute_get.json).
    for key, value in (
        ("createdOn", "2026-01-05T10:00:00+00:00"),
        ("modifiedOn", "2026-01-05T10:00:00+00:00"),
        ("disableLocalAuth", False),
        ("description", None),
        ("resourceId", None),
        ("computeLocation", "eastus"),
        ("provisioningErrors", None),
        ("isAttachedCompute", False),
    ):
        props.setdefault(key, value)
    counts: dict[str, int] = {f"{k}NodeCount": 0 for k in ("preparing", "running", "idle", "unusable", "leaving", "preempted")}
    defaults: tuple[tuple[str, Any], ...] = (
        ("vmPriority", "Dedicated"),
        ("subnet", None),
        ("currentNodeCount", 0),
        ("targetNodeCount", 0),
        ("nodeStateCounts", counts),
        ("allocationState", "Steady"),
        ("allocationStateTransitionTime", "2026-01-05T10:00:00+00:00"),
        ("errors", None),
        ("remoteLoginPortPublicAccess", "NotSpecified"),
        ("osType", "Linux"),
        ("virtualMachineImage", None),
        ("isolatedNetwork", False),
        ("propertyBag", {}),
    )
    for key, value in defaults:
        if props["properties"].get(key) is None:
            props["properties"][key] = value
    body.setdefault("location", "eastus")
    body["tags"] = body.get("tags") or {}
    return body


# Pay-as-you-go Linux prices, USD/hour, eastus (the reference's catalogue snapshot); others unknown here.
PRICES = {
    "Standard_NC24ads_A100_v4": 3.673,
    "Standard_NC48ads_A100_v4": 7.346,
    "Standard_NC96ads_A100_v4": 14.692,
    "Standard_NC40ads_H100_v5": 6.98,
    "Standard_NC4as_T4_v3": 0.526,
}


def vm_sizes() -> dict[str, Any]:
    """The region's sizes, shaped like the VirtualMachineSize/list example (tests/contracts/rest-api-specs)."""

    def size(name: str, gpus: int, vcpus: int, family: str) -> dict[str, Any]:
        prices = [{"retailPrice": PRICES[name], "osType": "Linux", "vmTier": "Standard"}] if name in PRICES else []
        return {
            "name": name,
            "family": family,
            "vCPUs": vcpus,
            "gpus": gpus,
            "osVhdSizeMB": 1047552,
            "maxResourceVolumeMB": 65536,
            "memoryGB": 220.0,
            "lowPriorityCapable": True,
            "premiumIO": True,
            "estimatedVMPrices": {"billingCurrency": "USD", "unitOfMeasure": "OneHour", "values": prices} if prices else None,
            "supportedComputeTypes": ["AmlCompute", "ComputeInstance", "MIR"],
        }

    return {"value": [size(n, g, c, f) for n, g, c, f in VM_SIZES]}


def usages(subscription: str, quota: dict[str, tuple[int, int]], regional: tuple[int, int]) -> dict[str, Any]:
    """The region's quota lines, shaped like the Usage/list example (tests/contracts/rest-api-specs): the regional
    dedicated total, then one ``vmFamily`` line per family, ``Standard <family> Family Cluster Dedicated vCPUs``."""

    def line(suffix: str, kind: str, name: str, used: int, limit: int) -> dict[str, Any]:
        return {
            "id": f"/subscriptions/{subscription}/usages{suffix}",
            "type": f"Microsoft.MachineLearningServices/{kind}/usages",
            "currentValue": used,
            "limit": limit,
            "name": {"value": name, "localizedValue": name},
            "unit": "Count",
        }

    lines = [line("", "totalCores", "Clusters", 1, 100), line("", "dedicatedCores", "Total Cluster Dedicated Regional vCPUs", *regional)]
    for family, (used, limit) in quota.items():
        name = f"Standard {family} Family Cluster Dedicated vCPUs"
        lines.append(line(f"/{name.replace(' ', '_')}", "vmFamily", name, used, limit))
        low = f"Standard {family} Family Cluster LowPriority vCPUs"
        lines.append(line(f"/{low.replace(' ', '_')}", "vmFamily", low, 0, -1))
    return {"value": lines}


def datastore(account: str) -> dict[str, Any]:
    from azure.ai.ml.entities import AzureBlobDatastore

    return serialize(
        AzureBlobDatastore(name="workspaceblobstore", account_name=account, container_name="azureml-blobstore")._to_rest_object()
    )


def held_out_rows(n: int = 12) -> bytes:
    """A small test split in the ultrachat shape (``messages`` ending with the assistant's answer)."""
    from pipelines.synth import make_rows

    return "".join(json.dumps(row) + "\n" for row in make_rows(n, seed=99)).encode()
