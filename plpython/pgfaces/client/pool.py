"""Analysing files in worker processes, one thread each (like the server's backends), for the client-side loader.

A file that kills its process (a crash in a native decoder, the OOM killer) breaks the pool: the files then in
flight are retried one at a time in a fresh process, which names the culprit, and the rest go on in parallel.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing
import pathlib
from concurrent.futures.process import BrokenProcessPool

from .. import analysis
from ..errors import PgfacesError
from ..records import Limits, PhotoAnalysis


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
