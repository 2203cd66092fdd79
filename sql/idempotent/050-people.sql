-- People: the user's edits, the views, and searching by people. Plain SQL: present in both modes. How faces are
-- grouped (cluster_faces, joining on INSERT) is in 055-people-clustering.sql; README.md, "People", tells the rules.
--
-- Which face is whose is in face_people (sql/incremental/011-people.sql); `f.person_id` reads it for a face f.
-- The rules every function here keeps: a face the user placed (assign_face, unassign_face, merge_people,
-- forget_person: face_people.assigned_by = 'user') stays where the user put it; a person's faces are of one
-- profile; two faces of one photo are never the same person; a name belongs to one person.

-- faces.person_id: `select f.person_id from faces f` (attribute notation: qualify it), NULL when in no person.
create or replace function person_id(f faces)
returns bigint
language sql stable parallel safe security invoker
set search_path = public, pg_temp
as $$ select fp.person_id from face_people fp where fp.face_id = f.id $$;

-- Puts a face in a person (or, person NULL with 'user', keeps it out of every person). face_people's constraint
-- face_people_photo_once (sql/incremental/014) refuses a second face of one photo in one person, whatever runs at
-- the same time: the callers turn its unique_violation into their own answer.
create or replace function pgfaces_place(face_id bigint, person_id bigint, how text)
returns void
language sql volatile parallel unsafe security invoker
set search_path = public, pg_temp
as $$
    insert into face_people (face_id, photo_id, person_id, assigned_by)
    select f.id, f.photo_id, $2, $3 from faces f where f.id = $1
    on conflict on constraint face_people_pkey do update set person_id = excluded.person_id,
                                                             assigned_by = excluded.assigned_by
$$;

-- Edits by hand and a run's writing take turns (a run writes a million rows in one statement: an edit of one of
-- them meanwhile could deadlock with it); edits among themselves do not wait for each other here.
create or replace function pgfaces_people_edit_lock(exclusive boolean default false)
returns void
language plpgsql volatile parallel unsafe security invoker
set search_path = public, pg_temp
as $$
begin
    if exclusive then
        perform pg_advisory_xact_lock(hashtext('pgfaces people edits'));
    else
        perform pg_advisory_xact_lock_shared(hashtext('pgfaces people edits'));
    end if;
end
$$;

