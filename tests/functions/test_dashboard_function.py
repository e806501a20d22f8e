"""The dashboard in the Function App (``GET /api/dashboard/{*path}``): anonymous at the Functions layer, so it serves
nothing unless App Service authentication is verifiably on, and only to the principals or groups allowed; who is
asking is settled before anything is built (no storage, no SDK, no backend for a refused caller)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.conftest import REFERENCE_ON_ASSETS, REPO_ROOT

MATERIAL = json.loads((REPO_ROOT / "tests/contracts/azure-docs/app_service_client_principal.json").read_text())
EXAMPLE = MATERIAL["example_entra_signin"]
OID, UPN = EXAMPLE["headers"]["X-MS-CLIENT-PRINCIPAL-ID"], EXAMPLE["headers"]["X-MS-CLIENT-PRINCIPAL-NAME"]
GROUP = next(c["val"] for c in EXAMPLE["payload"]["claims"] if c["typ"] == "groups")


def signed_in(payload: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> dict[str, str]:
    """The headers App Service sets for a signed-in caller (the documented shape), ``headers`` set over them."""
    body = base64.b64encode(json.dumps(payload or EXAMPLE["payload"]).encode()).decode()
    return {**EXAMPLE["headers"], "X-MS-CLIENT-PRINCIPAL": body, **(headers or {})}


@pytest.fixture
def auth_on(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "True")  # what the platform injects when authentication is on
    monkeypatch.setenv("GITOPS_UI_ALLOWED_PRINCIPALS", f"someone-else@contoso.example, {OID}")
    monkeypatch.delenv("GITOPS_UI_ALLOWED_GROUPS", raising=False)
    return monkeypatch


def get(call: Any, path: str = "", headers: dict[str, str] | None = None) -> Any:
    return call("dashboard", method="GET", headers=headers or {}, route_params={"path": path})


def test_the_material_names_what_the_code_reads() -> None:
    from function_app import principal

    quoted = MATERIAL["quoted"]
    for header in (principal.PRINCIPAL_HEADER, principal.PRINCIPAL_ID_HEADER, principal.PRINCIPAL_IDP_HEADER):
        assert header in quoted
    assert set(quoted["payload"]) == {"auth_typ", "claims", "name_typ", "role_typ"}
    assert principal.AUTH_ENABLED in MATERIAL["sources"]["auth_enabled_variable"]
    assert {c["typ"] for c in EXAMPLE["payload"]["claims"]} & set(principal.OBJECT_ID)


@pytest.mark.parametrize("enabled", [None, "False", "", "1"])
def test_without_the_platforms_authentication_a_forged_principal_gets_nothing_and_nothing_is_built(
    unbuilt: list[Any], call: Any, monkeypatch: pytest.MonkeyPatch, enabled: str | None
) -> None:
    from function_app import services as module

    if enabled is None:
        monkeypatch.delenv("WEBSITE_AUTH_ENABLED", raising=False)
    else:
        monkeypatch.setenv("WEBSITE_AUTH_ENABLED", enabled)
    monkeypatch.setenv("GITOPS_UI_ALLOWED_PRINCIPALS", OID)  # the forged principal would be allowed
    response = get(call, "", signed_in())
    assert response.status_code == 503 and b"authentication is not enabled" in response.get_body()
    assert module._current is None and unbuilt == []
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


def test_with_nobody_allowed_nobody_reads(unbuilt: list[Any], call: Any, auth_on: pytest.MonkeyPatch) -> None:
    auth_on.delenv("GITOPS_UI_ALLOWED_PRINCIPALS")
    response = get(call, "", signed_in())
    assert response.status_code == 503 and b"nobody is allowed" in response.get_body()


@pytest.mark.parametrize(
    ("headers", "status", "says"),
    [
        ({}, 401, b"sign in"),
        ({"X-MS-CLIENT-PRINCIPAL": "not base64 at all!"}, 401, b"not app service"),
        ({"X-MS-CLIENT-PRINCIPAL": base64.b64encode(b"[1, 2]").decode()}, 401, b"no claims"),
        (signed_in({**EXAMPLE["payload"], "auth_typ": "github"}), 403, b"microsoft entra"),
        (signed_in(headers={"X-MS-CLIENT-PRINCIPAL-IDP": "github"}), 403, b"microsoft entra"),
        (signed_in(headers={"X-MS-CLIENT-PRINCIPAL-ID": "11111111-0000-0000-0000-000000000000"}), 401, b"disagree"),
        (signed_in({"auth_typ": "aad", "claims": [{"typ": "name", "val": "no object id"}]}), 401, b"no object id"),
        ({"X-MS-CLIENT-PRINCIPAL": "A" * 20000}, 401, b"too large"),
    ],
    ids=["none", "garbage", "no-claims", "another-provider", "another-idp-header", "ids-disagree", "no-oid", "huge"],
)
def test_a_principal_that_is_not_an_entra_sign_in_is_refused_before_anything_is_built(
    unbuilt: list[Any], call: Any, auth_on: pytest.MonkeyPatch, headers: dict[str, str], status: int, says: bytes
) -> None:
    from function_app import services as module

    response = get(call, "", headers)
    assert response.status_code == status and says in response.get_body().lower(), response.get_body()
    assert module._current is None and unbuilt == []
    if status == 401 and not headers:
        assert response.headers["Location"].startswith("/.auth/login/aad?post_login_redirect_uri=/api/dashboard/")


def test_a_signed_in_principal_not_on_the_list_is_forbidden(unbuilt: list[Any], call: Any, auth_on: pytest.MonkeyPatch) -> None:
    auth_on.setenv("GITOPS_UI_ALLOWED_PRINCIPALS", "someone-else@contoso.example")
    response = get(call, "", signed_in())
    assert response.status_code == 403 and OID.encode() in response.get_body()  # the hint names what to add
    assert unbuilt == []


@pytest.mark.parametrize("allowed", ["principal-id", "upn", "group"])
def test_an_allowed_sign_in_reads_the_pages_of_the_ledger(call: Any, auth_on: pytest.MonkeyPatch, app_services: Any, allowed: str) -> None:
    from gitops.spec.validate import validate_text

    if allowed == "upn":
        auth_on.setenv("GITOPS_UI_ALLOWED_PRINCIPALS", UPN.upper())  # names compare without case
    elif allowed == "group":
        auth_on.setenv("GITOPS_UI_ALLOWED_PRINCIPALS", "")
        auth_on.setenv("GITOPS_UI_ALLOWED_GROUPS", GROUP)
    app_services.lifecycle.submit(validate_text(REFERENCE_ON_ASSETS, "runs/phi4-ultrachat.yaml"), commit="c0ffee", pr="7")
    listing = get(call, "", signed_in())
    assert listing.status_code == 200, listing.get_body()
    body = listing.get_body().decode()
    assert "phi4-ultrachat" in body and 'href="/api/dashboard/runs/phi4-ultrachat"' in body
    assert 'src="/api/dashboard/static/dashboard.js"' in body
    run = get(call, "runs/phi4-ultrachat", signed_in())
    assert run.status_code == 200 and "https://github.com/acme/models/pull/7" in run.get_body().decode()
    css = get(call, "static/dashboard.css", signed_in())
    assert css.status_code == 200 and css.mimetype == "text/css"
    assert get(call, "runs/..%2F..%2Fsecrets", signed_in()).status_code == 404
