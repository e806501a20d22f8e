"""Data preparation, as the reference ``download-dataset.py`` does it, plus row checks.

For every split of a dataset (a hub id, or local files/dirs in jsonl, json or parquet) it loads the
prefix slice ``split[0%:N%]`` (not a random sample) and writes ``<split>.jsonl`` with the columns
unchanged. Rows are checked: bad rows are reported with their line and reason, never silently dropped;
``--skip-invalid`` drops them and counts them.

    python -m pipelines.prepare_data --dataset HuggingFaceH4/ultrachat_200k --download_dir out --dataset_split_pc 5

In an Azure ML pipeline it is the first step (the code snapshot is this folder): ``--output SPLIT=PATH`` writes
a split to the exact file an output binding names.
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    from pipelines.chat_format import row_problem
except ModuleNotFoundError:  # on the cluster the code snapshot is this folder itself, not the repository
    from chat_format import row_problem  # type: ignore[no-redef]

_FORMATS = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}


class DataError(ValueError):
    """Bad input data; ``problems`` lists (split, line, reason)."""

    def __init__(self, message: str, problems: list[tuple[str, int, str]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


@dataclass
class SplitReport:
    split: str
    path: Path
    rows: int
    skipped: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)


def _local_source(dataset: str) -> tuple[str, dict[str, list[str]]] | None:
    """(builder, data_files by split) for a local file or directory; None for a hub id."""
    path = Path(dataset)
    if not path.exists():
        return None
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.suffix in _FORMATS)
    if not files:
        raise DataError(f"{dataset}: no .jsonl, .json or .parquet files found")
    builders = {_FORMATS.get(p.suffix) for p in files}
    if None in builders or len(builders) != 1:
        raise DataError(f"{dataset}: mixed or unsupported file types; use one of .jsonl, .json, .parquet")
    by_split: dict[str, list[str]] = {}
    for p in files:
        by_split.setdefault(p.stem if path.is_dir() else "train", []).append(str(p))
    return builders.pop() or "json", by_split


def load_splits(dataset: str, percent: float, splits: list[str] | None = None) -> dict[str, Any]:
    """Each split's prefix slice ``[0%:N%]`` as a ``datasets.Dataset``."""
    from datasets import get_dataset_split_names, load_dataset

    local = _local_source(dataset)
    pct = f"{percent:g}"
    out: dict[str, Any] = {}
    if local is not None:
        builder, data_files = local
        names = splits or list(data_files)
        missing = [s for s in names if s not in data_files]
        if missing:
            raise DataError(f"{dataset}: no split named {', '.join(missing)}; found {', '.join(data_files)}")
        for split in names:
            out[split] = load_dataset(builder, data_files={split: data_files[split]}, split=f"{split}[0%:{pct}%]")
        return out
    try:  # the real hub path (the reference run's code path); unreachable offline
        names = splits or get_dataset_split_names(dataset)
        for split in names:
            out[split] = load_dataset(dataset, split=f"{split}[0%:{pct}%]")
    except Exception as exc:  # datasets raises many types here (not found, offline, gated)
        raise DataError(
            f"{dataset}: not a local path, and the dataset hub could not provide it "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''})"
        ) from exc
    return out


def check_rows(rows: Any, split: str) -> list[tuple[int, str]]:
    """(1-based line, reason) for each bad row."""
    return [(i, reason) for i, row in enumerate(rows, 1) if (reason := row_problem(row)) is not None]


def prepare(
    dataset: str, download_dir: str | Path, percent: float = 100, splits: list[str] | None = None, skip_invalid: bool = False
) -> list[SplitReport]:
    out_dir = Path(download_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    reports = []
    all_problems: list[tuple[str, int, str]] = []
    for split, data in load_splits(dataset, percent, splits).items():
        rows = data.to_list()
        problems = check_rows(rows, split)
        if problems and not skip_invalid:
            all_problems += [(split, line, reason) for line, reason in problems]
            continue
        bad = {line for line, _ in problems}
        path = out_dir / f"{split}.jsonl"
        tmp = path.with_suffix(".jsonl.tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for i, row in enumerate(rows, 1):
                if i not in bad:
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        tmp.replace(path)
        reports.append(SplitReport(split, path, len(rows) - len(bad), len(bad), problems))
    if all_problems:
        first = "; ".join(f"{s} row {line}: {reason}" for s, line, reason in all_problems[:5])
        raise DataError(
            f"{len(all_problems)} invalid row(s): {first}"
            + (" ..." if len(all_problems) > 5 else "")
            + " (fix the data, or pass --skip-invalid to drop them)",
            all_problems,
        )
    return reports


def read_jsonl(path: str | Path, skip_invalid: bool = False) -> list[dict[str, Any]]:
    """Rows of a chat jsonl file, checked; bad lines raise ``DataError`` naming file and line."""
    rows, problems = [], []
    with Path(path).open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append((str(path), line_no, f"not JSON: {exc.msg}"))
                continue
            reason = row_problem(row)
            if reason:
                problems.append((str(path), line_no, reason))
            else:
                rows.append(row)
    if problems and not skip_invalid:
        first = "; ".join(f"{f}:{line}: {reason}" for f, line, reason in problems[:5])
        raise DataError(f"{len(problems)} invalid row(s): {first}", problems)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, help="hub id, or a local file/directory")
    parser.add_argument("--download_dir", required=True)
    parser.add_argument("--dataset_split_pc", type=float, default=100, help="prefix percent of every split")
    parser.add_argument("--split", action="append", help="only these splits (default: all)")
    parser.add_argument("--skip-invalid", action="store_true", help="drop invalid rows (counted) instead of failing")
    parser.add_argument(
        "--output",
        action="append",
        default=[],
        metavar="SPLIT=PATH",
        help="also write SPLIT to exactly PATH (a pipeline output binding); implies --split SPLIT",
    )
    args = parser.parse_args(argv)
    outputs = dict(item.split("=", 1) for item in args.output if "=" in item)
    if len(outputs) != len(args.output):
        parser.error("--output takes SPLIT=PATH")
    splits = args.split or (list(outputs) if outputs else None)
    try:
        reports = prepare(args.dataset, args.download_dir, args.dataset_split_pc, splits, args.skip_invalid)
    except DataError as exc:
        print(f"error: {exc}")
        for split, line, reason in exc.problems[:50]:
            print(f"  {split}:{line}: {reason}")
        return 1
    for r in reports:
        target = Path(outputs[r.split]) if r.split in outputs else r.path
        if target != r.path:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(r.path, target)
        print(f"{r.split}: {r.rows} rows -> {target}" + (f" ({r.skipped} invalid skipped)" if r.skipped else ""))
    missing = sorted(set(outputs) - {r.split for r in reports})
    if missing:
        print(f"error: no split named {', '.join(missing)} in {args.dataset}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
