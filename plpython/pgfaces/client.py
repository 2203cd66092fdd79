"""pgfaces without PL/Python: detection and embedding in the client, the same tables and search SQL in the database.

For managed PostgreSQL services that offer pgvector but no plpython3u. Install the schema with
`invoke migrate --client-side` (or `python -m pgfaces.migrate --client-side --dsn ...`), then:

    from pgfaces import client

    report = client.load("postgresql://...", ["~/Pictures/party"])     # LoadReport
    with client.connect("postgresql://...") as conn:
        rows = client.search(conn, image="me.jpg", n=10)             # list of dicts, best first
        client.remember_face(conn, "tibs", "me.jpg")
        rows = client.search(conn, person="tibs")

The code that runs is the server's own (pgfaces.pipeline, the same profiles read from the `profiles` table), so
a photo loaded here gets the same boxes, embeddings and metadata as one loaded through the trigger.

From a shell (any database, e.g. a managed service; the DSN defaults to $DATABASE_URL, else libpq's PG* variables):

    python -m pgfaces.client load ~/Pictures/party
    python -m pgfaces.client search me.jpg
    python -m pgfaces.client embed me.jpg        # the vector as text, for psql or another language
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import hashlib
import json
import logging
import multiprocessing
import os
import pathlib
import time
from concurrent.futures.process import BrokenProcessPool

from . import loader, plsql
from .errors import PgfacesError
from .model import Face, Limits, PhotoMeta

log = logging.getLogger(__name__)

__all__ = ["connect", "load", "search", "remember_face", "face_embedding", "embed_reference", "profiles", "limits",
           "LoadReport"]

LoadReport = loader.LoadReport

_FACE_COLUMNS = "photo_id, profile, face_key, x, y, width, height, score, embedding, thumbnail"
_INSERT_PHOTO = (
    "insert into photos (filename, image, sha256, taken_at, latitude, longitude, camera, exif, width, height)"
    " values (%s, %s, %s, %s::timestamptz, %s, %s, %s, %s::jsonb, %s, %s)"
    " on conflict (sha256) do nothing returning id"
)


def connect(dsn: str, **kwargs):
    """A psycopg connection in autocommit mode (each photo then commits in its own transaction)."""
    import psycopg

    kwargs.setdefault("autocommit", True)
    return psycopg.connect(dsn, **kwargs)


@contextlib.contextmanager
def _connection(dsn_or_conn):
    if isinstance(dsn_or_conn, str):
        with connect(dsn_or_conn) as conn:
            yield conn
    else:
        yield dsn_or_conn


def _bytes(image) -> bytes:
    """Image bytes from bytes or a path."""
    if isinstance(image, (bytes, bytearray, memoryview)):
        return bytes(image)
    return pathlib.Path(image).expanduser().read_bytes()


# --- what the server would read: profiles and limits ------------------------------------------------------------


def profiles(conn, profile: str | None = None) -> list[dict]:
    """The profiles to analyse with: the named one, else every profile marked `ingest` (as the trigger does)."""
    from psycopg.rows import dict_row

    cur = conn.cursor(row_factory=dict_row)
    if profile is None:
        rows = cur.execute(f"select {plsql._PROFILE_COLUMNS} from profiles where ingest order by name").fetchall()
    else:  # pgfaces_profile raises the SQL error for an unknown name
        rows = cur.execute(f"select {plsql._PROFILE_COLUMNS} from pgfaces_profile(%s)", (profile,)).fetchall()
    return [plsql._profile_dict(r) for r in rows]


def search_profile(conn, profile: str | None = None) -> dict:
    """The profile a search uses: the named one, else the default."""
    from psycopg.rows import dict_row

    row = conn.cursor(row_factory=dict_row).execute(
        f"select {plsql._PROFILE_COLUMNS} from pgfaces_profile(%s)", (profile,)).fetchone()
    return plsql._profile_dict(row)


def limits(conn) -> Limits:
    """Limits from the settings pgfaces.max_image_bytes / max_pixels / max_faces, else the defaults (as the server)."""
    row = conn.execute(
        "select current_setting('pgfaces.max_image_bytes', true), current_setting('pgfaces.max_pixels', true),"
        " current_setting('pgfaces.max_faces', true)").fetchone()
    values = {}
    for key, setting, text in zip(("max_bytes", "max_pixels", "max_faces"),
                                  ("max_image_bytes", "max_pixels", "max_faces"), row):
        if text in (None, ""):
            continue
        try:
            values[key] = int(text)
        except ValueError:
            raise ValueError(f"setting pgfaces.{setting} must be a whole number, not {text!r}") from None
    return Limits(**values)


# --- analysis (runs in worker processes) -------------------------------------------------------------------------


def analyse_photo(data: bytes, profile_dicts: list[dict], lim: Limits, filename: str
                  ) -> tuple[PhotoMeta, list[tuple[str, list[Face]]]]:
    """What the photos_analyse trigger computes for one photo: its metadata and, per profile, its faces."""
    from . import imaging, metadata, pipeline

    if not data:
        raise PgfacesError(f"{filename}: image is empty (0 bytes)")
    found = []
    if not profile_dicts:
        imaging.read_header(data, lim)
        return metadata.read_metadata(data), found
    meta = None
    for profile in profile_dicts:
        analysis = pipeline.analyse(data, profile, lim, filename=filename)
        meta = meta or analysis.meta
        found.append((profile["name"], analysis.faces))
    return meta, found


@dataclasses.dataclass
class _Analysed:
    filename: str
    data: bytes = b""
    sha256: str = ""
    meta: PhotoMeta | None = None
    found: list = dataclasses.field(default_factory=list)
    error: str | None = None


def _init_worker() -> None:
    try:  # one thread per process, like the server's backends (OMP_NUM_THREADS=1): the processes are the parallelism
        import cv2

        cv2.setNumThreads(1)
    except Exception:  # noqa: BLE001 - only a performance hint
        pass


def _analyse_file(filename: str, profile_dicts: list[dict], lim: Limits) -> _Analysed:
    try:
        data = pathlib.Path(filename).read_bytes()
    except OSError as e:
        return _Analysed(filename, error=e.strerror or str(e))
    result = _Analysed(filename, data=data, sha256=hashlib.sha256(data).hexdigest())
    try:
        result.meta, result.found = analyse_photo(data, profile_dicts, lim, filename)
    except PgfacesError as e:
        message = str(e)
        result.error = message if message.startswith(f"{filename}:") else f"{filename}: {message}"
    except Exception as e:  # noqa: BLE001 - as on the server, one file's failure (even a bug) never stops the rest
        result.error = f"{filename}: {type(e).__name__}: {e}"
    return result


def _mp_context():
    """Fresh worker processes, never a fork of the caller: a forked child inherits OpenCV's (or BLAS's) thread pool
    in whatever state the parent left it and can hang. As with any multiprocessing program, a script that loads
    must keep its top level under `if __name__ == "__main__":` (the workers import the main module)."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _analyse_all(files: list[pathlib.Path], profile_dicts: list[dict], lim: Limits, workers: int):
    """Yields an _Analysed per file, in completion order, from a pool of `workers` processes.

    A file that kills its process (a crash in a native decoder, the OOM killer) breaks the pool: the files then in
    flight are retried one at a time in a fresh process, which names the culprit, and the rest go on in parallel.
    """
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
                        inflight[pool.submit(_analyse_file, name, profile_dicts, lim)] = name
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
            yield _Analysed(broken[0], error=f"{broken[0]}: the process analysing it died "
                                             f"(a crash in a native decoder or model, or out of memory){hint}")
            queue, solo = broken[1:], False
        else:
            queue, solo = broken, bool(broken)


