"""Worker processes, one thread each (like the server's backends): analysing files for the client-side loader, and
running the queue's workers (`python -m pgfaces.client work`) until a signal stops them.

A file that kills its process (a crash in a native decoder, the OOM killer) breaks the loader's pool: the files then
in flight are retried one at a time in a fresh process, which names the culprit, and the rest go on in parallel. A
queue worker that dies is replaced (run_processes); SIGINT/SIGTERM stop every worker after its photo (stop_on_signals).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import logging
import multiprocessing
import multiprocessing.connection
import os
import pathlib
import queue
import signal
import sys
import threading
import time
from concurrent.futures.process import BrokenProcessPool
from typing import Callable

from .. import analysis
from ..errors import PgfacesError
from ..records import Limits, PhotoAnalysis

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Analysed:
    """A file's outcome: its bytes and analysis, or the error that names it."""

    filename: str
    data: bytes = b""
    result: PhotoAnalysis | None = None
    error: str | None = None


def _init_worker() -> None:
    try:  # one thread per process, like the server's backends (OMP_NUM_THREADS=1): the processes are the parallelism
        import cv2

        cv2.setNumThreads(1)
    except Exception:  # noqa: BLE001 - only a performance hint
        pass


def analyse_file(filename: str, profile_dicts: list[dict], lim: Limits) -> Analysed:
    try:
        data = pathlib.Path(filename).read_bytes()
    except OSError as e:
        return Analysed(filename, error=e.strerror or str(e))
    try:
        return Analysed(filename, data, analysis.analyse_photo(data, filename, profile_dicts, lim))
    except PgfacesError as e:
        return Analysed(filename, error=str(e))
    except Exception as e:  # noqa: BLE001 - as on the server, one file's failure (even a bug) never stops the rest
        return Analysed(filename, error=f"{filename}: {type(e).__name__}: {e}")


def _mp_context():
    """Fresh worker processes, never a fork of the caller: a forked child inherits OpenCV's (or BLAS's) thread pool
    in whatever state the parent left it and can hang. As with any multiprocessing program, a script that loads
    must keep its top level under `if __name__ == "__main__":` (the workers import the main module)."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def analyse_all(files: list, profile_dicts: list[dict], lim: Limits, workers: int):
    """Yields an Analysed per file, in completion order, from a pool of `workers` processes."""
    queue, solo, analysed = [str(f) for f in files], False, 0
    context = _mp_context()
    while queue:
        size = 1 if solo else min(workers, len(queue))
        window = 1 if solo else size * 2  # bounded: a few photos' bytes in memory at once, not the whole folder
        broken: list[str] = []
        with concurrent.futures.ProcessPoolExecutor(size, mp_context=context, initializer=_init_worker) as pool:
            pending, inflight = iter(queue), {}
            while True:
                while len(inflight) < window:
                    name = next(pending, None)
                    if name is None:
                        break
                    try:
                        inflight[pool.submit(analyse_file, name, profile_dicts, lim)] = name
                    except BrokenProcessPool:
                        broken.append(name)
                        broken.extend(pending)
                        break
                if not inflight:
                    break
                done, _ = concurrent.futures.wait(inflight, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in done:
                    name = inflight.pop(future)
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        broken.append(name)
                    else:
                        analysed += 1
                        yield result
        if broken and solo:
            hint = "" if analysed else (
                "; if every file fails like this, put the program's top level under `if __name__ == \"__main__\":`")
            yield Analysed(broken[0], error=f"{broken[0]}: the process analysing it died "
                                            f"(a crash in a native decoder or model, or out of memory){hint}")
            queue, solo = broken[1:], False
        else:
            queue, solo = broken, bool(broken)


# --- long-running worker processes (python -m pgfaces.client work) ---------------------------------------------


class Stop:
    """Asked of every worker loop between jobs (`is_set`). The first SIGINT or SIGTERM sets it: each worker ends
    its current job and stops. The second forces it: the workers are stopped at once, and the jobs they held are
    taken again by the next claim (their sessions are gone)."""

    def __init__(self):
        self._event = threading.Event()
        self.forced = False

    def is_set(self) -> bool:
        return self._event.is_set()

    def set(self) -> None:
        self._event.set()


@contextlib.contextmanager
def stop_on_signals(stop: Stop, on_force: Callable[[], None] | None = None):
    """SIGINT (Ctrl-C) and SIGTERM set `stop`, a second one forces it (and calls on_force), while the block runs.
    Only the main thread may handle signals: elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handle(signum, frame):
        if not stop.is_set():
            stop.set()
            print(f"pgfaces: {signal.Signals(signum).name}: the workers stop after their current photo "
                  "(again to stop them now)", file=sys.stderr, flush=True)
            return
        stop.forced = True
        print(f"pgfaces: {signal.Signals(signum).name} again: stopping the workers now; the photos they held "
              "go to the next claim", file=sys.stderr, flush=True)
        if on_force is not None:
            on_force()

    previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


