"""Originals outside the database (README, "Originals outside the database"): a photo row that holds a uri instead
of its bytes. The one place that turns a row into image bytes: the INSERT trigger, `reprocess` and the in-server
worker (pgfaces.server) and the client workers (pgfaces.client.worker) all call `read`.

What may be read is the administrator's to say, in superuser-only settings that pgfaces_originals() reads:
pgfaces.originals_dirs (folders whose files a uri may name; symbolic links resolved, checked again on the file
actually opened) and pgfaces.originals_urls (URL prefixes, fetched by client workers only: the server never opens a
connection for a photo). The server's data and configuration folders are refused whatever the settings say.
A file read again is checked against the sha256 stored when it was loaded: a changed original is an error, never a
silent new analysis.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import posixpath
import stat
import urllib.error
import urllib.parse
import urllib.request

from . import imaging
from .errors import (ImageError, LimitError, NeedsClientWorker, OriginalChanged, OriginalError, OriginalMissing,
                     OriginalRefused, UriError)
from .records import Limits

MAX_URI = 4096  # PATH_MAX; longer is not a file name
URL_SCHEMES = ("http", "https", "s3")
# The preview kept in the row: what a contact sheet draws (320 px), as WebP, which is 40% smaller than a JPEG of the
# same size and look. 4.0 kB per party photo; a 512 px JPEG took 12.9 kB, which alone is 3.5% of the bytes per
# photo with the originals inside (`./pgfaces bench-storage`, README "Originals outside the database").
PREVIEW_SIDE = 320
PREVIEW_QUALITY = 60
FETCH_TIMEOUT = 60  # seconds a client worker waits for a URL


@dataclasses.dataclass(frozen=True)
class Access:
    """What this session may read: pgfaces_originals() and the byte limit."""

    dirs: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()
    forbidden: tuple[str, ...] = ()
    max_bytes: int = Limits().max_bytes


ACCESS_SQL = "select dirs, urls, forbidden from pgfaces_originals()"


def access(row, limits: Limits) -> Access:
    """Access from pgfaces_originals()'s row (dirs, urls, forbidden) and the session's limits."""
    dirs, urls, forbidden = row
    return Access(tuple(dirs or ()), tuple(urls or ()), tuple(forbidden or ()), limits.max_bytes)


@dataclasses.dataclass(frozen=True)
class Location:
    uri: str  # canonical: an absolute path, or the URL as given
    is_url: bool


def parse(uri: str | None) -> Location:
    """The uri's canonical form: file:// URIs become their absolute path; URLs are checked for what would let a
    prefix match mean something else (user names, dot segments, backslashes)."""
    if uri is None or not uri.strip():
        raise UriError("uri is empty")
    if len(uri) > MAX_URI:
        raise UriError(f"uri is {len(uri)} characters, more than {MAX_URI}")
    if any(ord(c) < 32 or ord(c) == 127 for c in uri):
        raise UriError(f"{uri!r}: a uri may not hold control characters")
    if uri.startswith("/"):
        return Location(uri, False)
    parts = urllib.parse.urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
            raise UriError(f"{uri}: a file:// uri names a file of this machine (file:///folder/photo.jpg)")
        path = urllib.parse.unquote(parts.path)
        if not path.startswith("/") or "\x00" in path:
            raise UriError(f"{uri}: not an absolute path")
        return Location(path, False)
    if scheme not in URL_SCHEMES:
        raise UriError(f"{uri}: not an absolute path, file://, http://, https:// or s3:// uri")
    if not parts.hostname or "@" in parts.netloc or "\\" in uri:
        raise UriError(f"{uri}: a URL needs a host, and no user name or backslash")
    if any(segment in (".", "..") for segment in urllib.parse.unquote(parts.path).split("/")):
        raise UriError(f"{uri}: a URL may not hold . or .. segments")
    return Location(uri, True)


def _within(path: str, folder: str) -> bool:
    folder = folder.rstrip("/") or "/"
    return path == folder or path.startswith(folder if folder == "/" else folder + "/")


def _url_allowed(url: str, prefixes: tuple[str, ...]) -> bool:
    def norm(u: str) -> str:
        p = urllib.parse.urlsplit(u)
        return urllib.parse.urlunsplit((p.scheme.lower(), p.netloc.lower(), p.path, p.query, ""))

    url = norm(url)
    return any(url == p or url.startswith(p if p.endswith("/") else p + "/") for p in map(norm, prefixes))


def check(location: Location, acc: Access) -> None:
    """Refuses a uri outside what the administrator allows; nothing is opened here."""
    if location.is_url:
        if not _url_allowed(location.uri, acc.urls):
            raise OriginalRefused(f"{location.uri}: not under a URL prefix the administrator allows "
                                  f"(pgfaces.originals_urls: {', '.join(acc.urls) or 'none'})")
        return
    _check_path(location.uri, os.path.realpath(location.uri), acc)


def _check_path(given: str, real: str, acc: Access) -> None:
    if any(_within(real, os.path.realpath(f)) for f in acc.forbidden):
        raise OriginalRefused(f"{given}: in the database server's own folders, which are never read")
    if not any(_within(real, os.path.realpath(d)) for d in acc.dirs):
        raise OriginalRefused(f"{given}: outside the folders the administrator allows "
                              f"(pgfaces.originals_dirs: {', '.join(acc.dirs) or 'none'})")


def _read_path(path: str, acc: Access) -> bytes:
    _check_path(path, os.path.realpath(path), acc)
    try:
        # Non-blocking: a FIFO put in an allowed folder does not hang the backend; no controlling terminal.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise OriginalMissing(f"{path}: the original is missing (no such file)") from None
    except OSError as e:
        raise OriginalError(f"{path}: the original cannot be read ({e.strerror or e})") from None
    try:
        # The file actually opened, in case a folder on the way was swapped for a symbolic link since the check.
        opened = f"/proc/self/fd/{fd}"
        if os.path.exists(opened):
            _check_path(path, os.readlink(opened), acc)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OriginalError(f"{path}: not a regular file")
        if info.st_size > acc.max_bytes:
            raise LimitError(f"{path}: image is {info.st_size} bytes, more than the limit of {acc.max_bytes} bytes")
        chunks, size = [], 0
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            size += len(chunk)
            if size > acc.max_bytes:
                raise LimitError(f"{path}: image is more than the limit of {acc.max_bytes} bytes")
        return b"".join(chunks)
    except OSError as e:
        raise OriginalError(f"{path}: the original cannot be read ({e.strerror or e})") from None
    finally:
        os.close(fd)


def _fetch(url: str, acc: Access) -> bytes:
    """A URL's bytes, for client workers; every redirect is held to the allowed prefixes too."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() == "s3":
        return _fetch_s3(url, parts, acc)

    class Redirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req, fp, code, msg, headers, newurl):
            target = urllib.parse.urljoin(req.full_url, newurl)
            try:
                allowed = urllib.parse.urlsplit(target).scheme.lower() in ("http", "https")
                if allowed:
                    check(parse(target), acc)
            except (OriginalRefused, UriError):
                allowed = False
            if not allowed:
                raise OriginalRefused(f"{url}: redirected to {target}, outside the URL prefixes the administrator "
                                      f"allows (pgfaces.originals_urls: {', '.join(acc.urls) or 'none'})")
            return super().redirect_request(req, fp, code, msg, headers, newurl)

    opener = urllib.request.build_opener(Redirects)
    try:
        with opener.open(urllib.request.Request(url, headers={"User-Agent": "pgfaces"}), timeout=FETCH_TIMEOUT) as r:
            length = r.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > acc.max_bytes:
                raise LimitError(f"{url}: image is {length} bytes, more than the limit of {acc.max_bytes} bytes")
            data = r.read(acc.max_bytes + 1)
    except urllib.error.HTTPError as e:
        if e.code in (404, 410):
            raise OriginalMissing(f"{url}: the original is missing (HTTP {e.code})") from None
        raise OriginalError(f"{url}: the original cannot be fetched (HTTP {e.code} {e.reason})") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        raise OriginalError(f"{url}: the original cannot be fetched ({' '.join(str(reason).split())})") from None
    if len(data) > acc.max_bytes:
        raise LimitError(f"{url}: image is more than the limit of {acc.max_bytes} bytes")
    return data