# --- writing ---------------------------------------------------------------------------------------------------


def _face_rows(photo_id: int, filename: str, found) -> list[tuple]:
    return [
        (photo_id, profile, plsql.face_key(filename, f), int(f.x), int(f.y), int(f.width), int(f.height),
         None if f.score is None else float(f.score), plsql.vector_text(f.embedding), f.thumbnail or None)
        for profile, faces in found for f in faces
    ]


def write_photo(conn, item: _Analysed) -> int | None:
    """The photo row and all its faces in one transaction. Returns the face count, None if the photo was there."""
    meta = item.meta
    with conn.transaction():
        row = conn.execute(_INSERT_PHOTO, (
            item.filename, item.data, item.sha256,
            meta.taken_at.isoformat() if meta.taken_at else None, meta.latitude, meta.longitude, meta.camera,
            json.dumps(meta.exif) if meta.exif else None, meta.width, meta.height)).fetchone()
        if row is None:
            return None
        rows = _face_rows(row[0], item.filename, item.found)
        if rows:
            with conn.cursor().copy(f"copy faces ({_FACE_COLUMNS}) from stdin") as copy:
                for r in rows:
                    copy.write_row(r)
    return len(rows)


def has_ingest_trigger(conn) -> bool:
    return conn.execute(
        "select exists (select 1 from pg_trigger where tgname = 'photos_analyse' and tgrelid = 'photos'::regclass)"
    ).fetchone()[0]


