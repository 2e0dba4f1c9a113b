"""``warnings.catch_warnings`` that worker threads can share.

Before Python 3.14, ``catch_warnings`` saves the process-wide filter list on
entry and puts it back on exit. Two threads inside it at once undo each
other: the one that leaves last restores the list it saw on entry, which
holds the other's temporary filters, so those stay for the rest of the
process (a warning a test turns into an error is then silenced, or the
reverse). Every temporary filter the app sets goes through :func:`guarded`,
which lets one thread at a time hold one; the blocks are short (an import,
a file load), so a second loader waits a moment at most.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

_LOCK = threading.RLock()


@contextmanager
def guarded() -> Iterator[None]:
    """``warnings.catch_warnings()`` held by one thread at a time; set the
    filters inside the block as with ``catch_warnings``."""
    with _LOCK, warnings.catch_warnings():
        yield
