"""Data upload, pipeline job submission, status and cancel on Azure ML.

The job document is the one ``gitops render`` prints (``gitops.backends.azureml.pipeline_job``), loaded with the SDK's
own ``load_job`` and submitted under its deterministic name, so a retried submit finds the job it made.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from gitops.backends.azureml.clients import AzureClients, sdk_text
from gitops.backends.azureml.errors import call
from gitops.backends.azureml.pipeline_job import held_out_uri
from gitops.backends.base import FoundationModel, JobState, JobStatus, PreparedData, is_remote_data
from gitops.errors import NotFoundError, SpecError
from gitops.spec.findings import Code, error
from gitops.spec.model import RunSpec
from gitops.spec.naming import TAG_DIGEST

_STATES = {
    "notstarted": JobState.QUEUED,
    "queued": JobState.QUEUED,
    "preparing": JobState.QUEUED,
    "provisioning": JobState.QUEUED,
    "starting": JobState.QUEUED,
    "running": JobState.RUNNING,
    "finalizing": JobState.RUNNING,
    "cancelrequested": JobState.RUNNING,
    "completed": JobState.COMPLETED,
    "finished": JobState.COMPLETED,
    "failed": JobState.FAILED,
    "notresponding": JobState.FAILED,
    "canceled": JobState.CANCELED,
}
IN_PIPELINE = "(prepared by the pipeline's prepare_data step)"


def job_state(status: Any) -> JobState:
    return _STATES.get(sdk_text(status), JobState.QUEUED)  # the SDK hands back an enum or a plain string


class AzureJobs:
    def __init__(self, clients: AzureClients) -> None:
        self.clients = clients
        self._held_out: dict[str, str | None] = {}  # test split -> where it lies on this machine

    # -- data -------------------------------------------------------------------------------------
    def prepare_data(self, spec: RunSpec, job_name: str) -> PreparedData:
        """Remote data passes through as it is; a dataset is prepared by the pipeline's first step on the cluster.
        A local path is refused here too, whatever validate said: this process never reads files for a job."""
        if spec.data.train_path is None:  # the pipeline's first step writes the test split where the gate reads it
            return PreparedData(train_uri=IN_PIPELINE, test_uri=held_out_uri(job_name, spec.data.test_split))
        for field_name in ("train_path", "test_path"):
            value = getattr(spec.data, field_name)
            if value is not None and not is_remote_data(value):
                message = f"a local path cannot be used by the azureml backend ({value!r})"
                raise SpecError(
                    f"data.{field_name}: {message}",
                    [error(f"data.{field_name}", message, "name a hub dataset, an azureml: data asset or an https:// URI", code=Code.DATA)],
                )
        return PreparedData(spec.data.train_path, spec.data.test_path)

    # -- jobs -------------------------------------------------------------------------------------
    def check_component(self, version: str) -> None:
        from gitops.spec.component import COMPONENT_NAME

        registry = self.clients.registry("azureml")
        try:
            call(f"getting component {COMPONENT_NAME} {version}", lambda: registry.components.get(COMPONENT_NAME, version=version))
        except NotFoundError as exc:
            raise SpecError(
                f"{COMPONENT_NAME} version {version} is not in the azureml registry",
                [error("finetune.component_version", f"version {version} not found", "pin a published version", code=Code.COMPONENT)],
            ) from exc

    def submit(
        self,
        spec: RunSpec,
        params: Mapping[str, Any],
        job_name: str,
        tags: Mapping[str, str],
        model: FoundationModel,
        data: PreparedData,
        gpus: int | None,
    ) -> JobStatus:
        from azure.ai.ml import load_job

        from gitops.backends.azureml.pipeline_job import build_pipeline_job

        if spec.finetune.kind != "pipeline":
            return self._submit_finetuning(spec, params, job_name, tags, model, data)
        existing = self._raw(job_name)
        if existing is not None:  # a retried submit: the job exists under its deterministic name
            return self._status(existing)
        self.check_component(spec.finetune.component_version)
        given = spec.data.train_path is not None
        document = build_pipeline_job(
            spec,
            dict(params),
            digest=tags.get(TAG_DIGEST, job_name),
            gpus=gpus,
            train_uri=data.train_uri if given else None,
            test_uri=data.test_uri if given else None,
            tags=tags,
            model_defaults=model.defaults,
            model_path=model.uri,
            held_out_path=None if given else data.test_uri,
            digest_path=digest_uri(job_name),
        )
        document["name"] = job_name  # the caller's name is the contract (it equals the digest-derived one)
        job = load_job(io.StringIO(yaml.safe_dump(document, sort_keys=False)))
        ws = self.clients.workspace
        created = call(f"submitting job {job_name}", lambda: ws.jobs.create_or_update(job, experiment_name=document["experiment_name"]))
        return self._status(created)

    def _submit_finetuning(
        self, spec: RunSpec, params: Mapping[str, Any], job_name: str, tags: Mapping[str, str], model: FoundationModel, data: PreparedData
    ) -> JobStatus:
        """The standalone fine-tuning job, after the job that prepares a dataset as its two files (``finetuning_job``).
        Called again once the data is prepared (a job event or reconcile sees ``next: submit``), it submits the job;
        either way it never waits. Idempotent: what exists under its deterministic name is returned."""
        from gitops.backends.azureml.finetuning_job import build_finetuning_job, prepare_job, prepare_job_name

        found = self._raw(job_name)
        if found is not None:
            return self._status(found)
        train_uri, test_uri = data.train_uri, data.test_uri
        if spec.data.dataset is not None:
            train_uri, test_uri = held_out_uri(job_name, spec.data.train_split), held_out_uri(job_name, spec.data.test_split)
            prepared = self._raw(prepare_job_name(job_name))
            if prepared is None:
                document = prepare_job(spec, job_name, train_uri, test_uri)
                document["tags"] = {**tags, **document["tags"]}
                self._create(document)
                return JobStatus(job_name, JobState.QUEUED, dict(tags), progress={"step": "prepare_data"})
            waiting = self._prepared(job_name, prepared)
            if waiting is not None:
                return waiting
        if not test_uri:  # validation refuses it first: the SDK would fail with an UnboundLocalError
            raise SpecError("data.test_path: a fine-tuning job needs validation data", [error("data.test_path", "missing", code=Code.KIND)])
        document = build_finetuning_job(
            spec,
            dict(params),
            digest=tags.get(TAG_DIGEST, job_name),
            train_uri=train_uri,
            test_uri=test_uri,
            tags=tags,
            model_path=model.uri,
        )
        document["name"] = job_name
        return self._status(self._create(document))

    def _create(self, document: dict[str, Any]) -> Any:
        from azure.ai.ml import load_job

        job = load_job(io.StringIO(yaml.safe_dump(document, sort_keys=False)))
        ws = self.clients.workspace
        return call(
            f"submitting job {document['name']}", lambda: ws.jobs.create_or_update(job, experiment_name=document["experiment_name"])
        )

    def _prepared(self, job_name: str, prepared: Any) -> JobStatus | None:
        """What a fine-tuning job not yet submitted is doing: its data being prepared, or failed to be (None: the data
        is ready and the fine-tuning job is to be submitted now)."""
        state = job_state(prepared.status)
        if state is JobState.COMPLETED:
            return None
        tags = dict(prepared.tags or {})
        if state.terminal:
            why = f"the job that prepares its data, {prepared.name}, {state.value}"
            return JobStatus(job_name, JobState.FAILED if state is JobState.FAILED else JobState.CANCELED, tags, error=why)
        return JobStatus(job_name, state, tags, portal_url=getattr(prepared, "studio_url", None), progress={"step": "prepare_data"})

    def _raw(self, job_name: str) -> Any | None:
        ws = self.clients.workspace
        try:
            return call(f"getting job {job_name}", lambda: ws.jobs.get(job_name))
        except NotFoundError:
            return None

    def get(self, job_name: str) -> JobStatus | None:
        """The job's state; for a fine-tuning job not yet submitted, that of the job preparing its data (``next:
        submit`` once it is prepared: the fine-tuning job is submitted by the next look, never by this read)."""
        from gitops.backends.azureml.finetuning_job import prepare_job_name

        found = self._raw(job_name)
        if found is not None:
            return self._status(found)
        prepared = self._raw(prepare_job_name(job_name))
        if prepared is None:
            return None
        waiting = self._prepared(job_name, prepared)
        if waiting is not None:
            return waiting
        return JobStatus(job_name, JobState.QUEUED, dict(prepared.tags or {}), progress={"step": "prepare_data", "next": "submit"})

    def registered_output(self, job_name: str) -> str | None:
        """The model name a fine-tuning job registers its model under (``outputs.registered_model``)."""
        found = self._raw(job_name)
        output = (getattr(found, "outputs", None) or {}).get("registered_model") if found is not None else None
        name = getattr(output, "name", None) if output is not None else None
        return str(name) if name else None

    def cancel(self, job_name: str) -> None:
        ws = self.clients.workspace
        status = self.get(job_name)
        if status is None or status.state.terminal:
            return
        # Started, not awaited: the service answers 202 with a Location to poll every 30 s, inside the submit that
        # supersedes the job (the next look at the job sees it canceled).
        call(f"canceling job {job_name}", lambda: ws.jobs.begin_cancel(job_name, polling=False))

    @staticmethod
    def _status(job: Any) -> JobStatus:
        created = getattr(getattr(job, "creation_context", None), "created_at", None)
        return JobStatus(
            name=job.name,
            state=job_state(job.status),
            tags=dict(job.tags or {}),
            portal_url=getattr(job, "studio_url", None),
            started_at=created,
        )

    def held_out_split(self, test_path: str | None) -> str | None:
        """The test split on this machine: a data asset (``azureml:name:version``) or a datastore path, downloaded once
        per process through the workspace's datastore with the clients' credential (the Function's identity needs
        Storage Blob Data Reader on the workspace's storage account: infra/main.bicep). Anything else: None."""
        if not test_path:
            return None
        if test_path in self._held_out:  # one look per process: an evaluation reads it once per slice
            return self._held_out[test_path]
        found_at = self._fetch_held_out(test_path)
        self._held_out[test_path] = found_at
        return found_at

    def _fetch_held_out(self, test_path: str) -> str | None:
        import hashlib
        import tempfile

        uri = test_path
        if uri.startswith("azureml:") and not uri.startswith("azureml://"):
            name, _, version = uri.removeprefix("azureml:").partition(":")
            ws = self.clients.workspace
            asset = call(f"getting data asset {name}:{version}", lambda: ws.data.get(name, version=version or None))
            uri = str(getattr(asset, "path", "") or "")
        found = self._datastore_blob(uri)
        if found is None:
            return None
        blob, blob_path = found
        properties = call(f"reading {blob_path}", blob.get_blob_properties)
        if properties.size > MAX_HELD_OUT_BYTES:
            return None
        key = hashlib.sha256(f"{blob.url}@{properties.etag}".encode()).hexdigest()[:24]
        target = Path(tempfile.gettempdir()) / "gitops-held-out" / f"{key}.jsonl"  # one download per version of the blob
        if target.is_file():
            return str(target)
        data = call(f"reading {blob_path}", lambda: blob.download_blob().readall())
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".part")
        partial.write_bytes(data)
        partial.replace(target)
        return str(target)

    def _datastore_blob(self, uri: str) -> tuple[Any, str] | None:
        """The blob a datastore path names (``azureml://datastores/<name>/paths/<path>``), read with the clients'
        credential, and its path; None for anything else."""
        found = _DATASTORE_PATH.search(uri)
        if not found:
            return None
        datastore_name, blob_path = found.group(1), found.group(2)
        ws = self.clients.workspace
        store = call(f"getting datastore {datastore_name}", lambda: ws.datastores.get(datastore_name))
        from azure.storage.blob import BlobClient

        account_url = f"https://{store.account_name}.blob.{getattr(store, 'endpoint', None) or 'core.windows.net'}"
        return BlobClient(account_url, store.container_name, blob_path, credential=self.clients.get_credential()), blob_path

    def content_digest(self, job_name: str) -> str | None:
        """The trained model's content digest as the job's ``model_digest`` step wrote it (a few bytes read, never the
        model). None when there is none to read or it is not a digest: the model is then registered without one, and
        a promotion of it waits (fail closed)."""
        found = self._datastore_blob(digest_uri(job_name))
        if found is None:
            return None
        blob, blob_path = found
        try:
            properties = call(f"reading {blob_path}", blob.get_blob_properties)
        except NotFoundError:
            return None
        if properties.size > MAX_DIGEST_BYTES:
            return None
        data = call(f"reading {blob_path}", lambda: blob.download_blob().readall())
        try:
            value = json.loads(data).get("content_digest")
        except (ValueError, AttributeError):
            return None
        return value if isinstance(value, str) and _CONTENT_DIGEST.fullmatch(value) else None


# Where a dataset spec's prepared test split is written (the prepare_data step's output), so that the gate can read
# the same held-out conversations the job evaluated on.
MAX_HELD_OUT_BYTES = 64 * 1024 * 1024
_DATASTORE_PATH = re.compile(r"datastores/([^/]+)/paths/(.+)$")


# Where a job's model_digest step writes the trained model's content digest (pipelines/model_digest.py).
DIGEST_PATH = "azureml://datastores/workspaceblobstore/paths/gitops/{job}/content_digest.json"
MAX_DIGEST_BYTES = 4096
_CONTENT_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def digest_uri(job_name: str) -> str:
    return DIGEST_PATH.format(job=job_name)
