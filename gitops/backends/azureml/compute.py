"""Online checks of a spec's compute against the workspace and the model: what ``validate`` answers.

The cluster exists and did not fail provisioning; its SKU is in the model's fine-tune SKUs (case-insensitive:
the service upper-cases ``vmSize``) or, without a list, not one the component refuses; GPUs per node come from
the region's VM sizes; nodes fit the cluster. The deployment SKU is in the model's inference SKUs. Both SKUs
must be offered in the region and not retired (``retirements.yaml``; no API reports retirements).

Quota: the region's dedicated vCPU quota (``compute.list_usage``) for each SKU's VM family and the regional total.
Training needs vCPUs x nodes; a managed online deployment needs ``ceil(1.2 x instances) x vCPUs``, as Azure ML
holds 20% more back for upgrades on most sizes. Over the limit is an error; over what is free now a warning.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from gitops.backends.azureml.catalog import retired_sku
from gitops.backends.azureml.clients import AzureClients, sdk_text
from gitops.backends.azureml.errors import call
from gitops.backends.base import FoundationModel
from gitops.errors import ConfigurationError, NotFoundError
from gitops.spec.capabilities import kind_of
from gitops.spec.findings import Code, Finding, error, note, warning
from gitops.spec.model import RunSpec

# Sizes the component refuses when a model declares no allow list (too little GPU memory).
KIND = kind_of("azureml")  # this backend's own facts (gitops/backends/azureml/kind.yaml)
if KIND.default_deploy_sku is None:  # kind.yaml is this package's own file: a missing value is a broken install
    raise ConfigurationError("gitops/backends/azureml/kind.yaml names no default_deploy_sku")
DEFAULT_DEPLOY_SKU: str = KIND.default_deploy_sku
UNSUPPORTED_SKUS = frozenset({"standard_nc6", "standard_nc12", "standard_nc24", "standard_nc24r"})
# Managed online deployments need quota for ceil(1.2 x instances), except on these sizes ("VM SKUs that are
# exempted from this extra quota reservation": learn.microsoft.com azure/machine-learning
# reference-managed-online-endpoints-vm-sku-list, and how-to-manage-quotas "Virtual machine quota allocation").
ENDPOINT_SURPLUS = 1.2
SURPLUS_EXEMPT = frozenset(
    {
        "standard_nc24ads_a100_v4",
        "standard_nc48ads_a100_v4",
        "standard_nc96ads_a100_v4",
        "standard_nd96asr_v4",
        "standard_nd96amsr_a100_v4",
        "standard_nd40rs_v2",
    }
)
_FAMILY_OF_SIZE = re.compile(r"standard(.+)family")  # VirtualMachineSize.family: "standardNCADSA100v4Family"
_FAMILY_OF_QUOTA = re.compile(r"standard (.+) family cluster dedicated vcpus")  # Usage.name.value
REGIONAL_QUOTA = "total cluster dedicated regional vcpus"


@dataclass(frozen=True)
class Quota:
    name: str
    used: int
    limit: int  # -1: no limit of its own

    @property
    def free(self) -> int:
        return self.limit - self.used


def _field(entity: Any, snake: str, camel: str) -> Any:
    """A field of an SDK ``Usage`` or ``VmSize``. Their ``_from_rest_object`` copies the REST model's ``as_dict()``
    into the entity, so a camel-cased field arrives under its REST name (``currentValue``, ``vCPUs``) while the
    documented attribute (``current_value``, ``v_cp_us``) stays None, and ``name`` is a dict (seen replaying the
    published Usage/list and VirtualMachineSize/list examples through azure-ai-ml): read both."""
    data = vars(entity)
    return data.get(snake) if data.get(snake) is not None else data.get(camel)


def _usage_line(line: Any) -> tuple[str, int, int, str]:
    """(name, in use, limit, id) of one quota line."""
    data = vars(line)
    name, limit = data.get("name"), data.get("limit")
    label = name.get("value") if isinstance(name, dict) else getattr(name, "value", None)
    return (
        str(label or ""),
        int(_field(line, "current_value", "currentValue") or 0),
        int(limit) if limit is not None else -1,
        str(data.get("id") or ""),
    )


def instances_for_quota(sku: str, instances: int) -> int:
    """How many instances' worth of quota a managed online deployment holds."""
    return instances if sku.lower() in SURPLUS_EXEMPT else math.ceil(ENDPOINT_SURPLUS * instances)


