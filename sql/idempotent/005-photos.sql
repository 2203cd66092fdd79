-- What a photo's row may not be made to say. Plain SQL: present in both modes.

-- The bytes and what they say (hash, upright size) stay together: changing the image of a stored photo would leave
-- its faces, hash and size describing other bytes. The metadata a user may give (taken_at, place, camera, exif)
-- and the filename (face_key is computed from it when asked) may change. An original kept outside (uri) may move
-- (UPDATE photos SET uri = ...: the next read checks its sha256); a URL original's hash, size and preview are
-- filled once, by the client worker that fetched it (pgfaces_original_fetched, 006-originals.sql).
create or replace function pgfaces_photos_before_update()
returns trigger
language plpgsql volatile security invoker
set search_path = public, pg_temp
as $$
begin
    if (old.sha256 is null and new.image is null)  -- a URL original, described now
       or (new.image, new.sha256, new.width, new.height, new.preview, new.size_bytes)
          is not distinct from (old.image, old.sha256, old.width, old.height, old.preview, old.size_bytes) then
        null;
    else
        raise exception 'photo %: its image (and the hash and size derived from it) cannot be changed', old.id
            using errcode = 'feature_not_supported',
                  hint = 'delete the photo and insert the new bytes: its faces are found again';
    end if;
    if new.added_at is distinct from old.added_at then
        raise exception 'photo %: added_at is the time it was stored and cannot be changed', old.id
            using errcode = 'feature_not_supported';
    end if;
    return new;
end
$$;

create or replace trigger photos_keep_derived before update on photos
for each row execute function pgfaces_photos_before_update();
