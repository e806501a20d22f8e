"""A local online endpoint: a FastAPI app on 127.0.0.1 that honours the managed online endpoint contract.

``POST /score`` with ``Authorization: Bearer <key>``; body ``{"input_data": {"input_string": [...messages...],
"parameters": {...}}}`` (or a flat message list, or ``{"messages": [...]}``) -> ``{"output": "..."}``.
Several deployments, each serving one registered model; traffic weights; the ``azureml-model-deployment``
header targets one deployment. Request counts and the last request time per deployment are persisted
for idle detection. Run as ``python -m gitops.backends.local.server ENDPOINT_DIR``.

A serverless endpoint (its config says ``kind: serverless``) serves one model on the serverless contract instead:
``POST /v1/chat/completions`` with the OpenAI chat body and answer, the key in ``Authorization`` raw (as the Azure
docs show) or as ``Bearer`` (as the ``openai`` client sends it).
"""

# No "from __future__ import annotations": FastAPI must see the real Request type of the routes below.

import asyncio
import contextlib
import hmac
import json
import math
import os
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

from gitops.backends.base import failed_response, scored_response
from gitops.backends.local.traffic import bucket, counters
from gitops.util.files import read_json, write_json_atomic

STATS_FLUSH_S = 1.0
# Limits that keep one caller from taking the endpoint from everyone else (a 1 MB prompt once held it for minutes).
MAX_BODY_BYTES = 256 * 1024
MAX_MESSAGES = 64
MAX_CONTENT_CHARS = 32_000
MAX_INPUT_TOKENS = 2048
MAX_NEW_TOKENS = 512
GENERATION_TIMEOUT_S = 60.0  # transformers stops generating after this, whatever max_new_tokens says
MAX_PENDING = 4  # requests generating or waiting; the next one is answered 503 with Retry-After at once
# A connection must deliver a request's head this soon after it opens (or after its last answer), and its body this
# soon after the head: an idle or trickling socket is closed, never held (a thousand of them once stayed open).
HEAD_TIMEOUT_S = 5.0
BODY_TIMEOUT_S = 10.0


class BadRequest(ValueError):
    status = 400


class TooLarge(BadRequest):
    status = 413


def generation_params(params: dict[str, Any]) -> dict[str, Any]:
    """The generation arguments a request may ask for, checked: finite, within bounds, or ``BadRequest``."""
    try:
        max_new = params.get("max_new_tokens", 128)
        if isinstance(max_new, bool) or not isinstance(max_new, int | float) or not math.isfinite(max_new):
            raise BadRequest(f"max_new_tokens must be a whole number 1..{MAX_NEW_TOKENS}")
        max_new = int(max_new)
        temperature, top_p = float(params.get("temperature", 1.0)), float(params.get("top_p", 1.0))
    except (TypeError, ValueError, OverflowError) as exc:
        if isinstance(exc, BadRequest):
            raise
        raise BadRequest(f"bad generation parameter: {str(exc)[:80]}") from None
    if not (math.isfinite(temperature) and math.isfinite(top_p)):
        raise BadRequest("temperature and top_p must be finite numbers")
    if not 1 <= max_new <= MAX_NEW_TOKENS:
        raise BadRequest(f"max_new_tokens must be 1..{MAX_NEW_TOKENS} on this endpoint, got {max_new}")
    if not 0 < top_p <= 1 or not 0 <= temperature <= 10:
        raise BadRequest("top_p must be in (0, 1] and temperature in [0, 10]")
    do_sample = params.get("do_sample", False) is True and temperature > 0
    out: dict[str, Any] = {"max_new_tokens": max_new, "do_sample": do_sample, "max_time": GENERATION_TIMEOUT_S}
    if do_sample:
        out.update(temperature=temperature, top_p=top_p)
    return out


class Admission:
    """At most ``limit`` requests generating or waiting; past that, callers are told to come back (503)."""

    def __init__(self, limit: int = MAX_PENDING) -> None:
        self.limit = limit
        self.pending = 0
        self._lock = threading.Lock()

    def enter(self) -> bool:
        with self._lock:
            if self.pending >= self.limit:
                return False
            self.pending += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self.pending -= 1


