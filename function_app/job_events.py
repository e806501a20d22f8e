"""The Event Grid function: Azure ML job events -> the lifecycle (register, deploy, smoke, promote).

Delivery is at least once; the lifecycle makes a repeat a no-op. A transient backend failure is raised
(or a missing app setting) is raised so Event Grid delivers again and dead-letters in the end; any other
failure is logged and answered.
"""

from __future__ import annotations

import logging

import azure.functions as func

from function_app.services import services
from gitops.errors import ConfigurationError, GitopsError, TransientBackendError

log = logging.getLogger("gitops.functions")
bp = func.Blueprint()


def event_body(event: func.EventGridEvent | func.CloudEvent) -> dict[str, object]:
    """The event as the lifecycle reads it. azure-functions decodes a body with ``specversion`` into a
    ``CloudEvent`` (source, type, time; no topic), whatever the parameter's annotation says: a subscription with
    the CloudEvents v1.0 schema delivers those."""
    if isinstance(event, func.CloudEvent):
        return {
            "id": event.id,
            "source": event.source,
            "subject": event.subject,
            "type": event.type,
            "time": event.time.isoformat() if event.time else None,
            "data": event.get_json(),
            "specversion": event.specversion,
        }
    return {
        "id": event.id,
        "topic": event.topic,
        "subject": event.subject,
        "eventType": event.event_type,
        "eventTime": event.event_time.isoformat() if event.event_time else None,
        "data": event.get_json(),
        "dataVersion": event.data_version,
    }


def handle_job_event(event: func.EventGridEvent | func.CloudEvent) -> None:
    try:
        decisions = services().lifecycle.on_job_event(event_body(event))
    except (TransientBackendError, ConfigurationError) as exc:  # not the event's fault: let Event Grid retry, then dead-letter
        log.warning("job event %s: %s; Event Grid will deliver it again", event.id, exc.headline)
        raise
    except GitopsError as exc:
        log.error("job event %s: %s", event.id, exc.headline)
        return
    for d in decisions:
        log.info("job event %s: run %s: %s (%s)", d.event_id, d.run, d.action, d.reason)


@bp.function_name("on_job_event")
@bp.event_grid_trigger(arg_name="event")
def on_job_event(event: func.EventGridEvent) -> None:  # the worker accepts one class here; a CloudEvent arrives too
    handle_job_event(event)
