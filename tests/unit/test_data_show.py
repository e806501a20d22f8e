"""``gitops data show``: a few conversations and the split's statistics, read with pandas as the notebook does."""

from __future__ import annotations

import json
from pathlib import Path

from pipelines.data_stats import describe
from pipelines.synth import write_dataset


def test_it_prints_conversations_and_the_splits_statistics(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GITOPS_WORKSPACE", str(tmp_path / "ws"))  # no tiny model built here: lengths in characters
    files = write_dataset(tmp_path / "data", rows=40, test_rows=8)
    result = cli("data", "show", str(files["train_sft"]), "--rows", "2")
    assert result.exit_code == 0, result.err
    assert result.out.count("--- conversation") == 2 and "     user: " in result.out and "assistant: " in result.out
    assert "train_sft.jsonl): 40 rows" in result.out and "turns per conversation: min 2" in result.out
    assert "length in characters: p50 " in result.out and "every row is a valid chat example" in result.out
    by_dir = cli("data", "show", str(tmp_path / "data"), "--split", "test_sft", "--rows", "0")
    assert by_dir.exit_code == 0 and "(test_sft): 8 rows" in by_dir.out, by_dir.out + by_dir.err
    assert "every row is a valid chat example" in by_dir.out, by_dir.out  # a dataset's rows read as the file's do


def test_rows_the_trainer_refuses_are_counted_with_why(cli, tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    rows = [
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]},
        {"messages": [{"role": "user", "content": "only a question"}]},
        {"messages": [{"role": "bot", "content": "x"}]},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = cli("data", "show", str(path), "--rows", "1")
    assert "3 rows" in result.out and "2 rows the trainer refuses" in result.out
    assert "row 2: no assistant turn to learn from" in result.out and "row 3: messages[0].role is 'bot'" in result.out


def test_unreadable_data_is_a_one_line_error(cli, tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text("not json\n")
    result = cli("data", "show", str(path))
    assert result.exit_code != 0 and result.err.startswith(f"error: {path}: cannot be read as chat data")


class _Tokens:
    """Stands for a tokenizer of the newer kind, whose chat template answers an encoding."""

    def apply_chat_template(self, messages, tokenize: bool = True):
        return {"input_ids": [0] * sum(len(m["content"].split()) for m in messages), "attention_mask": []}


def test_lengths_are_in_tokens_when_a_tokenizer_is_at_hand() -> None:
    rows = [{"messages": [{"role": "user", "content": "one two"}, {"role": "assistant", "content": "three"}]}] * 3
    summary = describe(rows, _Tokens())
    assert summary.length_unit == "tokens" and summary.lengths["max"] == 3 and summary.roles == {"assistant": 3, "user": 3}
