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


def test_idle_and_trickling_connections_are_closed_never_held(tmp_path) -> None:
    """A thousand sockets that never sent a request once stayed open for good (uvicorn times out only the quiet after
    an answer). Each connection now has HEAD_TIMEOUT_S for a request's head, not reset by a byte at a time."""
    import select
    import socket
    import time

    import requests

    from gitops.backends.local.endpoints import SERVER_MODULE
    from gitops.backends.local.processes import spawn

    endpoint = tmp_path / "ep"
    endpoint.mkdir()
    (endpoint / "key").write_text("k" * 32)
    (endpoint / "endpoint.json").write_text("{}")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = spawn(["-m", SERVER_MODULE, str(endpoint), str(port)], tmp_path / "server.log")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/health/live", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, (tmp_path / "server.log").read_text()
            time.sleep(0.1)
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(200)]
        trickler = socket.create_connection(("127.0.0.1", port))
        kept_alive = socket.create_connection(("127.0.0.1", port))
        kept_alive.sendall(f"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        assert b"200 OK" in kept_alive.recv(4096)
        head = f"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Slow: ".encode() + b"a" * 200
        open_ = [*idle, trickler, kept_alive]
        closed: set[socket.socket] = set()
        sent = 0
        deadline = time.monotonic() + 4 * server.HEAD_TIMEOUT_S  # a bound on the wait, not a timing assertion
        while len(closed) < len(open_) and time.monotonic() < deadline:
            for sock in (trickler, kept_alive):  # a byte each 0.1 s: every read is quick, the head never ends
                if sock not in closed and sent < len(head):
                    try:
                        sock.send(head[sent : sent + 1])
                    except OSError:
                        closed.add(sock)
            sent += 1
            readable, _, _ = select.select([s for s in open_ if s not in closed], [], [], 0.1)
            for sock in readable:
                try:
                    if sock.recv(4096) == b"":
                        closed.add(sock)
                except OSError:
                    closed.add(sock)
        assert len(closed) == len(open_), f"{len(open_) - len(closed)} of {len(open_)} connections still open"
        assert requests.get(f"http://127.0.0.1:{port}/health/live", timeout=5).status_code == 200  # still serves
        for sock in open_:
            sock.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
