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
