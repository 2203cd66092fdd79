"""Shards (README, "Shards"): `./pgfaces up --shards 2` starts an entry node and two shard clusters; the party
benchmark (most of it) loaded through the entry lands one photo per shard with its faces, the same bytes are refused again
whatever the shard, and every search answers on the entry with the rows one node holding every photo gives.
A shard stopped: a one-line error naming it, and nothing of the transaction written anywhere.

The sharded setup is the test's own, in a temporary folder on free ports (never the developers' clusters), made and
stopped with ./pgfaces itself; the single node is the test session's database.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import urllib.parse

import psycopg
import pytest

from conftest import ROOT, plain
from pgfaces import loader

# The party benchmark's small photos and a third of its parties (the whole of it takes twice as long to load twice)
FOLDERS = ["party/real", "party/negatives", *(f"party/parties/party_{i:03d}.jpg" for i in range(0, 40, 3))]
REFERENCES = ["biden.jpg", "obama.jpg", "amy.png", "leonard.png", "kit_harington.jpeg"]
CROWD = "party/parties/party_001.jpg"


def free_ports(count: int) -> int:
    """The first of `count` consecutive ports free on 127.0.0.1."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + count < 65536 and all(_free(base + i) for i in range(count)):
            return base
    raise RuntimeError("no free ports")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


