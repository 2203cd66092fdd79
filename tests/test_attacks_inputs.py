"""What decodes bytes, under attack (issue 20): a file declaring more than it holds is refused before any decode
wherever bytes come in (N6); a model hub out of reach fails at once, in every backend (N3); what a library says
reaches the user in plain words, and a client worker prints one line per failed file (N12)."""

from __future__ import annotations

import socket
import time

import psycopg
import pytest

import attack_images as ai
import images as im
from conftest import SHARED_FACES, plain
from queueing import drain

FACE = SHARED_FACES / "party" / "real" / "face-api.js__examples__images__amy__amy1.png"
LIBRARY_WORDS = ("PngImagePlugin", "MAX_TEXT_CHUNK", "decoder error", "LocalEntryNotFoundError", "Error")

AMPLIFIERS = {  # each a few kB at most, declaring 10000x10000 pixels (300 MB decoded)
    "one-row.png": (ai.png_one_row(), "truncated PNG (52 bytes of pixel data cannot hold 10000x10000 pixels)"),
    "tiny-scan.jpg": (im.jpeg_declaring(10000, 10000), "truncated JPEG (75 bytes of image data cannot hold"),
    "one-strip.tif": (ai.tiff_declaring(10000, 10000), "truncated TIFF"),
}


@pytest.fixture(scope="module")
def url(make_database):
    return make_database()


@pytest.fixture
def db(url):
    with psycopg.connect(url, autocommit=True) as conn:
        yield conn


@pytest.mark.parametrize("filename", sorted(AMPLIFIERS))
def test_a_file_declaring_more_than_it_holds_stores_nothing(db, filename):
    data, reason = AMPLIFIERS[filename]
    assert len(data) < 20_000
    with pytest.raises(psycopg.errors.DataException) as failure:
        db.execute("insert into photos (filename, image) values (%s, %s)", (filename, data))
    assert plain(failure.value).startswith(f"{filename}: {reason}")
    assert db.execute("select count(*) from photos where filename = %s", (filename,)).fetchone()[0] == 0


@pytest.mark.parametrize("call", ["select count(*) from find_photos_like(%s, 5)",
                                  "select count(*) from find_faces_like(%s, 5)", "select face_embedding(%s)",
                                  "select remember_face('Amy', %s)", "select count(*) from detect_and_embed(%s)"])
def test_no_search_or_reference_decodes_it(db, call):
    with pytest.raises(psycopg.errors.DataException) as failure:
        db.execute(call, (AMPLIFIERS["one-row.png"][0],))
    assert "truncated PNG" in plain(failure.value)


def test_deferred_photos_are_checked_when_stored(url):
    with psycopg.connect(url, autocommit=True, options="-c pgfaces.analyse=deferred") as conn:
        with pytest.raises(psycopg.errors.DataException) as failure:
            conn.execute("insert into photos (filename, image) values ('late.png', %s)", (ai.png_one_row(),))
    assert "late.png: truncated PNG" in plain(failure.value)


@pytest.mark.parametrize("data, reason", [
    (ai.png_with_text_bomb(), "a compressed text chunk expands to more than 1 MiB"),
    (ai.tiff_damaged("jpeg"), "corrupt TIFF (its image data is damaged)"),
])
def test_library_messages_reach_the_user_in_plain_words(db, data, reason):
    with pytest.raises(psycopg.errors.DataException) as failure:
        db.execute("insert into photos (filename, image) values ('odd', %s)", (data,))
    message = plain(failure.value)
    assert reason in message and not any(word in message for word in LIBRARY_WORDS), message


def test_a_client_worker_prints_one_line_per_bad_photo(url, capfd, caplog):
    """A photo stored before its bytes were checked (an older release) fails in a client worker: one line, no
    traceback, and the next photo is analysed."""
    if not FACE.exists():
        pytest.skip(f"the test photos are not here: {FACE}")
    cut = im.png(im.Image.open(FACE))[:4000]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("set session_replication_role = replica")  # as an older release stored it: no checks
        conn.execute("insert into photos (filename, image, sha256) values ('cut.png', %s, 'cut')", (cut,))
        conn.execute("reset session_replication_role")
        conn.execute("insert into analysis_queue (photo_id, profile) select id, 'mtcnn' from photos"
                     " where filename = 'cut.png'")
        conn.execute("insert into photos (filename, image) values ('amy.png', %s)", (FACE.read_bytes(),))
        conn.execute("insert into analysis_queue (photo_id, profile) select id, 'mtcnn' from photos"
                     " where filename = 'amy.png' on conflict do nothing")
    report = drain(url, in_server=False, max_attempts=1)
    printed = capfd.readouterr()
    assert "Traceback" not in printed.out + printed.err, printed.err
    assert not [r for r in caplog.records if r.exc_info or r.levelname in ("WARNING", "ERROR")], caplog.text
    failed = report.summary().splitlines()[1:]
    assert len(failed) == 1 and failed[0].startswith("  FAILED cut.png: truncated PNG (its pixel data ends at "), failed
    assert report.done == 1


def _hub_reachable() -> bool:
    try:
        socket.create_connection(("huggingface.co", 443), timeout=1).close()
        return True
    except OSError:
        return False


def test_a_profile_whose_model_hub_is_out_of_reach_fails_at_once_in_every_backend(url):
    """The `tutorial` profile's CLIP model comes from the Hugging Face hub, which this server cannot reach: each new
    connection gets the same plain error at once (it used to wait ~25 s for huggingface_hub's retries, deaf to
    statement_timeout and cancel)."""
    if _hub_reachable():
        pytest.skip("the Hugging Face hub is reachable from here")
    if not FACE.exists():
        pytest.skip(f"the test photos are not here: {FACE}")
    for _ in range(3):  # three backends, none of which has the failure cached in its own memory
        with psycopg.connect(url, autocommit=True, options="-c statement_timeout=20s") as conn:
            started = time.monotonic()
            with pytest.raises(psycopg.errors.SystemError) as failure:
                conn.execute("select face_embedding(%s, 'tutorial')", (FACE.read_bytes(),))
            waited = time.monotonic() - started
        message = plain(failure.value)
        assert "not available offline" in message and "embedder_params model_path" in message, message
        assert not any(word in message for word in LIBRARY_WORDS), message
        assert waited < 5, f"the hub's failure took {waited:.1f} s"  # it took 25 s: this is no speed target


def test_the_loader_reads_no_file_over_the_byte_limit(make_database, admin_url, tmp_path, monkeypatch):
    from pgfaces import loader

    url = make_database()
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'alter database "{url.rsplit("/", 1)[1]}" set pgfaces.max_image_bytes = 100000')
    huge = tmp_path / "huge.jpg"
    with huge.open("wb") as f:
        f.truncate(1 << 30)  # a 1 GiB file (sparse): never read, not even to hash it
    monkeypatch.setattr(loader, "sha256_file", lambda path: pytest.fail(f"{path} was read"))
    report = loader.load(url, [str(huge)], progress=False)
    assert report.failed == [(str(huge), "image is 1073741824 bytes, more than the limit of 100000 bytes")]
