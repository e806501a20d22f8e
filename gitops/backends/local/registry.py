"""The local stand-in for an Azure ML registry: an MLflow store (SQLite tracking and registry, file artifacts) in
a directory of its own, between the workspace directories of the environments (gitops.yaml ``registry:
{directory: ...}``).

A model is shared into it once: its files are copied from the workspace that trained it, and held to the content
digest computed where it was trained (``pipelines.model_digest``) before and after the copy. A model without that
digest, or whose files no longer match it, is refused: a later environment must serve what the first one proved.
"""

from __future__ import annotations

import fcntl
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gitops.backends.base import RegisteredModel
from gitops.backends.local.workspace import LocalWorkspace
from gitops.errors import ConflictError, NotFoundError
from gitops.spec import naming

EXPERIMENT = "registry"


def _uri(root: Path) -> str:
    return f"sqlite:///{root / 'mlflow.db'}"


def _client(root: Path) -> Any:
    from mlflow import MlflowClient

    root.mkdir(parents=True, exist_ok=True)
    return MlflowClient(_uri(root), _uri(root))


def _source(tracking_uri: str, name: str, version: str) -> str:
    """Where a model version's files are, asked of the store at ``tracking_uri`` (a ``models:/`` URI would be read
    from this process's global registry, which is some workspace's)."""
    from mlflow import MlflowClient

    return str(MlflowClient(tracking_uri, tracking_uri).get_model_version_download_uri(name, version))


def _digest_of(root: Path, name: str, version: str) -> str:
    """The content digest of a registry model version's files, as the registry holds them."""
    from mlflow.artifacts import download_artifacts

    from pipelines.model_digest import content_digest

    with tempfile.TemporaryDirectory() as scratch:
        return content_digest(download_artifacts(artifact_uri=_source(_uri(root), name, version), dst_path=scratch))


def shared(root: Path, name: str, digest: str) -> RegisteredModel | None:
    """The version of ``name`` in the registry at ``root`` with content ``digest`` (None: not shared yet)."""
    if not (root / "mlflow.db").exists():
        return None
    for mv in _client(root).search_model_versions(f"name='{name}'"):
        if mv.tags.get(naming.TAG_CONTENT) == digest:
            return RegisteredModel(name, str(mv.version), f"models:/{name}/{mv.version}", dict(mv.tags))
    return None


def share(ws: LocalWorkspace, model: RegisteredModel, root: Path, name: str, tags: Mapping[str, str]) -> RegisteredModel:
    """Copy a workspace's registered model into the registry at ``root`` as ``name``, once (the same content again
    returns the version it got), tagged with its digest and lineage (``tags``)."""
    digest = model.tags.get(naming.TAG_CONTENT)
    if not digest:
        raise ConflictError(
            f"model {model.name} version {model.version} carries no content digest: nothing proves what a later environment would serve",
            hint="models trained by this release carry one; train the run again to promote it",
        )
    existing = shared(root, name, digest)
    if existing is not None:
        return existing
    from mlflow.artifacts import download_artifacts

    from pipelines.model_digest import content_digest

    with tempfile.TemporaryDirectory() as scratch:
        files = Path(download_artifacts(artifact_uri=_source(ws.tracking_uri, model.name, model.version), dst_path=scratch))
        found = content_digest(files)
        if found != digest:
            raise ConflictError(
                f"model {model.name} version {model.version} is not the model that was trained: its files hash to {found}, not {digest}",
                hint="the model changed after training; train the run again",
            )
        client = _client(root)
        with (root / ".share.lock").open("a") as lock:  # two promotions of one model share it once
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                again = shared(root, name, digest)
                if again is not None:
                    return again
                experiment = client.get_experiment_by_name(EXPERIMENT)
                experiment_id = (
                    experiment.experiment_id
                    if experiment is not None
                    else client.create_experiment(EXPERIMENT, artifact_location=(root / "artifacts").as_uri())
                )
                if not client.search_registered_models(f"name='{name}'"):
                    client.create_registered_model(name)
                # The files live under .../models/<name>/<version>, as an Azure ML registry model's URI ends with its
                # version: whoever reads a deployment's model URI (the watch) finds the version in it. The version is
                # the one MLflow gives next, under the lock.
                version = str(1 + max((int(v.version) for v in client.search_model_versions(f"name='{name}'")), default=0))
                run = client.create_run(experiment_id, tags={naming.TAG_CONTENT: digest})
                client.log_artifacts(run.info.run_id, str(files), f"models/{name}/{version}")
                client.set_terminated(run.info.run_id)
                all_tags = {**dict(tags), naming.TAG_CONTENT: digest}
                source = f"{run.info.artifact_uri}/models/{name}/{version}"
                mv = client.create_model_version(name, source, run_id=run.info.run_id, tags=all_tags)
                if str(mv.version) != version:
                    raise ConflictError(f"the registry gave {name} version {mv.version}, not {version}", hint="share it again")
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    result = RegisteredModel(name, str(mv.version), f"models:/{name}/{mv.version}", all_tags)
    copied = _digest_of(root, name, result.version)
    if copied != digest:  # a copy that did not keep the bytes is never served
        raise ConflictError(f"the registry's copy of {name} hashes to {copied}, not {digest}", hint="share it again")
    return result


def registry_model(root: Path, name: str, version: str) -> RegisteredModel:
    """A model version of the registry, with its tags (``NotFoundError`` when there is none)."""
    from mlflow.exceptions import MlflowException

    try:
        mv = _client(root).get_model_version(name, version)
    except MlflowException:
        raise NotFoundError(f"registry {root} has no model {name} version {version}") from None
    return RegisteredModel(name, str(mv.version), f"models:/{name}/{mv.version}", dict(mv.tags))


def receive(root: Path, name: str, version: str) -> RegisteredModel:
    """A registry model version as a workspace deploys it: its files where the registry keeps them (a file URI, read
    by whichever workspace serves it), after they are hashed again against its content digest tag: a registry copy
    changed since it was shared is never served."""
    model = registry_model(root, name, version)
    digest = model.tags.get(naming.TAG_CONTENT)
    found = _digest_of(root, name, version)
    if not digest or found != digest:
        raise ConflictError(
            f"registry model {name} version {version} is not what was shared: its files hash to {found}, not {digest or '(no digest)'}",
            hint="the registry's copy changed after it was shared; share the version again from the environment that proved it",
        )
    return RegisteredModel(name, version, _source(_uri(root), name, version), model.tags)
