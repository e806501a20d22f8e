"""The Python worker's discovery, reproduced: the entry script's name rule, import by stem from the app root,
exactly one FunctionApp at top level, the functions and their bindings, and a light import."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from tests.conftest import REPO_ROOT

SCRIPT_RULE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9_\-]*\.py$")
EXPECTED = {
    "validate": [("httpTrigger", "validate", ["post"]), ("http", None, None)],
    "submit": [("httpTrigger", "submit", ["post"]), ("http", None, None)],
    "get_run": [("httpTrigger", "runs/{name}", ["get"]), ("http", None, None)],
    "list_runs": [("httpTrigger", "runs", ["get"]), ("http", None, None)],
    "retry": [("httpTrigger", "runs/{name}/retry", ["post"]), ("http", None, None)],
    "promote": [("httpTrigger", "runs/{name}/promote", ["post"]), ("http", None, None)],
    "rollback": [("httpTrigger", "runs/{name}/rollback", ["post"]), ("http", None, None)],
    "on_job_event": [("eventGridTrigger", None, None)],
    "advance": [("queueTrigger", "%GITOPS_QUEUE_NAME%", None)],
    "reconcile": [("timerTrigger", "%GITOPS_RECONCILE_SCHEDULE%", None)],
    "cleanup": [("timerTrigger", "%GITOPS_CLEANUP_SCHEDULE%", None)],
    "watch": [("timerTrigger", "%GITOPS_WATCH_SCHEDULE%", None)],
    "get_watch": [("httpTrigger", "watch", ["get"]), ("http", None, None)],
    "list_promotions": [("httpTrigger", "promotions", ["get"]), ("http", None, None)],
    "release": [("httpTrigger", "runs/{name}/release/{env}", ["post"]), ("http", None, None)],
    "dashboard": [("httpTrigger", "dashboard/{*path}", ["get"]), ("http", None, None)],
}
# What the worker does: import the script by its stem with the app root on sys.path, find the FunctionApp.
PROBE = """
import importlib, json, sys
sys.path.insert(0, sys.argv[1])
import azure.functions as func
module = importlib.import_module(sys.argv[2])
apps = [v for v in vars(module).values() if isinstance(v, func.FunctionApp)]
out = {"apps": len(apps), "heavy": [m for m in ("azure.ai.ml", "mlflow", "torch", "transformers") if m in sys.modules],
       "file": module.__file__, "functions": {}}
for f in apps[0].get_functions():
    out["functions"][f.get_function_name()] = [
        (b.type, getattr(b, "route", None) or getattr(b, "schedule", None) or getattr(b, "queue_name", None),
         sorted(str(getattr(m, "value", m)).lower() for m in getattr(b, "methods", None) or []) or None)
        for b in f.get_bindings()]
