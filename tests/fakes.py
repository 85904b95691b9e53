"""Structural fakes shared by the publishers' unit tests."""

from __future__ import annotations


class FakeMedia:
    """The pipeline's media cache (``publishers.base.MediaCache``), in memory."""

    def __init__(self) -> None:
        self.items: dict[str, tuple[str, str]] = {}

    def get(self, source_url: str) -> tuple[str, str] | None:
        return self.items.get(source_url)

    def put(self, source_url: str, remote_id: str, remote_url: str) -> None:
        self.items[source_url] = (remote_id, remote_url)

    def forget(self, source_url: str) -> None:
        self.items.pop(source_url, None)