-- Locks the people `ids` (in id order, as every edit does, so two edits never wait for each other in a circle),
-- then reads them: a person another transaction deleted meanwhile is "unknown person", never a foreign-key error.
-- `strength`: 'update' (to delete or merge them), 'no key update' (to change a name or a flag), 'key share' (to
-- give them a face).
create or replace function pgfaces_lock_people(ids bigint[], strength text)
returns void
language plpgsql volatile parallel unsafe security invoker
set search_path = public, pg_temp
as $$
begin
    -- (a run's labels are a million ids with repeats: a semi-join, not = any over the array for every person)
    case strength
        when 'update' then perform from people where id in (select unnest(ids)) order by id for update;
        when 'no key update' then perform from people where id in (select unnest(ids)) order by id for no key update;
        when 'key share' then perform from people where id in (select unnest(ids)) order by id for key share;
    end case;
end
$$;

create or replace function pgfaces_person_locked(person_id bigint, strength text)
returns people
language plpgsql volatile parallel unsafe security invoker
set search_path = public, pg_temp
as $$
begin
    perform pgfaces_lock_people(array[person_id], strength);
    return pgfaces_person(person_id);
end
$$;

create or replace function pgfaces_person(person_id bigint)
returns people
language plpgsql stable parallel safe security invoker
set search_path = public, pg_temp
as $$
declare
    pe people;
begin
    select * into pe from people where id = person_id;
    if not found then
        raise exception 'unknown person id %', coalesce(person_id::text, 'NULL') using errcode = 'invalid_parameter_value';
    end if;
    return pe;
end
$$;

-- The edit distance between two names, ignoring case (Levenshtein; names are short).
create or replace function pgfaces_name_distance(a text, b text)
returns int
language plpgsql immutable strict parallel safe security invoker
set search_path = public, pg_temp
as $$
declare
    x text[] := regexp_split_to_array(lower(a), '');
    y text[] := regexp_split_to_array(lower(b), '');
    previous int[];
    current int[];
begin
    previous := array(select generate_series(0, cardinality(y)));
    for i in 1 .. cardinality(x) loop
        current := array[i];
        for j in 1 .. cardinality(y) loop
            current := current || least(previous[j + 1] + 1, current[j] + 1,
                                        previous[j] + case when x[i] = y[j] then 0 else 1 end);
        end loop;
        previous := current;
    end loop;
    return previous[cardinality(y) + 1];
end
$$;

-- The names nearest one that is not there (for the hint of "unknown person"): the ones that contain it or differ
-- from it by at most a third of its letters (case aside), nearest first.
create or replace function pgfaces_nearest_names(name text, n int default 3)
returns text[]
language sql stable parallel safe security invoker
set search_path = public, pg_temp
as $$
    with wanted as (select trim($1) as name, greatest(1, length(trim($1)) / 3) as most
                    where length(trim($1)) between 1 and 200),  -- names have at most 200 characters
    near as (  -- the edit distance only where it can be small enough (it is at least the difference in length)
        select pe.name, case when abs(length(pe.name) - length(w.name)) <= w.most
                             then pgfaces_name_distance(pe.name, w.name) end as distance,
               least(length(pe.name), length(w.name)) >= 3
               and (strpos(lower(pe.name), lower(w.name)) > 0 or strpos(lower(w.name), lower(pe.name)) > 0) as contains,
               w.most
        from people pe, wanted w
        where pe.name is not null)
    select coalesce(array_agg(c.name order by c.rank, c.name), '{}')
    from (select near.name, coalesce(near.distance, abs(length(near.name) - length(trim($1)))) as rank
          from near where near.distance <= near.most or near.contains
          order by 2, 1
          limit greatest(coalesce(n, 3), 0)) c
$$;

create or replace function pgfaces_person_named(name text)
returns people
language plpgsql stable parallel safe security invoker
set search_path = public, pg_temp
as $$
declare
    pe people;
    nearest text[];
begin
    name := pgfaces_person_name(name);  -- the one rule for names (025-people.sql)
    select * into pe from people where people.name = pgfaces_person_named.name;
    if not found then
        nearest := pgfaces_nearest_names(coalesce(name, ''));
        raise exception 'unknown person %',
            coalesce('"' || left(name, 80) || case when length(name) > 80 then '..."' else '"' end, 'NULL')
            using errcode = 'invalid_parameter_value',
                  hint = case when cardinality(nearest) > 0
                              then format('did you mean %s? ', (select string_agg(format('"%s"', x), ', ')
                                                                 from unnest(nearest) x))
                              else '' end
                         || 'name_person(person_id, name) names one of people_overview; remember_face(name, image) adds one';
    end if;
    return pe;
end
$$;

-- Photos in which the person already has a face other than `face_id`: a face may not join them there.
create or replace function pgfaces_person_in_photo(person_id bigint, photo_id bigint, face_id bigint)
returns boolean
language sql stable parallel safe security invoker
set search_path = public, pg_temp
as $$
    select exists (select from face_people fp where fp.person_id = $1 and fp.photo_id = $2 and fp.face_id <> $3)
$$;

create or replace function name_person(person_id bigint, name text)
returns bigint
language plpgsql volatile parallel unsafe security definer
set search_path = public, pg_temp
as $$
declare
    pe people := pgfaces_person_locked(person_id, 'no key update');
    other people;
begin
    name := pgfaces_person_name(name);
    select * into other from people where people.name = name_person.name and id <> pe.id;
    if found then
        raise exception 'person % is named "%" already', other.id, name
            using errcode = 'unique_violation',
                  hint = case when pe.name is null then format('merge_people(%s, %s) makes them one person', other.id, pe.id)
                              else format('merge_people(%s, %s, keep_name => %L) makes them one person named so',
                                          other.id, pe.id, name) end;
    end if;
    update people set name = name_person.name where id = pe.id;
    return pe.id;
end
$$;

-- Everything of `other_id` becomes `keep_id`'s: faces (as the user's decision), references, and its name when
-- `keep_id` has none. Two people with faces in one photo cannot be one person. Two named people: the caller says
-- which name the merged person keeps (keep_name), else nothing happens (a name is never dropped silently).
drop function if exists merge_people(bigint, bigint);
create or replace function merge_people(keep_id bigint, other_id bigint, keep_name text default null)
returns bigint
language plpgsql volatile parallel unsafe security definer
set search_path = public, pg_temp
as $$
declare
    keep people;
    other people;
    shared bigint;
    new_name text;
