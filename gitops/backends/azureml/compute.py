"""Online checks of a spec's compute against the workspace and the model: what ``validate`` answers.

The cluster exists and did not fail provisioning; its SKU is in the model's fine-tune allow list
(case-insensitive) or, without one, not in the list the component refuses; GPUs per node come from the
region's VM sizes; nodes fit the cluster; the deployment SKU is in the inference allow list.
"""

from __future__ import annotations

from typing import Any

from gitops.backends.azureml.clients import AzureClients, sdk_text
from gitops.backends.azureml.errors import call
from gitops.backends.base import FoundationModel
from gitops.errors import NotFoundError
from gitops.naming import gpus_per_node
from gitops.spec.findings import Finding, error, warning
from gitops.spec.model import RunSpec

DEFAULT_DEPLOY_SKU = "Standard_NC6s_v3"  # the reference notebook's deployment size
# Sizes the component refuses when a model declares no allow list (too little GPU memory).
UNSUPPORTED_SKUS = frozenset({"standard_nc6", "standard_nc12", "standard_nc24", "standard_nc24r"})


class ComputeChecker:
    def __init__(self, clients: AzureClients) -> None:
        self.clients = clients
        self._gpus: dict[str, int] | None = None

    def gpus(self, sku: str) -> int | None:
        """GPUs per node of a SKU in the workspace's region (``compute.list_sizes``), else the offline table."""
        if self._gpus is None:
            ws = self.clients.workspace
            sizes = call("listing VM sizes", lambda: list(ws.compute.list_sizes()))
            self._gpus = {str(s.name).lower(): int(s.gpus or 0) for s in sizes}
        return self._gpus.get(sku.lower(), gpus_per_node(sku))

    def cluster(self, name: str) -> Any | None:
        ws = self.clients.workspace
        try:
            return call(f"getting compute {name}", lambda: ws.compute.get(name))
        except NotFoundError:
            return None

    def check(self, spec: RunSpec, model: FoundationModel) -> tuple[list[Finding], int | None]:
        """Findings, and the GPUs per node the job will use (None when unknown)."""
        found: list[Finding] = []
        sku = spec.compute.instance_type
        if spec.compute.cluster is not None:
            cluster = self.cluster(spec.compute.cluster)
            if cluster is None:
                return [error("compute.cluster", f"compute cluster '{spec.compute.cluster}' does not exist in workspace "
                                                 f"{self.clients.workspace_name}", "create it, or fix the name")], None
            if sdk_text(cluster.provisioning_state) == "failed":
                found.append(error("compute.cluster", f"compute '{spec.compute.cluster}' failed provisioning",
                                   "delete and recreate the cluster, or pick another"))
            size = getattr(cluster, "size", None)
            if sku and size and sku.lower() != str(size).lower():
                found.append(error("compute.instance_type", f"cluster '{spec.compute.cluster}' runs {size}, not {sku}",
                                   f"set compute.instance_type: {size}, or drop it"))
            sku = str(size) if size else sku
            max_nodes = getattr(cluster, "max_instances", None)
            if max_nodes is not None and spec.compute.nodes > int(max_nodes):
                found.append(error("compute.nodes", f"{spec.compute.nodes} nodes, but cluster '{spec.compute.cluster}' "
                                                    f"scales to at most {max_nodes}", f"use at most {max_nodes} nodes"))
        elif sku is None:
            found.append(error("compute", "serverless compute needs compute.instance_type", "set a cluster or a VM SKU"))
        gpus = None
        if sku is not None:
            found += _allow_list("compute.instance_type", sku, model.finetune_allow_list, "fine-tune", model.name)
            if model.finetune_allow_list is None and sku.lower() in UNSUPPORTED_SKUS:
                found.append(error("compute.instance_type", f"{sku} is not supported for fine-tuning",
                                   "use an A100 or H100 size"))
            gpus = self.gpus(sku)
            if not gpus:
                found.append(error("compute.instance_type", f"{sku} has no GPU in {self.clients.location}",
                                   "pick a GPU size (e.g. Standard_NC24ads_A100_v4)"))
        if spec.deploy.instance_type:
            found += _allow_list("deploy.instance_type", spec.deploy.instance_type, model.inference_allow_list,
                                 "inference", model.name)
        else:
            found.append(warning("deploy.instance_type", f"not set: deployments use {DEFAULT_DEPLOY_SKU}",
                                 f"set one of: {', '.join(model.inference_allow_list)}" if model.inference_allow_list
                                 else "set a GPU size the model can be served on"))
        return found, gpus


def _allow_list(path: str, sku: str, allowed: tuple[str, ...] | None, what: str, model: str) -> list[Finding]:
    if allowed is None or sku.lower() in {a.lower() for a in allowed}:
        return []
    return [error(path, f"{sku} is not in {model}'s {what} allow list", f"use one of: {', '.join(allowed)}")]
