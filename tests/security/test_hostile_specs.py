"""Hostile spec and policy files: every one is refused with one line naming the file, in bounded time and memory,
and a broken policy is an error on every path, never replaced by the defaults."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gitops.spec.validate import validate_file, validate_text

BOMB = "".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n',
        *(f"{c}: &{c} [{','.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)),
    ]
)
HOSTILE_TEXTS = {
    "billion-laughs": (BOMB, "aliases"),
    "recursive-alias": ("name: x\nmodel: &m {name: *m}\n", "aliases"),
    "deep-nesting": ("name: " + "[" * 3000 + "]" * 3000 + "\n", "nest"),
    "deep-mapping": ("name:\n" + "".join(" " * (i + 1) + f"k{i}:\n" for i in range(60)), "nests deeper"),
    "huge": ("description: " + "x" * 300_000 + "\n", "at most 256 KiB"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_TEXTS))
def test_hostile_yaml_is_one_finding_not_a_hang(name: str) -> None:
    text, needle = HOSTILE_TEXTS[name]
    result = validate_text(text, "runs/x.yaml")
    assert not result.ok and any(needle in f.message for f in result.findings), result.findings
    assert sum(needle in f.message for f in result.findings) == 1  # said once, not once per expansion


def test_a_fifo_a_device_and_a_directory_are_refused_without_reading(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.yaml"
    zero.symlink_to("/dev/zero")
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    for path in (fifo, zero, folder):
        result = validate_file(path)
        (finding,) = result.findings
        assert "not a regular file" in finding.message and finding.file == str(path)


def test_binary_and_missing_files_are_one_line(tmp_path: Path) -> None:
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert "cannot read the file" in validate_file(binary).findings[0].message
    assert "No such file" in validate_file(tmp_path / "nope.yaml").findings[0].message


@pytest.mark.parametrize("policy", ["caps: {max_epochs: many}\n", "\xff\xfe", "a: &a [*a]\n", "- just\n- a list\n"])
def test_a_broken_policy_is_an_error_on_every_path(cli, tmp_path, local_spec_text, policy: str, monkeypatch) -> None:
    from tests.conftest import GitRepo

    repo = GitRepo(tmp_path / "repo")
    repo.write("runs/tiny-run.yaml", local_spec_text())
    base = repo.commit("spec")
    (repo.root / "gitops.yaml").write_bytes(policy.encode("utf-8", errors="surrogateescape") if policy != "\xff\xfe" else b"\xff\xfe")
    repo.commit("broken policy")
    spec = repo.root / "runs" / "tiny-run.yaml"
    monkeypatch.setenv("GITOPS_WORKSPACE", str(tmp_path / "ws"))
    for args in (
        ("validate", str(spec)),
        ("render", str(spec)),
        ("run", str(spec)),
        ("plan", "--base", base, "--repo", str(repo.root)),
        ("cleanup", "--dry-run", "--repo", str(repo.root)),
    ):
        result = cli(*args)
        assert result.exit_code != 0, (args, result)
        assert "all valid" not in result.out and ": ok" not in result.out, (args, result.out)
        assert "Traceback" not in result.err, (args, result.err)


@pytest.mark.parametrize(
    ("old", "new", "path", "needle"),
    [
        ("max_steps: 10", "max_steps: 100000000000000000000000000000000000000", "finetune.params.max_steps", "out of range"),
        ("max_steps: 10", "max_steps: 200000", "finetune.params.max_steps", "exceeds the cap of 100000"),
        ("max_steps: 10", 'max_steps: "--5"', "finetune.params.max_steps", "must be an integer"),
        ("learning_rate: 1.0e-3", "learning_rate: -1.0e-3", "finetune.params.learning_rate", "greater than 0"),
        ("learning_rate: 1.0e-3", "learning_rate: .nan", "finetune.params.learning_rate", "finite"),
        ("endpoint: tiny-run-ep}", "endpoint: tiny-run-ep, instance_count: true}", "deploy.instance_count", "valid integer"),
        ("owner: team-a", "owner: team-a\ncompute: {nodes: true}", "compute.nodes", "valid integer"),
        ("owner: team-a", "owner: team-a\nlifecycle: {expire_after: 1000000000d}", "lifecycle.expire_after", "longer than 3650 days"),
        ("owner: team-a", 'owner: team-a\nlifecycle: {keep: "yes"}', "lifecycle.keep", "valid boolean"),
    ],
)
def test_numbers_counts_and_durations_are_bounded(local_spec_text, old: str, new: str, path: str, needle: str) -> None:
    from gitops.spec.policy import Policy

    text = local_spec_text()
    assert old in text
    result = validate_text(text.replace(old, new), "runs/tiny-run.yaml", Policy())
    assert not result.ok
    assert any(f.path == path and needle in f.message for f in result.findings), [f.format() for f in result.findings]
