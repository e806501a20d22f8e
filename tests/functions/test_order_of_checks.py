"""Class 16 of CASES.md: who may read, and in what order.

The caller is verified before anything is built: an unauthenticated request touches no storage, SDK or backend
(with storage unreachable, building the services first cost 84 s of retries on every request). And the documented
local settings (``local.settings.json.example``) work as they are against Azurite on its default ports.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT
from tests.functions.conftest import REPO

# Every HTTP function, with what it needs of a request; none answers anything but 401 without a token.
HTTP = [
    ("validate", "POST", {}),
    ("submit", "POST", {}),
    ("retry", "POST", {"name": "phi4-ultrachat"}),
    ("promote", "POST", {"name": "phi4-ultrachat"}),
    ("rollback", "POST", {"name": "phi4-ultrachat"}),
    ("get_run", "GET", {"name": "phi4-ultrachat"}),
    ("list_runs", "GET", {}),
    ("get_watch", "GET", {}),
    ("list_promotions", "GET", {}),
    ("release", "POST", {"name": "phi4-ultrachat", "env": "prod"}),
]


@pytest.mark.parametrize(("name", "method", "route"), HTTP)
@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token", "Basic dXNlcjpwYXNz"])
def test_an_unverified_caller_is_refused_before_any_storage_or_backend_work(
    unbuilt: list[Any], call, name: str, method: str, route: dict[str, str], authorization: str | None
) -> None:
    from function_app import services as module

    headers = {"Authorization": authorization} if authorization else {}
    response = call(name, {"reason": "x", "specs": []}, headers, method=method, route_params=route)
    assert response.status_code == 401, response.get_body()
    assert module._current is None  # the lifecycle, the ledger, the queue and the backends were never built
    assert unbuilt == []  # and nothing was connected to: not the storage, not Azure, not even the JWKS


def test_the_documented_local_settings_work_against_azurite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, oidc_keys, call, token
) -> None:
    """``cp local.settings.json.example local.settings.json`` and Azurite on its default ports: the handlers read
    and write the ledger and the queue (``UseDevelopmentStorage=true`` is the emulator, as the Functions host reads it)."""
    from function_app.services import services, use_services
    from tests import azurite

    values = json.loads((REPO_ROOT / "local.settings.json.example").read_text())["Values"]
    assert values["GITOPS_LEDGER_CONNECTION_STRING"] == values["GITOPS_QUEUE"] == "UseDevelopmentStorage=true"
    for key, value in {**values, "GITOPS_REPO": REPO, "GITOPS_OIDC_JWKS_URL": oidc_keys[1]}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("GITOPS_LEDGER_CONTAINER", f"ledger-{tmp_path.name.lower().replace('_', '-')[-40:]}")
    blob, _ = azurite.start("blob", tmp_path / "blob", port=10000)
    queue, _ = azurite.start("queue", tmp_path / "queue", port=10001)
    use_services(None)
    try:
        github = {"Authorization": f"Bearer {token()}"}
        listed = call("list_runs", method="GET", headers=github)
        assert listed.status_code == 200, listed.get_body()
        assert json.loads(listed.get_body()) == {"runs": [], "unreadable": []}
        watch = call("get_watch", method="GET", headers=github)
        assert watch.status_code == 404 and "has not run yet" in watch.get_body().decode()
        s = services()
        s.lifecycle.ledger.save_document("watch", {"at": "2026-12-04T06:00:00+00:00", "specs": 0, "runs": 0, "findings": []})
        assert call("get_watch", method="GET", headers=github).status_code == 200  # written to Azurite, read back
        assert s.lifecycle.queue is not None
    finally:
        use_services(None)
        azurite.stop(blob)
        azurite.stop(queue)
