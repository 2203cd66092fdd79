"""Bad and awkward inputs through INSERT INTO photos and find_photos_like: each one is stored correctly or refused
with "<filename>: <reason>"; never a backend crash, never a partial set of face rows.

The corpus is drawn by tests/images.py; the only real photo used is a small face from ../shared/faces.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import pathlib
from typing import Callable

import psycopg
import pytest
from PIL import Image

import images as im
from conftest import SHARED_FACES

FACE = SHARED_FACES / "party" / "real" / "face-api.js__examples__images__amy__amy1.png"


@dataclasses.dataclass
class Case:
    name: str
    data: bytes | None
    expect: str  # "ok", "error" or "either" (a damaged file that a decoder may still read)
    reason: str = ""  # for errors: a substring of the message after "<filename>: "
    faces: int | Callable[[int], bool] | None = None  # for ok: how many faces, or a predicate on the count
    size: tuple[int, int] | None = None  # for ok: upright width x height
    filename: str = ""

    def __post_init__(self):
        self.filename = self.filename or f"{self.name}.img"


@functools.lru_cache(maxsize=None)
def corpus() -> tuple[Case, ...]:
    if not FACE.exists():
        return ()
    face = Image.open(FACE).convert("RGB")
    face_jpeg = im.jpeg(face)
    face_png = im.png(face)
    face_webp = im.encode(face, "WEBP", quality=85)
    grad = Image.fromarray(im.gradient())
    w, h = face.size
    cases = [
        Case("empty", b"", "error", "empty"),
        Case("null", None, "error", "NULL"),
        Case("random-bytes", bytes(__import__("random").Random(7).randbytes(5000)), "error", "not a supported image"),
        Case("text", im.TEXT, "error", "text"),
        Case("html", im.HTML, "error", "HTML"),
        Case("svg", im.SVG, "error", "SVG", filename="drawing.svg"),
        Case("heic", im.heic_header(), "error", "HEIC images are not supported", filename="IMG_0001.HEIC"),
        Case("png-20000x20000", im.png_declaring(20000, 20000), "error", "20000x20000 = 400000000 pixels, more than the limit"),
        Case("jpeg-20000x20000", im.jpeg_declaring(20000, 20000), "error", "more than the limit of 100000000 pixels"),
        Case("png-bomb-50000x50000", im.png_bomb(), "error", "more than the limit of 100000000 pixels"),
        Case("jpeg-face", face_jpeg, "ok", faces=1, size=(w, h)),
        Case("png-face", face_png, "ok", faces=1, size=(w, h)),
        Case("webp-face", face_webp, "ok", faces=1, size=(w, h)),
        Case("cmyk-jpeg", im.jpeg(face, mode="CMYK"), "ok", faces=1, size=(w, h)),
        Case("greyscale-jpeg", im.jpeg(face, mode="L"), "ok", faces=1, size=(w, h)),
        Case("png-16-bit", im.png16(), "ok", faces=0, size=(64, 48)),
        Case("png-greyscale", im.png(face.convert("L")), "ok", faces=1, size=(w, h)),
        Case("png-rgba", im.png(face.convert("RGBA")), "ok", faces=1, size=(w, h)),
        Case("png-palette", im.png(face.convert("P", palette=Image.Palette.ADAPTIVE)), "ok", faces=lambda n: n <= 1, size=(w, h)),
        Case("gif-animated", im.animated_gif(), "ok", faces=0, size=(64, 48)),
        Case("tiff", im.encode(face, "TIFF"), "ok", faces=1, size=(w, h)),
        Case("bmp", im.encode(face, "BMP"), "ok", faces=1, size=(w, h)),
        Case("1x1", im.png(Image.new("RGB", (1, 1), (200, 10, 10))), "ok", faces=0, size=(1, 1)),
        Case("no-face", im.jpeg(grad), "ok", faces=0, size=(64, 48)),
        Case("gps-out-of-range", im.jpeg(grad, exif=im.gps_exif((200.0, 0.0, 0.0), "N", (500.0, 0.0, 0.0), "Q")), "ok",
             faces=0, size=(64, 48)),
        Case("exif-non-utf8", im.jpeg(face, exif=im.non_utf8_exif()), "ok", faces=1, size=(w, h)),
        Case("quotes and ünïcødé", im.jpeg(face, quality=80), "ok", faces=1,
             filename="it's \"quoted\" -- ; drop table photos; 日本 ünï.jpg"),
        Case("quotes-bad", b"junk" * 10, "error", "not a supported image",
             filename="O'Brien \"bad\" \u00e9t\u00e9 \U0001F600.jpg"),
    ]
    for orientation in range(1, 9):
        cases.append(Case(f"exif-orientation-{orientation}", im.oriented_jpeg(face, orientation), "ok", faces=1, size=(w, h)))
    for label, payload in im.broken_exif_payloads().items():
        cases.append(Case(f"exif-{label}", im.with_app1(face_jpeg, payload), "ok", faces=lambda n: n <= 1, size=None))
    for fmt, data in (("jpeg", face_jpeg), ("png", face_png), ("webp", face_webp)):
        for label, cut in im.truncations(data).items():
            # Two bytes off the end cut only the PNG's IEND checksum: the pixels are whole, so it may be stored.
            cases.append(Case(f"truncated-{fmt}-{label}", cut, "either" if label == "minus-2-bytes" else "error"))
    for label, data in im.corrupt_jpeg_markers(face_jpeg).items():
        cases.append(Case(f"jpeg-marker-{label}", data, "either"))
    crop = im.face_crop(FACE, 0.4)
    cases.append(Case("110-faces", im.face_grid(crop, 11, 10, 150), "ok", faces=lambda n: n >= 100, size=(1650, 1500)))
    return tuple(cases)


NAMES = [c.name for c in corpus()] or ["no-shared-faces"]


@pytest.fixture(scope="module")
def bad_db(make_database, admin_url):
    url = make_database()
    with psycopg.connect(admin_url, autocommit=True) as admin:
        started = admin.execute("select pg_postmaster_start_time()").fetchone()[0]
    yield url
    with psycopg.connect(url, autocommit=True) as conn:
        # No face without its photo, and the server never restarted while the corpus went through.
        assert conn.execute("select count(*) from faces f left join photos p on p.id = f.photo_id"
                            " where p.id is null").fetchone()[0] == 0
        assert conn.execute("select pg_postmaster_start_time()").fetchone()[0] == started


@pytest.fixture(scope="module")
def db(bad_db):
    """One connection for the whole corpus: a backend loads its models once, and it must survive every case."""
    with psycopg.connect(bad_db, autocommit=True) as conn:
        yield conn


def _case(name: str) -> Case:
    if not FACE.exists():
        pytest.skip(f"the test photos are not here: {FACE}")
    return next(c for c in corpus() if c.name == name)


def _check_error(e: psycopg.Error, prefix: str, reason: str) -> None:
    message = e.diag.message_primary or ""
    assert isinstance(e, (psycopg.errors.DataException, psycopg.errors.NotNullViolation)), (type(e), message)
    assert message.startswith(f"{prefix}: "), message
    assert reason in message, message
    assert "Traceback" not in message and "plpy." not in message, message


@pytest.mark.parametrize("name", NAMES)
def test_insert(db, name):
    case = _case(name)
    started = db.execute("select pg_postmaster_start_time()").fetchone()[0]
    try:
        photo = db.execute("insert into photos (filename, image) values (%s, %s) returning id, width, height",
                           (case.filename, case.data)).fetchone()
    except psycopg.Error as e:
        assert case.expect in ("error", "either"), f"{case.name} was refused: {e}"
        _check_error(e, case.filename, case.reason)
        assert db.execute("select count(*) from photos where filename = %s", (case.filename,)).fetchone()[0] == 0
    else:
        assert case.expect in ("ok", "either"), f"{case.name} was stored as photo {photo}"
        photo_id, width, height = photo
        assert width > 0 and height > 0
        if case.size:
            assert (width, height) == case.size
        n = db.execute("select count(*) from faces where photo_id = %s", (photo_id,)).fetchone()[0]
        if callable(case.faces):
            assert case.faces(n), f"{case.name}: {n} faces"
        elif case.faces is not None:
            assert n == case.faces, f"{case.name}: {n} faces"
        row = db.execute("select latitude, longitude, camera from photos where id = %s", (photo_id,)).fetchone()
        assert row[0] is None or -90 <= row[0] <= 90
    assert db.execute("select pg_postmaster_start_time()").fetchone()[0] == started


@pytest.mark.parametrize("name", NAMES)
def test_find_photos_like(db, name):
    case = _case(name)
    try:
        rows = db.execute("select * from find_photos_like(%s, 3)", (case.data,)).fetchall()
    except psycopg.Error as e:
        message = e.diag.message_primary or ""
        assert isinstance(e, psycopg.errors.DataException), (type(e), message)
        assert message.startswith("reference image") or message.startswith("no face found"), message
        assert "Traceback" not in message, message
        if case.expect == "error":
            assert case.reason in message, message
    else:
        assert case.expect in ("ok", "either")
        assert len(rows) <= 3
    assert db.execute("select 1").fetchone() == (1,)


def test_bomb_is_refused_before_decoding_with_bounded_memory(db):
    if not FACE.exists():
        pytest.skip(f"the test photos are not here: {FACE}")
    pid = db.execute("select pg_backend_pid()").fetchone()[0]
    db.execute("select * from detect_and_embed(%s)", (im.jpeg(Image.open(FACE)),)).fetchall()  # models loaded

    def peak_kb() -> int:
        status = pathlib.Path(f"/proc/{pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))

    before = peak_kb()
    for data in (im.png_bomb(), im.png_declaring(20000, 20000), im.jpeg_declaring(65000, 65000)):
        with pytest.raises(psycopg.errors.DataException, match=r"pixels, more than the limit"):
            db.execute("insert into photos (filename, image) values ('bomb.png', %s)", (data,))
    assert peak_kb() - before < 64 * 1024, "the bomb grew the backend's peak memory by more than 64 MB"


def test_limits_refuse_with_clear_errors_and_store_nothing(db):
    if not FACE.exists():
        pytest.skip(f"the test photos are not here: {FACE}")
    face = Image.open(FACE).convert("RGB")
    grid = im.face_grid(im.face_crop(FACE, 0.4), 3, 2, 150)  # 6 faces
    db.execute("set pgfaces.max_faces = 4")
    try:
        _limits(db, face, grid)
    finally:
        for setting in ("max_faces", "max_image_bytes", "max_pixels"):
            db.execute(f"reset pgfaces.{setting}")


def _limits(db, face, grid):
    with pytest.raises(psycopg.errors.DataException, match=r"^grid\.jpg: photo has \d+ faces, more than the limit of 4 faces"):
        db.execute("insert into photos (filename, image) values ('grid.jpg', %s)", (grid,))
    db.execute("reset pgfaces.max_faces")
    db.execute("set pgfaces.max_image_bytes = 1000")
    with pytest.raises(psycopg.errors.DataException, match=r"^big\.png: image is \d+ bytes, more than the limit of 1000 bytes"):
        db.execute("insert into photos (filename, image) values ('big.png', %s)", (im.png(Image.fromarray(im.gradient(200, 200, seed=5))),))
    db.execute("reset pgfaces.max_image_bytes")
    db.execute("set pgfaces.max_pixels = 10000")
    with pytest.raises(psycopg.errors.DataException, match=r"^wide\.png: image is 150x150 = 22500 pixels, more than the limit of 10000"):
        db.execute("insert into photos (filename, image) values ('wide.png', %s)", (im.png(face, compress_level=1),))
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=r'invalid value for parameter "pgfaces.max_pixels": "lots"'):
        db.execute("set pgfaces.max_pixels = 'lots'")
    db.execute("reset pgfaces.max_pixels")
    assert db.execute("select count(*) from photos where filename in ('grid.jpg', 'big.png', 'wide.png')").fetchone()[0] == 0
    # Once the limit allows it, the same grid goes in whole.
    db.execute("insert into photos (filename, image) values ('grid.jpg', %s)", (grid,))
    assert db.execute("select count(*) from faces f join photos p on p.id = f.photo_id where p.filename = 'grid.jpg'").fetchone()[0] == 6
    for n in (0, -1, 10001, None):
        with pytest.raises(psycopg.errors.InvalidParameterValue, match=r"n must be between 1 and 10000"):
            db.execute("select * from find_photos_like(%s, %s)", (im.jpeg(face), n))


# --- fuzzing: mutated real photos through detect_and_embed -------------------------------------------------------------

FUZZ_SEEDS = [FACE, SHARED_FACES / "party" / "real" / "face-api.js__examples__images__sheldon__sheldon4.png"]
FUZZ_EXAMPLES = int(os.environ.get("PGFACES_FUZZ_EXAMPLES", "25"))


@functools.lru_cache(maxsize=None)
def fuzz_seeds() -> tuple[bytes, ...]:
    out = []
    for path in FUZZ_SEEDS:
        if path.exists():
            face = Image.open(path).convert("RGB")
            out += [path.read_bytes(), im.jpeg(face), im.encode(face, "WEBP", quality=80)]
    return tuple(out)


def _mutate(data: bytes, edits) -> bytes:
    buf = bytearray(data)
    for kind, where, value in edits:
        if not buf:
            break
        i = where % len(buf)
        if kind == "flip":
            buf[i] ^= 1 << (value % 8)
        elif kind == "set":
            buf[i] = value % 256
        elif kind == "marker":
            buf[i:i + 2] = bytes([0xFF, value % 256])
        elif kind == "insert":
            buf[i:i] = bytes([value % 256]) * (1 + value % 64)
        elif kind == "delete":
            del buf[i:i + 1 + value % 512]
        elif kind == "truncate":
            del buf[max(1, i):]
        elif kind == "length":  # a 16/32-bit big-endian field set to an extreme
            buf[i:i + 4] = (b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff", b"\x00\x00\xff\xff")[value % 4]
    return bytes(buf)


def test_fuzz_detect_and_embed(db):
    from hypothesis import HealthCheck, given, settings, strategies as st

    seeds = fuzz_seeds()
    if not seeds:
        pytest.skip("the test photos are not here")
    started = db.execute("select pg_postmaster_start_time()").fetchone()[0]
    edit = st.tuples(st.sampled_from(["flip", "set", "marker", "insert", "delete", "truncate", "length"]),
                     st.integers(0, 1 << 20), st.integers(0, 255))
    outcomes = {"ok": 0, "refused": 0}

    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=FUZZ_EXAMPLES <= 25,
              suppress_health_check=list(HealthCheck), database=None)
    @given(seed=st.integers(0, len(seeds) - 1), edits=st.lists(edit, min_size=1, max_size=8))
    def run(seed, edits):
        data = _mutate(seeds[seed], edits)
        try:
            db.execute("select count(*) from detect_and_embed(%s)", (data,)).fetchone()
            outcomes["ok"] += 1
        except psycopg.errors.DataException as e:
            assert (e.diag.message_primary or "").startswith("image: "), e.diag.message_primary
            outcomes["refused"] += 1

    run()
    assert db.execute("select pg_postmaster_start_time()").fetchone()[0] == started
    assert sum(outcomes.values()) > 0
