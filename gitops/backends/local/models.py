"""The local model registry on MLflow (SQLite): the bootstrap foundation model and fine-tuned models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gitops.backends.base import FoundationModel, RegisteredModel
from gitops.backends.local.workspace import LocalWorkspace, use_mlflow
from gitops.errors import NotFoundError
from gitops.spec import naming

BOOTSTRAP_MODEL = "tiny-phi3"


def ensure_experiment(ws: LocalWorkspace, name: str) -> str:
    """Create the experiment with its artifacts inside the workspace (not ./mlruns of the cwd)."""
    import mlflow

    use_mlflow(ws)
    existing = mlflow.get_experiment_by_name(name)
    if existing is not None:
        return str(existing.experiment_id)
    return str(mlflow.create_experiment(name, artifact_location=(ws.artifact_root / name).as_uri()))


def bootstrap(ws: LocalWorkspace, force: bool = False) -> RegisteredModel:
    """Build the tiny Phi-3 foundation model offline and register it as ``tiny-phi3`` (once)."""
    import mlflow
    from mlflow import MlflowClient

    use_mlflow(ws)
    client = MlflowClient()
    if not force:
        versions = client.search_model_versions(f"name='{BOOTSTRAP_MODEL}'")
        if versions:
            latest = max(versions, key=lambda v: int(v.version))
            return RegisteredModel(BOOTSTRAP_MODEL, str(latest.version), f"models:/{BOOTSTRAP_MODEL}/{latest.version}")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pipelines.local_finetune import log_chat_model
    from pipelines.tiny_model import build_tiny_phi3

    hf_dir = build_tiny_phi3(ws.root / "models" / BOOTSTRAP_MODEL / "hf")
    ensure_experiment(ws, "bootstrap")
    mlflow.set_experiment("bootstrap")
    with mlflow.start_run(run_name=f"bootstrap-{BOOTSTRAP_MODEL}"):
        info = log_chat_model(AutoModelForCausalLM.from_pretrained(hf_dir), AutoTokenizer.from_pretrained(hf_dir))
    version = mlflow.register_model(info.model_uri, BOOTSTRAP_MODEL, tags={"source": "gitops local bootstrap"})
    return RegisteredModel(BOOTSTRAP_MODEL, str(version.version), f"models:/{BOOTSTRAP_MODEL}/{version.version}")


def download(ws: LocalWorkspace, uri: str, dest: Path) -> Path:
    """Materialise a registered model's files (cached: a finished download is reused)."""
    import mlflow

    use_mlflow(ws)
    done = dest / ".complete"
    if done.exists():
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    path = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dest)))
    done.write_text(uri)
    return path if (path / "MLmodel").exists() else dest


def resolve_foundation(ws: LocalWorkspace, name: str, version: str | None, label: str | None) -> FoundationModel:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    use_mlflow(ws)
    if name == BOOTSTRAP_MODEL:
        bootstrap(ws)
    client = MlflowClient()
    try:
        if version is not None:
            mv: Any = client.get_model_version(name, version)
        elif label not in (None, "latest"):
            mv = client.get_model_version_by_alias(name, str(label))
        else:
            versions = client.search_model_versions(f"name='{name}'")
            if not versions:
                raise NotFoundError(f"no model '{name}' in the local registry", hint="run `gitops local bootstrap` or register it")
            mv = max(versions, key=lambda v: int(v.version))
    except MlflowException as exc:
        raise NotFoundError(
            f"model {name} {version or label} is not in the local registry", hint="see `mlflow models` in the workspace, or use model.path"
        ) from exc
    local = download(ws, f"models:/{name}/{mv.version}", ws.root / "models" / name / str(mv.version))
    return FoundationModel(name=name, version=str(mv.version), uri=str(local))


def register(ws: LocalWorkspace, model_uri: str, name: str, tags: dict[str, str], job_name: str) -> RegisteredModel:
    """Register a job's model; the same job registered twice returns the existing version."""
    import mlflow
    from mlflow import MlflowClient

    use_mlflow(ws)
    client = MlflowClient()
    for mv in client.search_model_versions(f"name='{name}'"):
        if mv.tags.get(naming.TAG_JOB) == job_name:
            return RegisteredModel(name, str(mv.version), f"models:/{name}/{mv.version}", dict(mv.tags))
    all_tags = {**tags, naming.TAG_JOB: job_name}
    mv = mlflow.register_model(model_uri, name, tags=all_tags)
    client.set_registered_model_alias(name, "candidate", mv.version)
    return RegisteredModel(name, str(mv.version), f"models:/{name}/{mv.version}", all_tags)
