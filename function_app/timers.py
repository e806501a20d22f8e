"""Timer functions: ``reconcile`` (finish runs whose event never came), ``cleanup`` (idle, expired, stuck
endpoints) and ``watch`` (retirements, newer versions, quota and drift, recorded for the watch workflow).
Schedules are 6-field NCRONTAB (UTC) from app settings. A failing run logs and returns; the next run carries on
from the ledger.
"""

from __future__ import annotations

import logging

import azure.functions as func

from function_app.config import CLEANUP_SCHEDULE_SETTING, RECONCILE_SCHEDULE_SETTING, WATCH_SCHEDULE_SETTING
from function_app.services import services
from gitops.lifecycle.reconcile import SKIPPED

log = logging.getLogger("gitops.functions")
bp = func.Blueprint()


def run_reconcile() -> int:
    try:
        decisions = services().lifecycle.reconcile()
    except Exception as exc:  # noqa: BLE001  (a periodic job never raises: the next tick retries)
        log.error("reconcile failed: %s: %s", type(exc).__name__, getattr(exc, "headline", ""))
        return -1
    for d in decisions:
        (log.warning if d.action == SKIPPED else log.info)("reconcile: run %s: %s (%s)", d.run, d.action, d.reason)
    return len(decisions)


def run_cleanup_once() -> int:
    from gitops.cleanup.run import cleanup_everywhere

    s = services()
    deleted = 0
    for name in s.cleanup_backends:
        try:
            # The policy the latest run was submitted with (each run's own defaults for its endpoint).
            verdicts = cleanup_everywhere(name, s.backend_for, s.lifecycle.backend_in, s.lifecycle.ledger, s.policy, repo=s.lifecycle.repo)
        except Exception as exc:  # noqa: BLE001  (one backend failing leaves the others cleaned up)
            log.error("cleanup on %s failed: %s: %s", name, type(exc).__name__, getattr(exc, "headline", ""))
            continue
        for v in verdicts:
            log.info("cleanup: %s", v.line())
        deleted += sum(1 for v in verdicts if v.action == "delete")
    return deleted


def run_watch_once() -> int:
    """The watch over the specs the ledger holds (the Function has no checkout: each run's newest merged version) and
    every live run's endpoint; the findings are kept as the ledger's ``watch`` document for `GET /api/watch`."""
    import time

    from gitops.watch.findings import WATCH_DOCUMENT
    from gitops.watch.scan import ledger_specs, scan

    s = services()
    now = time.time()
    try:
        ledger = s.lifecycle.ledger
        result = scan(ledger_specs(ledger.list()), ledger, s.backend_for, now, repo=s.lifecycle.repo, backend_of=s.lifecycle.backend_of)
        ledger.save_document(WATCH_DOCUMENT, result.document(now))
    except Exception as exc:  # noqa: BLE001  (a periodic job never raises: the next tick retries)
        log.error("watch failed: %s: %s", type(exc).__name__, getattr(exc, "headline", ""))
        return -1
    for f in result.findings:
        log.info("watch: %s %s: %s: %s", f.severity, f.run, f.subject, f.what)
    return len(result.findings)


@bp.function_name("reconcile")
@bp.timer_trigger(arg_name="timer", schedule=f"%{RECONCILE_SCHEDULE_SETTING}%", run_on_startup=False, use_monitor=True)
def reconcile(timer: func.TimerRequest) -> None:
    run_reconcile()


@bp.function_name("cleanup")
@bp.timer_trigger(arg_name="timer", schedule=f"%{CLEANUP_SCHEDULE_SETTING}%", run_on_startup=False, use_monitor=True)
def cleanup(timer: func.TimerRequest) -> None:
    run_cleanup_once()


@bp.function_name("watch")
@bp.timer_trigger(arg_name="timer", schedule=f"%{WATCH_SCHEDULE_SETTING}%", run_on_startup=False, use_monitor=True)
def watch(timer: func.TimerRequest) -> None:
    run_watch_once()
