-- requires: plpython3u
-- INSERT INTO photos (filename, image): the before trigger reads the photo (EXIF, size) and runs every
-- profile marked `ingest`; the after trigger writes the faces with the new photo's id. The faces wait
-- between the two in the backend's memory, keyed by the photo's hash.

create or replace function pgfaces_photos_before_insert()
returns trigger
language plpython3u volatile security invoker
set search_path = public, pg_temp
as $$
from pgfaces import plsql
return plsql.photos_before_insert(plpy, GD, TD)
$$;

create or replace function pgfaces_photos_after_insert()
returns trigger
language plpython3u volatile security invoker
set search_path = public, pg_temp
as $$
from pgfaces import plsql
return plsql.photos_after_insert(plpy, GD, TD)
$$;

create or replace trigger photos_analyse before insert on photos
for each row execute function pgfaces_photos_before_insert();

create or replace trigger photos_write_faces after insert on photos
for each row execute function pgfaces_photos_after_insert();

create or replace function detect_and_embed(image bytea, profile text default null)
returns table (x int, y int, width int, height int, score real, embedding vector)
language plpython3u volatile parallel safe security invoker
set search_path = public, pg_temp
as $$
from pgfaces import plsql
return plsql.detect_and_embed(plpy, GD, image, profile)
$$;

-- The embedding of the largest face in a reference image: what every "find ... like" search starts from.
create or replace function face_embedding(image bytea, profile text default null)
returns vector
language plpython3u volatile parallel safe security invoker
set search_path = public, pg_temp
as $$
from pgfaces import plsql
return plsql.face_embedding(plpy, GD, image, profile)
$$;

-- Recompute one profile's faces for every stored photo, from the stored bytes.
create or replace function reprocess(profile text)
returns bigint
language plpython3u volatile parallel unsafe security invoker
set search_path = public, pg_temp
as $$
from pgfaces import plsql
return plsql.reprocess(plpy, GD, profile)
$$;
