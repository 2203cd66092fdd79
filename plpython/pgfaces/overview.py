"""The people of a collection as the user looks at them: a table for the terminal and a page for the browser, read
from the views people_overview and unassigned_faces. The page is one self-contained HTML file (thumbnails inlined),
readable with no server."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import html

from .terminal import printable

STRIP = 12  # face thumbnails per person on the page


@dataclasses.dataclass
class Person:
    person_id: int
    name: str | None
    profile: str
    hidden: bool
    faces: int
    photos: int
    first_taken_at: dt.datetime | None
    last_taken_at: dt.datetime | None
    cover_face_id: int | None

    @property
    def label(self) -> str:
        return self.name or f"(unnamed #{self.person_id})"


def people(conn, include_hidden: bool = False) -> list[Person]:
    rows = conn.execute(
        "select person_id, name, profile, hidden, faces, photos, first_taken_at, last_taken_at, cover_face_id"
        " from people_overview where %s or not hidden order by name is null, faces desc, person_id",
        (include_hidden,)).fetchall()
    return [Person(*r) for r in rows]


@dataclasses.dataclass
class Unassigned:
    """The faces in no person, by why: not yet seen by cluster_faces(), seen and like no one yet, under the
    profile's quality bar and not clearly anyone's (held back), or kept apart by the user."""

    waiting: int = 0
    alone: int = 0
    held_back: int = 0
    kept_apart: int = 0

    def summary(self) -> str:
        parts = [f"{self.waiting} faces wait for cluster_faces()" if self.waiting else "",
                 f"{self.alone} like no one else yet" if self.alone else "",
                 f"{self.held_back} held back (under the quality bar)" if self.held_back else "",
                 f"{self.kept_apart} kept apart by hand" if self.kept_apart else ""]
        return ", ".join(p for p in parts if p) or "every face is in a person"


def unassigned_count(conn) -> Unassigned:
    return Unassigned(*conn.execute(
        "select count(*) filter (where waiting), count(*) filter (where not waiting and not held_back and not kept_apart),"
        " count(*) filter (where held_back and not kept_apart), count(*) filter (where kept_apart)"
        " from unassigned_faces").fetchone())


def table(persons: list[Person], unassigned: Unassigned) -> str:
    def day(t):
        return t.strftime("%Y-%m-%d") if t else "-"

    lines = [f"{'person':>7}  {'name':<28} {'faces':>6} {'photos':>6}  {'first':<10}  {'last':<10}  cover"]
    for p in persons:
        name = printable(p.label) + (" (hidden)" if p.hidden else "")
        lines.append(f"{p.person_id:>7}  {name[:28]:<28} {p.faces:>6} {p.photos:>6}  {day(p.first_taken_at):<10}  "
                     f"{day(p.last_taken_at):<10}  {p.cover_face_id or '-'}")
    lines.append(f"{len(persons)} people; faces in no person: {unassigned.summary()}")
    return "\n".join(lines)


def _img(thumbnail: bytes | None, alt: str, css: str = "") -> str:
    src = "data:image/jpeg;base64," + base64.b64encode(bytes(thumbnail or b"")).decode()
    return f'<img class="{css}" src="{src}" alt="{html.escape(alt)}" title="{html.escape(alt)}">'


def _face(face_id: int, thumbnail: bytes | None) -> str:
    """A face's thumbnail with its id under it (assign_face and unassign_face take it)."""
    return f'<figure>{_img(thumbnail, f"face {face_id}", "face")}<figcaption>{face_id}</figcaption></figure>'


def _thumbnails(conn, persons: list[Person]) -> tuple[dict[int, bytes], dict[int, list[tuple[int, bytes]]]]:
    """Every listed person's cover thumbnail and strip of faces (the largest first), in two queries for the page."""
    covers = dict(conn.execute("select id, thumbnail from faces where id = any(%s)",
                               ([p.cover_face_id for p in persons if p.cover_face_id],)).fetchall())
    strips: dict[int, list[tuple[int, bytes]]] = {}
    for person_id, face_id, thumbnail in conn.execute(
            "select person_id, id, thumbnail from ("
            " select fp.person_id, f.id, f.thumbnail, row_number() over (partition by fp.person_id"
            "  order by f.width * f.height desc, f.id) as place"
            " from face_people fp join faces f on f.id = fp.face_id where fp.person_id = any(%s)) s"
            " where place <= %s order by person_id, place", ([p.person_id for p in persons], STRIP)):
        strips.setdefault(person_id, []).append((face_id, thumbnail))
    return covers, strips


