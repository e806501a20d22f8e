"""The dashboard's pages in the Function App: ``GET /api/dashboard/{*path}``, the same pages as ``gitops ui``.

Anonymous at the Functions layer (a browser carries no function key): who may read is decided by
``function_app.principal`` from App Service authentication, first, before the services are built, so that nothing
touches storage for a caller it does not trust. Read-only: GET only, and the pages link to GitHub for every action.
"""

from __future__ import annotations

import logging
import time

import azure.functions as func

from function_app.principal import LOGIN_PATH, DashboardAccess, viewer
from gitops.errors import AuthError, ConfigurationError, GitopsError

bp = func.Blueprint()
log = logging.getLogger("gitops.functions")
BASE = "/api/dashboard/"


def _page(status: int, title: str, message: str, hint: str = "", login: bool = False) -> func.HttpResponse:
    """A small error page, rendered (and escaped) by the dashboard's own templates."""
    from gitops.dashboard.pages import html_page

    page = html_page(status, "error.html", base=BASE, title=title, message=message, hint=hint, refresh_s=0)
    headers = dict(page.headers)
    if login:
        headers["Location"] = f"{LOGIN_PATH}?post_login_redirect_uri={BASE}"
    return func.HttpResponse(page.body, status_code=status, headers=headers, mimetype="text/html", charset="utf-8")


def serve(req: func.HttpRequest) -> func.HttpResponse:
    from function_app.services import services
    from gitops.dashboard.pages import DashboardSource, respond
    from gitops.lifecycle.wiring import price_book

    try:
        viewer(req.headers, DashboardAccess.load())  # who, before anything is read
    except ConfigurationError as exc:
        log.warning("dashboard: %s", exc.headline)
        return _page(503, "Dashboard off", exc.headline, exc.hint or "")
    except AuthError as exc:
        return _page(401, "Sign in", exc.headline, exc.hint or "", login=True)
    except GitopsError as exc:
        return _page(exc.http_status, "Not allowed", exc.headline, exc.hint or "")
    try:
        s = services()
        source = DashboardSource(s.lifecycle.ledger, s.lifecycle.reader_for, time.time, price_book(live=False), s.settings.repo)
        page = respond(source, req.route_params.get("path", "") or "", BASE)
    except GitopsError as exc:
        log.warning("dashboard: %s %s", exc.http_status, exc.headline)
        return _page(exc.http_status, "This page failed", exc.headline)
    except Exception as exc:  # noqa: BLE001  (the one place that turns an unexpected failure into a 500)
        log.error("dashboard failed: %s", type(exc).__name__)
        return _page(500, "This page failed", "internal error; see the function logs")
    return func.HttpResponse(
        page.body, status_code=page.status, headers=page.headers, mimetype=page.content_type.split(";")[0], charset="utf-8"
    )


@bp.function_name("dashboard")
@bp.route(route="dashboard/{*path}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def dashboard(req: func.HttpRequest) -> func.HttpResponse:
    return serve(req)