def _fetch_s3(url: str, parts, acc: Access) -> bytes:
    try:
        import boto3  # the worker's AWS credentials and region, as the AWS tools read them
    except ImportError:
        raise OriginalError(f"{url}: s3:// originals need boto3 in the worker's environment (pip install boto3)") \
            from None
    try:
        body = boto3.client("s3").get_object(Bucket=parts.hostname, Key=urllib.parse.unquote(parts.path[1:]))["Body"]
        data = body.read(acc.max_bytes + 1)
    except Exception as e:  # noqa: BLE001 - botocore's errors: one line that names the object
        code = getattr(e, "response", {}).get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "404"):
            raise OriginalMissing(f"{url}: the original is missing (no such key)") from None
        raise OriginalError(f"{url}: the original cannot be fetched ({' '.join(str(e).split())})") from None
    if len(data) > acc.max_bytes:
        raise LimitError(f"{url}: image is more than the limit of {acc.max_bytes} bytes")
    return data


def read(image, uri: str | None, sha256: str | None, acc: Access, fetch_urls: bool) -> bytes:
    """A stored photo's bytes: its `image`, else its original at `uri`, checked against the `sha256` stored with it.
    fetch_urls: whether this process fetches URLs (client workers do; the server never does)."""
    if image is not None:
        return bytes(image)
    location = parse(uri)
    if location.is_url and not fetch_urls:
        raise NeedsClientWorker(f"{location.uri}: a URL original is fetched by client workers only "
                                "(python -m pgfaces.client work), never by the server")
    check(location, acc)
    data = _fetch(location.uri, acc) if location.is_url else _read_path(location.uri, acc)
    if not data:
        raise ImageError(f"{location.uri}: the original is empty (0 bytes)")
    if sha256 is not None:
        digest = hashlib.sha256(data).hexdigest()
        if digest != sha256:
            raise OriginalChanged(f"{location.uri}: the original changed since it was loaded (sha256 {digest[:16]}..., "
                                  f"stored {sha256[:16]}...): its faces are kept; delete the photo and load the file "
                                  "again to analyse the new one")
    fmt = imaging.sniff_format(data)
    if fmt not in imaging.DECODABLE:  # said without the file's first bytes: it may be anything the folder holds
        raise ImageError(f"{location.uri}: not a supported image ({fmt})")
    return data


