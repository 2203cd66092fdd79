-- People: named persons and their reference faces. Plain SQL: present in both modes.

-- A person's name as stored: trimmed, 1 to 200 characters (the people_name_check constraint), or a clear error.
create or replace function pgfaces_person_name(name text)
returns text
language plpgsql immutable parallel safe security invoker
set search_path = public, pg_temp
as $$
begin
    if name is null or length(trim(name)) = 0 then
        raise exception 'a person needs a name (unnamed people wait for one in people_overview)'
            using errcode = 'invalid_parameter_value';
    end if;
    if length(trim(name)) > 200 then
        raise exception 'a person''s name has at most 200 characters, not %', length(trim(name))
            using errcode = 'invalid_parameter_value';
    end if;
    return trim(name);
end
$$;

-- Stores a reference face whose embedding was computed already (by remember_face in the server, or by the client
-- in client-side mode) and returns the person's id; the same picture twice for one person and profile is stored once.
create or replace function pgfaces_remember(name text, profile text, image bytea, embedding vector,
                                            thumbnail bytea default null)
returns bigint
language plpgsql volatile parallel unsafe security definer
set search_path = public, pg_temp
as $$
declare
    p profiles := pgfaces_profile(profile);
    who bigint;
begin
    name := pgfaces_person_name(name);
    if image is null or embedding is null then
        raise exception 'a reference needs its image and its embedding' using errcode = 'null_value_not_allowed';
    end if;
    -- as remember_face in the server would have made them (client-side mode hands them over: 006-input-checks.sql)
    perform pgfaces_check_image(image, 'reference image');
    perform pgfaces_check_embedding(p, embedding, 'reference image');
    perform pgfaces_check_thumbnail(thumbnail, 'reference image');
    insert into people (name, profile) values (pgfaces_remember.name, p.name)
        on conflict on constraint people_name_key do nothing;
    select pe.id into who from people pe where pe.name = pgfaces_remember.name;
    insert into person_references (person_id, profile, image, embedding, thumbnail)
    select who, p.name, pgfaces_remember.image, pgfaces_remember.embedding, pgfaces_remember.thumbnail
    where not exists (select from person_references r
                      where r.person_id = who and r.profile = p.name and md5(r.image) = md5(pgfaces_remember.image));
    return who;
end
$$;
