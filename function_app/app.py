"""The one ``FunctionApp``: HTTP functions, the job-event function and the timers, one blueprint each."""

from __future__ import annotations

import azure.functions as func


def build_app() -> func.FunctionApp:
    from function_app import http_api, job_events, timers

    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
    for blueprint in (http_api.bp, job_events.bp, timers.bp):
        app.register_functions(blueprint)
    return app
