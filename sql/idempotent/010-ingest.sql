-- requires: plpython3u
-- INSERT INTO photos (filename, image): the before trigger reads the photo (EXIF, size) and runs every profile
-- marked `ingest`; the after trigger writes the faces with the new photo's id. The faces wait between the two in
-- the backend's memory, keyed by the photo's hash.
--
-- The PL/Python functions (pgfaces_py_*) are internal: one call into pgfaces.server each, SECURITY DEFINER with a
-- fixed search_path (run with the rights of the superuser who migrated) and executable by nobody else. The public
-- functions and the trigger functions that call them are plpgsql, SECURITY DEFINER too, and re-raise every error
-- through pgfaces_reraise (000-common.sql): "<file>: <reason>" with its SQLSTATE, no Python class, no traceback.

create or replace function pgfaces_py_analyse_photo(photo photos)
returns photos
language plpython3u volatile parallel unsafe security definer
set search_path = public, pg_temp
as $$
from pgfaces import server
return server.analyse_photo(plpy, GD, photo)
$$;

create or replace function pgfaces_photos_before_insert()
returns trigger
language plpgsql volatile security definer
set search_path = public, pg_temp
as $$
begin
    if new.filename is null or trim(new.filename) = '' then
        raise exception 'photos.filename is empty: give each photo the name of its file'
            using errcode = 'not_null_violation';
    end if;
    if new.image is null then
        raise exception '%: image is NULL', new.filename using errcode = 'not_null_violation';
    end if;
    if length(new.image) = 0 then
        raise exception '%: image is empty (0 bytes)', new.filename using errcode = 'data_exception';
    end if;
    begin
        new := pgfaces_py_analyse_photo(new);
    exception when others or query_canceled then
        perform pgfaces_reraise(sqlstate, sqlerrm);
    end;
    return new;
end
$$;

create or replace function pgfaces_py_photos_after_insert()
returns trigger
language plpython3u volatile security definer
set search_path = public, pg_temp
as $$
from pgfaces import server
return server.photos_after_insert(plpy, GD, TD)
$$;

create or replace trigger photos_analyse before insert on photos
for each row execute function pgfaces_photos_before_insert();

create or replace trigger photos_write_faces after insert on photos
for each row execute function pgfaces_py_photos_after_insert();

create or replace function pgfaces_py_detect_and_embed(p profiles, image bytea)
returns table (x int, y int, width int, height int, score real, embedding vector)
language plpython3u volatile parallel safe security definer
set search_path = public, pg_temp
as $$
from pgfaces import server
return server.detect_and_embed(plpy, GD, p, image)
$$;

-- Every face of an image, without storing anything.
create or replace function detect_and_embed(image bytea, profile text default null)
returns table (x int, y int, width int, height int, score real, embedding vector)
language plpgsql volatile parallel safe security definer
set search_path = public, pg_temp
as $$
declare
    p profiles := pgfaces_profile(profile);
begin
    return query select * from pgfaces_py_detect_and_embed(p, image);
exception when others or query_canceled then
    perform pgfaces_reraise(sqlstate, sqlerrm);
end
$$;

create or replace function pgfaces_py_reprocess(p profiles)
returns bigint
language plpython3u volatile parallel unsafe security definer
set search_path = public, pg_temp
as $$
from pgfaces import server
return server.reprocess(plpy, GD, p)
$$;

-- Recompute one profile's faces for every stored photo, from the stored bytes.
create or replace function reprocess(profile text)
returns bigint
language plpgsql volatile parallel unsafe security definer
set search_path = public, pg_temp
as $$
declare
    p profiles;
begin
    if profile is null then
        raise exception 'reprocess needs a profile name (known profiles: %)',
            (select string_agg(name, ', ' order by name) from profiles) using errcode = 'null_value_not_allowed';
    end if;
    p := pgfaces_profile(profile);
    return pgfaces_py_reprocess(p);
exception when others or query_canceled then
    perform pgfaces_reraise(sqlstate, sqlerrm);
end
$$;
