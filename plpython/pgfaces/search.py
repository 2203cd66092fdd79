"""Searching from a client: by reference image or by person, with optional date and place filters.

Without filters the SQL functions do it all (find_photos_like, find_photos_of). With filters the query is
written out so that the WHERE clause sits inside the HNSW index scan (pgvector's iterative scan keeps
reading the index until enough rows pass the filter), exactly as README.md shows it.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import html

from .terminal import printable


@dataclasses.dataclass
class Match:
    photo_id: int
    filename: str
    face_id: int
    distance: float
    x: int = 0
    y: int = 0
    width: int = 0
    height: int = 0
    taken_at: dt.datetime | None = None


@dataclasses.dataclass
class Filters:
    since: str | None = None
    until: str | None = None
    near: tuple[float, float, float] | None = None  # latitude, longitude, km
    camera: str | None = None

    def any(self) -> bool:
        return any(v is not None for v in dataclasses.astuple(self))

    def where(self) -> tuple[str, dict]:
        clauses, params = [], {}
        if self.since:
            clauses.append("p.taken_at >= %(since)s")
            params["since"] = self.since
        if self.until:
            clauses.append("p.taken_at < %(until)s")
            params["until"] = self.until
        if self.near:
            clauses.append("km_between(p.latitude, p.longitude, %(lat)s, %(lon)s) <= %(km)s")
            params.update(lat=self.near[0], lon=self.near[1], km=self.near[2])
        if self.camera:
            clauses.append("p.camera = %(camera)s")
            params["camera"] = self.camera
        return " and ".join(clauses) or "true", params


def parse_near(text: str) -> tuple[float, float, float]:
    try:
        lat, lon, km = (float(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"--near wants LAT,LON,KM (e.g. 38.72,-9.14,50), not {text!r}") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180 and km > 0):
        raise ValueError(f"--near {text!r}: latitude must be in -90..90, longitude in -180..180, km above 0")
    return lat, lon, km


def _details(conn, matches: list[Match]) -> list[Match]:
    if not matches:
        return matches
    rows = conn.execute(
        "select f.id, f.x, f.y, f.width, f.height, p.taken_at from faces f join photos p on p.id = f.photo_id"
        " where f.id = any(%s)", ([m.face_id for m in matches],)).fetchall()
    by_id = {r[0]: r[1:] for r in rows}
    for m in matches:
        m.x, m.y, m.width, m.height, m.taken_at = by_id[m.face_id]
    return matches


def reference_embeddings(conn, image: bytes | None, person: str | None, profile: str | None, embed=None) -> list[str]:
    """`embed(image) -> vector text` computes the reference in the client; without it the server's face_embedding does."""
    if image is not None:
        if embed is not None:
            return [embed(image)]
        return [conn.execute("select face_embedding(%s, %s)::text", (image, profile)).fetchone()[0]]
    rows = conn.execute(
        "select r.embedding::text from person_references r join people pe on pe.id = r.person_id"
        " where pe.name = pgfaces_person_name(%s) and r.profile = (pgfaces_profile(%s)).name",
        (person, profile)).fetchall()
    if not rows:
        conn.execute("select * from find_photos_of(%s, 1, null, %s)", (person, profile))  # raises the SQL error
    return [r[0] for r in rows]


def filtered(conn, embedding: str, n: int, filters: Filters, profile: str | None) -> list[Match]:
    """Nearest photos whose metadata pass the filters, searched through the profile's HNSW index (half precision,
    the index's expression), with exact distances."""
    name, dims, op = conn.execute(
        "select p.name, p.dimensions, pgfaces_operator(p) from pgfaces_profile(%s) p", (profile,)).fetchone()
    where, params = filters.where()
    conn.execute("set hnsw.iterative_scan = strict_order")
    k = n * 4 + 40
    while True:
        rows = conn.execute(
            f"""select f.photo_id, p.filename, f.id, (f.embedding::vector({dims}) {op} %(e)s::vector({dims}))::float8
                from faces f join photos p on p.id = f.photo_id
                where f.profile = %(profile)s and {where}
                order by f.embedding::halfvec({dims}) {op} %(e)s::halfvec({dims})
                limit %(k)s""",
            {**params, "e": embedding, "profile": name, "k": k}).fetchall()
        if len({r[0] for r in rows}) >= n or len(rows) < k:
            break
        k *= 4
    best: dict[int, Match] = {}
    for photo_id, filename, face_id, distance in rows:
        if photo_id not in best or distance < best[photo_id].distance:
            best[photo_id] = Match(photo_id, filename, face_id, distance)
    return sorted(best.values(), key=lambda m: (m.distance, m.photo_id))[:n]


