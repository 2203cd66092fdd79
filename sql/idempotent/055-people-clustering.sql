-- Grouping faces into people: what cluster_faces() reads and writes (the grouping itself is pgfaces.people and
-- pgfaces.clustering, in the server or in a client), and a new face joining a person on INSERT. Plain SQL:
-- present in both modes. README.md, "People", says how it decides.

-- Starts a run: one run per profile at a time; a second one waits for the first (and then finds little to do).
create or replace function pgfaces_cluster_begin(profile text)
returns void
language plpgsql volatile parallel unsafe security definer
set search_path = public, pg_temp
as $$
declare
    key bigint := hashtext('pgfaces cluster_faces ' || profile);
begin
    -- The neighbour queries want k (pgfaces.people.NEIGHBOURS) faces each, not the searches' 100 candidates.
    perform set_config('hnsw.ef_search', '40', true);
    if not pg_try_advisory_xact_lock(key) then
        raise notice 'cluster_faces(%) waits for the run already going on', quote_literal(profile);
        perform pg_advisory_xact_lock(key);
    end if;
end
$$;

-- What a run sees of each face: its photo, its person, whether the user placed it there (or kept it apart:
-- user_placed with no person) and whether its person is named.
create or replace function pgfaces_cluster_faces(profile text)
returns table (face_id bigint, photo_id bigint, person_id bigint, user_placed boolean, named boolean)
language sql stable parallel safe security definer
set search_path = public, pg_temp
as $$
    select f.id, f.photo_id, f.person_id, coalesce(f.assigned_by = 'user', false), pe.name is not null
    from faces f left join people pe on pe.id = f.person_id
    where f.profile = $1
    order by f.id
$$;

-- Writes a run's groups: labels[i] is face_ids[i]'s person (an existing id), a new person (the same negative label
-- below -1, the same new person) or -1 (none). Faces the user placed are never changed, nor are named people's
-- names; unnamed people left with no face are deleted. The rule that two faces of one photo are never one person
-- is checked again here: a run that broke it changes nothing. Returns how many faces changed person.
create or replace function pgfaces_cluster_apply(profile text, face_ids bigint[], labels bigint[])
returns bigint
language plpgsql volatile parallel unsafe security definer
set search_path = public, pg_temp
as $$
declare
    changed bigint;
    clash record;
begin
    if cardinality(face_ids) is distinct from cardinality(labels) then
        raise exception 'pgfaces_cluster_apply: % faces but % labels', cardinality(face_ids), cardinality(labels)
            using errcode = 'invalid_parameter_value';
    end if;
    with given as (select * from unnest(face_ids, labels) as l(face_id, label)),
         fresh as (select label, row_number() over (order by label desc) as i
                   from (select distinct label from given where label < -1) d),
         made as (insert into people (profile) select pgfaces_cluster_apply.profile from fresh returning id),
         numbered as (select id, row_number() over (order by id) as i from made),
         target as (
             select g.face_id,
                    case when g.label < -1 then n.id
                         when g.label >= 0 then (select pe.id from people pe
                                                 where pe.id = g.label and pe.profile = pgfaces_cluster_apply.profile)
                    end as person_id
             from given g left join fresh using (label) left join numbered n using (i))
    update faces f set person_id = t.person_id, assigned_by = case when t.person_id is null then null else 'cluster' end
    from target t
    where f.id = t.face_id and f.profile = pgfaces_cluster_apply.profile
      and f.assigned_by is distinct from 'user' and f.person_id is distinct from t.person_id;
    get diagnostics changed = row_count;

    select f.person_id, f.photo_id into clash from faces f
    where f.profile = pgfaces_cluster_apply.profile and f.person_id is not null
    group by f.person_id, f.photo_id having count(*) > 1 limit 1;
    if found then
        raise exception 'cluster_faces would put two faces of photo % in person %; nothing was changed',
            clash.photo_id, clash.person_id using errcode = 'internal_error';
    end if;
    delete from people pe
    where pe.profile = pgfaces_cluster_apply.profile and pe.name is null
      and not exists (select from faces f where f.person_id = pe.id)
      and not exists (select from person_references r where r.person_id = pe.id);
    return changed;
end
$$;

-- A new face joins a person at once when it clearly belongs (pgfaces.clustering.join_rule, the same test as the
-- clustering's): among its JOIN_NEIGHBOURS nearest faces within RADIUS, each person's listed faces at their
-- distance and the rest of what the list could hold of them at RADIUS average under the profile's same-person
-- distance; the nearest such person wins, unless it has a face in this photo already. Otherwise the face waits for
-- the next cluster_faces(). Called once per photo, after its faces are written. Returns the faces that joined.
create or replace function pgfaces_join_people(photo_id bigint)
returns int
language plpgsql volatile parallel unsafe security definer
set search_path = public, pg_temp
set hnsw.ef_search = 40
as $$
declare
    k constant int := 16;  -- pgfaces.people.NEIGHBOURS
    radius constant float8 := 0.7;  -- pgfaces.clustering.RADIUS
    f faces;
    p profiles;
    chosen bigint;
    joined int := 0;
begin
    for f in select * from faces where faces.photo_id = pgfaces_join_people.photo_id
                                   and person_id is null and assigned_by is null order by id loop
        if p is null or p.name <> f.profile then
            p := pgfaces_profile(f.profile);
        end if;
        continue when not exists (select from people pe where pe.profile = p.name);
        execute format($q$
            with near as (
                select g.person_id, (g.embedding::halfvec(%1$s) %2$s $1::halfvec(%1$s))::float8 as distance
                from faces g where g.profile = $2 and g.id <> $3
                order by g.embedding::halfvec(%1$s) %2$s $1::halfvec(%1$s) limit $4),
            listed as (
                select person_id, count(*) as listed, sum(distance) as total from near
                where distance < $5 and person_id is not null group by person_id),
            full_list as (select count(*) >= $4 as full from near where distance < $5)
            select l.person_id
            from listed l cross join full_list
            cross join lateral (select count(*) as size from faces s where s.person_id = l.person_id) s
            cross join lateral (select greatest(case when full_list.full then least(s.size, $4) else s.size end,
                                                l.listed)::float8 as room) r
            where not pgfaces_person_in_photo(l.person_id, $6, $3)
              and (l.total + $5 * (r.room - l.listed)) / r.room < $7
            order by (l.total + $5 * (r.room - l.listed)) / r.room, l.person_id
            limit 1 $q$, p.dimensions, pgfaces_operator(p))
        into chosen
        using f.embedding, p.name, f.id, k, radius, f.photo_id, coalesce(p.match_threshold, 0.6);
        if chosen is not null then
            update faces set person_id = chosen, assigned_by = 'join' where id = f.id;
            joined := joined + 1;
        end if;
    end loop;
    return joined;
end
$$;
