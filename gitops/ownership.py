"""Whose a resource is: the one rule every path asks before it writes to an endpoint or deletes one.

A resource is ours only when it carries this repository's identity: ``managed_by=finetune-gitops`` and
``gitops_repo=<owner/name>``. Two repositories may share a workspace and even a run name, so neither tag alone
is evidence. Endpoints made before ``gitops_repo`` existed name no repository; one of them stays ours while this
repository's ledger records a deployment of the run it is tagged with, and that deployment is on it (a run's
name alone proves nothing: another repository may have one of the same name). The next write of the endpoint's
tags (the next rollout) adds ``gitops_repo``, so the exception wears off by itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from gitops.spec.capabilities import kind_of
from gitops.spec.naming import MANAGED_BY_TAG, MANAGED_BY_VALUE, TAG_REPO, TAG_RUN

if TYPE_CHECKING:
    from gitops.ledger.model import RunRecord

Verdict = Literal["ours", "legacy", "foreign", "unmanaged", "unproven"]


def same_repository(a: str, b: str) -> bool:
    """GitHub names are case-insensitive: ``Acme/Models`` and ``acme/models`` are one repository."""
    return a.strip().lower() == b.strip().lower()


def identity_tags(repo: str) -> dict[str, str]:
    """The tags that make a resource this repository's."""
    return {MANAGED_BY_TAG: MANAGED_BY_VALUE, TAG_REPO: repo}


@dataclass(frozen=True)
class Claim:
    verdict: Verdict
    reason: str

    @property
    def ours(self) -> bool:
        return self.verdict in ("ours", "legacy")


class _Named(Protocol):
    @property
    def name(self) -> str: ...


class _Endpoint(Protocol):
    """What ``held_by`` reads of a backend's EndpointInfo (the backends import this module, not the other way)."""

    @property
    def name(self) -> str: ...
    @property
    def tags(self) -> Mapping[str, str]: ...
    @property
    def deployments(self) -> Sequence[_Named]: ...


def held_by(record: RunRecord | None, info: _Endpoint) -> bool:
    """This ledger's positive evidence for an endpoint without ``gitops_repo``: the run it is tagged with has a
    record here on this endpoint, and a deployment that record names (serving or kept) is on it."""
    if record is None or record.endpoint != info.name or info.tags.get(TAG_RUN) != record.run:
        return False
    recorded = {d for d in (record.deployment, record.previous_deployment) if d}
    return any(d.name in recorded for d in info.deployments)


def claim(tags: Mapping[str, str], repo: str, held: bool = False) -> Claim:
    """Whether a resource with ``tags`` is this repository's (``repo``); ``held``: see ``held_by``."""
    if tags.get(MANAGED_BY_TAG) != MANAGED_BY_VALUE:
        return Claim("unmanaged", "not managed by finetune-gitops: never touched")
    if TAG_REPO in tags:
        owner = tags[TAG_REPO]
        if same_repository(owner, repo):
            return Claim("ours", f"managed by this repository ({repo or 'no GITOPS_REPO'})")
        return Claim("foreign", f"managed by repository {owner or '(none named)'}, not this one ({repo or 'no GITOPS_REPO'})")
    if held:
        return Claim("legacy", f"tagged before {TAG_REPO} existed; this repository's ledger records its deployment (the tag is added next)")
    return Claim(
        "unproven",
        f"names no repository ({TAG_REPO} is missing) and this repository's ledger records no deployment on it: "
        "another repository's, or made before the tag; never touched",
    )


def claim_endpoint(info: _Endpoint, record: RunRecord | None, repo: str) -> Claim:
    """``claim`` of an endpoint as a backend shows it, with this ledger's ``record`` of the run as the evidence."""
    return claim(info.tags, repo, held_by(record, info))


def missing_identity(backend: str, repo: str) -> str | None:
    """Why nothing may be written to ``backend`` for a repository without an identity, or None when it may."""
    if kind_of(backend).shared_workspace and not repo.strip():
        return (
            f"this repository has no identity (GITOPS_REPO is not set): nothing is written to the {backend} workspace, "
            "which other repositories may share, without it"
        )
    return None


IDENTITY_HINT = "set GITOPS_REPO=<owner/name> (the Function App and CI set it)"


def refusal_hint(name: str, repo: str, got: Claim) -> str:
    """What a person does about an endpoint that is not this repository's."""
    if got.verdict == "unproven":
        return f"if {name} is this repository's, tag it {TAG_REPO}={repo or '<owner/name>'}; else give the spec its own deploy.endpoint"
    return "give the spec its own deploy.endpoint: an endpoint of another repository, or of nobody here, is never taken over"