@pytest.fixture(scope="module")
def setup(shared_faces, make_database):
    base = tempfile.mkdtemp(prefix="pgfaces-shards-test-", dir="/tmp")
    os.chmod(base, 0o755)  # the server's user must reach its data
    ports = free_ports(3)
    env = {**os.environ, "PGFACES_HOME": os.path.join(base, "entry"), "PGFACES_PORT": str(ports)}

    def pgfaces(*args: str) -> str:
        done = subprocess.run(["./pgfaces", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"./pgfaces {' '.join(args)}:\n{done.stderr[-3000:]}"
        return done.stdout.strip().splitlines()[-1]

    try:
        # the README's command, the shards on the two ports after the entry's
        entry = pgfaces("up", "--shards", "2")
        single = make_database()
        paths = [str(shared_faces / f) for f in FOLDERS]
        for url in (entry, single):
            report = loader.load(url, paths, workers=2, progress=False)
            assert report.loaded > 90 and not report.failed, report.summary()
        yield {"entry": entry, "single": single, "pgfaces": pgfaces, "env": env,
               "shards": [entry.replace(f":{ports}/", f":{ports + k}/") for k in (1, 2)]}
    finally:
        if os.path.exists(os.path.join(base, "entry", "data", "PG_VERSION")):
            subprocess.run(["./pgfaces", "down"], cwd=ROOT, env=env, capture_output=True, timeout=300)
        shutil.rmtree(base, ignore_errors=True)


def _rows(url: str, sql: str, args=()) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql, args).fetchall()


def _shard_url(setup, k: int) -> str:
    """Shard k's own database (its superuser's password is its own: read it from its folder)."""
    home = os.path.join(setup["env"]["PGFACES_HOME"], "shards", str(k))
    password = open(os.path.join(home, "superuser-password")).read().strip()
    port = int(setup["shards"][k - 1].rsplit(":", 1)[1].split("/")[0])
    return f"postgresql://postgres:{password}@127.0.0.1:{port}/pgfaces"


def test_photos_live_with_their_faces_one_shard_each(setup):
    per_shard = [_rows(_shard_url(setup, k), "select id, sha256 from photos") for k in (1, 2)]
    assert all(len(rows) > 20 for rows in per_shard), [len(r) for r in per_shard]  # both shards hold photos
    for k, rows in enumerate(per_shard, 1):
        assert all(k * 10**12 <= i < (k + 1) * 10**12 for i, _ in rows)  # the shard's id range
        # every face is of a photo of its own shard
        assert _rows(_shard_url(setup, k), "select count(*) from faces f where not exists "
                                           "(select from photos p where p.id = f.photo_id)") == [(0,)]
    single = _rows(setup["single"], "select sha256, (select count(*) from faces f where f.photo_id = p.id) "
                                    "from photos p order by 1")
    entry = _rows(setup["entry"], "select sha256, (select count(*) from faces f where f.photo_id = p.id) "
                                  "from photos p order by 1")
    assert entry == single  # the same photos, each with the same number of faces, and each once
    assert {s for rows in per_shard for _, s in rows} == {s for s, _ in single}


def test_the_same_bytes_are_refused_on_any_shard(setup, shared_faces):
    data = (shared_faces / "party" / "parties" / "party_000.jpg").read_bytes()  # loaded
    with psycopg.connect(setup["entry"], autocommit=True) as conn:
        with pytest.raises(psycopg.errors.UniqueViolation) as e:
            conn.execute("insert into photos (filename, image) values ('again.jpg', %s)", (data,))
        assert "photos_sha256_key" in plain(e.value)
        assert conn.execute("insert into photos (filename, image) values ('again.jpg', %s) on conflict do nothing "
                            "returning id", (data,)).fetchall() == []
        assert conn.execute("select count(*) from photos where filename = 'again.jpg'").fetchone() == (0,)


def test_every_search_answers_as_one_node(setup, shared_faces):
    refs = {name: (shared_faces / "party" / "references" / name).read_bytes() for name in REFERENCES}
    crowd = (shared_faces / CROWD).read_bytes()
    for url in (setup["entry"], setup["single"]):
        for name in ("biden", "obama"):
            _rows(url, "select remember_face(%s, %s)", (name, refs[name + ".jpg"]))
    # ids differ between the two setups (each shard numbers its own): compare what they point at
    photo = "(select filename from photos where id = r.photo_id)"
    queries = [(f"select {photo}, r.distance from find_photos_like(%s, 10) r", (refs[name],)) for name in REFERENCES]
    queries += [
        (f"select {photo}, r.distance from find_photos_like(%s, 50, max_distance => 'auto') r", (refs["amy.png"],)),
        (f"select {photo}, r.x, r.y, r.width, r.height, r.distance from find_faces_like(%s, 20) r", (crowd,)),
        (f"select {photo}, r.distance from find_photos_near(face_embedding(%s), 15) r", (refs["leonard.png"],)),
        (f"select {photo}, r.distance from find_faces_near(face_embedding(%s), 15) r", (crowd,)),
        (f"select {photo}, r.distance from find_photos_of('biden', 10) r", ()),
        (f"select {photo}, r.distance from find_photos_of('obama', 5, max_distance => 0.6) r", ()),
        (f"select {photo}, r.distance from find_photos_with(array['biden', 'obama'], 10) r", ()),
    ]
    for sql, args in queries:
        on_shards, on_one = _rows(setup["entry"], sql, args), _rows(setup["single"], sql, args)
        assert on_shards == on_one, sql
        assert on_one, sql
    # the entry's results join with the photos' metadata like any table
    joined = _rows(setup["entry"], "select p.filename, p.width, p.sha256 from find_photos_like(%s, 3) r "
                                   "join photos p on p.id = r.photo_id order by r.distance", (refs["biden.jpg"],))
    assert len(joined) == 3 and all(w > 0 for _, w, _ in joined)


def _one_photo_per_shard(setup, shared_faces) -> list[bytes]:
    """Two pictures the entry holds not yet, the first going to shard 1, the second to shard 2."""
    known = {s for (s,) in _rows(setup["entry"], "select sha256 from photos")}
    chosen = {}
    for path in sorted((shared_faces / "party" / "references").iterdir()):
        data = path.read_bytes()
        shard, digest = _rows(setup["entry"], "select sharded.shard_of(%s, 2), encode(sha256(%s), 'hex')",
                              (data, data))[0]
        if digest not in known:
            chosen.setdefault(shard, data)
    return [chosen[1], chosen[2]]


def test_roles_on_the_entry(setup, shared_faces):
    ref = (shared_faces / "party" / "references" / "biden.jpg").read_bytes()
    with psycopg.connect(setup["entry"], autocommit=True) as conn:
        for role in ("reader", "writer"):
            conn.execute(f"create role pgfaces_test_shard_{role} login password '{role}-pw' in role pgfaces_{role}")
    parts = urllib.parse.urlsplit(setup["entry"])
    reader, writer = (parts._replace(netloc=f"pgfaces_test_shard_{r}:{r}-pw@{parts.hostname}:{parts.port}").geturl()
                      for r in ("reader", "writer"))
    try:
        with psycopg.connect(reader, autocommit=True) as conn:
            assert len(conn.execute("select * from find_photos_like(%s, 3)", (ref,)).fetchall()) == 3
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("insert into photos (filename, image) values ('x.jpg', %s)", (ref,))
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("select srvoptions from pg_foreign_server, pg_user_mapping "
                             "where umserver = pg_foreign_server.oid")
        with psycopg.connect(writer) as conn:  # rolled back: the other tests count the photos
            row = conn.execute("insert into photos (filename, image) values ('w.jpg', %s) returning id, sha256",
                               (_one_photo_per_shard(setup, shared_faces)[1],)).fetchone()
            assert 2 * 10**12 <= row[0] < 3 * 10**12 and len(row[1]) == 64  # on shard 2, as the shard wrote it
            with pytest.raises((psycopg.errors.InsufficientPrivilege, psycopg.errors.GeneratedAlways)):
                conn.execute("insert into photos (filename, image, sha256) values ('w2.jpg', %s, 'forged')", (ref,))
            conn.rollback()
    finally:
        with psycopg.connect(setup["entry"], autocommit=True) as conn:
            conn.execute("drop role pgfaces_test_shard_reader, pgfaces_test_shard_writer")


def test_a_stopped_shard_is_named_and_nothing_is_written_half(setup, shared_faces):
    ref = (shared_faces / "party" / "references" / "obama.jpg").read_bytes()
    data = _one_photo_per_shard(setup, shared_faces)
    counts = [_rows(_shard_url(setup, k), "select count(*) from photos")[0][0] for k in (1, 2)]
    home2 = os.path.join(setup["env"]["PGFACES_HOME"], "shards", "2")
    try:
        with psycopg.connect(setup["entry"]) as conn:  # one transaction: a write on shard 1, then shard 2 stops
            conn.execute("set statement_timeout = '20s'")
            conn.execute("insert into photos (filename, image) values ('new-1.png', %s), ('new-2.png', %s)", data)
            assert conn.execute("select count(*) from find_photos_like(%s, 5)", (ref,)).fetchone() == (5,)
            subprocess.run(["./pgfaces", "down"], cwd=ROOT, env={**setup["env"], "PGFACES_HOME": home2,
                           "PGFACES_PORT": setup["shards"][1].rsplit(":", 1)[1].split("/")[0]},
                           capture_output=True, check=True, timeout=120)
            with pytest.raises(psycopg.OperationalError) as e:
                conn.execute("select * from find_photos_like(%s, 5)", (ref,))
            message = plain(e.value, ("08",))
            assert message.startswith("shard 2 (127.0.0.1:") and "did not answer" in message, message
            conn.rollback()
            # a search on a new connection: the same line, at once
            with psycopg.connect(setup["entry"], autocommit=True) as other:
                with pytest.raises(psycopg.OperationalError) as e:
                    other.execute("select * from find_faces_like(%s, 5)", (ref,))
                assert plain(e.value, ("08",)).startswith("shard 2 ")
        # the transaction's photo on shard 1 went with it
        assert _rows(_shard_url(setup, 1), "select count(*) from photos")[0][0] == counts[0]
    finally:
        setup["pgfaces"]("up", "--shards", "2")
    assert [_rows(_shard_url(setup, k), "select count(*) from photos")[0][0] for k in (1, 2)] == counts
    assert len(_rows(setup["entry"], "select * from find_photos_like(%s, 5)", (ref,))) == 5
