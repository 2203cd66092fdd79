"""People as the roles, the client and a browser see them: what pgfaces_reader and pgfaces_writer may do, the
client-side mode's grouping, and the `invoke people --html` page."""

from __future__ import annotations

import psycopg
import pytest

from people_photos import faceapi_photos, person_of, who
from people_photos import db, url  # noqa: F401 (fixtures: each test module gets its own collection)

@pytest.mark.parametrize("role", ["reader", "writer"])
def test_roles(db, url, login_as, role):
    with psycopg.connect(url, autocommit=True) as owner:
        person = person_of(owner, "face-api.js__examples__images__amy__amy1.png")
        owner.execute("update people set name = null where name = 'Reader test'")
    with psycopg.connect(login_as(url, role), autocommit=True) as conn:
        assert conn.execute("select count(*) from people_overview").fetchone()[0] > 0
        conn.execute("select count(*) from unassigned_faces").fetchone()
        # the README's way to read a face's person, and its quality
        assert conn.execute("select count(*) from faces f where f.person_id = %s", (person,)).fetchone()[0] >= 4
        assert conn.execute("select count(*) from face_quality where groupable").fetchone()[0] > 0
        if role == "reader":
            for call in ("select name_person(%s, 'Reader test')", "select hide_person(%s)",
                         "select forget_person(%s::bigint)", "select cluster_faces()"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(call, (person,) if "%s" in call else ())
        else:
            conn.execute("select name_person(%s, 'Reader test')", (person,))
            conn.execute("select hide_person(%s, false)", (person,))
            assert conn.execute("select count(*) from find_photos_of('Reader test', 5)").fetchone()[0] >= 4
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("delete from face_people")


def test_client_side_mode_groups_in_the_client(make_database):
    """Without plpython3u the same tables, functions and views work; the client does the grouping."""
    from pgfaces import client

    url = make_database(client_side=True)
    photos = [str(p) for p in faceapi_photos() if who(p.name) in ("amy", "raj")]
    assert client.load(url, photos, workers=2).loaded == len(photos)
    with client.connect(url) as conn:
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="python -m pgfaces.client cluster"):
            conn.execute("select cluster_faces()")
        assert client.cluster_faces(conn) > 0
        assert client.cluster_faces(conn) == 0  # unchanged data: nothing changes
        amy = person_of(conn, "face-api.js__examples__images__amy__amy1.png")
        assert {person_of(conn, p.rsplit("/", 1)[1]) for p in photos if "amy" in p} == {amy}
        conn.execute("select name_person(%s, 'Amy')", (amy,))
        found = conn.execute("select filename from find_photos_of('Amy', 10)").fetchall()
        assert {who(f.rsplit('/', 1)[1]) for (f,) in found[:4]} == {"amy"}
        assert conn.execute("select faces from people_overview where name = 'Amy'").fetchone()[0] == 4


def test_the_people_page_shows_each_persons_cover_and_faces(db, url, login_as, tmp_path):
    """`invoke people --html` as a reader: one card per person, its cover thumbnail and a strip of its faces."""
    import re

    from pgfaces import overview
    from pgfaces.client import cli

    person = person_of(db, "face-api.js__examples__images__amy__amy1.png")
    db.execute("select name_person(%s, 'Amy <page>')", (person,))
    page = tmp_path / "people.html"
    assert cli.people(login_as(url, "reader"), str(page)) == 0
    text = page.read_text()
    cards = re.findall(r'<section class="person">.*?</section>', text, flags=re.S)
    assert len(cards) == db.execute("select count(*) from people_overview where not hidden").fetchone()[0] > 0
    amy = next(card for card in cards if "Amy &lt;page&gt;" in card)  # names are escaped
    assert 'class="cover" src="data:image/jpeg;base64,' in amy
    assert amy.count('class="face"') >= 4  # amy1-amy4, and any group photo of hers
    for card in cards:
        faces = db.execute("select faces from people_overview where person_id = %s",
                           (int(re.search(r"person (\d+) ·", card).group(1)),)).fetchone()[0]
        assert card.count('class="face"') == min(faces, overview.STRIP) and 'class="cover" src=' in card

