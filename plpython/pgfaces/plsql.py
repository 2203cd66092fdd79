"""The bodies of the PL/Python functions in sql/idempotent: each SQL function is one call into this module.

`plpy` and `GD` are passed in rather than imported so that this module stays importable (and testable)
outside the server. Prepared plans are cached in GD; models are cached by the pipeline's own modules.
Errors the user can act on become `plpy.error` with a message naming the file and the reason; anything
else propagates with its traceback.
"""

from __future__ import annotations

import hashlib
import json
import pathlib

from . import imaging, metadata, pipeline
from .errors import PgfacesError
from .model import Face, Limits

_PROFILE_COLUMNS = "name, detector, detector_params, embedder, embedder_params, dimensions, metric, match_threshold"


def _plan(plpy, GD, sql: str, types: list[str]):
    plans = GD.setdefault("pgfaces_plans", {})
    plan = plans.get(sql)
    if plan is None:
        plan = plans[sql] = plpy.prepare(sql, types)
    return plan


def load_profile(plpy, GD, name: str | None) -> dict:
    """The profile row as a dict; pgfaces_profile() raises the SQL error for an unknown name."""
    row = plpy.execute(_plan(plpy, GD, f"select {_PROFILE_COLUMNS} from pgfaces_profile($1)", ["text"]), [name])[0]
    return _profile_dict(row)


def _profile_dict(row) -> dict:
    profile = dict(row)
    for key in ("detector_params", "embedder_params"):
        profile[key] = json.loads(profile[key]) if isinstance(profile[key], str) else (profile[key] or {})
    return profile


def ingest_profiles(plpy, GD) -> list[dict]:
    rows = plpy.execute(_plan(plpy, GD, f"select {_PROFILE_COLUMNS} from profiles where ingest order by name", []))
    return [_profile_dict(r) for r in rows]


def limits(plpy, GD) -> Limits:
    """Limits from the settings pgfaces.max_image_bytes / max_pixels / max_faces, else the defaults."""
    row = plpy.execute(
        _plan(
            plpy,
            GD,
            "select current_setting('pgfaces.max_image_bytes', true) as max_bytes,"
            " current_setting('pgfaces.max_pixels', true) as max_pixels,"
            " current_setting('pgfaces.max_faces', true) as max_faces",
            [],
        )
    )[0]
    default = Limits()
    values = {}
    for key in ("max_bytes", "max_pixels", "max_faces"):
        text = row[key]
        if text in (None, ""):
            continue
        try:
            values[key] = int(text)
        except ValueError:
            plpy.error(f"setting pgfaces.{key.replace('max_bytes', 'max_image_bytes')} must be a whole number, not {text!r}")
    return Limits(**{**default.__dict__, **values})


def vector_text(embedding) -> str:
    return "[" + ",".join(repr(float(v)) for v in embedding) + "]"


def face_key(filename: str, face: Face) -> str:
    stem = pathlib.PurePath(filename).stem or "photo"
    return f"{stem}-{face.x}-{face.y}-{face.width}-{face.height}"


# Bad input; the SQL wrappers turn it into a data_exception with just this message (see 010-ingest.sql).
BAD_INPUT = "PF001"


def _fail(plpy, message: str):
    plpy.error(message, sqlstate=BAD_INPUT)


def insert_faces(plpy, GD, photo_id: int, filename: str, profile: str, faces: list[Face]) -> None:
    insert = _plan(
        plpy,
        GD,
        "insert into faces (photo_id, profile, face_key, x, y, width, height, score, embedding, thumbnail)"
        " values ($1, $2, $3, $4, $5, $6, $7, $8, $9::vector, $10)",
        ["bigint", "text", "text", "int", "int", "int", "int", "real", "text", "bytea"],
    )
    for face in faces:
        plpy.execute(
            insert,
            [photo_id, profile, face_key(filename, face), face.x, face.y, face.width, face.height,
             face.score, vector_text(face.embedding), face.thumbnail or None],
        )


# --- ingestion --------------------------------------------------------------------------------------------------


