"""The region's vCPU quota, read through the real SDK from the fake's Usage/list answer (shaped like the published
example: tests/contracts/rest-api-specs/usages_list.json): training needs vCPUs x nodes, serving ceil(1.2 x
instances) x vCPUs except on the sizes Azure exempts; over the limit is an error, over what is free a warning."""

from __future__ import annotations

from gitops.backends.azureml.compute import instances_for_quota
from gitops.spec.validate import validate_file
from tests.conftest import REPO_ROOT

REFERENCE = REPO_ROOT / "runs" / "phi4-ultrachat.yaml"


def spec_with(compute: dict[str, object] | None = None, deploy: dict[str, object] | None = None):
    base = validate_file(REFERENCE).require()
    return base.model_copy(
        update={"compute": base.compute.model_copy(update=compute or {}), "deploy": base.deploy.model_copy(update=deploy or {})}
    )


def findings_for(backend, spec, notes: bool = False):
    found = [f for f in backend.check_compute(spec, backend.resolve_model(spec)) if "vCPUs" in f.message]
    return found if notes else [f for f in found if f.severity.value != "note"]


def test_the_reference_run_fits_the_seeded_quota_and_the_check_says_by_how_much(azure_backend) -> None:
    assert findings_for(azure_backend, spec_with()) == []
    training, serving = findings_for(azure_backend, spec_with(), notes=True)
    assert training.message == (
        "quota: training needs 24 vCPUs (1 x Standard_NC24ads_A100_v4); 96 of 96 free in "
        "'Standard NCADSA100v4 Family Cluster Dedicated vCPUs'; 196 of 200 free in "
        "'Total Cluster Dedicated Regional vCPUs'"
    )
    assert serving.path == "deploy.instance_type" and serving.message.startswith("quota: serving needs 24 vCPUs")


def test_training_over_the_family_limit_is_an_error_with_the_numbers(azure_fake, azure_backend) -> None:
    azure_fake.quota["NCADSA100v4"] = (0, 40)
    azure_fake.add_cluster("gpu-cluster-big", "Standard_NC24ads_A100_v4", max_instances=4)
    (finding,) = findings_for(azure_backend, spec_with(compute={"nodes": 2}))
    assert finding.is_error and finding.path == "compute.nodes"
    assert finding.message == (
        "training needs 48 vCPUs (2 x Standard_NC24ads_A100_v4, 24 each), over the 40 of "
        "'Standard NCADSA100v4 Family Cluster Dedicated vCPUs' in eastus"
    )
    assert "request more quota" in (finding.hint or "")


def test_training_over_what_is_free_now_is_a_warning(azure_fake, azure_backend) -> None:
    azure_fake.quota["NCADSA100v4"] = (80, 96)
    found = findings_for(azure_backend, spec_with())
    assert [f.severity.value for f in found] == ["warning", "warning"]  # training and serving: the same family
    assert "80 of the 96" in found[0].message and "waits until enough are free" in found[0].message


def test_serving_counts_the_instances_azure_holds_back_except_on_exempt_sizes(azure_fake, azure_backend) -> None:
    assert instances_for_quota("Standard_NC4as_T4_v3", 5) == 6 and instances_for_quota("standard_nc48ads_a100_v4", 2) == 2
    # NC40ads_H100_v5 (40 vCPUs) is not exempt: one instance holds two instances' worth, two hold three.
    assert findings_for(azure_backend, spec_with(deploy={"instance_type": "Standard_NC40ads_H100_v5", "instance_count": 1})) == []
    (h100,) = findings_for(azure_backend, spec_with(deploy={"instance_type": "Standard_NC40ads_H100_v5", "instance_count": 2}))
    assert h100.is_error and h100.path == "deploy.instance_count"
    assert "serving (with the 1 Azure holds back for upgrades) needs 120 vCPUs (3 x Standard_NC40ads_H100_v5" in h100.message
    # Two NC48ads_A100_v4 hold 96 vCPUs, all the family has, and nothing more: the size is exempt from the 20%.
    assert findings_for(azure_backend, spec_with(deploy={"instance_type": "Standard_NC48ads_A100_v4", "instance_count": 2})) == []


def test_the_regional_total_counts_too(azure_fake, azure_backend) -> None:
    azure_fake.regional_vcpus = (0, 16)
    found = findings_for(azure_backend, spec_with())
    assert found and all(f.is_error and "'Total Cluster Dedicated Regional vCPUs'" in f.message for f in found)


def test_submit_refuses_a_job_over_quota_naming_the_file_and_line(azure_fake, azure_backend, tmp_path) -> None:
    import pytest

    from gitops.errors import SpecError
    from gitops.ledger.local import LocalLedger
    from gitops.lifecycle.flow import Lifecycle
    from gitops.spec.validate import validate_text

    azure_fake.quota["NCADSA100v4"] = (0, 12)
    from tests.conftest import REFERENCE_ON_ASSETS

    validated = validate_text(REFERENCE_ON_ASSETS, "runs/phi4-ultrachat.yaml")
    lifecycle = Lifecycle(LocalLedger(tmp_path / "ledger"), lambda name: azure_backend)
    with pytest.raises(SpecError) as caught:
        lifecycle.submit(validated)
    line = next(i for i, t in enumerate(REFERENCE_ON_ASSETS.splitlines(), 1) if t.strip().startswith("instance_type: Standard_NC24ads"))
    assert str(caught.value).startswith(f"runs/phi4-ultrachat.yaml:{line}: compute.instance_type: training needs 24 vCPUs")
    assert not [c for c in azure_fake.calls if c[0] == "PUT" and "/jobs/" in c[1]]
