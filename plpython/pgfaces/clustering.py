"""Group a collection's faces into people from their nearest-neighbour lists (numpy only, no database).

Average linkage with cannot-links on the k-nearest-neighbour graph, merged in rounds. Average linkage: two groups
are one person when the mean distance between their faces is under `threshold`; every pair has a say, so one
blurred face, look-alike or false detection cannot chain two people together as in single linkage or DBSCAN.
Rounds (reciprocal agglomerative clustering): all pairs of groups that are each other's nearest merge at once;
average linkage is reducible, so this gives the one-merge-at-a-time result in vectorised passes, and a group with
no neighbour under the threshold never gets one and leaves the work. Only each face's k nearest, cut at `radius`,
are known: a missing pair counts as `radius` (a lower bound where the radius cut the list), except between two
faces in a crowd (k faces nearer than `dense`), where it is only not among the k nearest of a big person: it
is left out, and such a merge must rest on MIN_KNOWN listed pairs (else a person of more than k faces falls apart).
Cannot-links: two faces of one photo are never one person. When two groups that should merge share one photo,
the face of it that fits the other group worse leaves (once per face: an intruder that joined early) and the rest
merge; groups sharing several photos are people who appear together. Pinned faces start in their person's group
and never leave; pinned faces and the faces of named people anchor their group, and groups anchored to different
people never merge. A face ejected from a person never joins a group holding a pinned or previous face of it.
Warm start from the previous groups: a re-run on unchanged data merges nothing and returns the same labels. A
group keeps the previous person id it overlaps most (each id once); other groups of `min_faces` or more are new
people -2, -3, ... in order of their smallest face id; the rest are unassigned (-1).

Parameters (dlib 128-d, L2). `threshold` 0.6: the boundary the dlib ResNet was trained to (loss_metric 0.6 +-
0.04). The profile's 0.567 is the best cut for one pair when 20 pairs in 21 are two people, as in a search; a merge
compares mutually nearest groups, where one person is far likelier (the threshold picked on half of the party
benchmark's people: median 0.61; 0.6 scored as well on the other half). `radius` 0.7: beyond it pairs are not one
person (99% of same-person pairs of the calibration photos are under 0.65). `dense` 0.4: different people
practically never come that near (0.04% of 100k synthetic faces have a look-alike under 0.4, 8% under 0.45),
while a big person's 20 nearest are within 0.33-0.37.
"""

from __future__ import annotations

import numpy as np

THRESHOLD = 0.6
NEIGHBOURS = 20  # k: how many nearest faces each face's list holds (sql/idempotent/055-people-clustering.sql)
RADIUS = 0.7
DENSE = 0.4
MIN_KNOWN = 2  # a merge that leaves pairs out of the mean rests on at least this many listed pairs
UNASSIGNED = -1
# A face left out of the groups (below the profile's quality bar, or alone) joins a person afterwards when its
# JOIN_NEAREST nearest faces that are in a person hold JOIN_VOTES or more of one person, the nearest of them among
# them and nearer than JOIN_DISTANCE: the profile's same-person distance for one pair (0.567), less a margin,
# because such a face's distances say less than a good face's (README, "Which faces are grouped").
JOIN_NEAREST = 5
JOIN_VOTES = 3
JOIN_DISTANCE = 0.55


def _arrays(pairs, count):
    flat = np.fromiter((x for pair in pairs for x in pair), dtype=np.int64, count=2 * count)
    return flat[0::2], flat[1::2]  # two int64 arrays from `count` (a, b) pairs


def _unique_rows(a, b, values, n):
    """Pairs (a, b) with a < b and a != b, summed per pair."""
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    keep = lo != hi
    key, inverse = np.unique(lo[keep] * n + hi[keep], return_inverse=True)
    return key // n, key % n, [np.bincount(inverse, v[keep], minlength=len(key)) for v in values]


