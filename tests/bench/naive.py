"""The talk's way done naively: a plain client loop that `invoke bench` measures pgfaces against.

Each process opens the whole picture with cv2.imread (OpenCV's own EXIF orientation), looks for faces with the Haar
cascade on its greyscale (haarcascade_frontalface_default.xml, scaleFactor 1.1, minNeighbors 5, minSize 30x30),
and for each box finds dlib's 5 landmarks and computes the 128-d descriptor with the dlib-bin wheel's
face_recognition_model_v1, face by face on the whole RGB picture, as face_recognition's face_encodings() does. It
writes the photo's row (its bytes) and its faces' rows (box and vector) over its own connection, one transaction per
photo, into plain tables with no trigger (naive_photos, naive_faces in the database it is given).

  naive.py DSN PROCESSES FILE...    prints one JSON object: photos/s, faces/s, faces found, CPU seconds

Models are loaded and every connection made before the clock starts (the steady state, as for the bare loop):
what it costs a new user to start the program is left out, in the naive loop's favour.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import sys
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

TABLES = """
create extension if not exists vector;
create table if not exists naive_photos (id bigserial primary key, filename text not null, image bytea not null);
create table if not exists naive_faces (
    id bigserial primary key,
    photo_id bigint not null references naive_photos (id) on delete cascade,
    x int not null, y int not null, width int not null, height int not null,
    embedding vector(128) not null
);
"""

_state: dict = {}


def _init(dsn: str) -> None:
    import cv2
    import dlib
    import face_recognition_models
    import psycopg

    cv2.setNumThreads(1)
    cascade = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml"))
    _state.update(
        cascade=cascade,
        shapes=dlib.shape_predictor(face_recognition_models.pose_predictor_five_point_model_location()),
        encoder=dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location()),
        conn=psycopg.connect(dsn, autocommit=True),
    )


def encode(path: str) -> list[tuple[tuple[int, int, int, int], list[float]]] | None:
    """The boxes and descriptors of one photo; None where cv2.imread cannot read it."""
    import cv2
    import dlib

    image = cv2.imread(path)
    if image is None:
        return None
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    boxes = _state["cascade"].detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(30, 30))
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    faces = []
    for x, y, w, h in boxes:
        rect = dlib.rectangle(int(x), int(y), int(x + w), int(y + h))
        shape = _state["shapes"](rgb, rect)
        # face_recognition's face_encodings() passes num_jitters=1, which dlib treats as no jitter.
        descriptor = _state["encoder"].compute_face_descriptor(rgb, shape, 1)
        faces.append(((int(x), int(y), int(w), int(h)), list(descriptor)))
    return faces


def write(path: str, faces) -> None:
    conn = _state["conn"]
    with open(path, "rb") as f:
        data = f.read()
    with conn.transaction():
        photo_id = conn.execute("insert into naive_photos (filename, image) values (%s, %s) returning id",
                                (path, data)).fetchone()[0]
        for (x, y, w, h), vector in faces:
            conn.execute("insert into naive_faces (photo_id, x, y, width, height, embedding)"
                         " values (%s, %s, %s, %s, %s, %s::vector)",
                         (photo_id, x, y, w, h, "[" + ",".join(repr(v) for v in vector) + "]"))


def one(path: str) -> int | None:
    faces = encode(path)
    if faces is None:
        return None
    write(path, faces)
    return len(faces)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


_barrier = None  # made before the pool forks: each worker waits at it once per call, so each takes one call


def _cpu_when_all_ready(warm_path: str | None) -> float:
    """This worker's CPU seconds, after running the models once (not written) when warm_path is given."""
    if warm_path:
        encode(warm_path)
    _barrier.wait()
    return _cpu_seconds()


def run(dsn: str, processes: int, files: list[str]) -> dict:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(TABLES)
        conn.execute("truncate naive_photos, naive_faces")
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(processes, initializer=_init, initargs=(dsn,)) as pool:
        cpu_before = sum(pool.map(_cpu_when_all_ready, [files[0]] * processes, chunksize=1))
        started = time.perf_counter()
        found = list(pool.imap_unordered(one, files, chunksize=1))
        seconds = time.perf_counter() - started
        cpu_after = sum(pool.map(_cpu_when_all_ready, [None] * processes, chunksize=1))
    read = [n for n in found if n is not None]
    photos, faces = len(read), sum(read)
    return {"processes": processes, "photos": photos, "unreadable": len(files) - photos, "faces": faces,
            "seconds": seconds, "photos_per_s": photos / seconds, "faces_per_s": faces / seconds,
            "client_cpu_s_per_photo": (cpu_after - cpu_before) / photos}


def main(argv: list[str]) -> None:
    global _barrier
    dsn, processes, files = argv[0], int(argv[1]), argv[2:]
    _barrier = multiprocessing.get_context("fork").Barrier(processes)
    print(json.dumps(run(dsn, processes, files)))


if __name__ == "__main__":
    main(sys.argv[1:])
