"""The search benchmark's data: the ingest run's real faces copied over, a synthetic model fitted to them
(tests/bench/synthetic.py), and its vectors written as placeholder photos and faces with binary COPY (fast for a
million rows; triggers off, so nothing is analysed)."""

from __future__ import annotations

import hashlib
import json
import struct

from . import synthetic
from .measure import log


def copy_real(src_url: str, dst_url: str, profile: str) -> int:
    """The ingest run's photos and faces, copied with triggers off (no re-analysis)."""
    import psycopg

    with psycopg.connect(src_url) as src, psycopg.connect(dst_url) as dst:
        dst.execute("set session_replication_role = replica")
        with src.cursor().copy("copy (select id, filename, image, sha256, width, height from photos) to stdout") as out, \
                dst.cursor().copy("copy photos (id, filename, image, sha256, width, height) from stdin") as into:
            for block in out:
                into.write(block)
        with src.cursor().copy("copy (select photo_id, profile, x, y, width, height, score, embedding"
                               " from faces where profile = %s) to stdout", (profile,)) as out, \
                dst.cursor().copy("copy faces (photo_id, profile, x, y, width, height, score, embedding)"
                                  " from stdin") as into:
            for block in out:
                into.write(block)
        dst.execute("select setval(pg_get_serial_sequence('photos', 'id'), (select max(id) from photos))")
        dst.commit()
        return dst.execute("select count(*) from faces").fetchone()[0]


def real_embeddings(url: str, profile: str):
    """The real faces' embeddings and their photos' ids."""
    import numpy as np
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute("select embedding::text, photo_id from faces where profile = %s order by id",
                            (profile,)).fetchall()
    return np.array([json.loads(r[0]) for r in rows], dtype=np.float32), np.array([r[1] for r in rows])


def label_real_faces(url: str, profile: str, real, photo_ids):
    """Each real face's person, for fitting the people model, with no labels needed (any folder of photos will do):
    average-linkage clusters of faces nearer to each other on average than the profile's match threshold, never two
    faces of one photo; a face like no other gets -1. On the party photos this finds 34 people where the benchmark's
    labels know 16 plus unlabelled extras, and a same-person distance of 0.35 where the labelled faces give 0.39."""
    import numpy as np
    import psycopg
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import pdist, squareform

    with psycopg.connect(url) as conn:
        threshold = conn.execute("select match_threshold from profiles where name = %s", (profile,)).fetchone()[0]
    distances = squareform(pdist(real.astype(np.float64)))
    distances[photo_ids[:, None] == photo_ids[None, :]] = 1e6  # one person is not twice in a photo
    np.fill_diagonal(distances, 0)
    clusters = fcluster(linkage(squareform(distances, checks=False), method="average"), threshold, criterion="distance")
    _, labels, sizes = np.unique(clusters, return_inverse=True, return_counts=True)
    return np.where(sizes[labels] > 1, labels, -1)


def copy_synthetic(url: str, profile: str, vectors, first_photo: int, faces_per_photo: int = 8) -> None:
    """Placeholder photos and faces in PostgreSQL's binary COPY format (fast for a million rows)."""
    import numpy as np
    import psycopg

    n, dims = vectors.shape
    photo_ids = first_photo + np.arange(n) // faces_per_photo
    photos = np.unique(photo_ids)
    header = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
    trailer = struct.pack(">h", -1)
    prof = profile.encode()
    face_dtype = np.dtype([
        ("nfields", ">i2"),
        ("l_photo", ">i4"), ("photo", ">i8"),
        ("l_profile", ">i4"), ("profile", f"S{len(prof)}"),
        ("l_x", ">i4"), ("x", ">i4"), ("l_y", ">i4"), ("y", ">i4"),
        ("l_w", ">i4"), ("w", ">i4"), ("l_h", ">i4"), ("h", ">i4"),
        ("l_vec", ">i4"), ("dim", ">i2"), ("unused", ">i2"), ("vec", ">f4", (dims,)),
    ])
    rows = np.zeros(n, face_dtype)
    rows["nfields"] = 7
    rows["l_photo"], rows["photo"] = 8, photo_ids
    rows["l_profile"], rows["profile"] = len(prof), prof
    for f in ("x", "y", "w", "h"):
        rows[f"l_{f}"] = 4
    rows["w"], rows["h"] = 100, 100
    rows["l_vec"], rows["dim"], rows["vec"] = 4 + 4 * dims, dims, vectors
    sha = np.array([hashlib.sha256(b"synthetic %d" % p).hexdigest().encode() for p in photos])
    photo_dtype = np.dtype([("nfields", ">i2"), ("l_id", ">i4"), ("id", ">i8"), ("l_name", ">i4"), ("name", "S13"),
                            ("l_image", ">i4"), ("image", "S1"), ("l_sha", ">i4"), ("sha", "S64")])
    prow = np.zeros(len(photos), photo_dtype)
    prow["nfields"] = 4
    prow["l_id"], prow["id"] = 8, photos
    prow["l_name"], prow["name"] = 13, b"synthetic.jpg"
    prow["l_image"], prow["image"] = 1, b"x"
    prow["l_sha"], prow["sha"] = 64, sha
    with psycopg.connect(url) as conn:
        conn.execute("set session_replication_role = replica")
        with conn.cursor().copy("copy photos (id, filename, image, sha256) from stdin (format binary)") as copy:
            copy.write(header + prow.tobytes() + trailer)
        with conn.cursor().copy("copy faces (photo_id, profile, x, y, width, height, embedding)"
                                " from stdin (format binary)") as copy:
            step = 100_000
            copy.write(header)
            for i in range(0, n, step):
                copy.write(rows[i:i + step].tobytes())
            copy.write(trailer)
        conn.execute("select setval(pg_get_serial_sequence('photos', 'id'), (select max(id) from photos))")


def vector_literal(v) -> str:
    return "[" + ",".join(f"{x:.6g}" for x in v) + "]"


def synthetic_model(url: str, profile: str, model: str, real, photo_ids) -> tuple[object, dict]:
    """The synthetic model fitted to the real faces, and how its distances compare with theirs."""
    if model == "strangers":
        return synthetic.Strangers(real), {"model": model}
    labels = label_real_faces(url, profile, real, photo_ids)
    try:
        model_ = synthetic.People(real, labels)
    except ValueError as e:  # too few photos show anyone twice: the ingest figures still stand
        log(f"search: {e} among the ingested photos; drawing strangers instead")
        return synthetic.Strangers(real), {"model": "strangers", "why": str(e)}
    sample, sample_labels = model_.sample()
    fit = {"real": synthetic.distances_summary(real, labels), "synthetic": synthetic.distances_summary(sample, sample_labels)}
    log(f"search: people model fitted on {int((labels >= 0).sum())} faces of {len(set(labels) - {-1})} people; mean distance same person /"
        f" different people: real {fit['real']['same_person']:.3f} / {fit['real']['different_people']:.3f},"
        f" synthetic {fit['synthetic']['same_person']:.3f} / {fit['synthetic']['different_people']:.3f}")
    return model_, fit
