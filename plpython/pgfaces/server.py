"""The PL/Python entry points: each function in sql/idempotent whose language is plpython3u is one call into here.

`plpy` and `GD` are passed in rather than imported, so this module stays importable (and testable) outside the
server. This module does the database's side only (plpy I/O, prepared plans cached in GD); the work is
pgfaces.analysis's, the same code the client runs. A PgfacesError becomes a plpy.error with its SQLSTATE; the
plpgsql wrappers strip PL/Python's class prefix from every message (pgfaces_reraise, sql/idempotent/000).
"""

from __future__ import annotations

import functools

from . import analysis, interrupts, originals, people, profiles
from .errors import OriginalError, PgfacesError
from .records import FACE_COLUMNS, PHOTO_COLUMNS, FaceRow, Limits, vector_text

# Of the derived columns, the ones a value given in the INSERT overrides (README: "values given in the INSERT win").
USER_COLUMNS = ("taken_at", "latitude", "longitude", "camera", "exif")


def entry_point(fn):
    """Lets the server's cancel and timeouts stop the call (pgfaces.interrupts), and turns the errors a user can
    cause into plpy errors with their own SQLSTATE and message."""
    @functools.wraps(fn)
    def call(plpy, *args, **kwargs):
        interrupts.watch(plpy)
        try:
            return fn(plpy, *args, **kwargs)
        except PgfacesError as e:
            plpy.error(str(e), sqlstate=e.sqlstate)
    return call


def _plan(plpy, GD, sql: str, types: list[str]):
    plans = GD.setdefault("pgfaces_plans", {})
    plan = plans.get(sql)
    if plan is None:
        plan = plans[sql] = plpy.prepare(sql, types)
    return plan


def limits(plpy, GD) -> Limits:
    """The limits in force for this session (see pgfaces_limits() in sql/idempotent/001-profiles.sql)."""
    row = plpy.execute(_plan(plpy, GD, "select max_image_bytes, max_pixels, max_faces from pgfaces_limits()", []))[0]
    return Limits(max_bytes=row["max_image_bytes"], max_pixels=row["max_pixels"], max_faces=row["max_faces"])


def access(plpy, GD, lim: Limits) -> originals.Access:
    """What this session may read through a photo's uri (pgfaces_originals(), 006-originals.sql)."""
    row = plpy.execute(_plan(plpy, GD, originals.ACCESS_SQL, []))[0]
    return originals.access((row["dirs"], row["urls"], row["forbidden"]), lim)


def _original(plpy, GD, row: dict, lim: Limits) -> bytes:
    """A stored photo's bytes: its image, else the file its uri names (checked against its sha256)."""
    if row["image"] is not None:
        return bytes(row["image"])
    return originals.read(None, row["uri"], row["sha256"], access(plpy, GD, lim), fetch_urls=False)


def _ingest_profiles(plpy, GD) -> list[dict]:
    rows = plpy.execute(_plan(plpy, GD, "select * from profiles where ingest order by name", []))
    return [profiles.from_row(r) for r in rows]


def write_faces(plpy, GD, photo_id: int, faces: list[FaceRow]) -> None:
    """A photo's faces, listed with their nearest and joining a person where they clearly belong (pgfaces_faces_added)."""
    insert = _plan(
        plpy, GD,
        f"insert into faces (photo_id, {', '.join(FACE_COLUMNS)})"
        " values ($1, $2, $3, $4, $5, $6, $7, $8::vector, $9, $10, $11, $12)",
        ["bigint", "text", "int", "int", "int", "int", "real", "text", "bytea", "real", "real", "real"],
    )
    for face in faces:
        plpy.execute(insert, [photo_id, *face.values()])
    if faces:
        plpy.execute(_plan(plpy, GD, "select pgfaces_faces_added($1)", ["bigint"]), [photo_id])


# --- INSERT INTO photos --------------------------------------------------------------------------------------------


