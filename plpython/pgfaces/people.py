"""cluster_faces(): group a profile's faces into people (pgfaces.clustering) from the nearest-face lists the database
keeps (face_neighbours, made when each face is written), and write the groups back. The same run in the server
(PL/Python, pgfaces.server) and in a client (client-side mode, `python -m pgfaces.client cluster`): each passes a
Database that runs SQL its own way.

The SQL is in sql/idempotent/055-people-clustering.sql, which also keeps the rules when writing (user decisions and
named people are never changed, two faces of one photo are never one person).
"""

from __future__ import annotations

import time
from typing import Callable, Protocol

import numpy as np

from . import clustering

# Faces whose missing or outdated lists are made per call (one HNSW query each): a progress line each.
LIST_BATCH = 2_000


class Database(Protocol):
    def rows(self, sql: str, args: list, types: list[str]) -> list[tuple]:
        """The rows of `sql`, whose parameters are $1, $2, ... in that order, of the given SQL types."""

    def progress(self, message: str) -> None:
        """Tells the user how far the run is."""


# Runs of the grouping from its own result, at most, until the result no longer changes (see settled).
SETTLE_ROUNDS = 10
_NEW = 1 << 60  # new groups stand as these ids between rounds


def settled(run: Callable[[dict], np.ndarray], ids: np.ndarray, previous: dict) -> np.ndarray:
    """The grouping run again from its own result until it returns what it was given: a grouping that a re-run on
    the same data leaves as it is. (Starting from the previous groups changes the path: a face that left a group
    to let two others merge, say, may join another group on the next run.)"""
    for _ in range(SETTLE_ROUNDS):
        labels = run(previous)
        result = {int(i): (int(label) if label >= 0 else _NEW - int(label))
                  for i, label in zip(ids, labels) if label != clustering.UNASSIGNED}
        if result == previous:
            break
        previous = result
    return np.where(labels >= _NEW, _NEW - labels, labels)  # new groups: -2, -3, ... again


def cluster(db: Database, profile: dict, now: Callable[[], float] = time.monotonic) -> int:
    """Groups the profile's faces into people; returns how many faces changed person."""
    name = profile["name"]
    started = now()

    def say(message: str) -> None:
        db.progress(f"cluster_faces({name}): {message}, {now() - started:.0f} s")

    db.rows("select pgfaces_cluster_begin($1)", [name], ["text"])
    listed = 0
    while made := db.rows("select pgfaces_refresh_neighbours($1, $2)", [name, LIST_BATCH], ["text", "int"])[0][0]:
        listed += made
        say(f"listed the nearest faces of {listed} faces that had no list")
    if db.rows("select pgfaces_cluster_unchanged($1)", [name], ["text"])[0][0]:
        say("nothing changed since the last run")
        return 0
    faces = db.rows("select face_id, photo_id, person_id, user_placed, named, neighbours, distances"
                    " from pgfaces_cluster_faces($1)", [name], ["text"])
    if not faces:
        say("no faces")
        return 0
    say(f"read {len(faces)} faces")
    # Faces the user kept out of every person take no part; nor do their edges.
    apart = {f[0] for f in faces if f[3] and f[2] is None}
    faces = [f for f in faces if f[0] not in apart]
    ids = np.array([f[0] for f in faces], dtype=np.int64)
    lengths = np.array([len(f[5]) for f in faces], dtype=np.int64)
    edges_i = np.repeat(ids, lengths)
    edges_j = np.fromiter((j for f in faces for j in f[5]), dtype=np.int64, count=int(lengths.sum()))
    edges_d = np.fromiter((d for f in faces for d in f[6]), dtype=np.float64, count=int(lengths.sum()))
    known = np.isin(edges_j, ids)  # a neighbour deleted since, or kept apart
    labels = settled(
        lambda previous: clustering.cluster(
            ids, np.array([f[1] for f in faces], dtype=np.int64), edges_i[known], edges_j[known], edges_d[known],
            k=clustering.NEIGHBOURS, threshold=float(profile["cluster_threshold"]),
            pinned={f[0]: f[2] for f in faces if f[3]}, named={f[2] for f in faces if f[4]}, previous=previous),
        ids, {f[0]: f[2] for f in faces if f[2] is not None and not f[3]})
    people = len(set(labels[labels != clustering.UNASSIGNED].tolist()))
    say(f"{people} people found, writing")
    changed = db.rows("select pgfaces_cluster_apply($1, $2, $3)", [name, ids.tolist(), labels.tolist()],
                      ["text", "bigint[]", "bigint[]"])[0][0]
    say(f"{changed} faces changed person")
    return changed
