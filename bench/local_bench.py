"""Benchmark of the local backend, with its baselines measured in the same run.

1. Fine-tune throughput (tokens/s): our job wrapper (``pipelines.local_finetune.run_finetune``: MLflow
   logging, progress callback) against a plain trl ``SFTTrainer`` run of the same configuration.
   Target: within 10% (the wrapper adds no overhead).
2. Serving: request throughput and p50/p99 latency of our endpoint under a bounded loopback load,
   against ``mlflow models serve`` serving the same registered model. Target: at least as fast.

Run: ``.venv/bin/python bench/local_bench.py`` (a few minutes on 2 cores; loopback only).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from gitops.backends.local.backend import LocalBackend  # noqa: E402
from gitops.backends.local.endpoints import _free_port  # noqa: E402
from gitops.backends.local.models import bootstrap, download  # noqa: E402
from pipelines.local_finetune import FinetuneRequest, build_trainer, count_tokens, run_finetune  # noqa: E402
from pipelines.synth import write_dataset  # noqa: E402

PARAMS = {
    "max_steps": 60,
    "per_device_train_batch_size": 8,
    "learning_rate": 3e-3,
    "apply_lora": "true",
    "lora_alpha": 16,
    "max_seq_length": 256,
    "logging_steps": 10,
    "evaluation_strategy": "disable",
}
REQUESTS, CONCURRENCY, NEW_TOKENS = 60, 2, 16
PROMPT = [{"role": "user", "content": "Tell me about the ocean."}]


def load(url: str, body: dict, headers: dict) -> tuple[float, list[float]]:
    """Bounded load: REQUESTS requests, CONCURRENCY at a time; returns (req/s, latencies ms)."""

    def one(_: int) -> float:
        start = time.perf_counter()
        resp = requests.post(url, json=body, headers=headers, timeout=60)
        resp.raise_for_status()
        return (time.perf_counter() - start) * 1000

    for i in range(4):
        one(i)  # warm-up
    start = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        latencies = list(pool.map(one, range(REQUESTS)))
    return REQUESTS / (time.perf_counter() - start), latencies


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(len(values) * q))]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = write_dataset(root / "data", rows=480, test_rows=16)
        backend = LocalBackend(root / "ws")
        base = bootstrap(backend.ws)
        base_dir = download(backend.ws, base.uri, root / "base")

        def request(name: str) -> FinetuneRequest:
            return FinetuneRequest(
                job_name=name,
                base_model_dir=str(base_dir),
                train_path=str(data["train_sft"]),
                test_path=None,
                output_dir=str(root / name),
                params=PARAMS,
                tracking_uri=backend.ws.tracking_uri,
            )

        # Warm-up: the first training in a process pays one-off costs (thread pools, allocator) that
        # would otherwise be charged to whichever contender runs first.
        warm = request("warm-up")
        warm.params = {**PARAMS, "max_steps": 10}
        build_trainer(warm).train()

        plain = build_trainer(request("plain"))
        tokens = count_tokens(plain)
        start = time.perf_counter()
        plain.train()
        plain_s = time.perf_counter() - start
        steps = plain.state.global_step
        seen_plain = tokens * steps * PARAMS["per_device_train_batch_size"] / len(plain.train_dataset)

        ours = run_finetune(request("ours"))
        seen_ours = seen_plain  # same data, same steps, same batch: the same tokens
        plain_tps, ours_tps = seen_plain / plain_s, seen_ours / ours.train_seconds
        print(
            f"fine-tune: plain SFTTrainer {plain_tps:,.0f} tokens/s; ours {ours_tps:,.0f} tokens/s "
            f"({steps} steps) ratio ours/plain {ours_tps / plain_tps:.2f}  target >= 0.90  "
            f"{'OK' if ours_tps / plain_tps >= 0.9 else 'MISSED'}"
        )

        import mlflow

        mlflow.set_tracking_uri(backend.ws.tracking_uri)
        mv = mlflow.register_model(ours.model_uri, "bench-model")
        from gitops.backends.base import RegisteredModel
        from gitops.spec.validate import validate_text

        spec = validate_text(
            "name: bench\nbackend: local\nmodel: {registry: local, name: tiny-phi3}\ndata: {train_path: x.jsonl}\n", "bench.yaml"
        ).require()
        registered = RegisteredModel("bench-model", str(mv.version), f"models:/bench-model/{mv.version}")
        backend.begin_endpoint("bench-ep", {})
        backend.begin_deployment("bench-ep", "blue", registered, spec)
        info = backend.begin_traffic("bench-ep", {"blue": 100})
        ours_rps, ours_lat = load(
            info.scoring_uri,
            {"input_data": {"input_string": PROMPT, "parameters": {"max_new_tokens": NEW_TOKENS, "do_sample": False}}},
            {"Authorization": f"Bearer {backend.endpoints.key('bench-ep')}"},
        )
        backend.delete_endpoint("bench-ep")
        print(f"serving ours: {ours_rps:.1f} req/s  p50 {statistics.median(ours_lat):.1f} ms  p99 {pct(ours_lat, 0.99):.1f} ms", flush=True)

        port = _free_port()
        # mlflow execs `uvicorn` by name: the interpreter's bin directory must be on PATH
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": backend.ws.tracking_uri,
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        }
        serve = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "models",
                "serve",
                "-m",
                registered.uri,
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-w",
                "1",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(root / "mlflow-serve.log").open("wb"),
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                try:
                    if requests.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code == 200:
                        break
                except requests.RequestException:
                    time.sleep(0.5)
            else:
                print((root / "mlflow-serve.log").read_text()[-3000:])
                raise SystemExit("mlflow models serve did not come up in 180 s; its log is above")
            mlf_rps, mlf_lat = load(f"http://127.0.0.1:{port}/invocations", {"messages": PROMPT, "max_tokens": NEW_TOKENS}, {})
        finally:
            os.killpg(serve.pid, 15)
        print(f"serving ({REQUESTS} requests, {CONCURRENCY} concurrent, {NEW_TOKENS} new tokens):")
        print(f"  ours:               {ours_rps:6.1f} req/s  p50 {statistics.median(ours_lat):6.1f} ms  p99 {pct(ours_lat, 0.99):6.1f} ms")
        print(f"  mlflow models serve {mlf_rps:6.1f} req/s  p50 {statistics.median(mlf_lat):6.1f} ms  p99 {pct(mlf_lat, 0.99):6.1f} ms")
        print(f"  ratio ours/mlflow throughput {ours_rps / mlf_rps:.2f}  target >= 1.0  {'OK' if ours_rps >= mlf_rps else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
