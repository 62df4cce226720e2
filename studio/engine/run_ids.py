"""Run ids, unique in this process (torch-free).

The window's timeline keeps the runs of every model and engine it used this session by their ids: a Runner made
for another model, or the engine thread started again after a studio server was used, must not hand out an id
the timeline already shows (their steps would land in the older run's track). Runners and the window's client
of a studio server take their ids from this one count.
"""

from __future__ import annotations

import itertools
import threading

_ids = itertools.count(1)
_lock = threading.Lock()  # the engine thread and the UI thread both draw from it


def next_run_id() -> int:
    with _lock:
        return next(_ids)
