"""What a user meets on the way, in SQL and in the commands: merging two named people asks which name stays, a typo
in a name gets the nearest names, the setting that defers analysis needs no quotes, a plain INSERT into a
client-side database says what to do, a search of a profile with no face says why, the people summary right after
cluster_faces() says why faces are in no person, and the messages name ./pgfaces."""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys

import psycopg
import pytest

from conftest import plain

ROOT = pathlib.Path(__file__).resolve().parents[1]
REFERENCES = ("party", "references")


@pytest.fixture
def db(make_database):
    with psycopg.connect(make_database(), autocommit=True) as conn:
        yield conn


def queue(conn) -> dict[str, int]:
    return dict(conn.execute("select state, count(*) from analysis_queue group by state").fetchall())


def notices(conn) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    conn.add_notice_handler(lambda d: seen.append((d.message_primary, d.message_hint)))
    return seen


def test_merging_two_named_people_asks_which_name_stays(db, shared_faces):
    picture = shared_faces.joinpath(*REFERENCES)
    amy = db.execute("select remember_face('Amy', %s)", ((picture / "amy.png").read_bytes(),)).fetchone()[0]
    tibs = db.execute("select remember_face('tibs', %s)", ((picture / "biden.jpg").read_bytes(),)).fetchone()[0]
    with pytest.raises(psycopg.errors.InvalidParameterValue) as refused:
        db.execute("select merge_people(%s, %s)", (amy, tibs))
    assert plain(refused.value) == f'persons {amy} ("Amy") and {tibs} ("tibs") are both named: say which name the ' \
                                   'merged person keeps'
    assert refused.value.diag.message_hint == (f"merge_people({amy}, {tibs}, keep_name => 'Amy') or "
                                               f"merge_people({amy}, {tibs}, keep_name => 'tibs')")
    assert db.execute("select count(*) from people").fetchone()[0] == 2  # nothing happened
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="keep_name 'Bob' is the name of neither"):
        db.execute("select merge_people(%s, %s, keep_name => 'Bob')", (amy, tibs))
    assert db.execute("select merge_people(%s, %s, keep_name => 'tibs')", (amy, tibs)).fetchone()[0] == amy
    assert db.execute("select id, name from people").fetchall() == [(amy, "tibs")]
    assert db.execute("select count(*) from person_references where person_id = %s", (amy,)).fetchone()[0] == 2
    with pytest.raises(psycopg.errors.InvalidParameterValue) as typo:
        db.execute("select * from find_photos_of('Tibs')")
    assert plain(typo.value) == 'unknown person "Tibs"' and typo.value.diag.message_hint.startswith(
        'did you mean "tibs"? ')


def test_find_photos_of_takes_max_distance_auto(db, shared_faces):
    picture = shared_faces.joinpath(*REFERENCES)
    db.execute("select remember_face('Amy', %s)", ((picture / "amy.png").read_bytes(),))
    for name in ("face-api.js__examples__images__amy__amy1.png", "face_recognition__examples__biden.jpg"):
        db.execute("insert into photos (filename, image) values (%s, %s)",
                   (name, (shared_faces / "party" / "real" / name).read_bytes()))
    everyone = db.execute("select filename, distance from find_photos_of('Amy', 10)").fetchall()
    assert [f for f, _ in everyone][0].endswith("amy1.png") and len(everyone) == 2  # the nearest, whoever
    threshold = db.execute("select match_threshold from profiles where is_default").fetchone()[0]
    only = db.execute("select filename, distance from find_photos_of('Amy', 10, max_distance => 'auto')").fetchall()
    assert only == [r for r in everyone if r[1] <= threshold] and len(only) == 1


def test_the_deferring_setting_needs_no_quotes_and_the_old_one_still_works(db, shared_faces):
    real = shared_faces / "party" / "real"
    db.execute("set pgfaces.defer = on")
    assert db.execute("show pgfaces.defer").fetchone()[0] == "on"
    db.execute("insert into photos (filename, image) values ('a.jpg', %s)",
               ((real / "face_recognition__examples__biden.jpg").read_bytes(),))
    assert db.execute("select count(*) from faces").fetchone()[0] == 0 and queue(db) == {"queued": 1}
    db.execute("reset pgfaces.defer")
    db.execute("set pgfaces.\"analyse\" = 'deferred'")  # the first name, quoted (ANALYSE is a reserved word)
    assert db.execute("show pgfaces.defer").fetchone()[0] == "on"  # the mode in force
    db.execute("set pgfaces.defer = off")  # the new name wins once set
    db.execute("insert into photos (filename, image) values ('b.png', %s)",
               ((real / "face-api.js__examples__images__amy__amy1.png").read_bytes(),))
    assert db.execute("select count(*) from faces").fetchone()[0] == 1 and queue(db) == {"queued": 1}
    with pytest.raises(psycopg.Error) as bad:
        db.execute("set pgfaces.defer = later")
    assert "pgfaces.defer" in plain(bad.value, ("22",))