begin
    perform pgfaces_people_edit_lock();
    perform pgfaces_lock_people(array[keep_id, other_id], 'update');  -- then read: a merge that lost a race says so
    keep := pgfaces_person(keep_id);
    other := pgfaces_person(other_id);
    if keep.id = other.id then
        raise exception 'cannot merge person % into itself', keep.id using errcode = 'invalid_parameter_value';
    end if;
    if keep.profile <> other.profile then
        raise exception 'person % has faces of profile "%", person % of "%": they cannot be one person',
            keep.id, keep.profile, other.id, other.profile using errcode = 'invalid_parameter_value';
    end if;
    if keep_name is not null then
        keep_name := pgfaces_person_name(keep_name);  -- the one rule for names (025-people.sql)
    end if;
    if keep_name is not null and keep_name is distinct from keep.name and keep_name is distinct from other.name then
        raise exception 'keep_name % is the name of neither person % (%) nor person % (%)', quote_literal(keep_name),
            keep.id, coalesce(quote_literal(keep.name), 'unnamed'), other.id, coalesce(quote_literal(other.name), 'unnamed')
            using errcode = 'invalid_parameter_value';
    end if;
    if keep.name is not null and other.name is not null and keep_name is null then
        raise exception 'persons % ("%") and % ("%") are both named: say which name the merged person keeps',
            keep.id, keep.name, other.id, other.name
            using errcode = 'invalid_parameter_value',
                  hint = format('merge_people(%s, %s, keep_name => %L) or merge_people(%s, %s, keep_name => %L)',
                                keep.id, other.id, keep.name, keep.id, other.id, other.name);
    end if;
    new_name := coalesce(keep_name, keep.name, other.name);
    select a.photo_id into shared
    from face_people a join face_people b on b.photo_id = a.photo_id
    where a.person_id = keep.id and b.person_id = other.id limit 1;
    begin
        if found then
            raise unique_violation;
        end if;
        update face_people set person_id = keep.id, assigned_by = 'user' where person_id = other.id;
    exception when unique_violation then  -- seen above, or a face given to one of them meanwhile (the constraint)
        select a.photo_id into shared
        from face_people a join face_people b on b.photo_id = a.photo_id
        where a.person_id = keep.id and b.person_id = other.id limit 1;
        raise exception 'persons % and % both have a face in photo %: two faces of one photo are never one person',
            keep.id, other.id, coalesce(shared::text, '(being added)')
            using errcode = 'integrity_constraint_violation',
                  hint = 'unassign_face(face_id) the wrong face first';
    end;
    update person_references set person_id = keep.id where person_id = other.id;
    delete from people where id = other.id;
    if new_name is distinct from keep.name then
        update people set name = new_name where id = keep.id;
    end if;
    return keep.id;
end
$$;

create or replace function assign_face(face_id bigint, person_id bigint)
returns bigint
language plpgsql volatile parallel unsafe security definer
set search_path = public, pg_temp
as $$
declare
    pe people;
    f faces;
begin
    perform pgfaces_people_edit_lock();
    pe := pgfaces_person_locked(person_id, 'key share');  -- nobody deletes them until this commits
    select * into f from faces where id = face_id for no key update;  -- one edit of a face at a time
    if not found then
        raise exception 'unknown face id %', coalesce(face_id::text, 'NULL') using errcode = 'invalid_parameter_value';
    end if;
    if f.profile <> pe.profile then
        raise exception 'face % is of profile "%", person %''s faces are of profile "%"', f.id, f.profile, pe.id, pe.profile
            using errcode = 'invalid_parameter_value';
    end if;
    begin
        if pgfaces_person_in_photo(pe.id, f.photo_id, f.id) then
            raise unique_violation;
        end if;
        perform pgfaces_place(f.id, pe.id, 'user');
    exception when unique_violation then  -- seen, or given to them by another transaction meanwhile
        raise exception 'person % has another face in photo % already: two faces of one photo are never one person',
            pe.id, f.photo_id using errcode = 'integrity_constraint_violation';
    end;
    return pe.id;
end
$$;

-- Takes the face out of its person and keeps it out: no clustering or joining puts it back anywhere.
create or replace function unassign_face(face_id bigint)
returns bigint
language plpgsql volatile parallel unsafe security definer
set search_path = public, pg_temp
as $$
declare
    f faces;
    was bigint;
begin
    perform pgfaces_people_edit_lock();
    select * into f from faces where id = face_id for no key update;
    if not found then
        raise exception 'unknown face id %', coalesce(face_id::text, 'NULL') using errcode = 'invalid_parameter_value';
    end if;
    was := person_id(f);
    perform pgfaces_place(f.id, null, 'user');
    return was;
