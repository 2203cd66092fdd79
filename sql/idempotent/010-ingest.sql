-- requires: plpython3u
-- INSERT INTO photos (filename, image | uri): the before trigger reads the photo (from its bytes, or from the file its
-- uri names: pgfaces.originals), its EXIF and size, and runs every profile
-- marked `ingest`; the after trigger writes the faces with the new photo's id. The faces wait between the two in
-- the backend's memory, keyed by the photo's hash. Under `SET pgfaces."analyse" = 'deferred'` the before trigger
-- reads the metadata only, and photos_queue (040-queue.sql) queues the photo for the workers instead.
--
-- The PL/Python functions (pgfaces_py_*) are internal: one call into pgfaces.server each, SECURITY DEFINER with a
-- fixed search_path (run with the rights of the superuser who migrated) and executable by nobody else. The public
-- functions and the trigger functions that call them are plpgsql, SECURITY DEFINER too, and re-raise every error
-- through pgfaces_reraise (000-common.sql): "<file>: <reason>" with its SQLSTATE, no Python class, no traceback.

drop function if exists pgfaces_py_analyse_photo(photos);  -- before it took `deferred`

-- The row with its derived columns, but no image: the caller keeps its own (a photo's bytes are not copied back).
create or replace function pgfaces_py_analyse_photo(photo photos, deferred boolean)
returns photos
language plpython3u volatile parallel unsafe security definer
set search_path = public, pg_temp
as $$
from pgfaces import server
return server.analyse_photo(plpy, GD, photo, deferred)
$$;

create or replace function pgfaces_photos_before_insert()
returns trigger
language plpgsql volatile security definer
set search_path = public, pg_temp
as $$
declare
    analysed photos;
begin
    if new.filename is null or trim(new.filename) = '' then
        raise exception 'photos.filename is empty: give each photo the name of its file'
            using errcode = 'not_null_violation';
    end if;
    if new.image is null and new.uri is null then
        raise exception '%: image is NULL (give the photo''s bytes, or its uri to keep the original outside the database)',
            new.filename using errcode = 'not_null_violation';
    end if;
    if new.image is not null and new.uri is not null then
        raise exception '%: give the photo''s bytes (image) or where they are (uri), not both', new.filename
            using errcode = 'invalid_parameter_value';
    end if;
    if length(new.image) = 0 then
        raise exception '%: image is empty (0 bytes)', new.filename using errcode = 'data_exception';
    end if;
    begin
        analysed := pgfaces_py_analyse_photo(new, pgfaces_deferred());
    exception when others or query_canceled then
        perform pgfaces_reraise(sqlstate, sqlerrm);
    end;
    analysed.image := new.image;
    return analysed;
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

-- An AFTER trigger's WHEN is evaluated as the row is inserted, right after the before trigger, so the two always
-- agree on the mode; under 'deferred' this one is not even queued (040-queue.sql's photos_queue is).
create or replace trigger photos_write_faces after insert on photos
for each row when (not pgfaces_deferred() and new.sha256 is not null) execute function pgfaces_py_photos_after_insert();

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

drop function if exists pgfaces_py_reprocess(profiles);  -- before it took `photos`

-- photos: recompute every stored photo's faces here (else only the people's references).
create or replace function pgfaces_py_reprocess(p profiles, photos boolean)
returns bigint
language plpython3u volatile parallel unsafe security definer
set search_path = public, pg_temp
as $$
from pgfaces import server
return server.reprocess(plpy, GD, p, photos)
$$;

-- Recompute one profile's faces for every stored photo, from the stored bytes (or the original its uri names: a
-- missing or changed one keeps its faces and is reported in a WARNING; a URL one needs the queue's client workers). Under pgfaces.analyse = 'deferred'
-- the photos go through the queue (the workers replace each photo's faces in one transaction; searches see the old
-- ones until then) and it returns the number of photos queued.
create or replace function reprocess(profile text)
returns bigint
language plpgsql volatile parallel unsafe security definer
set search_path = public, pg_temp
as $$
declare
    p profiles;
    queued bigint;
begin
    if profile is null then
        raise exception 'reprocess needs a profile name (known profiles: %)',
            (select string_agg(name, ', ' order by name) from profiles) using errcode = 'null_value_not_allowed';
    end if;
    p := pgfaces_profile(profile);
    if pgfaces_deferred() then
        perform pgfaces_py_reprocess(p, false);
        queued := pgfaces_queue(null, p.name);
        raise notice 'queued % photo(s) for profile %: workers analyse them (./pgfaces work); see analysis_progress',
            queued, p.name;
        return queued;
    end if;
    return pgfaces_py_reprocess(p, true);
exception when others or query_canceled then
    perform pgfaces_reraise(sqlstate, sqlerrm);
end
$$;