def test_a_plain_insert_into_a_client_side_database_says_to_load_with_the_client(make_database):
    with psycopg.connect(make_database(client_side=True), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.FeatureNotSupported) as refused:
            conn.execute("insert into photos (filename, image) values ('party.jpg', %s)", (b"\xff\xd8" * 5000,))
    assert plain(refused.value).startswith("party.jpg: this database cannot analyse photos")
    assert "python -m pgfaces.client load" in plain(refused.value)
    assert refused.value.diag.message_detail is None  # no failing row with the image's bytes


def test_a_search_of_a_profile_with_no_face_says_to_reprocess(db, shared_faces):
    reference = (shared_faces / "party" / "references" / "amy.png").read_bytes()
    seen = notices(db)
    assert db.execute("select * from find_photos_like(%s, 5)", (reference,)).fetchall() == []
    assert seen[-1] == ('no photo is stored yet, so no face of profile "mtcnn"',
                        "INSERT INTO photos (filename, image) ..., or ./pgfaces load FOLDER")
    db.execute("insert into photos (filename, image) values ('amy.png', %s)", (reference,))
    assert db.execute("select * from find_photos_like(%s, 5, profile => 'hog')", (reference,)).fetchall() == []
    assert seen[-1] == ('profile "hog" has no face yet: an INSERT analyses its photo with the ingest profiles only',
                        "SELECT reprocess('hog') finds its faces in the stored photos")
    before = len(seen)
    assert len(db.execute("select * from find_photos_like(%s, 5)", (reference,)).fetchall()) == 1
    assert len(seen) == before  # a search that finds faces says nothing


def pgfaces(url: str, cwd, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PGFACES_DB": url.rsplit("/", 1)[1]}
    return subprocess.run([str(ROOT / "pgfaces"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def test_right_after_clustering_no_face_waits_for_it(make_database, shared_faces, tmp_path):
    url = make_database()
    loaded = pgfaces(url, tmp_path, "load", str(shared_faces / "party" / "parties" / "party_00*.jpg"), "--quiet")
    assert loaded.returncode == 0, loaded.stderr
    assert pgfaces(url, tmp_path, "cluster").returncode == 0
    summary = pgfaces(url, tmp_path, "people").stdout.splitlines()[-1]
    assert "faces in no person: " in summary and "wait for cluster_faces()" not in summary, summary
    with psycopg.connect(url) as conn:
        alone = conn.execute("select count(*) from unassigned_faces where not kept_apart").fetchone()[0]
    assert alone == 0 or "held back" in summary or "like no one else yet" in summary


def test_load_deferred_says_queued_on_its_summary_line_not_on_a_failure(make_database, shared_faces, tmp_path):
    url = make_database()
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a whole JPEG")
    (tmp_path / "biden.jpg").write_bytes((shared_faces / "party" / "real" / "face_recognition__examples__biden.jpg")
                                         .read_bytes())
    result = subprocess.run([sys.executable, "-m", "pgfaces.client", "load", "--deferred", "--quiet", ".",
                             "--dsn", url], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    lines = result.stdout.splitlines()
    assert result.returncode == 1 and lines[0].endswith("1 failed (queued for analysis)"), result.stdout
    assert lines[-1].startswith("  FAILED broken.jpg: ") and "queued" not in lines[-1]


def test_messages_name_the_pgfaces_command(make_database, tmp_path):
    url = make_database()
    reset = pgfaces(url, tmp_path, "reset")
    assert reset.returncode == 1 and "`./pgfaces reset --yes`" in reset.stderr and "invoke" not in reset.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    down = subprocess.run([str(ROOT / "pgfaces"), "search", "me.jpg"], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PGFACES_PORT": str(free)}, timeout=600)
    assert down.returncode == 1 and down.stderr.strip().endswith("start the server with `./pgfaces up`"), down.stderr
    for path in [*ROOT.joinpath("tasks").glob("*.py"), *ROOT.joinpath("plpython", "pgfaces").rglob("*.py"),
                 *ROOT.joinpath("sql").rglob("*.sql")]:
        for line in path.read_text().splitlines():
            code = line.split("#")[0] if path.suffix == ".py" else line.split("--")[0]
            assert "`invoke " not in code, f"{path.name}: {line.strip()}"
