-- Search by vector: plain SQL, present in both modes. Each query is built for one profile so that the
-- planner sees that profile's partial HNSW index (same cast, same predicate). The index orders by the
-- half-precision distance; the rows it returns are re-ranked by the exact one.

create or replace function find_faces_near(embedding vector, n int default 10, profile text default null)
returns table (face_id bigint, photo_id bigint, filename text, x int, y int, width int, height int, distance float8)
language plpgsql stable parallel safe security invoker
set search_path = public, pg_temp
set hnsw.iterative_scan = strict_order
as $$
declare
    p profiles := pgfaces_profile(profile);
begin
    perform pgfaces_check_n(n);
    if embedding is null then
        raise exception 'embedding is NULL' using errcode = 'invalid_parameter_value';
    end if;
    if vector_dims(embedding) <> p.dimensions then
        raise exception 'profile "%" has % dimensions, the embedding has %', p.name, p.dimensions, vector_dims(embedding)
            using errcode = 'invalid_parameter_value';
    end if;
    return query execute format($q$
        select f.id, f.photo_id, ph.filename, f.x, f.y, f.width, f.height, f.distance
        from (select f.id, f.photo_id, f.x, f.y, f.width, f.height,
                     (f.embedding::vector(%1$s) %2$s $1::vector(%1$s))::float8 as distance
              from faces f
              where f.profile = %3$L
              order by f.embedding::halfvec(%1$s) %2$s $1::halfvec(%1$s)
              limit $2) f
        join photos ph on ph.id = f.photo_id
        order by f.distance, f.id
        $q$, p.dimensions, pgfaces_operator(p), p.name)
    using embedding, n;
end
$$;

-- One row per photo, ranked by its best face. Photos with several faces near the query take several of the
-- nearest faces, so the candidate set grows until it holds n photos or the profile has no more faces.
create or replace function find_photos_near(embedding vector, n int default 10, max_distance float8 default null,
                                            profile text default null)
returns table (photo_id bigint, filename text, face_id bigint, distance float8)
language plpgsql stable parallel safe security invoker
set search_path = public, pg_temp
as $$
declare
    p profiles := pgfaces_profile(profile);
    max_k int := coalesce(nullif(current_setting('pgfaces.max_results', true), '')::int, 10000) * 10;
    k int;
    face_ids bigint[];
    photo_ids bigint[];
    distances float8[];
    got_photos int;
begin
    perform pgfaces_check_n(n);
    if max_distance is not null and max_distance <= 0 then
        raise exception 'max_distance must be positive (got %)', max_distance using errcode = 'invalid_parameter_value';
    end if;
    k := least(n * 4 + 40, max_k);
    loop
        select coalesce(array_agg(c.face_id order by c.distance), '{}'), coalesce(array_agg(c.photo_id order by c.distance), '{}'),
               coalesce(array_agg(c.distance order by c.distance), '{}'), count(distinct c.photo_id)
        into face_ids, photo_ids, distances, got_photos
        from find_faces_near(embedding, k, p.name) c;
        exit when got_photos >= n or cardinality(face_ids) < k or k >= max_k
               or (max_distance is not null and distances[k] > max_distance);
        k := least(k * 4, max_k);
    end loop;
    return query
        select b.photo_id, b.filename, b.face_id, b.distance
        from (select distinct on (c.photo_id) c.photo_id, ph.filename, c.face_id, c.distance
              from unnest(face_ids, photo_ids, distances) as c(face_id, photo_id, distance)
              join photos ph on ph.id = c.photo_id
              where max_distance is null or c.distance <= max_distance
              order by c.photo_id, c.distance, c.face_id) b
        order by b.distance, b.photo_id
        limit n;
end
$$;

-- max_distance as text: NULL (no limit), a number, or 'auto' (the profile's calibrated match_threshold:
-- "which photos contain me", matches only).
create or replace function pgfaces_max_distance(p profiles, max_distance text)
returns float8
language plpgsql stable parallel safe security invoker
set search_path = public, pg_temp
as $$
begin
    if max_distance is null then
        return null;
    elsif lower(trim(max_distance)) = 'auto' then
        if p.match_threshold is null then
            raise exception 'profile "%" has no match_threshold to search with max_distance => ''auto''; calibrate it (python -m tests.bench.calibrate --profile %) and update profiles set match_threshold = ...',
                p.name, p.name using errcode = 'invalid_parameter_value';
        end if;
        return p.match_threshold;
    elsif trim(max_distance) ~ '^[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?$' then
        return trim(max_distance)::float8;
    end if;
    raise exception 'max_distance must be a number or ''auto'' (got %)', quote_literal(max_distance)
        using errcode = 'invalid_parameter_value';
end
$$;

-- No default for max_distance here, so calls that omit it keep resolving to the float8 version.
create or replace function find_photos_near(embedding vector, n int, max_distance text, profile text default null)
returns table (photo_id bigint, filename text, face_id bigint, distance float8)
language plpgsql stable parallel safe security invoker
set search_path = public, pg_temp
as $$
declare
    p profiles := pgfaces_profile(profile);
begin
    return query select * from find_photos_near(embedding, n, pgfaces_max_distance(p, max_distance), p.name);
end
$$;

-- Ranks photos by the best distance to any of a person's reference faces.
create or replace function find_photos_of(name text, n int default 10, max_distance float8 default null,
                                          profile text default null)
returns table (photo_id bigint, filename text, face_id bigint, distance float8)
language plpgsql stable parallel safe security invoker
set search_path = public, pg_temp
as $$
declare
    p profiles := pgfaces_profile(profile);
    who bigint;
begin
    perform pgfaces_check_n(n);
    select pe.id into who from people pe where pe.name = find_photos_of.name;
    if not found then
        raise exception 'unknown person "%"; remember_face(name, image) adds one', name
            using errcode = 'invalid_parameter_value';
    end if;
    if not exists (select 1 from person_references r where r.person_id = who and r.profile = p.name) then
        raise exception 'person "%" has no reference face for profile "%"; run remember_face or reprocess(%L)',
            name, p.name, p.name using errcode = 'invalid_parameter_value';
    end if;
    return query
        select b.photo_id, b.filename, b.face_id, b.distance
        from (select distinct on (m.photo_id) m.photo_id, m.filename, m.face_id, m.distance
              from person_references r
              cross join lateral find_photos_near(r.embedding, n, max_distance, p.name) m
              where r.person_id = who and r.profile = p.name
              order by m.photo_id, m.distance) b
        order by b.distance, b.photo_id
        limit n;
end
$$;