def parse_score_body(body: Any) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """(messages, generation parameters) from any accepted request shape."""
    params: dict[str, Any] = {}
    if isinstance(body, dict) and "input_data" in body:
        data = body["input_data"]
        if not isinstance(data, dict) or "input_string" not in data:
            raise BadRequest("input_data must be an object with input_string (a list of chat messages)")
        messages, params = data["input_string"], data.get("parameters") or {}
        if isinstance(messages, list) and messages and isinstance(messages[0], list):
            messages = messages[0]  # a list holding one conversation
    elif isinstance(body, dict) and "messages" in body:
        messages = body["messages"]
        params = {k: v for k, v in body.items() if k != "messages"}
        if "max_tokens" in params:
            params["max_new_tokens"] = params.pop("max_tokens")
    elif isinstance(body, list):
        messages = body
    else:
        raise BadRequest('expected {"input_data": {"input_string": [messages], "parameters": {...}}} or a message list')
    if not isinstance(messages, list) or not messages:
        raise BadRequest("the conversation must be a non-empty list of {role, content} messages")
    if len(messages) > MAX_MESSAGES:
        raise TooLarge(f"{len(messages)} messages; at most {MAX_MESSAGES} per request")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant") or not isinstance(m.get("content"), str):
            raise BadRequest(f'message {i} must be {{"role": system|user|assistant, "content": string}}')
    if not isinstance(params, dict):
        raise BadRequest("parameters must be an object")
    chars = sum(len(m["content"]) for m in messages)
    if chars > MAX_CONTENT_CHARS:
        raise TooLarge(f"the conversation holds {chars} characters; at most {MAX_CONTENT_CHARS} per request")
    return messages, params


class ChatModel:
    """A registered MLflow transformers model, loaded once, generating with the request's parameters."""

    def __init__(self, model_dir: str) -> None:
        import mlflow.transformers
        import torch

        components = mlflow.transformers.load_model(model_dir, return_type="components")
        self.model, self.tokenizer = components["model"], components["tokenizer"]
        self.model.eval()
        self._torch = torch
        self._lock = threading.Lock()  # one generation at a time: 2 cores do better serially

    def generate(self, messages: list[dict[str, str]], generation: dict[str, Any]) -> str:
        """Generate with arguments already checked by ``generation_params``."""
        return self.generate_counted(messages, generation)[0]

    def generate_counted(self, messages: list[dict[str, str]], generation: dict[str, Any]) -> tuple[str, int, int]:
        """The reply, and the prompt's and the reply's tokens (what a pay-per-token endpoint bills)."""
        kwargs = dict(generation)
        inputs = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        tokens = int(inputs["input_ids"].shape[1])
        if tokens > MAX_INPUT_TOKENS:
            raise TooLarge(f"the conversation is {tokens} tokens; at most {MAX_INPUT_TOKENS} per request")
        kwargs["pad_token_id"] = self.tokenizer.pad_token_id
        with self._lock, self._torch.inference_mode():
            out = self.model.generate(**inputs, **kwargs)
        new_tokens = out[0][inputs["input_ids"].shape[1] :]
        return str(self.tokenizer.decode(new_tokens, skip_special_tokens=True)).strip(), tokens, int(new_tokens.shape[0])


def read_stats(path: Path) -> tuple[dict[str, dict[str, Any]], float | None]:
    """The request counters a previous server left, and None; or, when the file cannot be read (truncated, another
    shape), fresh counters and the moment they were reset. The bad file is kept beside it for a person to read, and
    the reset counts as a request: an endpoint whose figures were lost is never taken for idle."""
    try:
        stats = read_json(path, {}) or {}
        deployments = stats.get("deployments", {}) if isinstance(stats, dict) else None
        if isinstance(deployments, dict) and all(
            isinstance(v, dict) and isinstance(v.get("requests", 0), int) for v in deployments.values()
        ):
            return deployments, (float(stats["reset_at"]) if isinstance(stats.get("reset_at"), int | float) else None)
    except (OSError, ValueError):
        pass
    with contextlib.suppress(OSError):
        path.replace(path.with_name(path.name + ".unreadable"))
    print(f"{path} cannot be read: request counters start again (the file is kept as {path.name}.unreadable)", file=sys.stderr)
    return {}, time.time()


