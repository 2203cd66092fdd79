-- client-side only
-- Without plpython3u the functions that run Python (010-ingest.sql, 030-search-images.sql) are not installed.
-- These stubs stand in their place, with the same signatures, so that calling one says why and what to do
-- instead. A later server-side migrate replaces them (create or replace). They are never installed over the
-- real functions: when plpython3u is present this file does nothing.

do $stubs$
declare
    why constant text := '%s() needs plpython3u, which this database does not have (client-side install): %s';
    embed_instead constant text :=
        'compute the embedding in the client (pgfaces.client) and call find_photos_near(embedding, ...)';
begin
    if exists (select 1 from pg_extension where extname = 'plpython3u') then
        return;
    end if;

    execute format($f$
        create or replace function detect_and_embed(image bytea, profile text default null)
        returns table (x int, y int, width int, height int, score real, embedding vector)
        language plpgsql volatile parallel safe security invoker
        set search_path = public, pg_temp
        as $body$
        begin
            raise exception %L using errcode = 'feature_not_supported';
        end
        $body$ $f$,
        format(why, 'detect_and_embed', 'detect and embed in the client (pgfaces.client.embed_reference, pgfaces.pipeline)'));

    execute format($f$
        create or replace function face_embedding(image bytea, profile text default null)
        returns vector
        language plpgsql volatile parallel safe security invoker
        set search_path = public, pg_temp
        as $body$
        begin
            raise exception %L using errcode = 'feature_not_supported';
        end
        $body$ $f$,
        format(why, 'face_embedding', embed_instead));

    execute format($f$
        create or replace function reprocess(profile text)
        returns bigint
        language plpgsql volatile parallel unsafe security invoker
        set search_path = public, pg_temp
        as $body$
        begin
            raise exception %L using errcode = 'feature_not_supported';
        end
        $body$ $f$,
        format(why, 'reprocess', 'analyse the photos in the client (pgfaces.client.load, invoke load --client-side)'));

    execute format($f$
        create or replace function find_faces_like(image bytea, n int default 10, profile text default null)
        returns table (face_id bigint, photo_id bigint, filename text, x int, y int, width int, height int, distance float8)
        language plpgsql volatile parallel safe security invoker
        set search_path = public, pg_temp
        as $body$
        begin
            raise exception %L using errcode = 'feature_not_supported';
        end
        $body$ $f$,
        format(why, 'find_faces_like',
               'compute the embedding in the client (pgfaces.client) and call find_faces_near(embedding, ...)'));

    execute format($f$
        create or replace function find_photos_like(image bytea, n int default 10, max_distance float8 default null,
                                                    profile text default null)
        returns table (photo_id bigint, filename text, face_id bigint, distance float8)
        language plpgsql volatile parallel safe security invoker
        set search_path = public, pg_temp
        as $body$
        begin
            raise exception %L using errcode = 'feature_not_supported';
        end
        $body$ $f$,
        format(why, 'find_photos_like', embed_instead));

    execute format($f$
        create or replace function find_photos_like(image bytea, n int, max_distance text, profile text default null)
        returns table (photo_id bigint, filename text, face_id bigint, distance float8)
        language plpgsql volatile parallel safe security invoker
        set search_path = public, pg_temp
        as $body$
        begin
            raise exception %L using errcode = 'feature_not_supported';
        end
        $body$ $f$,
        format(why, 'find_photos_like', embed_instead));

    execute format($f$
        create or replace function remember_face(name text, image bytea, profile text default null)
        returns bigint
        language plpgsql volatile parallel unsafe security invoker
        set search_path = public, pg_temp
        as $body$
        begin
            raise exception %L using errcode = 'feature_not_supported';
        end
        $body$ $f$,
        format(why, 'remember_face', 'embed the reference in the client: pgfaces.client.remember_face(conn, name, image)'));
end
$stubs$;
