-- Search by vector: plain SQL, present in both modes. The public functions resolve the profile and check `n` once;
-- the internal ones (pgfaces_*_near) take the profile row and fetch as many rows as they need. Each query is built
-- for one profile so that the planner sees that profile's partial HNSW index (same cast, same predicate). The
-- index orders by the half-precision distance; the rows it returns are re-ranked by the exact one.

-- A face's key for people reading a listing: the photo's file stem and the box. Computed, never stored (a long
-- filename is not copied into every face): `select f.face_key from faces f` works as if it were a column.
create or replace function face_key(f faces)
returns text
language sql stable parallel safe security invoker
set search_path = public, pg_temp
as $$
    select coalesce(nullif(regexp_replace(regexp_replace(p.filename, '^.*/', ''), '\.[^.]*$', ''), ''), 'photo')
           || '-' || f.x || '-' || f.y || '-' || f.width || '-' || f.height
    from photos p where p.id = f.photo_id
$$;

-- Why a search of profile p found nothing at all, as a NOTICE: the profile has no face yet (a profile added or not
-- ingested: reprocess it), its photos wait for the workers, or no photo is stored.
create or replace function pgfaces_notice_no_faces(p profiles)
returns void
language plpgsql stable parallel safe security invoker
set search_path = public, pg_temp
as $$
begin
    if not exists (select from photos) then
        raise notice 'no photo is stored yet, so no face of profile "%"', p.name
            using hint = 'INSERT INTO photos (filename, image) ..., or ./pgfaces load FOLDER';
    elsif exists (select from analysis_queue q where q.profile = p.name and q.state in ('queued', 'running')) then
        raise notice 'profile "%" has no face yet: its photos wait in the queue for the workers', p.name
            using hint = './pgfaces work (in the server) or python -m pgfaces.client work (anywhere)';
    elsif not p.ingest then
        raise notice 'profile "%" has no face yet: an INSERT analyses its photo with the ingest profiles only', p.name
            using hint = case when pgfaces_is_client_side()
                              then format('load the photos with python -m pgfaces.client load --profile %s', p.name)
                              else format('SELECT reprocess(%L) finds its faces in the stored photos', p.name) end;
    else
        raise notice 'profile "%" found no face in the stored photos', p.name;
    end if;
end
$$;

create or replace function pgfaces_faces_near(p profiles, embedding vector, k bigint)
returns table (face_id bigint, photo_id bigint, filename text, x int, y int, width int, height int, distance float8)
language plpgsql stable parallel safe security invoker
set search_path = public, pg_temp
set hnsw.iterative_scan = strict_order
as $$
begin
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
    using embedding, k;
    if not found and k > 0 then  -- nothing at all: the profile has no face
        perform pgfaces_notice_no_faces(p);
    end if;
end
$$;

create or replace function find_faces_near(embedding vector, n int default 10, profile text default null)
returns table (face_id bigint, photo_id bigint, filename text, x int, y int, width int, height int, distance float8)
language plpgsql stable parallel safe security definer
set search_path = public, pg_temp
as $$
declare
    p profiles := pgfaces_profile(profile);
begin
    perform pgfaces_check_n(n);
    return query select * from pgfaces_faces_near(p, embedding, n);
end
$$;

-- One row per photo, ranked by its best face. Photos with several faces near the query take several of the
-- nearest faces, so the candidate set grows until it holds n photos, passes max_distance, or the profile has no
-- more faces.
create or replace function pgfaces_photos_near(p profiles, embedding vector, n int, max_distance float8)
returns table (photo_id bigint, filename text, face_id bigint, distance float8)
language plpgsql stable parallel safe security invoker
set search_path = public, pg_temp
as $$
declare
    k bigint := n::bigint * 4 + 40;
    face_ids bigint[];
    photo_ids bigint[];
    distances float8[];
    got_photos bigint;
begin
    if max_distance <= 0 or max_distance = 'NaN' then
        raise exception 'max_distance must be positive (got %)', max_distance using errcode = 'invalid_parameter_value';
    end if;
    loop
        select coalesce(array_agg(c.face_id order by c.distance), '{}'), coalesce(array_agg(c.photo_id order by c.distance), '{}'),
               coalesce(array_agg(c.distance order by c.distance), '{}'), count(distinct c.photo_id)
        into face_ids, photo_ids, distances, got_photos
        from pgfaces_faces_near(p, embedding, k) c;
        exit when got_photos >= n or cardinality(face_ids) < k
               or (max_distance is not null and distances[cardinality(distances)] > max_distance);
        k := k * 4;
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

create or replace function find_photos_near(embedding vector, n int default 10, max_distance float8 default null,
                                            profile text default null)
returns table (photo_id bigint, filename text, face_id bigint, distance float8)
language plpgsql stable parallel safe security definer
set search_path = public, pg_temp
as $$
declare
    p profiles := pgfaces_profile(profile);
begin
    perform pgfaces_check_n(n);
    return query select * from pgfaces_photos_near(p, embedding, n, max_distance);
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
language plpgsql stable parallel safe security definer
set search_path = public, pg_temp
as $$
declare
    p profiles := pgfaces_profile(profile);
begin
    perform pgfaces_check_n(n);
    return query select * from pgfaces_photos_near(p, embedding, n, pgfaces_max_distance(p, max_distance));
end
$$;
