"""The lock that keeps two runs that write the same state store apart (and where a SQLite store's file is).

An ``flock`` on a file beside the database: the kernel releases it when its holder dies, ``kill -9``
included, so a stale lock never blocks. Taking it needs nothing but the store's path, so a run
takes it before it loads the store.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from .errors import LockedError


def sqlite_file(url: str) -> Path | None:
    """The file a store URL names, when the store is a SQLite file (None for ``:memory:`` or a server)."""
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        return Path(url[len("sqlite:///"):])
    return None


def lock_path_for(database: Path) -> Path:
    """The lock file of a SQLite store: ``state.db`` → ``state.db.lock``."""
    return database.with_name(database.name + ".lock")


class StoreLock:
    """An exclusive lock held by this process (its pid written in the file, for the message others see)."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, path: Path, wait: bool = False) -> StoreLock:
        """Take the lock at ``path``; LockedError (exit 75) at once when another run holds it, unless ``wait``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            try:
                holder = os.read(fd, 64).decode(errors="replace").strip()
            except OSError:
                holder = ""
            os.close(fd)
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise LockedError(f"another syndicate sync is running on this state store{who}; "
                              f"try again when it has finished, or use --wait") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        return cls(fd)

    def release(self) -> None:
        """Release the lock (again: nothing)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
            self._fd = None
