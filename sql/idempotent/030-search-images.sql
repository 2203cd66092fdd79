-- requires: plpython3u
-- Search by image: embed the largest face of the reference (pgfaces.analysis.reference), then search by vector.

create or replace function pgfaces_py_reference(p profiles, image bytea)
returns table (embedding vector, thumbnail bytea)
language plpython3u volatile parallel safe security definer
set search_path = public, pg_temp
as $$
from pgfaces import server
return server.reference(plpy, GD, p, image)
$$;

-- The reference's embedding and face thumbnail, errors re-raised plainly.
create or replace function pgfaces_reference(p profiles, image bytea, out embedding vector, out thumbnail bytea)
language plpgsql volatile parallel safe security invoker
set search_path = public, pg_temp
as $$
begin
    select r.embedding, r.thumbnail into embedding, thumbnail from pgfaces_py_reference(p, image) r;
exception when others or query_canceled then
    perform pgfaces_reraise(sqlstate, sqlerrm);
end
$$;

-- The embedding of the largest face in a reference image: what every "find ... like" search starts from.
create or replace function face_embedding(image bytea, profile text default null)
returns vector
language plpgsql volatile parallel safe security definer
set search_path = public, pg_temp
as $$
begin
    return (pgfaces_reference(pgfaces_profile(profile), image)).embedding;
end
$$;

create or replace function find_faces_like(image bytea, n int default 10, profile text default null)
returns table (face_id bigint, photo_id bigint, filename text, x int, y int, width int, height int, distance float8)
language plpgsql volatile parallel safe security definer
set search_path = public, pg_temp
as $$
declare
    p profiles := pgfaces_profile(profile);
begin
    perform pgfaces_check_n(n);
    return query select * from pgfaces_faces_near(p, (pgfaces_reference(p, image)).embedding, n);
end
$$;

create or replace function find_photos_like(image bytea, n int default 10, max_distance float8 default null,
                                            profile text default null)
returns table (photo_id bigint, filename text, face_id bigint, distance float8)
language plpgsql volatile parallel safe security definer
set search_path = public, pg_temp
as $$
declare
    p profiles := pgfaces_profile(profile);
begin
    perform pgfaces_check_n(n);
    return query select * from pgfaces_photos_near(p, (pgfaces_reference(p, image)).embedding, n, max_distance);
end
$$;

create or replace function find_photos_like(image bytea, n int, max_distance text, profile text default null)
returns table (photo_id bigint, filename text, face_id bigint, distance float8)
language plpgsql volatile parallel safe security definer
set search_path = public, pg_temp
as $$
declare
    p profiles := pgfaces_profile(profile);
begin
    perform pgfaces_check_n(n);
    return query select * from pgfaces_photos_near(p, (pgfaces_reference(p, image)).embedding, n,
                                                   pgfaces_max_distance(p, max_distance));
end
$$;

-- Stores a named reference face (several per person are allowed; the same picture once) and returns the person's id.
create or replace function remember_face(name text, image bytea, profile text default null)
returns bigint
language plpgsql volatile parallel unsafe security definer
set search_path = public, pg_temp
as $$
declare
    p profiles := pgfaces_profile(profile);
    ref record;
begin
    name := pgfaces_person_name(name);  -- before the image's work
    ref := pgfaces_reference(p, image);
    return pgfaces_remember(name, p.name, image, ref.embedding, ref.thumbnail);
end
$$;