class _ChildStop:
    """A worker process's Stop: its supervisor asked (`event`), it was sent SIGTERM itself, or its supervisor is
    gone (killed: the process was handed to another parent)."""

    def __init__(self, event):
        self.event, self.parent, self.terminated = event, os.getppid(), False

    def is_set(self) -> bool:
        return self.terminated or self.event.is_set() or os.getppid() != self.parent


def _child_main(target: Callable, index: int, args: tuple, event, results) -> None:
    # Ctrl-C reaches the whole process group: the supervisor decides, the child ends its photo when asked.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop = _ChildStop(event)
    signal.signal(signal.SIGTERM, lambda *_: setattr(stop, "terminated", True))
    _init_worker()
    results.put((index, target(index, *args, stop)))


# A process that dies this soon after its start, this many times in a row, stops the pool (it cannot start).
QUICK_DEATH_S = 10.0
QUICK_DEATHS = 5


@dataclasses.dataclass
class Supervised:
    """What run_processes returns: each process's result (in the order they ended) and how many were replaced."""

    results: list
    replaced: int = 0
    forced: bool = False


def run_processes(target: Callable, count: int, args: tuple, stop: Stop, poll: float = 0.5) -> Supervised:
    """Runs target(index, *args, stop) in `count` processes until each returns, `stop` is set (each then returns
    after its current job) or forced (each is killed). A process that dies (SIGKILL, a crash in native code, the
    OOM killer) is replaced by a new one with the same index while not stopping; the job it held is claimed again.
    Every process is gone when this returns."""
    context = _mp_context()
    event, results = context.Event(), context.Queue()
    out = Supervised([])
    procs: dict[int, multiprocessing.Process] = {}
    started: dict[int, float] = {}
    quick_deaths = 0

    def start(index: int) -> None:
        p = context.Process(target=_child_main, args=(target, index, args, event, results),
                            name=f"pgfaces-worker-{index}", daemon=False)
        p.start()
        procs[index], started[index] = p, time.monotonic()

    def collect() -> None:
        while True:
            try:
                out.results.append(results.get_nowait()[1])
            except queue.Empty:
                return

    try:
        for i in range(count):
            start(i)
        while procs:
            if stop.is_set():
                event.set()
            if stop.forced:
                break
            multiprocessing.connection.wait([p.sentinel for p in procs.values()], timeout=poll)
            collect()
            for index, p in list(procs.items()):
                if p.is_alive():
                    continue
                p.join()
                del procs[index]
                if p.exitcode == 0 or event.is_set():
                    continue
                quick_deaths = quick_deaths + 1 if time.monotonic() - started[index] < QUICK_DEATH_S else 0
                if quick_deaths >= QUICK_DEATHS:
                    raise RuntimeError(f"worker processes die as they start (last exit code {p.exitcode}); "
                                       "run one in the foreground to see why: --workers 1")
                log.warning("worker process %s died (exit code %s): starting another", p.pid, p.exitcode)
                out.replaced += 1
                start(index)
    finally:
        event.set()
        for p in procs.values():
            if stop.forced:
                p.kill()
        deadline = time.monotonic() + 60.0
        for p in procs.values():
            while p.is_alive() and time.monotonic() < deadline:
                p.join(timeout=0.2)
                collect()
            if p.is_alive():  # hung past its photo: its job goes to the next claim
                p.kill()
                p.join()
        collect()
        results.close()
        results.join_thread()
    out.forced = stop.forced
    return out