def _add_rows(A, B, cols, ta, tb, parts, n):
    """Rows (A, B sorted by key) plus rows (ta, tb): summed where the pair exists, inserted in order where not."""
    key, new = A * n + B, ta * n + tb
    at = np.searchsorted(key, new)
    found = at < len(key)
    found[found] = key[at[found]] == new[found]
    for c, x in zip(cols, parts):
        c[at[found]] += x[found]
    A, B = np.insert(A, at[~found], ta[~found]), np.insert(B, at[~found], tb[~found])
    cols = [np.insert(c, at[~found], x[~found]) for c, x in zip(cols, parts)]
    keep = cols[1] > 0.5  # N: pairs that still exist
    return A[keep], B[keep], [c[keep] for c in cols]


class _Graph:
    """Faces 0..n-1, their undirected pairs (a < b, distance, both faces in a crowd) and a symmetric adjacency."""

    def __init__(self, n, i, j, d, k, radius, dense):
        keep = (i != j) & (i >= 0) & (j >= 0) & (d < radius)
        i, j, d = i[keep], j[keep], d[keep]
        a, b = np.minimum(i, j), np.maximum(i, j)
        key, first = np.unique(a * n + b, return_index=True)
        self.a, self.b, self.d = key // n, key % n, d[first].astype(np.float64)
        near = self.d < dense  # a crowd: k faces that near, listed by the face or listing it (lists made at
        self.crowd = np.bincount(np.concatenate([self.a[near], self.b[near]]), minlength=n) >= k  # INSERT time)
        self.both = (self.crowd[self.a] & self.crowd[self.b]).astype(np.float64)
        src, dst = np.concatenate([self.a, self.b]), np.concatenate([self.b, self.a])
        order = np.argsort(src, kind="stable")
        self.nbr, self.nd = dst[order], np.concatenate([self.d, self.d])[order]
        self.ptr = np.concatenate([[0], np.cumsum(np.bincount(src, minlength=n))])

    def around(self, faces):
        """(row owner position, neighbour, distance) for all neighbours of `faces`."""
        owner, at = _spans(self.ptr, faces)
        return owner, self.nbr[at], self.nd[at]


def _spans(ptr, items):
    """For CSR offsets `ptr`: (position in `items`, index) of every entry of every item."""
    counts = ptr[items + 1] - ptr[items]
    owner = np.repeat(np.arange(len(items)), counts)
    return owner, np.repeat(ptr[items] - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())


