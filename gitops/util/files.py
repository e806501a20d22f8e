"""Atomic JSON files and secret files: what the local workspace and the local ledger are made of."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pipelines.job_files import write_json_atomic  # noqa: F401  (one implementation, shared with the jobs that write)


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default


def write_secret(path: Path, value: str) -> None:
    """A file only its owner can read (0600 from creation, not chmod-ed afterwards)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
