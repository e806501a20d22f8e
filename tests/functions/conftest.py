"""Fixtures of the Function App tests: GitHub's OIDC keys served on loopback, tokens signed with them, and
the app's services built from real parts (ledger on disk, the Azure backend on the fake REST API)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.loopback import json_server

REPO = "acme/models"
AUDIENCE = "api://finetune-gitops"
ISSUER = "https://token.actions.githubusercontent.com"


class Keys:
    def __init__(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.good = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.rogue = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.fetches = 0

    def jwks(self) -> dict[str, Any]:
        import jwt

        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.good.public_key()))
        return {"keys": [{**jwk, "kid": "gh-1", "use": "sig", "alg": "RS256"}]}


@pytest.fixture(scope="session")
def oidc_keys() -> Iterator[tuple[Keys, str]]:
    """A JWKS endpoint on 127.0.0.1 standing in for token.actions.githubusercontent.com."""
    keys = Keys()

    def respond(method: str, path: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        keys.fetches += 1
        return keys.jwks()

    with json_server(respond) as base:
        yield keys, f"{base}/.well-known/jwks"


@pytest.fixture
def token(oidc_keys: tuple[Keys, str]) -> Callable[..., str]:
    """Mint a GitHub-Actions-shaped OIDC token; keyword arguments override claims."""
    import jwt

    keys, _ = oidc_keys

    def mint(signer: str = "good", kid: str = "gh-1", **claims: Any) -> str:
        now = int(time.time())
        body = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "repository": REPO,
            "ref": "refs/heads/main",
            "event_name": "push",
            "sha": "c0ffee" * 6 + "abcd",
            "actor": "octocat",
            **claims,
        }
        body = {k: v for k, v in body.items() if v is not None}
        key = keys.good if signer == "good" else keys.rogue
        return jwt.encode(body, key, algorithm="RS256", headers={"kid": kid})

    return mint


@pytest.fixture
def function_settings(oidc_keys: tuple[Keys, str]):
    from function_app.config import FunctionSettings

    return FunctionSettings(repo=REPO, audience=AUDIENCE, jwks_url=oidc_keys[1], max_body_bytes=64 * 1024)


@pytest.fixture
def step_queue(azurite_queue):
    """A fresh step queue on the real Azurite queue service (base64 messages, as the Functions trigger reads them)."""
    import uuid

    from gitops.lifecycle.storage_queue import StorageQueue

    return StorageQueue.from_connection_string(azurite_queue, f"steps-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def app_services(function_settings, azure_fake, azure_backend, step_queue, tmp_path: Path):
    """The app's services from real parts; installed for the test, removed after it."""
    from function_app.auth import OidcVerifier
    from function_app.services import Services, use_services
    from gitops.backends.registry import hosted_only
    from gitops.ledger.local import LocalLedger
    from gitops.lifecycle.flow import Lifecycle
    from tests.fakes.workspace_mlflow import WorkspaceMlflow

    backend_for = hosted_only(lambda name: azure_backend)  # as the app's own wiring guards it
    azure_fake.mlflow = WorkspaceMlflow.fresh(tmp_path)  # what a completed job logged: the gate's training evidence
    lifecycle = Lifecycle(
        LocalLedger(tmp_path / "ledger"), backend_for, topic=azure_backend.topic, queue=step_queue, reader_for=azure_fake.mlflow.reader
    )
    services = Services(function_settings, OidcVerifier(function_settings), lifecycle, backend_for)
    use_services(services)
    yield services
    use_services(None)


@pytest.fixture
def drain(step_queue, function_app):
    """Deliver every visible step message to the ``advance`` function, as the host would, until none is left;
    returns what each delivery did."""
    from azure.functions.queue import QueueMessage  # what the worker hands a queue trigger

    from function_app.step_queue import handle_step_message

    def _drain(limit: int = 50) -> list[str]:
        done: list[str] = []
        for _ in range(limit):
            got = list(step_queue.client.receive_messages(max_messages=1, visibility_timeout=30))
            if not got:
                return done
            m = got[0]
            done.append(handle_step_message(QueueMessage(id=m.id, body=m.content.encode(), dequeue_count=m.dequeue_count)))
            step_queue.client.delete_message(m)
        raise AssertionError(f"the queue did not drain in {limit} deliveries: {done}")

    return _drain


@pytest.fixture(scope="session")
def function_app():
    """The FunctionApp exactly as the worker loads it, and its functions by name."""
    import functions_entry

    return {f.get_function_name(): f for f in functions_entry.app.get_functions()}


@pytest.fixture
def call(function_app):
    """Invoke an HTTP function through its registration: ``call(name, method, body, headers, route_params)``."""
    import azure.functions as func

    def _call(
        name: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        method: str = "POST",
        route_params: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> func.HttpResponse:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        req = func.HttpRequest(
            method=method,
            url=f"https://fn.example/api/{name}",
            headers=headers or {},
            params=params or {},
            route_params=route_params or {},
            body=data,
        )
        return function_app[name].get_user_function()(req)

    return _call


@pytest.fixture
def unbuilt(monkeypatch: pytest.MonkeyPatch, oidc_keys) -> Iterator[list[Any]]:
    """The Function as a fresh worker has it (nothing built), with storage that does not answer, and every outgoing
    connection recorded (the JWKS on loopback is the only address a verification may reach)."""
    from function_app.services import use_services

    dead = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;"
    monkeypatch.setenv("GITOPS_REPO", REPO)
    monkeypatch.setenv("GITOPS_OIDC_AUDIENCE", AUDIENCE)
    monkeypatch.setenv("GITOPS_OIDC_JWKS_URL", oidc_keys[1])
    monkeypatch.setenv("GITOPS_LEDGER_CONNECTION_STRING", dead)
    monkeypatch.setenv("GITOPS_QUEUE", dead.replace("BlobEndpoint", "QueueEndpoint"))
    connects: list[Any] = []
    real = socket.socket.connect

    def recorded(self: socket.socket, address: Any) -> Any:
        connects.append(address)
        return real(self, address)

    monkeypatch.setattr(socket.socket, "connect", recorded)
    use_services(None)
    yield connects
    use_services(None)
