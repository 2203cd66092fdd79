"""Cancel and timeouts during an analysis: the pipeline calls checkpoint() between its stages (and faces).

In the server, a statement timeout, pg_cancel_backend or pg_terminate_backend only sets PostgreSQL's flag
InterruptPending; PostgreSQL acts on it the next time its own code runs, which a long Python call never lets it do.
watch(plpy) makes checkpoint() read that flag (a few nanoseconds) and, when it is set, run a trivial query: PostgreSQL
then processes the interrupt and the query raises the cancel (or ends the backend), which unwinds the Python code.
Outside the server (the client, tests) checkpoint() does nothing.
"""

from __future__ import annotations

import ctypes

_pending = None  # the server's InterruptPending flag, once found
_plpy = None


def watch(plpy) -> None:
    """Makes checkpoint() act on the server's interrupts, for this process."""
    global _pending, _plpy
    if _pending is None:
        try:
            _pending = ctypes.c_int.in_dll(ctypes.CDLL(None), "InterruptPending")
        except (OSError, ValueError):  # not inside a postgres process: nothing to watch
            return
    _plpy = plpy


def checkpoint() -> None:
    """Raises the server's cancel (or ends the backend) if one is pending; else returns at once."""
    if _pending is not None and _pending.value:
        _plpy.execute("select 1")
