"""``gitops ui``: the dashboard of this workspace's runs on 127.0.0.1, for whoever has the URL it prints (a token)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import typer

from gitops.cli import output
from gitops.cli.app import app

if TYPE_CHECKING:
    from gitops.dashboard.pages import DashboardSource


def dashboard_source(refresh_s: float = 5.0) -> DashboardSource:
    """What the local dashboard reads: this workspace's ledger and metrics, the committed price snapshot (a page never
    asks a price API), the repository the plan names resources after."""
    from gitops.dashboard.pages import DashboardSource
    from gitops.lifecycle.wiring import local_lifecycle, price_book

    lifecycle = local_lifecycle()
    return DashboardSource(lifecycle.ledger, lifecycle.reader_for, time.time, price_book(live=False), lifecycle.repo, refresh_s)


@app.command()
def ui(
    port: int = typer.Option(0, help="Port on 127.0.0.1 (0: one the system picks)."),
    refresh: float = typer.Option(5.0, help="Seconds between a moving page's refreshes."),
    open_browser: bool = typer.Option(False, "--open", help="Open the URL in this machine's browser."),
    once: bool = typer.Option(False, "--once", help="Print the URL and stop (a check that it starts)."),
) -> None:
    """Serve the dashboard on 127.0.0.1 (read-only): every run, and each run's timeline, gate, ramp, loss curves,
    smoke test and cost. The URL printed carries a one-time token; keep it to yourself. Ctrl-C stops it."""
    from gitops.dashboard.local_server import DashboardServer

    if refresh <= 0:
        raise typer.BadParameter("must be more than 0 seconds", param_hint="--refresh")
    server = DashboardServer(dashboard_source(refresh), port)
    print(f"dashboard: {server.url}")
    print("(read-only; the token in the URL is this session's: Ctrl-C stops the server)", file=output.err())
    if once:
        server.server_close()
        return
    if open_browser:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
