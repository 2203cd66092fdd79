"""A backend's first call and its memory, for `invoke bench`: a new connection's first detect_and_embed against its
next ones (imports and model loading), the backend's RSS after its models loaded, and its peak (VmHWM) while it
INSERTs a synthetic 50-megapixel JPEG."""

from __future__ import annotations

import time

from .measure import backend_memory
from .speed_photos import PARTY, REFERENCE_PHOTO


def reference_1mp() -> bytes:
    """A party photo resized to about 1 megapixel (1224x816 for 3:2): several faces, the largest is used."""
    import cv2

    image = cv2.imread(str(PARTY / REFERENCE_PHOTO))
    h, w = image.shape[:2]
    scale = (1_000_000 / (h * w)) ** 0.5
    small = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return data.tobytes()


def first_call(url: str, profile: str) -> dict:
    import psycopg

    reference = reference_1mp()
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        connect = time.perf_counter() - started
        conn.execute("select 1")
        before = backend_memory(conn)
        sql = "select count(*) from detect_and_embed(%s, %s)"
        times = []
        for _ in range(3):
            started = time.perf_counter()
            conn.execute(sql, (reference, profile)).fetchone()
            times.append(time.perf_counter() - started)
        after = backend_memory(conn)
    return {"connect_s": connect, "first_s": times[0], "warm_s": min(times[1:]),
            "first_minus_warm_s": times[0] - min(times[1:]), "rss_new_backend_mib": before, "rss_after_models_mib": after}


def synthetic_50mp() -> bytes:
    """An 8660x5774 JPEG: a party photo stretched as background, real faces pasted in at several sizes."""
    import cv2
    import numpy as np

    w, h = 8660, 5774
    rng = np.random.default_rng(50)
    background = cv2.resize(cv2.imread(str(PARTY / "parties/party_002.jpg")), (w, h), interpolation=cv2.INTER_LINEAR)
    noise = rng.integers(-12, 12, size=(h, w, 1), dtype=np.int16)
    image = np.clip(background.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    refs = sorted(p for p in (PARTY / "references").iterdir() if p.suffix in (".jpg", ".png", ".jpeg"))[:6]
    for i, ref in enumerate(refs):
        face = cv2.imread(str(ref))
        side = 600 + 150 * i
        fh, fw = face.shape[:2]
        scale = side / max(fh, fw)
        face = cv2.resize(face, (round(fw * scale), round(fh * scale)))
        x, y = 400 + i * 1300, 800 + (i % 2) * 2200
        image[y:y + face.shape[0], x:x + face.shape[1]] = face[: h - y, : w - x]
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return data.tobytes()


def memory_50mp(url: str, profile: str) -> dict:
    import psycopg

    data = synthetic_50mp()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("select count(*) from detect_and_embed(%s, %s)", (reference_1mp(), profile)).fetchone()
        before = backend_memory(conn)
        started = time.perf_counter()
        conn.execute("insert into photos (filename, image) values ('synthetic-50mp.jpg', %s)", (data,))
        seconds = time.perf_counter() - started
        faces = conn.execute("select count(*) from faces f join photos p on p.id = f.photo_id"
                             " where p.filename = 'synthetic-50mp.jpg'").fetchone()[0]
        after = backend_memory(conn)
        conn.execute("delete from photos where filename = 'synthetic-50mp.jpg'")
    return {"bytes": len(data), "megapixels": 8660 * 5774 / 1e6, "insert_s": seconds, "faces": faces,
            "before_mib": before, "after_mib": after}
