"""The one ``FunctionApp``: HTTP functions, the job-event function, the step queue function and the timers."""

from __future__ import annotations

import azure.functions as func


def build_app() -> func.FunctionApp:
    from function_app import dashboard, http_api, job_events, step_queue, timers

    app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
    for blueprint in (http_api.bp, dashboard.bp, job_events.bp, step_queue.bp, timers.bp):
        app.register_functions(blueprint)
    return app
