"""Workers that drain the queue of deferred analysis (README, "Deferred analysis").

Each worker is a loop over one connection: claim a job (pgfaces_claim_job commits the claim: state running, by whom,
since when, until when), analyse it, and end it in one transaction. Analysed in the server (`./pgfaces work`,
threads here, the work in their backends: pgfaces_run_job) or here (`python -m pgfaces.client work`, one process
per worker, pgfaces.analysis as the server runs it, the faces sent through pgfaces_finish_job). A worker whose
connection breaks (the server restarting, say) connects again and goes on; the job it held is taken again by the
next claim, since its backend is gone. Start as many as there are cores, on as many machines as you like.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
import time

from .. import analysis, originals
from ..errors import PgfacesError
from ..records import FACE_COLUMNS
from ..terminal import printable

log = logging.getLogger(__name__)

# A claim's token is known to its claimer alone: the job's end (run, finish, fail) needs it. The claim's last
# argument: whether this worker fetches URL originals (client workers do, the server never does).
CLAIM = "select photo_id, profile, filename, token from pgfaces_claim_job(%s, %s::interval, %s, %s)"
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
    replaced: int = 0  # worker processes that died and were replaced
    stopped_at_once: bool = False  # a second signal: the jobs in hand went back to the queue

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
                 f"{len(self.failed)} failed"
                 + (f"; {self.replaced} worker process(es) died and were replaced" if self.replaced else "")
                 + ("; stopped at once: the photos in hand go to the next claim" if self.stopped_at_once else "")]
        lines += [f"  FAILED {printable(name)}: {printable(reason.removeprefix(f'{name}: '))}"
                  for name, reason in self.failed]
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
        cache["access"] = originals.access(conn.execute(originals.ACCESS_SQL).fetchone(), cache["limits"])
    row = conn.execute("select image, uri, sha256 from photos where id = %s", (photo_id,)).fetchone()
    if row is None:
        return "lost", None, None  # deleted meanwhile, and its job with it
    image, uri, sha256 = row
    try:
        data = originals.read(image, uri, sha256, cache["access"], fetch_urls=True)
        result = analysis.analyse_photo(data, filename, [cache[profile]], cache["limits"])
    except PgfacesError as e:
        message = _one_line(e)
    except Exception as e:  # noqa: BLE001 - as in the server: one photo's failure (even a bug) never stops the rest
        message = f"{filename}: {type(e).__name__}: {_one_line(e)}"
    else:
        columns = list(zip(*(face.values()[1:] for face in result.faces))) or [()] * (len(FACE_COLUMNS) - 1)
        try:
            with conn.transaction():
                if sha256 is None:  # a URL original fetched for the first time: what the INSERT could not read
                    conn.execute(originals.FETCHED, originals.fetched_args(
                        (photo_id, profile, token), data, result, cache["limits"]))
                state = conn.execute(FINISH, (photo_id, profile, token, *map(list, columns))).fetchone()[0]
            return state, len(result.faces), None
        except psycopg.errors.OperationalError:
            raise  # the connection: run_loop connects again
        except psycopg.Error as e:  # the server refused these faces (a limit of its own, say)
            message = f"{filename}: {_one_line(e.diag.message_primary or e)}"
    state = conn.execute(FAIL, (photo_id, profile, token, message, options.max_attempts)).fetchone()[0]
    return state, None, message


def _nothing_left(conn, in_server: bool) -> bool:
    """Nothing queued or running that this worker could take (the server's leave URL originals to client workers)."""
    return not conn.execute("select exists (select from analysis_queue q where q.state in ('queued', 'running')"
                            " and (%s or not pgfaces_url_original(q.photo_id)))", (not in_server,)).fetchone()[0]


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
                job = conn.execute(CLAIM, (name, options.lease, options.max_attempts, not in_server)).fetchone()
                if job is None:
                    if options.until_empty and _nothing_left(conn, in_server):
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


def _process_loop(index: int, dsn: str, options: Options, stop) -> WorkReport:
    return run_loop(dsn, worker_name(index), False, options, stop)


def _threads(dsn: str, workers: int, options: Options, stop: "pool.Stop") -> list[WorkReport]:
    """In the server: one thread per loop, the analysis in its backend. A loop that ends on an error of its own is
    started again; on a forced stop the threads are left to end with the process (their backends finish the photo
    in hand, which the fencing token keeps or drops)."""
    reports: list[WorkReport] = []

    def loop(index: int) -> None:
        while True:
            try:
                reports.append(run_loop(dsn, worker_name(index), True, options, stop))
                return
            except Exception:  # noqa: BLE001 - a bug in one loop never stops the others
                log.exception("worker %s stopped on an error; starting it again", worker_name(index))
                if stop.is_set():
                    return
                time.sleep(options.poll)

    threads = [threading.Thread(target=loop, args=(i,), name=f"pgfaces-worker-{i}", daemon=True)
               for i in range(workers)]
    for t in threads:
        t.start()
    while not stop.forced and any(t.is_alive() for t in threads):
        for t in threads:
            t.join(timeout=0.2)
    return reports


def work(dsn: str, workers: int = 1, in_server: bool = False, options: Options = Options()) -> WorkReport:
    """Runs `workers` loops until interrupted (or drained, with until_empty); returns what they did together.
    In the server: one thread per loop, the analysis in its backend. Here: one process per loop (one: this one).
    SIGINT or SIGTERM: each loop ends its current photo, then stops; a second one stops them at once."""
    from . import pool

    total, started, stop = WorkReport(), time.monotonic(), pool.Stop()

    def interrupt() -> None:
        raise KeyboardInterrupt  # the loop in this process: run_loop closes its connection, its job is free

    with pool.stop_on_signals(stop, on_force=interrupt if workers == 1 and not in_server else None):
        if in_server:
            reports = _threads(dsn, workers, options, stop)
        elif workers == 1:  # in this process: killing it kills the worker (no process left behind)
            pool._init_worker()
            reports = [run_loop(dsn, worker_name(0), False, options, stop)]
        else:
            supervised = pool.run_processes(_process_loop, workers, (dsn, options), stop)
            reports, total.replaced = supervised.results, supervised.replaced
    for report in reports:
        total.add(report)
    total.stopped_at_once = stop.forced
    total.seconds = time.monotonic() - started
    return total
