"""A spec's data on this machine, for every backend: its given files checked, or the splits prepared from its
dataset (``pipelines/prepare_data.py``), with problems reported as spec errors on the ``data`` fields."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gitops.errors import SpecError
from gitops.spec.findings import Code, error
from gitops.spec.model import RunSpec

if TYPE_CHECKING:
    from pipelines.prepare_data import SplitReport


def local_file(field: str, path: str, hint: str = "fix the path") -> Path:
    """``path`` as an existing file, else a SpecError on ``field``."""
    resolved = Path(path).resolve()
    if not resolved.is_file():
        raise SpecError(f"{field}: {resolved} does not exist", [error(field, f"{resolved} does not exist", hint, code=Code.DATA)])
    return resolved


def prepare_splits(spec: RunSpec, out: Path) -> tuple[SplitReport, SplitReport]:
    """The train and test splits of ``spec.data.dataset``, prefix-sliced into ``out``."""
    from pipelines.prepare_data import DataError, prepare

    d = spec.data
    try:
        reports = {r.split: r for r in prepare(d.dataset or "", out, d.sample_percent, [d.train_split, d.test_split])}
    except DataError as exc:
        raise SpecError(f"data: {exc}", [error("data", str(exc), code=Code.DATA)]) from exc
    return reports[d.train_split], reports[d.test_split]