def load(dsn_or_conn, paths: list[str], workers: int | None = None, profile: str | None = None,
         progress: bool = False) -> LoadReport:
    """Loads the photos under `paths` (files, folders, globs), analysing them here in `workers` processes.

    Each photo is analysed with every profile marked `ingest` (or with `profile` alone) and written with its
    faces in one transaction; files whose bytes the database holds already are skipped; a file that fails is
    listed in the report and the rest go on. A connection you pass should be in autocommit mode (connect()).
    """
    import psycopg

    workers = workers or os.cpu_count() or 1
    files, missing = loader.collect([str(p) for p in paths])
    report = LoadReport(failed=list(missing))
    started = time.monotonic()
    with _connection(dsn_or_conn) as conn:
        if has_ingest_trigger(conn):
            raise RuntimeError(
                "this database analyses photos itself (plpython3u; its photos_analyse trigger runs on every INSERT): "
                "load without --client-side (pgfaces.loader.load)")
        profile_dicts = profiles(conn, profile)
        lim = limits(conn)
        todo = loader.skip_known(conn, files, report)
        bar = loader._progress(len(todo), progress)
        for item in _analyse_all(todo, profile_dicts, lim, workers):
            if item.error is None:
                try:
                    faces = write_photo(conn, item)
                except psycopg.Error as e:
                    item.error = f"{item.filename}: {e.diag.message_primary or e}"
                    if conn.broken:
                        raise
                else:
                    if faces is None:
                        report.skipped += 1
                    else:
                        report.loaded += 1
                        report.faces += faces
            if item.error is not None:
                report.failed.append((item.filename, item.error))
            bar.update(report.loaded, report.faces, len(report.failed))
        bar.close()
    report.seconds = time.monotonic() - started
    return report


# --- search ----------------------------------------------------------------------------------------------------


def embed_reference(image, profile: dict, lim: Limits = Limits()):
    """The embedding (float32 array) of the largest face in a reference image, computed here."""
    from . import pipeline

    try:
        largest, found = pipeline.reference_face(_bytes(image), profile, lim)
    except PgfacesError as e:
        raise type(e)(f"reference image: {e}") from e
    if largest is None:
        raise ValueError("no face found in the reference image")
    if found > 1:
        log.info("%d faces found in the reference image; using the largest (%dx%d at %d,%d)",
                 found, largest.width, largest.height, largest.x, largest.y)
    return largest.embedding


def face_embedding(conn, image, profile: str | None = None) -> str:
    """The client-side face_embedding(image, profile): the largest face's vector in pgvector's text form
    ('[0.1,...]'), for find_photos_near(%s::vector, ...) or any other driver."""
    return plsql.vector_text(embed_reference(image, search_profile(conn, profile), limits(conn)))


def reference_embedder(conn, profile: str | None = None):
    """A function image -> vector text for pgfaces.search.search(embed=...): the reference is embedded here."""
    return lambda image: face_embedding(conn, image, profile)


