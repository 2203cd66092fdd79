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


SYNTHETIC_PHOTOS = 20000
CAMERAS = ["Canon EOS 5D Mark III", "iPhone 13", "Pixel 7"]


@pytest.fixture(scope="module")
def tagged(make_database, shared_faces):
    """Two real party photos plus a year of synthetic photos with one synthetic face each, written directly
    (triggers off), so that the planner sees a collection where an index scan pays."""
    url = make_database()
    rng = random.Random(7)
    with psycopg.connect(url, autocommit=True) as conn:
        for name in ("party_002.jpg", "party_005.jpg"):
            data = (shared_faces / "party" / "parties" / name).read_bytes()
            conn.execute("insert into photos (filename, image) values (%s, %s)", (name, data))
        conn.execute("update photos set camera = %s where filename = 'party_005.jpg'", (CAMERAS[0],))
        conn.execute("set session_replication_role = replica")  # no analysis for the synthetic rows
        with conn.cursor().copy(
                "copy photos (filename, image, sha256, taken_at, latitude, longitude, camera) from stdin") as copy:
            for i in range(SYNTHETIC_PHOTOS):
                lisbon = rng.random() < 0.3
                copy.write_row((f"synthetic-{i}.jpg", b"\x00", f"synthetic-{i}",
                                f"2023-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                                38.7 + rng.uniform(-0.2, 0.2) if lisbon else 51.5, -9.1 if lisbon else -0.1,
                                rng.choice(CAMERAS)))
        conn.execute("""insert into faces (photo_id, profile, x, y, width, height, embedding)
                        select p.id, 'mtcnn', 0, 0, 1, 1,
                               (select array_agg(random() - 0.5) from generate_series(1, 128) where p.id > 0)::vector
                        from photos p where p.filename like 'synthetic-%'""")
        conn.execute("reset session_replication_role")
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
    assert len(rows) == 10 and {r[2] for r in rows} == {CAMERAS[0]}
    assert rows[0][1] == "party_005.jpg"  # real faces lie far nearer a real face than random vectors do


def example() -> tuple[str, str]:
    """README's Example: its SQL and the output it shows."""
    section = (ROOT / "README.md").read_text().split("\n## Example\n")[1]
    return re.search(r"```sql\n(.*?)```", section, re.S).group(1), re.search(r"```text\n(.*?)```", section, re.S).group(1)


def rows(text: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.split("|")] for line in text.splitlines() if "|" in line]


def test_readme_example_gives_its_output_and_runs_again(make_database, shared_faces, tmp_path):
    """As the README has it: psql with -v faces=...; run again (after the demo loaded the same photos, say), the
    INSERTs skip them rather than fail on a duplicate key."""
    import subprocess

    sql, shown = example()
    script = tmp_path / "example.sql"
    script.write_text(sql)
    url = make_database()

    def psql():
        return subprocess.run(["psql", url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", f"faces={shared_faces}/",
                               "-f", str(script)], capture_output=True, text=True, timeout=600)

    first = psql()
    assert first.returncode == 0, first.stderr
    assert rows(first.stdout) == rows(shown)
    again = psql()
    assert again.returncode == 0 and "duplicate key" not in again.stderr, again.stderr
    assert rows(again.stdout) == rows(shown)