@entry_point
def analyse_photo(plpy, GD, new: dict, deferred: bool = False) -> dict:
    """The before-insert trigger's work: the row with its derived columns, without its image (the trigger keeps its
    own copy). Its faces wait in GD for the after trigger; a `deferred` photo has none yet (photos_queue queues it).
    A photo given by its uri is read from there (pgfaces.originals) and keeps a preview instead of its bytes; a URL
    is stored as it is, for the client workers (photos_queue queues it)."""
    lim = limits(plpy, GD)
    keep_outside = new.get("uri") is not None
    if keep_outside:
        location, acc = originals.parse(new["uri"]), access(plpy, GD, lim)
        new["uri"] = location.uri
        if location.is_url:  # stored as it is: the client workers fetch it (photos_queue queues it)
            originals.check(location, acc)
            new["sha256"] = new["preview"] = new["size_bytes"] = new["width"] = new["height"] = None
            return new
        data = originals.read(None, location.uri, None, acc, fetch_urls=False)
    else:
        data = bytes(new["image"])
    new["image"] = None
    new["size_bytes"] = len(data)
    new["sha256"] = digest = analysis.sha256(data)
    if plpy.execute(_plan(plpy, GD, "select 1 from photos where sha256 = $1", ["text"]), [digest]).nrows():
        # Stored already: the unique constraint decides, before any detection (an error, or nothing at all
        # under ON CONFLICT DO NOTHING).
        return new
    # Deferred: the metadata only (hash, header, EXIF), as cheap as the INSERT itself; the workers find the faces.
    profile_rows = [] if deferred else _ingest_profiles(plpy, GD)
    result = analysis.analyse_photo(data, new["filename"], profile_rows, lim, digest)
    new["preview"] = originals.preview(data, lim) if keep_outside else None
    derived = result.photo.values()
    for column in PHOTO_COLUMNS:
        if column not in USER_COLUMNS or new.get(column) is None:
            new[column] = derived[column]
    if not deferred:
        _pending(plpy, GD)[digest] = result.faces
    return new


def _pending(plpy, GD) -> dict:
    """Faces waiting for their photo's id, for this statement only (a failed statement leaves none behind)."""
    stamp = plpy.execute(_plan(plpy, GD, "select statement_timestamp()::text as t", []))[0]["t"]
    pending = GD.get("pgfaces_pending")
    if pending is None or pending["stamp"] != stamp:
        pending = GD["pgfaces_pending"] = {"stamp": stamp, "faces": {}}
    return pending["faces"]


def photos_after_insert(plpy, GD, TD):
    new = TD["new"]
    faces = _pending(plpy, GD).pop(new["sha256"], None)
    if faces:
        write_faces(plpy, GD, new["id"], faces)
    return None


def _replace_faces(plpy, GD, photo_id: int, filename: str, data: bytes, profile: dict, lim: Limits) -> int:
    """A stored photo analysed again with one profile: its faces of that profile replaced. Returns the face count."""
    result = analysis.analyse_photo(data, filename, [profile], lim)
    plpy.execute(_plan(plpy, GD, "delete from faces where photo_id = $1 and profile = $2", ["bigint", "text"]),
                 [photo_id, profile["name"]])
    write_faces(plpy, GD, photo_id, result.faces)
    return len(result.faces)


# --- the queue's in-server worker ----------------------------------------------------------------------------------


@entry_point
def run_job(plpy, GD, photo_id: int, profile_row) -> int:
    """One claimed job (pgfaces_run_job, 045-queue-server.sql checks the claim): the photo's faces for the profile,
    written as the INSERT trigger writes them. Returns the face count."""
    rows = plpy.execute(_plan(plpy, GD, "select filename, image, uri, sha256 from photos where id = $1", ["bigint"]),
                        [photo_id])
    if not rows.nrows():
        return 0  # deleted meanwhile (its job goes with it)
    row, lim = rows[0], limits(plpy, GD)
    return _replace_faces(plpy, GD, photo_id, row["filename"], _original(plpy, GD, row, lim),
                          profiles.from_row(profile_row), lim)


