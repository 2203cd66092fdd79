-- What a photo's row may not be made to say. Plain SQL: present in both modes.

-- The bytes and what they say (hash, upright size) stay together: changing the image of a stored photo would leave
-- its faces, hash and size describing other bytes. The metadata a user may give (taken_at, place, camera, exif)
-- and the filename (face_key is computed from it when asked) may change.
create or replace function pgfaces_photos_before_update()
returns trigger
language plpgsql volatile security invoker
set search_path = public, pg_temp
as $$
begin
    if (new.image, new.sha256, new.width, new.height) is distinct from (old.image, old.sha256, old.width, old.height) then
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
