"""Detached processes of the local backend (job workers, endpoint servers): start, identify, stop."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]


def spawn(args: list[str], log_path: Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``python ARGS`` in its own session (it outlives the CLI); output goes to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        **(env or {}),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONUNBUFFERED": "1",
    }
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=str(cwd or Path.cwd()),
            env=env,
            start_new_session=True,
        )
    return proc


def _state(pid: int | str) -> tuple[list[str], str] | None:
    """A process's argv and its state letter (``Z``: exited, not yet reaped), from ``/proc``; None when it is gone
    or not ours to read."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return [w.decode(errors="replace") for w in argv], stat.rsplit(")", 1)[-1].split()[0]


def is_running(pid: int | None, marker: str) -> bool:
    """True when ``pid`` is alive and is really our process (its command line holds ``marker``),
    so that a recycled pid is never mistaken for it, nor signalled."""
    if not pid:
        return False
    # Right after fork the command line is still the parent's until exec: give it a moment.
    for _ in range(20):
        state = _state(pid)
        if state is None:
            return False
        argv, code = state
        cmdline = " ".join(argv)
        if code == "Z":  # exited, not yet reaped
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            return False
        if marker in cmdline:
            return True
        time.sleep(0.05)
    return False


def stop(pid: int | None, marker: str, timeout_s: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL after ``timeout_s``; a no-op when it is gone."""
    if not is_running(pid, marker):
        return
    assert pid is not None
    for sig, wait in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not is_running(pid, marker):
                return
            time.sleep(0.05)


def find(module: str, under: Path) -> list[tuple[int, Path]]:
    """Every live ``python -m MODULE DIR ...`` process whose DIR lies directly under ``under``, as (pid, DIR): what
    a workspace runs, whether or not a record still names it (a lost race, a record deleted by hand). Read from
    ``/proc``; argv is compared word by word, so endpoint ``ep`` never matches ``ep2``."""
    found = []
    root = under.resolve()
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        state = _state(entry.name) if entry.name.isdigit() else None
        if state is None:  # not a process, gone meanwhile, or not ours to read
            continue
        words, code = state
        if code == "Z" or "-m" not in words:
            continue
        i = words.index("-m")
        if words[i + 1 : i + 2] != [module] or len(words) < i + 3:
            continue
        target = Path(words[i + 2])
        if target.parent == root:
            found.append((int(entry.name), target))
    return sorted(found)


def resident_mib(pid: int | None) -> float | None:
    """The resident memory of ``pid`` in MiB (Linux ``/proc``), or None where it cannot be read."""
    if not pid:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
