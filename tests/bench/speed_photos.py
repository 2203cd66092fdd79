"""The photos `invoke bench` ingests: by default the public party bench as the issue counts it (parties/, real/ and
negatives/ of ../shared/faces/party: 133 readable photos; broken/ holds no photo), or a folder of one's own
(`--folder DIR`, photos the project has never seen)."""

from __future__ import annotations

import csv
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
PARTY = ROOT.parent / "shared" / "faces" / "party"
PARTY_DIRS = ("parties", "real", "negatives")
REFERENCE_PHOTO = "parties/party_001.jpg"  # resized to 1 MP: the search reference and the first-call probe


def photo_files(folder: pathlib.Path | None = None, photos: int = 0) -> list[pathlib.Path]:
    """The files to ingest, sorted by folder then name; only the first `photos` when that is given."""
    from pgfaces.loader import collect

    folders = [folder] if folder else [PARTY / d for d in PARTY_DIRS]
    files, missing = collect([str(f) for f in folders])
    if missing or not files:
        raise SystemExit(f"no photos to ingest in {', '.join(str(f) for f in folders)}")
    return files[:photos] if photos else files


def group(path: str | pathlib.Path) -> str:
    """What the file counts under in the faces-found table: its folder's name."""
    return pathlib.Path(path).parent.name


def labelled_faces(files: list[pathlib.Path]) -> dict[str, int]:
    """Faces the party bench's manifest counts in these files, per folder (none for a folder of one's own)."""
    try:
        with open(PARTY / "MANIFEST.tsv", newline="") as f:
            manifest = {row["file"]: int(row["faces"] or 0) for row in csv.DictReader(f, delimiter="\t")}
    except OSError:
        return {}
    counts: dict[str, int] = {}
    for path in files:
        key = f"{group(path)}/{path.name}"
        if key in manifest:
            counts[group(path)] = counts.get(group(path), 0) + manifest[key]
    return counts
