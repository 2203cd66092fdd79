-- What a caller may hand over for storage, checked as the server's own analysis would have made it. Plain SQL:
-- present in both modes. The functions through which faces and references arrive from outside the server's Python
-- (pgfaces_finish_job from a client worker, pgfaces_remember in client-side mode) call these, so that a role
-- cannot store what the server would never have produced (README, "Roles").

-- An embedding of the profile's dimension whose length is that of a face's: pgvector refuses NaN and infinities
-- itself; a zero (or near-zero) vector has no direction to compare (cosine distance NaN), and a huge one is no
-- face's. The profiles' embedders give 1.0 (CLIP, L2-normalised) and 1.1-1.6 (dlib's descriptor).
create or replace function pgfaces_check_embedding(p profiles, embedding vector, what text)
returns void
language plpgsql immutable parallel safe security invoker
set search_path = public, pg_temp
as $$
begin
    if embedding is null then
        raise exception '%: the embedding is NULL', what using errcode = 'invalid_parameter_value';
    end if;
    if vector_dims(embedding) <> p.dimensions then
        raise exception '%: profile "%" has % dimensions, the embedding has %', what, p.name, p.dimensions,
            vector_dims(embedding) using errcode = 'invalid_parameter_value';
    end if;
    if not vector_norm(embedding) between 0.1 and 10 then
        raise exception '%: the embedding''s length is %, no face''s (between 0.1 and 10)', what,
            round(vector_norm(embedding)::numeric, 6) using errcode = 'invalid_parameter_value';
    end if;
end
$$;

-- A face's thumbnail (pgfaces.pipeline: a 96-pixel JPEG of a few kB) is NULL or a JPEG of at most 64 kB: the
-- people page inlines it in its HTML.
create or replace function pgfaces_check_thumbnail(thumbnail bytea, what text)
returns void
language plpgsql immutable parallel safe security invoker
set search_path = public, pg_temp
as $$
begin
    if thumbnail is null then
        return;
    end if;
    if length(thumbnail) > 65536 then
        raise exception '%: a thumbnail of % bytes is more than 65536', what, length(thumbnail)
            using errcode = 'invalid_parameter_value';
    end if;
    if length(thumbnail) < 4 or substr(thumbnail, 1, 3) <> '\xffd8ff'::bytea
       or substr(thumbnail, length(thumbnail) - 1) <> '\xffd9'::bytea then
        raise exception '%: the thumbnail is not a JPEG', what using errcode = 'invalid_parameter_value';
    end if;
end
$$;

-- An image to keep (a reference picture): within pgfaces.max_image_bytes and, by its magic bytes, of a format the
-- server decodes (pgfaces.imaging.DECODABLE); the messages are the server's.
create or replace function pgfaces_check_image(image bytea, what text)
returns void
language plpgsql stable parallel safe security invoker
set search_path = public, pg_temp
as $$
declare
    most bigint := (pgfaces_limits()).max_image_bytes;
begin
    if image is null or length(image) = 0 then
        raise exception '%: empty image', what using errcode = 'data_exception';
    end if;
    if length(image) > most then
        raise exception '%: image is % bytes, more than the limit of % bytes', what, length(image), most
            using errcode = 'data_exception';
    end if;
    if not (substr(image, 1, 3) = '\xffd8ff'::bytea                                  -- JPEG
            or substr(image, 1, 8) = '\x89504e470d0a1a0a'::bytea                     -- PNG
            or substr(image, 1, 6) in ('GIF87a'::bytea, 'GIF89a'::bytea)
            or (substr(image, 1, 4) = 'RIFF'::bytea and substr(image, 9, 4) = 'WEBP'::bytea)
            or substr(image, 1, 2) = 'BM'::bytea
            or substr(image, 1, 4) in ('\x49492a00'::bytea, '\x4d4d002a'::bytea)) then  -- TIFF
        raise exception '%: not a supported image (unknown format, starts with %)', what,
            encode(substr(image, 1, 8), 'hex') using errcode = 'data_exception';
    end if;
end
$$;

-- A number a face carries (its detector's score, its sharpness, ...): NULL or finite.
create or replace function pgfaces_check_finite(value real, what text)
returns void
language plpgsql immutable parallel safe security invoker
set search_path = public, pg_temp
as $$
begin
    if value in ('NaN'::real, 'Infinity'::real, '-Infinity'::real) then
        raise exception '%: % is not a number a face may carry', what, value using errcode = 'invalid_parameter_value';
    end if;
end
$$;

-- A face as the server's analysis makes it: a box of positive size inside the upright picture (pgfaces.boxes clips
-- it), finite numbers, an embedding of the profile, a JPEG thumbnail. `what` names it in the message.
create or replace function pgfaces_check_face(ph photos, p profiles, what text, x int, y int, width int, height int,
                                              score real, embedding vector, thumbnail bytea, sharpness real,
                                              brightness real, yaw real)
returns void
language plpgsql immutable parallel safe security invoker
set search_path = public, pg_temp
as $$
begin
    if x is null or y is null or width is null or height is null or x < 0 or y < 0 or width < 1 or height < 1
       or x::bigint + width > ph.width or y::bigint + height > ph.height then
        raise exception '%: the box %x% at %,% is not inside the %x% picture', what, width, height, x, y,
            ph.width, ph.height using errcode = 'invalid_parameter_value';
    end if;
    perform pgfaces_check_finite(score, what || ': score');
    perform pgfaces_check_finite(sharpness, what || ': sharpness');
    perform pgfaces_check_finite(brightness, what || ': brightness');
    perform pgfaces_check_finite(yaw, what || ': yaw');
    perform pgfaces_check_embedding(p, embedding, what);
    perform pgfaces_check_thumbnail(thumbnail, what);
end
$$;

-- Client-side mode: writers insert the faces their client found (pgfaces.client.load), so each is checked as it
-- arrives. A server install's faces come from its own analysis (and a worker's through pgfaces_finish_job).
create or replace function pgfaces_faces_before_insert()
returns trigger
language plpgsql volatile security definer
set search_path = public, pg_temp
as $$
declare
    ph photos;
begin
    select * into ph from photos where id = new.photo_id;
    perform pgfaces_check_face(ph, pgfaces_profile(new.profile), format('photo %s, a face', new.photo_id), new.x,
                               new.y, new.width, new.height, new.score, new.embedding, new.thumbnail, new.sharpness,
                               new.brightness, new.yaw);
    return new;
end
$$;

do $$
begin
    if pgfaces_is_client_side() then
        create or replace trigger faces_check before insert on faces
        for each row execute function pgfaces_faces_before_insert();
    else
        drop trigger if exists faces_check on faces;
    end if;
end
$$;
