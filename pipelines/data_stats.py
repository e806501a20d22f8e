"""A look at chat data before training on it, as the notebook's "look at the data" step does with pandas: a few
conversations, and the split's statistics (rows, turns per conversation, roles, length percentiles in tokens of a
tokenizer when one is at hand, else characters) and the rows the trainer would refuse, with why."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.chat_format import row_problem


@dataclass
class DataSummary:
    rows: int
    turns: dict[str, float]  # min, median, max messages per conversation
    roles: dict[str, int]  # messages per role
    length_unit: str  # "tokens" or "characters"
    lengths: dict[str, float]  # p50, p90, p99, max of a conversation's length
    invalid: list[tuple[int, str]] = field(default_factory=list)  # (1-based row, why the trainer refuses it)
    samples: list[list[dict[str, str]]] = field(default_factory=list)


def read_frame(source: str, split: str) -> Any:
    """A pandas frame of the split: a .jsonl file read as the notebook reads it, else a dataset (a local directory of
    split files, or a hub id) through the same loader as ``gitops data prepare``."""
    import pandas as pd

    path = Path(source)
    if path.is_file():
        return pd.read_json(path, lines=path.suffix == ".jsonl")
    from pipelines.prepare_data import load_splits

    # Rows as Python objects: Arrow's to_pandas() makes each 'messages' list a numpy array, which no row check reads
    # as a list (400 good rows were once all refused).
    return pd.DataFrame(load_splits(source, 100, [split])[split].to_list())


def _percentile(sorted_values: list[int], q: float) -> float:
    if not sorted_values:
        return 0.0
    return float(sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))])


def _token_count(tokenizer: Any, messages: list[dict[str, str]]) -> int:
    ids = tokenizer.apply_chat_template(messages, tokenize=True)
    if hasattr(ids, "keys"):  # newer transformers answer an encoding (input_ids, attention_mask), not the ids
        ids = ids["input_ids"]
    return len(ids)


def describe(rows: list[Any], tokenizer: Any = None, samples: int = 3) -> DataSummary:
    """The statistics of ``rows`` (the messages of each); with a tokenizer, lengths are its chat template's tokens."""
    invalid = [(i, why) for i, row in enumerate(rows, 1) if (why := row_problem(row)) is not None]
    bad = {i for i, _ in invalid}
    good = [row["messages"] for i, row in enumerate(rows, 1) if i not in bad]
    turns = sorted(len(m) for m in good)
    roles = Counter(message["role"] for messages in good for message in messages)
    if tokenizer is not None:
        lengths = sorted(_token_count(tokenizer, m) for m in good)
        unit = "tokens"
    else:
        lengths = sorted(sum(len(message["content"]) for message in m) for m in good)
        unit = "characters"
    return DataSummary(
        rows=len(rows),
        turns={"min": float(turns[0]) if turns else 0.0, "median": _percentile(turns, 0.5), "max": float(turns[-1]) if turns else 0.0},
        roles=dict(sorted(roles.items())),
        length_unit=unit,
        lengths={
            "p50": _percentile(lengths, 0.5),
            "p90": _percentile(lengths, 0.9),
            "p99": _percentile(lengths, 0.99),
            "max": float(lengths[-1]) if lengths else 0.0,
        },
        invalid=invalid,
        samples=[list(m) for m in good[:samples]],
    )