def cluster(face_ids, photo_ids, edges_i, edges_j, edges_d, *, k: int, threshold: float = THRESHOLD,
            radius: float = RADIUS, dense: float = DENSE, pinned: dict | None = None, ejected=(),
            named=(), previous: dict | None = None, min_faces: int = 2, groupable=None,
            join_distance: float = JOIN_DISTANCE, join_votes: int = JOIN_VOTES,
            pair_threshold: float | None = None) -> np.ndarray:
    """Person label per face of `face_ids`: a previous/pinned person id (>= 0), a new person (-2, -3, ...) or -1.

    edges_i/edges_j/edges_d: each face's neighbour list (face id, neighbour's face id, distance): its k nearest
    faces, cut at `radius`. pinned: face -> person (the user's); ejected: (face, person) pairs; named: person ids;
    previous: face -> person from the last run. groupable: per face of `face_ids`, whether it is good enough to form
    a group (None: all); the others take part only by joining a person afterwards (join_left_out). pair_threshold:
    a new person of two faces must have them nearer than this (the profile's same-person distance for one pair,
    which a single pair is: an average of one says no more than the pair itself).
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
    good = np.ones(n, dtype=bool) if groupable is None else np.asarray(groupable, dtype=bool)[order]
    li, lj, ld = index(edges_i), index(edges_j), np.asarray(edges_d, dtype=np.float64)
    among = (li >= 0) & (lj >= 0)
    among[among] = good[li[among]] & good[lj[among]]  # groups form from good faces alone
    g = _Graph(n, li[among], lj[among], ld[among], k, radius, dense)
    pinned, previous, named = dict(pinned or {}), dict(previous or {}), set(named)
    ejected = {(int(f), int(p)) for f, p in ejected} - set(pinned.items())  # pinning again undoes an ejection

    # Starting groups: pinned faces, then previous people (minus ejected faces and photo duplicates).
    person, anchor = np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=bool)  # starting person per face
    ef, ep = _arrays(ejected, len(ejected))
    for source, anchored in ((previous, False), (pinned, True)):
        f, p = _arrays(source.items(), len(source))
        at, ok = index(f), index(f) >= 0
        if not anchored:  # a face below the bar starts in no group: it joins again below, or not
            ok[ok] &= good[at[ok]]
        for m in np.flatnonzero(np.isin(f, ef)):
            ok[m] &= (int(f[m]), int(p[m])) not in ejected
        person[at[ok]] = p[ok]
        anchor[at[ok]] = anchored | np.isin(p[ok], list(named))
    start = np.where(person >= 0, np.unique(person, return_inverse=True)[1], n + np.arange(n))
    key = start * (photo.max() + 1) + photo  # two faces of one photo in a starting group: keep the anchored one
    rank, dup = np.lexsort((~anchor, key)), np.zeros(n, dtype=bool)
    dup[rank[1:]] = (key[rank[1:]] == key[rank[:-1]]) & ~anchor[rank[1:]]
    person[dup], start[dup] = -1, n + np.flatnonzero(dup)
    lab = np.unique(start, return_inverse=True)[1]  # groups 0..m-1
    pin = np.full(n, -1, dtype=np.int64)
    pin[lab[anchor]] = person[anchor]

    # Ejections: a face never joins a group holding a (pinned or previous) face of the person it left.
    ef, (ep, ei) = index(ef), np.unique(ep, return_inverse=True)
    ef, ei, width = ef[ef >= 0], ei[ef >= 0], len(ep) + 1
    carriers = np.flatnonzero(np.isin(person, ep))
    carry = np.searchsorted(ep, person[carriers])

    size, crowd = np.bincount(lab, minlength=n).astype(np.float64), np.bincount(lab, g.crowd, minlength=n)
    ejected_once = np.zeros(n, dtype=bool)
    A, B, (S, N, NB) = _unique_rows(lab[g.a], lab[g.b], [g.d, np.ones(len(g.a)), g.both], n)
    blocked = np.zeros(len(A))
    spare = list(np.flatnonzero(size == 0)[::-1])  # unused group numbers, for faces that leave a group
    by_photo = np.argsort(photo, kind="stable")  # photo -> its faces (CSR), for the cannot-links
    photo_ptr = np.concatenate([[0], np.cumsum(np.bincount(photo))])
    # Per round only the groups still merging, their rows and their faces are touched; scratch arrays are reset.
    low, best, to, active = np.full(n, np.inf), np.full(n, n), np.full(n, -1), np.zeros(n, dtype=bool)
    faces = np.arange(n)  # the faces of active groups

    def fit(who, groups):
        """Mean distance from each face to a group (missing pairs as in the linkage)."""
        owner, nb, dd = g.around(who)
        hit, m = lab[nb] == groups[owner], len(who)
        s, c = np.bincount(owner[hit], dd[hit], minlength=m), np.bincount(owner[hit], minlength=m)
        both = np.bincount(owner[hit], (g.crowd[nb] & g.crowd[who[owner]])[hit].astype(float), minlength=m)
        known = np.maximum(size[groups] - np.where(g.crowd[who], crowd[groups] - both, 0), 1)
        return (s + radius * (known - c)) / known

    while len(A):
        unknown = crowd[A] * crowd[B] - NB  # pairs missing between two crowded faces
        far = size[A] * size[B] - N - unknown
        L = np.where((blocked > 0) | ((unknown > 0.5) & (N < MIN_KNOWN)), np.inf, (S + radius * far) / (N + far))
        near = L < threshold
        if not near.any():
            break
        active[A[near]] = active[B[near]] = True
        keep = active[A] & active[B]  # a group with no near neighbour never gets one (reducibility)
        A, B, S, N, NB, blocked, L, near = (x[keep] for x in (A, B, S, N, NB, blocked, L, near))
        faces = faces[active[lab[faces]]]
        a, b, la = A[near], B[near], L[near]
        active[a] = active[b] = False
        np.minimum.at(low, np.concatenate([a, b]), np.concatenate([la, la]))  # nearest: lowest linkage, then number
        np.minimum.at(best, a[la == low[a]], b[la == low[a]])
        np.minimum.at(best, b[la == low[b]], a[la == low[b]])
        mutual = (best[a] == b) & (best[b] == a)
        low[a], low[b], best[a], best[b] = np.inf, np.inf, n, n
        ma, mb = a[mutual], b[mutual]
        big = (size[ma] > size[mb]) | ((size[ma] == size[mb]) & (ma < mb))
        keeper, gone = np.where(big, ma, mb), np.where(big, mb, ma)  # the larger group keeps its number
        bad = (pin[ma] >= 0) & (pin[mb] >= 0) & (pin[ma] != pin[mb])
        to[keeper], to[gone] = np.arange(len(ma)), np.arange(len(ma))
        if len(ef):
            at = to[lab[ef]]
            mine = at >= 0
            other = np.where(keeper[at[mine]] == lab[ef[mine]], gone[at[mine]], keeper[at[mine]])
            bad[at[mine][np.isin(other * width + ei[mine], lab[carriers] * width + carry)]] = True
        # cannot-links: faces of the smaller group whose photo holds a face of the larger one
        moving = faces[to[lab[faces]] >= 0]
        moving = moving[gone[to[lab[moving]]] == lab[moving]]
        owner, at = _spans(photo_ptr, photo[moving])
        mate = by_photo[at]  # the faces of their photos
        clash = lab[mate] == keeper[to[lab[moving[owner]]]]
        f1, f2 = moving[owner[clash]], mate[clash]
        which = to[lab[f1]]  # the pair of groups
        counted, shared = np.unique(which, return_counts=True)
        one = (shared[np.searchsorted(counted, which)] == 1) & ~bad[which]
        bad[which[~one]] = True
        f1, f2, which = f1[one], f2[one], which[one]
        extra = []
        if len(which):  # one shared photo: the face that fits the other group worse leaves
            worse = np.where(fit(f1, lab[f2]) > fit(f2, lab[f1]), f1, f2)
            ok = ~anchor[worse] & ~ejected_once[worse] & (size[lab[worse]] > 1)
            bad[which[~ok]] = True
            worse = worse[ok]
            if len(worse):
                ejected_once[worse] = True
                old = lab[worse]
                owner, nb, dd = g.around(worse)
                twice = np.isin(nb, worse) & (nb < worse[owner])  # a pair of two leaving faces: once
                live = np.isin(lab[nb], lab[faces])  # settled groups stay settled (their faces left `faces`)
                owner, nb, dd = owner[~twice & live], nb[~twice & live], dd[~twice & live]
                newlab = np.array([spare.pop() for _ in worse], dtype=np.int64)
                np.subtract.at(size, old, 1), np.subtract.at(crowd, old, g.crowd[worse])
                both = (g.crowd[worse][owner] & g.crowd[nb]).astype(float)
                minus, one = [old[owner], lab[nb], -dd, -np.ones(len(nb)), -both], np.ones(len(nb))
                lab[worse] = newlab
                size[newlab], crowd[newlab], pin[newlab] = 1, g.crowd[worse], -1
                extra = [np.concatenate(xy) for xy in zip(minus, [newlab[owner], lab[nb], dd, one, both])]
        lo = np.minimum(A, B)
        hit = (to[lo] >= 0) & (to[lo] == to[np.maximum(A, B)])
        blocked[hit] += bad[to[lo[hit]]]  # a pair that may not merge stays apart for good
        to[keeper] = to[gone] = -1
        keeper, gone = keeper[~bad], gone[~bad]
        if not len(keeper) and not bad.any():
            break
        size[keeper], crowd[keeper] = size[keeper] + size[gone], crowd[keeper] + crowd[gone]
        size[gone], crowd[gone], pin[keeper] = 0, 0, np.maximum(pin[keeper], pin[gone])
        spare.extend(gone.tolist())
        to[gone] = keeper
        moved = faces[to[lab[faces]] >= 0]
        lab[moved] = to[lab[moved]]
        # rows: re-key the rows of merged groups (and of faces that left) and add them into the other rows
        touched = (to[A] >= 0) | (to[B] >= 0)
        ta, tb, parts = A[touched], B[touched], [c[touched] for c in (S, N, NB, blocked)]
        if extra:
            ta, tb = np.concatenate([ta, extra[0]]), np.concatenate([tb, extra[1]])
            parts = [np.concatenate([x, y]) for x, y in zip(parts, extra[2:] + [np.zeros(len(extra[0]))])]
        ta, tb = np.where(to[ta] >= 0, to[ta], ta), np.where(to[tb] >= 0, to[tb], tb)
        to[gone] = -1
        A, B, (S, N, NB, blocked) = _add_rows(A[~touched], B[~touched], [c[~touched] for c in (S, N, NB, blocked)],
                                             *_unique_rows(ta, tb, parts, n), n)

    if pair_threshold is not None:  # two faces alone: their one distance must pass the bar for one pair
        inner = (lab[g.a] == lab[g.b]) & (size[lab[g.a]] == 2) & (g.d >= pair_threshold)
        size[lab[g.a][inner]] = 1  # (counted as too small to be a new person; pinned and previous ids stay)
    labels = _labels(lab, pin, person, size, min_faces, n)
    joined = join_left_out(labels, photo, li, lj, ld, radius=radius, distance=join_distance, votes=join_votes,
                           ejected=(ef, ep[ei]))
    return joined[np.argsort(order)]


def join_left_out(labels, photo, ei, ej, ed, *, radius: float = RADIUS, distance: float = JOIN_DISTANCE,
                  votes: int = JOIN_VOTES, ejected=(np.empty(0, np.int64), np.empty(0, np.int64))) -> np.ndarray:
    """Labels with the faces in no person (-1) joined to the person their nearest faces clearly say, by the vote of
    JOIN_NEAREST (see above), never into a person that has a face in their photo (of two faces of one photo that
    want one person, the nearer joins) nor into a person they were ejected from. ei/ej/ed: the lists, as indexes."""
    labels = labels.copy()
    n = len(labels)
    keep = (ei >= 0) & (ej >= 0) & (ei != ej) & (ed < radius)
    a, b, d = np.concatenate([ei[keep], ej[keep]]), np.concatenate([ej[keep], ei[keep]]), np.concatenate([ed[keep]] * 2)
    use = (labels[a] == UNASSIGNED) & (labels[b] != UNASSIGNED)  # a face left out, and a neighbour in a person
    a, b, d = a[use], b[use], d[use]
    if not len(a):
        return labels
    key = np.unique(a * n + b, return_index=True)[1]  # a pair listed both ways counts once
    a, b, d = a[key], b[key], d[key]
    order = np.lexsort((b, d, a))
    a, b, d = a[order], b[order], d[order]
    first = np.concatenate([[True], a[1:] != a[:-1]])
    start = np.maximum.accumulate(np.where(first, np.arange(len(a)), 0))
    near = np.arange(len(a)) - start < JOIN_NEAREST  # each face's JOIN_NEAREST nearest faces that are in a person
    a, b, d = a[near], b[near], d[near]
    person = labels[b]
    faces, at = np.unique(a, return_index=True)
    nearest_person, nearest_distance = person[at], d[at]
    same = person == nearest_person[np.searchsorted(faces, a)]
    count = np.bincount(np.searchsorted(faces, a), same.astype(np.int64), minlength=len(faces))
    ok = (count >= votes) & (nearest_distance < distance)
    faces, target, dist = faces[ok], nearest_person[ok], nearest_distance[ok]
    if len(ejected[0]):
        barred = set(zip(ejected[0].tolist(), ejected[1].tolist()))
        allowed = np.array([(int(f), int(t)) not in barred for f, t in zip(faces, target)], dtype=bool)
        faces, target, dist = faces[allowed], target[allowed], dist[allowed]
    # not into a person with a face in the photo already; of two faces of one photo for one person, the nearer
    taken = set(zip(photo[labels != UNASSIGNED].tolist(), labels[labels != UNASSIGNED].tolist()))
    for f, t in zip(faces[np.argsort(dist, kind="stable")].tolist(), target[np.argsort(dist, kind="stable")].tolist()):
        if (int(photo[f]), t) not in taken:
            taken.add((int(photo[f]), t))
            labels[f] = t
    return labels


def _labels(lab, pin, person, size, min_faces, n):
    """Anchored groups are their person; another group takes the previous id it overlaps most (largest overlaps
    first, each id once); the other groups of min_faces or more are new people -2, -3, ...; the rest -1."""
    out, free = pin[lab], (pin[lab] < 0) & (size[lab] >= min_faces)
    had = free & (person >= 0)
    pairs, counts = np.unique(np.stack([lab[had], person[had]]), axis=1, return_counts=True)
    named, taken, name = set(), set(out[out >= 0].tolist()), np.full(n, -1)
    for g, p in pairs.T[np.lexsort((pairs[0], pairs[1], -counts))].tolist():
        if g not in named and p not in taken:
            named.add(g), taken.add(p)
            name[g] = p
    out = np.where(free & (name[lab] >= 0), name[lab], np.where(free, -2, out))
    rest = out == -2
    groups, first = np.unique(lab[rest], return_index=True)
    number = np.empty(len(groups), dtype=np.int64)
    number[np.argsort(first, kind="stable")] = np.arange(len(groups))  # in order of their smallest face id
    out[rest] = -2 - number[np.searchsorted(groups, lab[rest])]
    return out


def join_rule(distances, persons, sizes: dict, *, k: int, threshold: float = THRESHOLD, radius: float = RADIUS,
              exclude=()) -> int | None:
    """The person a new face joins at INSERT time, or None (left for the next cluster() run).

    distances/persons: the new face's k nearest faces (cut at `radius`) and their person (-1: none); sizes: person
    -> faces; exclude: people it may not join (in its photo). It joins the person with the lowest mean distance,
    if under the threshold, counting the person's faces the list could hold but lacks (up to k, all when the radius
    cut the list) at `radius`: the batch's average linkage of one face with a group, from this list alone.
    """
    distances, persons = np.asarray(distances, dtype=np.float64), np.asarray(persons, dtype=np.int64)
    near = (distances < radius) & (persons >= 0)
    people, at = np.unique(persons[near], return_inverse=True)
    if not len(people):
        return None
    listed, total = np.bincount(at, minlength=len(people)), np.bincount(at, distances[near], minlength=len(people))
    size = np.array([sizes.get(int(p), 0) for p in people], dtype=np.float64)
    full = (distances < radius).sum() >= k  # else the radius cut the list: all the person's near faces are in it
    room = np.maximum(np.minimum(size, k) if full else size, listed)
    linkage = (total + radius * (room - listed)) / room
    linkage[np.isin(people, list(exclude))] = np.inf
    best = int(np.argmin(linkage))
    return int(people[best]) if linkage[best] < threshold else None
