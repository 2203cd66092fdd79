-- The entry node of a sharded setup (README, "Shards"): a pgfaces database migrated as one node is, whose photos and
-- faces live on the shards, reached with postgres_fdw. Run after every migrate of the entry, by pgfaces.shards
-- (which first creates the foreign servers pgfaces_shard_1 .. pgfaces_shard_N and their user mappings); running it
-- again changes nothing. One-node installs never run it.
--
-- Schema `sharded` holds what a user of the entry reaches first (the database's search_path is `sharded, public`):
--   photos  partitioned by the bytes' hash over the shards' photos: INSERT INTO photos routes a photo to the shard
--           its bytes hash to (the same bytes always to the same shard, whose unique hash refuses them again), where
--           the shard's own triggers analyse it; reads fan out to every shard.
--   faces   partitioned by photo id over the shards' faces (shard k's ids are k * 10^12 ...: sql/shards/shard.sql).
--   the search functions of one node (find_faces_near, find_photos_like, find_photos_of, ...), copied from public
--           with the search_path `sharded, public`, so that they read these tables and the fan-out below.
-- People, names and references stay in the entry's own tables (public): remember_face stores them here.

create extension if not exists postgres_fdw;
create schema if not exists sharded;
revoke create on schema sharded from public;
grant usage on schema sharded to pgfaces_reader, pgfaces_writer;

-- The shard a photo's bytes go to, 1 .. shards: from their SHA-256, as the shard's photos.sha256 is. A NULL image
-- goes to shard 1, whose trigger refuses it with the message one node gives.
create or replace function sharded.shard_of(image bytea, shards int)
returns int
language sql immutable parallel safe security invoker
set search_path = public, pg_temp
as $$
    select coalesce((get_byte(d, 0) * 65536 + get_byte(d, 1) * 256 + get_byte(d, 2)) % shards, 0) + 1
    from (select sha256(image) as d) h
$$;

-- The shards: number, foreign server, and their partitions of sharded.photos and sharded.faces.
create or replace function sharded.pgfaces_shards()
returns table (shard int, server name, photos regclass, faces regclass)
language sql stable parallel safe security invoker
set search_path = public, pg_temp
as $$
    select substring(s.srvname from '^pgfaces_shard_([0-9]+)$')::int, s.srvname,
           to_regclass(format('sharded.photos_%s', substring(s.srvname from '[0-9]+$'))),
           to_regclass(format('sharded.faces_%s', substring(s.srvname from '[0-9]+$')))
    from pg_foreign_server s
    where s.srvname ~ '^pgfaces_shard_[0-9]+$'
    order by 1
$$;

-- sharded.photos and sharded.faces over the servers pgfaces_shard_1 .. N, made once. The columns are the entry's own
-- tables' (one schema everywhere). A photo's column that a writer may not give (its id, hash, size, the time it
-- was added: 090-grants.sql) is declared generated here, so that postgres_fdw sends DEFAULT for it and the shard
-- fills it; INSERT ... RETURNING then returns what the shard wrote.
create or replace function sharded.pgfaces_make_tables(shards int)
returns void
language plpgsql volatile parallel unsafe security invoker
set search_path = public, pg_temp
as $$
declare
    have int;
    columns text;
    k int;
begin
    if shards is null or shards not between 1 and 9000 then
        raise exception 'the number of shards must be 1 to 9000 (got %)', coalesce(shards::text, 'NULL')
            using errcode = 'invalid_parameter_value';
    end if;
    if to_regclass('sharded.photos') is not null then
        select count(*) into have from pg_inherits where inhparent = 'sharded.photos'::regclass;
        if have <> shards then
            raise exception 'this entry node has % shards, not %: photos are placed by their hash modulo the number of shards, and moving them (resharding) is not built',
                have, shards using errcode = 'feature_not_supported';
        end if;
        return;
    end if;
    select string_agg(format('%I %s%s', a.attname, format_type(a.atttypid, a.atttypmod),
                             case when has_column_privilege('pgfaces_writer', 'public.photos', a.attname, 'INSERT')
                                  then '' else format(' generated always as (null::%s) stored',
                                                      format_type(a.atttypid, a.atttypmod)) end),
                      ', ' order by a.attnum)
    into columns
    from pg_attribute a where a.attrelid = 'public.photos'::regclass and a.attnum > 0 and not a.attisdropped;
    execute format('create table sharded.photos (%s) partition by list (sharded.shard_of(image, %s))', columns, shards);
    create table sharded.faces (like public.faces) partition by range (photo_id);
    for k in 1 .. shards loop
        if not exists (select from pg_foreign_server where srvname = 'pgfaces_shard_' || k) then
            raise exception 'no foreign server pgfaces_shard_% for shard %', k, k using errcode = 'undefined_object';
        end if;
        execute format('create foreign table sharded.photos_%s partition of sharded.photos for values in (%s%s) '
                       'server pgfaces_shard_%s options (schema_name %L, table_name %L)',
                       k, k, case when k = 1 then ', null' else '' end, k, 'public', 'photos');
        execute format('create foreign table sharded.faces_%s partition of sharded.faces for values from (%s) to (%s) '
                       'server pgfaces_shard_%s options (schema_name %L, table_name %L)',
                       k, k * 1000000000000, (k + 1) * 1000000000000, k, 'public', 'faces');
    end loop;