class ComputeChecker:
    def __init__(self, clients: AzureClients, today: Callable[[], date] | None = None) -> None:
        self.clients = clients
        self.today = today or (lambda: datetime.now(UTC).date())
        self._sizes: dict[str, Any] | None = None
        self._quota: dict[str, Quota] | None = None

    def sizes(self) -> dict[str, Any]:
        """The VM sizes offered in the workspace's region (``compute.list_sizes``), by lower-cased name."""
        if self._sizes is None:
            ws = self.clients.workspace
            sizes = call("listing VM sizes", lambda: list(ws.compute.list_sizes()))
            self._sizes = {str(s.name).lower(): s for s in sizes}
        return self._sizes

    def quota(self) -> dict[str, Quota]:
        """The region's dedicated vCPU quota lines, by lower-cased family (and ``REGIONAL_QUOTA`` for the total)."""
        if self._quota is None:
            ws = self.clients.workspace
            lines = call("reading the region's quota", lambda: list(ws.compute.list_usage(location=self.clients.location)))
            found: dict[str, Quota] = {}
            for line in lines:
                label, used, limit, where = _usage_line(line)
                family = _FAMILY_OF_QUOTA.fullmatch(label.lower())
                key = family.group(1) if family else label.lower() if label.lower() == REGIONAL_QUOTA else None
                # The subscription's lines only: workspace and cluster lines ("workspaces/usages") repeat them.
                if key and "/workspaces/" not in where.lower():
                    found[key] = Quota(label, used, limit)
            self._quota = found
        return self._quota

    def quota_findings(self, path: str, sku: str, count: int, what: str) -> list[Finding]:
        """Whether ``count`` VMs of ``sku`` fit the family's and the region's dedicated vCPU quota."""
        size = self.sizes().get(sku.lower())
        vcpus = int(_field(size, "v_cp_us", "vCPUs") or 0) if size is not None else 0
        family = _FAMILY_OF_SIZE.fullmatch(str(getattr(size, "family", "") or "").lower()) if size is not None else None
        if not vcpus or family is None:
            return []  # a size the region does not list is reported by sku_findings
        need = vcpus * count
        quota = self.quota()
        lines = [q for q in (quota.get(family.group(1)), quota.get(REGIONAL_QUOTA)) if q is not None]
        if quota.get(family.group(1)) is None:
            return [
                warning(
                    path,
                    f"no quota line for the {getattr(size, 'family', '')} of {sku} in {self.clients.location}: {what} is not "
                    "checked against quota",
                    "see az ml compute list-usage",
                    code=Code.QUOTA,
                )
            ]
        for q in lines:
            if q.limit < 0:
                continue
            if need > q.limit:
                return [
                    error(
                        path,
                        f"{what} needs {need} vCPUs ({count} x {sku}, {vcpus} each), over the {q.limit} of "
                        f"'{q.name}' in {self.clients.location}",
                        "request more quota (Azure portal, Quotas, Machine learning), or use a smaller size or count",
                        code=Code.QUOTA,
                    )
                ]
        for q in lines:
            if q.limit >= 0 and need > q.free:
                return [
                    warning(
                        path,
                        f"{what} needs {need} vCPUs, but {q.used} of the {q.limit} of '{q.name}' are in use: "
                        "it waits until enough are free",
                        code=Code.QUOTA,
                    )
                ]
        fits = "; ".join(f"{q.free} of {q.limit} free in '{q.name}'" for q in lines if q.limit >= 0) or "no limit applies"
        return [note(path, f"quota: {what} needs {need} vCPUs ({count} x {sku}); {fits}", code=Code.QUOTA)]

    def gpus(self, sku: str) -> int | None:
        """GPUs per node of a SKU in the workspace's region, else the offline table."""
        size = self.sizes().get(sku.lower())
        return int(getattr(size, "gpus", 0) or 0) if size is not None else KIND.gpus(sku)

    def sku_findings(self, path: str, sku: str, what: str) -> list[Finding]:
        """A retired SKU, or one the region does not offer, is an error that says so."""
        retired = retired_sku(sku, self.today())
        if retired is not None:
            return [
                error(
                    path,
                    f"{sku} was retired on {retired.retired.isoformat()}",
                    f"use {retired.successor} or another current size ({retired.source})",
                    code=Code.SKU_RETIRED,
                    since=retired.retired.isoformat(),
                )
            ]
        if sku.lower() not in self.sizes():
            return [
                error(
                    path,
                    f"{sku} is not offered in region {self.clients.location} for {what}",
                    "pick a size the region lists (az ml compute list-sizes)",
                    code=Code.SKU_UNAVAILABLE,
                )
            ]
        return []

    def cluster(self, name: str) -> Any | None:
        ws = self.clients.workspace
        try:
            return call(f"getting compute {name}", lambda: ws.compute.get(name))
        except NotFoundError:
            return None

    def gpus_for(self, spec: RunSpec) -> int | None:
        """The GPUs per node the job will use: its cluster's size's, else ``compute.instance_type``'s (None: unknown)."""
        cluster = self.cluster(spec.compute.cluster) if spec.compute.cluster is not None else None
        sku = str(getattr(cluster, "size", None) or "") or spec.compute.instance_type
        return self.gpus(sku) if sku else None

    def check(self, spec: RunSpec, model: FoundationModel) -> tuple[list[Finding], int | None]:
        """Findings, and the GPUs per node the job will use (None when unknown)."""
        found: list[Finding] = []
        sku = spec.compute.instance_type
        if spec.compute.cluster is not None:
            cluster = self.cluster(spec.compute.cluster)
            if cluster is None:
                return [
                    error(
                        "compute.cluster",
                        f"compute cluster '{spec.compute.cluster}' does not exist in workspace {self.clients.workspace_name}",
                        "create it, or fix the name",
                        code=Code.COMPUTE,
                    )
                ], None
            if sdk_text(cluster.provisioning_state) == "failed":
                found.append(
                    error(
                        "compute.cluster",
                        f"compute '{spec.compute.cluster}' failed provisioning",
                        "delete and recreate the cluster, or pick another",
                        code=Code.COMPUTE,
                    )
                )
            size = getattr(cluster, "size", None)
            if sku and size and sku.lower() != str(size).lower():
                found.append(
                    error(
                        "compute.instance_type",
                        f"cluster '{spec.compute.cluster}' runs {size}, not {sku}",
                        f"set compute.instance_type: {size}, or drop it",
                        code=Code.COMPUTE,
                    )
                )
            if size and not (sku and sku.lower() == str(size).lower()):  # the spec's spelling, if it names the same size
                sku = str(size)
            max_nodes = getattr(cluster, "max_instances", None)
            if max_nodes is not None and spec.compute.nodes > int(max_nodes):
                found.append(
                    error(
                        "compute.nodes",
                        f"{spec.compute.nodes} nodes, but cluster '{spec.compute.cluster}' scales to at most {max_nodes}",
                        f"use at most {max_nodes} nodes",
                        code=Code.COMPUTE,
                    )
                )
        elif sku is None:
            found.append(error("compute", "serverless compute needs compute.instance_type", "set a cluster or a VM SKU", code=Code.COMPUTE))
        gpus = None
        if sku is not None:
            found += self.sku_findings("compute.instance_type", sku, "training")
            found += _allow_list("compute.instance_type", sku, model.finetune_allow_list, "fine-tune", model.name)
            if model.finetune_allow_list is None and sku.lower() in UNSUPPORTED_SKUS:
                found.append(
                    error(
                        "compute.instance_type",
                        f"{sku} is not supported for fine-tuning",
                        "use an A100 or H100 size",
                        code=Code.SKU_UNSUITED,
                    )
                )
            gpus = self.gpus(sku)
            if not gpus and not any(f.path == "compute.instance_type" for f in found):
                found.append(
                    error(
                        "compute.instance_type",
                        f"{sku} has no GPU in {self.clients.location}",
                        "pick a GPU size (e.g. Standard_NC24ads_A100_v4)",
                        code=Code.SKU_UNSUITED,
                    )
                )
            if not any(f.is_error and f.path == "compute.instance_type" for f in found):
                found += self.quota_findings(
                    "compute.nodes" if spec.compute.nodes > 1 else "compute.instance_type", sku, spec.compute.nodes, "training"
                )
        serving: list[Finding] = []
        if spec.deploy.instance_type:
            serving = self.sku_findings("deploy.instance_type", spec.deploy.instance_type, "serving")
            serving += _allow_list("deploy.instance_type", spec.deploy.instance_type, model.inference_allow_list, "inference", model.name)
            found += serving
        deploy_sku = spec.deploy.instance_type or DEFAULT_DEPLOY_SKU
        if not any(f.is_error for f in serving):
            count = instances_for_quota(deploy_sku, spec.deploy.instance_count)
            held = (
                f" (with the {count - spec.deploy.instance_count} Azure holds back for upgrades)"
                if count > spec.deploy.instance_count
                else ""
            )
            found += self.quota_findings(
                "deploy.instance_count" if spec.deploy.instance_count > 1 else "deploy.instance_type", deploy_sku, count, f"serving{held}"
            )
        if not spec.deploy.instance_type:
            found.append(
                warning(
                    "deploy.instance_type",
                    f"not set: deployments use {DEFAULT_DEPLOY_SKU}",
                    f"set one of: {', '.join(model.inference_allow_list)}"
                    if model.inference_allow_list
                    else "set a GPU size the model can be served on",
                    code=Code.UNSET,
                )
            )
        return found, gpus


def _allow_list(path: str, sku: str, allowed: tuple[str, ...] | None, what: str, model: str) -> list[Finding]:
    if allowed is None or sku.lower() in {a.lower() for a in allowed}:
        return []
    return [error(path, f"{sku} is not among {model}'s {what} SKUs", f"use one of: {', '.join(allowed)}", code=Code.SKU_UNSUITED)]
