"""The lock that keeps two runs that write the same SQLite state store apart (and where its file is).

An ``flock`` on the database file itself, not on a path beside it: the same database named by any
spelling of its URL (a query string, an absolute path, a symlink, a hard link) is the same file, so
the same lock. The kernel releases it when its holder dies, ``kill -9`` included, so a stale lock
never blocks. SQLite locks the file with POSIX record locks, which Linux keeps apart from ``flock``
(not so on NFS, where a SQLite store does not belong anyway).

One care: closing any descriptor of the file drops this process's POSIX locks on it — SQLite's. So the
descriptor is closed only after the store's connections are (``release``), and one that lost the race
for the lock is kept open (the process is about to exit 75).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from urllib.parse import unquote

from .errors import ConfigError, LockedError

#: Descriptors of lock attempts that failed, kept open on purpose (see the module's docstring).
_LOST: list[int] = []


def sqlite_file(url: str) -> Path | None:
    """The file a store URL names, when the store is a SQLite file (None for ``:memory:`` or a server).

    ``sqlite:///relative.db``, ``sqlite:////absolute.db``, with or without a query (``?timeout=30``)."""
    if not url.startswith("sqlite:///"):
        return None
    name = unquote(url[len("sqlite:///"):].split("?", 1)[0])
    if name in ("", ":memory:"):
        return None
    return Path(name)


def note_path_for(database: Path) -> Path:
    """Where the lock's holder writes its pid, for the message others see: ``state.db.lock``."""
    return database.with_name(database.name + ".lock")


class StoreLock:
    """An exclusive lock on a database file, held by this process."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, database: Path, wait: bool = False) -> StoreLock:
        """Lock ``database`` (created empty if missing: SQLite takes an empty file as a new database);
        LockedError (exit 75) at once when another run holds it, unless ``wait``."""
        try:
            database.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(database, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ConfigError(f"state.url: cannot open the state store {database}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            _LOST.append(fd)
            try:
                holder = note_path_for(database).read_text(encoding="ascii", errors="replace").strip()
            except OSError:
                holder = ""
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise LockedError(f"another syndicate sync is running on this state store{who}; "
                              f"try again when it has finished, or use --wait") from None
        with contextlib.suppress(OSError):  # only for the message: a folder we cannot write keeps no note
            note_path_for(database).write_text(str(os.getpid()), encoding="ascii")
        return cls(fd)

    def release(self) -> None:
        """Release the lock (again: nothing). Call it once the store's connections are closed."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
            self._fd = None