end
$$;

select sharded.pgfaces_make_tables(nullif(current_setting('pgfaces_shards.count', true), '')::int);

-- A shard that failed a statement: which one, in one line. The failure's own message names the server when a
-- connection could not be made; when one broke mid-query (the shard stopped) it does not, so each shard is asked
-- again and the first that cannot answer is named.
create or replace function sharded.pgfaces_shard_failed(state text, message text)
returns void
language plpgsql volatile parallel unsafe security invoker
set search_path = public, pg_temp
as $$
declare
    s record;
    why text;
begin
    for s in select * from sharded.pgfaces_shards() loop
        begin
            execute format('select 1 from %s limit 1', s.faces);
        exception when others then
            why := split_part(sqlerrm, E'\n', 1);
            raise exception 'shard % (%) did not answer: %', s.shard,
                (select coalesce((select option_value from pg_options_to_table(f.srvoptions) where option_name = 'host'), 'local')
                        || ':' || coalesce((select option_value from pg_options_to_table(f.srvoptions) where option_name = 'port'), '5432')
                 from pg_foreign_server f where f.srvname = s.server), why
                using errcode = 'connection_failure',
                      hint = 'start the shard (./pgfaces up --shards N starts every shard of this machine), or wait for it';
        end;
    end loop;
    raise exception using message = split_part(message, E'\n', 1), errcode = state;
end
$$;

-- The k faces nearest `embedding` over every shard: each shard's HNSW index gives its own k (the ORDER BY ... LIMIT
-- runs on the shard: postgres_fdw ships pgvector's operators, `extensions 'vector'`), all shards at once (the
-- servers are async_capable), and the entry keeps the k best by the index's distance and ranks them by the exact
-- one, as pgfaces_faces_near does on one node: the same rows when the search is exact.
create or replace function sharded.pgfaces_faces_near(p profiles, embedding vector, k bigint)
returns table (face_id bigint, photo_id bigint, filename text, x int, y int, width int, height int, distance float8)
language plpgsql stable parallel unsafe security invoker
set search_path = sharded, public, pg_temp
as $$
declare
    branches text;
begin
    if embedding is null then
        raise exception 'embedding is NULL' using errcode = 'invalid_parameter_value';
    end if;
    if vector_dims(embedding) <> p.dimensions then
        raise exception 'profile "%" has % dimensions, the embedding has %', p.name, p.dimensions, vector_dims(embedding)
            using errcode = 'invalid_parameter_value';
    end if;
    -- `ranked` is in each branch's output, so that the branch is the bare foreign scan an async Append runs.
    select string_agg(format($b$(select f.id, f.photo_id, ph.filename, f.x, f.y, f.width, f.height, f.embedding,
                                        f.embedding::halfvec(%1$s) %2$s $1::halfvec(%1$s) as ranked
                                 from %3$s f join %4$s ph on ph.id = f.photo_id
                                 where f.profile = %5$L order by ranked limit $2)$b$,
                             p.dimensions, pgfaces_operator(p), s.faces, s.photos, p.name), ' union all ' order by s.shard)
    into branches from pgfaces_shards() s;
    if branches is null then
        raise exception 'this entry node has no shards' using errcode = 'object_not_in_prerequisite_state';
    end if;
    return query execute format($q$
        select c.id, c.photo_id, c.filename, c.x, c.y, c.width, c.height,
               (c.embedding::vector(%1$s) %2$s $1::vector(%1$s))::float8 as distance
        from (select * from (%3$s) u order by u.ranked, u.id limit $2) c
        order by distance, c.id
        $q$, p.dimensions, pgfaces_operator(p), branches)
    using embedding, k;
exception when sqlstate 'HV000' or sqlstate 'HV00N' or sqlstate '08000' or sqlstate '08001' or sqlstate '08003'
               or sqlstate '08006' or sqlstate '57P01' or sqlstate '57P02' or sqlstate '57P03' then
    perform sharded.pgfaces_shard_failed(sqlstate, sqlerrm);
end
$$;

