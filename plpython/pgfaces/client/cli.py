"""The user's commands: `python -m pgfaces.client COMMAND` and the `invoke` tasks of the same names call these.

Each command prints its result, says what went wrong in one line on stderr, and returns the exit code.
DSN: a libpq connection string or URI; from the shell it defaults to $DATABASE_URL, else libpq's PG* variables.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shlex
import signal
import sys
import threading
from typing import Callable

from .. import loader, search as s
from ..errors import PgfacesError
from ..terminal import printable


# How the user calls these commands, for the hints of the messages: `./pgfaces` sets its own (tasks/app.py).
PROG = "python -m pgfaces.client"


def _fail(message: str) -> int:
    print(f"pgfaces: {printable(message)}", file=sys.stderr)
    return 1


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the command waits: psycopg cancels the statement it waits for, as for Ctrl-C."""


def _terminate(signum, frame):
    raise _Terminated()


def _run(body: Callable[[], int]) -> int:
    """Runs a command; a database error or bad input ends it with its one-line message. Ctrl-C or SIGTERM cancels
    the statement it waits for in the server (no run goes on there without it) and exits 130 or 143."""
    import psycopg

    main = threading.current_thread() is threading.main_thread()
    before = signal.signal(signal.SIGTERM, _terminate) if main else None
    try:
        return body()
    except psycopg.Error as e:
        return _fail(e.diag.message_primary or str(e).strip().splitlines()[0])
    except (OSError, ValueError, RuntimeError, PgfacesError) as e:
        return _fail(str(e))
    except KeyboardInterrupt as e:
        terminated = isinstance(e, _Terminated)
        print(f"pgfaces: stopped ({'SIGTERM' if terminated else 'Ctrl-C'}); what the server was doing is cancelled",
              file=sys.stderr)
        return 143 if terminated else 130
    finally:
        if main:
            signal.signal(signal.SIGTERM, before)


def _connect(dsn: str):
    from . import connect

    conn = connect(dsn)
    conn.add_notice_handler(lambda d: print(f"NOTICE: {printable(d.message_primary)}", file=sys.stderr))
    return conn


def load(dsn: str, paths: list[str], workers: int | None = None, quiet: bool = False, local: bool | None = None,
         profile: str | None = None, deferred: bool = False, keep_outside: bool = False) -> int:
    """Loads photos (files, folders, globs); files already loaded are skipped; failures are listed at the end.
    local: analyse here (None: when the database cannot). deferred: store and queue the photos, then follow the
    workers' progress (analysis_progress) until the queue is drained. keep_outside: store each file's absolute
    path (and a preview) instead of its bytes."""
    from . import client_side_database, load as load_here, progress

    def body() -> int:
        here = client_side_database(dsn) if local is None else local
        if here:
            report = load_here(dsn, paths, workers, profile, progress=not quiet, deferred=deferred,
                               keep_outside=keep_outside)
        else:
            report = loader.load(dsn, paths, workers, progress=not quiet, deferred=deferred, keep_outside=keep_outside)
        print(report.summary(" (queued for analysis)" if deferred else ""))
        if deferred and not quiet:
            with _connect(dsn) as conn:
                progress.follow(conn)
        if report.failed:
            given = report.loaded + report.skipped + len(report.failed)
            return _fail(f"{len(report.failed)} of {given} file(s) failed (listed above)"
                         + (f"; {report.loaded} loaded" if report.loaded else ""))
        return 0
    return _run(body)


def work(dsn: str, workers: int | None = None, in_server: bool = False, lease: str = "10 minutes",
         max_attempts: int = 3, until_empty: bool = False) -> int:
    """Drains the queue of deferred analysis with `workers` loops until interrupted (or drained, with until_empty);
    analysing here (one process per loop), or in the server (in_server: one connection per loop)."""
    from . import is_client_side, worker

    def body() -> int:
        with _connect(dsn) as conn:
            if in_server and is_client_side(conn):
                return _fail("this database has no plpython3u, so it cannot analyse: run the workers here "
                             "(python -m pgfaces.client work --dsn URL)")
        options = worker.Options(lease=lease, max_attempts=max_attempts, until_empty=until_empty)
        print(f"{workers or os.cpu_count() or 1} worker(s) {'in the server' if in_server else 'here'};"
              f" {'until the queue is empty; ' if until_empty else ''}Ctrl-C or SIGTERM stops them after their"
              " current photo", file=sys.stderr, flush=True)
        report = worker.work(dsn, workers or os.cpu_count() or 1, in_server, options)
        print(report.summary(), flush=True)
        return 130 if report.stopped_at_once else 0
    return _run(body)


