"""Cancel and timeouts during an analysis: the pipeline calls checkpoint() between its stages (and faces), and runs
its long native calls (decoding, a detector's pass) through call().

In the server, a statement timeout, pg_cancel_backend or pg_terminate_backend only sets PostgreSQL's flag
InterruptPending; PostgreSQL acts on it the next time its own code runs, which a long Python call never lets it do.
watch(plpy) makes checkpoint() read that flag (a few nanoseconds) and, when it is set, run a trivial query: PostgreSQL
then processes the interrupt and the query raises the cancel (or ends the backend), which unwinds the Python code.
A single native call can take longer than the half second a cancel may wait (decoding a 20-megapixel photo, MTCNN
on a large copy): call() runs it in a thread and keeps checking meanwhile. A cancelled call's thread is told to stop
(an exception raised in it at its next Python step: between a detector's passes, between the pieces Pillow decodes),
its result is dropped, and the backend's next call() first waits for it: a backend never has more than one native
call running, however often it is cancelled, so cancelling cannot pile up decodes. Only the backend's own thread
ever talks to PostgreSQL.
Outside the server (the client, tests) both simply run the code.
"""

from __future__ import annotations

import ctypes
import threading

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
    if _pending is not None and _pending.value and threading.current_thread() is threading.main_thread():
        _plpy.execute("select 1")


POLL = 0.02  # seconds between checks while a native call runs


class Abandoned(BaseException):
    """Raised inside a cancelled call's thread, to stop its Python work."""


_leftover: threading.Thread | None = None  # a cancelled call's thread, perhaps still in its native code


def _wait(thread: threading.Thread) -> None:
    while thread.is_alive():
        thread.join(POLL)
        checkpoint()


def call(fn, *args):
    """fn(*args); in the server, in a thread that a cancel stops waiting for (and tells to stop)."""
    global _leftover
    if _pending is None or threading.current_thread() is not threading.main_thread():
        return fn(*args)
    if _leftover is not None:
        _wait(_leftover)  # the last cancelled call's work ends before more starts
        _leftover = None
    outcome: dict = {}

    def run():
        try:
            value = fn(*args)
            if not outcome.get("cancelled"):
                outcome["value"] = value
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            if not outcome.get("cancelled"):
                outcome["error"] = exc

    worker = threading.Thread(target=run, name="pgfaces-native", daemon=True)
    worker.start()
    try:
        _wait(worker)
    except BaseException:
        outcome["cancelled"] = True
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(worker.ident), ctypes.py_object(Abandoned))
        _leftover = worker
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
