-- requires: plpython3u
-- INSERT INTO photos (filename, image): the before trigger reads the photo (EXIF, size) and runs every
-- profile marked `ingest`; the after trigger writes the faces with the new photo's id. The faces wait
-- between the two in the backend's memory, keyed by the photo's hash.
--
-- The Python functions (pgfaces_py_*) report bad input with SQLSTATE PF001. PL/Python prefixes such a
-- message with the exception's class ("plpy.Error: "), so thin plpgsql wrappers re-raise it as a plain
-- data_exception whose message is just "<file>: <reason>". Any other error passes through untouched,
-- Python traceback included.
--
-- The PL/Python functions are SECURITY DEFINER with a fixed search_path: they run with the rights of the superuser
-- who migrated, so that pgfaces_writer can insert photos (whose faces the after trigger writes) and
-- pgfaces_reader can search by image without either being granted plpython3u or rights on faces (090-grants.sql).

create or replace function pgfaces_reraise(message text)
returns void
language plpgsql immutable parallel safe security invoker
set search_path = public, pg_temp
as $$
begin
    raise exception using message = regexp_replace(message, '^plpy\.Error: ', ''), errcode = 'data_exception';
end
$$;

create or replace function pgfaces_py_analyse_photo(photo photos)
returns photos
language plpython3u volatile parallel unsafe security definer
set search_path = public, pg_temp
as $$
from pgfaces import plsql
return plsql.analyse_photo(plpy, GD, photo)
$$;

create or replace function pgfaces_photos_before_insert()
returns trigger
language plpgsql volatile security invoker
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
    exception when sqlstate 'PF001' then
        perform pgfaces_reraise(sqlerrm);
    end;
    return new;
end
$$;

create or replace function pgfaces_py_photos_after_insert()
returns trigger
language plpython3u volatile security definer
set search_path = public, pg_temp
as $$
from pgfaces import plsql
return plsql.photos_after_insert(plpy, GD, TD)
$$;

create or replace trigger photos_analyse before insert on photos
for each row execute function pgfaces_photos_before_insert();

create or replace trigger photos_write_faces after insert on photos
for each row execute function pgfaces_py_photos_after_insert();

create or replace function pgfaces_py_detect_and_embed(image bytea, profile text)
returns table (x int, y int, width int, height int, score real, embedding vector)
language plpython3u volatile parallel safe security definer
set search_path = public, pg_temp
as $$
from pgfaces import plsql
return plsql.detect_and_embed(plpy, GD, image, profile)
$$;

create or replace function detect_and_embed(image bytea, profile text default null)
returns table (x int, y int, width int, height int, score real, embedding vector)
language plpgsql volatile parallel safe security invoker
set search_path = public, pg_temp
as $$
begin
    return query select * from pgfaces_py_detect_and_embed(image, profile);
exception when sqlstate 'PF001' then
    perform pgfaces_reraise(sqlerrm);
end
$$;

create or replace function pgfaces_py_face_embedding(image bytea, profile text)
returns vector
language plpython3u volatile parallel safe security definer
set search_path = public, pg_temp
as $$
from pgfaces import plsql
return plsql.face_embedding(plpy, GD, image, profile)
$$;

-- The embedding of the largest face in a reference image: what every "find ... like" search starts from.
create or replace function face_embedding(image bytea, profile text default null)
returns vector
language plpgsql volatile parallel safe security invoker
set search_path = public, pg_temp
as $$
begin
    return pgfaces_py_face_embedding(image, profile);
exception when sqlstate 'PF001' then
    perform pgfaces_reraise(sqlerrm);
end
$$;

-- Recompute one profile's faces for every stored photo, from the stored bytes.
create or replace function reprocess(profile text)
returns bigint
language plpython3u volatile parallel unsafe security definer
set search_path = public, pg_temp
as $$
from pgfaces import plsql
return plsql.reprocess(plpy, GD, profile)
$$;
