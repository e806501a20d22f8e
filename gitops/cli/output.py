"""Where the command line writes: its own lines to the terminal; what libraries print (MLflow's database and
registry lines, model-card and licence warnings, Hugging Face progress bars) to ``<workspace>/logs/cli.log``
unless ``-v``/``--verbose`` asks for it on the terminal.

Libraries write to whatever ``sys.stderr`` is when they write (MLflow's stream, ``warnings``, tqdm) or when they
first log (transformers' handler): while a command runs quietly, ``sys.stderr`` is a sink that appends to the log
file, opened on its first line only (a read-only ``status`` creates nothing). The command's own messages go to
``err()``, the stream that was ``sys.stderr`` before.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path
from typing import Any, TextIO

# Read by the libraries when they are imported, which happens lazily inside commands.
QUIET_ENV = {
    "TRANSFORMERS_VERBOSITY": "error",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TQDM_DISABLE": "1",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "DATASETS_VERBOSITY": "error",
}

_terminal: TextIO | None = None


def err() -> TextIO:
    """The command's own error stream (the terminal, or a test's capture), whatever libraries are told."""
    return _terminal or sys.stderr


def log_path() -> Path:
    from gitops.settings import Settings

    return Settings.load().workspace_dir / "logs" / "cli.log"


class _Sink(io.TextIOBase):
    """Library output while quiet: appended to the log file, which is opened when the first line comes."""

    def __init__(self) -> None:
        self._file: TextIO | None = None

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def write(self, text: str) -> int:
        if self._file is None:
            try:
                path = log_path()
                path.parent.mkdir(parents=True, exist_ok=True)
                self._file = path.open("a", encoding="utf-8")
            except OSError:  # nowhere to keep it: dropped, never a failure of the command
                return len(text)
        self._file.write(text)
        return len(text)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        super().close()


def quiet() -> None:
    """Send library output to the log file until ``restore``."""
    global _terminal
    if _terminal is not None:
        return
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    _terminal = sys.stderr
    sys.stderr = _Sink()


def restore() -> None:
    global _terminal
    if _terminal is None:
        return
    sink, sys.stderr, _terminal = sys.stderr, _terminal, None
    if isinstance(sink, _Sink):
        sink.close()


class Status:
    """A spinner line on the command's console that leaves ``sys.stderr`` alone (rich's own status takes it over
    and would print what libraries write above the spinner, quiet or not). Where the console is no terminal (CI, a
    pipe), where a spinner shows nothing, it prints plain lines instead: each new phase at once, and the same phase's
    progress at most every ``PLAIN_EVERY_S`` seconds, so a log never sits silent for a minute."""

    PLAIN_EVERY_S = 10.0

    def __init__(self, console: Any, text: str, clock: Any = None) -> None:
        import time

        from rich.live import Live
        from rich.spinner import Spinner

        self._console = console
        self._plain = not console.is_terminal
        self._clock = clock or time.monotonic
        self._said: tuple[str, float] = ("", 0.0)
        self._spinner = Spinner("dots", text=text)
        self._live = Live(
            self._spinner,
            console=console,
            transient=True,
            refresh_per_second=10,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._first = text

    def __enter__(self) -> Status:
        if self._plain:
            self._say(self._first)
        else:
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._plain:
            self._live.__exit__(*exc)  # type: ignore[arg-type]

    def update(self, text: str) -> None:
        if self._plain:
            self._say(text)
        else:
            self._spinner.update(text=text)

    def _say(self, text: str) -> None:
        said, at = self._said
        now = self._clock()
        phase = text.split(" · ")[0]
        if text != said and (phase != said.split(" · ")[0] or now - at >= self.PLAIN_EVERY_S):
            self._console.print(text, markup=False, highlight=False)
            self._said = (text, now)
