"""GitHub Actions OIDC tokens, verified with PyJWT against GitHub's JWKS (fetched once, cached).

Function keys only say "someone who has the key"; this says "a workflow of our repository" and, for
``submit``, "on a push to main". A token never reaches a log line or an error message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from function_app.config import FunctionSettings
from gitops.errors import AuthError, ForbiddenError, TransientBackendError

REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "repository", "ref", "event_name"]


@dataclass(frozen=True)
class Caller:
    repository: str
    ref: str
    event_name: str
    sha: str | None
    actor: str | None
    environment: str | None = None  # the GitHub Environment the job ran in (its `environment:` key), if any
    run_id: str | None = None  # the workflow run: where GitHub records who approved an environment's job


class OidcVerifier:
    def __init__(self, settings: FunctionSettings, leeway_s: int = 30) -> None:
        import jwt

        self.settings = settings
        self.leeway_s = leeway_s
        url = settings.jwks_url or f"{settings.issuer.rstrip('/')}/.well-known/jwks"
        self._jwks = jwt.PyJWKClient(url, cache_keys=True, lifespan=3600, timeout=10)

    def verify(
        self, authorization: str | None, *, main_push_only: bool = False, main_only: bool = False, environment: str | None = None
    ) -> Caller:
        """The caller a valid token names, or ``AuthError``/``ForbiddenError``. ``environment``: only a job bound to that
        GitHub Environment may call (GitHub signs the environment into the token of such a job, and only such a job's:
        its required reviewers approved it before the job ran), from main."""
        import jwt

        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError(
                "a GitHub OIDC token is required",
                hint="send 'Authorization: Bearer <token>' from actions/github-script core.getIDToken(audience)",
            )
        try:
            key = self._jwks.get_signing_key_from_jwt(token.strip())
            claims: dict[str, Any] = jwt.decode(
                token.strip(),
                key.key,
                algorithms=["RS256"],
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                leeway=self.leeway_s,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("the OIDC token has expired", hint="request a fresh token in the job") from None
        except jwt.InvalidAudienceError:
            raise AuthError(
                "the OIDC token was issued for another audience", hint=f"request it with audience '{self.settings.audience}'"
            ) from None
        except jwt.InvalidIssuerError:
            raise AuthError("the OIDC token was not issued by GitHub Actions") from None
        except jwt.PyJWKClientConnectionError:
            raise TransientBackendError("GitHub's signing keys could not be fetched", hint="retry shortly") from None
        except jwt.PyJWKClientError:
            raise AuthError("the OIDC token is signed with an unknown key") from None
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"the OIDC token is invalid ({type(exc).__name__})") from None
        caller = Caller(
            str(claims["repository"]),
            str(claims["ref"]),
            str(claims["event_name"]),
            claims.get("sha"),
            claims.get("actor"),
            str(claims["environment"]) if claims.get("environment") else None,
            str(claims["run_id"]) if claims.get("run_id") else None,
        )
        if caller.repository.lower() != self.settings.repo.lower():
            raise ForbiddenError(f"repository {caller.repository} may not call this deployment", hint=f"only {self.settings.repo} may")
        if main_only and (caller.ref != "refs/heads/main" or caller.event_name not in ("push", "workflow_dispatch")):
            raise ForbiddenError(
                f"this is allowed only from main (a push or a workflow run by hand), not {caller.event_name} on {caller.ref}",
                hint="run the workflow on the main branch",
            )
        if main_push_only and (caller.ref != "refs/heads/main" or caller.event_name != "push"):
            raise ForbiddenError(
                f"submit is allowed only from a push to refs/heads/main, not {caller.event_name} on {caller.ref}",
                hint="merge the pull request; deploy.yml submits from main",
            )
        if environment is not None:
            _require_environment(caller, environment)
        return caller


# The events a promotion job may run on: promote.yml's schedule, or a person starting it, on main.
PROMOTION_EVENTS = ("schedule", "workflow_dispatch")


def _require_environment(caller: Caller, environment: str) -> None:
    """A job that ran in GitHub Environment ``environment`` (names compare as GitHub compares them, without case), from
    main: a token of any other job, or of a job in another environment, is refused."""
    if caller.environment is None:
        raise ForbiddenError(
            f"this needs a job bound to GitHub Environment {environment}; the token's job ran in none",
            hint=f"call it from a job with `environment: {environment}` (promote.yml)",
        )
    if caller.environment.lower() != environment.lower():
        raise ForbiddenError(
            f"this needs a job bound to GitHub Environment {environment}, not {caller.environment}",
            hint=f"call it from the job of environment {environment}",
        )
    if caller.ref != "refs/heads/main" or caller.event_name not in PROMOTION_EVENTS:
        raise ForbiddenError(
            f"a promotion runs from main ({' or '.join(PROMOTION_EVENTS)}), not {caller.event_name} on {caller.ref}",
            hint="promote.yml runs on main",
        )
