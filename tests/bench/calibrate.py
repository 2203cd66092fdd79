"""Same-person distance threshold per profile, calibrated on the labelled real photos of ../shared/faces/photos.

Every photo of one known person (kind portrait, face-crop or party; one identity; `unknown`, `none` and
`unlabelled` skipped; a dup_group counted once) is embedded in-process with pgfaces.pipeline.detect_and_embed
(its largest face). Every pair of embeddings is a same-person or a different-person pair; the threshold is
the distance that makes the fewest wrong pairs (plain accuracy). A search compares one reference with mostly
other people's faces, as these pairs do (~20x more different pairs than same pairs), so a false accept costs
what it costs in use; balanced accuracy (true accept and true reject rates weighted equally) let 13% of
"matches" on the party benchmark be someone else. The balanced-accuracy and equal-error-rate points are
printed too.

    python -m tests.bench.calibrate [--profile hog ...] [--dsn URI]

The profiles' definitions are read from the database (default: the project's, `invoke url`).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import itertools
import json
import pathlib
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]
PHOTOS = ROOT.parent / "shared" / "faces" / "photos"
KINDS = {"portrait", "face-crop", "party"}
SKIP_IDENTITIES = {"unknown", "none"}


@dataclasses.dataclass
class Calibration:
    profile: str
    images: int  # labelled images tried
    embedded: int  # of which a face was found
    identities: int
    same_pairs: int
    different_pairs: int
    threshold: float | None  # max accuracy over all pairs
    false_accept_rate: float | None  # different pairs at or under the threshold
    false_reject_rate: float | None  # same pairs over the threshold
    accuracy: float | None
    balanced_threshold: float | None  # max balanced accuracy
    balanced_accuracy: float | None
    eer_threshold: float | None
    equal_error_rate: float | None
    seconds: float
    no_face: list[str] = dataclasses.field(default_factory=list)
    error: str | None = None

    def sql(self) -> str:
        if self.threshold is None:
            return f"-- {self.profile}: no threshold ({self.error or 'not enough pairs'})"
        return f"update profiles set match_threshold = {self.threshold:.3f} where name = '{self.profile}';"

    def summary(self) -> str:
        if self.threshold is None:
            return f"{self.profile}: no threshold ({self.error or 'not enough pairs'})"
        return (
            f"{self.profile}: threshold {self.threshold:.3f} (accuracy {self.accuracy:.3%}: "
            f"false accept {self.false_accept_rate:.3%}, false reject {self.false_reject_rate:.3%}); "
            f"EER {self.equal_error_rate:.3%} at {self.eer_threshold:.3f}; max balanced accuracy "
            f"{self.balanced_accuracy:.3f} at {self.balanced_threshold:.3f}; {self.embedded}/{self.images} images with a face, "
            f"{self.identities} people, {self.same_pairs} same / {self.different_pairs} different pairs; "
            f"{self.seconds:.0f} s"
        )


def labelled_images(photos: pathlib.Path = PHOTOS) -> list[tuple[pathlib.Path, str]]:
    """(file, identity) for the single-identity photos, one per dup_group."""
    out, groups = [], set()
    with open(photos / "MANIFEST.tsv", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            identity = row["identity"].strip()
            if row["kind"] not in KINDS or ";" in identity or not identity:
                continue
            if identity in SKIP_IDENTITIES or identity.startswith("unlabelled"):
                continue
            group = row.get("dup_group", "").strip()
            if group:
                if group in groups:
                    continue
                groups.add(group)
            out.append((photos / row["file"], identity))
    return out


def distances(a: np.ndarray, b: np.ndarray, metric: str) -> float:
    if metric == "cosine":
        return float(1 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    return float(np.linalg.norm(a - b))


def _middle_of_best(score: np.ndarray) -> int:
    """Index of the best score; where a range is equally good (separable pairs), the middle of that range: the
    margin to either side is what a new photo gets."""
    first = int(np.argmax(score))
    last = first
    while last + 1 < len(score) and score[last + 1] == score[first]:
        last += 1
    return (first + last) // 2


def pick_thresholds(same: np.ndarray, different: np.ndarray) -> dict:
    """The threshold (midpoint between neighbouring distances) with the fewest wrong pairs; max balanced accuracy; EER."""
    values = np.unique(np.concatenate([same, different]))
    candidates = np.concatenate([[values[0] - 1e-6], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-6]])
    same_sorted, diff_sorted = np.sort(same), np.sort(different)
    tar = np.searchsorted(same_sorted, candidates, side="right") / len(same)  # same pairs accepted
    far = np.searchsorted(diff_sorted, candidates, side="right") / len(different)  # different pairs accepted
    frr = 1 - tar
    accuracy = (tar * len(same) + (1 - far) * len(different)) / (len(same) + len(different))
    balanced = (tar + (1 - far)) / 2
    best = _middle_of_best(accuracy)
    balanced_i = _middle_of_best(balanced)
    eer_i = int(np.argmin(np.abs(far - frr)))
    return {
        "threshold": float(candidates[best]),
        "false_accept_rate": float(far[best]),
        "false_reject_rate": float(frr[best]),
        "accuracy": float(accuracy[best]),
        "balanced_threshold": float(candidates[balanced_i]),
        "balanced_accuracy": float(balanced[balanced_i]),
        "eer_threshold": float(candidates[eer_i]),
        "equal_error_rate": float((far[eer_i] + frr[eer_i]) / 2),
    }


def calibrate(profile: dict, photos: pathlib.Path = PHOTOS, log=print) -> Calibration:
    from pgfaces.errors import PgfacesError
    from pgfaces.pipeline import detect_and_embed

    started = time.monotonic()
    images = labelled_images(photos)
    embedded: list[tuple[str, np.ndarray]] = []
    no_face = []
    for path, identity in images:
        try:
            faces = detect_and_embed(path.read_bytes(), profile)
        except PgfacesError as e:
            if "model" in type(e).__name__.lower():  # the profile cannot run here at all (e.g. CLIP)
                return Calibration(profile["name"], len(images), 0, 0, 0, 0, *([None] * 8),
                                   seconds=time.monotonic() - started, error=f"{type(e).__name__}: {e}")
            no_face.append(f"{path.relative_to(photos)} ({e})")
            continue
        if not faces:
            no_face.append(str(path.relative_to(photos)))
            continue
        embedded.append((identity, np.asarray(max(faces, key=lambda f: f.area).embedding, dtype=np.float64)))
    same, different = [], []
    for (ia, ea), (ib, eb) in itertools.combinations(embedded, 2):
        (same if ia == ib else different).append(distances(ea, eb, profile.get("metric") or "l2"))
    identities = len({i for i, _ in embedded})
    result = Calibration(profile["name"], len(images), len(embedded), identities, len(same), len(different),
                         *([None] * 8), seconds=0.0, no_face=no_face)
    if same and different:
        for key, value in pick_thresholds(np.array(same), np.array(different)).items():
            setattr(result, key, value)
    result.seconds = time.monotonic() - started
    return result


def read_profiles(dsn: str, names: list[str] | None = None) -> list[dict]:
    import psycopg
    from psycopg.rows import dict_row

    from pgfaces.profiles import COLUMNS, from_row

    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        profiles = [from_row(r) for r in conn.execute(f"select {COLUMNS} from profiles order by name")]
    if names:
        known = {p["name"] for p in profiles}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise SystemExit(f"unknown profile(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        profiles = [p for p in profiles if p["name"] in names]
    return profiles


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.calibrate", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="append", default=[], help="profile to calibrate (repeatable; default all)")
    parser.add_argument("--dsn", default=None, help="database whose profiles table to read (default: the project's)")
    parser.add_argument("--json", type=pathlib.Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    dsn = args.dsn
    if dsn is None:
        from tasks import cluster

        dsn = cluster.uri()
    results = []
    for profile in read_profiles(dsn, args.profile):
        result = calibrate(profile)
        print(result.summary(), flush=True)
        results.append(result)
    print("\n".join(r.sql() for r in results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([dataclasses.asdict(r) for r in results], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
