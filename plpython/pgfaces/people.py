"""cluster_faces(): read a profile's faces and their nearest neighbours, group them (pgfaces.clustering), write
the groups back. The same run in the server (PL/Python, pgfaces.server) and in a client (client-side mode,
`python -m pgfaces.client cluster`): each passes a Database that runs SQL its own way.

The SQL is here and in sql/idempotent/055-people-clustering.sql (which keeps the rules when writing: user
decisions and named people are never changed).
"""

from __future__ import annotations

import time
from typing import Callable, Protocol

import numpy as np

from . import clustering

# Each face's nearest neighbours, read from the profile's HNSW index (cut at the radius): enough for average
# linkage on a sparse graph (pgfaces.clustering), and for a person's faces to reach each other.
NEIGHBOURS = 16
# Faces per neighbour query: a progress line each, and PostgreSQL may split each query over parallel workers.
BATCH = 20_000


class Database(Protocol):
    def rows(self, sql: str, args: list, types: list[str]) -> list[tuple]:
        """The rows of `sql`, whose parameters are $1, $2, ... in that order, of the given SQL types."""

    def progress(self, message: str) -> None:
        """Tells the user how far the run is."""


def neighbours_sql(dimensions: int, operator: str) -> str:
    """Each face of an id range with its nearest faces of the profile (the HNSW index's half-precision order)."""
    expr = f"embedding::halfvec({dimensions})"
    return f"""
        select f.id, n.ids, n.distances
        from faces f
        cross join lateral (
            select array_agg(g.id order by g.distance) as ids, array_agg(g.distance order by g.distance) as distances
            from (select g.id, (g.{expr} {operator} f.{expr})::float8 as distance
                  from faces g where g.profile = $1
                  order by g.{expr} {operator} f.{expr}
                  limit $2) g
            where g.id <> f.id and g.distance <= $3) n
        where f.profile = $1 and f.id >= $4 and f.id < $5
        order by f.id"""


def cluster(db: Database, profile: dict, now: Callable[[], float] = time.monotonic) -> int:
    """Groups the profile's faces into people; returns how many faces changed person."""
    name = profile["name"]
    threshold = float(profile.get("match_threshold") or clustering.THRESHOLD)
    started = now()
    db.rows("select pgfaces_cluster_begin($1)", [name], ["text"])
    faces = db.rows("select face_id, photo_id, person_id, user_placed, named from pgfaces_cluster_faces($1)",
                    [name], ["text"])
    if not faces:
        db.progress(f"cluster_faces({name}): no faces")
        return 0
    ids = np.array([f[0] for f in faces], dtype=np.int64)
    photos = np.array([f[1] for f in faces], dtype=np.int64)
    pinned = {f[0]: f[2] for f in faces if f[3] and f[2] is not None}
    kept_apart = {f[0] for f in faces if f[3] and f[2] is None}
    previous = {f[0]: f[2] for f in faces if f[2] is not None and not f[3]}
    named = {f[2] for f in faces if f[4]}

    edges_i, edges_j, edges_d = [], [], []
    sql = neighbours_sql(int(profile["dimensions"]), "<=>" if profile.get("metric") == "cosine" else "<->")
    radius = max(clustering.RADIUS, threshold)
    bounds = list(range(int(ids[0]), int(ids[-1]) + 1, BATCH)) + [int(ids[-1]) + 1]
    for lo, hi in zip(bounds, bounds[1:]):
        for face, neighbour_ids, distances in db.rows(sql, [name, NEIGHBOURS + 1, radius, lo, hi],
                                                     ["text", "int", "float8", "bigint", "bigint"]):
            if face in kept_apart or not neighbour_ids:
                continue
            edges_i.extend([face] * len(neighbour_ids))
            edges_j.extend(neighbour_ids)
            edges_d.extend(distances)
        done = int(np.searchsorted(ids, hi))
        db.progress(f"cluster_faces({name}): neighbours of {done}/{len(ids)} faces, {now() - started:.0f} s")

    keep = np.array([i not in kept_apart for i in ids.tolist()])
    edges_j = np.array(edges_j, dtype=np.int64)
    apart = np.isin(edges_j, list(kept_apart)) if kept_apart else np.zeros(len(edges_j), bool)
    labels = clustering.cluster(
        ids[keep], photos[keep], np.array(edges_i, dtype=np.int64)[~apart], edges_j[~apart],
        np.array(edges_d, dtype=np.float64)[~apart], k=NEIGHBOURS, threshold=threshold, radius=radius,
        pinned=pinned, named=named, previous=previous)
    db.progress(f"cluster_faces({name}): {len(set(labels[labels != clustering.UNASSIGNED].tolist()))} people,"
                f" writing, {now() - started:.0f} s")
    changed = db.rows("select pgfaces_cluster_apply($1, $2, $3)", [name, ids[keep].tolist(), labels.tolist()],
                      ["text", "bigint[]", "bigint[]"])[0][0]
    db.progress(f"cluster_faces({name}): {changed} faces changed person, {now() - started:.0f} s")
    return changed
