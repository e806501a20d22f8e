"""What services and queues send is data, not trust: a Retail Prices answer of another shape, a price that is not a
number of dollars, a next page on another origin, an answer that trickles; a step message nested past the parser
or naming no run; requests refused for the caller's fault counted as a candidate's evidence."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from copy import deepcopy
from datetime import date
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from gitops.cost.prices import Price, PriceBook, committed_snapshot
from gitops.errors import BackendError, ConfigurationError, RequestError, TransientBackendError
from tests.conftest import REPO_ROOT
from tests.loopback import json_server, serve

DOCUMENTED = json.loads((REPO_ROOT / "tests/contracts/retail-prices/vm_prices_nc24ads_eastus.json").read_text())["body"]
SKU = "Standard_NC24ads_A100_v4"


def _with_payg_price(value: Any) -> dict[str, Any]:
    body = deepcopy(DOCUMENTED)
    body["Items"][0]["retailPrice"] = value  # the pay-as-you-go Linux row, the one the price is taken from
    return body


# -- Retail Prices: the answer's shape and numbers ---------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({**DOCUMENTED, "Items": 5}, "Items"),
        ({"BillingCurrency": "USD"}, "Items"),
        ([1, 2], "the body"),
        ({**DOCUMENTED, "NextPageLink": 7}, "NextPageLink"),
        (_with_payg_price(float("nan")), "retailPrice"),
        (_with_payg_price(float("inf")), "retailPrice"),
        (_with_payg_price(-3.673), "retailPrice"),
        (_with_payg_price(True), "retailPrice"),
        (_with_payg_price("3.673"), "retailPrice"),
        (_with_payg_price(None), "retailPrice"),
    ],
    ids=["items-a-number", "no-items", "a-list", "next-page-a-number", "nan", "inf", "negative", "boolean", "string", "null"],
)
def test_an_answer_that_is_not_a_price_list_is_refused_and_the_snapshot_is_named(body: Any, needle: str) -> None:
    from gitops.backends.azureml.retail_prices import RetailPrices

    with json_server(lambda *_: body) as url:
        live = RetailPrices(f"{url}/api/retail/prices")
        with pytest.raises(BackendError, match=needle) as refused:
            live.hourly("eastus", SKU)
        assert "snapshot" in (refused.value.hint or "")
        book = PriceBook([RetailPrices(f"{url}/api/retail/prices"), committed_snapshot()])
        price = book.hourly("eastus", SKU)
    # never "$nan/h": the committed snapshot prices it, and the plan says why the live API was not used
    assert price is not None and price.source == "snapshot" and price.usd_per_hour == 3.673
    assert len(book.notes) == 1 and "Retail Prices API" in book.notes[0]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0, True])
def test_a_price_is_a_finite_non_negative_amount_wherever_it_comes_from(value: Any, tmp_path: Path) -> None:
    from gitops.cost.prices import read_snapshot

    with pytest.raises(ValueError, match="not a price"):
        Price(SKU, "eastus", value, "2026-12-07", "snapshot")
    snapshot = tmp_path / "prices.yaml"
    as_yaml = {"NaN": ".nan", "Infinity": ".inf"}.get(json.dumps(value), json.dumps(value))
    snapshot.write_text(f"as_of: 2026-12-07\nregions: {{eastus: {{{SKU}: {as_yaml}}}}}\n")
    with pytest.raises(ValueError, match="finite, non-negative"):
        read_snapshot(snapshot)


def test_a_damaged_day_cache_is_asked_again_never_believed(tmp_path: Path) -> None:
    from gitops.backends.azureml.retail_prices import RetailPrices

    cache = tmp_path / "prices.json"
    cache.write_text(json.dumps({f"eastus/{SKU.lower()}": {"as_of": "2026-12-07", "sku": SKU, "usd": "NaN"}}))
    asked: list[str] = []

    def answer(method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        asked.append(path)
        return DOCUMENTED

    with json_server(answer) as url:
        price = RetailPrices(f"{url}/api/retail/prices", cache=cache, today=lambda: date(2026, 12, 7)).hourly("eastus", SKU)
    assert price is not None and price.usd_per_hour == 3.673 and len(asked) == 1


# -- Retail Prices: where pages come from ------------------------------------------------------------------
class _Intercept:
    """A requests adapter that answers azure-core's RequestsTransport from memory, by URL: the real transport and
    pipeline run, no socket is opened."""

    def __init__(self, pages: dict[str, dict[str, Any]]) -> None:
        self.pages = pages
        self.asked: list[str] = []

    def transport(self) -> Any:
        import requests
        from azure.core.pipeline.transport import RequestsTransport
        from requests.adapters import BaseAdapter
        from urllib3.response import HTTPResponse

        outer = self

        class Adapter(BaseAdapter):
            def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
                outer.asked.append(request.url)
                key = request.url.split("?")[0] + ("?$skip=100" if "skip" in request.url else "")
                data = json.dumps(outer.pages[key]).encode()
                response = requests.Response()
                response.status_code, response.url, response.request = 200, request.url, request
                response.headers["Content-Type"] = "application/json"
                response.raw = HTTPResponse(body=io.BytesIO(data), preload_content=False, status=200)
                return response

            def close(self) -> None:
                pass

        session = requests.Session()
        session.mount("https://", Adapter())
        session.mount("http://", Adapter())
        return RequestsTransport(session=session, session_owner=False)


@pytest.mark.parametrize(
    ("next_page", "followed"),
    [
        ("https://prices.azure.com:443/api/retail/prices?$skip=100", True),  # the API's own form of its next page
        ("https://prices.azure.com/api/retail/prices?$skip=100", True),
        ("http://prices.azure.com/api/retail/prices?$skip=100", False),  # the scheme is pinned
        ("https://prices.azure.com:8443/api/retail/prices?$skip=100", False),
        ("https://prices.azure.com.evil.example/api/retail/prices?$skip=100", False),
    ],
)
def test_pages_are_followed_on_the_apis_own_origin_only(next_page: str, followed: bool) -> None:
    from gitops.backends.azureml.retail_prices import API_URL, RetailPrices

    first = {**DOCUMENTED, "Items": [], "NextPageLink": next_page}
    pages = {API_URL: first, "https://prices.azure.com:443/api/retail/prices?$skip=100": DOCUMENTED}
    pages |= {next_page.split("?")[0] + "?$skip=100": DOCUMENTED}
    intercept = _Intercept(pages)
    price = RetailPrices(transport=intercept.transport()).hourly("eastus", SKU)
    assert (price is not None) is followed
    assert len(intercept.asked) == (2 if followed else 1) and intercept.asked[0].startswith("https://prices.azure.com/")


@pytest.mark.parametrize("base", ["http://prices.azure.com/api/retail/prices", "https://prices.example/api/retail/prices"])
def test_the_api_is_read_over_https_from_its_own_host(base: str) -> None:
    from gitops.backends.azureml.retail_prices import RetailPrices

    with pytest.raises(ConfigurationError, match="prices.azure.com"):
        RetailPrices(base)


@contextmanager
def _trickling_server(total_bytes: int, every_s: float) -> Iterator[str]:
    """Answers 200 with a valid price list, one byte every ``every_s`` seconds: each read is quick, the whole is not."""
    body = json.dumps(DOCUMENTED).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                for i, byte in enumerate(body):
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    if i < total_bytes:
                        time.sleep(every_s)
            except OSError:  # the reader gave up: what the test expects
                return

        def log_message(self, *args: Any) -> None:
            pass

    with serve(Handler) as url:
        yield url


def test_an_answer_that_trickles_is_cut_at_the_whole_requests_bound() -> None:
    from gitops.backends.azureml.retail_prices import RetailPrices

    # 40 slow bytes of 0.2 s: every read well inside a 1 s timeout, the whole answer eight times over it
    with _trickling_server(total_bytes=40, every_s=0.2) as url:
        live = RetailPrices(f"{url}/api/retail/prices", timeout_s=1.0)
        with pytest.raises(TransientBackendError, match="did not answer within 1s"):
            live.hourly("eastus", SKU)


# -- step messages -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        b"[" * 2048,
        b'{"run": ' * 700 + b"1",
        json.dumps({"run": "../documents/watch", "step": "ramp", "not_before": 0}).encode(),
        json.dumps({"run": "Phi4-Ultrachat", "step": "ramp", "not_before": 0}).encode(),
        json.dumps({"run": "ok-run", "step": "ramp", "not_before": "soon"}).encode(),
        json.dumps({"run": "ok-run", "step": "ramp", "not_before": True}).encode(),
        b'{"run": "ok-run", "step": "ramp", "not_before": NaN}',
        json.dumps({"run": ["ok-run"], "step": "ramp"}).encode(),
    ],
    ids=["nested-lists", "nested-objects", "path", "capitals", "time-a-string", "time-a-boolean", "time-nan", "run-a-list"],
)
def test_a_step_message_that_names_no_run_is_dropped_as_malformed_never_retried(body: bytes) -> None:
    from azure.functions.queue import QueueMessage

    from function_app.step_queue import handle_step_message
    from gitops.lifecycle.queue import StepMessage

    with pytest.raises(RequestError, match="not a step message"):
        StepMessage.from_json(body)
    # dropped before any service is built: no retry, no poison queue, no storage read
    assert handle_step_message(QueueMessage(id="m", body=body, dequeue_count=1)) == "malformed"


def test_a_well_formed_step_message_still_reads() -> None:
    from gitops.lifecycle.queue import StepMessage

    message = StepMessage("phi4-ultrachat", "ramp", 1765000000.5)
    assert StepMessage.from_json(message.to_json()) == message


def test_no_ledger_turns_a_name_that_is_not_a_runs_into_a_path_or_a_blob(tmp_path: Path, azurite) -> None:
    import uuid

    from gitops.ledger.blob import BlobLedger
    from gitops.ledger.local import LocalLedger
    from gitops.ledger.model import RunRecord

    blob = BlobLedger.from_connection_string(azurite, f"names-{uuid.uuid4().hex[:10]}")
    blob.save_document("watch", {"findings": ["kept"]})
    (tmp_path / "documents").mkdir()
    (tmp_path / "documents" / "watch.json").write_text('{"version": "1", "record": {}}')
    for ledger in (LocalLedger(tmp_path), blob):
        for name in ("../documents/watch", "documents/watch", "..", "a/b", "Run", "run.json", ""):
            assert ledger.get(name) is None, name
            with pytest.raises(RequestError, match="cannot name a run"):
                ledger.put(RunRecord(run=name, backend="local", digest="d" * 64, job_name="j"), None)
    assert blob.load_document("watch") == {"findings": ["kept"]}


def test_a_record_file_named_as_no_run_is_reported_not_read(tmp_path: Path) -> None:
    from gitops.ledger.local import LocalLedger

    (tmp_path / "Bad Name.json").write_text("{}")
    ledger = LocalLedger(tmp_path)
    assert ledger.list() == [] and "its name is not a run's" in ledger.damaged[0][1]


# -- a rollout's evidence ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import mlflow.transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pipelines.tiny_model import build_tiny_phi3

    root = tmp_path_factory.mktemp("ramp-evidence")
    hf = build_tiny_phi3(root / "hf")
    model = root / "model"  # saved as the local registry keeps a version (what a deployment's model_dir holds)
    mlflow.transformers.save_model(
        {"model": AutoModelForCausalLM.from_pretrained(hf), "tokenizer": AutoTokenizer.from_pretrained(hf)},
        str(model),
        task="llm/v1/chat",
        pip_requirements=["torch", "transformers"],
    )
    endpoint = root / "endpoint"
    endpoint.mkdir()
    (endpoint / "key").write_text("k" * 32)
    config = {"deployments": {"blue": {"model_dir": str(model)}, "green": {"model_dir": str(model)}}, "traffic": {"blue": 100, "green": 0}}
    (endpoint / "endpoint.json").write_text(json.dumps(config))
    return endpoint


def test_requests_refused_for_the_callers_fault_are_no_evidence_for_a_candidate(tiny_endpoint: Path) -> None:
    from starlette.testclient import TestClient

    from gitops.backends.local import server
    from gitops.backends.local.traffic import counters, window

    to_green = {"Authorization": "Bearer " + "k" * 32, "azureml-model-deployment": "green"}
    good = {"input_data": {"input_string": [{"role": "user", "content": "hi"}], "parameters": {"max_new_tokens": 2}}}
    huge = {"input_data": {"input_string": [{"role": "user", "content": "x" * (server.MAX_CONTENT_CHARS + 1)}], "parameters": {}}}
    hot = {"input_data": {**good["input_data"], "parameters": {"temperature": 9e9}}}
    with TestClient(server.create_app(tiny_endpoint)) as client:  # leaving it flushes the counters to stats.json
        statuses = [
            client.post("/score", content=b"{not json", headers=to_green).status_code,
            client.post("/score", json={"input_data": {"input_string": [], "parameters": {}}}, headers=to_green).status_code,
            client.post("/score", json=hot, headers=to_green).status_code,
            client.post("/score", json=good, headers={**to_green, "Authorization": "Bearer wrong"}).status_code,
            client.post("/score", json=huge, headers=to_green).status_code,
        ]
    assert statuses == [400, 400, 400, 401, 413]
    refused = stats(tiny_endpoint)["green"]
    assert window(counters(None), counters(refused)) == (0, 0, None)  # five requests aimed at it: no evidence
    assert refused["requests"] == 3  # still seen (the 401 and the unparsable body reached none): in use, never idle
    with TestClient(server.create_app(tiny_endpoint)) as client:
        assert client.post("/score", json=good, headers=to_green).status_code == 200
    requests, errors, p95 = window(counters(refused), counters(stats(tiny_endpoint)["green"]))
    assert (requests, errors) == (1, 0) and p95 is not None


def stats(endpoint: Path) -> dict[str, Any]:
    return dict(json.loads((endpoint / "stats.json").read_text())["deployments"])


def test_an_azure_window_leaves_out_a_callers_4xx_and_is_unknown_under_codes_it_cannot_read() -> None:
    from types import SimpleNamespace as NS

    from gitops.backends.azureml.usage import traffic_window

    def series(code: str, n: float) -> Any:
        return NS(metadata_values={"envoy_response_code": code} if code else {}, data=[NS(average=n)])

    by_code = [NS(metrics=[NS(timeseries=[series("200", 3), series("401", 50), series("413", 20), series("503", 1)])])]
    window = traffic_window("green", by_code, [])
    assert window.known and (window.requests, window.errors) == (4, 1)
    # requests under no readable code could be failures: the figures are unknown (the rollout waits, then fails)
    for unreadable in ("", "5xx"):
        by_code[0].metrics[0].timeseries.append(series(unreadable, 9))
        unknown = traffic_window("green", by_code, [])
        assert not unknown.known and "under no response code" in unknown.note
        by_code[0].metrics[0].timeseries.pop()