class EndpointState:
    def __init__(self, endpoint_dir: Path) -> None:
        self.dir = endpoint_dir
        self.key = (endpoint_dir / "key").read_text().strip()
        self.models: dict[str, ChatModel] = {}
        self.traffic: dict[str, int] = {}
        self.stats, self.reset_at = read_stats(endpoint_dir / "stats.json")
        self._stats_lock = threading.Lock()
        self._dirty = False
        self.ready = False
        self.serverless = False

    def reload(self) -> list[str]:
        config = read_json(self.dir / "endpoint.json", {}) or {}
        self.serverless = config.get("kind") == "serverless"
        deployments = config.get("deployments", {})
        for name, dep in deployments.items():
            if name not in self.models or getattr(self.models[name], "_source", None) != dep["model_dir"]:
                model = ChatModel(dep["model_dir"])
                model._source = dep["model_dir"]  # type: ignore[attr-defined]
                self.models[name] = model
        for name in list(self.models):
            if name not in deployments:
                del self.models[name]
        self.traffic = {k: int(v) for k, v in config.get("traffic", {}).items() if k in self.models}
        self.ready = True
        return sorted(self.models)

    def pick(self, header: str | None) -> str | None:
        if header:
            return header if header in self.models else None
        weighted = [(k, v) for k, v in self.traffic.items() if v > 0]
        if not weighted:
            return None
        names, weights = zip(*weighted, strict=True)
        return random.choices(names, weights=weights)[0]

    def record(self, deployment: str, status: int, started: float) -> None:
        """Count one answered request: ``requests`` every one (the endpoint is in use), ``errors`` any that failed;
        and, for a scored one only (answered or failed by the deployment, ``base.scored_response``), ``scored``,
        ``failed`` (5xx, 429) and its latency in the histogram a rollout's hold reads (``gitops.backends.local.traffic``)."""
        latency_ms = (time.perf_counter() - started) * 1000
        with self._stats_lock:
            entry = self.stats.setdefault(deployment, {"requests": 0, "errors": 0, "last_request_at": None})
            entry.update(counters(entry) | {"requests": int(entry.get("requests", 0)), "errors": int(entry.get("errors", 0))})
            entry["requests"] += 1
            entry["errors"] += 0 if status == 200 else 1
            if scored_response(status):
                entry["scored"] += 1
                entry["failed"] += 1 if failed_response(status) else 0
                entry["latency_buckets"][bucket(latency_ms)] += 1
            entry["last_request_at"] = time.time()
            self._dirty = True

    def flush(self) -> None:
        with self._stats_lock:
            snapshot: dict[str, Any] = {"deployments": json.loads(json.dumps(self.stats)), "written_at": time.time()}
            if self.reset_at is not None:
                snapshot["reset_at"] = self.reset_at
            self._dirty = False
        write_json_atomic(self.dir / "stats.json", snapshot)

    def start_flusher(self) -> None:
        """Persist request stats at most once a second, off the request path."""

        def loop() -> None:
            while True:
                time.sleep(STATS_FLUSH_S)
                if self._dirty:
                    self.flush()

        threading.Thread(target=loop, name="stats-flusher", daemon=True).start()


