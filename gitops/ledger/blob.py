"""A ledger in Azure Blob Storage: one blob per run, ETag ``If-Match`` on every update, and an index of
processed events (one small blob per event id, created only if absent).

azure-storage-blob is imported here only; its errors are translated into the project's own.
"""

from __future__ import annotations

import json
from typing import Any

from gitops.errors import AuthError, BackendError, ConfigurationError, ConflictError, CorruptRecordError
from gitops.ledger.model import RecordSummary, RunRecord, is_record_key, key_of, parse_record

RUNS_PREFIX = "runs/"
EVENTS_PREFIX = "events/"
DOCUMENTS_PREFIX = "documents/"


class BlobLedger:
    def __init__(self, container: Any) -> None:
        """``container``: an ``azure.storage.blob.ContainerClient`` (created if missing)."""
        from azure.core.exceptions import ResourceExistsError

        self.container = container
        self.damaged: list[tuple[str, str]] = []
        try:
            container.create_container()
        except ResourceExistsError:
            pass
        except Exception as exc:
            raise _translate(exc, "open the ledger container") from exc

    @classmethod
    def from_connection_string(cls, connection_string: str, container: str) -> BlobLedger:
        from azure.storage.blob import ContainerClient

        try:
            client = ContainerClient.from_connection_string(connection_string, container)
        except ValueError:  # the SDK's message is generic; the string itself is a secret and never echoed
            raise ConfigurationError(
                "GITOPS_LEDGER_CONNECTION_STRING is not a valid Azure Storage connection string",
                hint="copy it from the storage account's Access keys, or use GITOPS_LEDGER_ACCOUNT_URL",
            ) from None
        return cls(client)

    @classmethod
    def from_account_url(cls, account_url: str, container: str) -> BlobLedger:
        """Production: the Function App's managed identity (Storage Blob Data Contributor)."""
        from azure.identity import DefaultAzureCredential
        from azure.storage.blob import ContainerClient

        return cls(ContainerClient(account_url, container, credential=DefaultAzureCredential()))

    def get(self, run: str) -> tuple[RunRecord, str] | None:
        from azure.core.exceptions import ResourceNotFoundError

        if not is_record_key(run):  # never a blob name: '../documents/watch' would read another container's path
            return None
        try:
            download = self.container.get_blob_client(f"{RUNS_PREFIX}{run}.json").download_blob()
            body = download.readall()
        except ResourceNotFoundError:
            return None
        except Exception as exc:
            raise _translate(exc, f"read run '{run}'") from exc
        return parse_record(body, f"{self.container.container_name}/{RUNS_PREFIX}{run}.json"), str(download.properties.etag)

    def put(self, record: RunRecord, expected: str | None) -> str:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError

        blob = self.container.get_blob_client(f"{RUNS_PREFIX}{key_of(record)}.json")
        body = json.dumps(record.model_dump(mode="json"), sort_keys=True).encode()
        # The summary rides on the same write as metadata: a listing finds the due records without reading them.
        metadata = RecordSummary.of(record).to_metadata()
        try:
            if expected is None:
                result = blob.upload_blob(body, overwrite=False, metadata=metadata)  # If-None-Match: *
            else:
                result = blob.upload_blob(
                    body, overwrite=True, metadata=metadata, etag=expected, match_condition=MatchConditions.IfNotModified
                )
        except (ResourceExistsError, ResourceModifiedError) as exc:
            raise ConflictError(f"run '{record.key}' changed since it was read") from exc
        except Exception as exc:
            raise _translate(exc, f"write run '{record.key}'") from exc
        return str(result["etag"])

    def summaries(self) -> list[RecordSummary]:
        """The listing's pages with each blob's metadata: one call per page (5,000 names), no record read."""
        out, damaged = [], []
        try:
            blobs = list(self.container.list_blobs(name_starts_with=RUNS_PREFIX, include=["metadata"]))
        except Exception as exc:
            raise _translate(exc, "list runs") from exc
        for blob in sorted(blobs, key=lambda b: b.name):
            run = blob.name[len(RUNS_PREFIX) :].removesuffix(".json")
            if not is_record_key(run):
                damaged.append((blob.name, f"ledger record {blob.name} cannot be read: its name is not a run's"))
                continue
            out.append(RecordSummary.from_metadata(run, blob.metadata))
        self.damaged = damaged
        return out

    def list(self) -> list[RunRecord]:
        out, damaged = [], []
        try:
            names = [b.name for b in self.container.list_blobs(name_starts_with=RUNS_PREFIX)]
        except Exception as exc:
            raise _translate(exc, "list runs") from exc
        for name in sorted(names):
            run = name[len(RUNS_PREFIX) :].removesuffix(".json")
            if not is_record_key(run):
                damaged.append((name, f"ledger record {name} cannot be read: its name is not a run's"))
                continue
            try:
                got = self.get(run)
            except CorruptRecordError as exc:
                damaged.append((name, exc.headline))
                continue
            if got is not None:
                out.append(got[0])
        self.damaged = damaged
        return out

    def remember_event(self, event_id: str, summary: dict[str, Any]) -> bool:
        """Record that ``event_id`` was processed; False when it already was."""
        from azure.core.exceptions import ResourceExistsError

        try:
            self.container.get_blob_client(f"{EVENTS_PREFIX}{event_id}").upload_blob(
                json.dumps(summary, sort_keys=True).encode(), overwrite=False
            )
        except ResourceExistsError:
            return False
        except Exception as exc:
            raise _translate(exc, f"record event '{event_id}'") from exc
        return True

    def save_document(self, name: str, body: dict[str, Any]) -> None:
        try:
            self.container.get_blob_client(f"{DOCUMENTS_PREFIX}{name}.json").upload_blob(
                json.dumps(body, sort_keys=True, default=str).encode(), overwrite=True
            )
        except Exception as exc:
            raise _translate(exc, f"save document '{name}'") from exc

    def load_document(self, name: str) -> dict[str, Any] | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            raw = self.container.get_blob_client(f"{DOCUMENTS_PREFIX}{name}.json").download_blob().readall()
        except ResourceNotFoundError:
            return None
        except Exception as exc:
            raise _translate(exc, f"read document '{name}'") from exc
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None


def _translate(exc: Exception, action: str) -> Exception:
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

    if isinstance(exc, ClientAuthenticationError):
        return AuthError(f"ledger storage refused our credentials to {action}", hint="check the identity's Storage Blob role")
    if isinstance(exc, HttpResponseError):
        return BackendError(f"ledger storage failed to {action}: HTTP {exc.status_code}")
    if isinstance(exc, ServiceRequestError):
        return BackendError(f"ledger storage unreachable to {action}", hint="check the account URL and network")
    return exc
