"""Grouping a collection's faces into people, offline: the methods compared on real faces, and timed at scale.

    PYTHONPATH=plpython python -m tests.bench.people_offline [--cache /tmp/people-faces.npz] [--timing]

Two sets, scored on their labelled faces: `party` (party/parties and party/real, FACES.tsv) and `photos` (the
labelled single-person photos of photos/ that calibrated the profile's threshold, whole frame = that person).
Faces and embeddings come from pipeline.analyse with the default `mtcnn` profile (a few minutes, cached in
--cache). Prints: methods x metrics on both sets, the held-out threshold check, the INSERT-time join rule by
leave-one-out and, with --timing, cluster() on 100k and 1M synthetic faces (neighbour lists cached in /tmp).

Faces and labels: people_faces.py; the methods and neighbour lists: people_methods.py; scores: people_scores.py.
"""

from __future__ import annotations

import pathlib
import sys
import time

import numpy as np

from .people_faces import CACHE, FaceSet, load_sets
from .people_methods import METHODS, approximate_knn, exact_knn, first_k
from .people_scores import metrics, metrics_large

K = 20  # neighbours per face


def table(sets, log=print):
    log(f"{'method':54s} {'set':7s} {'pair P':>7s} {'pair R':>7s} {'BC P':>6s} {'BC R':>6s} {'BC F1':>6s} "
        f"{'viol':>4s} {'people':>7s} {'unas.':>6s}")
    for name, method in METHODS.items():
        for faces in sets:
            m = metrics(method(faces), faces)
            log(f"{name:54s} {faces.name:7s} {m['P']:7.3f} {m['R']:7.3f} {m['BP']:6.3f} {m['BR']:6.3f} {m['F1']:6.3f} "
                f"{m['viol']:4d} {m['found']:3d}/{m['true']:<3d} {m['unassigned']:6.3f}")


