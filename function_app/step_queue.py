"""The queue function ``advance``: a step message -> the run's next steps (``Lifecycle.advance``).

A message is a nudge; the ledger's cursor is the truth, so a duplicate or early message only looks. A step
that fails for a reason a retry may fix raises, and the host delivers the message again; once it has been
delivered ``MAX_DEQUEUE_COUNT`` times (host.json ``extensions.queues.maxDequeueCount``) the handler records
the reason on the run before the host moves the message to the poison queue, so no run is left half-way
without a word.
"""

from __future__ import annotations

import logging

import azure.functions as func

from function_app.config import MAX_DEQUEUE_COUNT, QUEUE_CONNECTION, QUEUE_NAME_SETTING
from function_app.services import services
from gitops.errors import GitopsError, RequestError

log = logging.getLogger("gitops.functions")
bp = func.Blueprint()


def handle_step_message(msg: func.QueueMessage) -> str:
    """What became of the message: the decision's action, ``malformed``, or ``given_up``."""
    from gitops.lifecycle.queue import StepMessage

    try:
        message = StepMessage.from_json(msg.get_body())
    except RequestError as exc:  # not ours to retry: a retry would fail the same way
        log.error("step message %s dropped: %s", msg.id, exc.headline)
        return "malformed"
    lifecycle = services().lifecycle
    try:
        decision = lifecycle.advance(message.run)
    except Exception as exc:
        reason = exc.headline if isinstance(exc, GitopsError) else f"{type(exc).__name__}: {exc}"[:300]
        if (msg.dequeue_count or 0) >= MAX_DEQUEUE_COUNT:
            lifecycle.give_up(message.run, reason)
            log.error("run %s: step message given up after %s tries: %s", message.run, msg.dequeue_count, reason)
            return "given_up"
        log.warning(
            "run %s: step failed (try %s of %s), the message comes back: %s", message.run, msg.dequeue_count, MAX_DEQUEUE_COUNT, reason
        )
        raise
    log.info("run %s: %s (%s)", message.run, decision.action, decision.reason)
    return decision.action


@bp.function_name("advance")
@bp.queue_trigger(arg_name="msg", queue_name=f"%{QUEUE_NAME_SETTING}%", connection=QUEUE_CONNECTION)
def advance(msg: func.QueueMessage) -> None:
    handle_step_message(msg)