end
$$;

create or replace function hide_person(person_id bigint, hidden boolean default true)
returns bigint
language plpgsql volatile parallel unsafe security definer
set search_path = public, pg_temp
as $$
declare
    pe people := pgfaces_person_locked(person_id, 'no key update');
begin
    update people set hidden = coalesce(hide_person.hidden, true) where id = pe.id;
    return pe.id;
end
$$;

-- Privacy: the person, their references and which faces are theirs are deleted; the photos and faces stay, and
-- those faces are kept out of every person (no run makes a new person of them). Returns the faces released.
create or replace function forget_person(person_id bigint)
returns bigint
language plpgsql volatile parallel unsafe security definer
set search_path = public, pg_temp
as $$
declare
    pe people;
    released bigint;
begin
    perform pgfaces_people_edit_lock();
    pe := pgfaces_person_locked(person_id, 'update');
    update face_people set person_id = null, assigned_by = 'user' where face_people.person_id = pe.id;
    get diagnostics released = row_count;
    delete from people where id = pe.id;  -- person_references go with it (on delete cascade)
    return released;
end
$$;

create or replace function forget_person(name text)
returns bigint
language sql volatile parallel unsafe security definer
set search_path = public, pg_temp
as $$ select forget_person((pgfaces_person_named(name)).id) $$;

-- What the collection shows: one row per person.
-- No ghost people: an unnamed person left with no face and no reference (its last face deleted with its photo,
-- unassigned, moved or released) is deleted at the end of the statement that emptied it, whoever ran it. A named
-- person stays, faces or not: the user named them.
-- Deletes the ghosts among `candidates` (NULL: among everyone): unnamed people with no face and no reference.
create or replace function pgfaces_delete_ghosts(candidates bigint[] default null)
returns void
language sql volatile parallel unsafe security invoker
set search_path = public, pg_temp
as $$
    delete from people pe
    where ($1 is null or pe.id = any ($1))
      and pe.name is null
      and not exists (select from face_people fp where fp.person_id = pe.id)
      and not exists (select from person_references r where r.person_id = pe.id)
$$;

create or replace function pgfaces_drop_empty_people()
returns trigger
language plpgsql volatile parallel unsafe security definer
set search_path = public, pg_temp
as $$
begin
    perform pgfaces_delete_ghosts(array(select distinct g.person_id from emptied g where g.person_id is not null));
    return null;
end
$$;

create or replace trigger face_people_drop_empty_after_delete after delete on face_people
    referencing old table as emptied for each statement execute function pgfaces_drop_empty_people();
create or replace trigger face_people_drop_empty_after_update after update on face_people
    referencing old table as emptied for each statement execute function pgfaces_drop_empty_people();

-- TRUNCATE photos CASCADE empties face_people without a DELETE: the unnamed people it leaves empty go with it.
create or replace function pgfaces_drop_ghost_people()
returns trigger
language plpgsql volatile parallel unsafe security definer
set search_path = public, pg_temp
as $$
begin
    perform pgfaces_delete_ghosts();
    return null;
end
$$;

create or replace trigger face_people_drop_ghosts_after_truncate after truncate on face_people
    for each statement execute function pgfaces_drop_ghost_people();

-- How good each face is for telling who it is, and whether it is good enough to form a person: the profile's
-- quality bar (profiles.quality_bar; a measure the face lacks, or a bar the profile lacks, passes). typicality: the
-- face's distance from the profile's centre, where faces that look like everyone lie. The one place of the rule:
-- cluster_faces, the join on INSERT and the people page read it here.
create or replace view face_quality as
select f.id as face_id, f.profile, least(f.width, f.height) as size, f.score, f.sharpness, f.brightness, f.yaw,
       t.typicality,
       coalesce(f.score >= (pr.quality_bar ->> 'min_score')::real, true)
       and coalesce(f.sharpness >= (pr.quality_bar ->> 'min_sharpness')::real, true)
       and coalesce(f.yaw <= (pr.quality_bar ->> 'max_yaw')::real, true)
       and coalesce(t.typicality >= (pr.quality_bar ->> 'min_typicality')::float8, true) as groupable
from faces f
join profiles pr on pr.name = f.profile
cross join lateral (select case when vector_dims(pr.centre) = vector_dims(f.embedding)
                                then f.embedding <-> pr.centre end as typicality) t;

