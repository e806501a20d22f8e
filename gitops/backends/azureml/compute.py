"""Online checks of a spec's compute against the workspace and the model: what ``validate`` answers.

The cluster exists and did not fail provisioning; its SKU is in the model's fine-tune SKUs (case-insensitive:
the service upper-cases ``vmSize``) or, without a list, not one the component refuses; GPUs per node come from
the region's VM sizes; nodes fit the cluster. The deployment SKU is in the model's inference SKUs. Both SKUs
must be offered in the region and not retired (``retirements.yaml``; no API reports retirements).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from gitops.backends.azureml.catalog import retired_sku
from gitops.backends.azureml.clients import AzureClients, sdk_text
from gitops.backends.azureml.errors import call
from gitops.backends.base import FoundationModel
from gitops.errors import NotFoundError
from gitops.naming import gpus_per_node
from gitops.spec.findings import Finding, error, warning
from gitops.spec.model import RunSpec

# When a spec names no deployment SKU. (The notebook's Standard_NC6s_v3 was retired on 2025-09-30.)
DEFAULT_DEPLOY_SKU = "Standard_NC24ads_A100_v4"
# Sizes the component refuses when a model declares no allow list (too little GPU memory).
UNSUPPORTED_SKUS = frozenset({"standard_nc6", "standard_nc12", "standard_nc24", "standard_nc24r"})


class ComputeChecker:
    def __init__(self, clients: AzureClients, today: Callable[[], date] | None = None) -> None:
        self.clients = clients
        self.today = today or (lambda: datetime.now(UTC).date())
        self._gpus: dict[str, int] | None = None

    def region_sizes(self) -> dict[str, int]:
        """The VM sizes offered in the workspace's region (``compute.list_sizes``), lower-cased, with their GPUs."""
        if self._gpus is None:
            ws = self.clients.workspace
            sizes = call("listing VM sizes", lambda: list(ws.compute.list_sizes()))
            self._gpus = {str(s.name).lower(): int(s.gpus or 0) for s in sizes}
        return self._gpus

    def gpus(self, sku: str) -> int | None:
        """GPUs per node of a SKU in the workspace's region, else the offline table."""
        return self.region_sizes().get(sku.lower(), gpus_per_node(sku))

    def sku_findings(self, path: str, sku: str, what: str) -> list[Finding]:
        """A retired SKU, or one the region does not offer, is an error that says so."""
        retired = retired_sku(sku, self.today())
        if retired is not None:
            return [error(path, f"{sku} was retired on {retired.retired.isoformat()}",
                          f"use {retired.successor} or another current size ({retired.source})")]
        if sku.lower() not in self.region_sizes():
            return [error(path, f"{sku} is not offered in region {self.clients.location} for {what}",
                          "pick a size the region lists (az ml compute list-sizes)")]
        return []

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
            found += self.sku_findings("compute.instance_type", sku, "training")
            found += _allow_list("compute.instance_type", sku, model.finetune_allow_list, "fine-tune", model.name)
            if model.finetune_allow_list is None and sku.lower() in UNSUPPORTED_SKUS:
                found.append(error("compute.instance_type", f"{sku} is not supported for fine-tuning",
                                   "use an A100 or H100 size"))
            gpus = self.gpus(sku)
            if not gpus and not any(f.path == "compute.instance_type" for f in found):
                found.append(error("compute.instance_type", f"{sku} has no GPU in {self.clients.location}",
                                   "pick a GPU size (e.g. Standard_NC24ads_A100_v4)"))
        if spec.deploy.instance_type:
            found += self.sku_findings("deploy.instance_type", spec.deploy.instance_type, "serving")
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
    return [error(path, f"{sku} is not among {model}'s {what} SKUs", f"use one of: {', '.join(allowed)}")]
