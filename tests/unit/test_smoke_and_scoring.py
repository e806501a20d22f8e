"""Smoke-test reply extraction (every response shape) and the scoring body parser."""

import json

import pytest

from gitops.backends.local.server import BadRequest, parse_score_body
from gitops.lifecycle.smoke import extract_reply
from pipelines.chat_format import prompt_messages

CHAT = {"id": "c", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}]}


@pytest.mark.parametrize("body", [{"output": "hi"}, ["hi"], [{"0": "hi"}], [{"output": "hi"}], CHAT, [CHAT], "hi"])
def test_every_known_response_shape(body: object) -> None:
    assert extract_reply(json.dumps(body)) == "hi"


@pytest.mark.parametrize("body", ["not json", "{}", "[]", json.dumps({"choices": []}), json.dumps([{"x": 1}])])
def test_unrecognised_replies(body: str) -> None:
    assert extract_reply(body) is None


def test_trailing_assistant_turn_is_dropped() -> None:
    messages = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
        {"role": "assistant", "content": "d"},
    ]
    assert prompt_messages(messages) == messages[:3]


MSG = [{"role": "user", "content": "hello"}]


@pytest.mark.parametrize(
    "body",
    [
        {"input_data": {"input_string": MSG, "parameters": {"max_new_tokens": 5}}, "params": {}},
        {"input_data": {"input_string": [MSG], "parameters": {"max_new_tokens": 5}}},
        {"messages": MSG, "max_tokens": 5},
    ],
)
def test_accepted_bodies(body: object) -> None:
    messages, params = parse_score_body(body)
    assert messages == MSG and params["max_new_tokens"] == 5


def test_flat_list() -> None:
    assert parse_score_body(MSG) == (MSG, {})


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"foo": 1}, "expected"),
        ({"input_data": {"x": 1}}, "input_string"),
        ({"input_data": {"input_string": []}}, "non-empty"),
        ([{"role": "robot", "content": "x"}], "message 0"),
        ({"input_data": {"input_string": MSG, "parameters": [1]}}, "parameters must be an object"),
    ],
)
def test_bad_bodies(body: object, needle: str) -> None:
    with pytest.raises(BadRequest, match=needle):
        parse_score_body(body)
