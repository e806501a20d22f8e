"""Routes of the fake Azure ML API: ARM resources, registry (MFE), scoring, blob uploads, Monitor metrics.

``route`` answers ``(status, headers, body)``, raises ``KeyError(name)`` for a missing resource (404),
or returns None for a call the fake does not know (the test then fails).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from tests.fakes.azureml_api import FakeAzureML

Answer = tuple[int, dict[str, str], Any]
COLLECTIONS = {
    "onlineendpoints",
    "serverlessendpoints",
    "marketplacesubscriptions",
    "deployments",
    "versions",
    "jobs",
    "computes",
    "datastores",
    "models",
    "data",
    "components",
    "workspaces",
}
LRO_KINDS = {"onlineendpoints", "deployments", "serverlessendpoints"}


def route(fake: FakeAzureML, request: Any) -> Answer | None:
    parts = urlsplit(request.url)
    host, path, method = parts.netloc.lower(), unquote(parts.path), request.method
    body = json.loads(request.body) if request.body and request.headers.get("Content-Type", "").startswith("application/json") else None
    if host == "management.azure.com":
        return _arm(fake, method, path, body, request)
    if host == "eastus.api.azureml.ms":
        if m := re.fullmatch(r"/registrymanagement/v1\.0/registries/([^/]+)/discovery", path):
            return _discovery(fake, m.group(1))
        if m := re.fullmatch(r"/assetstore/v1\.0/operations/([^/]+)", path):
            fake.get_resource(fake.ws_path)  # (settles what is due)
            return (202 if m.group(1) in fake.imports else 204), {}, None  # as the recorded import's operation answers
        if path.startswith("/mferp/managementfrontend/"):
            return _arm(fake, method, path[len("/mferp/managementfrontend") :], body, request)
    if host.endswith(".inference.ml.azure.com") and method == "POST" and path == "/score":
        return _score(fake, host.split(".")[0], request)
    if host.endswith(".models.ai.azure.com") and method == "POST" and path == "/v1/chat/completions":
        return _chat(fake, host.split(".")[0], request)
    if host.endswith(".metrics.monitor.azure.com") and method == "POST" and path.endswith("/metrics:getBatch"):
        return _metrics(fake, request)
    if host == f"{fake.storage_account}.blob.core.windows.net":
        return _blob(fake, method, path, request)
    return None


def _discovery(fake: FakeAzureML, name: str) -> Answer:
    if name not in fake.registries:
        raise KeyError(f"registry {name}")
    return (
        200,
        {},
        {
            "registryName": name,
            "tenantId": "t",
            "primaryRegion": fake.location,
            "regions": [fake.location],
            "subscriptionId": fake.subscription,
            "resourceGroup": "registry-rg",
            "primaryRegionResourceProviderUri": "https://eastus.api.azureml.ms/",
        },
    )


def _arm(fake: FakeAzureML, method: str, path: str, body: Any, request: Any) -> Answer | None:  # noqa: C901  (the fake ARM router: one branch per route)
    lower = path.lower().rstrip("/")
    if lower.startswith("/fake-operations/"):
        return 200, {}, {"status": "Succeeded"}
    if m := re.search(r"/mfeoperation(?:sstatus|results)/([^/]+)$", lower):
        op = m.group(1)
        resource = fake.get_resource(fake.operations.get(op, ""))
        state = (resource or {}).get("properties", {}).get("provisioningState", "Succeeded")
        # The recorded status body: id, name, startTime, percentComplete, status ("Updating" while in progress).
        answer = {
            "id": path,
            "name": op,
            "startTime": (resource or {}).get("systemData", {}).get("createdAt", ""),
            "percentComplete": 0.0 if resource and resource.get("_settle") else 100.0,
            "status": "Updating" if resource and resource.get("_settle") else ("Failed" if state == "Failed" else "Succeeded"),
        }
        if state == "Failed":
            answer["error"] = {"code": "DeploymentFailed", "message": "container crashed: model failed to load"}
        return 200, {}, answer
    if re.fullmatch(r"/subscriptions/[^/]+/providers/microsoft\.machinelearningservices/locations/[^/]+/vmsizes", lower):
        from tests.fakes.azureml_seed import vm_sizes

        return 200, {}, vm_sizes()
    if re.fullmatch(r"/subscriptions/[^/]+/providers/microsoft\.machinelearningservices/locations/[^/]+/usages", lower):
        from tests.fakes.azureml_seed import usages

        return 200, {}, fake.usages_body or usages(fake.subscription, fake.quota, fake.regional_vcpus)
    kind = lower.rsplit("/", 2)[-2] if lower.count("/") >= 2 else ""
    if method == "POST" and (m := re.search(r"/registries/([^/]+)/import$", path)):
        return _import(fake, m.group(1), body)
    if method == "POST":
        return _action(fake, path, body)
    if method == "PUT":
        return _put(fake, path, kind, body)
    if method == "DELETE":
        found = fake.get_resource(path)
        if found is None:
            return 204, {}, ""
        headers = fake.operation_for(found, delete=True) if kind in LRO_KINDS else {"Location": fake.operation(), "Retry-After": "0"}
        fake.begin_delete(path)
        return 202, headers, "null" if kind in LRO_KINDS else ""
    if method == "GET":
        found = fake.get_resource(path)
        if found is not None:
            return 200, {}, found
        if lower.rsplit("/", 1)[-1] in COLLECTIONS:
            items = fake.children(path)
            query = fake.query(request.url)
            if query.get("isDefault") == ["true"]:
                items = items[:1]
            view = (query.get("listViewType") or ["ActiveOnly"])[0]  # as the service lists versions (the recording)
            if view == "ActiveOnly":
                items = [b for b in items if not (b.get("properties") or {}).get("isArchived")]
            elif view == "ArchivedOnly":
                items = [b for b in items if (b.get("properties") or {}).get("isArchived")]
            if "createdtime desc" in " ".join(query.get("$orderBy", [])).lower():  # how "latest" is resolved
                items = sorted(items, key=lambda b: b.get("systemData", {}).get("createdAt", ""), reverse=True)
            if query.get("$top"):
                items = items[: int(query["$top"][0])]
            return 200, {}, {"value": items}
        raise KeyError(path.rsplit("/", 1)[-1])
    return None


def _put(fake: FakeAzureML, path: str, kind: str, body: dict[str, Any]) -> Answer:  # noqa: C901  (one branch per resource kind, read flat)
    existing = fake.get_resource(path)
    props = body.setdefault("properties", {})
    name = path.rstrip("/").rsplit("/", 1)[-1]
    if kind == "onlineendpoints":  # the fields a real PUT answer carries (tests/contracts/sdk-recordings)
        body["location"] = fake.location
        body.setdefault("kind", "Managed")
        body["type"] = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
        props["scoringUri"] = f"https://{name}.{fake.location}.inference.ml.azure.com/score"
        props.setdefault("traffic", {})
        props.setdefault("mirrorTraffic", {})
        props.setdefault("properties", {})
        props.setdefault("description", None)
        props.setdefault("swaggerUri", None)
        props.setdefault("compute", None)
        props.setdefault("publicNetworkAccess", "Enabled")
        identity = body.setdefault("identity", {"type": "SystemAssigned"})
        identity.setdefault("principalId", "00000000-0000-0000-0000-0000000000aa")
        identity.setdefault("tenantId", "22222222-2222-2222-2222-222222222222")
    elif kind == "deployments":
        endpoint = path.split("/")[-3]
        parent = fake.endpoint(endpoint)
        if parent is None:
            raise KeyError(f"endpoint {endpoint}")
        if parent.get("_settle"):  # a write to the endpoint still settling: refused, as users report it
            return busy_endpoint(endpoint, parent["properties"]["provisioningState"])
        props.setdefault("scaleSettings", {"scaleType": "Default"})  # the service fills it; the SDK needs it
        # What the service adds to a deployment (tests/contracts/sdk-recordings/online_deployment_create.json).
        for key, value in (
            ("modelMountPath", None),
            ("appInsightsEnabled", False),
            ("readinessProbe", None),
            ("privateNetworkConnection", False),
            ("egressPublicNetworkAccess", "Enabled"),
            ("endpointComputeType", "Managed"),
            ("environmentVariables", {}),
            ("properties", {}),
        ):
            props.setdefault(key, value)
        props.setdefault("description", None)
        settings = props.setdefault("requestSettings", {})
        settings.setdefault("maxQueueWait", "PT0S")
        settings.setdefault("maxConcurrentRequestsPerInstance", 1)
        body.setdefault("kind", "Managed")
        body["sku"] = {"name": "Default", "tier": "Standard", "capacity": 1, **(body.get("sku") or {})}
        body["location"] = fake.location
    elif kind == "versions" and "/models/" in path and props.get("modelType", "").lower() == "mlflow_model":
        # The service reads flavors from the MLmodel file of the job output; the SDK needs them present.
        props.setdefault(
            "flavors",
            {"python_function": {"data": {"loader_module": "mlflow.transformers"}}, "transformers": {"data": {"task": "llm/v1/chat"}}},
        )
    elif kind == "serverlessendpoints":  # the fields of the published examples (tests/contracts/rest-api-specs)
        if existing is not None and existing["properties"].get("modelSettings") != props.get("modelSettings"):
            return 400, {}, {"error": {"code": "BadRequest", "message": "the model of a serverless endpoint cannot be changed"}}
        body["location"] = fake.location
        body["kind"] = None
        # What the SDK sends is the name; the examples' other sku fields are there, their values unknown (null).
        body["sku"] = {"tier": None, "size": None, "family": None, "capacity": None, "name": "Consumption", **(body.get("sku") or {})}
        props["authMode"] = "Key"
        props["inferenceEndpoint"] = {"uri": f"https://{name}.{fake.location}.models.ai.azure.com", "headers": {}}
        props.setdefault("contentSafety", {"contentSafetyStatus": "Enabled", "contentSafetyLevel": None})
        props["marketplaceSubscriptionId"] = fake.subscription_for(props["modelSettings"]["modelId"])
        props["endpointState"] = "Creating"
    elif kind == "marketplacesubscriptions":
        props["marketplacePlan"] = {"publisherId": "fake-publisher", "offerId": "fake-offer", "planId": "fake-plan"}
        props["marketplaceSubscriptionStatus"] = "Subscribed"
        fake.marketplace[str(props.get("modelId", ""))] = path
    elif kind == "jobs":
        props.setdefault("status", "NotStarted")
        for given in (props.get("fineTuningDetails") or {}).values():  # as the published example answers its inputs
            if isinstance(given, dict) and "jobInputType" in given:
                given.setdefault("mode", "ReadOnlyMount")
                given.setdefault("description", None)
        props["services"] = {"Studio": {"endpoint": f"https://ml.azure.com/runs/{name}?wsid={fake.ws_path}", "jobServiceType": "Studio"}}
    stored = fake.put_resource(path, {**(existing or {}), **body, "properties": {**((existing or {}).get("properties", {})), **props}})
    if kind in LRO_KINDS:
        final = fake.deployment_state if kind == "deployments" else fake.serverless_state if kind == "serverlessendpoints" else "Succeeded"
        fake.provision(stored, kind, final, new=existing is None)
        headers = fake.operation_for(stored)
        if kind == "onlineendpoints":  # the service records the operation and its own id among the endpoint's properties
            stored["properties"]["properties"].update(
                {"azureml.onlineendpointid": stored["id"].lower(), "AzureAsyncOperationUri": headers["Azure-AsyncOperation"]}
            )
        elif kind == "deployments":
            stored["properties"]["properties"]["AzureAsyncOperationUri"] = headers["Azure-AsyncOperation"]
        return (200 if existing else 201), headers, stored
    return (200 if existing else 201), {}, stored


def busy_endpoint(endpoint: str, state: str) -> Answer:
    """The refusal of a deployment PUT while its endpoint is Creating or Updating, worded as reported in
    tests/contracts/reported/deployment_put_endpoint_updating.txt (the report does not give the status: 409 here;
    the adapter reads the words, on any status)."""
    message = f"Cannot create a deployment in endpoint {endpoint} because it is in {state} provisioning state."
    return 409, {}, {"error": {"code": "Conflict", "message": message}}


def _import(fake: FakeAzureML, registry: str, body: Any) -> Answer:
    """A workspace model version shared into a registry (tests/contracts/sdk-recordings/model_share_to_registry.json):
    202 with an operation to poll; the registry's version, its tags carried over and its origin named, exists once
    the operation is done (``provisioning_s["import"]`` of ``clock``)."""
    fake.import_requests.append(body)
    props = (body or {}).get("properties") or {}
    source = re.fullmatch(r"azureml://locations/([^/]+)/workspaces/([^/]+)/models/([^/]+)/versions/([^/]+)", props.get("sourceAssetId", ""))
    if registry not in fake.registries or source is None or source.group(2) != fake.workspace_id:
        raise KeyError(props.get("sourceAssetId") or registry)
    model = fake.get_resource(f"{fake.ws_path}/models/{source.group(3)}/versions/{source.group(4)}")
    if model is None:
        raise KeyError(source.group(3))
    name, version = props["destinationName"], props["destinationVersion"]
    own = model["properties"]
    copied = {
        "name": name,
        "type": "models",
        "properties": {
            "description": own.get("description"),
            "tags": dict(own.get("tags") or {}),
            "properties": dict(own.get("properties") or {}),
            "isArchived": False,
            "isAnonymous": False,
            "flavors": own.get("flavors") or {},
            "modelType": own.get("modelType"),
            "modelUri": f"https://{registry.lower()}store.blob.core.windows.net/{registry.lower()}-assets/{name}/{version}",
            "originAssetId": props["sourceAssetId"],
            "jobName": None,
        },
    }
    op = f"import-{next(fake._ops)}"
    ready_at = fake.clock() + fake.provisioning_s.get("import", 0.0)
    fake.imports[op] = (f"{fake.registry_path_of(registry)}/models/{name}/versions/{version}", ready_at, copied)
    location = f"https://{fake.location}.api.azureml.ms/assetstore/v1.0/operations/{op}"
    return 202, {"Location": location, "x-ms-async-operation-timeout": "PT1H"}, "null"


def _action(fake: FakeAzureML, path: str, body: Any) -> Answer | None:
    resource, _, action = path.rpartition("/")
    target = fake.get_resource(resource)
    if target is None and action == "startPendingUpload":  # the version does not exist yet: the upload makes it
        target = {"name": resource.rsplit("/", 1)[-1]}
    if target is None:
        raise KeyError(resource.rsplit("/", 1)[-1])
    if action == "listKeys":
        keys = target.setdefault("_keys", {"primaryKey": f"pk-{target['name']}-s3cr3t", "secondaryKey": f"sk-{target['name']}-s3cr3t"})
        fake.keys_issued.append(keys["primaryKey"])
        return 200, {}, keys
    if action == "cancel":
        target["properties"]["status"] = "Canceled"
        return 202, {"Location": fake.operation(), "Retry-After": "0"}, ""
    if action == "startPendingUpload":  # a code or data version's upload slot (shape: rest-api-specs CodeVersion example)
        container = f"https://{fake.storage_account}.blob.core.windows.net/azureml-blobstore-fake/LocalUpload/{target['name']}"
        return (
            200,
            {},
            {
                "blobReferenceForConsumption": {
                    "blobUri": container,
                    "storageAccountArmId": f"{fake.ws_path}/../storageAccounts/{fake.storage_account}",
                    "credential": {"credentialType": "SAS", "sasUri": f"{container}?sv=2021-08-06&sr=c&sp=rcwl&sig=ZmFrZQ%3D%3D"},
                },
                "pendingUploadId": (body or {}).get("pendingUploadId") or target["name"],
                "pendingUploadType": "TemporaryBlobReference",
            },
        )
    if action == "listSecrets":
        return 200, {}, {"secretsType": "AccountKey", "key": "ZmFrZWtleWZha2VrZXlmYWtla2V5ZmFrZWtleQ=="}
    return None


def _score(fake: FakeAzureML, endpoint_name: str, request: Any) -> Answer:
    endpoint = fake.endpoint(endpoint_name)
    if endpoint is None:
        return 404, {}, {"message": "endpoint not found"}
    key = endpoint.get("_keys", {}).get("primaryKey")
    if not key or request.headers.get("Authorization") != f"Bearer {key}":
        return 401, {}, {"message": "invalid key"}
    deployments = fake.deployments(endpoint_name)
    target = request.headers.get("azureml-model-deployment")
    if target is None:  # split by the traffic weights, as the service routes
        weighted = [(d, int(w)) for d, w in (endpoint["properties"].get("traffic") or {}).items() if int(w) > 0]
        target = fake.route.choices([d for d, _ in weighted], [w for _, w in weighted])[0] if weighted else None
    if target not in deployments:
        return 404, {}, {"message": f"no deployment {target}"}
    payload = json.loads(request.body)
    fake.scored.append((endpoint_name, target, payload))
    status, reply = fake.scorer(endpoint_name, target, payload)
    fake.record_request(endpoint_name, target, status)
    return status, {"azureml-model-deployment": target}, reply  # the service names the deployment that answered


def _chat(fake: FakeAzureML, name: str, request: Any) -> Answer:
    """A serverless endpoint's chat completion: the raw key in ``Authorization`` (as the serverless docs show), the
    OpenAI chat body and answer."""
    found = fake.get_resource(f"{fake.ws_path}/serverlessEndpoints/{name}")
    if found is None:
        return 404, {}, {"error": {"code": "NotFound", "message": "endpoint not found"}}
    key = found.get("_keys", {}).get("primaryKey")
    if not key or request.headers.get("Authorization") != key:
        return 401, {}, {"error": {"code": "Unauthorized", "message": "invalid key"}}
    if found["properties"].get("endpointState") != "Online":
        return 503, {}, {"error": {"code": "ServiceUnavailable", "message": f"endpoint is {found['properties'].get('endpointState')}"}}
    payload = json.loads(request.body)
    fake.scored.append((name, name, payload))
    status, text = fake.chat_scorer(name, payload)
    fake.record_request(name, name, status)
    if status != 200:
        return status, {}, {"error": {"code": "Error", "message": str(text)}}
    return (
        200,
        {},
        {
            "id": "cmpl-fake",
            "object": "chat.completion",
            "created": 1733580000,
            "model": name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16},
        },
    )


def _deployment_metrics(fake: FakeAzureML, rid: str, query: dict[str, list[str]], start: datetime, end: datetime) -> dict[str, Any]:
    """One deployment's ``RequestsPerMinute`` (a series per ``envoy_response_code`` when the filter splits by it) or
    ``RequestLatency_P95``, per minute, as the documented deployment-level metrics are."""
    parts = rid.rstrip("/").split("/")
    endpoint, deployment = parts[-3], parts[-1]
    metric = query["metricnames"][0]
    first = start.replace(second=0, microsecond=0)  # points are whole minutes: the one the timespan starts in counts
    rows = [r for r in fake.deployment_requests.get((endpoint, deployment), []) if first <= r[0] <= end]
    if metric == "RequestLatency_P95":
        minutes: dict[datetime, list[float]] = {}
        for when, _, ms in rows:
            minutes.setdefault(when, []).append(ms)
        series = [{"metadatavalues": [], "data": [{"timeStamp": t.isoformat(), "average": max(v)} for t, v in sorted(minutes.items())]}]
        unit = "MilliSeconds"
    else:
        counts: dict[str, dict[datetime, int]] = {}
        for when, code, _ in rows:
            counts.setdefault(code, {}).setdefault(when, 0)
            counts[code][when] += 1
        split = "envoy_response_code" in " ".join(query.get("filter", []))
        if not split:
            merged: dict[datetime, int] = {}
            for per in counts.values():
                for t, n in per.items():
                    merged[t] = merged.get(t, 0) + n
            counts = {"": merged} if merged else {}
        series = [
            {
                "metadatavalues": [{"name": {"value": "envoy_response_code", "localizedValue": "envoy_response_code"}, "value": code}]
                if split
                else [],
                "data": [{"timeStamp": t.isoformat(), "average": float(n)} for t, n in sorted(per.items())],
            }
            for code, per in sorted(counts.items())
        ]
        unit = "Count"
    failed = fake.metric_errors.get(endpoint)  # the endpoint's metrics carry an errorCode: its deployments' too
    return {
        "id": f"{rid}/providers/Microsoft.Insights/metrics/{metric}",
        "type": "Microsoft.Insights/metrics",
        "name": {"value": metric, "localizedValue": metric},
        "unit": unit,
        "displayDescription": metric,
        "errorCode": failed or "Success",
        "timeseries": [] if failed else series,
    }


def _metrics(fake: FakeAzureML, request: Any) -> Answer:
    query = fake.query(request.url)
    start, end = (datetime.fromisoformat(query[k][0].replace("Z", "+00:00")) for k in ("starttime", "endtime"))
    values = []
    if query["metricnamespace"][0].lower().endswith("/deployments"):
        for rid in json.loads(request.body)["resourceids"]:
            values.append(
                {
                    "starttime": start.isoformat(),
                    "endtime": end.isoformat(),
                    "interval": query.get("interval", ["PT1M"])[0],
                    "namespace": query["metricnamespace"][0],
                    "resourceregion": fake.location,
                    "resourceid": rid,
                    "value": [_deployment_metrics(fake, rid, query, start, end)],
                }
            )
        return 200, {}, {"values": values}
    for rid in json.loads(request.body)["resourceids"]:
        name = rid.rstrip("/").rsplit("/", 1)[-1]
        points = [{"timeStamp": t.isoformat(), "total": n} for t, n in sorted(fake.metrics.get(name, [])) if start <= t <= end]
        values.append(
            {
                "starttime": start.isoformat(),
                "endtime": end.isoformat(),
                "interval": query.get("interval", ["PT1H"])[0],
                "namespace": query["metricnamespace"][0],
                "resourceregion": fake.location,
                "resourceid": rid,
                "value": [
                    {
                        "id": f"{rid}/providers/Microsoft.Insights/metrics/RequestsPerMinute",
                        "type": "Microsoft.Insights/metrics",
                        "name": {"value": "RequestsPerMinute", "localizedValue": "Requests per minute"},
                        "unit": "Count",
                        "displayDescription": "requests",
                        "errorCode": fake.metric_errors.get(name, "Success"),
                        "timeseries": [] if name in fake.metric_errors else [{"metadatavalues": [], "data": points}],
                    }
                ],
            }
        )
    return 200, {}, {"values": values}


def _etag(data: bytes) -> str:
    """A blob's ETag changes with its content, as the service's does."""
    import hashlib

    return f'"0x{hashlib.sha1(data).hexdigest()[:16].upper()}"'


def _blob(fake: FakeAzureML, method: str, path: str, request: Any) -> Answer | None:
    if method == "PUT" and "comp=metadata" in (request.url or ""):
        return (200, {"ETag": '"0x2"'}, "") if path in fake.blobs else (404, {"x-ms-error-code": "BlobNotFound"}, "")
    if method == "PUT":
        fake.blobs[path] = request.body if isinstance(request.body, bytes) else (request.body or "").encode()
        return 201, {"ETag": _etag(fake.blobs[path]), "Last-Modified": "Tue, 24 Nov 2026 00:00:00 GMT"}, ""
    if method in ("GET", "HEAD"):
        if path in fake.blobs:
            data = fake.blobs[path]
            headers = {"ETag": _etag(data), "x-ms-blob-type": "BlockBlob", "Last-Modified": "Tue, 24 Nov 2026 00:00:00 GMT"}
            wanted = request.headers.get("x-ms-range") or request.headers.get("Range")
            if method == "GET" and wanted and (m := re.fullmatch(r"bytes=(\d+)-(\d*)", wanted)):  # a ranged read: 206
                start = int(m.group(1))
                end = min(int(m.group(2)) if m.group(2) else len(data) - 1, len(data) - 1)
                part = data[start : end + 1]
                return 206, {**headers, "Content-Length": str(len(part)), "Content-Range": f"bytes {start}-{end}/{len(data)}"}, part
            return 200, {**headers, "Content-Length": str(len(data))}, data if method == "GET" else ""
        return 404, {"x-ms-error-code": "BlobNotFound"}, ""
    return None
