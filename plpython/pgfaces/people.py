"""cluster_faces(): group a profile's faces into people (pgfaces.clustering) from the nearest-face lists the database
keeps (face_neighbours, made when each face is written), and write the groups back. The same run in the server
(PL/Python, pgfaces.server) and in a client (client-side mode, `python -m pgfaces.client cluster`): each passes a
Database that runs SQL its own way.

The SQL is in sql/idempotent/055-people-clustering.sql, which also keeps the rules when writing (user decisions and
named people are never changed, two faces of one photo are never one person).
"""

from __future__ import annotations

import dataclasses
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


READ_BATCH = 50_000  # faces per read: a million faces' rows never sit in memory as Python objects at once


@dataclasses.dataclass
class State:
    """What a run starts from, as arrays: the faces that take part (not those the user kept apart), their photos and
    lists (directed edges), and who is whose."""

    ids: np.ndarray
    photos: np.ndarray
    groupable: np.ndarray
    edges_i: np.ndarray
    edges_j: np.ndarray
    edges_d: np.ndarray
    pinned: dict
    named: set
    previous: dict


def _read(db: Database, name: str, say) -> State:
    ids, photos, groupable, edges_i, edges_j, edges_d = [], [], [], [], [], []
    pinned, named, previous = {}, set(), {}
    after = 0
    while rows := db.rows("select face_id, photo_id, person_id, user_placed, named, neighbours, distances, groupable"
                          " from pgfaces_cluster_faces($1, $2, $3)", [name, after, READ_BATCH],
                          ["text", "bigint", "int"]):
        after = rows[-1][0]
        rows = [r for r in rows if not (r[3] and r[2] is None)]  # kept apart by the user: no part, no edges
        batch = np.array([r[0] for r in rows], dtype=np.int64)
        lengths = np.array([len(r[5]) for r in rows], dtype=np.int64)
        count = int(lengths.sum())
        ids.append(batch)
        photos.append(np.array([r[1] for r in rows], dtype=np.int64))
        groupable.append(np.array([r[7] for r in rows], dtype=bool))
        edges_i.append(np.repeat(batch, lengths))
        edges_j.append(np.fromiter((j for r in rows for j in r[5]), dtype=np.int64, count=count))
        edges_d.append(np.fromiter((d for r in rows for d in r[6]), dtype=np.float64, count=count))
        for face, _, person, user, is_named, _, _, _ in rows:
            if user:
                pinned[face] = person
            elif person is not None:
                previous[face] = person
            if is_named:
                named.add(person)
        say(f"read {sum(len(b) for b in ids)} faces")

    def joined(parts, dtype):
        return np.concatenate(parts) if parts else np.empty(0, dtype)

    return State(joined(ids, np.int64), joined(photos, np.int64), joined(groupable, bool), joined(edges_i, np.int64),
                 joined(edges_j, np.int64), joined(edges_d, np.float64), pinned, named, previous)


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
    state = _read(db, name, say)
    if not len(state.ids):
        say("no faces")
        return 0
    ids, edges_i, edges_j, edges_d = state.ids, state.edges_i, state.edges_j, state.edges_d
    known = np.isin(edges_j, ids)  # a neighbour deleted since, or kept apart
    labels = settled(
        lambda previous: clustering.cluster(
            ids, state.photos, edges_i[known], edges_j[known], edges_d[known],
            k=clustering.NEIGHBOURS, threshold=float(profile["cluster_threshold"]),
            pinned=state.pinned, named=state.named, previous=previous, groupable=state.groupable,
            pair_threshold=None if profile.get("match_threshold") is None else float(profile["match_threshold"])),
        ids, state.previous)
    people = len(set(labels[labels != clustering.UNASSIGNED].tolist()))
    say(f"{people} people found, writing")
    changed = db.rows("select pgfaces_cluster_apply($1, $2, $3)", [name, ids.tolist(), labels.tolist()],
                      ["text", "bigint[]", "bigint[]"])[0][0]
    say(f"{changed} faces changed person")
    return changed
