-- requires: plpython3u
-- Search by image: embed the largest face of the reference, then search by vector.

create or replace function find_faces_like(image bytea, n int default 10, profile text default null)
returns table (face_id bigint, photo_id bigint, filename text, x int, y int, width int, height int, distance float8)
language plpgsql volatile parallel safe security invoker
set search_path = public, pg_temp
as $$
begin
    perform pgfaces_check_n(n);
    return query select * from find_faces_near(face_embedding(image, profile), n, profile);
end
$$;

create or replace function find_photos_like(image bytea, n int default 10, max_distance float8 default null,
                                            profile text default null)
returns table (photo_id bigint, filename text, face_id bigint, distance float8)
language plpgsql volatile parallel safe security invoker
set search_path = public, pg_temp
as $$
begin
    perform pgfaces_check_n(n);
    return query select * from find_photos_near(face_embedding(image, profile), n, max_distance, profile);
end
$$;

create or replace function find_photos_like(image bytea, n int, max_distance text, profile text default null)
returns table (photo_id bigint, filename text, face_id bigint, distance float8)
language plpgsql volatile parallel safe security invoker
set search_path = public, pg_temp
as $$
declare
    p profiles := pgfaces_profile(profile);
begin
    return query select * from find_photos_like(image, n, pgfaces_max_distance(p, max_distance), p.name);
end
$$;

-- Stores a named reference face (several per person are allowed) and returns the person's id.
create or replace function remember_face(name text, image bytea, profile text default null)
returns bigint
language plpgsql volatile parallel unsafe security invoker
set search_path = public, pg_temp
as $$
declare
    p profiles := pgfaces_profile(profile);
    pid bigint;
begin
    if name is null or length(trim(name)) = 0 then
        raise exception 'a person needs a name' using errcode = 'invalid_parameter_value';
    end if;
    insert into people (name) values (remember_face.name) on conflict on constraint people_name_key do nothing;
    select pe.id into pid from people pe where pe.name = remember_face.name;
    insert into person_references (person_id, profile, image, embedding)
        values (pid, p.name, image, face_embedding(image, p.name));
    return pid;
end
$$;