def create_app(endpoint_dir: Path) -> Any:  # noqa: C901  (the app and its routes, defined together)
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    state = EndpointState(endpoint_dir)
    admission = Admission()
    app = FastAPI(title=f"finetune-gitops local endpoint {endpoint_dir.name}", docs_url=None, redoc_url=None)

    def error(status: int, code: str, message: str) -> JSONResponse:
        return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)

    def authorized(request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), state.key.encode())

    def authorized_raw_or_bearer(request: Request) -> bool:
        """The serverless contract: the raw key (the Azure docs), or ``Bearer <key>`` (the ``openai`` client)."""
        header = request.headers.get("authorization", "").strip()
        return hmac.compare_digest(header.encode(), state.key.encode()) or authorized(request)

    @app.on_event("startup")
    def _load() -> None:
        state.reload()
        state.start_flusher()

    @app.on_event("shutdown")
    def _flush() -> None:
        state.flush()

    @app.get("/")
    @app.get("/health/live")
    def live() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/health/ready")
    def ready(request: Request) -> Any:
        if not state.ready:
            return error(503, "NotReady", "models are loading")
        if not authorized(request):  # a probe learns that it is ready; what it serves is for the key's holder
            return {"status": "ready"}
        return {"status": "ready", "deployments": sorted(state.models), "traffic": state.traffic}

    @app.post("/admin/reload")
    def reload(request: Request) -> Any:
        if not authorized(request):
            return error(401, "Unauthorized", "missing or wrong key")
        return {"deployments": state.reload(), "traffic": state.traffic}

    async def body_of(request: Request) -> Any:
        """The request's JSON body within the limits, or the error to answer."""
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return error(413, "PayloadTooLarge", f"the body is {declared} bytes; at most {MAX_BODY_BYTES}")
        try:
            raw = await asyncio.wait_for(request.body(), BODY_TIMEOUT_S)
        except TimeoutError:
            return error(408, "RequestTimeout", f"the body did not arrive within {BODY_TIMEOUT_S:.0f}s")
        if len(raw) > MAX_BODY_BYTES:
            return error(413, "PayloadTooLarge", f"the body is over {MAX_BODY_BYTES} bytes")
        try:
            return json.loads(raw, parse_constant=_no_constant)
        except (ValueError, RecursionError):
            return error(400, "BadRequest", "the body is not valid JSON (NaN and Infinity are not numbers here)")

    async def generate(deployment: str, body: Any, openai: bool) -> Any:
        """One generation on ``deployment``, counted; (text, prompt tokens, completion tokens) or the error to answer."""
        started = time.perf_counter()
        try:
            messages, params = parse_score_body(body)
            if openai:
                if params.get("stream"):
                    raise BadRequest("stream: true is not supported by this endpoint; ask without it")
                params.setdefault("do_sample", float(params.get("temperature", 1.0)) > 0)
            generation = generation_params(params)  # refused before it waits for a turn
        except (BadRequest, TypeError, ValueError) as exc:
            status = exc.status if isinstance(exc, BadRequest) else 400
            state.record(deployment, status, started)
            return error(status, "PayloadTooLarge" if status == 413 else "BadRequest", str(exc))
        if not admission.enter():
            state.record(deployment, 503, started)
            return JSONResponse(
                {"error": {"code": "Busy", "message": f"{admission.limit} requests already in progress"}},
                status_code=503,
                headers={"Retry-After": "2"},
            )
        try:
            import anyio

            answer = await anyio.to_thread.run_sync(state.models[deployment].generate_counted, messages, generation)
        except BadRequest as exc:
            state.record(deployment, exc.status, started)
            return error(exc.status, "PayloadTooLarge" if exc.status == 413 else "BadRequest", str(exc))
        except Exception as exc:  # noqa: BLE001  (the model failed: counted against the deployment, answered as a 500)
            state.record(deployment, 500, started)
            return error(500, "ModelError", f"the model failed: {type(exc).__name__}")
        finally:
            admission.leave()
        state.record(deployment, 200, started)
        return answer

    @app.post("/score")
    async def score(request: Request) -> Any:
        if state.serverless:
            return error(404, "NotFound", "a serverless endpoint answers POST /v1/chat/completions")
        if not authorized(request):
            return error(401, "Unauthorized", "send 'Authorization: Bearer <endpoint key>'")
        body = await body_of(request)
        if isinstance(body, JSONResponse):
            return body
        target = request.headers.get("azureml-model-deployment")
        deployment = state.pick(target)
        if deployment is None:
            if target:
                have = ", ".join(sorted(state.models)) or "none"
                return error(404, "DeploymentNotFound", f"no deployment named '{target}'; have: {have}")
            return error(503, "NoTraffic", "no deployment receives traffic")
        answer = await generate(deployment, body, openai=False)
        if isinstance(answer, JSONResponse):
            return answer
        return JSONResponse({"output": answer[0]}, headers={"azureml-model-deployment": deployment})

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Any:
        if not state.serverless:
            return error(404, "NotFound", "a managed online endpoint answers POST /score")
        if not authorized_raw_or_bearer(request):
            return error(401, "Unauthorized", "send 'Authorization: <endpoint key>' (or 'Bearer <endpoint key>')")
        body = await body_of(request)
        if isinstance(body, JSONResponse):
            return body
        if not isinstance(body, dict) or "messages" not in body:
            return error(400, "BadRequest", 'expected an OpenAI chat body: {"messages": [{"role": ..., "content": ...}], ...}')
        deployment = state.pick(None)
        if deployment is None:
            return error(503, "NoModel", "the endpoint serves no model yet")
        answer = await generate(deployment, body, openai=True)
        if isinstance(answer, JSONResponse):
            return answer
        text, prompt_tokens, completion_tokens = answer
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens}
        return {
            "id": f"chatcmpl-{os.urandom(12).hex()}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": endpoint_dir.name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": usage,
        }

    return app


def bounded_protocol() -> Any:
    """uvicorn's h11 protocol with a deadline for each request's head. uvicorn closes a keep-alive connection that
    stays quiet after an answer, but a socket that never sends, or trickles its headers a byte at a time, it keeps
    forever: here the deadline runs from the connection (or the last answer) and is not reset by trickled bytes."""
    import asyncio

    from uvicorn.protocols.http.h11_impl import H11Protocol

    class BoundedH11Protocol(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None
        _waiting_after: object = None  # the cycle that was current when the deadline was set

        def _await_head(self) -> None:
            self._stop_head_timer()
            self._waiting_after = self.cycle
            self._head_timer = self.loop.call_later(HEAD_TIMEOUT_S, self._head_timed_out)

        def _stop_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if self.cycle is self._waiting_after and not self.transport.is_closing():
                self.transport.close()  # no new request began in time: idle, or a head trickled past its deadline

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._await_head()

        def handle_events(self) -> None:
            super().handle_events()
            if self._head_timer is not None and self.cycle is not self._waiting_after:
                self._stop_head_timer()  # a request's head arrived: the app (and BODY_TIMEOUT_S) takes it from here

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._await_head()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_head_timer()
            super().connection_lost(exc)

    return BoundedH11Protocol


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def main(argv: list[str]) -> int:
    import uvicorn

    endpoint_dir = Path(argv[0]).resolve()
    port = int(argv[1])
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    uvicorn.run(create_app(endpoint_dir), host="127.0.0.1", port=port, log_level="warning", access_log=False, http=bounded_protocol())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
