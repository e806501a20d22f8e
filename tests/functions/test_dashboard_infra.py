"""The template that puts the dashboard behind Entra sign-in, checked as text (no Bicep compiler runs here): App
Service authentication on, sign-in required, Entra as the provider, the workflows' routes (GitHub OIDC, not Entra)
excluded and the dashboard's not, the allowed principals and groups as app settings; and in the app, the dashboard
is the one anonymous HTTP function."""

from __future__ import annotations

import re

from tests.conftest import REPO_ROOT

BICEP = (REPO_ROOT / "infra" / "main.bicep").read_text()


def resource(name: str) -> str:
    start = BICEP.index(f"resource {name} ")
    end = BICEP.find("\nresource ", start + 1)
    return BICEP[start : end if end > 0 else None]


def test_authentication_is_on_requires_sign_in_and_signs_in_with_entra() -> None:
    auth = resource("dashboardAuth")
    assert re.search(r"'Microsoft\.Web/sites/config@\d{4}-\d{2}-\d{2}' = if \(!empty\(dashboardClientId\)\)", auth)
    assert "parent: functionApp" in auth and "name: 'authsettingsV2'" in auth
    assert "platform: { enabled: true }" in auth
    assert "requireAuthentication: true" in auth and "unauthenticatedClientAction: 'RedirectToLoginPage'" in auth
    assert re.search(r"azureActiveDirectory: \{\s+enabled: true", auth)
    assert "clientId: dashboardClientId" in auth and "tenant().tenantId" in auth
    assert "requireHttps: true" in auth


def test_every_workflow_route_is_excluded_and_the_dashboard_is_not(function_app) -> None:
    excluded = re.findall(r"'(/api/[^']*)'", resource("dashboardAuth").split("excludedPaths:")[1].split("]")[0])
    routes = {name: b.route for name, f in function_app.items() for b in f.get_bindings() if b.type == "httpTrigger"}
    for name, route in routes.items():
        first = "/api/" + route.split("/")[0]
        if name == "dashboard":
            assert not [p for p in excluded if p.startswith(first)], excluded
        else:
            assert first in excluded, (name, route, excluded)


def test_the_dashboard_is_the_one_anonymous_http_function(function_app) -> None:
    levels = {
        name: str(getattr(b, "auth_level", None)).lower()
        for name, f in function_app.items()
        for b in f.get_bindings()
        if b.type == "httpTrigger"
    }
    assert {n for n, level in levels.items() if "anonymous" in level} == {"dashboard"}, levels


def test_who_may_read_is_an_app_setting_of_the_template() -> None:
    app = resource("functionApp")
    assert "{ name: 'GITOPS_UI_ALLOWED_PRINCIPALS', value: dashboardPrincipals }" in app
    assert "{ name: 'GITOPS_UI_ALLOWED_GROUPS', value: dashboardGroups }" in app
    assert "WEBSITE_AUTH_ENABLED" not in BICEP  # the platform injects it; an app setting could only forge it