def held_out(sets, splits: int = 20, grid=np.round(np.arange(0.50, 0.701, 0.01), 2), log=print):
    """Choose the threshold on half the identities (best BCubed F1 with pairwise precision >= 0.995), score it on
    the other half; and across sets (chosen on all of one set, scored on the other)."""
    from pgfaces import clustering

    chosen_all = {}
    for faces in sets:
        i, j, d = exact_knn(faces.vectors, K, clustering.RADIUS)
        runs = {t: clustering.cluster(np.arange(len(faces)), faces.photo, i, j, d, k=K, threshold=t) for t in grid}

        def pick(part):
            scores = {t: metrics(runs[t], part) for t in grid}
            ok = [t for t in grid if scores[t]["P"] >= 0.995] or list(grid)
            return max(ok, key=lambda t: (scores[t]["F1"], -abs(t - clustering.THRESHOLD)))

        chosen_all[faces.name] = pick(faces)
        people = np.unique(faces.identity[faces.labelled])
        rng = np.random.default_rng(0)
        picked, tuned, fixed = [], [], []
        for _ in range(splits):
            half = rng.permutation(people)[: len(people) // 2]
            train, test = faces.subset(half), faces.subset(set(people) - set(half))
            t = pick(train)
            picked.append(t)
            tuned.append(metrics(runs[t], test))
            fixed.append(metrics(runs[clustering.THRESHOLD], test))
        for name, results in (("chosen on the other half", tuned), (f"fixed {clustering.THRESHOLD}", fixed)):
            log(f"{faces.name}: held-out half, t {name}: pair P mean {np.mean([r['P'] for r in results]):.3f} "
                f"min {np.min([r['P'] for r in results]):.3f}, BCubed F1 mean {np.mean([r['F1'] for r in results]):.3f} "
                f"min {np.min([r['F1'] for r in results]):.3f}")
        log(f"{faces.name}: thresholds chosen on halves: median {np.median(picked):.2f}, range "
            f"{min(picked):.2f}-{max(picked):.2f}; on the whole set: {chosen_all[faces.name]:.2f}")
    for a, b in ((sets[0], sets[1]), (sets[1], sets[0])):
        i, j, d = exact_knn(b.vectors, K, clustering.RADIUS)
        m = metrics(clustering.cluster(np.arange(len(b)), b.photo, i, j, d, k=K, threshold=chosen_all[a.name]), b)
        log(f"t chosen on {a.name} ({chosen_all[a.name]:.2f}) scored on {b.name}: pair P {m['P']:.3f}, BCubed F1 {m['F1']:.3f}")


def join_leave_one_out(faces: FaceSet, k: int = K, log=print, verbose=False):
    """The INSERT-time rule for each labelled face, given everyone else's person: (a) the true identities (a
    perfectly grouped library), (b) what cluster() made of the other faces. Right, wrong, or left alone."""
    from pgfaces import clustering

    i, j, d = exact_knn(faces.vectors, k + 1, clustering.RADIUS)
    truth = np.where(faces.labelled, np.unique(faces.identity, return_inverse=True)[1], -1)
    for mode in ("true identities", "cluster() of the others"):
        right = wrong = alone = could = unlabelled = 0
        for f in np.flatnonzero(faces.labelled):
            if mode == "true identities":
                person = truth.copy()
                person[f] = -1
            else:
                rest = np.flatnonzero(np.arange(len(faces)) != f)
                keep = (i != f) & (j != f)
                ii, jj, dd = first_k(i[keep], j[keep], d[keep], k, clustering.RADIUS)
                person = np.full(len(faces), -1)
                person[rest] = clustering.cluster(rest, faces.photo[rest], ii, jj, dd, k=k)
                person[person < -1] += 10**6  # new people: any distinct ids
            mine = (i == f) & (j != f)
            order = np.argsort(d[mine])[:k]
            nb, dist = j[mine][order], d[mine][order]
            sizes = dict(zip(*np.unique(person[person >= 0], return_counts=True)))
            same_photo = set(person[(faces.photo == faces.photo[f]) & (np.arange(len(faces)) != f)].tolist())
            got = clustering.join_rule(dist, person[nb], {int(a): int(b) for a, b in sizes.items()}, k=k,
                                       exclude=same_photo - {-1})
            members = truth[person == got] if got is not None else np.array([], dtype=np.int64)
            members = members[members >= 0]
            could += (truth[np.arange(len(faces)) != f] == truth[f]).any()
            if got is None:
                alone += 1
            elif not len(members):
                unlabelled += 1  # a person made only of faces nobody labelled: right or wrong, nobody knows
            elif np.bincount(members).argmax() == truth[f]:
                right += 1
            else:
                wrong += 1
                if verbose:
                    log(f"  wrong: {faces.identity[f]} joined {np.unique(faces.identity[person == got], return_counts=True)}")
        total = right + wrong + alone + unlabelled
        log(f"join rule, {faces.name}, others' people = {mode}: {total} faces; joined the right person {right} "
            f"({right / max(could, 1):.1%} of the {could} whose person exists), the wrong one {wrong} "
            f"({wrong / total:.1%}; precision {right / max(right + wrong, 1):.3f}), a person of unlabelled faces "
            f"{unlabelled}, left alone {alone}")


# ---------------------------------------------------------------------------------------------------- timing ---

def synthetic_people(n: int, big=(), seed: int = 1):
    """n faces of synthetic people (tests/bench/synthetic.py People: geometric, mean 10 faces each) plus people with
    `big` faces each, shuffled; with each face's person."""
    from tests.bench.synthetic import People

    sets = load_sets()
    real = np.concatenate([s.vectors[s.labelled] for s in sets])
    labels = np.unique(np.concatenate([s.identity[s.labelled] for s in sets]), return_inverse=True)[1]
    model = People(real.astype(np.float32), labels, seed=seed)
    counts = model.rng.geometric(1 / model.mean_faces, size=int(n / model.mean_faces * 1.2) + 10)
    counts = counts[: int(np.searchsorted(np.cumsum(counts), n)) + 1]
    counts[-1] -= counts.sum() - n
    counts = np.concatenate([counts[counts > 0], np.asarray(big, dtype=np.int64)])
    truth = np.repeat(np.arange(len(counts)), counts)
    vectors = model.faces_around(np.repeat(model.new_centres(len(counts)), counts, axis=0))
    order = model.rng.permutation(len(truth))
    return vectors[order], truth[order]


def timing(n: int, big, log=print, cache_dir=pathlib.Path("/tmp")):
    """cluster() on synthetic people: CPU time of the clustering alone (the neighbour lists are built before, exact
    up to 100k faces, IVF above), and its quality against the synthetic truth."""
    from pgfaces import clustering

    path = cache_dir / f"people-knn-{n}.npz"
    if path.exists():
        z = np.load(path)
        truth, i, j, d, built = z["truth"], z["i"], z["j"], z["d"], float(z["built"])
    else:
        vectors, truth = synthetic_people(n, big)
        started = time.process_time()
        i, j, d = (exact_knn(vectors, 30, clustering.RADIUS) if n <= 200_000
                   else approximate_knn(vectors, 30, clustering.RADIUS))
        built = time.process_time() - started
        np.savez(path, truth=truth, i=i.astype(np.int32), j=j.astype(np.int32), d=d.astype(np.float32), built=built)
    faces = len(truth)
    log(f"{faces} synthetic faces ({len(np.unique(truth))} people, the largest {np.bincount(truth).max()}): "
        f"neighbour lists built in {built:.0f} s CPU ({'exact' if n <= 200_000 else 'IVF, approximate'})")
    for k in (10, 20, 30):
        ii, jj, dd = first_k(i.astype(np.int64), j.astype(np.int64), d, k, clustering.RADIUS)
        started = time.process_time()
        labels = clustering.cluster(np.arange(faces), np.arange(faces), ii, jj, dd, k=k)
        cpu = time.process_time() - started
        m = metrics_large(labels, truth)
        log(f"  k {k}: {len(ii)} neighbour rows, cluster() {cpu:.1f} s CPU; pair P {m['P']:.4f} R {m['R']:.3f}, "
            f"BCubed P {m['BP']:.4f} R {m['BR']:.3f} F1 {m['F1']:.3f}, unassigned {np.mean(labels == -1):.3f}")


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=pathlib.Path, default=CACHE)
    parser.add_argument("--timing", action="store_true", help="also time cluster() on 100k and 1M synthetic faces")
    args = parser.parse_args(argv)
    sets = load_sets(args.cache)
    for faces in sets:
        print(f"{faces.name}: {len(faces)} faces in {faces.photo.max() + 1} photos, {faces.labelled.sum()} labelled "
              f"({len(np.unique(faces.identity[faces.labelled]))} people)")
    table(sets)
    held_out(sets)
    for faces in sets:
        join_leave_one_out(faces)
    if args.timing:
        timing(100_000, big=(300, 1000, 3000))
        timing(1_000_000, big=(1000, 3000, 10_000, 30_000))
    return 0


if __name__ == "__main__":
    sys.exit(main())
