"""A fault hook for the crash tests: die at a named point, as a power cut or `kill -9` would.

`RMG_LAKE_KILL_AT=<point>[:<n>]` makes the process kill itself with SIGKILL the n-th time
(default: the first) it reaches `<point>` (`RMG_LAKE_KILL_WITH=TERM` sends SIGTERM instead:
what stopping `rmg-lake watch` there does). Unset, as it always is outside the tests,
`reached` does nothing. The points, in the order an ingest passes them (one of more
than 50,000 new files passes the commit and derive points once per batch of it, and
keeps files ahead of each commit):

    raw-written        a file was kept in the raw store (or quarantine, or attachments)
    before-commit      every kept file is synced; the log entry is not written yet
    after-commit       the log entry is written and synced; nothing derived yet
    partition-written  a derived Parquet file was written
    catalog-written    the new lake.duckdb is made, not yet in place
    state-written      _derived.json names the new files; older ones not yet deleted

and `publish --delta` passes, between them (deriving a batch's frames for the target):

    delta-committed    a Delta table was made, or a batch committed to one
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter

__all__ = ["SIGNAL_VARIABLE", "VARIABLE", "reached"]

VARIABLE = "RMG_LAKE_KILL_AT"
SIGNAL_VARIABLE = "RMG_LAKE_KILL_WITH"
_point, _, _nth = os.environ.get(VARIABLE, "").partition(":")
# (The signal's name, looked up when it is sent: native Windows has no SIGKILL, and
# rmg-lake must import there to say that it does not run there.)
_signal = f"SIG{os.environ.get(SIGNAL_VARIABLE, 'KILL')}"
_seen: Counter[str] = Counter()
_counting = threading.Lock()  # partitions are written from several threads


def reached(point: str) -> None:
    """Die here if the environment asks for it (the tests' crash harness)."""
    if point != _point:
        return
    with _counting:
        _seen[point] += 1
        if _seen[point] == int(_nth or 1):
            os.kill(os.getpid(), signal.Signals[_signal])
