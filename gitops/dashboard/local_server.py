"""``gitops ui``'s server: the dashboard's pages on 127.0.0.1, on a port the system picks, for whoever holds the token.

Like Jupyter: the URL printed once carries a one-time token (``/?token=...``). The first request that presents it gets
a cookie (HttpOnly, SameSite=Strict, for this port's origin) and is redirected to the same page without the token,
so the token leaves the address bar and the history; every later request (pages, the refresh, the CSS) carries the
cookie. Without it, or with another token, nothing is served but a 401 that says where the URL is. A request whose
Host is not this loopback address and port is refused (a DNS-rebinding page in another tab cannot read the ledger).
Only GET and HEAD are answered: the dashboard is read-only.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from gitops.dashboard.pages import SECURITY_HEADERS, DashboardSource, Page, respond

COOKIE = "gitops_ui"
HOST = "127.0.0.1"


class DashboardServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, source: DashboardSource, port: int = 0, token: str | None = None) -> None:
        self.source = source
        self.token = token or secrets.token_urlsafe(24)
        super().__init__((HOST, port), _Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        """The URL to open once: it carries the token."""
        return f"http://{HOST}:{self.port}/?token={self.token}"

    def allowed_hosts(self) -> frozenset[str]:
        return frozenset({f"{HOST}:{self.port}", f"localhost:{self.port}"})


class _Handler(BaseHTTPRequestHandler):
    server: DashboardServer
    server_version = "finetune-gitops-ui"
    sys_version = ""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002  (the URL may carry the token: never logged)
        return

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(head=True)

    def do_GET(self) -> None:  # noqa: N802
        self._answer(head=False)

    def _refuse_method(self) -> None:
        self._send(Page(405, "text/plain; charset=utf-8", b"read-only: GET and HEAD only\n"), extra={"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse_method  # noqa: N815

    def _answer(self, *, head: bool) -> None:
        if self.headers.get("Host", "") not in self.server.allowed_hosts():
            self._send(Page(421, "text/plain; charset=utf-8", b"this dashboard answers only on its own loopback address\n"), head=head)
            return
        parts = urlsplit(self.path)
        offered = parse_qs(parts.query).get("token", [None])[0]
        if offered is not None:
            if not hmac.compare_digest(offered.encode(), self.server.token.encode()):
                self._unauthorized(head)
                return
            cookie = f"{COOKIE}={self.server.token}; HttpOnly; SameSite=Strict; Path=/"
            self._send(Page(303, "text/plain; charset=utf-8", b""), extra={"Location": parts.path or "/", "Set-Cookie": cookie}, head=head)
            return
        if not self._has_cookie():
            self._unauthorized(head)
            return
        try:
            page = respond(self.server.source, parts.path, "/")
        except Exception as exc:  # noqa: BLE001  (one page failing never takes the server down; the cause is shown)
            from gitops.errors import GitopsError

            what = exc.headline if isinstance(exc, GitopsError) else type(exc).__name__
            page = Page(500, "text/plain; charset=utf-8", f"this page failed: {what}\n".encode())
        self._send(page, head=head)

    def _has_cookie(self) -> bool:
        try:
            jar = SimpleCookie(self.headers.get("Cookie", ""))
        except CookieError:
            return False
        morsel = jar.get(COOKIE)
        return morsel is not None and hmac.compare_digest(morsel.value.encode(), self.server.token.encode())

    def _unauthorized(self, head: bool) -> None:
        body = b"open the URL `gitops ui` printed (it carries the token)\n"
        self._send(Page(401, "text/plain; charset=utf-8", body), head=head)

    def _send(self, page: Page, *, extra: dict[str, str] | None = None, head: bool = False) -> None:
        self.send_response(page.status)
        for name, value in {**SECURITY_HEADERS, **page.headers, **(extra or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Type", page.content_type)
        self.send_header("Content-Length", str(len(page.body)))
        self.end_headers()
        if not head:
            self.wfile.write(page.body)


@contextmanager
def serving(source: DashboardSource, port: int = 0, token: str | None = None) -> Iterator[DashboardServer]:
    """The server in a thread of this process, for as long as the block runs (tests, the benchmark)."""
    server = DashboardServer(source, port, token)
    thread = threading.Thread(target=server.serve_forever, name="gitops-ui", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
