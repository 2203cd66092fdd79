"""pgfaces from a client: load, search and remember, with detection and embedding here or in the server.

For managed PostgreSQL services that offer pgvector but no plpython3u (install the schema with
`python -m pgfaces.migrate --client-side --dsn ...`), and for any script:

    from pgfaces import client

    report = client.load("postgresql://...", ["~/Pictures/party"])     # LoadReport
    with client.connect("postgresql://...") as conn:
        rows = client.search(conn, image="me.jpg", n=10)             # list of dicts, best first
        client.remember_face(conn, "tibs", "me.jpg")
        rows = client.search(conn, person="tibs")

The analysis is pgfaces.analysis, the server's own code with the profiles read from the `profiles` table, so a
photo loaded here gets the same boxes, embeddings and metadata as one loaded through the trigger. `local=None`
(the default of every function) analyses here when the database has no plpython3u and in the server otherwise.
The command line is `python -m pgfaces.client` (pgfaces.client.cli); `invoke` calls the same functions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import pathlib
import time

from .. import analysis, loader, originals, profiles as profile_rows
from ..errors import PgfacesError, with_subject
from ..records import FACE_COLUMNS, Limits, PhotoAnalysis, vector_text
from . import pool

log = logging.getLogger(__name__)

__all__ = ["connect", "load", "search", "remember_face", "face_embedding", "embed_reference", "profiles", "limits",
           "is_client_side", "cluster_faces", "LoadReport"]

LoadReport = loader.LoadReport


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


# --- what the server would read --------------------------------------------------------------------------------


def is_client_side(conn) -> bool:
    """Whether the database analyses nothing itself (installed without plpython3u)."""
    return conn.execute("select pgfaces_is_client_side()").fetchone()[0]


def client_side_database(dsn: str) -> bool:
    """is_client_side() of the database at `dsn`."""
    with connect(dsn) as conn:
        return is_client_side(conn)


def _local(conn, local: bool | None) -> bool:
    return is_client_side(conn) if local is None else local


def profiles(conn, profile: str | None = None) -> list[dict]:
    """The profiles to analyse with: the named one, else every profile marked `ingest` (as the trigger does)."""
    from psycopg.rows import dict_row

    cur = conn.cursor(row_factory=dict_row)
    if profile is None:
        rows = cur.execute(f"select {profile_rows.COLUMNS} from profiles where ingest order by name").fetchall()
    else:  # pgfaces_profile raises the SQL error for an unknown name
        rows = cur.execute(f"select {profile_rows.COLUMNS} from pgfaces_profile(%s)", (profile,)).fetchall()
    return [profile_rows.from_row(r) for r in rows]


def search_profile(conn, profile: str | None = None) -> dict:
    """The profile a search uses: the named one, else the default."""
    from psycopg.rows import dict_row

    row = conn.cursor(row_factory=dict_row).execute(
        f"select {profile_rows.COLUMNS} from pgfaces_profile(%s)", (profile,)).fetchone()
    return profile_rows.from_row(row)


def limits(conn) -> Limits:
    """The limits in force for this connection, as the server reads them (pgfaces_limits())."""
    row = conn.execute("select max_image_bytes, max_pixels, max_faces from pgfaces_limits()").fetchone()
    return Limits(max_bytes=row[0], max_pixels=row[1], max_faces=row[2])


# --- loading ---------------------------------------------------------------------------------------------------


def write_photo(conn, result: PhotoAnalysis, data: bytes, preview: bytes | None = None) -> int | None:
    """The photo row and all its faces in one transaction. Returns the face count, None if the photo was there.
    With a `preview` the row keeps the file's absolute path (uri) and the preview instead of the bytes."""
    row = {**result.photo.values(), "filename": result.filename, "size_bytes": len(data)}
    if preview is None:
        row["image"] = data
    else:
        row.update(uri=originals.file_uri(result.filename), preview=preview)
    with conn.transaction():
        inserted = conn.execute(
            f"insert into photos ({', '.join(row)}) values ({', '.join(f'%({c})s' for c in row)})"
            " on conflict (sha256) do nothing returning id", row,
        ).fetchone()
        if inserted is None:
            return None
        if result.faces:
            with conn.cursor().copy(f"copy faces (photo_id, {', '.join(FACE_COLUMNS)}) from stdin") as copy:
                for face in result.faces:
                    copy.write_row((inserted[0], *face.values()))
            conn.execute("select pgfaces_faces_added(%s)", (inserted[0],))  # as the server's trigger does
    return len(result.faces)


