"""An in-process fake of the Azure ML REST API (ARM + registry + scoring + Azure Monitor metrics).

``responses`` intercepts azure-core's ``requests`` transport, so the real ``MLClient`` (and the real
``MetricsClient``) talk to this object. State lives here: what a PUT stores, a GET returns; long-running
operations answer 201/202 with an operation URL that the SDK polls to completion. A call no route
knows is recorded in ``unmatched`` and answered 501; the fixture fails the test on any.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import responses

from tests.fakes import azureml_seed as seed

ARM = "https://management.azure.com"
REGISTRY_HOST = "https://eastus.api.azureml.ms"
MFE = f"{REGISTRY_HOST}/mferp/managementfrontend"
JSON = {"Content-Type": "application/json"}
Scorer = Callable[[str, str, dict[str, Any]], tuple[int, Any]]


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def arm_type(path: str) -> str:
    """``.../providers/Microsoft.MachineLearningServices/workspaces/w/models/m/versions/1`` ->
    ``Microsoft.MachineLearningServices/workspaces/models/versions``, as ARM names resource types."""
    _, _, rest = path.partition("/providers/")
    namespace, *parts = rest.split("/")
    return "/".join([namespace, *parts[0::2]])


def default_chat(endpoint: str, body: dict[str, Any]) -> tuple[int, str]:
    """A serverless endpoint's reply text (the fake wraps it in the OpenAI chat completion)."""
    return 200, f"Hello from {endpoint}."


def default_scorer(endpoint: str, deployment: str, body: dict[str, Any]) -> tuple[int, Any]:
    """A chat model's answer in the ``[{"0": ...}]`` shape transformers deployments use."""
    return 200, [{"0": f"Hello from {deployment}."}]


def _serverless_settled(body: dict[str, Any]) -> None:
    """A serverless endpoint whose provisioning ended: ``Online``, or ``CreationFailed`` (REST ``endpointState``)."""
    props = body["properties"]
    if "endpointState" in props and props.get("provisioningState") in ("Succeeded", "Failed"):
        props["endpointState"] = "Online" if props["provisioningState"] == "Succeeded" else "CreationFailed"