print(json.dumps(out))
"""


def script_name() -> str:
    settings = json.loads((REPO_ROOT / "local.settings.json.example").read_text())["Values"]
    return str(settings["PYTHON_SCRIPT_FILE_NAME"])


def test_the_entry_script_follows_the_workers_rules() -> None:
    name = script_name()
    assert SCRIPT_RULE.match(name) and (REPO_ROOT / name).is_file()
    assert (REPO_ROOT / "host.json").is_file() and (REPO_ROOT / "requirements.txt").is_file()  # the app root
    stem = name.removesuffix(".py")
    assert not (REPO_ROOT / stem).exists(), "a package folder with the script's stem would shadow it"
    assert f"{{ name: 'PYTHON_SCRIPT_FILE_NAME', value: '{name}' }}" in (REPO_ROOT / "infra" / "main.bicep").read_text()


def test_import_by_stem_finds_one_app_with_every_function_and_nothing_heavy() -> None:
    stem = script_name().removesuffix(".py")
    out = subprocess.run([sys.executable, "-c", PROBE, str(REPO_ROOT), stem], capture_output=True, text=True, check=True, cwd="/").stdout
    found = json.loads(out.strip().splitlines()[-1])
    assert found["apps"] == 1 and found["file"] == str(REPO_ROOT / script_name())
    assert found["heavy"] == []
    assert {name: [tuple(b) for b in bindings] for name, bindings in found["functions"].items()} == EXPECTED


def test_infrastructure_sets_every_setting_the_code_reads() -> None:
    bicep = (REPO_ROOT / "infra" / "main.bicep").read_text()
    for setting in (
        "AZURE_SUBSCRIPTION_ID",
        "AZURE_RESOURCE_GROUP",
        "AZUREML_WORKSPACE_NAME",
        "GITOPS_REPO",
        "GITOPS_OIDC_AUDIENCE",
        "GITOPS_LEDGER_ACCOUNT_URL",
        "GITOPS_LEDGER_CONTAINER",
        "GITOPS_RECONCILE_SCHEDULE",
        "GITOPS_CLEANUP_SCHEDULE",
        "GITOPS_WATCH_SCHEDULE",
        "GITOPS_QUEUE__queueServiceUri",
        "GITOPS_QUEUE_NAME",
        "AzureWebJobsStorage__accountName",
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
    ):
        assert f"name: '{setting}'" in bicep, setting
    # Flex Consumption (Linux Consumption retires 2028-09-30): the runtime lives in functionAppConfig, not in settings.
    assert "sku: { name: 'FC1', tier: 'FlexConsumption' }" in bicep and "runtime: { name: 'python', version: '3.11' }" in bicep
    assert "FUNCTIONS_WORKER_RUNTIME" not in bicep and "linuxFxVersion" not in bicep
    # The step queue the code defaults to, and the poison queue the host moves failing messages to.
    from gitops.settings import Settings

    queue = Settings.load({}).queue_name
    assert f"var stepQueue = '{queue}'" in bicep and "name: '${stepQueue}-poison'" in bicep
    assert "{ operatorType: 'IsNotNull', key: 'data.runTags.gitops_run' }" in bicep
    assert "'Microsoft.MachineLearningServices.RunCompleted'" in bicep and "deadLetterDestination" in bicep
    assert "type: 'SystemAssigned'" in bicep
    assert "/functions/on_job_event'" in bicep
    # docs/deploy.md's teardown names what the template made by its outputs, never by a placeholder to guess
    outputs = {line.split()[1] for line in bicep.splitlines() if line.startswith("output ")}
    deploy = (REPO_ROOT / "docs" / "deploy.md").read_text()
    assert {"storageAccountName", "eventGridSystemTopicName", "functionAppName", "applicationInsightsName"} <= outputs
    assert "<the system topic>" not in deploy and "<the template's storage account>" not in deploy
    example = json.loads((REPO_ROOT / "local.settings.json.example").read_text())["Values"]
    for key in ("GITOPS_RECONCILE_SCHEDULE", "GITOPS_CLEANUP_SCHEDULE", "GITOPS_WATCH_SCHEDULE"):
        assert len(example[key].split()) == 6  # NCRONTAB has seconds


def test_infrastructure_gives_the_function_each_later_environment_and_the_registry() -> None:
    """#27: with environments, the Function's identity deploys and reads in every workspace (its roles), hears every
    workspace's job events, and shares into the registry; the modules are deployed from main.bicep by parameter."""
    infra = REPO_ROOT / "infra"
    main, env, registry = ((infra / f"{n}.bicep").read_text() for n in ("main", "environment", "registry"))
    assert "param laterEnvironments array = []" in main and "param registryName string = ''" in main
    assert "module laterEnvironment 'environment.bicep' = [for env in laterEnvironments: {" in main
    assert "scope: resourceGroup(env.subscription, env.resourceGroup)" in main
    assert "module registryAccess 'registry.bicep' = if (!empty(registryName)) {" in main
    for role in ("f6c7c914-8db3-469d-8ca1-694a8f32e121", "43d0d8ad-25c7-4714-9337-8ba259a9fe05"):  # Data Scientist, Monitoring Reader
        assert role in env
    assert "1823dd4f-9b8c-4ab6-ab4e-7397a3684615" in registry  # AzureML Registry User (Azure's built-in roles page)
    # The later workspace's events reach the same function, filtered and dead-lettered as the first one's.
    for line in ("{ operatorType: 'IsNotNull', key: 'data.runTags.gitops_run' }", "/functions/on_job_event'", "deadLetterDestination"):
        assert line in env and line in main
    for params in ("deployEventSubscription: deployEventSubscription", "deadLetterStorageId: storage.id"):
        assert params in main
