"""pgfaces.interrupts.call as a backend runs it: a cancel stops waiting for the native call, tells its thread to stop,
and the backend's next call waits for that thread first, so cancels never pile up work (issue 20, N6)."""

from __future__ import annotations

import ctypes
import threading
import time

import pytest

from pgfaces import interrupts


class Cancelled(Exception):
    """What the server's `select 1` raises once a cancel is pending."""


class FakePlpy:
    def __init__(self, pending: ctypes.c_int):
        self.pending = pending

    def execute(self, sql):
        self.pending.value = 0
        raise Cancelled("canceling statement due to user request")


@pytest.fixture
def server(monkeypatch):
    """interrupts as inside a backend: a pending flag this test sets, and a plpy whose query raises the cancel."""
    pending = ctypes.c_int(0)
    monkeypatch.setattr(interrupts, "_pending", pending)
    monkeypatch.setattr(interrupts, "_plpy", FakePlpy(pending))
    monkeypatch.setattr(interrupts, "_leftover", None, raising=False)
    yield pending
    if interrupts._leftover is not None:
        interrupts._leftover.join()


def cancel_after(pending: ctypes.c_int, started: threading.Event) -> None:
    def fire():
        started.wait()
        pending.value = 1
    threading.Thread(target=fire, daemon=True).start()


def test_cancelled_native_calls_never_run_side_by_side(server):
    running, most, lock = [0], [0], threading.Lock()

    def native(seconds):  # like cv2.imdecode: one call that holds no Python step to stop at
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            started.set()
            time.sleep(seconds)
            return "decoded"
        finally:
            with lock:
                running[0] -= 1

    for _ in range(4):  # a backend cancelled again and again, each time in the middle of a decode
        started = threading.Event()
        cancel_after(server, started)
        with pytest.raises(Cancelled):
            interrupts.call(native, 0.3)
    started = threading.Event()
    assert interrupts.call(native, 0.01) == "decoded"  # the next call waits for the cancelled one, then runs
    assert most[0] == 1


def test_a_cancelled_call_stops_at_its_next_python_step(server):
    steps, started = [], threading.Event()

    def pyramid():  # like MTCNN's passes or Pillow's pieces: Python between native steps
        for i in range(200):
            steps.append(i)
            started.set()
            time.sleep(0.01)
        return "done"

    cancel_after(server, started)
    with pytest.raises(Cancelled):
        interrupts.call(pyramid)
    for thread in threading.enumerate():
        if thread.name == "pgfaces-native":
            thread.join()
    assert len(steps) < 200


def test_outside_the_server_it_just_runs():
    assert interrupts.call(lambda a, b: a + b, 2, 3) == 5
