"""A TCP proxy on 127.0.0.1 that can go silent: it stops forwarding but keeps every connection open.

That is what a stuck NAT, proxy or load balancer does to a database client: no FIN, no reset, and TCP
itself stays healthy (the proxy's kernel acknowledges whatever it is sent), so neither keepalives nor
``tcp_user_timeout`` notice anything; only an answer that never comes does::

    with SilentProxy(("127.0.0.1", cluster.port)) as proxy:
        ... connect to proxy.port ...
        proxy.go_silent()

One thread serves every connection with ``select``; ``close()`` (or leaving the ``with``) closes them
all and joins it. Bounded: it stops by itself after ``max_seconds``.
"""

from __future__ import annotations

import select
import socket
import threading
import time


class SilentProxy:
    """Forwards 127.0.0.1:``port`` to ``upstream`` until ``go_silent``, then forwards nothing."""

    def __init__(self, upstream: tuple[str, int], *, max_seconds: float = 300) -> None:
        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._peer: dict[socket.socket, socket.socket] = {}
        self._silent = threading.Event()
        self._stop = threading.Event()
        self._deadline = time.monotonic() + max_seconds
        self._thread = threading.Thread(target=self._serve, name="silent-proxy", daemon=True)
        self._thread.start()

    def go_silent(self) -> None:
        """From now on, read nothing and send nothing, on every connection, old or new; close none."""
        self._silent.set()

    def close(self) -> None:
        """Close every connection and the listener; join the thread."""
        self._stop.set()
        self._thread.join(timeout=5)
        for sock in [self._listener, *self._peer]:
            sock.close()
        self._peer.clear()

    def __enter__(self) -> SilentProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _serve(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            watched = [self._listener] + ([] if self._silent.is_set() else list(self._peer))
            readable, _, _ = select.select(watched, [], [], 0.05)
            for sock in readable:
                if sock is self._listener:
                    client, _ = self._listener.accept()
                    upstream = socket.create_connection(self.upstream, timeout=10)
                    self._peer[client], self._peer[upstream] = upstream, client
                    continue
                if self._silent.is_set() or sock not in self._peer:
                    continue
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                other = self._peer[sock]
                if not data:  # one side closed: close both, as a forwarding proxy would
                    for end in (sock, other):
                        self._peer.pop(end, None)
                        end.close()
                    continue
                try:
                    other.sendall(data)
                except OSError:
                    pass
