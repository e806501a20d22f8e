"""A ledger in local files: one JSON file per run, atomic writes, a lock, a version counter as ETag."""

from __future__ import annotations

import fcntl
import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gitops.errors import ConflictError, CorruptRecordError
from gitops.ledger.model import RecordSummary, RunRecord, is_record_key, key_of, parse_record, record_key
from gitops.util.files import read_json, write_json_atomic

_THREAD_LOCK = threading.Lock()


class LocalLedger:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)  # created by the first write: reading an empty workspace leaves nothing behind
        self.damaged: list[tuple[str, str]] = []

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # flock serialises processes; the thread lock serialises threads of this process (flock is per fd).
        self.root.mkdir(parents=True, exist_ok=True)
        with _THREAD_LOCK, (self.root / ".lock").open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _path(self, run: str) -> Path:
        return self.root / f"{record_key(run)}.json"

    def get(self, run: str) -> tuple[RunRecord, str] | None:
        if not is_record_key(run):
            return None
        path = self._path(run)
        try:
            data = read_json(path)
        except (OSError, ValueError) as exc:  # a directory by that name, a truncated or binary file
            raise CorruptRecordError(
                f"ledger record {path} cannot be read: {type(exc).__name__}",
                hint="restore it from a backup, or delete it and submit the spec again",
            ) from None
        if data is None:
            return None
        if not isinstance(data, dict) or "record" not in data or not str(data.get("version", "")).isdigit():
            why = "version: not a whole number" if isinstance(data, dict) and "record" in data else "not a ledger entry"
            raise CorruptRecordError(
                f"ledger record {path} cannot be read: {why}",
                hint="restore it from a backup, or delete it and submit the spec again",
            )
        return parse_record(data["record"], str(path)), str(data["version"])

    def put(self, record: RunRecord, expected: str | None) -> str:
        with self._locked():
            try:
                current = read_json(self._path(key_of(record)))
            except (OSError, ValueError):
                current = {"version": "damaged"}  # never overwrite a record nobody could read, unless asked to replace it
            current_version = None if current is None else str(current.get("version"))
            if current_version != expected:
                raise ConflictError(f"run '{record.key}' changed since it was read (version {current_version}, expected {expected})")
            version = str(int(current_version or 0) + 1)
            write_json_atomic(self._path(key_of(record)), {"version": version, "record": record.model_dump(mode="json")})
            return version

    def remember_event(self, event_id: str, summary: dict[str, Any]) -> bool:
        """Record that ``event_id`` was processed; False when it already was."""
        path = self.root / "events" / f"{hashlib.sha256(event_id.encode()).hexdigest()}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with path.open("x", encoding="utf-8") as fh:  # exclusive create: the first writer wins
                json.dump({"event_id": event_id, **summary}, fh, sort_keys=True)
        except FileExistsError:
            return False
        return True

    def save_document(self, name: str, body: dict[str, Any]) -> None:
        write_json_atomic(self.root / "documents" / f"{name}.json", body)  # beside the runs, never globbed as one

    def load_document(self, name: str) -> dict[str, Any] | None:
        try:
            data = read_json(self.root / "documents" / f"{name}.json")
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def summaries(self) -> list[RecordSummary]:
        """Every record read, then summarised: files on one machine keep no index (a laptop's few runs)."""
        return [RecordSummary.of(r) for r in self.list()]

    def list(self) -> list[RunRecord]:
        out, damaged = [], []
        for path in sorted(self.root.glob("*.json")):
            if not is_record_key(path.stem):
                damaged.append((str(path), f"ledger record {path} cannot be read: its name is not a run's"))
                continue
            try:
                got = self.get(path.stem)
            except CorruptRecordError as exc:
                damaged.append((str(path), exc.headline))
                continue
            if got is not None:
                out.append(got[0])
        self.damaged = damaged
        return out
