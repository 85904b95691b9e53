"""The ``syndicate`` CLI with ONE bench-side workaround, used only when the real CLI crashes.

``SQLiteStore.transaction`` (then ``Store.transaction``) shared one connection between threads without a lock: a fetch thread reading a
feed's state (``Store.feed_state``) and the main thread recording another feed (``_record_feed``) can
join each other's transaction, and when the first finishes it closes the connection under the
second (``sqlalchemy.exc.ResourceClosedError: This Connection is closed``). With 120 feeds and 8
fetch threads that happens on every run, so nothing could be timed. This shim serialises
``Store.transaction`` with a re-entrant lock (nested calls from the same thread still join the outer
transaction, as designed) and then runs the unmodified CLI. It changes no file of syndicate.

The harness uses it only after the real CLI crashed on the same scenario, and labels every figure
measured with it ``[shim]``.

Usage: python bench/syndicate_shim.py --config FILE sync   (same arguments as ``syndicate``)
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from syndicate.sqlite_store import SQLiteStore

_original = SQLiteStore.transaction
_lock = threading.RLock()


@contextlib.contextmanager
def _serialised_transaction(self: Any) -> Iterator[Any]:
    with _lock, _original(self) as conn:
        yield conn


SQLiteStore.transaction = _serialised_transaction  # type: ignore[method-assign]

if __name__ == "__main__":
    from syndicate.cli import main

    main()
