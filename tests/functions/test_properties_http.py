"""The Function App's entry points under arbitrary input (property-based): a 4xx or a dropped message with a
line, never a 500 or an exception escaping to the host."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.security.test_properties import FEW, JSON, SHAPED


@FEW
@given(st.binary(max_size=200) | JSON.map(lambda v: json.dumps(v).encode()))
def test_any_step_message_is_handled_or_dropped(app_services, body: bytes) -> None:
    from azure.functions.queue import QueueMessage

    from function_app.step_queue import handle_step_message

    assert handle_step_message(QueueMessage(id="m", body=body, dequeue_count=1)) in ("malformed", "idle")


@FEW
@given(JSON | SHAPED)
def test_the_http_functions_answer_any_body_with_a_4xx_never_a_500(app_services, call, token, body: Any) -> None:
    auth = {"Authorization": f"Bearer {token()}"}
    for name in ("validate", "submit"):
        response = call(name, raw=json.dumps(body).encode(), headers=auth)
        assert response.status_code in (200, 202, 400, 403, 404, 409, 413, 422), (name, response.get_body()[:300])
        assert "error" in json.loads(response.get_body()) or response.status_code < 300


def test_a_deeply_nested_body_is_400_and_without_a_token_401(app_services, call, token) -> None:
    deep = ("[" * 100_000 + "]" * 100_000).encode()
    assert call("validate", raw=deep, headers={"Authorization": f"Bearer {token()}"}).status_code in (400, 413)
    assert call("validate", raw=deep[:60_000], headers={}).status_code == 401  # nobody's body is parsed before who they are
