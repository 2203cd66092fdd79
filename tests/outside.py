"""Helpers of the tests of originals outside the database (test_originals*.py): a photo library in a folder the
server may read, a database that allows it, and a local HTTP server for URL originals."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import pathlib
import tempfile
import threading
import urllib.parse

import psycopg

from conftest import SHARED_FACES

REAL = SHARED_FACES / "party" / "real"
AMY = [REAL / f"face-api.js__examples__images__amy__amy{i}.png" for i in (1, 2, 3, 4)]
BERNADETTE = REAL / "face-api.js__examples__images__bernadette__bernadette2.png"
UNDEFINED_FILE, CHANGED, REFUSED, BAD_URI = "58P01", "22000", "42501", "22023"


def library() -> pathlib.Path:
    """A fresh folder the server's user can read (pytest's tmp_path is private to the user running the tests)."""
    folder = pathlib.Path(tempfile.mkdtemp(prefix="pgfaces-originals-"))
    folder.chmod(0o755)
    return folder


def put(folder: pathlib.Path, source: pathlib.Path, name: str) -> pathlib.Path:
    """`source`'s picture as a PNG named `name` in `folder`, its bytes its own (a text chunk holds the name): the
    same bytes are stored once, and each test loads photos of its own."""
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("pgfaces-test", name)
    target = folder / name
    Image.open(source).save(target, "PNG", pnginfo=info)
    target.chmod(0o644)
    return target


def allow(admin_url: str, url: str, dirs: str = "", urls: str = "") -> None:
    """ALTER DATABASE ... SET pgfaces.originals_dirs / originals_urls: new connections get them."""
    name = urllib.parse.urlsplit(url).path[1:]
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'alter database "{name}" set pgfaces.originals_dirs = {psycopg.sql.quote(dirs)}')
        admin.execute(f'alter database "{name}" set pgfaces.originals_urls = {psycopg.sql.quote(urls)}')


def warnings_of(conn, sql: str, args=()) -> tuple[list, list[str]]:
    """The statement's rows and the WARNINGs it raised."""
    said: list[str] = []

    def hear(d):
        if d.severity_nonlocalized == "WARNING":
            said.append(d.message_primary)

    conn.add_notice_handler(hear)
    try:
        return conn.execute(sql, args).fetchall(), said
    finally:
        conn.remove_notice_handler(hear)


def jobs(url: str) -> dict[str, tuple[str, str | None]]:
    """Each job's (state, error), by the photo's file name."""
    with psycopg.connect(url) as conn:
        return {r[0]: (r[1], r[2]) for r in conn.execute(
            "select p.filename, q.state, q.error from analysis_queue q join photos p on p.id = q.photo_id")}


@contextlib.contextmanager
def http_folder(folder: pathlib.Path):
    """Serves `folder` on 127.0.0.1 (a free port) in a thread; yields the base URL."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):  # /redirect?URL answers with a redirect there
            if self.path.startswith("/redirect?"):
                self.send_response(302)
                self.send_header("Location", urllib.parse.unquote(self.path.split("?", 1)[1]))
                self.end_headers()
                return
            super().do_GET()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=os.fspath(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
