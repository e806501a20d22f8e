"""The command line's own output against what libraries print: quiet by default, all of it with -v; and the
progress and summary lines of ``gitops run``."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from gitops.cli import output
from gitops.cli.run_cmds import Pace, summary_line


def test_library_lines_go_to_the_log_file_and_ours_to_the_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GITOPS_WORKSPACE", str(tmp_path / "ws"))
    output.quiet()
    try:
        print("2026/11/25 INFO mlflow.store.db.utils: Creating initial MLflow database tables...", file=sys.stderr)
        library = logging.getLogger("some.library")  # configured on first import, as transformers does: bound to the sink
        library.addHandler(logging.StreamHandler())
        library.propagate = False
        library.warning("Unable to find license information for this model")
        print("error: ours", file=output.err())
    finally:
        output.restore()
    err = capsys.readouterr().err
    assert "error: ours" in err and "mlflow" not in err and "license" not in err
    log = (tmp_path / "ws" / "logs" / "cli.log").read_text()
    assert "Creating initial MLflow database tables" in log and "license" in log


def test_a_quiet_command_that_prints_nothing_creates_no_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITOPS_WORKSPACE", str(tmp_path / "ws"))
    output.quiet()
    output.restore()
    assert not (tmp_path / "ws").exists()


def test_verbose_shows_what_libraries_print(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITOPS_WORKSPACE", str(tmp_path / "ws"))
    from gitops.spec import schema

    real = schema.run_spec_schema_text

    def chatty() -> str:
        print("library says hi", file=sys.stderr)
        return real()

    monkeypatch.setattr(schema, "run_spec_schema_text", chatty)
    quiet = cli("schema")
    loud = cli("-v", "schema")
    assert "library says hi" not in quiet.err and "library says hi" in loud.err
    assert sys.stderr is not None and output._terminal is None  # restored after each command


def test_the_progress_line_has_steps_losses_time_and_what_is_left() -> None:
    pace = Pace()
    assert pace.line("running", {}, 3) == "job running · 3s"
    assert pace.line("running", {"step": 10, "max_steps": 60, "train_loss": 5.78}, 20) == "job running · step 10/60 · loss 5.780 · 20s"
    line = pace.line("running", {"step": 30, "max_steps": 60, "train_loss": 3.5, "eval_loss": 3.9}, 60)
    assert line == "job running · step 30/60 · loss 3.500 · eval loss 3.900 · 1m · ~1m left"  # 20 steps in 40 s


def test_the_summary_line_gives_the_end_the_time_and_the_final_losses() -> None:
    live = SimpleNamespace(run="local-tiny", status="live", report={"final_train_loss": 2.478, "final_eval_loss": 2.458})
    assert summary_line(live, 83) == "local-tiny live after 1m23s; final train loss 2.478, eval loss 2.458"
    assert summary_line(SimpleNamespace(run="x", status="failed", report=None), 5) == "x failed after 5s"


def test_looking_at_an_empty_workspace_creates_nothing(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITOPS_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.delenv("GITOPS_LEDGER_CONNECTION_STRING", raising=False)
    assert cli("status").out.startswith("no runs yet")
    assert cli("status", "--json").exit_code == 0
    assert cli("endpoints").out.startswith("no local endpoints")
    assert cli("reconcile").out.startswith("nothing to do")
    assert not (tmp_path / "ws").exists()


def test_durations_read_as_people_read_them() -> None:
    """A hold of 30 s once read "for 0 min" and a day's deadline "1440m"."""
    from gitops.util.durations import human

    assert [human(s) for s in (0, 30, 60, 75, 2700, 3600, 3700, 86400, 2 * 86400 + 1800, 3 * 86400, 273600, -5)] == [
        "0s",
        "30s",
        "1m",
        "1m15s",
        "45m",
        "1h",
        "1h01m",
        "24h",
        "48h30m",
        "3d",
        "3d4h",
        "0s",
    ]


def test_progress_is_plain_lines_where_the_console_is_no_terminal() -> None:
    """Piped (CI), `gitops run` once printed nothing for a minute and more: a spinner shows nothing there."""
    import io

    from rich.console import Console

    now = [0.0]
    sink = io.StringIO()
    with output.Status(Console(file=sink, force_terminal=False), "submitting...", clock=lambda: now[0]) as status:
        status.update("job running · 3s")  # a new phase: at once
        now[0] = 4.0
        status.update("job running · step 2/8 · 7s")  # the same phase, too soon: kept back
        now[0] = 15.0
        status.update("job running · step 6/8 · 18s")
        status.update("job running · step 6/8 · 18s")  # nothing new
        status.update("rollout: register · 19s")
    assert sink.getvalue().splitlines() == [
        "submitting...",
        "job running · 3s",
        "job running · step 6/8 · 18s",
        "rollout: register · 19s",
    ]


def test_the_list_views_gate_cell_is_short_and_never_cut_mid_word() -> None:
    from gitops.cli.run_cmds import _gate_cell

    long = "eval loss 4.7657 -> 21.5936 (+16.8278; at most +0.1)"
    cell = _gate_cell({"ok": False, "reasons": [long, "1 of 8 requests failed (12%; at most 5%)", "ROUGE-L 0.083 -> 0.023"]})
    assert cell == "FAILED: eval loss 4.7657 -> 21.5936 (+16.8278; at most … (+2 more)"
    assert _gate_cell({"ok": False, "reasons": ["eval loss rose"]}) == "FAILED: eval loss rose"
    assert _gate_cell({"ok": True}) == "ok" and _gate_cell(None) == "-"
