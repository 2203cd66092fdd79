"""The grouping's quality bar (profiles.quality_bar), chosen on half of the identities and scored on the other half:

    PYTHONPATH=plpython python -m tests.bench.people_bar [--work /tmp/pgfaces-people-bar] [--splits 10]

Sets, every face scored as party/README.md says (people_faces.faces_inside): the party benchmark loaded whole (every
folder, as `./pgfaces load` loads it), and party sets composed from the labelled faces of ../shared/faces/photos
(people_compose.py, seeds 1 and 2; drawn into --work, never into the repository). Faces come from
pgfaces.analysis as the INSERT trigger computes them; each face's nearest faces are exact. The grouping is
pgfaces.clustering.cluster with the profile's pair threshold (0.567) and each candidate bar.

For each split: the bar with the best mean BCubed F1 over the sets' halves whose pairwise precision is >= 0.995 on
all of them, then its scores on the other halves. Prints the bars chosen, their held-out scores, and the shipped
bar's scores on the whole sets (with no bar beside it).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import itertools
import pathlib
import sys

import numpy as np

from .people_compose import compose
from .people_faces import FACES_DIR, PROFILE, FaceSet, _embed, faces_inside, labelled_regions
from .people_methods import exact_knn
from .people_scores import metrics

SHIPPED = {"min_size": 0, "min_score": 0.9, "min_sharpness": 0.15, "max_yaw": 0.45, "min_typicality": 0.48, "join_votes": 3,
           "join_distance": 0.55}
GRID = {"min_size": (0, 30, 40, 50), "min_score": (0.0, 0.9), "min_sharpness": (0.0, 0.15, 0.3),
        "max_yaw": (0.35, 0.45), "min_typicality": (0.0, 0.47, 0.48, 0.49), "join_votes": (3,), "join_distance": (0.55,)}
PAIR_THRESHOLD = 0.567  # the mtcnn profile's match_threshold


def _one(path: pathlib.Path):
    analysed, _ = _embed(path)
    return path, analysed, hashlib.sha256(path.read_bytes()).hexdigest()


def faces_of(name: str, root: pathlib.Path, regions: dict, cache: pathlib.Path) -> FaceSet:
    """Every file under `root` analysed (the same bytes once), each face labelled by the region it lies in."""
    if not cache.exists():
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() not in (".tsv", ".md"))
        rows, seen = {k: [] for k in ("photo", "identity", "vector", "size", "score", "sharpness", "yaw")}, set()
        with concurrent.futures.ProcessPoolExecutor(2) as pool:
            for path, analysed, digest in pool.map(_one, files):
                if analysed is None or digest in seen:
                    continue
                seen.add(digest)
                relative = str(path.relative_to(root))
                boxes = [(f.x, f.y, f.width, f.height) for f in analysed.faces]
                for face, who in zip(analysed.faces, faces_inside(boxes, regions.get(relative, []))):
                    q = face.quality
                    rows["photo"].append(relative)
                    rows["identity"].append("?" if who is None else who)
                    rows["vector"].append(face.embedding)
                    rows["size"].append(q.size)
                    rows["score"].append(np.nan if q.score is None else q.score)
                    rows["sharpness"].append(q.sharpness)
                    rows["yaw"].append(np.nan if q.yaw is None else q.yaw)
        np.savez(cache, **{k: np.array(v) for k, v in rows.items()})
    data = np.load(cache)
    faces = FaceSet(name, data["vector"], data["identity"], data["photo"])
    faces.quality = {k: data[k] for k in ("size", "score", "sharpness", "yaw")}
    return faces


def composed_sets(work: pathlib.Path, seeds=(1, 2)) -> list[FaceSet]:
    from tests.bench.calibrate import labelled_images

    sources = []
    for path, identity in labelled_images(FACES_DIR / "photos"):
        analysed, _ = _embed(path)
        if analysed is not None and len(analysed.faces) == 1:
            f = analysed.faces[0]
            sources.append((path, (f.x, f.y, f.width, f.height), identity))
    sets = []
    for seed in seeds:
        folder = work / f"composed-{seed}"
        if not (folder / "FACES.tsv").exists():
            compose(sources, folder, seed, backgrounds=sorted((FACES_DIR / "party" / "negatives").iterdir()))
        regions = {}
        for line in (folder / "FACES.tsv").read_text().splitlines()[1:]:
            file, who, x, y, w, h = line.split("\t")
            regions.setdefault(file, []).append((who, int(x), int(y), int(w), int(h)))
        sets.append(faces_of(f"composed {seed}", folder, regions, work / f"composed-{seed}.npz"))
    return sets


def groupable(faces: FaceSet, centre: np.ndarray, bar: dict) -> np.ndarray:
    q = faces.quality
    typicality = np.linalg.norm(faces.vectors - centre, axis=1)
    return ~((q["size"] < bar["min_size"]) | (np.nan_to_num(q["score"], nan=1.0) < bar["min_score"])
             | (q["sharpness"] < bar["min_sharpness"])
             | (np.nan_to_num(q["yaw"]) > bar["max_yaw"]) | (typicality < bar["min_typicality"]))


def group(faces: FaceSet, lists, centre, bar: dict | None) -> np.ndarray:
    from pgfaces import clustering

    i, j, d = lists
    joining = {} if bar is None else {"join_votes": bar["join_votes"], "join_distance": bar["join_distance"]}
    return clustering.cluster(np.arange(len(faces)), faces.photo, i, j, d, k=clustering.NEIGHBOURS,
                              groupable=None if bar is None else groupable(faces, centre, bar),
                              pair_threshold=None if bar is None else PAIR_THRESHOLD, **joining)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=pathlib.Path, default=pathlib.Path("/tmp/pgfaces-people-bar"))
    parser.add_argument("--splits", type=int, default=10)
    parser.add_argument("--centre", action="store_true", help="print the profile's centre (013-face-quality.sql) only")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.centre:
        photos = faces_of("photos", FACES_DIR / "photos", {}, args.work / "photos.npz")
        print(f"{len(photos)} faces: [" + ",".join(f"{v:.4f}" for v in photos.vectors.mean(0)) + "]")
        return 0
    party = {k.removeprefix("party/"): v for k, v in labelled_regions(FACES_DIR).items()}
    sets = [faces_of("party (every folder)", FACES_DIR / "party", party, args.work / "party.npz"),
            *composed_sets(args.work)]
    photos = faces_of("photos", FACES_DIR / "photos", {}, args.work / "photos.npz")
    centre = photos.vectors.mean(0)  # the profile's centre: the faces of the labelled photos (013-face-quality.sql)
    lists = [exact_knn(s.vectors, 20, 0.7) for s in sets]
    bars = [dict(zip(GRID, values)) for values in itertools.product(*GRID.values())]
    labels = {i: [group(s, l, centre, bar) for s, l in zip(sets, lists)] for i, bar in enumerate(bars)}

    def best(parts):
        def key(i):
            scores = [metrics(labels[i][k], part) for k, part in enumerate(parts)]
            return min(m["P"] for m in scores) >= 0.995, np.mean([m["F1"] for m in scores])
        return max(labels, key=key)

    rng = np.random.default_rng(0)
    chosen_bars = []
    for split in range(args.splits):
        train, test = [], []
        for s in sets:
            people = np.unique(s.identity[s.labelled])
            half = set(rng.permutation(people)[: len(people) // 2])
            train.append(s.subset(half)), test.append(s.subset(set(people) - half))
        chosen = best(train)
        chosen_bars.append(chosen)
        scores = [metrics(labels[chosen][k], part) for k, part in enumerate(test)]
        print(f"split {split}: chosen on one half {bars[chosen]}; on the other: "
              + ", ".join(f"{s.name} P {m['P']:.3f} F1 {m['F1']:.3f}" for s, m in zip(sets, scores)))
    most = max(set(chosen_bars), key=chosen_bars.count)
    print(f"chosen most often ({chosen_bars.count(most)} of {args.splits}): {bars[most]}")
    for name, bar in (("no bar", None), (f"shipped {SHIPPED}", SHIPPED), ("chosen most often", bars[most])):
        scores = [metrics(group(s, l, centre, bar), s) for s, l in zip(sets, lists)]
        print(f"{name}: " + ", ".join(f"{s.name} P {m['P']:.3f} R {m['R']:.3f} F1 {m['F1']:.3f}"
                                      for s, m in zip(sets, scores)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