def search(conn, image=None, person: str | None = None, n: int = 10, max_distance: float | None = None,
           profile: str | None = None, filters=None) -> list[dict]:
    """Photos of the person in `image` (bytes or a path; its largest face) or of a remembered `person`, best first.

    Rows are dicts: photo_id, filename, face_id, distance and the matched face's x, y, width, height, taken_at.
    `filters` is a pgfaces.search.Filters (since, until, near, camera).
    """
    from . import search as s

    data = None if image is None else _bytes(image)
    matches = s.search(conn, data, person, n, filters, profile, max_distance, embed=reference_embedder(conn, profile))
    return [dataclasses.asdict(m) for m in matches]


def remember_face(conn, name: str, image, profile: str | None = None) -> int:
    """Stores a named reference face (several per person are allowed), embedded here. Returns the person's id."""
    if name is None or not name.strip():
        raise ValueError("a person needs a name")
    data = _bytes(image)
    p = search_profile(conn, profile)
    embedding = plsql.vector_text(embed_reference(data, p, limits(conn)))
    with conn.transaction():
        conn.execute("insert into people (name) values (%s) on conflict on constraint people_name_key do nothing",
                     (name,))
        person_id = conn.execute("select id from people where name = %s", (name,)).fetchone()[0]
        conn.execute("insert into person_references (person_id, profile, image, embedding) values (%s, %s, %s, %s::vector)",
                     (person_id, p["name"], data, embedding))
    return person_id


# --- command line ----------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    import argparse
    import sys

    import psycopg

    from . import client as api  # this module by its real name, so that worker processes find its functions
    from . import search as s

    parser = argparse.ArgumentParser(prog="python -m pgfaces.client",
                                     description="pgfaces with detection and embedding in this process (no plpython3u)")
    parser.add_argument("--dsn", default=os.environ.get("DATABASE_URL", ""),
                        help="libpq connection string or URI (default: $DATABASE_URL, else the PG* variables)")
    parser.add_argument("--profile", default=None, help="profile (default: the ingest profiles / the default one)")
    commands = parser.add_subparsers(dest="command", required=True)
    load_cmd = commands.add_parser("load", help="load photos (files, folders, globs)")
    load_cmd.add_argument("paths", nargs="+")
    load_cmd.add_argument("--workers", type=int, default=None, help="processes analysing (default: the number of cores)")
    load_cmd.add_argument("--quiet", action="store_true", help="no progress bar")
    search_cmd = commands.add_parser("search", help="photos of the person in IMAGE (or --person), best first")
    search_cmd.add_argument("image", nargs="?")
    search_cmd.add_argument("--person")
    search_cmd.add_argument("-n", type=int, default=10)
    search_cmd.add_argument("--max-distance", type=float, default=None)
    embed_cmd = commands.add_parser("embed", help="print the embedding of the largest face in IMAGE, as vector text")
    embed_cmd.add_argument("image")
    remember_cmd = commands.add_parser("remember", help="store IMAGE as a reference face of NAME")
    remember_cmd.add_argument("name")
    remember_cmd.add_argument("image")
    args = parser.parse_args(argv)

    try:
        if args.command == "load":
            report = api.load(args.dsn, args.paths, args.workers, args.profile, progress=not args.quiet)
            print(report.summary())
            return 1 if report.failed and not report.loaded and not report.skipped else 0
        with api.connect(args.dsn) as conn:
            if args.command == "search":
                if (args.image is None) == (args.person is None):
                    parser.error("search needs a reference IMAGE or --person NAME")
                rows = api.search(conn, args.image, args.person, args.n, args.max_distance, args.profile)
                print(s.format_table([s.Match(**r) for r in rows]))
            elif args.command == "embed":
                print(api.face_embedding(conn, args.image, args.profile))
            else:
                print(api.remember_face(conn, args.name, args.image, args.profile))
    except psycopg.Error as e:
        print(f"pgfaces: {e.diag.message_primary or e}", file=sys.stderr)
        return 1
    except (OSError, ValueError, RuntimeError, PgfacesError) as e:
        print(f"pgfaces: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