def search(conn, image: bytes | None = None, person: str | None = None, n: int = 10,
           filters: Filters | None = None, profile: str | None = None, max_distance: float | None = None,
           embed=None) -> list[Match]:
    """Photos of the person in `image` (its largest face) or of a remembered `person`, best first.

    `embed(image) -> vector text` embeds the reference in the client (see pgfaces.client) instead of the server."""
    if (image is None) == (person is None):
        raise ValueError("search needs either a reference image or a person's name")
    filters = filters or Filters()
    if not filters.any():
        if image is not None and embed is not None:
            rows = conn.execute("select * from find_photos_near(%s::vector, %s, %s, %s)",
                                (embed(image), n, max_distance, profile))
        elif image is not None:
            rows = conn.execute("select * from find_photos_like(%s, %s, %s, %s)", (image, n, max_distance, profile))
        else:
            rows = conn.execute("select * from find_photos_of(%s, %s, %s, %s)", (person, n, max_distance, profile))
        return _details(conn, [Match(*r) for r in rows.fetchall()])
    best: dict[int, Match] = {}
    for embedding in reference_embeddings(conn, image, person, profile, embed):
        for m in filtered(conn, embedding, n, filters, profile):
            if max_distance is not None and m.distance > max_distance:
                continue
            if m.photo_id not in best or m.distance < best[m.photo_id].distance:
                best[m.photo_id] = m
    return _details(conn, sorted(best.values(), key=lambda m: (m.distance, m.photo_id))[:n])


def format_table(matches: list[Match]) -> str:
    if not matches:
        return "no photos found"
    lines = [f"{'rank':>4}  {'distance':>8}  {'photo':>6}  {'taken':<16}  file"]
    for rank, m in enumerate(matches, 1):
        taken = m.taken_at.strftime("%Y-%m-%d %H:%M") if m.taken_at else "-"
        lines.append(f"{rank:>4}  {m.distance:8.4f}  {m.photo_id:>6}  {taken:<16}  {printable(m.filename)}")
    return "\n".join(lines)


def contact_sheet(conn, matches: list[Match], title: str, thumb_side: int = 320) -> str:
    """A self-contained HTML page: each matched photo small, its matched face boxed, the distance below."""
    import cv2

    from . import imaging
    from .records import Limits

    cards = []
    for rank, m in enumerate(matches, 1):
        # The photo's bytes, or the preview kept in the row of one whose original is outside the database.
        data, preview, width, height = conn.execute(
            "select image, preview, width, height from photos where id = %s", (m.photo_id,)).fetchone()
        # A reduced JPEG decode is enough for a thumbnail and much cheaper than decoding in full.
        reduce = max([f for f in (1, 2, 4, 8) if max(width, height) // f >= thumb_side] or [1])
        picture = (imaging.decode_upright(bytes(data), Limits(), reduce=reduce) if data is not None
                   else imaging.decode_upright(bytes(preview), Limits(), orientation=1))
        scale = thumb_side / max(picture.shape[:2])
        small = cv2.resize(picture, (max(1, round(picture.shape[1] * scale)), max(1, round(picture.shape[0] * scale))),
                           interpolation=cv2.INTER_AREA)
        box_scale = small.shape[1] / width  # faces are stored in full-size upright coordinates
        x0, y0 = round(m.x * box_scale), round(m.y * box_scale)
        x1, y1 = round((m.x + m.width) * box_scale), round((m.y + m.height) * box_scale)
        cv2.rectangle(small, (x0, y0), (x1, y1), (0, 220, 0), 2)
        ok, jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 85])
        src = "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode()
        cards.append(
            f'<figure><img src="{src}" alt="{html.escape(m.filename)}">'
            f"<figcaption>#{rank} · distance {m.distance:.4f}<br>{html.escape(m.filename)}</figcaption></figure>")
    body = "\n".join(cards) or "<p>No photos found.</p>"
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:1.5em}} figure{{display:inline-block;margin:.5em;vertical-align:top;
text-align:center;max-width:{thumb_side}px}} img{{max-width:{thumb_side}px;border:1px solid #ccc}}
figcaption{{font-size:.85em;word-break:break-all}}</style></head>
<body><h1>{html.escape(title)}</h1>
{body}
</body></html>
"""