create or replace view people_overview as
select pe.id as person_id, pe.name, pe.profile, pe.hidden,
       count(f.id) as faces, count(distinct f.photo_id) as photos,
       min(ph.taken_at) as first_taken_at, max(ph.taken_at) as last_taken_at,
       -- the cover the user chose while it is still theirs (no foreign key: TRUNCATE photos would follow it)
       coalesce((select c.face_id from face_people c where c.face_id = pe.cover_face_id and c.person_id = pe.id),
                (select c.id from face_people cp join faces c on c.id = cp.face_id join face_quality q on q.face_id = c.id
                 where cp.person_id = pe.id order by q.groupable desc, c.width * c.height desc, c.id limit 1))
           as cover_face_id
from people pe
left join face_people fp on fp.person_id = pe.id
left join faces f on f.id = fp.face_id
left join photos ph on ph.id = f.photo_id
group by pe.id;

-- Faces in no person: kept apart by the user (kept_apart); held back: under the profile's quality bar and not
-- clearly anyone's (README, "Which faces are grouped"); waiting: added since the last cluster_faces() of their
-- profile (the others were seen by it and are like no one else yet).
create or replace view unassigned_faces as
select f.id as face_id, f.photo_id, ph.filename, f.profile, f.x, f.y, f.width, f.height,
       fp.face_id is not null as kept_apart, not q.groupable as held_back,
       fp.face_id is null and q.groupable and (c.finished_at is null or ph.added_at > c.finished_at) as waiting
from faces f join photos ph on ph.id = f.photo_id
join face_quality q on q.face_id = f.id
left join face_people fp on fp.face_id = f.id
left join people_clustered c on c.profile = f.profile
where fp.person_id is null;

-- Searching by people -------------------------------------------------------------------------------------------

-- The queries that stand for a person in a profile: their reference faces, else (a person named from a group
-- clustering found) their own faces, those good enough to form a person first, then the largest.
create or replace function pgfaces_person_queries(pe people, p profiles, most int default 20)
returns table (embedding vector)
language sql stable parallel safe security invoker
set search_path = public, pg_temp
as $$
    select r.embedding from person_references r where r.person_id = pe.id and r.profile = p.name
    union all
    (select f.embedding from face_people fp join faces f on f.id = fp.face_id join face_quality q on q.face_id = f.id
     where fp.person_id = pe.id and f.profile = p.name
       and not exists (select from person_references r where r.person_id = pe.id and r.profile = p.name)
     order by q.groupable desc, f.width * f.height desc, f.id limit most)
$$;

-- The person's photos: every photo with a face assigned to them, and the photos whose faces lie nearest their
-- references (or faces), best first. A face of another named person, or one the user placed in another person,
-- is not theirs. `distance`: the face's distance to the nearest of the person's references (or faces).
create or replace function find_photos_of(name text, n int default 10, max_distance float8 default null,
                                          profile text default null)
returns table (photo_id bigint, filename text, face_id bigint, distance float8)
language plpgsql stable parallel safe security definer
set search_path = public, pg_temp
as $$
declare
    p profiles := pgfaces_profile(profile);
    pe people;
    queries vector[];
begin
    perform pgfaces_check_n(n);
    pe := pgfaces_person_named(name);
    select coalesce(array_agg(q.embedding), '{}') into queries from pgfaces_person_queries(pe, p) q;
    if cardinality(queries) = 0 then
        raise exception 'person "%" has no reference face for profile "%"', pe.name, p.name
            using errcode = 'invalid_parameter_value',
                  hint = format('run remember_face or reprocess(%L)', p.name);
    end if;
    return query execute format($q$
        select b.photo_id, b.filename, b.face_id, b.distance
        from (select distinct on (c.photo_id) c.photo_id, ph.filename, c.face_id, c.distance
              from (select f.photo_id, f.id as face_id,
                           (select min((f.embedding::vector(%1$s) %2$s q::vector(%1$s))::float8) from unnest($1) q) as distance
                    from face_people fp join faces f on f.id = fp.face_id where fp.person_id = $2 and f.profile = $3
                    union all
                    select m.photo_id, m.face_id, m.distance
                    from unnest($1) q cross join lateral pgfaces_photos_near($4, q, $5, $6) m
                    left join face_people fp on fp.face_id = m.face_id
                    left join people other on other.id = fp.person_id
                    where fp.person_id is null or fp.person_id = $2
                       or (other.name is null and fp.assigned_by <> 'user')) c
              join photos ph on ph.id = c.photo_id
              order by c.photo_id, c.distance, c.face_id) b
        order by b.distance, b.photo_id
        limit $5
        $q$, p.dimensions, pgfaces_operator(p))
    using queries, pe.id, p.name, p, n, max_distance;
