"""Local endpoints you can manage: ``gitops endpoints``, ``gitops start``, ``gitops stop``, ``gitops delete``.

The embedded local backend runs each endpoint as a server process on 127.0.0.1 that outlives the command that
started it; these commands list them (URL, pid, health, memory) and start, stop or delete them by run or endpoint
name. Managed endpoints in Azure are stopped by deleting them, which cleanup does by policy.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Optional

import typer

from gitops.cli.app import app
from gitops.spec import naming


def _local() -> tuple[Any, Any]:
    """The local lifecycle and its backend, which runs its endpoints' servers (``RunsServers``)."""
    from gitops.lifecycle.wiring import local_lifecycle

    lifecycle = local_lifecycle()
    return lifecycle, _runs_servers(lifecycle.backend_for("local"))


def _runs_servers(backend: Any) -> Any:
    from gitops.backends.base import RunsServers
    from gitops.errors import UnsupportedError

    if not isinstance(backend, RunsServers):
        raise UnsupportedError(f"the {backend.name} backend runs no endpoint servers of its own")
    return backend


def _endpoint_of(name: str, env: str | None) -> tuple[Any, Any, str, str | None]:
    """(lifecycle, backend, endpoint, record key) for a run name (its state in ``env``, a later environment, in that
    environment's workspace) or an endpoint name of this workspace; NotFoundError naming both when neither is known."""
    from gitops.errors import NotFoundError
    from gitops.ledger.model import environment_key

    lifecycle, backend = _local()
    got = lifecycle.ledger.get(environment_key(name, env)) if name else None
    if got is not None and got[0].endpoint and got[0].backend == backend.name:  # a run of the backend asked
        # what serves: the managed endpoint, or the serverless endpoint of the version that serves
        return lifecycle, _runs_servers(lifecycle.backend_of(got[0])), got[0].serving_endpoint or got[0].endpoint, got[0].key
    info = backend.get_endpoint(name) or backend.get_serverless(name) if env is None else None
    if info is not None:
        return lifecycle, backend, name, info.tags.get(naming.TAG_RUN)
    where = f" in {env}" if env else ""
    raise NotFoundError(f"no local run{where} or endpoint named '{name}'", hint="`gitops status` and `gitops endpoints` list them")


ENV_OPTION = typer.Option(None, "--env", help="A later environment of gitops.yaml: the run's endpoint there.")


@app.command()
def endpoints(stop_all: bool = typer.Option(False, "--stop-all", help="Stop every local endpoint server (make clean does).")) -> None:
    """The local endpoints: run, scoring URL, server pid, health and memory; and servers no record names."""
    lifecycle, backend = _local()
    infos = [*backend.list_endpoints(), *backend.list_serverless()]  # managed, then serverless endpoints
    orphans = backend.orphan_servers()
    if stop_all:
        for info in infos:
            backend.stop_server(info.name)
        for pid, folder in backend.orphan_servers():  # read again: stopping an endpoint stops its strays too
            backend.stop_orphan_server(pid, folder)
        strays = f" and {len(orphans)} orphan server(s) no record names" if orphans else ""
        print(f"stopped {len(infos)} local endpoint server(s){strays}" if infos or orphans else "no local endpoints")
        return
    if not infos and not orphans:
        print("no local endpoints: `gitops run runs/local-tiny.yaml` deploys one")
        return
    rows = [("endpoint", "run", "url", "pid", "health", "memory")]
    for info in infos:
        server = backend.server(info.name) or {}
        memory = f"{server['rss_mib']:.0f} MiB" if server.get("rss_mib") else "-"
        health = (
            "up"
            if server.get("up")
            else "STUCK (running, not answering: gitops start NAME replaces it)"
            if server.get("stuck")
            else "DOWN (gitops start NAME)"
        )
        rows.append((info.name, info.tags.get(naming.TAG_RUN, "-"), info.scoring_uri or "-", str(server.get("pid") or "-"), health, memory))
    for pid, folder in orphans:
        rows.append((folder, "-", "-", str(pid), "ORPHAN (no record names this server: gitops endpoints --stop-all stops it)", "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    sys.stdout.write("".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n" for r in rows))


@app.command()
def start(name: str = typer.Argument(..., help="A run or endpoint name."), env: Optional[str] = ENV_OPTION) -> None:
    """Start a local endpoint's server again (after `gitops stop`, a reboot, or a crash)."""
    lifecycle, backend, endpoint, run = _endpoint_of(name, env)
    backend.start_server(endpoint)
    _mark_stopped(lifecycle, run, None)
    found = backend.get_endpoint(endpoint) or backend.get_serverless(endpoint)
    print(f"{endpoint}: up at {found.scoring_uri if found else '?'}")


@app.command()
def stop(name: str = typer.Argument(..., help="A run or endpoint name."), env: Optional[str] = ENV_OPTION) -> None:
    """Stop a local endpoint's server; its deployments stay (`gitops start` brings it back)."""
    lifecycle, backend, endpoint, run = _endpoint_of(name, env)
    _mark_stopped(lifecycle, run, time.time())  # first: a reconcile between the two never takes it for dead
    backend.stop_server(endpoint)
    again = f"gitops start {name}" + (f" --env {env}" if env else "")
    print(f"{endpoint}: stopped; it stays down until `{again}` (reconcile leaves it alone)")


def _mark_stopped(lifecycle: Any, run: str | None, at: float | None) -> None:
    """Record on the run that a person stopped its endpoint's server (``at``), or started it again (None)."""
    from gitops.ledger.model import HistoryEntry, update

    if not run or lifecycle.ledger.get(run) is None:
        return
    note = "endpoint server stopped by gitops stop" if at is not None else "endpoint server started by gitops start"

    def mark(r: Any) -> Any:
        if (r.stopped_at is None) == (at is None):
            return None
        entry = HistoryEntry(at=time.time(), status=r.status, note=note)
        return r.model_copy(update={"stopped_at": at, "history": [*r.history, entry]})

    update(lifecycle.ledger, run, mark)


@app.command()
def delete(name: str = typer.Argument(..., help="A run or endpoint name."), env: Optional[str] = ENV_OPTION) -> None:
    """Delete a local endpoint and its server; its run is recorded as retired there (a later submit, or in a later
    environment a release, brings it back). Nothing in another environment changes."""
    from gitops.errors import ConflictError
    from gitops.ledger.model import update
    from gitops.ownership import claim_endpoint, refusal_hint

    lifecycle, backend, endpoint, run = _endpoint_of(name, env)
    info = backend.get_endpoint(endpoint)
    got = lifecycle.ledger.get(run) if run else None
    owner = claim_endpoint(info, got[0] if got else None, lifecycle.repo) if info is not None else None
    if owner is not None and not owner.ours:
        hint = refusal_hint(endpoint, lifecycle.repo, owner) if owner.verdict == "unproven" else "it is left alone: its owner deletes it"
        raise ConflictError(f"endpoint {endpoint}: {owner.reason}", hint=hint)
    backend.delete_endpoint(endpoint)
    if run and lifecycle.ledger.get(run) is not None:
        update(lifecycle.ledger, run, lambda r: r.retired(f"endpoint {endpoint} deleted by gitops delete"))
    print(f"{endpoint}: deleted" + (f"; run {run} is retired" if run else ""))
