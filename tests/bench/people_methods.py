"""The ways of grouping faces into people that people_offline.py compares (METHODS: DBSCAN, linkage, Chinese
whispers, a mutual-neighbour graph, pgfaces' cluster()), and the nearest-neighbour lists they are given: exact
(brute force), approximate (k-means cells, an IVF index) or cut to the first k.
"""

from __future__ import annotations

import numpy as np

# people_faces also puts plpython on sys.path: ours() imports pgfaces while METHODS is built.
from .people_faces import MATCH_THRESHOLD


# ------------------------------------------------------------------------------------------------ neighbours ---

def exact_knn(vectors, k: int, radius: float = np.inf, block: int = 1024):
    """Each vector's k nearest others (i, j, distance), cut at radius: brute force, like an exact index."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n, sq = len(x), (x.astype(np.float64) ** 2).sum(1).astype(np.float32)
    out = ([], [], [])
    kk = min(k, n - 1)
    for s in range(0, n, block):
        d2 = sq[s:s + block, None] + sq[None, :] - 2 * x[s:s + block] @ x.T
        rows = np.arange(s, min(n, s + block))
        d2[rows - s, rows] = np.inf
        idx = np.argpartition(d2, kk - 1, axis=1)[:, :kk]
        dist = np.sqrt(np.maximum(np.take_along_axis(d2, idx, 1), 0))
        keep = dist < radius
        for part, value in zip(out, (np.repeat(rows, kk)[keep.ravel()], idx[keep], dist[keep])):
            part.append(value)
    return tuple(np.concatenate(part) for part in out)


def approximate_knn(vectors, k: int, radius: float, cells: int | None = None, probe: int = 8, seed: int = 0):
    """Each vector's k nearest among the vectors of its `probe` nearest k-means cells (an IVF index): stands in for
    the HNSW index at 1M faces, where brute force takes hours."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n = len(x)
    cells = cells or max(1, int(2 * np.sqrt(n)))
    rng = np.random.default_rng(seed)
    centres = x[rng.choice(n, cells, replace=False)].copy()
    sample = x[rng.choice(n, min(n, 40 * cells), replace=False)]
    for _ in range(6):
        nearest = np.concatenate([np.argmin((centres ** 2).sum(1)[None] - 2 * sample[s:s + 65536] @ centres.T, 1)
                                  for s in range(0, len(sample), 65536)])
        sums = np.zeros_like(centres)
        np.add.at(sums, nearest, sample)
        count = np.bincount(nearest, minlength=cells)
        centres[count > 0] = sums[count > 0] / count[count > 0, None]
    cs = (centres ** 2).sum(1)
    home, top = np.empty(n, np.int64), np.empty((n, probe), np.int64)
    for s in range(0, n, 65536):
        d = cs[None] - 2 * x[s:s + 65536] @ centres.T
        home[s:s + 65536], top[s:s + 65536] = np.argmin(d, 1), np.argpartition(d, probe - 1, 1)[:, :probe]
    members = np.argsort(home, kind="stable")
    start = np.searchsorted(home[members], np.arange(cells + 1))
    queries = np.argsort(top.ravel(), kind="stable")
    qstart = np.searchsorted(top.ravel()[queries], np.arange(cells + 1))
    sq = (x ** 2).sum(1)
    best_d, best_j = np.full((n, k), np.inf, np.float32), np.full((n, k), -1, np.int64)
    for c in range(cells):
        mem, q = members[start[c]:start[c + 1]], queries[qstart[c]:qstart[c + 1]] // probe
        if not len(mem) or not len(q):
            continue
        d2 = sq[q, None] + sq[None, mem] - 2 * x[q] @ x[mem].T
        d2[q[:, None] == mem[None, :]] = np.inf
        kk = min(k, len(mem))
        idx = np.argpartition(d2, kk - 1, 1)[:, :kk]
        all_d = np.concatenate([best_d[q], np.take_along_axis(d2, idx, 1)], 1)
        all_j = np.concatenate([best_j[q], mem[idx]], 1)
        pick = np.argpartition(all_d, k - 1, 1)[:, :k]
        best_d[q], best_j[q] = np.take_along_axis(all_d, pick, 1), np.take_along_axis(all_j, pick, 1)
    dist = np.sqrt(np.maximum(best_d, 0))
    keep = (dist < radius) & (best_j >= 0)
    return np.repeat(np.arange(n), k)[keep.ravel()], best_j[keep], dist[keep]


