-- Grouping faces into people: each face's nearest faces, listed once when it is written; a new face joining a person
-- on INSERT; and what cluster_faces() reads and writes (the grouping itself is pgfaces.people and
-- pgfaces.clustering, in the server or in a client). Plain SQL: present in both modes. README.md, "People", says how
-- it decides.
--
-- NEIGHBOURS (20) and RADIUS (0.7) are pgfaces.clustering's; the join's and the grouping's threshold is the
-- profile's cluster_threshold.

-- Lists the nearest faces of each of `face_ids` (one profile's), from the profile's HNSW index, and keeps them in
-- face_neighbours. Returns how many lists it made.
create or replace function pgfaces_list_neighbours(p profiles, face_ids bigint[])
returns bigint
language plpgsql volatile parallel unsafe security invoker
set search_path = public, pg_temp
set hnsw.ef_search = 40
as $$
declare
    made bigint;
begin
    execute format($q$
        insert into face_neighbours (face_id, neighbours, distances, newest_face)
        select f.id, coalesce(n.ids, '{}'), coalesce(n.distances, '{}'), (select max(id) from faces)
        from faces f
        cross join lateral (
            select array_agg(g.id order by g.distance) as ids, array_agg(g.distance order by g.distance) as distances
            from (select g.id, (g.embedding::halfvec(%1$s) %2$s f.embedding::halfvec(%1$s))::real as distance
                  from faces g where g.profile = $1
                  order by g.embedding::halfvec(%1$s) %2$s f.embedding::halfvec(%1$s)
                  limit 21) g
            where g.id <> f.id and g.distance <= 0.7) n
        where f.id = any ($2) and f.profile = $1
        on conflict on constraint face_neighbours_pkey do update
            set neighbours = excluded.neighbours, distances = excluded.distances, newest_face = excluded.newest_face
        $q$, p.dimensions, pgfaces_operator(p))
    using p.name, face_ids;
    get diagnostics made = row_count;
    return made;
end
$$;

-- Makes the lists of up to `most` faces of the profile that have none, or whose list is older than half the
-- collection; returns how many it made (0: all are up to date). cluster_faces() calls it until it returns 0.
create or replace function pgfaces_refresh_neighbours(profile text, most int)
returns bigint
language plpgsql volatile parallel unsafe security definer
set search_path = public, pg_temp
as $$
declare
    p profiles := pgfaces_profile(profile);
    newest bigint := (select max(id) from faces);
begin
    if most is null or most not between 1 and 100000 then  -- a client-side run asks for 2,000 at a time
        raise exception 'pgfaces_refresh_neighbours: most must be between 1 and 100000 (got %)', most
            using errcode = 'invalid_parameter_value';
    end if;
    return pgfaces_list_neighbours(p, array(
        select f.id from faces f left join face_neighbours n on n.face_id = f.id
        where f.profile = p.name and (n.face_id is null or n.newest_face * 2 < newest)
        order by f.id limit most));
end
$$;

-- The person a face clearly belongs to, from its list (pgfaces.clustering.join_rule): each person's listed faces at
-- their distance, and the rest of what the list could hold of them at RADIUS, averaged; the nearest person whose
-- average is under the threshold, unless it has a face in this photo already. NULL: the face waits.
create or replace function pgfaces_join_person(p profiles, face_id bigint, photo_id bigint)
returns bigint
language sql stable parallel safe security invoker
set search_path = public, pg_temp
as $$
    with listed as (
        select u.neighbour, u.distance from face_neighbours n, unnest(n.neighbours, n.distances) as u(neighbour, distance)
        where n.face_id = $2),
    per_person as (
        select fp.person_id, count(*) as listed, sum(l.distance) as total
        from listed l join face_people fp on fp.face_id = l.neighbour
        where fp.person_id is not null group by fp.person_id),
    scored as (
        select pp.person_id,
               (pp.total + 0.7 * (r.room - pp.listed)) / r.room as linkage
        from per_person pp
        -- (a person's size counts up to 200: past that, with at most 20 faces listed, the average is over 0.63
        -- either way, and a large person's size is not counted face by face on every INSERT)
        cross join lateral (select count(*) as size from (select from face_people s where s.person_id = pp.person_id
                                                          limit 200) s) s
        cross join lateral (
            select greatest(case when (select count(*) from listed) >= 20 then least(s.size, 20) else s.size end,
                            pp.listed)::float8 as room) r
        where not pgfaces_person_in_photo(pp.person_id, $3, $2))
    select person_id from scored where linkage < ($1).cluster_threshold
    order by linkage, person_id limit 1
$$;

-- The person a face below the quality bar (or one no person's average takes) joins, by the vote of its nearest
-- faces (pgfaces.clustering.join_left_out): of its 5 nearest listed faces that are in a person, 3 or more are one
-- person's, the nearest of them among them, nearer than 0.55; never a person with a face in this photo. NULL: none.
create or replace function pgfaces_join_by_vote(face_id bigint, photo_id bigint)
returns bigint
language sql stable parallel safe security invoker
set search_path = public, pg_temp
as $$
    with nearest as (
        select fp.person_id, u.distance, row_number() over (order by u.distance, u.neighbour) as rank
        from face_neighbours n, unnest(n.neighbours, n.distances) as u(neighbour, distance)
        join face_people fp on fp.face_id = u.neighbour and fp.person_id is not null
        where n.face_id = $1
        order by u.distance, u.neighbour limit 5),
    first as (select person_id, distance from nearest where rank = 1)
    select f.person_id from first f
    where f.distance < 0.55
      and (select count(*) from nearest n where n.person_id = f.person_id) >= 3
      and not pgfaces_person_in_photo(f.person_id, $2, $1)
$$;

-- What happens when a photo's faces are written (by the INSERT trigger, a queue worker or a client): each face's
-- list is made, and a face joins a person at once when it clearly belongs; the others wait for the next
-- cluster_faces(). Returns the faces that joined.
create or replace function pgfaces_faces_added(photo_id bigint)
returns int
language plpgsql volatile parallel unsafe security definer
set search_path = public, pg_temp
as $$
declare
    p profiles;
    face bigint;
    good boolean;
    chosen bigint;
    joined int := 0;
begin
    for p in select pr.* from profiles pr where exists (
                 select from faces fa where fa.photo_id = pgfaces_faces_added.photo_id and fa.profile = pr.name) loop
        perform pgfaces_list_neighbours(p, array(
            select fa.id from faces fa where fa.photo_id = pgfaces_faces_added.photo_id and fa.profile = p.name));
        continue when p.cluster_threshold is null or not exists (select from people pe where pe.profile = p.name);
        for face, good in select fa.id, q.groupable from faces fa join face_quality q on q.face_id = fa.id
                          left join face_people fp on fp.face_id = fa.id
                          where fa.photo_id = pgfaces_faces_added.photo_id and fa.profile = p.name
                            and fp.face_id is null
                          order by fa.id loop
            chosen := case when good then pgfaces_join_person(p, face, photo_id) end;
            chosen := coalesce(chosen, pgfaces_join_by_vote(face, photo_id));
            continue when chosen is null;
            -- What another transaction does meanwhile wins: the person merged away or forgotten (gone once
            -- locked), a face of this photo given to them (face_people_photo_once), a lock taken in the other
            -- order. The face then waits for the next cluster_faces(); the photo is stored whatever happens.
            begin
                perform pgfaces_lock_people(array[chosen], 'key share');
                if exists (select from people pe where pe.id = chosen) then
                    perform pgfaces_place(face, chosen, 'join');
                    joined := joined + 1;
                end if;
            exception when unique_violation or foreign_key_violation or deadlock_detected then
                null;
            end;
        end loop;
    end loop;
    return joined;
end
$$;

-- Starts a run: one run per profile at a time; a second one waits for the first (and then finds little to do).
create or replace function pgfaces_cluster_begin(profile text)
returns void
language plpgsql volatile parallel unsafe security definer
set search_path = public, pg_temp
as $$
declare
    key bigint := hashtext('pgfaces cluster_faces ' || profile);
begin
    if (pgfaces_profile(profile)).cluster_threshold is null then
        raise exception 'profile "%" has no cluster_threshold: its faces cannot be grouped into people', profile
            using errcode = 'invalid_parameter_value',
                  hint = 'update profiles set cluster_threshold = ... (0.6 for the dlib descriptor)';
    end if;
    if not pg_try_advisory_xact_lock(key) then
        raise notice 'cluster_faces(%) waits for the run already going on', quote_literal(profile);
        perform pg_advisory_xact_lock(key);
    end if;
end
$$;

-- The state a run works from and leaves: the profile's faces, their lists' ages, who is whose and who is named.
create or replace function pgfaces_cluster_fingerprint(profile text)
returns text
language sql stable parallel safe security definer
set search_path = public, pg_temp
as $$
    select md5(coalesce(string_agg(concat_ws(':', f.id, n.newest_face, cardinality(n.neighbours), fp.person_id,
                                             fp.assigned_by, pe.name is not null, q.groupable), ',' order by f.id), ''))
    from faces f
    join face_quality q on q.face_id = f.id
    left join face_neighbours n on n.face_id = f.id
    left join face_people fp on fp.face_id = f.id
    left join people pe on pe.id = fp.person_id
    where f.profile = $1
$$;

-- Whether the profile is as the last run left it (then a run has nothing to do).
create or replace function pgfaces_cluster_unchanged(profile text)
returns boolean
language sql stable parallel safe security definer
set search_path = public, pg_temp
as $$
    select exists (select from people_clustered c where c.profile = $1 and c.fingerprint = pgfaces_cluster_fingerprint($1))
$$;

-- What a run sees of each face: its photo, its person, whether the user placed it there (or kept it apart:
-- user_placed with no person), whether its person is named, whether it is good enough to form a person
-- (face_quality), and its list; `most` faces after `after`, by id (a run reads a million faces in parts).
drop function if exists pgfaces_cluster_faces(text, bigint, int);  -- before it said which faces are groupable
create or replace function pgfaces_cluster_faces(profile text, after bigint default 0, most int default null)
returns table (face_id bigint, photo_id bigint, person_id bigint, user_placed boolean, named boolean,
               groupable boolean, neighbours bigint[], distances real[])
language sql stable parallel safe security definer
set search_path = public, pg_temp
as $$
    select f.id, f.photo_id, fp.person_id, coalesce(fp.assigned_by = 'user', false), pe.name is not null,
           q.groupable, coalesce(n.neighbours, '{}'), coalesce(n.distances, '{}')
    from faces f
    join face_quality q on q.face_id = f.id
    left join face_people fp on fp.face_id = f.id
    left join people pe on pe.id = fp.person_id
    left join face_neighbours n on n.face_id = f.id
    where f.profile = $1 and f.id > $2
    order by f.id
    limit $3
$$;

-- Writes a run's groups: labels[i] is face_ids[i]'s person (an existing id), a new person (the same negative label
-- below -1, the same new person) or -1 (none). Faces the user placed are never changed, nor are named people's
-- names; unnamed people left with no face are deleted. Two faces of one photo are never one person: where the
-- result would break that (two faces of one photo in one group, or a face given to that person meanwhile), one face
-- stays (the user's, then the one that joined on INSERT, then the lowest id) and the others wait for the next run.
-- Returns how many faces changed person.
create or replace function pgfaces_cluster_apply(profile text, face_ids bigint[], labels bigint[])
returns bigint
language plpgsql volatile parallel unsafe security definer
set search_path = public, pg_temp
as $$
declare
    changed bigint;
    attempt int := 0;
begin
    if cardinality(face_ids) is distinct from cardinality(labels) then
        raise exception 'pgfaces_cluster_apply: % faces but % labels', cardinality(face_ids), cardinality(labels)
            using errcode = 'invalid_parameter_value';
    end if;
    perform pgfaces_cluster_begin(profile);  -- the run's lock: held already by a run, taken by any other caller
    perform pgfaces_people_edit_lock(true);  -- edits by hand wait while this writes
    perform pgfaces_lock_people(labels, 'key share');  -- nobody deletes them now; one deleted before is no target
    loop
        attempt := attempt + 1;
        begin
            set constraints face_people_photo_once deferred;
            changed := pgfaces_cluster_write(profile, face_ids, labels);
            perform pgfaces_cluster_repair();
            set constraints face_people_photo_once immediate;  -- waits for what others are writing, then checks
            exit;
        exception when unique_violation or foreign_key_violation or deadlock_detected then
            -- another transaction added a face of one of these photos to one of these people, or deleted a photo,
            -- since this run read them: write again from what is there now
            if attempt >= 3 then
                raise exception 'cluster_faces(%): the faces changed while it wrote them, % times; run it again',
                    quote_literal(profile), attempt using errcode = 'serialization_failure';
            end if;
        end;
    end loop;
    perform pgfaces_delete_ghosts(array(select pe.id from people pe where pe.profile = pgfaces_cluster_apply.profile));
    insert into people_clustered (profile, fingerprint, finished_at)
    values (profile, pgfaces_cluster_fingerprint(profile), now())
    on conflict on constraint people_clustered_pkey do update
        set fingerprint = excluded.fingerprint, finished_at = excluded.finished_at;
    return changed;
end
$$;

-- pgfaces_cluster_apply's write, in one statement; returns how many faces changed person.
create or replace function pgfaces_cluster_write(profile text, face_ids bigint[], labels bigint[])
returns bigint
language sql volatile parallel unsafe security invoker
set search_path = public, pg_temp
as $$
    with given as (select * from unnest(face_ids, labels) as l(face_id, label)),
         fresh as (select label, row_number() over (order by label desc) as i
                   from (select distinct label from given where label < -1) d),
         made as (insert into people (profile) select pgfaces_cluster_write.profile from fresh returning id),
         numbered as (select id, row_number() over (order by id) as i from made),
         target as (
             select g.face_id,
                    case when g.label < -1 then n.id
                         when g.label >= 0 then (select pe.id from people pe
                                                 where pe.id = g.label and pe.profile = pgfaces_cluster_write.profile)
                    end as person_id
             from given g left join fresh using (label) left join numbered n using (i)),
         gone as (
             delete from face_people fp using target t
             where fp.face_id = t.face_id and t.person_id is null and fp.assigned_by <> 'user'
             returning fp.face_id),
         placed as (
             insert into face_people (face_id, photo_id, person_id, assigned_by)
             select t.face_id, f.photo_id, t.person_id, 'cluster' from target t
             join faces f on f.id = t.face_id and f.profile = pgfaces_cluster_write.profile
             left join face_people fp on fp.face_id = t.face_id
             where t.person_id is not null
               and (fp.face_id is null or (fp.assigned_by <> 'user' and fp.person_id is distinct from t.person_id))
             on conflict on constraint face_people_pkey do update
                 set person_id = excluded.person_id, assigned_by = 'cluster'
                 where face_people.assigned_by <> 'user'
             returning face_id)
    select (select count(*) from gone) + (select count(*) from placed)
$$;

-- Where a person holds two faces of one photo, one stays (the user's placement, then the join's, then the lowest
-- face id) and the others leave their person and wait. Returns how many left.
create or replace function pgfaces_cluster_repair()
returns bigint
language sql volatile parallel unsafe security invoker
set search_path = public, pg_temp
as $$
    with clash as (
        select fp.person_id, fp.photo_id from face_people fp where fp.person_id is not null
        group by fp.person_id, fp.photo_id having count(*) > 1),
    ranked as (
        select fp.face_id, row_number() over (partition by fp.person_id, fp.photo_id
                                              order by fp.assigned_by = 'user' desc, fp.assigned_by = 'join' desc,
                                                       fp.face_id) as rank
        from face_people fp join clash c on c.person_id = fp.person_id and c.photo_id = fp.photo_id),
    left_out as (delete from face_people fp using ranked r where fp.face_id = r.face_id and r.rank > 1
                 returning fp.face_id)
    select count(*) from left_out
$$;