def _known_person(conn, name: str) -> None:
    """Stops with the nearest names when no one is called `name` (a typo must not become a new person)."""
    # the one rule for names (pgfaces_person_name): trimmed, normalised, or refused with why
    if conn.execute("select from people where name = pgfaces_person_name(%s)", (name,)).fetchone() is not None:
        return
    nearest = conn.execute("select pgfaces_nearest_names(%s)", (name,)).fetchone()[0]
    guess = "did you mean " + ", ".join(f'"{n}"' for n in nearest) + "? " if nearest else ""
    raise ValueError(f'unknown person "{name.strip()}": {guess}to name someone new: '
                     f"{PROG} remember {shlex.quote(name.strip())} IMAGE")


def search(dsn: str, image: str | None = None, person: str | None = None, n: int = 10,
           filters: s.Filters | None = None, profile: str | None = None, max_distance: float | None = None,
           html: str | None = None, local: bool | None = None) -> int:
    """Prints the photos of the person in IMAGE (or of PERSON, someone remembered or named), best first. With both,
    IMAGE is first remembered as one more face of PERSON, and every face of theirs counts. `html`: also write a
    contact sheet there."""
    from . import remember_face, search as find

    if image is None and person is None:
        return _fail("search needs a reference IMAGE or --person NAME")
    if image is not None and not pathlib.Path(image).expanduser().is_file():
        return _fail(f"no such file: {image}")

    def body() -> int:
        with _connect(dsn) as conn:
            if person:
                _known_person(conn, person)
            if person and image:
                remember_face(conn, person, image, profile, local)
            rows = find(conn, None if person else image, person, n, max_distance, profile, filters, local)
            matches = [s.Match(**r) for r in rows]
            print(s.format_table(matches))
            if html:
                title = f"Photos of {person}" if person else f"Photos like {image}"
                pathlib.Path(html).expanduser().write_text(s.contact_sheet(conn, matches, title))
                print(f"contact sheet: {html}")
        return 0
    return _run(body)


def embed(dsn: str, image: str, profile: str | None = None, local: bool | None = None) -> int:
    """Prints the embedding of the largest face in IMAGE, as vector text (for psql or another language)."""
    from . import face_embedding

    def body() -> int:
        with _connect(dsn) as conn:
            print(face_embedding(conn, image, profile, local))
        return 0
    return _run(body)


def remember(dsn: str, name: str, image: str, profile: str | None = None, local: bool | None = None) -> int:
    """Stores IMAGE as a reference face of NAME (a new person when no one has that name) and says which."""
    from . import remember_face

    if not pathlib.Path(image).expanduser().is_file():
        return _fail(f"no such file: {image}")

    def body() -> int:
        with _connect(dsn) as conn:
            known = conn.execute("select id from people where name = trim(%s)", (name,)).fetchone()
            person = remember_face(conn, name, image, profile, local)
            print(f'{image} remembered as a face of "{name.strip()}": '
                  f"{'person' if known else 'a new person'} {person}")
        return 0
    return _run(body)


def cluster(dsn: str, profile: str | None = None, local: bool | None = None) -> int:
    """Groups the profile's faces into people (cluster_faces), printing a progress line as it goes."""
    from . import cluster_faces

    def body() -> int:
        with _connect(dsn) as conn:
            changed = cluster_faces(conn, profile, local,
                                    progress=lambda m: print(printable(m), file=sys.stderr, flush=True))
        print(f"{changed} faces changed person")
        return 0
    return _run(body)


