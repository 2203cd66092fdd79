"""Unit tests import the vision pipeline as plain Python: no database."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

FACES = (REPO / ".." / "shared" / "faces").resolve()


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    if not FACES.is_dir():
        pytest.skip(f"test photos not found at {FACES} (the shared faces data set sits next to the repo)")
    return FACES


@pytest.fixture(scope="session")
def party_manifest(faces_dir) -> dict[str, dict]:
    lines = (faces_dir / "party" / "MANIFEST.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    return {row["file"]: row for row in (dict(zip(header, line.split("\t"))) for line in lines[1:])}


@pytest.fixture(scope="session")
def default_profile() -> dict:
    return {
        "name": "test",
        "detector": "hog",
        "detector_params": {"upsample": 0, "max_side": 1600, "min_face": 40},
        "embedder": "dlib",
        "embedder_params": {},
        "dimensions": 128,
    }