def _strip(faces: list[tuple[int, bytes]], total: int) -> str:
    more = total - len(faces)
    return "".join(_face(i, t) for i, t in faces) + (f'<span class="more">+{more} more</span>' if more > 0 else "")


def _card(p: Person, cover: bytes | None, faces: list[tuple[int, bytes]]) -> str:
    if p.faces:
        shown = _img(cover, p.label, "cover")
        counts = f'{p.faces} faces in {p.photos} photos'
    else:  # a named person whose faces are not found yet (a reference only, or all moved away)
        shown = '<span class="cover empty">no face yet</span>'
        counts = "no face in any photo yet: find_photos_of() searches by their reference"
    dates = f" · {p.first_taken_at:%Y-%m-%d} to {p.last_taken_at:%Y-%m-%d}" if p.first_taken_at else ""
    return (f'<section class="person"><div>{shown}</div>'
            f'<div><h2>{html.escape(p.label)}{" <small>(hidden)</small>" if p.hidden else ""}</h2>'
            f'<p>person {p.person_id} · {counts}{dates}</p>'
            f'<div class="strip">{_strip(faces, p.faces)}</div></div></section>')


UNASSIGNED_SHOWN = 60  # faces of each kind in no person on the page


def _unassigned(conn, held_back: bool) -> tuple[list[tuple[int, bytes]], int]:
    rows = conn.execute("select u.face_id, f.thumbnail, count(*) over () from unassigned_faces u"
                        " join faces f on f.id = u.face_id where not u.kept_apart and u.held_back = %s"
                        " order by u.face_id limit %s", (held_back, UNASSIGNED_SHOWN)).fetchall()
    return [(r[0], r[1]) for r in rows], (rows[0][2] if rows else 0)


def page(conn, persons: list[Person], unassigned: Unassigned, title: str = "People") -> str:
    """Each person's cover face, name and counts, then a strip of their faces; the faces in no person last: those
    like no one yet, then those held back under the quality bar."""
    covers, strips = _thumbnails(conn, persons)
    cards = [_card(p, covers.get(p.cover_face_id), strips.get(p.person_id, [])) for p in persons]
    body = "\n".join(cards) or "<p>No people yet: run <code>select cluster_faces()</code>.</p>"
    loose, loose_total = _unassigned(conn, held_back=False)
    poor, poor_total = _unassigned(conn, held_back=True)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:1.5em;max-width:70em}} .person{{display:flex;gap:1em;margin:1em 0;
border-bottom:1px solid #ddd;padding-bottom:1em}} .cover{{width:96px;height:96px;border-radius:8px;object-fit:cover}}
.empty{{display:flex;align-items:center;justify-content:center;text-align:center;border:1px dashed #aaa;color:#777;
font-size:.85em}} figure{{display:inline-block;margin:2px;text-align:center}} figcaption{{font-size:.7em;color:#777}}
.face{{width:48px;height:48px;object-fit:cover;border-radius:4px}} h2{{margin:0 0 .2em}}
.more{{display:inline-block;vertical-align:top;margin:14px 6px;color:#555}} p{{margin:.2em 0;color:#555}}</style>
</head>
<body><h1>{html.escape(title)}</h1>
<p>{len(persons)} people; faces in no person: {html.escape(unassigned.summary())}. The number under each face is
its id: <code>assign_face(face_id, person_id)</code> moves it.</p>
{body}
<h2>Faces in no person</h2><div class="strip">{_strip(loose, loose_total) or "none"}</div>
<h2>Held back</h2><p>Blurred, dark, tiny or turned faces, and things that only look like faces: kept and searchable, but
too poor to form a person (README, "Which faces are grouped").</p>
<div class="strip">{_strip(poor, poor_total) or "none"}</div>
</body></html>
"""
