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

from gitops.errors import ConflictError
from gitops.ledger.model import RunRecord
from gitops.util.files import read_json, write_json_atomic

_THREAD_LOCK = threading.Lock()


class LocalLedger:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # flock serialises processes; the thread lock serialises threads of this process (flock is per fd).
        with _THREAD_LOCK, (self.root / ".lock").open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _path(self, run: str) -> Path:
        return self.root / f"{run}.json"

    def get(self, run: str) -> tuple[RunRecord, str] | None:
        data = read_json(self._path(run))
        if data is None:
            return None
        return RunRecord.model_validate(data["record"]), str(data["version"])

    def put(self, record: RunRecord, expected: str | None) -> str:
        with self._locked():
            current = read_json(self._path(record.run))
            current_version = None if current is None else str(current["version"])
            if current_version != expected:
                raise ConflictError(f"run '{record.run}' changed since it was read (version {current_version}, expected {expected})")
            version = str(int(current_version or 0) + 1)
            write_json_atomic(self._path(record.run), {"version": version, "record": record.model_dump(mode="json")})
            return version

    def remember_event(self, event_id: str, summary: dict[str, Any]) -> bool:
        """Record that ``event_id`` was processed; False when it already was."""
        path = self.root / "events" / f"{hashlib.sha256(event_id.encode()).hexdigest()}.json"
        path.parent.mkdir(exist_ok=True)
        try:
            with path.open("x", encoding="utf-8") as fh:  # exclusive create: the first writer wins
                json.dump({"event_id": event_id, **summary}, fh, sort_keys=True)
        except FileExistsError:
            return False
        return True

    def list(self) -> list[RunRecord]:
        out = []
        for path in sorted(self.root.glob("*.json")):
            got = self.get(path.stem)
            if got is not None:
                out.append(got[0])
        return out
