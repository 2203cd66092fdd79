"""Workers that drain the queue of deferred analysis (README, "Deferred analysis").

Each worker is a loop over one connection: claim a job (pgfaces_claim_job commits the claim: state running, by whom,
since when, until when), analyse it, and end it in one transaction. Analysed in the server (`./pgfaces work`,
threads here, the work in their backends: pgfaces_run_job) or here (`python -m pgfaces.client work`, one process
per worker, pgfaces.analysis as the server runs it, the faces sent through pgfaces_finish_job). A worker whose
connection breaks (the server restarting, say) connects again and goes on; the job it held is taken again by the
next claim, since its backend is gone. Start as many as there are cores, on as many machines as you like.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import os
import socket
import threading
import time

from .. import analysis
from ..errors import PgfacesError
from ..records import FACE_COLUMNS

log = logging.getLogger(__name__)

# A claim's token is known to its claimer alone: the job's end (run, finish, fail) needs it.
CLAIM = "select photo_id, profile, filename, token from pgfaces_claim_job(%s, %s::interval, %s)"
RUN = "select state, faces, error from pgfaces_run_job(%s, %s, %s, %s)"
FAIL = "select pgfaces_fail_job(%s, %s, %s, %s, %s)"
FINISH = ("select pgfaces_finish_job(%s, %s, %s, %s::int[], %s::int[], %s::int[], %s::int[], %s::real[],"
          " %s::vector[], %s::bytea[], %s::real[], %s::real[], %s::real[])")


@dataclasses.dataclass(frozen=True)
class Options:
    lease: str = "10 minutes"  # a running job is taken again after this, even from a live worker
    max_attempts: int = 3  # claims before a job is parked as failed
    until_empty: bool = False  # stop once nothing is queued or running (else wait for more)
    poll: float = 1.0  # seconds between looks at an empty queue


@dataclasses.dataclass
class WorkReport:
    done: int = 0
    faces: int = 0
    retried: int = 0  # failed, queued again
    lost: int = 0  # taken by another worker after this one's lease ran out; its result was dropped
    failed: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # parked: (file, error)
    seconds: float = 0.0

    def add(self, other: WorkReport) -> None:
        self.done += other.done
        self.faces += other.faces
        self.retried += other.retried
        self.lost += other.lost
        self.failed += other.failed
        self.seconds = max(self.seconds, other.seconds)

    def record(self, filename: str, state: str, faces: int | None, error: str | None) -> None:
        if state == "done":
            self.done += 1
            self.faces += faces or 0
        elif state == "queued":
            self.retried += 1
        elif state == "failed":
            self.failed.append((filename, error or ""))
        else:
            self.lost += 1

    def summary(self) -> str:
        rate = self.done / self.seconds if self.seconds else 0.0
        lines = [f"analysed {self.done} photo(s) with {self.faces} face(s) in {self.seconds:.1f} s "
                 f"({rate:.2f} photos/s); {self.retried} error(s) queued again; {self.lost} lost to another worker; "
                 f"{len(self.failed)} failed"]
        lines += [f"  FAILED {name}: {reason.removeprefix(f'{name}: ')}" for name, reason in self.failed]
        return "\n".join(lines)


def worker_name(index: int) -> str:
    """Unique among the workers of every machine: host, process, loop."""
    return f"{socket.gethostname()}:{os.getpid()}:{index}"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _connect(dsn: str, name: str):
    from . import connect

    return connect(dsn, application_name=f"pgfaces worker {name}"[:63])


def _run_in_server(conn, name: str, job: tuple, options: Options, cache: dict) -> tuple[str, int | None, str | None]:
    import psycopg

    photo_id, profile, filename, token = job
    try:
        return conn.execute(RUN, (photo_id, profile, token, options.max_attempts)).fetchone()
    except psycopg.errors.QueryCanceled as e:  # statement_timeout: a failure of this photo like any other
        message = f"{filename}: {_one_line(e.diag.message_primary or e)}"
        state = conn.execute(FAIL, (photo_id, profile, token, message, options.max_attempts)).fetchone()[0]
        return state, None, message


def _run_here(conn, name: str, job: tuple, options: Options, cache: dict) -> tuple[str, int | None, str | None]:
    import psycopg

    from . import limits, profiles

    photo_id, profile, filename, token = job
    if profile not in cache:  # read once per worker: restart the workers after changing a profile
        cache[profile] = profiles(conn, profile)[0]
    if "limits" not in cache:
        cache["limits"] = limits(conn)
    row = conn.execute("select image from photos where id = %s", (photo_id,)).fetchone()
    if row is None:
        return "lost", None, None  # deleted meanwhile, and its job with it
    try:
        result = analysis.analyse_photo(bytes(row[0]), filename, [cache[profile]], cache["limits"])
    except PgfacesError as e:
        message = _one_line(e)
    except Exception as e:  # noqa: BLE001 - as in the server: one photo's failure (even a bug) never stops the rest
        message = f"{filename}: {type(e).__name__}: {_one_line(e)}"
    else:
        columns = list(zip(*(face.values()[1:] for face in result.faces))) or [()] * (len(FACE_COLUMNS) - 1)
        try:
            state = conn.execute(FINISH, (photo_id, profile, token, *map(list, columns))).fetchone()[0]
            return state, len(result.faces), None
        except psycopg.errors.OperationalError:
            raise  # the connection: run_loop connects again
        except psycopg.Error as e:  # the server refused these faces (a limit of its own, say)
            message = f"{filename}: {_one_line(e.diag.message_primary or e)}"
    state = conn.execute(FAIL, (photo_id, profile, token, message, options.max_attempts)).fetchone()[0]
    return state, None, message


def _nothing_left(conn) -> bool:
    return not conn.execute("select exists (select from analysis_queue where state in ('queued', 'running'))"
                            ).fetchone()[0]


def run_loop(dsn: str, name: str, in_server: bool, options: Options = Options(),
             stop: threading.Event | None = None) -> WorkReport:
    """One worker: claims and analyses jobs until `stop` is set (or, with until_empty, the queue is drained)."""
    import psycopg

    report, started, conn, cache = WorkReport(), time.monotonic(), None, {}
    run = _run_in_server if in_server else _run_here
    try:
        while stop is None or not stop.is_set():
            try:
                if conn is None:
                    conn = _connect(dsn, name)
                job = conn.execute(CLAIM, (name, options.lease, options.max_attempts)).fetchone()
                if job is None:
                    if options.until_empty and _nothing_left(conn):
                        break
                    time.sleep(options.poll)
                    continue
                report.record(job[2], *run(conn, name, job, options, cache))
            except psycopg.OperationalError as e:
                # The server went away or restarts: its job is taken again (by us or another) once we are back.
                log.warning("worker %s: %s; connecting again", name, _one_line(e))
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(options.poll)
    except KeyboardInterrupt:
        pass
    finally:
        if conn is not None:
            conn.close()
    report.seconds = time.monotonic() - started
    return report


def _init_process() -> None:
    from .pool import _init_worker

    _init_worker()


def _process_loop(dsn: str, index: int, options: Options) -> WorkReport:
    return run_loop(dsn, worker_name(index), False, options)


def work(dsn: str, workers: int = 1, in_server: bool = False, options: Options = Options()) -> WorkReport:
    """Runs `workers` loops until interrupted (or drained, with until_empty); returns what they did together.
    In the server: one thread per loop, the analysis in its backend. Here: one process per loop (one: this one)."""
    total, started = WorkReport(), time.monotonic()
    if in_server:
        stop = threading.Event()
        with concurrent.futures.ThreadPoolExecutor(workers) as threads:
            futures = [threads.submit(run_loop, dsn, worker_name(i), True, options, stop) for i in range(workers)]
            try:
                concurrent.futures.wait(futures)
            except KeyboardInterrupt:
                stop.set()  # each loop ends after its current photo
            for f in futures:
                total.add(f.result())
    elif workers == 1:  # in this process: killing it kills the worker (no pool process left behind)
        _init_process()
        total = run_loop(dsn, worker_name(0), False, options)
    else:
        from .pool import _mp_context

        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=_mp_context(),
                                                    initializer=_init_process) as processes:
            futures = [processes.submit(_process_loop, dsn, i, options) for i in range(workers)]
            for f in futures:
                try:
                    total.add(f.result())
                except KeyboardInterrupt:  # the workers got it too, and return what they did
                    total.add(f.result())
    total.seconds = time.monotonic() - started
    return total
