"""README.md's metadata queries run as written, and a filtered search still uses the HNSW index."""

from __future__ import annotations

import pathlib
import random
import re

import psycopg
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SPEAKER = "photos/seed/find-faces-talk/slides/images/slack-picture.jpg"


def metadata_queries() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("<!-- metadata-queries")[1].split("<!-- /metadata-queries -->")[0]
    return re.findall(r"```sql\n(.*?)```", section, re.S)


@pytest.fixture(scope="module")
def tagged(make_database, shared_faces):
    """Party photos (with EXIF dates and GPS) plus many synthetic faces, so the planner prefers the index."""
    url = make_database()
    with psycopg.connect(url, autocommit=True) as conn:
        for name in ("party_002.jpg", "party_005.jpg"):
            data = (shared_faces / "party" / "parties" / name).read_bytes()
            conn.execute("insert into photos (filename, image) values (%s, %s)", (name, data))
        conn.execute("update photos set camera = 'Canon EOS 5D Mark III' where filename = 'party_005.jpg'")
        photo = conn.execute("select id from photos limit 1").fetchone()[0]
        rng = random.Random(7)
        with conn.cursor().copy("copy faces (photo_id, profile, face_key, x, y, width, height, embedding) from stdin") as copy:
            for i in range(3000):
                vec = "[" + ",".join(f"{rng.gauss(0, 0.1):.5f}" for _ in range(128)) + "]"
                copy.write_row((photo, "mtcnn", f"synthetic-{i}", 0, 0, 1, 1, vec))
        conn.execute("analyze faces")
        conn.execute("analyze photos")
    return url


def test_readme_has_the_three_metadata_queries():
    assert len(metadata_queries()) == 3


@pytest.mark.parametrize("index", range(3))
def test_readme_metadata_query_runs_as_written(tagged, shared_faces, index):
    sql = metadata_queries()[index].replace("/photos/me.jpg", str(shared_faces / SPEAKER))
    with psycopg.connect(tagged, autocommit=True) as conn:
        for statement in [s for s in sql.split(";") if s.strip()]:
            cur = conn.execute(statement)
        rows = cur.fetchall()
        distances = [r[-1] for r in rows]
        assert distances == sorted(distances)
        plan = "\n".join(r[0] for r in conn.execute("explain " + [s for s in sql.split(";") if s.strip()][-1]))
        assert "Index Scan using faces_hnsw_mtcnn" in plan, plan


def test_filtered_search_finds_what_the_filter_allows(tagged, shared_faces):
    sql = metadata_queries()[2].replace("/photos/me.jpg", str(shared_faces / SPEAKER))
    with psycopg.connect(tagged, autocommit=True) as conn:
        for statement in [s for s in sql.split(";") if s.strip()]:
            cur = conn.execute(statement)
        rows = cur.fetchall()
    assert rows and {r[1] for r in rows} == {"party_005.jpg"}