def load(dsn_or_conn, paths: list[str], workers: int | None = None, profile: str | None = None,
         progress: bool = False, deferred: bool = False, keep_outside: bool = False) -> LoadReport:
    """Loads the photos under `paths` (files, folders, globs), analysing them here in `workers` processes.

    Each photo is analysed with every profile marked `ingest` (or with `profile` alone) and written with its
    faces in one transaction; files whose bytes the database holds already are skipped; a file that fails is
    listed in the report and the rest go on. A connection you pass should be in autocommit mode (connect()).
    deferred: read the metadata only and queue each photo for the workers (`python -m pgfaces.client work`).
    keep_outside: store each file's absolute path and a preview, not its bytes (README, "Originals outside the
    database"); the workers then read the file there.
    """
    import psycopg

    workers = workers or os.cpu_count() or 1
    files, missing = loader.collect([str(p) for p in paths])
    report = LoadReport(failed=list(missing))
    started = time.monotonic()
    with _connection(dsn_or_conn) as conn:
        if not is_client_side(conn):
            raise RuntimeError(
                "this database analyses photos itself (plpython3u; its photos_analyse trigger runs on every INSERT): "
                "load without --client-side (pgfaces.loader.load)")
        profile_dicts, lim = ([] if deferred else profiles(conn, profile)), limits(conn)
        # The database's trigger queues what is inserted under this setting (sql/idempotent/040-queue.sql).
        conn.execute("select set_config('pgfaces.defer', %s, false)", ("on" if deferred else "off",))
        todo = loader.skip_known(conn, files, report)
        bar = loader.Progress(len(todo), progress)
        for item in pool.analyse_all(todo, profile_dicts, lim, workers):
            if item.error is None:
                try:
                    # The preview is a reduced decode (a few ms): made here, where the row is written.
                    preview = originals.preview(item.data, lim) if keep_outside else None
                    faces = write_photo(conn, item.result, item.data, preview)
                except psycopg.Error as e:
                    item.error = f"{item.filename}: {e.diag.message_primary or e}"
                    if conn.broken:
                        raise
                except PgfacesError as e:  # the preview of a photo whose pixels a deferred load did not decode
                    item.error = str(with_subject(item.filename, e))
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


# --- references and search -------------------------------------------------------------------------------------


def embed_reference(image, profile: dict, lim: Limits = Limits()):
    """The embedding (float32 array) of the largest face in a reference image, computed here."""
    found = analysis.reference(_bytes(image), profile, lim)
    if found.notice():
        log.info("%s", found.notice())
    return found.face.embedding


def face_embedding(conn, image, profile: str | None = None, local: bool | None = None) -> str:
    """face_embedding(image, profile): the largest face's vector in pgvector's text form ('[0.1,...]'), for
    find_photos_near(%s::vector, ...) or any other driver."""
    if not _local(conn, local):
        return conn.execute("select face_embedding(%s, %s)::text", (_bytes(image), profile)).fetchone()[0]
    return vector_text(embed_reference(image, search_profile(conn, profile), limits(conn)))


def reference_embedder(conn, profile: str | None = None, local: bool | None = None):
    """A function image -> vector text for pgfaces.search.search(embed=...)."""
    local = _local(conn, local)
    return lambda image: face_embedding(conn, image, profile, local)


def search(conn, image=None, person: str | None = None, n: int = 10, max_distance: float | None = None,
           profile: str | None = None, filters=None, local: bool | None = None) -> list[dict]:
    """Photos of the person in `image` (bytes or a path; its largest face) or of a remembered `person`, best first.

    Rows are dicts: photo_id, filename, face_id, distance and the matched face's x, y, width, height, taken_at.
    `filters` is a pgfaces.search.Filters (since, until, near, camera).
    """
    from .. import search as s

    data = None if image is None else _bytes(image)
    embed = reference_embedder(conn, profile, local) if _local(conn, local) else None
    matches = s.search(conn, data, person, n, filters, profile, max_distance, embed=embed)
    return [dataclasses.asdict(m) for m in matches]


def remember_face(conn, name: str, image, profile: str | None = None, local: bool | None = None) -> int:
    """Stores a named reference face (several per person are allowed; the same picture once). Returns the person's id."""
    data = _bytes(image)
    if not _local(conn, local):
        return conn.execute("select remember_face(%s, %s, %s)", (name, data, profile)).fetchone()[0]
    p = search_profile(conn, profile)
    found = analysis.reference(data, p, limits(conn))
    return conn.execute("select pgfaces_remember(%s, %s, %s, %s::vector, %s)",
                        (name, p["name"], data, vector_text(found.face.embedding), found.face.thumbnail or None)
                        ).fetchone()[0]


# --- people ----------------------------------------------------------------------------------------------------


class _Database:
    """pgfaces.people.Database over a psycopg connection: $1, $2 become %s; progress goes to `progress`."""

    def __init__(self, conn, progress):
        self.conn, self.progress = conn, progress

    def rows(self, sql: str, args: list, types: list[str]) -> list[tuple]:
        import re

        return self.conn.execute(re.sub(r"\$\d+", "%s", sql), args).fetchall()


def cluster_faces(conn, profile: str | None = None, local: bool | None = None, progress=log.info) -> int:
    """cluster_faces(profile): groups the profile's faces into people, here or in the server. Returns how many
    faces changed person."""
    from .. import people

    if not _local(conn, local):
        return conn.execute("select cluster_faces(%s)", (profile,)).fetchone()[0]
    with conn.transaction():  # one transaction, as in the server: the run's lock and snapshot
        return people.cluster(_Database(conn, progress), search_profile(conn, profile))