end
$$;

-- max_distance as text: a number or 'auto' (the profile's calibrated same-person distance: their photos only). No
-- default for it here, so calls that omit it keep resolving to the float8 version (no limit).
create or replace function find_photos_of(name text, n int, max_distance text, profile text default null)
returns table (photo_id bigint, filename text, face_id bigint, distance float8)
language sql stable parallel safe security definer
set search_path = public, pg_temp
as $$ select * from find_photos_of($1, $2, pgfaces_max_distance(pgfaces_profile($4), $3), $4) $$;

-- The photos in which all the named people appear: by a face assigned to them, or an unassigned face within the
-- profile's same-person threshold of their references. With `only`, no other named person appears in them.
-- Ranked by the farthest of the people's matches (0 for assigned faces), then the newest photo.
-- (`only` is a reserved word: pass it by position, or as "only" => true.)
create or replace function find_photos_with(names text[], n int default 10, "only" boolean default false)
returns table (photo_id bigint, filename text, taken_at timestamptz, distance float8)
language plpgsql stable parallel safe security definer
set search_path = public, pg_temp
as $$
declare
    wanted bigint[];
    unknown text;
begin
    perform pgfaces_check_n(n);
    if names is null or cardinality(names) = 0 then
        raise exception 'find_photos_with needs at least one name' using errcode = 'invalid_parameter_value';
    end if;
    names := array(select pgfaces_person_name(u.name) from unnest(names) u(name));  -- one rule for names
    select u.name into unknown from unnest(names) u(name) where not exists (select from people pe where pe.name = u.name)
    limit 1;
    if found then
        perform pgfaces_person_named(unknown);  -- raises "unknown person ..."
    end if;
    select array_agg(distinct pe.id) into wanted from people pe where pe.name = any (names);
    return query
        with appearances as (
            select f.photo_id, fp.person_id, 0::float8 as distance
            from face_people fp join faces f on f.id = fp.face_id where fp.person_id = any (wanted)
            union all
            select m.photo_id, pe.id, m.distance
            from people pe
            join profiles p on p.name = pe.profile
            join person_references r on r.person_id = pe.id and r.profile = p.name
            cross join lateral pgfaces_faces_near(p, r.embedding, 200) m
            left join face_people fp on fp.face_id = m.face_id
            where pe.id = any (wanted) and m.distance <= coalesce(p.match_threshold, 0)
              and fp.person_id is null
        ),
        per_photo as (
            select a.photo_id, max(a.best) as distance
            from (select ap.photo_id, ap.person_id, min(ap.distance) as best from appearances ap
                  group by ap.photo_id, ap.person_id) a
            group by a.photo_id
            having count(*) = cardinality(wanted)
        )
        select pp.photo_id, ph.filename, ph.taken_at, pp.distance
        from per_photo pp join photos ph on ph.id = pp.photo_id
        where not find_photos_with."only" or not exists (
            select from faces f join face_people fp on fp.face_id = f.id join people other on other.id = fp.person_id
            where f.photo_id = pp.photo_id and other.name is not null and not other.id = any (wanted))
        order by pp.distance, ph.taken_at desc nulls last, pp.photo_id
        limit n;
end
$$;

-- The unnamed people whose faces lie nearest a named person's references (or faces): candidates to merge into
-- them (merge_people(named_id, person_id)), never merged on their own. Nearest first.
create or replace function suggest_people(name text, n int default 5)
returns table (person_id bigint, faces bigint, distance float8)
language plpgsql stable parallel safe security definer
set search_path = public, pg_temp
as $$
declare
    pe people := pgfaces_person_named(name);
    p profiles := pgfaces_profile(pe.profile);
begin
    perform pgfaces_check_n(n);
    return query
        select fp.person_id, count(distinct fp.face_id), min(m.distance)
        from pgfaces_person_queries(pe, p) q
        cross join lateral pgfaces_faces_near(p, q.embedding, 100) m
        join face_people fp on fp.face_id = m.face_id
        join people other on other.id = fp.person_id
        where other.name is null and other.id <> pe.id
          and m.distance <= coalesce(p.match_threshold, 'infinity')
        group by fp.person_id
        order by min(m.distance), fp.person_id
        limit n;
end
$$;
