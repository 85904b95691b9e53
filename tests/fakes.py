"""Structural fakes shared by the tests: the media cache, and the lifecycle of a small HTTP server."""

from __future__ import annotations

import struct
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1 for one handler class: ``url``; ``close()`` stops and joins it."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


class FakeMedia:
    """The pipeline's media cache (``publishers.base.MediaCache``), in memory."""

    def __init__(self) -> None:
        self.items: dict[str, tuple[str, str]] = {}

    def get(self, source_url: str) -> tuple[str, str] | None:
        return self.items.get(source_url)

    def put(self, source_url: str, remote_id: str, remote_url: str, sha256: str | None = None) -> None:
        self.items[source_url] = (remote_id, remote_url)

    def forget(self, source_url: str) -> None:
        self.items.pop(source_url, None)


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A small valid PNG of one colour (CMSs process uploads, so the bytes must decode)."""
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
