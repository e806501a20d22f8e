"""``gitops ui``'s server on 127.0.0.1: the one-time token becomes a cookie and leaves the URL, nothing is served
without it (pages, files, the refresh), another Host is refused (DNS rebinding), and only GET and HEAD are answered."""

from __future__ import annotations

import http.client
from pathlib import Path

import pytest

from gitops.cost.prices import committed_snapshot
from gitops.dashboard.local_server import COOKIE, serving
from gitops.dashboard.pages import DashboardSource
from gitops.ledger.local import LocalLedger


def request(port: int, method: str, path: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, headers={"Host": f"127.0.0.1:{port}", **(headers or {})})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


@pytest.fixture
def server(tmp_path: Path):
    source = DashboardSource(LocalLedger(tmp_path / "ledger"), None, lambda: 1_800_000_000.0, committed_snapshot(), "acme/models")
    with serving(source) as s:
        yield s


def test_the_token_becomes_a_cookie_and_leaves_the_url(server) -> None:
    assert server.url.startswith(f"http://127.0.0.1:{server.port}/?token=") and len(server.token) >= 32
    first = request(server.port, "GET", f"/?token={server.token}")
    assert first.status == 303 and first.getheader("Location") == "/"
    cookie = first.getheader("Set-Cookie") or ""
    assert cookie.startswith(f"{COOKIE}={server.token};") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert first.getheader("Referrer-Policy") == "no-referrer"
    jar = {"Cookie": f"{COOKIE}={server.token}"}
    for path in ("/", "/static/dashboard.js", "/static/dashboard.css", "/static/favicon.svg"):
        assert request(server.port, "GET", path, jar).status == 200, path
    assert request(server.port, "GET", "/runs/nope", jar).status == 404


@pytest.mark.parametrize(
    "headers",
    [{}, {"Cookie": f"{COOKIE}=wrong"}, {"Cookie": "other=1"}, {"Cookie": '"\\'}],
    ids=["no-cookie", "wrong-cookie", "other-cookie", "garbage-cookie"],
)
def test_nothing_is_served_without_the_token(server, headers: dict[str, str]) -> None:
    for path in ("/", "/runs/x", "/static/dashboard.js", "/?token=guess"):
        response = request(server.port, "GET", path, headers)
        assert response.status == 401, (path, response.status)
        assert response.getheader("Set-Cookie") is None


def test_another_host_is_refused_even_with_the_token(server) -> None:
    evil = {"Host": f"evil.example:{server.port}", "Cookie": f"{COOKIE}={server.token}"}
    assert request(server.port, "GET", "/", evil).status == 421
    assert request(server.port, "GET", "/", {"Host": f"localhost:{server.port}", "Cookie": f"{COOKIE}={server.token}"}).status == 200


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_it_is_read_only(server, method: str) -> None:
    response = request(server.port, method, "/", {"Cookie": f"{COOKIE}={server.token}"})
    assert response.status == 405 and response.getheader("Allow") == "GET, HEAD"


def test_gitops_ui_prints_a_loopback_url_with_a_token(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITOPS_WORKSPACE", str(tmp_path / "ws"))
    result = cli("ui", "--once", cwd=tmp_path)
    assert result.exit_code == 0, result.err
    (line,) = [x for x in result.out.splitlines() if x.startswith("dashboard: ")]
    assert line.startswith("dashboard: http://127.0.0.1:") and "/?token=" in line