-- One row per photo, ranked by its best face: pgfaces_photos_near's loop (020-search-vectors.sql) over the faces
-- of every shard, the filename coming with each face (a photo's faces live on its shard).
create or replace function sharded.pgfaces_photos_near(p profiles, embedding vector, n int, max_distance float8)
returns table (photo_id bigint, filename text, face_id bigint, distance float8)
language plpgsql stable parallel unsafe security invoker
set search_path = sharded, public, pg_temp
as $$
declare
    k bigint := n::bigint * 4 + 40;
    face_ids bigint[];
    photo_ids bigint[];
    filenames text[];
    distances float8[];
    got_photos bigint;
begin
    if max_distance <= 0 or max_distance = 'NaN' then
        raise exception 'max_distance must be positive (got %)', max_distance using errcode = 'invalid_parameter_value';
    end if;
    loop
        select coalesce(array_agg(c.face_id order by c.distance, c.face_id), '{}'),
               coalesce(array_agg(c.photo_id order by c.distance, c.face_id), '{}'),
               coalesce(array_agg(c.filename order by c.distance, c.face_id), '{}'),
               coalesce(array_agg(c.distance order by c.distance, c.face_id), '{}'), count(distinct c.photo_id)
        into face_ids, photo_ids, filenames, distances, got_photos
        from pgfaces_faces_near(p, embedding, k) c;
        exit when got_photos >= n or cardinality(face_ids) < k
               or (max_distance is not null and distances[cardinality(distances)] > max_distance);
        k := k * 4;
    end loop;
    return query
        select b.photo_id, b.filename, b.face_id, b.distance
        from (select distinct on (c.photo_id) c.photo_id, c.filename, c.face_id, c.distance
              from unnest(face_ids, photo_ids, filenames, distances) as c(face_id, photo_id, filename, distance)
              where max_distance is null or c.distance <= max_distance
              order by c.photo_id, c.distance, c.face_id) b
        order by b.distance, b.photo_id
        limit n;
end
$$;

-- The search functions of one node (020, 030 and 050), run over the shards: the same SQL, copied from public with
-- the search_path `sharded, public`, so that their faces, photos, pgfaces_faces_near and pgfaces_photos_near are
-- the ones above, and their profiles, people and references the entry's. Copied again on every run, so they follow
-- the one-node functions.
do $$
declare
    f regprocedure;
    definition text;
    copied text;
begin
    for f in
        select p.oid::regprocedure from pg_proc p
        where p.pronamespace = 'public'::regnamespace
          and p.proname in ('find_faces_near', 'find_photos_near', 'find_faces_like', 'find_photos_like',
                            'find_photos_of', 'find_photos_with')
    loop
        definition := pg_get_functiondef(f);
        copied := replace(replace(regexp_replace(definition, '^CREATE OR REPLACE FUNCTION public\.',
                                                 'CREATE OR REPLACE FUNCTION sharded.'),
                                  E' SET search_path TO ''public'', ''pg_temp''',
                                  E' SET search_path TO ''sharded'', ''public'', ''pg_temp'''),
                          ' PARALLEL SAFE ', ' PARALLEL RESTRICTED ');
        if copied !~ '^CREATE OR REPLACE FUNCTION sharded\.' or copied !~ 'search_path TO ''sharded''' then
            raise exception 'cannot copy % for the shards: its header is not the expected one', f;
        end if;
        execute copied;
    end loop;
end
$$;

-- Grouping into people reads and writes the faces of one database: on the entry there are none.
create or replace function sharded.cluster_faces(profile text default null)
returns int
language plpgsql volatile parallel unsafe security definer
set search_path = public, pg_temp
as $$
begin
    raise exception 'cluster_faces() groups the faces of one database; on a sharded setup the faces live on the shards and grouping them across shards is not built'
        using errcode = 'feature_not_supported',
              hint = 'search people by name with remember_face(name, image) and find_photos_of(name) on the entry (README, "Shards")';
end
$$;

-- Who may do what: as on one node (090-grants.sql). The shards are reached with the user mapping's role whoever
-- asks; what a role may do is checked here, on the entry.
grant select on sharded.photos, sharded.faces to pgfaces_reader, pgfaces_writer;
do $$
declare
    f regprocedure;
    c name;
begin
    for c in select a.attname from pg_attribute a
             where a.attrelid = 'public.photos'::regclass and a.attnum > 0 and not a.attisdropped
               and has_column_privilege('pgfaces_writer', 'public.photos', a.attname, 'INSERT')
    loop
        execute format('grant insert (%I) on sharded.photos to pgfaces_writer', c);
    end loop;
    for f in select p.oid::regprocedure from pg_proc p where p.pronamespace = 'sharded'::regnamespace loop
        execute format('revoke all on function %s from public, pgfaces_reader, pgfaces_writer, pgfaces_worker', f);
    end loop;
    for f in
        select p.oid::regprocedure from pg_proc p
        where p.pronamespace = 'sharded'::regnamespace
          and p.proname in ('find_faces_near', 'find_photos_near', 'find_faces_like', 'find_photos_like',
                            'find_photos_of', 'find_photos_with')
    loop
        execute format('grant execute on function %s to pgfaces_reader, pgfaces_writer', f);
    end loop;
    grant execute on function sharded.cluster_faces(text) to pgfaces_writer;
    -- the partition key of sharded.photos: evaluated with the inserting role's rights
    grant execute on function sharded.shard_of(bytea, int) to pgfaces_writer;
end
$$;
grant delete on sharded.photos to pgfaces_writer;
