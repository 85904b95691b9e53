"""Downloads made by a forked child process while the parent loads the rest of syndicate.

A run with a state store spends its first fraction of a second importing SQLAlchemy, and the
downloads of a run where little changed (conditional GETs answered 304) are about as long and as
CPU-bound: in one process under the GIL they add up. So, when it is safe, ``sync`` forks before
that import: the child makes the downloads on the other core, with the same guarded fetcher and
the same validators the parent would send, and hands each result back through a pipe as it comes.
The parent takes a result only if it was made with exactly the request it would make itself
(URL and validators, checked against the store once loaded); anything else, and anything the
child did not deliver (it died, it was killed), the parent downloads itself as before.

Safe means: POSIX ``fork``, and this process has no other thread (a lock held by another thread
would stay held forever in the child). The child closes every inherited descriptor but the pipe
(the store's lock among them, so it never outlives the parent's hold), writes nothing but the
pipe, and ends with ``os._exit``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, BinaryIO

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """One download: the source, its URL and the validators to send."""

    source: str
    url: str
    etag: str | None
    last_modified: str | None


@dataclass(frozen=True)
class Reading:
    """What a download gave: a 2xx or a 304 (``error`` None), or why it failed."""

    status: int = 0
    body: bytes = b""
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    error: str | None = None  # a FetchError's one-line reason


class Prefetch:
    """The child's results, by source, as they arrive."""

    def __init__(self, pid: int, reader: BinaryIO, jobs: dict[str, Job], patience: float) -> None:
        self._pid: int | None = pid
        self._reader = reader
        self._jobs = jobs
        self._patience = patience
        self._last_news = time.monotonic()
        self._results: dict[str, Reading] = {}
        self._done = False
        self._ready = threading.Condition()
        self._thread = threading.Thread(target=self._receive, name="syndicate-prefetch", daemon=True)
        self._thread.start()

    @classmethod
    def start(cls, jobs: Iterable[Job], fetcher: Callable[[], Any], concurrency: int,
              patience: float) -> Prefetch | None:
        """Fork a child that makes ``jobs`` with a Fetcher from ``fetcher()``; None when that is not safe.

        ``patience``: the longest one download may take (the fetcher's deadline); a child that sends
        nothing for longer than that (and a margin) is given up on, and the parent downloads the rest."""
        jobs = {job.source: job for job in jobs}
        if not jobs or not hasattr(os, "fork") or threading.active_count() > 1:
            return None
        for stream in (sys.stdout, sys.stderr):  # nothing buffered may be written twice
            with contextlib.suppress(Exception):
                stream.flush()
        read_end, write_end = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(read_end)
            os.close(write_end)
            return None
        if pid == 0:  # the child: never returns
            os.close(read_end)
            _child(write_end, list(jobs.values()), fetcher, concurrency)
        os.close(write_end)
        return cls(pid, os.fdopen(read_end, "rb"), jobs, patience + 10)

    def take(self, job: Job) -> Reading | None:
        """The child's reading for ``job``'s source once it comes, if it made exactly this request;
        None when it did not (then the caller downloads it itself)."""
        if self._jobs.get(job.source) != job:
            return None
        with self._ready:
            while job.source not in self._results and not self._done:
                if not self._ready.wait(timeout=1) and time.monotonic() - self._last_news > self._patience:
                    log.warning("the download process sent nothing for %.0f s; downloading here instead",
                                self._patience)
                    self._done = True
            return self._results.pop(job.source, None)

    def close(self) -> None:
        """Stop the child if it still runs, and reap it."""
        pid, self._pid = self._pid, None
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # its results are either taken by now or not wanted
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        self._thread.join()
        self._reader.close()

    def _receive(self) -> None:
        try:
            while True:
                source, reading = pickle.load(self._reader)
                with self._ready:
                    self._results[source] = reading
                    self._last_news = time.monotonic()
                    self._ready.notify_all()
        except Exception as exc:  # EOF: the child is done (or died; what it did not send is fetched here)
            if not isinstance(exc, EOFError):
                log.debug("prefetch: reading the child's results stopped: %s", exc)
        finally:
            with self._ready:
                self._done = True
                self._ready.notify_all()


def _child(write_end: int, jobs: list[Job], fetcher_factory: Callable[[], Any], concurrency: int) -> None:
    """Make the downloads, send each result as it comes, and end the process."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C: the parent reports it, the child just ends
        os.closerange(3, write_end)
        os.closerange(write_end + 1, os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 1 << 16)
        import concurrent.futures

        from .fetch import FetchError

        pipe = os.fdopen(write_end, "wb")
        lock = threading.Lock()
        fetcher = fetcher_factory()

        def download(job: Job) -> None:
            try:
                response = fetcher.get(job.url, etag=job.etag, last_modified=job.last_modified, trusted=True)
                reading = Reading(status=response.status, body=response.body,
                                  content_type=response.headers.get("Content-Type"), etag=response.etag,
                                  last_modified=response.last_modified)
            except FetchError as exc:
                reading = Reading(error=str(exc))
            with lock:
                pickle.dump((job.source, reading), pipe, protocol=pickle.HIGHEST_PROTOCOL)
                pipe.flush()

        with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
            for future in [pool.submit(download, job) for job in jobs]:
                future.result()
        pipe.close()
    except BaseException:  # the parent fetches whatever was not sent
        code = 1
    finally:
        os._exit(code)
