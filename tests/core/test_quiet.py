"""Temporary warning filters set by two threads at once do not leak."""

from __future__ import annotations

import threading
import time
import warnings

from explorer.core import quiet


def test_two_threads_filtering_warnings_leave_the_filters_as_they_were():
    """Thread A sets a filter; B enters while A is inside and leaves after
    it. With ``catch_warnings`` alone, B would restore the list it saw on
    entry, A's filter included, and that filter would stay for good."""
    before = list(warnings.filters)
    a_inside, b_trying = threading.Event(), threading.Event()

    def first() -> None:
        with quiet.guarded():
            warnings.filterwarnings("ignore", "leak-check-a")
            a_inside.set()
            b_trying.wait(10)
            time.sleep(0.2)  # B reaches its block while A still holds one

    def second() -> None:
        a_inside.wait(10)
        b_trying.set()
        with quiet.guarded():
            warnings.filterwarnings("ignore", "leak-check-b")
            time.sleep(0.4)  # A has left by now, unguarded or not

    threads = [threading.Thread(target=f) for f in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert warnings.filters == before
    assert not any("leak-check" in str(f[1]) for f in warnings.filters)
