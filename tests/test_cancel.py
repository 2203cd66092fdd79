"""Cancel and timeouts reach every PL/Python entry point within half a second, with PostgreSQL's own plain error
(pgfaces.interrupts: checkpoints between the pipeline's stages and faces)."""

from __future__ import annotations

import threading
import time

import cv2
import psycopg
import pytest

from conftest import SHARED_FACES

PARTY = SHARED_FACES / "party" / "parties" / "party_003.jpg"
STORED = SHARED_FACES / "party" / "parties" / "party_004.jpg"
# Seconds into the call when it is cancelled, counted from when the backend starts on it: well within the shortest
# call, a search reference (its largest face is looked for on a 512 px copy first, then embedded from the whole
# picture), which takes 0.2 s of a quiet machine and less of a faster one.
AFTER = 0.05
WITHIN = 0.5  # seconds the cancel may take to be obeyed

ENTRY_POINTS = {
    "insert": "insert into photos (filename, image) values ('big.jpg', %(img)s)",
    "detect_and_embed": "select count(*) from detect_and_embed(%(img)s)",
    "face_embedding": "select face_embedding(%(img)s)",
    "find_photos_like": "select count(*) from find_photos_like(%(img)s, 5)",
    "find_faces_like": "select count(*) from find_faces_like(%(img)s, 5)",
    "remember_face": "select remember_face('big', %(img)s)",
    "reprocess": "select reprocess('mtcnn')",
}


def twenty_megapixels(party) -> bytes:
    """A 20-megapixel JPEG of a party: 0.2 s of work for a search reference, more for every other entry point."""
    if not party.exists():
        pytest.skip(f"the test photos are not here: {party}")
    image = cv2.resize(cv2.imread(str(party)), (5472, 3648), interpolation=cv2.INTER_CUBIC)
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


@pytest.fixture(scope="module")
def big() -> bytes:
    return twenty_megapixels(PARTY)


@pytest.fixture(scope="module")
def url(make_database):
    url = make_database()
    with psycopg.connect(url, autocommit=True) as conn:  # a big photo stored, for reprocess to work on
        conn.execute("insert into photos (filename, image) values ('stored.jpg', %s)", (twenty_megapixels(STORED),))
    return url


def _call(url: str, admin_url: str, sql: str, big: bytes, act) -> tuple[psycopg.Error | None, float]:
    """Runs `sql` and `act(admin, pid)` AFTER seconds after the backend starts on it; returns the error and how long
    after `act` it came (without an error: how long the call took)."""
    acted = []

    def watch(admin, pid):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            row = admin.execute("select state from pg_stat_activity where pid = %s", (pid,)).fetchone()
            if row and row[0] == "active":
                break
            time.sleep(0.002)
        time.sleep(AFTER)
        acted.append(time.monotonic())
        act(admin, pid)

    with psycopg.connect(url, autocommit=True) as conn, psycopg.connect(admin_url, autocommit=True) as admin:
        conn.execute("select count(*) from detect_and_embed(%s)", (big,))  # warm: models loaded in this backend
        pid = conn.execute("select pg_backend_pid()").fetchone()[0]
        watcher = threading.Thread(target=watch, args=(admin, pid), daemon=True)
        started = time.monotonic()
        watcher.start()
        try:
            conn.execute(sql, {"img": big})
            return None, time.monotonic() - started
        except psycopg.Error as e:
            return e, time.monotonic() - acted[0] if acted else 0.0
        finally:
            watcher.join(timeout=35)


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_statement_timeout(url, big, name):
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("select count(*) from detect_and_embed(%s)", (big,))  # warm: models loaded in this backend
        conn.execute(f"set statement_timeout = '{int(AFTER * 1000)}ms'")
        started = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled) as failure:
            conn.execute(ENTRY_POINTS[name], {"img": big})
        late = time.monotonic() - started - AFTER
    assert failure.value.diag.message_primary == "canceling statement due to statement timeout"
    assert "plpy" not in (failure.value.diag.context or "") and "Traceback" not in (failure.value.diag.context or "")
    assert late < WITHIN, f"{name}: the timeout took {late:.2f} s to stop it"


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_cancel_backend(url, admin_url, big, name):
    def cancel(admin, pid):
        admin.execute("select pg_cancel_backend(%s)", (pid,))

    error, late = _call(url, admin_url, ENTRY_POINTS[name], big, cancel)
    assert error is not None, f"{name} finished in {late:.2f} s, before the cancel: use a bigger photo"
    assert isinstance(error, psycopg.errors.QueryCanceled), error
    assert error.diag.message_primary == "canceling statement due to user request"
    assert late < WITHIN, f"{name}: pg_cancel_backend took {late:.2f} s to stop it"


@pytest.mark.parametrize("name", ["insert", "detect_and_embed", "find_photos_like"])
def test_terminate_backend(url, admin_url, big, name):
    def terminate(admin, pid):
        admin.execute("select pg_terminate_backend(%s)", (pid,))

    error, late = _call(url, admin_url, ENTRY_POINTS[name], big, terminate)
    assert isinstance(error, psycopg.OperationalError), error
    assert late < WITHIN, f"{name}: pg_terminate_backend took {late:.2f} s to end the backend"