# --- functions -----------------------------------------------------------------------------------------------------


@entry_point
def detect_and_embed(plpy, GD, profile_row, image):
    result = analysis.analyse_photo(None if image is None else bytes(image), "image", [profiles.from_row(profile_row)],
                                    limits(plpy, GD))
    return [(r.face.x, r.face.y, r.face.width, r.face.height, r.face.score, vector_text(r.face.embedding))
            for r in result.faces]


@entry_point
def reference(plpy, GD, profile_row, image):
    """The reference's embedding and face thumbnail; a NOTICE when the picture has several faces."""
    found = analysis.reference(None if image is None else bytes(image), profiles.from_row(profile_row),
                               limits(plpy, GD))
    if found.notice():
        plpy.notice(found.notice())
    return [(vector_text(found.face.embedding), found.face.thumbnail or None)]


@entry_point
def reprocess(plpy, GD, profile_row, photos: bool = True) -> int:
    """Recomputes a profile's faces (unless `photos` is false: the queue does them) and people's references from the
    stored bytes (or the originals their uris name). Returns the face count. A photo whose original is missing,
    changed or a URL keeps its faces, and a WARNING names its file."""
    profile = profiles.from_row(profile_row)
    lim = limits(plpy, GD)
    name = profile["name"]
    total, kept = 0, 0
    cursor = plpy.cursor("select id, filename, image, uri, sha256 from photos order by id") if photos else None
    while cursor is not None and (rows := cursor.fetch(16)):
        for row in rows:
            try:
                data = _original(plpy, GD, row, lim)
            except OriginalError as e:
                kept += 1
                plpy.warning(f"{e} (photo {row['id']}); its faces for profile {name} are kept")
                continue
            try:
                total += _replace_faces(plpy, GD, row["id"], row["filename"], data, profile, lim)
            except PgfacesError as e:
                plpy.execute(_plan(plpy, GD, "delete from faces where photo_id = $1 and profile = $2",
                                   ["bigint", "text"]), [row["id"], name])
                plpy.warning(f"{e} (photo {row['id']}); no faces for profile {name}")

    # People's references: embed each stored reference image that this profile has not seen yet.
    refs = plpy.execute(_plan(
        plpy, GD,
        "select distinct on (person_id, md5(image)) person_id, image from person_references r"
        " where not exists (select 1 from person_references o where o.person_id = r.person_id"
        " and o.profile = $1 and md5(o.image) = md5(r.image))", ["text"]), [name])
    add = _plan(plpy, GD,
                "insert into person_references (person_id, profile, image, embedding, thumbnail)"
                " values ($1, $2, $3, $4::vector, $5)", ["bigint", "text", "bytea", "text", "bytea"])
    for ref in refs:
        try:
            found = analysis.reference(bytes(ref["image"]), profile, lim)
        except PgfacesError as e:
            plpy.warning(f"a reference of person {ref['person_id']}: {e}; not embedded for profile {name}")
            continue
        plpy.execute(add, [ref["person_id"], name, ref["image"], vector_text(found.face.embedding),
                           found.face.thumbnail or None])
    if kept:
        plpy.warning(f"reprocess: {kept} photo(s) not analysed again, their originals missing, changed or fetched "
                     "by client workers only (see the warnings above)")
    return total


# --- people ----------------------------------------------------------------------------------------------------


class _Database:
    """pgfaces.people.Database over plpy: prepared plans cached in GD, progress as NOTICEs."""

    def __init__(self, plpy, GD):
        self.plpy, self.GD = plpy, GD

    def rows(self, sql: str, args: list, types: list[str]) -> list[tuple]:
        return [tuple(r.values()) for r in self.plpy.execute(_plan(self.plpy, self.GD, sql, types), args)]

    def progress(self, message: str) -> None:
        self.plpy.notice(message)


@entry_point
def cluster_faces(plpy, GD, profile_row) -> int:
    return people.cluster(_Database(plpy, GD), profiles.from_row(profile_row))

