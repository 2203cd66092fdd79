"""Group a collection's faces into people from their nearest-neighbour lists: no database, numpy only.

Method: average linkage with cannot-links, on the k-nearest-neighbour graph, merged in rounds.

- Average linkage: two groups are one person when the mean distance between their faces is under `threshold`.
  One face near another person's faces (a blurred face, a look-alike, a false detection) cannot chain two people
  together as it does in single linkage and DBSCAN (eps 0.567 put 88% of the party benchmark's pairs in wrong
  groups): every pair of faces has a say.
- Rounds (reciprocal agglomerative clustering): every group finds its nearest group and each pair of groups that
  are each other's nearest merges, all at once. Average linkage is reducible, so this gives the same groups as
  the classic one-merge-at-a-time algorithm, in a few dozen vectorised passes over the edges instead of n merges;
  a group with no neighbour under the threshold never gets one later and leaves the work.
- Sparse pairs: only each face's k nearest (cut at `radius`) are known. A pair missing from both lists counts as
  `radius` (a lower bound where a list was cut by the radius: never more than the true distance), except between
  two faces inside a dense crowd (k neighbours nearer than `dense`, so a missing pair is only not among the nearest
  of a large person, not far): such pairs are left out of the mean. Without that rule a person with more than k
  faces falls apart into pieces of about k; without the `dense` limit crowds of strangers would look like people.
- Cannot-links: two faces of one photo are never one person. When two groups that should merge share one photo,
  the face of that photo that fits the merged group worse leaves it (once per face) and the rest merge: that
  face is the intruder (a blurred face of someone else that joined early). Groups sharing several photos are
  two people who appear together and stay apart.
- Decisions people made: pinned faces (face -> person) start in their person's group and never leave it; a
  person's pinned faces and the faces of a named person are anchored: two anchored groups of different people
  never merge. A face ejected from a person never joins a group that holds faces of that person.
- Previous results: the run starts from the previous groups (warm start), so a re-run on unchanged data merges
  nothing and returns the same labels, and new faces join or form groups. Groups keep the previous person id
  they overlap most (each id once); other groups of `min_faces` or more get new labels -2, -3, ... in order of
  their smallest face id; smaller groups are unassigned (-1).

The threshold is the profile's calibrated same-person distance (0.567 for `mtcnn`): a group is one person when
its faces are, on average, as near as the pairs the calibration called a match; `radius` is where the lists are
cut (a pair beyond it is not the same person); `dense` is the distance within which different people's faces
practically never fall, so a face with k neighbours that near sits in a crowd of one person.
"""

from __future__ import annotations

import numpy as np

THRESHOLD = 0.6
RADIUS = 0.7
DENSE = 0.4
MIN_KNOWN = 2  # a merge that leaves pairs out of the mean rests on at least this many listed pairs
UNASSIGNED = -1


def _arrays(pairs, count):
    """Two int64 arrays from `count` (a, b) pairs."""
    flat = np.fromiter((x for pair in pairs for x in pair), dtype=np.int64, count=2 * count)
    return flat[0::2], flat[1::2]


def _unique_rows(a, b, values, n):
    """Pairs (a, b) with a < b and a != b, summed per pair."""
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    keep = lo != hi
    key, inverse = np.unique(lo[keep] * n + hi[keep], return_inverse=True)
    return key // n, key % n, [np.bincount(inverse, v[keep], minlength=len(key)) for v in values]


