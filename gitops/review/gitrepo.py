"""Reading specs at git revisions by asking git itself (one ``diff``, one ``ls-tree``, one ``cat-file``)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from gitops.errors import GitopsError

RUNS_DIR = "runs"


@dataclass(frozen=True)
class FileChange:
    status: str  # added | changed | renamed | removed
    path: str  # the path at head (at base for removed)
    old_path: str | None = None


def _git(repo: Path, *args: str, stdin: bytes | None = None) -> bytes:
    proc = subprocess.run(["git", "-C", str(repo), *args], input=stdin, capture_output=True, check=False)
    if proc.returncode != 0:
        message = proc.stderr.decode(errors="replace").strip().splitlines()
        raise GitopsError(
            f"git {args[0]} failed: {message[-1] if message else proc.returncode}",
            hint="check that the revisions exist (fetch with enough depth in CI)",
        )
    return proc.stdout


def resolve(repo: Path, rev: str) -> str:
    return _git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").decode().strip()


DEFAULT_BRANCHES = ("origin/HEAD", "origin/main", "origin/master", "main", "master")


def default_base(repo: Path, head: str = "HEAD") -> tuple[str, str]:
    """The revision a pull request from ``head`` would be planned against: the merge base with the default branch
    (the first of ``DEFAULT_BRANCHES`` that exists), and that branch's name."""
    for branch in DEFAULT_BRANCHES:
        try:
            resolve(repo, branch)
        except GitopsError:
            continue
        return _git(repo, "merge-base", head, branch).decode().strip(), branch
    raise GitopsError("no default branch to plan against (origin/main, main or master)", hint="give --base REV")


def is_spec_path(path: str) -> bool:
    parts = path.split("/")
    return len(parts) == 2 and parts[0] == RUNS_DIR and parts[1].endswith((".yaml", ".yml"))


def diff_specs(repo: Path, base: str, head: str) -> list[FileChange]:
    out = _git(repo, "diff", "--name-status", "-M", "-z", base, head, "--", RUNS_DIR)
    fields = out.decode().split("\0")
    changes: list[FileChange] = []
    i = 0
    while i < len(fields) and fields[i]:
        code = fields[i]
        if code.startswith(("R", "C")):
            old, new = fields[i + 1], fields[i + 2]
            i += 3
            if is_spec_path(new):
                status = "renamed" if code.startswith("R") else "added"
                changes.append(FileChange(status, new, old if is_spec_path(old) else None))
            elif is_spec_path(old):
                changes.append(FileChange("removed", old))
            continue
        path = fields[i + 1]
        i += 2
        if not is_spec_path(path):
            continue
        status = {"A": "added", "M": "changed", "D": "removed", "T": "changed"}.get(code[0], "changed")
        changes.append(FileChange(status, path))
    return changes


def list_specs(repo: Path, rev: str) -> list[str]:
    out = _git(repo, "ls-tree", "-r", "-z", "--name-only", rev, "--", f"{RUNS_DIR}/")
    return sorted(p for p in out.decode().split("\0") if p and is_spec_path(p))


def read_blobs(repo: Path, refs: list[tuple[str, str]]) -> dict[tuple[str, str], str | None]:
    """Contents of many ``(rev, path)`` at once through one ``git cat-file --batch``."""
    if not refs:
        return {}
    request = "".join(f"{rev}:{path}\n" for rev, path in refs).encode()
    out = _git(repo, "cat-file", "--batch", stdin=request)
    result: dict[tuple[str, str], str | None] = {}
    pos = 0
    for ref in refs:
        end = out.index(b"\n", pos)
        header = out[pos:end].decode()
        pos = end + 1
        if header.endswith(" missing"):
            result[ref] = None
            continue
        size = int(header.split()[2])
        result[ref] = out[pos : pos + size].decode("utf-8", errors="replace")
        pos += size + 1
    return result


def remote_repository(repo: Path, remote: str = "origin") -> str | None:
    """``owner/name`` of a GitHub remote (https or ssh URL), or None when there is none."""
    import re

    try:
        url = _git(repo, "config", "--get", f"remote.{remote}.url").decode().strip()
    except (GitopsError, OSError):  # not a repository, no such remote, no git
        return None
    match = re.search(r"github\.com[:/]([^/\s]+)/([^/\s]+?)(?:\.git)?/?$", url)
    return f"{match.group(1)}/{match.group(2)}" if match else None


def repository_salt(repo: Path, configured: str) -> tuple[str, str]:
    """The repository that derived endpoint names are salted with, and where it came from: GITOPS_REPO (as CI and
    the Function have it), else this checkout's GitHub remote, so a laptop's plan shows the PR's names."""
    if configured:
        return configured, "GITOPS_REPO"
    remote = remote_repository(repo)
    return (remote, "the git remote origin") if remote else ("", "none (no GITOPS_REPO, no GitHub remote)")
