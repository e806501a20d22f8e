"""Who reads the dashboard in the Function App: the Entra principal App Service authentication vouches for.

Browsers carry no function key, so the dashboard's routes are anonymous at the Functions layer. The principal header
``X-MS-CLIENT-PRINCIPAL`` is worth something only when the platform's authentication is on for the app: then App
Service sets it for a signed-in caller and strips any a client sent; when it is off, anyone can send one. So:

1. authentication must be verifiably on: ``WEBSITE_AUTH_ENABLED`` is ``True`` (the platform injects it into the app's
   environment when the module is on, as Microsoft.Identity.Web reads it). The template never sets it: an app setting
   of that name would not turn the module on, only defeat this check (docs/dashboard.md says so);
2. the principal must be one of this tenant's Entra sign-ins (``auth_typ`` ``aad``; the ID header, when present, the
   same object id as the claims);
3. and be allowed: its object id or user principal name in ``GITOPS_UI_ALLOWED_PRINCIPALS``, or one of its groups in
   ``GITOPS_UI_ALLOWED_GROUPS``. Both empty: nobody (never "everyone signed in").

All of it is read from the environment and the request's headers, before any storage or SDK work.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gitops.errors import AuthError, ConfigurationError, ForbiddenError

PRINCIPAL_HEADER = "X-MS-CLIENT-PRINCIPAL"
PRINCIPAL_ID_HEADER = "X-MS-CLIENT-PRINCIPAL-ID"
PRINCIPAL_IDP_HEADER = "X-MS-CLIENT-PRINCIPAL-IDP"
AUTH_ENABLED = "WEBSITE_AUTH_ENABLED"
ALLOWED_PRINCIPALS, ALLOWED_GROUPS = "GITOPS_UI_ALLOWED_PRINCIPALS", "GITOPS_UI_ALLOWED_GROUPS"
MAX_PRINCIPAL_BYTES = 16 * 1024  # a header of many groups is still a few KB; anything past this is refused unread

# The claim types App Service writes for an Entra sign-in (its claims go through the default claim mapping).
OBJECT_ID = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")
NAMES = (
    "preferred_username",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
    "upn",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
    "email",
)
GROUPS = ("groups", "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups")
LOGIN_PATH = "/.auth/login/aad"


def _listed(value: str) -> frozenset[str]:
    return frozenset(x.strip().lower() for x in value.split(",") if x.strip())


@dataclass(frozen=True)
class DashboardAccess:
    auth_enabled: bool
    principals: frozenset[str]  # object ids and user principal names, lowercased
    groups: frozenset[str]  # group object ids, lowercased

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None) -> DashboardAccess:
        e = os.environ if env is None else env
        return cls(
            auth_enabled=e.get(AUTH_ENABLED, "").strip().lower() == "true",
            principals=_listed(e.get(ALLOWED_PRINCIPALS, "")),
            groups=_listed(e.get(ALLOWED_GROUPS, "")),
        )


@dataclass(frozen=True)
class Viewer:
    object_id: str
    name: str


def _claims(raw: str) -> dict[str, Any]:
    if len(raw) > MAX_PRINCIPAL_BYTES:
        raise AuthError("the client principal header is too large to be App Service's")
    try:
        data = json.loads(base64.b64decode(raw, validate=True))
    except (binascii.Error, ValueError, RecursionError):
        raise AuthError("the client principal header is not App Service's (not base64 JSON)") from None
    if not isinstance(data, dict) or not isinstance(data.get("claims"), list):
        raise AuthError("the client principal header carries no claims")
    return data


def viewer(headers: Mapping[str, str], access: DashboardAccess) -> Viewer:
    """The signed-in principal allowed to read the dashboard, or the error that says why not (never a fallback)."""
    if not access.auth_enabled:
        raise ConfigurationError(
            "the dashboard is off: App Service authentication is not enabled for this app, so no principal can be trusted",
            hint="deploy infra/main.bicep with dashboardClientId (an Entra app registration); it turns authentication on",
        )
    if not access.principals and not access.groups:
        raise ConfigurationError(
            "the dashboard is off: nobody is allowed to read it",
            hint=f"set {ALLOWED_PRINCIPALS} (object ids or UPNs) or {ALLOWED_GROUPS} (group object ids)",
        )
    raw = _header(headers, PRINCIPAL_HEADER)
    if not raw:
        raise AuthError("sign in to read the dashboard", hint=f"open {LOGIN_PATH}")
    data = _claims(raw)
    if str(data.get("auth_typ", "")).lower() != "aad":
        raise ForbiddenError("the dashboard is read only by a Microsoft Entra sign-in")
    idp = _header(headers, PRINCIPAL_IDP_HEADER)
    if idp and idp.lower() != "aad":
        raise ForbiddenError("the dashboard is read only by a Microsoft Entra sign-in")
    claims: dict[str, list[str]] = {}
    for c in data["claims"]:
        if isinstance(c, dict) and isinstance(c.get("typ"), str) and isinstance(c.get("val"), str):
            claims.setdefault(c["typ"], []).append(c["val"])
    object_id = next((claims[t][0] for t in OBJECT_ID if claims.get(t)), "")
    if not object_id:
        raise AuthError("the sign-in names no object id")
    said = _header(headers, PRINCIPAL_ID_HEADER)
    if said and said.lower() != object_id.lower():
        raise AuthError("the principal headers disagree")
    names = [v for t in NAMES for v in claims.get(t, [])]
    groups = {v.lower() for t in GROUPS for v in claims.get(t, [])}
    if object_id.lower() in access.principals or any(n.lower() in access.principals for n in names) or groups & access.groups:
        return Viewer(object_id, names[0] if names else object_id)
    raise ForbiddenError(
        "this sign-in may not read the dashboard",
        hint=f"ask an administrator to add your object id ({object_id}) to {ALLOWED_PRINCIPALS}, or you to a group listed",
    )


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:  # a plain dict in a test; the Functions host's headers are case-insensitive already
        value = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
    return (value or "").strip()
