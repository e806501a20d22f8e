"""The local endpoint's limits, checked without a model: oversized or hostile requests are refused up front with
the limit named, and a bounded number of requests are admitted while the rest are told to come back."""

from __future__ import annotations

import json

import pytest

from gitops.backends.local import server
from gitops.backends.local.server import Admission, BadRequest, TooLarge, generation_params, parse_score_body


def conversation(n: int = 1, chars: int = 10) -> dict:
    return {"input_data": {"input_string": [{"role": "user", "content": "x" * chars}] * n, "parameters": {}}}


def test_a_huge_prompt_or_too_many_messages_is_413_with_the_limit() -> None:
    with pytest.raises(TooLarge, match=f"at most {server.MAX_CONTENT_CHARS}"):
        parse_score_body(conversation(chars=server.MAX_CONTENT_CHARS + 1))
    with pytest.raises(TooLarge, match=f"at most {server.MAX_MESSAGES}"):
        parse_score_body(conversation(n=server.MAX_MESSAGES + 1))
    assert parse_score_body(conversation(n=3))[0][0]["content"] == "x" * 10


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"max_new_tokens": 100000}, f"1..{server.MAX_NEW_TOKENS}"),
        ({"max_new_tokens": float("inf")}, "whole number"),
        ({"max_new_tokens": True}, "whole number"),
        ({"temperature": float("nan")}, "finite"),
        ({"top_p": float("inf")}, "finite"),
        ({"temperature": "hot"}, "bad generation parameter"),
        ({"top_p": 0}, "top_p"),
        ({"temperature": 1e6}, "temperature"),
    ],
)
def test_generation_parameters_are_bounded_and_finite(params: dict, needle: str) -> None:
    with pytest.raises(BadRequest, match=needle):
        generation_params(params)


def test_accepted_parameters_carry_a_time_bound() -> None:
    args = generation_params({"max_new_tokens": 16, "do_sample": True, "temperature": 0.7, "top_p": 0.9})
    assert args == {"max_new_tokens": 16, "do_sample": True, "temperature": 0.7, "top_p": 0.9, "max_time": server.GENERATION_TIMEOUT_S}


def test_admission_is_bounded_and_released() -> None:
    gate = Admission(limit=2)
    assert gate.enter() and gate.enter() and not gate.enter()
    gate.leave()
    assert gate.enter() and gate.pending == 2


def test_nan_in_the_body_is_refused_by_the_parser() -> None:
    with pytest.raises(ValueError):
        json.loads('{"parameters": {"temperature": NaN}}', parse_constant=server._no_constant)