def first_k(i, j, d, k: int, radius: float):
    """The k nearest of each list (lists sorted by face then distance), cut at radius."""
    order = np.lexsort((d, i))
    i, j, d = i[order], j[order], d[order]
    rank = np.arange(len(i)) - np.searchsorted(i, i)
    keep = (rank < k) & (d < radius)
    return i[keep], j[keep], d[keep]


# --------------------------------------------------------------------------------------------------- methods ---

def _no_singletons(labels):
    labels = np.asarray(labels)
    sizes = np.bincount(np.unique(labels, return_inverse=True)[1])
    return np.where(sizes[np.unique(labels, return_inverse=True)[1]] > 1, labels, -1)


def dbscan(eps, min_samples):
    def run(faces):
        from sklearn.cluster import DBSCAN

        return DBSCAN(eps=eps, min_samples=min_samples).fit(faces.vectors).labels_
    return run


def linkage(t, method="average"):
    def run(faces):
        from scipy.cluster.hierarchy import fcluster, linkage as scipy_linkage

        return _no_singletons(fcluster(scipy_linkage(faces.vectors, method), t, "distance"))
    return run


def chinese_whispers(t):
    def run(faces):
        import dlib

        return _no_singletons(dlib.chinese_whispers_clustering([dlib.vector(v.tolist()) for v in faces.vectors], t))
    return run


def mutual_components(t, k=20):
    """Graph baseline: edges under t between mutual k-nearest neighbours, joined shortest first unless the two
    components share a photo (single linkage with cannot-links)."""
    def run(faces):
        i, j, d = exact_knn(faces.vectors, k, t)
        listed = set(zip(i.tolist(), j.tolist()))
        root = list(range(len(faces)))
        photos = [{p} for p in faces.photo.tolist()]

        def find(a):
            while root[a] != a:
                root[a] = root[root[a]]
                a = root[a]
            return a
        for e in np.argsort(d, kind="stable"):
            a, b = find(int(i[e])), find(int(j[e]))
            if a != b and (int(j[e]), int(i[e])) in listed and not photos[a] & photos[b]:
                root[b], photos[a] = a, photos[a] | photos[b]
        return _no_singletons([find(a) for a in range(len(faces))])
    return run


def ours(k=20, threshold=None, radius=None, all_pairs=False):
    from pgfaces import clustering

    def run(faces):
        kk = len(faces) - 1 if all_pairs else k
        r = radius or (9.0 if all_pairs else clustering.RADIUS)
        i, j, d = exact_knn(faces.vectors, kk, r)
        return clustering.cluster(np.arange(len(faces)), faces.photo, i, j, d, k=kk, radius=r,
                                  threshold=threshold or clustering.THRESHOLD)
    return run


METHODS = {
    "DBSCAN eps 0.567 min_samples 2 (Immich-like)": dbscan(MATCH_THRESHOLD, 2),
    "DBSCAN eps 0.567 min_samples 3": dbscan(MATCH_THRESHOLD, 3),
    "DBSCAN eps 0.5 min_samples 2": dbscan(0.5, 2),
    "Chinese whispers 0.5 (dlib)": chinese_whispers(0.5),
    "mutual 20-NN edges < 0.5, components + cannot-links": mutual_components(0.5),
    "average linkage 0.567 (scipy)": linkage(MATCH_THRESHOLD),
    "average linkage 0.6 (scipy)": linkage(0.6),
    "complete linkage 0.6 (scipy)": linkage(0.6, "complete"),
    "cluster(): all pairs, t 0.567": ours(threshold=MATCH_THRESHOLD, all_pairs=True),
    "cluster(): all pairs, t 0.6": ours(all_pairs=True),
    "cluster(): k 10, t 0.6": ours(k=10),
    "cluster(): k 20, t 0.567": ours(threshold=MATCH_THRESHOLD),
    "cluster(): k 20, t 0.6 (chosen)": ours(),
    "cluster(): k 30, t 0.6": ours(k=30),
}
