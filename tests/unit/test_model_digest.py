"""#27: a model's content digest, computed where it is produced: the same files give the same digest, a changed
byte or file gives another, and the packaging's own metadata (which a copy into a registry may rewrite) does not
count."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.model_digest import content_digest


def _model(root: Path, weights: bytes = b"\x00\x01" * 1000) -> Path:
    (root / "model" / "components" / "tokenizer").mkdir(parents=True)
    (root / "model" / "model.safetensors").write_bytes(weights)
    (root / "model" / "config.json").write_text('{"hidden_size": 64}')
    (root / "model" / "components" / "tokenizer" / "tokenizer.json").write_text('{"vocab": {}}')
    (root / "MLmodel").write_text("run_id: 1\nutc_time_created: '2026-12-07 12:00:00'\n")
    return root


def test_the_same_files_give_the_same_digest_wherever_they_lie(tmp_path: Path) -> None:
    first, copy = _model(tmp_path / "dev"), _model(tmp_path / "registry")
    (copy / "MLmodel").write_text("run_id: 2\nutc_time_created: '2026-12-08 09:30:00'\n")  # rewritten by a copy
    assert content_digest(first) == content_digest(copy)
    assert content_digest(first).startswith("sha256:") and len(content_digest(first)) == 7 + 64


def test_a_changed_byte_a_renamed_file_or_a_file_more_is_another_digest(tmp_path: Path) -> None:
    base = content_digest(_model(tmp_path / "a"))
    assert content_digest(_model(tmp_path / "b", b"\x00\x01" * 999 + b"\x00\x02")) != base
    renamed = _model(tmp_path / "c")
    (renamed / "model" / "config.json").rename(renamed / "model" / "config2.json")
    assert content_digest(renamed) != base
    extra = _model(tmp_path / "d")
    (extra / "model" / "adapter.bin").write_bytes(b"")
    assert content_digest(extra) != base


def test_no_model_files_is_an_error_not_a_digest_of_nothing(tmp_path: Path) -> None:
    (tmp_path / "MLmodel").write_text("run_id: 1\n")
    with pytest.raises(ValueError, match="no model files"):
        content_digest(tmp_path)