def people(dsn: str, html: str | None = None, hidden: bool = False) -> int:
    """Prints the people of the collection (people_overview) and how many faces are in none; `html`: also write
    a page with each person's cover face and a strip of their faces."""
    from .. import overview

    def body() -> int:
        with _connect(dsn) as conn:
            persons, unassigned = overview.people(conn, hidden), overview.unassigned_count(conn)
            print(overview.table(persons, unassigned))
            if html:
                pathlib.Path(html).write_text(overview.page(conn, persons, unassigned))
                print(f"people page: {html}")
        return 0
    return _run(body)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pgfaces.client", description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=os.environ.get("DATABASE_URL", ""),
                        help="libpq connection string or URI (default: $DATABASE_URL, else the PG* variables)")
    parser.add_argument("--profile", default=None, help="profile (default: the ingest profiles / the default one)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--here", dest="local", action="store_true", default=None,
                       help="detect and embed in this process (the default where the database has no plpython3u)")
    where.add_argument("--in-server", dest="local", action="store_false", help="let the database detect and embed")
    # --dsn and --in-server after the command too (`python -m pgfaces.client work --dsn URL`)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dsn", default=argparse.SUPPRESS, help="as --dsn before the command")
    common.add_argument("--in-server", dest="local", action="store_false", default=argparse.SUPPRESS,
                        help="as --in-server before the command")
    commands = parser.add_subparsers(dest="command", required=True)
    load_cmd = commands.add_parser("load", parents=[common], help="load photos (files, folders, globs)")
    load_cmd.add_argument("paths", nargs="+")
    load_cmd.add_argument("--workers", type=int, default=None, help="processes analysing (default: the number of cores)")
    load_cmd.add_argument("--quiet", action="store_true", help="no progress bar")
    load_cmd.add_argument("--deferred", action="store_true",
                          help="store and queue the photos for the workers, then follow their progress")
    load_cmd.add_argument("--keep-originals-outside", dest="keep_outside", action="store_true",
                          help="store each file's absolute path and a preview, not its bytes (the server reads the "
                               "files: they must be under pgfaces.originals_dirs)")
    work_cmd = commands.add_parser("work", parents=[common],
                                   help="drain the queue of deferred analysis (analysing here, or --in-server)")
    work_cmd.add_argument("--workers", type=int, default=None, help="loops (default: the number of cores)")
    work_cmd.add_argument("--lease", default="10 minutes", help="a job is taken from a worker silent this long")
    work_cmd.add_argument("--max-attempts", type=int, default=3, help="claims before a job is parked as failed")
    work_cmd.add_argument("--until-empty", action="store_true", help="stop once nothing is queued or running")
    search_cmd = commands.add_parser("search", parents=[common],
                                     help="photos of the person in IMAGE (or --person), best first")
    search_cmd.add_argument("image", nargs="?")
    search_cmd.add_argument("--person")
    search_cmd.add_argument("-n", type=int, default=10)
    search_cmd.add_argument("--max-distance", type=float, default=None)
    search_cmd.add_argument("--html", default=None, help="also write a contact sheet here")
    embed_cmd = commands.add_parser("embed", parents=[common],
                                    help="print the embedding of the largest face in IMAGE, as vector text")
    embed_cmd.add_argument("image")
    remember_cmd = commands.add_parser("remember", parents=[common], help="store IMAGE as a reference face of NAME")
    remember_cmd.add_argument("name")
    remember_cmd.add_argument("image")
    commands.add_parser("cluster", help="group the faces into people (cluster_faces)")
    people_cmd = commands.add_parser("people", help="list the people of the collection")
    people_cmd.add_argument("--html", default=None, help="also write a page of their faces here")
    people_cmd.add_argument("--hidden", action="store_true", help="list hidden people too")
    args = parser.parse_args(argv)

    if args.command == "load":
        return load(args.dsn, args.paths, args.workers, args.quiet, args.local, args.profile, args.deferred,
                    args.keep_outside)
    if args.command == "work":
        return work(args.dsn, args.workers, args.local is False, args.lease, args.max_attempts, args.until_empty)
    if args.command == "search":
        return search(args.dsn, args.image, args.person, args.n, None, args.profile, args.max_distance, args.html,
                      args.local)
    if args.command == "embed":
        return embed(args.dsn, args.image, args.profile, args.local)
    if args.command == "cluster":
        return cluster(args.dsn, args.profile, args.local)
    if args.command == "people":
        return people(args.dsn, args.html, args.hidden)
    return remember(args.dsn, args.name, args.image, args.profile, args.local)
