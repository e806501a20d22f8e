"""The step queue on Azure Storage: messages that come back when they are due (a visibility timeout), for the
Function App's queue trigger. Kept apart from the queue's protocol so that the lifecycle imports no SDK."""

from __future__ import annotations

import contextlib
from typing import Any

from gitops.lifecycle.queue import MAX_DELAY_S, StepMessage


class StorageQueue:
    """An Azure Storage queue (Azurite in tests): base64 messages with a visibility delay."""

    def __init__(self, client: Any) -> None:
        self.client = client

    @classmethod
    def from_connection_string(cls, connection_string: str, queue: str) -> StorageQueue:
        from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

        client = QueueClient.from_connection_string(
            connection_string, queue, message_encode_policy=TextBase64EncodePolicy(), message_decode_policy=TextBase64DecodePolicy()
        )
        return cls._created(client)

    @classmethod
    def from_account_url(cls, account_url: str, queue: str, credential: Any = None) -> StorageQueue:
        from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

        if credential is None:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
        client = QueueClient(
            account_url,
            queue,
            credential=credential,
            message_encode_policy=TextBase64EncodePolicy(),
            message_decode_policy=TextBase64DecodePolicy(),
        )
        return cls._created(client)

    @classmethod
    def _created(cls, client: Any) -> StorageQueue:
        from azure.core.exceptions import ResourceExistsError

        with contextlib.suppress(ResourceExistsError):  # made by the template, or by an earlier process
            client.create_queue()
        return cls(client)

    def send(self, message: StepMessage, now: float) -> None:
        delay = int(min(MAX_DELAY_S, max(0.0, message.not_before - now)) + 0.999)
        self.client.send_message(message.to_json(), visibility_timeout=delay or None)
