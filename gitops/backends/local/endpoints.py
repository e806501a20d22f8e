"""Local endpoints: one server process per endpoint on 127.0.0.1, its config, key and stats on disk."""

from __future__ import annotations

import builtins
import fcntl
import logging
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import requests

from gitops.backends.base import DeploymentInfo, EndpointInfo, EndpointState, InvokeResult, Provisioning, ServerlessInfo, Usage
from gitops.backends.local import processes
from gitops.backends.local.workspace import LocalWorkspace
from gitops.errors import BackendError, ConflictError, CorruptRecordError, NotFoundError, UnreachableError
from gitops.util.files import read_json, write_json_atomic, write_secret

log = logging.getLogger(__name__)
T = TypeVar("T")
SERVER_MODULE = "gitops.backends.local.server"
START_TIMEOUT_S = 120.0
# A running server that does not answer its liveness route this fast is stuck (a wedged process, SIGSTOP, a
# deadlock): it reads as down, and starting the endpoint again replaces it. The route does no work, so a
# busy server answers it in milliseconds; generation is admitted in bounded numbers and never starves it.
PROBE_TIMEOUT_S = 3.0
_START_LOCKS: dict[str, threading.Lock] = {}  # flock is per open file: a process's threads queue here first
_START_LOCKS_GUARD = threading.Lock()


def _free_port(wanted: object = None, patience_s: float = 1.0) -> int:
    """``wanted`` (the port an endpoint had) while nothing else holds it, so the URL and the curl line printed before
    keep working across restarts; else any free port. A server killed a moment ago holds its port until the kernel
    has closed its socket: that is waited for, ``patience_s`` at most."""
    port = wanted if isinstance(wanted, int) and 1024 <= wanted <= 65535 else 0
    deadline = time.monotonic() + patience_s
    while True:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no holder
            try:
                s.bind(("127.0.0.1", port))
                return int(s.getsockname()[1])
            except OSError:  # held: by the server that just died, or by someone else
                if time.monotonic() >= deadline:
                    port = 0
                else:
                    time.sleep(0.05)


