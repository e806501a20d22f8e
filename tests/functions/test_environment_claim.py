"""#27: a promotion is accepted only from a job bound to the target GitHub Environment. GitHub signs the environment
into the OIDC token of such a job and only such a job's (tests/contracts/github-docs/oidc_environment_claims.md);
the tokens here are shaped as that page documents and signed by the test key standing in for GitHub's."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops.errors import AuthError, ForbiddenError
from tests.functions.conftest import REPO

EXCERPT = Path(__file__).parents[1] / "contracts" / "github-docs" / "oidc_environment_claims.md"


def _promotion_claims(environment: str | None = "prod", **more: object) -> dict[str, object]:
    """A promote.yml job's claims: the environment claim and the subject GitHub builds for an environment job."""
    sub = f"repo:{REPO}:environment:{environment.replace(':', '%3A')}" if environment else f"repo:{REPO}:ref:refs/heads/main"
    return {"environment": environment, "sub": sub, "event_name": "schedule", "ref": "refs/heads/main", "ref_type": "branch", **more}


@pytest.fixture
def verifier(function_settings):
    from function_app.auth import OidcVerifier

    return OidcVerifier(function_settings)


def test_the_documented_claims_are_the_ones_read() -> None:
    text = EXCERPT.read_text(encoding="utf-8")
    assert "| `environment`| The name of the environment used by the job." in text
    assert "repo:ORG-NAME/REPO-NAME:environment:ENVIRONMENT-NAME" in text


@pytest.mark.parametrize("event", ["schedule", "workflow_dispatch"])
def test_a_job_of_the_target_environment_is_accepted(verifier, token, event: str) -> None:
    caller = verifier.verify(f"Bearer {token(**_promotion_claims('prod', event_name=event))}", environment="prod")
    assert caller.environment == "prod" and caller.repository == REPO
    # GitHub compares environment names without case: "Prod" in the workflow is the environment prod
    assert verifier.verify(f"Bearer {token(**_promotion_claims('Prod'))}", environment="prod").environment == "Prod"


@pytest.mark.parametrize(
    ("claims", "refusal"),
    [
        (_promotion_claims(None), "the token's job ran in none"),  # any other job of the repository: deploy.yml, pr.yml
        (_promotion_claims("dev"), "needs a job bound to GitHub Environment prod, not dev"),
        (_promotion_claims("prod-shadow"), "not prod-shadow"),
        (_promotion_claims("prod", event_name="pull_request", ref="refs/pull/7/merge"), "a promotion runs from main"),
        (_promotion_claims("prod", ref="refs/heads/feature"), "a promotion runs from main"),
        (_promotion_claims("prod", event_name="push"), "a promotion runs from main (schedule or workflow_dispatch), not push"),
    ],
)
def test_a_token_of_any_other_job_is_refused(verifier, token, claims, refusal: str) -> None:
    with pytest.raises(ForbiddenError, match=refusal.replace("(", r"\(").replace(")", r"\)")):
        verifier.verify(f"Bearer {token(**claims)}", environment="prod")


def test_an_environment_token_of_another_repository_or_key_is_refused_first(verifier, token) -> None:
    with pytest.raises(ForbiddenError, match="repository octo-org/octo-repo may not call"):
        verifier.verify(f"Bearer {token(**_promotion_claims('prod', repository='octo-org/octo-repo'))}", environment="prod")
    with pytest.raises(AuthError, match="signed with an unknown key|invalid"):
        verifier.verify(f"Bearer {token(signer='rogue', **_promotion_claims('prod'))}", environment="prod")


def test_routes_that_do_not_ask_for_an_environment_are_unchanged(verifier, token) -> None:
    assert verifier.verify(f"Bearer {token()}").environment is None
    assert verifier.verify(f"Bearer {token(**_promotion_claims('prod', event_name='push'))}", main_push_only=True).environment == "prod"
