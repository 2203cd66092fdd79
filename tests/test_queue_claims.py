"""The queue under attack, round 3 (issue 20): a claim is held by a token only its claimer learns, so no worker ends
another's job (N2); the faces a worker hands over are what the server's analysis would make, or a 22023 naming the
face, and nothing is written (N5)."""

from __future__ import annotations

import psycopg
import pytest

import images as im
from conftest import SHARED_FACES, plain
from queueing import deferred, states

AMY = SHARED_FACES / "party" / "real" / "face-api.js__examples__images__amy__amy1.png"


@pytest.fixture(scope="module")
def url(make_database):
    if not AMY.exists():
        pytest.skip(f"the test photos are not here: {AMY}")
    return make_database()


@pytest.fixture
def job(url):
    """A photo queued for mtcnn (its size and a face's embedding, analysed by the server elsewhere, with it)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("delete from photos")
        embedding = conn.execute("select face_embedding(%s)::text", (AMY.read_bytes(),)).fetchone()[0]
    with deferred(url) as conn:
        photo, width, height = conn.execute("insert into photos (filename, image) values ('amy.png', %s)"
                                            " returning id, width, height", (AMY.read_bytes(),)).fetchone()
    return {"photo": photo, "width": width, "height": height, "embedding": embedding}


def stored(url) -> list[tuple]:
    with psycopg.connect(url) as conn:  # the owner: a worker may not read faces
        return conn.execute("select x, y, width, height from faces order by id").fetchall()


def claim(conn, name: str) -> tuple:
    return conn.execute("select photo_id, profile, attempt, token from pgfaces_claim_job(%s)", (name,)).fetchone()


FINISH = ("select pgfaces_finish_job(%(photo)s, 'mtcnn', %(token)s, %(x)s::int[], %(y)s::int[], %(w)s::int[],"
          " %(h)s::int[], %(score)s::real[],"
          " array[%(embedding)s::vector], %(thumbnail)s::bytea[], %(sharpness)s::real[])")


def face(job, token, **given) -> dict:
    """One face as the server would make it, with `given` in its place."""
    return {"photo": job["photo"], "token": token, "x": [10], "y": [12], "w": [40], "h": [50], "score": ["0.99"],
            "embedding": job["embedding"], "thumbnail": [im.jpeg(im.gradient(96, 96, seed=1))], "sharpness": None,
            **given}


# N2: the holder's name and attempt, which every role reads in analysis_queue, do not end its job.

def test_another_worker_cannot_finish_or_fail_a_job_it_does_not_hold(url, job, login_as):
    holder_url, thief_url = login_as(url, "worker"), login_as(url, "worker")
    with psycopg.connect(holder_url, autocommit=True) as holder, psycopg.connect(thief_url, autocommit=True) as thief:
        photo, profile, attempt, token = claim(holder, "holder")
        assert len(token) >= 32
        seen = thief.execute("select * from analysis_queue where photo_id = %s", (photo,)).fetchone()
        assert token not in {str(v) for v in seen} and token.encode() not in {bytes(v) for v in seen
                                                                              if isinstance(v, (bytes, memoryview))}
        worker, seen_attempt, digest = thief.execute(
            "select worker, attempts, claim_digest from analysis_queue where photo_id = %s", (photo,)).fetchone()
        assert (worker, seen_attempt) == ("holder", attempt)
        for forged in (worker, str(seen_attempt), f"{worker}:{seen_attempt}", bytes(digest).hex(), "", None):
            assert thief.execute(FINISH, face(job, forged, x=[0], y=[0], w=[5], h=[5])).fetchone()[0] == "lost"
            assert thief.execute("select pgfaces_fail_job(%s, %s, %s, 'forged')", (photo, profile, forged)
                                 ).fetchone()[0] == "lost"
        assert states(url) == {"running": 1}
        # the old way of naming a claim (worker, attempt) is gone
        with pytest.raises(psycopg.errors.UndefinedFunction):
            thief.execute("select pgfaces_fail_job(%s, %s, %s, %s, 'forged')", (photo, profile, worker, attempt))
        assert holder.execute(FINISH, face(job, token)).fetchone()[0] == "done"
        assert stored(url) == [(10, 12, 40, 50)]
        assert holder.execute(FINISH, face(job, token)).fetchone()[0] == "lost"  # once only


def test_a_claims_token_runs_its_job_in_the_server_and_no_other(url, job, login_as):
    with psycopg.connect(login_as(url, "worker"), autocommit=True) as conn:
        photo, profile, _, token = claim(conn, "w")
        assert conn.execute("select state from pgfaces_run_job(%s, %s, 'w')", (photo, profile)).fetchone()[0] == "lost"
        assert conn.execute("select state, faces from pgfaces_run_job(%s, %s, %s)", (photo, profile, token)
                            ).fetchone() == ("done", 1)
    assert states(url) == {"done": 1}


# N5: what a worker hands over is checked as the server's analysis would have made it.

@pytest.mark.parametrize("given, message", [
    ({"x": [-5]}, "the box 40x50 at -5,12 is not inside"),
    ({"w": [0]}, "the box 0x50 at 10,12 is not inside"),
    ({"h": [-3]}, "the box 40x-3 at 10,12 is not inside"),
    ({"x": [2000000000], "w": [2000000000]}, "is not inside"),
    ({"y": [None]}, "is not inside"),
    ({"w": ["{width}"]}, "is not inside"),  # one pixel past the right edge
    ({"score": ["NaN"]}, "score: NaN is not a number a face may carry"),
    ({"score": ["Infinity"]}, "score: Infinity is not a number"),
    ({"sharpness": ["-Infinity"]}, "sharpness: -Infinity is not a number"),
    ({"thumbnail": [b"\x89PNG" + bytes(5 * 1024 * 1024)]}, "a thumbnail of 5242884 bytes is more than 65536"),
    ({"thumbnail": [b"<script>alert(1)</script>"]}, "the thumbnail is not a JPEG"),
    ({"embedding": "[" + ",".join(["0"] * 128) + "]"}, "the embedding's length is 0"),
    ({"embedding": "[" + ",".join(["100"] * 128) + "]"}, "the embedding's length is 1131"),
    ({"embedding": "[1,2,3]"}, 'profile "mtcnn" has 128 dimensions, the embedding has 3'),
])
def test_finish_job_refuses_faces_the_server_would_never_make(url, job, login_as, given, message):
    with psycopg.connect(login_as(url, "worker"), autocommit=True) as conn:
        photo, _, _, token = claim(conn, "w")
        if given.get("w") == ["{width}"]:
            given = {"w": [job["width"] - 9]}
        with pytest.raises(psycopg.errors.InvalidParameterValue) as failure:
            conn.execute(FINISH, face(job, token, **given))
        assert plain(failure.value).startswith(f"photo {photo}, face 1: ")
        assert message in plain(failure.value)
        assert stored(url) == []  # nothing written
        assert states(url) == {"running": 1}  # still the worker's: it may fail it or send what is right
        assert conn.execute(FINISH, face(job, token, x=[0], y=[0], w=[job["width"]], h=[job["height"]])
                            ).fetchone()[0] == "done"


def test_a_failure_is_stored_on_one_bounded_line(url, job, login_as):
    with psycopg.connect(login_as(url, "worker"), autocommit=True) as conn:
        photo, profile, _, token = claim(conn, "w")
        assert conn.execute("select pgfaces_fail_job(%s, %s, %s, %s)",
                            (photo, profile, token, "amy.png: broken\n" + "x" * 100000)).fetchone()[0] == "queued"
        error = conn.execute("select error from analysis_queue").fetchone()[0]
        assert error.startswith("amy.png: broken x") and len(error) == 1000 and "\n" not in error
