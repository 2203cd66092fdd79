"""pgfaces.originals without a database: which uris are refused before anything is opened, and how far a folder or
a URL prefix reaches."""

from __future__ import annotations

import pytest

from pgfaces import originals
from pgfaces.errors import OriginalRefused, UriError


@pytest.mark.parametrize("uri, canonical, is_url", [
    ("/photos/a.jpg", "/photos/a.jpg", False),
    ("file:///photos/a%20b.jpg", "/photos/a b.jpg", False),
    ("file://localhost/photos/a.jpg", "/photos/a.jpg", False),
    ("https://photos.example.com/p/a.jpg?sig=1", "https://photos.example.com/p/a.jpg?sig=1", True),
    ("s3://bucket/key/a.jpg", "s3://bucket/key/a.jpg", True),
])
def test_uris_are_made_canonical(uri, canonical, is_url):
    assert originals.parse(uri) == originals.Location(canonical, is_url)


@pytest.mark.parametrize("uri", [None, " ", "a.jpg", "file://host/a.jpg", "ftp://h/a.jpg", "https:///a.jpg",
                                 "https://u@h/a.jpg", "https://h/a/%2e%2e/b.jpg", "https://h\\a.jpg", "/a\tb.jpg",
                                 "/" + "a" * 5000])
def test_bad_uris_are_refused(uri):
    with pytest.raises(UriError):
        originals.parse(uri)


ACCESS = originals.Access(dirs=("/photos/",), urls=("https://h.example/lib", "s3://bucket/"))


@pytest.mark.parametrize("uri, allowed", [
    ("/photos/a.jpg", True), ("/photos", True), ("/photos-other/a.jpg", False), ("/photos/../etc/passwd", False),
    ("https://h.example/lib/a.jpg", True), ("https://H.EXAMPLE/lib/a.jpg", True),
    ("https://h.example/library/a.jpg", False), ("https://h.example.evil.org/lib/a.jpg", False),
    ("http://h.example/lib/a.jpg", False), ("s3://bucket/a.jpg", True), ("s3://bucket2/a.jpg", False),
])
def test_a_folder_or_prefix_reaches_no_further_than_itself(uri, allowed):
    location = originals.parse(uri)
    if allowed:
        originals.check(location, ACCESS)
    else:
        with pytest.raises(OriginalRefused):
            originals.check(location, ACCESS)
