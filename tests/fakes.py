"""Structural fakes shared by the tests: the media cache, a small HTTP server's lifecycle, a file server,
the keep-everything reader of stored entries."""

from __future__ import annotations

import struct
import threading
import zlib
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from syndicate.models import Entry


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


class FileServer(LoopbackServer):
    """Files served from 127.0.0.1 (an author's images, say).

    ``files`` maps a path to (Content-Type, bytes) and may change while it serves (a missing path is a
    404); ``hits`` lists every path asked for, in order; a path in ``gates``, (asked, release), sets
    ``asked`` when it is asked for and is answered once the test sets ``release`` (30 s at most)."""

    def __init__(self, files: Mapping[str, tuple[str, bytes]] | None = None) -> None:
        self.files: dict[str, tuple[str, bytes]] = dict(files or {})
        self.hits: list[str] = []
        self.gates: dict[str, tuple[threading.Event, threading.Event]] = {}
        served = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                served.hits.append(self.path)
                gate = served.gates.get(self.path)
                if gate is not None:
                    gate[0].set()
                    gate[1].wait(30)
                found = served.files.get(self.path)
                if found is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", found[0])
                self.send_header("Content-Length", str(len(found[1])))
                self.end_headers()
                self.wfile.write(found[1])

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(Handler)


def pngs(**images: bytes) -> dict[str, tuple[str, bytes]]:
    """``FileServer`` files of PNG bytes by name: ``pngs(a=...)`` serves ``/a.png``."""
    return {f"/{name}.png": ("image/png", data) for name, data in images.items()}


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


def same(entry: Entry) -> Entry:
    """What ``Store.all_entries_of`` keeps of each entry, for a test that reads it whole: all of it."""
    return entry
