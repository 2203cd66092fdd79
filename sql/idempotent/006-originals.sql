-- Originals outside the database (README, "Originals outside the database"): what a photo's uri may name, and the
-- description of a URL original by the client worker that fetched it first. Plain SQL: present in both modes.

-- A comma-separated list setting's entries ('' or unset: none).
create or replace function pgfaces_setting_list(setting_name text)
returns text[]
language sql stable parallel safe security invoker
set search_path = public, pg_temp
as $$
    select coalesce(array_agg(trim(e)) filter (where trim(e) <> ''), '{}')
    from unnest(string_to_array(coalesce(current_setting(setting_name, true), ''), ',')) e
$$;

-- What this session may read through a photo's uri: the folders of pgfaces.originals_dirs, the URL prefixes of
-- pgfaces.originals_urls (superuser-only settings, docker/pgfaces_preload.c), and the server's own folders, refused
-- whatever the settings say. A server without the library reads no original: there the settings would be
-- placeholders any role may SET. Client-side, the files are read by client workers, in their own sessions.
create or replace function pgfaces_originals(out dirs text[], out urls text[], out forbidden text[])
language plpgsql stable parallel safe security definer
set search_path = public, pg_temp
as $$
begin
    if pgfaces_library_loaded() or pgfaces_is_client_side() then
        dirs := pgfaces_setting_list('pgfaces.originals_dirs');
        urls := pgfaces_setting_list('pgfaces.originals_urls');
    else
        dirs := '{}';
        urls := '{}';
    end if;
    begin
        forbidden := array[current_setting('data_directory'),
                           regexp_replace(current_setting('config_file'), '/[^/]*$', ''),
                           regexp_replace(current_setting('hba_file'), '/[^/]*$', ''),
                           regexp_replace(current_setting('ident_file'), '/[^/]*$', '')];
    exception when insufficient_privilege then
        forbidden := '{}';  -- an owner that is no superuser (a managed service): its server's files are not ours
    end;
end
$$;

-- A client worker fetched a URL original for its claimed job: the photo's hash, size, header and EXIF (`photo`:
-- pgfaces.records.PhotoRow's values) and its preview, which the INSERT could not read. Filled once (the values a
-- user gave in the INSERT win); a later fetch must bring the same bytes. Called in the transaction that ends the
-- job. Returns 'described', 'known' (described before, same bytes) or 'lost' (the job is no longer this worker's).
create or replace function pgfaces_original_fetched(photo_id bigint, profile text, token text,
                                                    photo jsonb, size_bytes bigint, preview bytea)
returns text
language plpgsql volatile parallel unsafe security definer
set search_path = public, pg_temp
as $$
declare
    p profiles := pgfaces_profile(profile);
    lim record := pgfaces_limits();
    ph photos;
    digest text := photo->>'sha256';
    w bigint;
    h bigint;
    other photos;
begin
    if photo is null or jsonb_typeof(photo) <> 'object' then
        raise exception 'photo must be a JSON object (sha256, width, height, ...)' using errcode = 'invalid_parameter_value';
    end if;
    if digest is null or digest !~ '^[0-9a-f]{64}$' then
        raise exception 'sha256 must be 64 hex digits' using errcode = 'invalid_parameter_value';
    end if;
    if size_bytes is null or size_bytes < 1 or size_bytes > lim.max_image_bytes then
        raise exception 'size_bytes must be between 1 and pgfaces.max_image_bytes (%), not %', lim.max_image_bytes,
            coalesce(size_bytes::text, 'NULL') using errcode = 'invalid_parameter_value';
    end if;
    begin
        w := (photo->>'width')::bigint;
        h := (photo->>'height')::bigint;
    exception when others then
        w := null;
    end;
    if w is null or h is null or w < 1 or h < 1 or w * h > lim.max_pixels then
        raise exception 'width and height must be positive and at most pgfaces.max_pixels (%) together', lim.max_pixels
            using errcode = 'invalid_parameter_value';
    end if;
    if preview is not null and (length(preview) > 1048576 or substr(preview, 1, 4) <> 'RIFF'::bytea
                                or substr(preview, 9, 4) <> 'WEBP'::bytea) then
        raise exception 'preview must be a WebP of at most 1 MiB' using errcode = 'invalid_parameter_value';
    end if;
    if not pgfaces_job_is_mine(photo_id, p.name, token) then
        return 'lost';
    end if;
    select * into ph from photos where id = pgfaces_original_fetched.photo_id for update;
    if not found or ph.image is not null or ph.uri !~ '^(https?|s3)://' then
        raise exception 'photo %: not a URL original', photo_id using errcode = 'invalid_parameter_value';
    end if;
    if ph.sha256 is not null then
        if ph.sha256 <> digest then
            raise exception '%: the original changed since it was loaded (sha256 %..., stored %...): its faces are kept; delete the photo and load it again to analyse the new one',
                ph.uri, left(digest, 16), left(ph.sha256, 16) using errcode = 'data_exception';
        end if;
        return 'known';
    end if;
    select * into other from photos o where o.sha256 = digest;
    if found then
        raise exception '%: the same bytes as photo % (%), stored already', ph.uri, other.id, other.filename
            using errcode = 'unique_violation';
    end if;
    update photos set sha256 = digest, size_bytes = pgfaces_original_fetched.size_bytes, width = w, height = h,
                      preview = pgfaces_original_fetched.preview,
                      taken_at = coalesce(ph.taken_at, (photo->>'taken_at')::timestamptz),
                      latitude = coalesce(ph.latitude, (photo->>'latitude')::float8),
                      longitude = coalesce(ph.longitude, (photo->>'longitude')::float8),
                      camera = coalesce(ph.camera, photo->>'camera'),
                      exif = coalesce(ph.exif, (photo->>'exif')::jsonb)
    where id = pgfaces_original_fetched.photo_id;
    return 'described';
end
$$;