class LocalEndpoints:
    """``provisioning_delay_s`` makes a new deployment read ``creating`` for that long on ``clock`` (loading a tiny
    model takes a second here; Azure takes ten minutes and more), so the lifecycle's waits can be exercised."""

    def __init__(self, ws: LocalWorkspace, provisioning_delay_s: float = 0.0, clock: Callable[[], float] = time.time) -> None:
        self.ws = ws
        self.provisioning_delay_s = provisioning_delay_s
        self.clock = clock

    def _dep_info(self, name: str, dep: dict[str, Any], alive: bool) -> DeploymentInfo:
        ready = self.clock() >= float(dep.get("ready_at", 0))
        return DeploymentInfo(
            name,
            dep["model_uri"],
            healthy=alive and ready,
            created_at=datetime.fromtimestamp(dep["created_at"], UTC),
            state=Provisioning.SUCCEEDED if ready else Provisioning.CREATING,
        )

    # -- records ------------------------------------------------------------------------------
    def _config(self, name: str) -> dict[str, Any] | None:
        path = self.ws.endpoint_dir(name) / "endpoint.json"
        try:
            data = read_json(path)
        except (OSError, ValueError) as exc:
            raise CorruptRecordError(
                f"endpoint config {path} cannot be read: {type(exc).__name__}",
                hint=f"delete the endpoint (gitops cleanup, or remove {path.parent}) and deploy again",
            ) from None
        if data is None:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("deployments", {}), dict):
            raise CorruptRecordError(
                f"endpoint config {path} cannot be read: not an endpoint config",
                hint=f"delete the endpoint (remove {path.parent}) and deploy again",
            )
        return dict(data)

    def _save(self, name: str, config: dict[str, Any]) -> None:
        write_json_atomic(self.ws.endpoint_dir(name) / "endpoint.json", config)

    def key(self, name: str) -> str:
        """The endpoint's key: read only when a request needs it; never logged."""
        try:
            return (self.ws.endpoint_dir(name) / "key").read_text().strip()
        except FileNotFoundError as exc:
            raise NotFoundError(f"endpoint '{name}' does not exist") from exc

    def _alive(self, name: str, config: dict[str, Any]) -> bool:
        return processes.is_running(config.get("pid"), self._marker(name))

    def _marker(self, name: str) -> str:
        """What the server's command line holds: its folder and the space before its port (``ep`` is not ``ep2``)."""
        return f"{self.ws.endpoint_dir(name)} "

    @staticmethod
    def _answers(config: dict[str, Any]) -> bool:
        """Whether the server answers its liveness route (its process may run and still be stuck)."""
        try:
            return requests.get(f"http://127.0.0.1:{config.get('port')}/health/live", timeout=PROBE_TIMEOUT_S).status_code == 200
        except requests.RequestException:
            return False

    def _up(self, name: str, config: dict[str, Any]) -> tuple[bool, bool]:
        """(process running, answering): running and not answering is a stuck server."""
        alive = self._alive(name, config)
        return alive, alive and self._answers(config)

    def info(self, name: str, kind: str = "managed") -> EndpointInfo | None:
        """The endpoint as a managed online endpoint (``kind``: a serverless one is looked up as such, as Azure keeps
        the two apart: a name of the other kind is None here)."""
        config = self._config(name)
        if config is None or config.get("kind", "managed") != kind:
            return None
        _, up = self._up(name, config)
        deployments = tuple(self._dep_info(d, dep, up) for d, dep in sorted(config.get("deployments", {}).items()))
        port = config.get("port")  # absent until the server first started
        created = config.get("created_at")
        return EndpointInfo(
            name=name,
            scoring_uri=f"http://127.0.0.1:{port}/score" if port else "",
            tags=config.get("tags", {}),
            traffic=config.get("traffic", {}),
            deployments=deployments,
            created_at=datetime.fromtimestamp(created, UTC) if isinstance(created, int | float) else None,
            log_path=str(self.ws.endpoint_dir(name) / "server.log"),
        )

    def list(self, kind: str = "managed") -> list[EndpointInfo]:
        """Every readable endpoint of ``kind``; one whose config cannot be read is logged and left out (and so never
        deleted)."""
        return self._each(lambda name: self.info(name, kind))

    def _each(self, read: Callable[[str], T | None]) -> builtins.list[T]:
        """What ``read`` makes of each endpoint folder (None: not of the kind asked); unreadable ones logged, left out."""
        out = []
        root = self.ws.root / "endpoints"
        for path in sorted(root.iterdir() if root.is_dir() else ()):
            if not path.is_dir():
                continue
            try:
                found = read(path.name)
            except CorruptRecordError as exc:
                log.warning("%s (skipped)", exc.headline)
                continue
            if found is not None:
                out.append(found)
        return out

    # -- process ------------------------------------------------------------------------------
    @contextmanager
    def _single_flight(self, name: str) -> Iterator[None]:
        """One start at a time per endpoint, across processes (four reconciles at once start one server): an
        exclusive ``flock`` on a file beside its config, held while the server is started and until it answers."""
        ep_dir = self.ws.endpoint_dir(name)
        ep_dir.mkdir(parents=True, exist_ok=True)
        with _START_LOCKS_GUARD:
            in_process = _START_LOCKS.setdefault(str(ep_dir), threading.Lock())
        with in_process, (ep_dir / ".start.lock").open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _start(self, name: str, config: dict[str, Any]) -> None:
        """Start the endpoint's server unless one answers; ``config`` gets the pid and port of the one that serves.
        Under the endpoint's lock the config is read again: a server another process started meanwhile is used."""
        with self._single_flight(name):
            current = self._config(name) or config
            alive, up = self._up(name, current)
            if not up:
                self._spawn(name, current, stuck=alive)
            config.update(pid=current.get("pid"), port=current.get("port"))

    def _spawn(self, name: str, config: dict[str, Any], stuck: bool) -> None:
        ep_dir = self.ws.endpoint_dir(name)
        if stuck:  # running, not answering: replaced, or it would hold its port and memory while serving nobody
            log.warning("endpoint %s: its server (pid %s) is stuck; starting a new one", name, config.get("pid"))
        self._stop_all(name, config)  # the stuck one, and any a record lost: one server per endpoint
        config["port"] = _free_port(config.get("port"))
        proc = processes.spawn(["-m", SERVER_MODULE, str(ep_dir), str(config["port"])], ep_dir / "server.log")
        config["pid"] = proc.pid
        self._save(name, config)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            # poll() of our own child: /proc's command line lags behind exec for a moment after spawn
            if proc.poll() is not None:
                raise BackendError(f"endpoint '{name}' server exited at start", hint=f"see {ep_dir / 'server.log'}")
            try:
                if requests.get(f"http://127.0.0.1:{config['port']}/health/ready", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise BackendError(f"endpoint '{name}' did not become ready in {START_TIMEOUT_S:.0f}s", hint=f"see {ep_dir / 'server.log'}")

    def _stop_all(self, name: str, config: dict[str, Any] | None) -> None:
        """Stop the server the config names and every other server of this endpoint's folder."""
        marker = self._marker(name)
        pids = {pid for pid, where in self.processes() if where.name == name}
        for pid in sorted({*pids, *([config["pid"]] if config and config.get("pid") else [])}):
            processes.stop(pid, marker, timeout_s=5.0)

    def processes(self) -> Sequence[tuple[int, Path]]:
        """Every endpoint server of this workspace that runs now, as (pid, endpoint folder)."""
        return processes.find(SERVER_MODULE, self.ws.root / "endpoints")

    def orphans(self) -> Sequence[tuple[int, str]]:
        """Servers of this workspace that no endpoint config names: (pid, endpoint folder name). A lost start race,
        a folder removed by hand, a config rewritten: each still holds memory and answers with the key it loaded."""
        out = []
        for pid, where in self.processes():
            try:
                config = self._config(where.name)
            except CorruptRecordError:
                config = None
            if config is None or config.get("pid") != pid:
                out.append((pid, where.name))
        return out

    def stop_orphan(self, pid: int, endpoint: str) -> None:
        processes.stop(pid, self._marker(endpoint), timeout_s=5.0)

    def _reload(self, name: str, config: dict[str, Any]) -> None:
        if not self._up(name, config)[1]:  # down or stuck: a new server loads the config as it starts
            self._start(name, config)
            return
        resp = requests.post(
            f"http://127.0.0.1:{config['port']}/admin/reload", headers={"Authorization": f"Bearer {self.key(name)}"}, timeout=300
        )
        if resp.status_code != 200:
            raise BackendError(
                f"endpoint '{name}' could not load its deployments ({resp.status_code})",
                hint=f"see {self.ws.endpoint_dir(name) / 'server.log'}",
            )

    # -- operations (all idempotent) -------------------------------------------------------------
    def ensure(self, name: str, tags: dict[str, str], kind: str = "managed") -> EndpointInfo:
        ep_dir = self.ws.endpoint_dir(name)
        config = self._config(name)
        if config is not None and config.get("kind", "managed") != kind:
            taken = config.get("kind", "managed")
            raise ConflictError(f"the name '{name}' is taken by a {taken} endpoint", hint="use another endpoint name")
        if config is None:
            ep_dir.mkdir(parents=True, exist_ok=True)
            write_secret(ep_dir / "key", secrets.token_urlsafe(32))
            config = {"name": name, "kind": kind, "tags": dict(tags), "deployments": {}, "traffic": {}, "created_at": time.time()}
            self._save(name, config)
        elif tags and {**config.get("tags", {}), **tags} != config.get("tags"):
            config["tags"] = {**config.get("tags", {}), **tags}
            self._save(name, config)
        self._start(name, config)
        info = self.info(name, kind)
        assert info is not None
        return info

    # -- serverless endpoints: one model each, at all the traffic, on the serverless contract ---------------------
    SERVERLESS_MODEL = "model"  # the one deployment a serverless endpoint's server loads

    def serverless(self, name: str, model_uri: str, model_dir: Path, tags: dict[str, str]) -> ServerlessInfo:
        config = self._config(name)
        if config is not None and config.get("kind") == "serverless":
            serving = (config.get("deployments") or {}).get(self.SERVERLESS_MODEL, {}).get("model_uri")
            if serving not in (None, model_uri):
                raise ConflictError(
                    f"serverless endpoint '{name}' serves {serving}; one endpoint serves one model",
                    hint="a new version gets a serverless endpoint of its own",
                )
        self.ensure(name, tags, kind="serverless")
        config = self._config(name) or {}
        deps = config.setdefault("deployments", {})
        if self.SERVERLESS_MODEL not in deps:
            deps[self.SERVERLESS_MODEL] = {
                "model_uri": model_uri,
                "model_dir": str(model_dir),
                "created_at": time.time(),
                "ready_at": self.clock() + self.provisioning_delay_s,
            }
            config["traffic"] = {self.SERVERLESS_MODEL: 100}  # no split: the one model takes every request
            self._save(name, config)
            self._reload(name, config)
        found = self.serverless_info(name)
        assert found is not None
        return found

    def serverless_info(self, name: str) -> ServerlessInfo | None:
        config = self._config(name)
        if config is None or config.get("kind") != "serverless":
            return None
        _, up = self._up(name, config)
        dep = (config.get("deployments") or {}).get(self.SERVERLESS_MODEL)
        ready = dep is not None and self.clock() >= float(dep.get("ready_at", 0))
        port, created = config.get("port"), config.get("created_at")
        return ServerlessInfo(
            name=name,
            model_id=dep["model_uri"] if dep else "",
            scoring_uri=f"http://127.0.0.1:{port}" if port else "",
            tags=config.get("tags", {}),
            state=Provisioning.SUCCEEDED if ready else Provisioning.CREATING,
            endpoint_state=EndpointState.ONLINE if ready else EndpointState.CREATING,
            created_at=datetime.fromtimestamp(created, UTC) if isinstance(created, int | float) else None,
            healthy=up and ready,
        )

    def list_serverless(self) -> builtins.list[ServerlessInfo]:
        return self._each(self.serverless_info)

    def invoke_serverless(self, name: str, body: Any, timeout_s: float) -> InvokeResult:
        found = self.serverless_info(name)
        if found is None:
            raise NotFoundError(f"serverless endpoint '{name}' does not exist")
        # The raw key, as the serverless docs show it (the server takes "Bearer <key>" too, as the openai client sends)
        headers = {"Authorization": self.key(name), "Content-Type": "application/json"}
        start = time.perf_counter()
        try:
            resp = requests.post(f"{found.scoring_uri}/v1/chat/completions", json=body, headers=headers, timeout=timeout_s)
        except requests.RequestException as exc:
            raise UnreachableError(f"serverless endpoint '{name}' did not answer: {type(exc).__name__}") from exc
        return InvokeResult(resp.status_code, resp.text, (time.perf_counter() - start) * 1000)

    def add_deployment(self, endpoint: str, deployment: str, model_uri: str, model_dir: Path) -> DeploymentInfo:
        config = self._config(endpoint)
        if config is None:
            raise NotFoundError(f"endpoint '{endpoint}' does not exist")
        deps = config.setdefault("deployments", {})
        if deps.get(deployment, {}).get("model_uri") != model_uri:
            deps[deployment] = {
                "model_uri": model_uri,
                "model_dir": str(model_dir),
                "created_at": time.time(),
                "ready_at": self.clock() + self.provisioning_delay_s,
            }
        config.setdefault("traffic", {}).setdefault(deployment, 0)
        self._save(endpoint, config)
        self._reload(endpoint, config)
        return self._dep_info(deployment, deps[deployment], alive=True)

    def deployment(self, endpoint: str, deployment: str) -> DeploymentInfo | None:
        info = self.info(endpoint)
        return None if info is None else info.deployment(deployment)

    def set_traffic(self, endpoint: str, traffic: dict[str, int]) -> EndpointInfo:
        config = self._config(endpoint)
        if config is None:
            raise NotFoundError(f"endpoint '{endpoint}' does not exist")
        unknown = set(traffic) - set(config.get("deployments", {}))
        if unknown:
            raise NotFoundError(f"no deployment {', '.join(sorted(unknown))} on endpoint '{endpoint}'")
        provisioning = [d for d, pct in traffic.items() if pct > 0 and self.clock() < float(config["deployments"][d].get("ready_at", 0))]
        if provisioning:  # as Azure: traffic goes only to a deployment that finished provisioning
            raise ConflictError(f"deployment {', '.join(provisioning)} on '{endpoint}' is still provisioning")
        total = sum(traffic.values())
        if any(v < 0 for v in traffic.values()) or total not in (0, 100):
            raise ConflictError(f"traffic must add up to 100 (or 0), got {total}")
        config["traffic"] = {d: int(traffic.get(d, 0)) for d in config["deployments"]}
        self._save(endpoint, config)
        self._reload(endpoint, config)
        info = self.info(endpoint)
        assert info is not None
        return info

    def delete_deployment(self, endpoint: str, deployment: str) -> None:
        config = self._config(endpoint)
        if config is None or deployment not in config.get("deployments", {}):
            return
        if config.get("traffic", {}).get(deployment, 0) > 0:
            raise ConflictError(
                f"deployment '{deployment}' still takes {config['traffic'][deployment]}% of traffic", hint="shift its traffic away first"
            )
        del config["deployments"][deployment]
        config.get("traffic", {}).pop(deployment, None)
        self._save(endpoint, config)
        if self._alive(endpoint, config):
            self._reload(endpoint, config)
        shutil.rmtree(self.ws.endpoint_dir(endpoint) / "models" / deployment, ignore_errors=True)

    def delete(self, name: str) -> None:
        try:
            config = self._config(name)
        except CorruptRecordError:
            config = None  # an unreadable config still has its servers found and stopped
        self._stop_all(name, config)
        shutil.rmtree(self.ws.endpoint_dir(name), ignore_errors=True)

    def start(self, name: str) -> None:
        """The endpoint's server started unless one answers (either kind of endpoint)."""
        config = self._config(name)
        if config is None:
            raise NotFoundError(f"endpoint '{name}' does not exist")
        self._start(name, config)

    def stop(self, name: str) -> None:
        config = self._config(name)
        if config is not None:
            self._stop_all(name, config)

    def server(self, name: str) -> dict[str, Any] | None:
        """The endpoint's server process as the operator sees it: pid, port, up or not, resident memory (MiB)."""
        config = self._config(name)
        if config is None:
            return None
        alive, up = self._up(name, config)
        return {
            "pid": config.get("pid") if alive else None,
            "port": config.get("port"),
            "up": up,
            "stuck": alive and not up,
            "rss_mib": processes.resident_mib(config.get("pid")) if alive else None,
        }

    def invoke(self, endpoint: str, payload: Any, deployment: str | None, timeout_s: float) -> InvokeResult:
        info = self.info(endpoint)
        if info is None:
            raise NotFoundError(f"endpoint '{endpoint}' does not exist")
        headers = {"Authorization": f"Bearer {self.key(endpoint)}", "Content-Type": "application/json"}
        if deployment:
            headers["azureml-model-deployment"] = deployment
        start = time.perf_counter()
        try:
            resp = requests.post(info.scoring_uri, json=payload, headers=headers, timeout=timeout_s)
        except requests.RequestException as exc:
            raise UnreachableError(f"endpoint '{endpoint}' did not answer: {type(exc).__name__}") from exc
        return InvokeResult(resp.status_code, resp.text, (time.perf_counter() - start) * 1000)

    def traffic_counters(self, name: str, deployment: str) -> dict[str, Any] | None:
        """The deployment's request counters as the server last flushed them (about once a second); None when the
        figures cannot be read."""
        from gitops.backends.local.traffic import counters

        try:
            stats = read_json(self.ws.endpoint_dir(name) / "stats.json", {}) or {}
            return counters((stats.get("deployments") or {}).get(deployment))
        except (OSError, ValueError, TypeError, AttributeError):
            return None

    def usage(self, name: str) -> Usage:
        """Requests since the server began counting (either kind of endpoint: a serverless one's model is its one
        deployment)."""
        if self._config(name) is None:
            return Usage(name, known=False)
        try:
            stats = read_json(self.ws.endpoint_dir(name) / "stats.json", {}) or {}
            deps = stats.get("deployments", {})
            # A server that found its counters unreadable reset them: that moment counts as a request.
            last = max([float(d.get("last_request_at") or 0) for d in deps.values()] + [float(stats.get("reset_at") or 0)])
            return Usage(
                name,
                known=True,
                requests=sum(int(d.get("requests", 0)) for d in deps.values()),
                last_request_at=datetime.fromtimestamp(last, UTC) if last else None,
            )
        except (OSError, ValueError, TypeError, AttributeError, OverflowError):  # unreadable figures are unknown, never idle
            return Usage(name, known=False)