def is_preview(data: bytes) -> bool:
    return data[:4] == b"RIFF" and data[8:12] == b"WEBP"


def preview(data: bytes, limits: Limits = Limits()) -> bytes:
    """A small upright WebP of the picture (at most PREVIEW_SIDE px), kept in the row for contact sheets."""
    import cv2

    _, width, height = imaging.read_header(data, limits)
    reduce = max([f for f in imaging.REDUCE_FACTORS if max(width, height) // f >= PREVIEW_SIDE] or [1])
    picture, _ = imaging.shrink_to(imaging.decode_upright(data, limits, reduce=reduce), PREVIEW_SIDE)
    ok, webp = cv2.imencode(".webp", picture, [cv2.IMWRITE_WEBP_QUALITY, PREVIEW_QUALITY])
    if not ok:
        raise ImageError("the preview could not be written")
    return webp.tobytes()


# A client worker's description of a URL original it fetched first (sql/idempotent/006-originals.sql).
FETCHED = "select pgfaces_original_fetched(%s, %s, %s, %s::jsonb, %s, %s)"


def fetched_args(job: tuple, data: bytes, result, limits: Limits) -> tuple:
    """FETCHED's arguments: the job (photo_id, profile, the claim's token), then the photo's row, size and preview."""
    import json

    return (*job, json.dumps(result.photo.values()), len(data), preview(data, limits))


def file_uri(path) -> str:
    """The uri a folder load stores for a file: its absolute path (symbolic links kept: the server resolves them)."""
    return posixpath.normpath(os.path.abspath(os.fspath(path)))