@dataclass
class FakeAzureML:
    subscription: str = "00000000-0000-0000-0000-000000000001"
    resource_group: str = "rg-ml"
    workspace: str = "ws-ml"
    location: str = "eastus"
    storage_account: str = "fakestore"
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)  # lower-cased ARM path -> body
    blobs: dict[str, bytes] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    scorer: Scorer = default_scorer
    scored: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    metrics: dict[str, list[tuple[datetime, float]]] = field(default_factory=dict)  # endpoint -> (minute, requests)
    metric_errors: dict[str, str] = field(default_factory=dict)  # endpoint -> the errorCode its metric carries
    # Deployment-level Monitor series, as scoring records them at ``clock`` time: (endpoint, deployment) ->
    # [(minute, envoy_response_code, latency ms)]; a scored request takes ``score_latency_ms``.
    deployment_requests: dict[tuple[str, str], list[tuple[datetime, str, float]]] = field(default_factory=dict)
    score_latency_ms: float = 180.0
    route: random.Random = field(default_factory=lambda: random.Random(11))  # how requests split by traffic weight
    # Dedicated vCPU quota: family as Usage/list names it -> (in use, limit); and the regional total.
    quota: dict[str, tuple[int, int]] = field(default_factory=lambda: dict(seed.QUOTA))
    regional_vcpus: tuple[int, int] = seed.REGIONAL_VCPUS
    usages_body: dict[str, Any] | None = None  # answer Usage/list with this body instead (a real example)
    # The test split a dataset spec's prepare_data step writes: a few held-out chat conversations.
    held_out_rows: bytes = field(default_factory=lambda: seed.held_out_rows())
    # The workspace's MLflow (a tests.fakes.workspace_mlflow.WorkspaceMlflow): a job that completes logs its metrics there.
    mlflow: Any = None
    # (url regex, status, headers[, error body]): the next matching call fails so
    fail_next: list[tuple[Any, ...]] = field(default_factory=list)
    deployment_state: str = "Succeeded"
    serverless_state: str = "Succeeded"  # where a serverless endpoint's provisioning ends ("Failed": CreationFailed)
    chat_scorer: Callable[[str, dict[str, Any]], tuple[int, str]] = default_chat
    # Base models (registry ids without a version) whose publisher's marketplace subscription the workspace holds.
    marketplace: dict[str, str] = field(default_factory=dict)
    keys_issued: list[str] = field(default_factory=list)
    operations: dict[str, str] = field(default_factory=dict)  # operation id -> resource path
    # Time, as the real service spends it: endpoints and deployments read Creating/Updating for these many
    # seconds of ``clock`` after a PUT (a real deployment took 9 min 42 s; an endpoint about 1.5 min), and a
    # deleted one reads Deleting before it is gone. 0 answers at once, as most unit tests want.
    clock: Callable[[], float] = time.time
    provisioning_s: dict[str, float] = field(
        default_factory=lambda: {"onlineendpoints": 0.0, "deployments": 0.0, "serverlessendpoints": 0.0, "delete": 0.0, "import": 0.0}
    )
    # The registries the fake serves (discovery, assets): the public azureml one, and those a test adds (add_registry).
    registries: set[str] = field(default_factory=lambda: {"azureml"})
    workspace_id: str = "3a59e976-9196-4817-92c5-da1e6dfae03c"  # the workspace's guid: a shared asset's source names it
    # Imports into a registry under way (the import's operation id -> the version it makes, when, and its body): the
    # version is not there until then, as the recorded share reads 404 before its operation answers 204.
    imports: dict[str, tuple[str, float, dict[str, Any]]] = field(default_factory=dict)
    import_requests: list[dict[str, Any]] = field(default_factory=list)  # each import's request body, as sent
    sent: list[tuple[str, str, Any]] = field(default_factory=list)  # every JSON body PUT or POSTed: (method, url, body)
    _ops: itertools.count = field(default_factory=lambda: itertools.count(1))

    # -- coordinates ------------------------------------------------------------------------------
    @property
    def ws_path(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}/providers/"
            f"Microsoft.MachineLearningServices/workspaces/{self.workspace}"
        )

    @property
    def registry_path(self) -> str:
        return self.registry_path_of("azureml")

    def registry_path_of(self, name: str) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/registry-rg/providers/Microsoft.MachineLearningServices/registries/{name}"
        )

    def add_registry(self, name: str) -> FakeAzureML:
        """A registry of the organisation's own (gitops.yaml registry:), empty."""
        self.registries.add(name)
        return self

    # -- seeding ----------------------------------------------------------------------------------
    def seed_defaults(self) -> FakeAzureML:
        self.put_resource(
            f"{self.ws_path}",
            {
                "name": self.workspace,
                "location": self.location,
                "type": "Microsoft.MachineLearningServices/workspaces",
                "properties": {
                    "workspaceId": self.workspace_id,
                    "discoveryUrl": f"https://{self.location}.api.azureml.ms/discovery",
                    "mlFlowTrackingUri": f"azureml://{self.location}.api.azureml.ms/mlflow/v1.0{self.ws_path}",
                },
            },
        )
        self.add_model(seed.registry_model(seed.PHI4_SPEC), "Phi-4", "8")
        self.add_model(seed.registry_model(seed.PHI3_SPEC), "Phi-3-mini-4k-instruct", "15")
        self.put_resource(f"{self.registry_path}/components/chat_completion_pipeline/versions/0.0.82", seed.component())
        self.put_resource(f"{self.ws_path}/computes/gpu-cluster-big", seed.cluster("gpu-cluster-big", "Standard_NC24ads_A100_v4"))
        self.put_resource(f"{self.ws_path}/datastores/workspaceblobstore", seed.datastore(self.storage_account))
        for name in ("ultrachat-train", "ultrachat-test"):  # the data assets the tests' specs name
            self.put_data_asset(name, "1", self.held_out_rows)
        return self

    def add_model(self, body: dict[str, Any], name: str = "Phi-4", version: str = "8") -> None:
        self.put_resource(f"{self.registry_path}/models/{name}/versions/{version}", body)

    def add_cluster(self, name: str, size: str, max_instances: int = 2, state: str = "Succeeded") -> None:
        self.put_resource(f"{self.ws_path}/computes/{name}", seed.cluster(name, size, max_instances, state))

    def put_resource(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        body = json.loads(json.dumps(body))
        name = path.rstrip("/").rsplit("/", 1)[-1]
        registry = re.search(r"/registries/([^/]+)/(.*)$", path)
        # Registry assets carry azureml:// ids (the SDK refuses ARM-style ids for them).
        body["id"] = f"azureml://registries/{registry.group(1)}/{registry.group(2)}" if registry else path
        body.setdefault("name", name)
        body.setdefault("type", arm_type(path))
        body.setdefault(
            "systemData",
            {
                "createdAt": _now(),
                "createdBy": "fake",
                "createdByType": "User",
                "lastModifiedAt": _now(),
                "lastModifiedBy": "fake",
                "lastModifiedByType": "User",
            },
        )
        props = body.setdefault("properties", {})
        props.setdefault("provisioningState", "Succeeded")
        if "/models/" in path.lower() and "/versions/" in path.lower():  # what the service fills in (recorded)
            for key, value in (
                ("description", None),
                ("isArchived", False),
                ("isAnonymous", False),
                ("flavors", {}),
                ("jobName", None),
                ("tags", {}),
                ("properties", {}),
            ):
                props.setdefault(key, value)
        self.resources[path.lower()] = body
        return body

    def get_resource(self, path: str) -> dict[str, Any] | None:
        self._settle()
        return self.resources.get(path.lower())

    def children(self, path: str) -> list[dict[str, Any]]:
        self._settle()
        prefix = path.lower().rstrip("/") + "/"
        return [b for p, b in self.resources.items() if p.startswith(prefix) and "/" not in p[len(prefix) :]]

    # -- provisioning over time ---------------------------------------------------------------------
    def subscription_for(self, model_id: str) -> str | None:
        """The marketplace subscription a serverless endpoint of ``model_id`` uses (None: none needed or held)."""
        return next((sid for base, sid in self.marketplace.items() if base.lower() in model_id.lower()), None)

    def provision(self, body: dict[str, Any], kind: str, final: str, new: bool) -> None:
        """Start a resource's provisioning: in progress now, ``final`` after its duration on the clock."""
        seconds = self.provisioning_s.get(kind, 0.0)
        if seconds <= 0:
            body["properties"]["provisioningState"] = final
            body.pop("_settle", None)
            _serverless_settled(body)
            return
        # As recorded: a new endpoint reads Creating, a new deployment Updating (tests/contracts/sdk-recordings).
        body["properties"]["provisioningState"] = "Creating" if new and kind == "onlineendpoints" else "Updating"
        body["_settle"] = {"at": self.clock() + seconds, "state": final}

    def begin_delete(self, path: str) -> None:
        seconds = self.provisioning_s.get("delete", 0.0)
        lower = path.lower().rstrip("/")
        if seconds <= 0:
            self._remove(lower)
            return
        body = self.resources[lower]
        body["properties"]["provisioningState"] = "Deleting"
        body["_settle"] = {"at": self.clock() + seconds, "state": "Deleted"}

    def _remove(self, lower: str) -> None:
        for key in [k for k in self.resources if k == lower or k.startswith(lower + "/")]:
            del self.resources[key]

    def _settle(self) -> None:
        now = self.clock()
        for op, (path, ready_at, body) in list(self.imports.items()):
            if now >= ready_at:  # the import's operation is done: the registry's version exists from now on
                self.imports.pop(op)
                self.put_resource(path, body)
        for path, body in list(self.resources.items()):
            pending = body.get("_settle")
            if pending and now >= pending["at"]:
                body.pop("_settle")
                if pending["state"] == "Deleted":
                    self._remove(path)
                else:
                    body["properties"]["provisioningState"] = pending["state"]
                    _serverless_settled(body)

    def in_progress(self, path: str) -> bool:
        body = self.get_resource(path)
        return bool(body and body.get("_settle"))

    # -- state helpers for tests --------------------------------------------------------------------
    def job(self, name: str) -> dict[str, Any]:
        """The job's stored body, which the test knows is there."""
        body = self.get_resource(f"{self.ws_path}/jobs/{name}")
        assert body is not None, f"no job {name}"
        return body

    def job_event(self, name: str, status: str = "completed") -> dict[str, Any]:
        """The Event Grid event the service sends when the job reaches ``status`` (its tags, the workspace's topic)."""
        from gitops.events import build_event

        props = self.job(name)["properties"]
        # A pipeline's run type is documented (tests/contracts/eventgrid); a command job's is a script run; a
        # fine-tuning job's is documented nowhere: a made-up one, which the lifecycle must not depend on.
        run_type = {"Command": "azureml.scriptrun", "FineTuning": "FineTuning"}.get(props.get("jobType", ""), "azureml.PipelineRun")
        return build_event(
            topic=self.ws_path, experiment="chat_completion", run_id=name, status=status, tags=props["tags"], run_type=run_type
        )

    def set_job_status(self, name: str, status: str) -> None:
        job = self.job(name)
        assert job is not None, f"no job {name}"
        was = job["properties"].get("status")
        job["properties"]["status"] = status
        if status == "Completed" and was != "Completed":  # what the pipeline's steps left: the test split, where asked to
            for uri in re.findall(r"azureml://datastores/workspaceblobstore/paths/(gitops/[^\"']+\.jsonl)", json.dumps(job)):
                self.blobs.setdefault(f"/azureml-blobstore/{uri}", self.held_out_rows)
            # ... and the model_digest step's file: our own step (pipelines/model_digest.py) run over the model the
            # fake stands for (its weights are the job's name), as it runs on the cluster.
            for uri in re.findall(r"azureml://datastores/workspaceblobstore/paths/(gitops/[^\"']+/content_digest\.json)", json.dumps(job)):
                self.blobs.setdefault(f"/azureml-blobstore/{uri}", self.digest_file(name))
            if self.mlflow is not None:
                self.mlflow.log_job(name)
            if job["properties"].get("jobType") == "FineTuning":
                self._register_fine_tuned(name, job)

    def _register_fine_tuned(self, job_name: str, job: dict[str, Any]) -> None:
        """What a completed fine-tuning job leaves: its model registered under ``outputs.registered_model``'s asset
        name, as the next version of that name (the service does not document the version: never assume 1)."""
        output = (job["properties"].get("outputs") or {}).get("registered_model") or {}
        name = output.get("assetName")
        if not name:
            return
        taken = [int(v["name"]) for v in self.model_versions(name) if str(v["name"]).isdigit()]
        version = str(max(taken, default=0) + 1)
        self.put_resource(
            f"{self.ws_path}/models/{name}/versions/{version}",
            {
                "properties": {
                    "modelType": "mlflow_model",
                    "modelUri": f"azureml://jobs/{job_name}/outputs/registered_model",
                    "jobName": job_name,
                    "description": f"fine-tuned by {job_name}",
                    "flavors": {"python_function": {"data": {"loader_module": "mlflow.transformers"}}},
                }
            },
        )

    @staticmethod
    def digest_file(job: str) -> bytes:
        """What the ``model_digest`` step of ``job`` writes: ``pipelines/model_digest.py`` itself, run over a model
        directory whose weights are the job's name."""
        import tempfile

        from pipelines.model_digest import main

        with tempfile.TemporaryDirectory() as tmp:
            model = Path(tmp) / "model"
            (model / "data").mkdir(parents=True)
            (model / "data" / "model.safetensors").write_bytes(job.encode() * 64)
            (model / "MLmodel").write_text(f"run_id: {job}\n")
            main(["--model", str(model), "--output", str(Path(tmp) / "digest.json")])
            return (Path(tmp) / "digest.json").read_bytes()

    def put_data_asset(self, name: str, version: str, rows: bytes) -> str:
        """A uri_file data asset in the workspace blob store, as `az ml data create` leaves it."""
        blob_path = f"LocalUpload/{name}/{version}/{name}.jsonl"
        self.blobs[f"/azureml-blobstore/{blob_path}"] = rows
        path = (
            f"azureml://subscriptions/{self.subscription}/resourcegroups/{self.resource_group}/workspaces/"
            f"{self.workspace}/datastores/workspaceblobstore/paths/{blob_path}"
        )
        self.put_resource(
            f"{self.ws_path}/data/{name}/versions/{version}",
            {"properties": {"dataType": "uri_file", "dataUri": path, "isAnonymous": False, "isArchived": False}},
        )
        return f"azureml:{name}:{version}"

    def endpoint(self, name: str) -> dict[str, Any] | None:
        """The endpoint of that name in whichever workspace holds it (names are unique per region, as scoring hosts)."""
        return self.get_resource(self._endpoint_path(name))

    def _endpoint_path(self, name: str) -> str:
        suffix = f"/onlineendpoints/{name.lower()}"
        return next((p for p in self.resources if p.endswith(suffix)), f"{self.ws_path}/onlineEndpoints/{name}".lower())

    def add_workspace(self, resource_group: str, name: str, workspace_id: str = "7c0e6f5d-0b1a-4e8e-9f3d-2a1b0c9d8e7f") -> str:
        """Another workspace (a later environment's), in this subscription and region; its ARM path."""
        rg = f"/subscriptions/{self.subscription}/resourceGroups/{resource_group}"
        path = f"{rg}/providers/Microsoft.MachineLearningServices/workspaces/{name}"
        self.put_resource(
            path,
            {
                "name": name,
                "location": self.location,
                "type": "Microsoft.MachineLearningServices/workspaces",
                "properties": {
                    "workspaceId": workspace_id,
                    "discoveryUrl": f"https://{self.location}.api.azureml.ms/discovery",
                    "mlFlowTrackingUri": f"azureml://{self.location}.api.azureml.ms/mlflow/v1.0{path}",
                },
            },
        )
        return path

    def endpoint_body(self, name: str) -> dict[str, Any]:
        """The endpoint's stored body, which the test knows is there."""
        body = self.endpoint(name)
        assert body is not None, f"no endpoint {name}"
        return body

    def deployments(self, endpoint: str) -> list[str]:
        return sorted(d["name"] for d in self.children(f"{self._endpoint_path(endpoint)}/deployments"))

    def model_versions(self, name: str) -> list[dict[str, Any]]:
        return self.children(f"{self.ws_path}/models/{name}/versions")

    def add_requests(self, endpoint: str, when: datetime, count: float) -> None:
        self.metrics.setdefault(endpoint, []).append((when, count))

    def record_request(self, endpoint: str, deployment: str, status: int) -> None:
        """What Monitor would count for one scored request: its minute, response code and latency."""
        when = datetime.fromtimestamp(self.clock(), UTC).replace(second=0, microsecond=0)
        self.deployment_requests.setdefault((endpoint, deployment), []).append((when, str(status), self.score_latency_ms))

    # -- installation -------------------------------------------------------------------------------
    def install(self, rsps: responses.RequestsMock) -> None:
        # Every Azure service is https; plain http (Azurite, loopback endpoints) passes through untouched.
        rsps.add_passthru(re.compile(r"http://(127\.0\.0\.1|localhost)[:/]"))
        for method in ("GET", "PUT", "POST", "DELETE", "PATCH", "HEAD"):
            rsps.add_callback(method, re.compile(r"https://.*"), callback=self._dispatch)

    def _dispatch(self, request: Any) -> tuple[int, dict[str, str], str | bytes]:
        url = request.url
        self.calls.append((request.method, url))
        if request.method in ("PUT", "POST") and request.body:  # what was sent, as sent (contract tests compare it)
            with contextlib.suppress(ValueError, TypeError):
                self.sent.append((request.method, url, json.loads(request.body)))
        for i, (pattern, status, headers, *error) in enumerate(self.fail_next):
            if re.search(pattern, f"{request.method} {url}"):
                del self.fail_next[i]
                body = error[0] if error else {"code": "Injected", "message": f"injected {status}"}
                return status, {**JSON, **headers}, json.dumps({"error": body})
        from tests.fakes import azureml_routes

        try:
            answer = azureml_routes.route(self, request)
        except KeyError as exc:
            return 404, JSON, json.dumps({"error": {"code": "ResourceNotFound", "message": f"{exc.args[0]} was not found"}})
        if answer is None:
            self.unmatched.append(f"{request.method} {url}")
            return 501, JSON, json.dumps({"error": {"code": "FakeUnmatched", "message": f"no fake route for {request.method} {url}"}})
        status, headers, body = answer
        if isinstance(body, dict | list):
            return status, {**JSON, **headers}, json.dumps(body)
        return status, headers, body

    def operation_for(self, resource: dict[str, Any], delete: bool = False) -> dict[str, str]:
        """The headers of an accepted online endpoint/deployment write, as the real service sends them (recorded in
        tests/contracts/sdk-recordings): ``Azure-AsyncOperation`` on ``mfeOperationsStatus``, no ``Retry-After``;
        ``Location`` is the resource itself for a PUT, ``mfeOperationResults`` for a DELETE. The operation's status
        follows the resource's provisioning state."""
        op = f"oe:{next(self._ops):08d}-0000-0000-0000-000000000000"
        self.operations[op] = resource["id"]
        base = f"{ARM}/subscriptions/{self.subscription}/providers/Microsoft.MachineLearningServices/locations/{self.location}"
        location = f"{base}/mfeOperationResults/{op}" if delete else f"{ARM}{resource['id']}"
        return {
            "Azure-AsyncOperation": f"{base}/mfeOperationsStatus/{op}?api-version=2023-04-01-preview",
            "Location": f"{location}?api-version=2023-04-01-preview",
            "x-ms-async-operation-timeout": "PT30M",
        }

    def operation(self) -> str:
        return f"{ARM}/fake-operations/{next(self._ops)}?api-version=2023-01-01"

    @staticmethod
    def query(url: str) -> dict[str, list[str]]:
        return parse_qs(urlsplit(url).query)


class FakeCredential:
    """A token credential: JWT-shaped (the SDK reads claims from it), never valid anywhere real."""

    def __init__(self) -> None:
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        import jwt
        from azure.core.credentials import AccessToken

        self.scopes.extend(scopes)
        claims = {
            "oid": "11111111-1111-1111-1111-111111111111",
            "tid": "22222222-2222-2222-2222-222222222222",
            "upn": "tester@example.com",
            "exp": int(time.time()) + 3600,
            "aud": scopes[0].removesuffix("/.default") if scopes else "",
        }
        return AccessToken(jwt.encode(claims, "not-a-secret-" * 3, algorithm="HS256"), int(time.time()) + 3600)


@contextlib.contextmanager
def intercept(fake: FakeAzureML) -> Iterator[FakeAzureML]:
    """Route all https traffic of this process to ``fake``; fail if any call found no route."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake.install(rsps)
        yield fake
    assert not fake.unmatched, f"calls the fake Azure ML API does not know: {fake.unmatched}"


def azure_backend_for(fake: FakeAzureML, workspace: Any = None) -> Any:
    """The real Azure ML backend on the fake: the fake's workspace, or ``workspace`` (a WorkspaceRef of another)."""
    from gitops.backends.azureml.backend import AzureMLBackend
    from gitops.backends.azureml.clients import AzureClients

    if workspace is not None:
        clients = AzureClients(workspace.subscription, workspace.resource_group, workspace.name, credential=FakeCredential())
    else:
        clients = AzureClients(fake.subscription, fake.resource_group, fake.workspace, credential=FakeCredential())
    return AzureMLBackend(clients)


def start_deployment(backend: Any, endpoint: str, deployment: str, model: Any, spec: Any) -> Any:
    """``begin_deployment`` called as the lifecycle calls it: again after each "wait" (the first call marks the
    endpoint and is told to wait for it to settle), on a fake whose endpoint writes settle at once."""
    from gitops.errors import TransientBackendError

    for _ in range(3):
        try:
            return backend.begin_deployment(endpoint, deployment, model, spec)
        except TransientBackendError:
            continue
    raise AssertionError(f"deployment {deployment} never started")