def analyse_photo(plpy, GD, new: dict) -> dict:
    """The photo row with its hash and metadata filled in; its faces wait in GD for photos_after_insert."""
    filename = new["filename"]
    data = bytes(new["image"])
    sha = hashlib.sha256(data).hexdigest()
    new["sha256"] = sha
    taken = plpy.execute(_plan(plpy, GD, "select id from photos where sha256 = $1", ["text"]), [sha])
    if taken.nrows():
        # Leave it to the unique constraint: an error, or nothing at all under ON CONFLICT DO NOTHING.
        return new

    lim = limits(plpy, GD)
    profiles = ingest_profiles(plpy, GD)
    found = []
    try:
        if profiles:
            meta = None
            for profile in profiles:
                analysis = pipeline.analyse(data, profile, lim, filename=filename)
                meta = meta or analysis.meta
                found.append((profile["name"], analysis.faces))
        else:
            imaging.read_header(data, lim)
            meta = metadata.read_metadata(data)
    except PgfacesError as e:
        message = str(e)
        _fail(plpy, message if message.startswith(f"{filename}:") else f"{filename}: {message}")

    for column, value in (
        ("taken_at", meta.taken_at.isoformat() if meta.taken_at else None),
        ("latitude", meta.latitude),
        ("longitude", meta.longitude),
        ("camera", meta.camera),
        ("exif", json.dumps(meta.exif) if meta.exif else None),
    ):
        if new.get(column) is None:
            new[column] = value
    new["width"], new["height"] = meta.width, meta.height

    pending = _pending(plpy, GD)
    pending[sha] = found
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
    found = _pending(plpy, GD).pop(new["sha256"], None)
    if not found:
        return None
    for profile, faces in found:
        insert_faces(plpy, GD, new["id"], new["filename"], profile, faces)
    return None


# --- functions ----------------------------------------------------------------------------------------------------


def _profile_and_bytes(plpy, GD, image, profile_name, what: str) -> tuple[dict, bytes]:
    if image is None:
        _fail(plpy, f"{what} is NULL")
    return load_profile(plpy, GD, profile_name), bytes(image)


def detect_and_embed(plpy, GD, image, profile_name):
    profile, data = _profile_and_bytes(plpy, GD, image, profile_name, "image")
    try:
        faces = pipeline.detect_and_embed(data, profile, limits(plpy, GD))
    except PgfacesError as e:
        _fail(plpy, f"image: {e}")
    return [(f.x, f.y, f.width, f.height, f.score, vector_text(f.embedding)) for f in faces]


def face_embedding(plpy, GD, image, profile_name):
    profile, data = _profile_and_bytes(plpy, GD, image, profile_name, "reference image")
    try:
        largest, found = pipeline.reference_face(data, profile, limits(plpy, GD))
    except PgfacesError as e:
        _fail(plpy, f"reference image: {e}")
    if largest is None:
        _fail(plpy, "no face found in the reference image")
    if found > 1:
        plpy.notice(
            f"{found} faces found in the reference image; using the largest "
            f"({largest.width}x{largest.height} at {largest.x},{largest.y})"
        )
    return vector_text(largest.embedding)


def reprocess(plpy, GD, profile_name) -> int:
    """Recomputes a profile's faces (and people's references) from the stored bytes. Returns the face count."""
    if profile_name is None:
        _fail(plpy, "reprocess needs a profile name")
    profile = load_profile(plpy, GD, profile_name)
    lim = limits(plpy, GD)
    name = profile["name"]
    delete = _plan(plpy, GD, "delete from faces where photo_id = $1 and profile = $2", ["bigint", "text"])
    total = 0
    cursor = plpy.cursor("select id, filename, image from photos order by id")
    while True:
        rows = cursor.fetch(16)
        if not rows:
            break
        for row in rows:
            plpy.execute(delete, [row["id"], name])
            try:
                faces = pipeline.detect_and_embed(bytes(row["image"]), profile, lim)
            except PgfacesError as e:
                plpy.warning(f"{row['filename']} (photo {row['id']}): {e}; no faces for profile {name}")
                continue
            insert_faces(plpy, GD, row["id"], row["filename"], name, faces)
            total += len(faces)

    # People's references: embed each stored reference image that this profile has not seen yet.
    refs = plpy.execute(
        _plan(
            plpy,
            GD,
            "select distinct on (person_id, md5(image)) person_id, image from person_references r"
            " where not exists (select 1 from person_references o where o.person_id = r.person_id"
            " and o.profile = $1 and md5(o.image) = md5(r.image))",
            ["text"],
        ),
        [name],
    )
    add = _plan(
        plpy, GD,
        "insert into person_references (person_id, profile, image, embedding) values ($1, $2, $3, $4::vector)",
        ["bigint", "text", "bytea", "text"],
    )
    for ref in refs:
        faces = pipeline.detect_and_embed(bytes(ref["image"]), profile, lim)
        if faces:
            plpy.execute(add, [ref["person_id"], name, ref["image"], vector_text(max(faces, key=lambda f: f.area).embedding)])
    return total