class _Graph:
    """Faces 0..n-1, their undirected pairs (a < b, distance, both faces in a crowd) and a symmetric adjacency."""

    def __init__(self, n, i, j, d, k, radius, dense):
        keep = (i != j) & (i >= 0) & (j >= 0) & (d < radius)
        i, j, d = i[keep], j[keep], d[keep]
        key, first = np.unique(i * n + j, return_index=True)  # one entry per (face, neighbour)
        i, j, d = i[first], j[first], d[first]
        self.crowd = np.bincount(i[d < dense], minlength=n) >= k
        a, b = np.minimum(i, j), np.maximum(i, j)
        key, first = np.unique(a * n + b, return_index=True)
        self.a, self.b, self.d = key // n, key % n, d[first].astype(np.float64)
        self.both = (self.crowd[self.a] & self.crowd[self.b]).astype(np.float64)
        src, dst = np.concatenate([self.a, self.b]), np.concatenate([self.b, self.a])
        order = np.argsort(src, kind="stable")
        self.nbr, self.nd = dst[order], np.concatenate([self.d, self.d])[order]
        self.ptr = np.concatenate([[0], np.cumsum(np.bincount(src, minlength=n))])

    def around(self, faces):
        """(row owner position, neighbour, distance) for all neighbours of `faces`."""
        counts = self.ptr[faces + 1] - self.ptr[faces]
        owner = np.repeat(np.arange(len(faces)), counts)
        at = np.repeat(self.ptr[faces] - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
        return owner, self.nbr[at], self.nd[at]


def cluster(face_ids, photo_ids, edges_i, edges_j, edges_d, *, k: int, threshold: float = THRESHOLD,
            radius: float = RADIUS, dense: float = DENSE, pinned: dict | None = None, ejected=(),
            named=(), previous: dict | None = None, min_faces: int = 2) -> np.ndarray:
    """Person label per face of `face_ids`: a previous/pinned person id (>= 0), a new person (-2, -3, ...) or -1.

    edges_i/edges_j/edges_d: each face's neighbour list (face id, neighbour's face id, distance): its k nearest
    faces, cut at `radius`. pinned: face -> person (the user's); ejected: (face, person) pairs; named: person ids;
    previous: face -> person from the last run.
    """
    face_ids = np.asarray(face_ids, dtype=np.int64)
    order = np.argsort(face_ids, kind="stable")
    fid, n = face_ids[order], len(face_ids)
    if n == 0:
        return np.empty(0, dtype=np.int64)

    def index(ids):
        ids = np.asarray(ids, dtype=np.int64)
        at = np.minimum(np.searchsorted(fid, ids), n - 1)
        return np.where(fid[at] == ids, at, -1)

    photo = np.unique(np.asarray(photo_ids, dtype=np.int64)[order], return_inverse=True)[1]
    g = _Graph(n, index(edges_i), index(edges_j), np.asarray(edges_d, dtype=np.float64), k, radius, dense)
    pinned, previous, named = dict(pinned or {}), dict(previous or {}), set(named)
    ejected = {(int(f), int(p)) for f, p in ejected} - set(pinned.items())  # pinning again undoes an ejection

    # Starting groups: pinned faces, then previous people (minus ejected faces and photo duplicates).
    person = np.full(n, -1, dtype=np.int64)  # starting person id per face
    anchor = np.zeros(n, dtype=bool)
    ef, ep = _arrays(ejected, len(ejected))
    for source, anchored in ((previous, False), (pinned, True)):
        f, p = _arrays(source.items(), len(source))
        at = index(f)
        ok = at >= 0
        for m in np.flatnonzero(np.isin(f, ef)):
            ok[m] &= (int(f[m]), int(p[m])) not in ejected
        person[at[ok]] = p[ok]
        anchor[at[ok]] = anchored | np.isin(p[ok], list(named))
    start = np.where(person >= 0, np.unique(person, return_inverse=True)[1], n + np.arange(n))
    key = start * (photo.max() + 1) + photo  # two faces of one photo in a starting group: keep the anchored one
    rank = np.lexsort((~anchor, key))
    dup = np.zeros(n, dtype=bool)
    dup[rank[1:]] = (key[rank[1:]] == key[rank[:-1]]) & ~anchor[rank[1:]]
    person[dup], start[dup] = -1, n + np.flatnonzero(dup)
    lab = np.unique(start, return_inverse=True)[1]  # groups 0..m-1
    pin = np.full(n, -1, dtype=np.int64)
    pin[lab[anchor]] = person[anchor]

    # Ejections: a face never joins a group holding a (pinned or previous) face of the person it left.
    ef, (ep, ei) = index(ef), np.unique(ep, return_inverse=True)
    ef, ei = ef[ef >= 0], ei[ef >= 0]
    carriers = np.flatnonzero(np.isin(person, ep))
    carry = np.searchsorted(ep, person[carriers])
    width = len(ep) + 1

    size = np.bincount(lab, minlength=n).astype(np.float64)
    crowd = np.bincount(lab, g.crowd, minlength=n)
    ejected_once = np.zeros(n, dtype=bool)
    A, B, (S, N, NB) = _unique_rows(lab[g.a], lab[g.b], [g.d, np.ones(len(g.a)), g.both], n)
    blocked = np.zeros(len(A), dtype=bool)

    def fit(faces, groups):
        """Mean distance from each face to a group (missing pairs as in the linkage)."""
        owner, nb, dd = g.around(faces)
        hit = lab[nb] == groups[owner]
        s = np.bincount(owner[hit], dd[hit], minlength=len(faces))
        c = np.bincount(owner[hit], minlength=len(faces))
        both = np.bincount(owner[hit], (g.crowd[nb] & g.crowd[faces[owner]])[hit].astype(float), minlength=len(faces))
        unknown = np.where(g.crowd[faces], crowd[groups] - both, 0)
        known = np.maximum(size[groups] - unknown, 1)
        return (s + radius * (known - c)) / known

    while len(A):
        pairs = size[A] * size[B]
        unknown = crowd[A] * crowd[B] - NB
        far = pairs - N - unknown
        L = np.where(blocked | ((unknown > 0.5) & (N < MIN_KNOWN)), np.inf, (S + radius * far) / (N + far))
        near = L < threshold
        if not near.any():
            break
        active = np.zeros(n, dtype=bool)
        active[A[near]] = active[B[near]] = True
        keep = active[A] & active[B]  # a group with no near neighbour never gets one (reducibility)
        A, B, S, N, NB, blocked, L, near = A[keep], B[keep], S[keep], N[keep], NB[keep], blocked[keep], L[keep], near[keep]
        a, b, la = A[near], B[near], L[near]
        src, dst, ll = np.concatenate([a, b]), np.concatenate([b, a]), np.concatenate([la, la])
        o = np.lexsort((dst, ll, src))
        src, dst = src[o], dst[o]
        first = np.concatenate([[True], src[1:] != src[:-1]])
        best = np.full(n, -1)
        best[src[first]] = dst[first]
        mutual = (best[a] == b) & (best[b] == a)
        ma, mb = a[mutual], b[mutual]

        partner = np.full(n, -1)
        partner[ma], partner[mb] = mb, ma
        bad = np.zeros(n, dtype=bool)  # indexed by the smaller group of a pair
        bad[ma] = (pin[ma] >= 0) & (pin[mb] >= 0) & (pin[ma] != pin[mb])
        if len(ef):
            other = partner[lab[ef]]
            hit = (other >= 0) & np.isin(other * width + ei, lab[carriers] * width + carry)
            bad[np.minimum(lab[ef][hit], other[hit])] = True
        faces = np.flatnonzero(partner[lab] >= 0)
        key = np.minimum(lab[faces], partner[lab[faces]]) * (photo.max() + 1) + photo[faces]
        o = np.argsort(key, kind="stable")
        same = np.flatnonzero(key[o][1:] == key[o][:-1])
        f1, f2 = faces[o][same], faces[o][same + 1]
        group = np.minimum(lab[f1], lab[f2])
        shared = np.bincount(group, minlength=n)
        one = (shared[group] == 1) & ~bad[group]
        bad[group[~one]] = True
        f1, f2, group = f1[one], f2[one], group[one]
        if len(group):  # one shared photo: the face that fits the other group worse leaves
            worse = np.where(fit(f1, lab[f2]) > fit(f2, lab[f1]), f1, f2)
            ok = ~anchor[worse] & ~ejected_once[worse] & (size[lab[worse]] > 1)
            bad[group[~ok]] = True
            worse = worse[ok]
            if len(worse):
                ejected_once[worse] = True
                old = lab[worse]
                owner, nb, dd = g.around(worse)
                twice = np.isin(nb, worse) & (nb < worse[owner])  # a pair of two leaving faces: once
                owner, nb, dd = owner[~twice], nb[~twice], dd[~twice]
                newlab = np.flatnonzero(size == 0)[: len(worse)]
                np.subtract.at(size, old, 1)
                np.subtract.at(crowd, old, g.crowd[worse])
                rows = [lab[worse][owner], lab[nb], -dd, -np.ones(len(nb)), -(g.crowd[worse][owner] & g.crowd[nb]).astype(float)]
                lab[worse] = newlab
                size[newlab], crowd[newlab], pin[newlab] = 1, g.crowd[worse], -1
                A, B = np.concatenate([A, rows[0], lab[worse][owner]]), np.concatenate([B, rows[1], lab[nb]])
                S, N = np.concatenate([S, rows[2], dd]), np.concatenate([N, rows[3], -rows[3]])
                NB = np.concatenate([NB, rows[4], -rows[4]])
                blocked = np.concatenate([blocked, np.zeros(2 * len(nb), dtype=bool)])
        blocked |= bad[np.minimum(A, B)] & (partner[np.minimum(A, B)] == np.maximum(A, B))
        ma, mb = ma[~bad[ma]], mb[~bad[ma]]
        if not len(ma) and not bad.any():
            break
        new = np.arange(n)
        new[mb] = ma
        size[ma] += size[mb]
        crowd[ma] += crowd[mb]
        size[mb] = crowd[mb] = 0
        pin[ma] = np.maximum(pin[ma], pin[mb])
        lab = new[lab]
        A, B, (S, N, NB, blocked) = _unique_rows(new[A], new[B], [S, N, NB, blocked.astype(np.float64)], n)
        keep = N > 0.5
        A, B, S, N, NB, blocked = A[keep], B[keep], S[keep], N[keep], NB[keep], blocked[keep] > 0

    return _labels(lab, pin, person, anchor, size, min_faces, n)[np.argsort(order)]


def _labels(lab, pin, person, anchor, size, min_faces, n):
    """Groups to person labels: pinned groups keep their person, others take the previous id they overlap most."""
    out = np.full(n, UNASSIGNED, dtype=np.int64)
    group_pin = pin[lab]
    out[group_pin >= 0] = group_pin[group_pin >= 0]
    taken = set(np.unique(group_pin[group_pin >= 0]).tolist())
    free = (group_pin < 0) & (size[lab] >= min_faces)
    had = free & (person >= 0)
    pairs, counts = np.unique(np.stack([lab[had], person[had]]), axis=1, return_counts=True)
    named_groups = set()
    for c in np.lexsort((pairs[0], pairs[1], -counts)):
        g, p = int(pairs[0, c]), int(pairs[1, c])
        if g not in named_groups and p not in taken:
            named_groups.add(g)
            taken.add(p)
            out[lab == g] = p
    rest = free & ~np.isin(lab, list(named_groups))
    groups, first = np.unique(lab[rest], return_index=True)
    number = np.empty(len(groups), dtype=np.int64)
    number[np.argsort(first, kind="stable")] = np.arange(len(groups))  # in order of their smallest face id
    out[rest] = -2 - number[np.searchsorted(groups, lab[rest])]
    return out


def join_rule(distances, persons, sizes: dict, *, k: int, threshold: float = THRESHOLD, radius: float = RADIUS,
              exclude=()) -> int | None:
    """The person a new face joins at INSERT time, or None (left for the next cluster() run).

    distances/persons: the new face's neighbour list (its k nearest faces, cut at `radius`) and each neighbour's
    person (-1: none); sizes: person -> faces; exclude: people it may not join (already in its photo, ejected).
    The batch's linkage of the face with each person, from this list: the person's listed faces at their distance,
    the rest of the faces the list could hold (min(size, k), all of them when the radius cut the list) at
    `radius`. The face joins the nearest person when that mean is under the threshold.
    """
    distances, persons = np.asarray(distances, dtype=np.float64), np.asarray(persons, dtype=np.int64)
    near = (distances < radius) & (persons >= 0)
    people, at = np.unique(persons[near], return_inverse=True)
    if not len(people):
        return None
    listed = np.bincount(at, minlength=len(people))
    total = np.bincount(at, distances[near], minlength=len(people))
    size = np.array([sizes.get(int(p), 0) for p in people], dtype=np.float64)
    full = (distances < radius).sum() >= k  # else the radius cut the list: all the person's near faces are in it
    room = np.maximum(np.minimum(size, k) if full else size, listed)
    linkage = (total + radius * (room - listed)) / room
    linkage[np.isin(people, list(exclude))] = np.inf
    best = int(np.argmin(linkage))
    return int(people[best]) if linkage[best] < threshold else None
