-- client-side only
-- Without plpython3u the functions that run Python (010-ingest.sql, 030-search-images.sql) are not installed.
-- These stubs stand in their place, with the same signatures, so that calling one says why and what to do
-- instead. A later server-side migrate replaces them (create or replace). They are never installed over the
-- real functions: when plpython3u is present this file does nothing.

do $stubs$
declare
    embed_instead constant text :=
        'compute the embedding in the client (pgfaces.client) and call find_photos_near(embedding, ...)';
    stub record;
begin
    if not pgfaces_is_client_side() then
        return;
    end if;
    for stub in
        select * from (values
            ('detect_and_embed', 'image bytea, profile text default null',
             'table (x int, y int, width int, height int, score real, embedding vector)',
             'detect and embed in the client (pgfaces.client.embed_reference, pgfaces.pipeline)'),
            ('face_embedding', 'image bytea, profile text default null', 'vector', embed_instead),
            ('reprocess', 'profile text', 'bigint',
             'analyse the photos in the client (python -m pgfaces.client load, ./pgfaces load --client-side)'),
            ('find_faces_like', 'image bytea, n int default 10, profile text default null',
             'table (face_id bigint, photo_id bigint, filename text, x int, y int, width int, height int, distance float8)',
             'compute the embedding in the client (pgfaces.client) and call find_faces_near(embedding, ...)'),
            ('find_photos_like', 'image bytea, n int default 10, max_distance float8 default null, profile text default null',
             'table (photo_id bigint, filename text, face_id bigint, distance float8)', embed_instead),
            ('find_photos_like', 'image bytea, n int, max_distance text, profile text default null',
             'table (photo_id bigint, filename text, face_id bigint, distance float8)', embed_instead),
            ('remember_face', 'name text, image bytea, profile text default null', 'bigint',
             'embed the reference in the client: pgfaces.client.remember_face(conn, name, image)'),
            ('cluster_faces', 'profile text default null', 'int',
             'group the faces in the client: python -m pgfaces.client cluster (pgfaces.client.cluster_faces)')
        ) as s(name, args, returns, instead)
    loop
        execute format($f$
            create or replace function %I(%s)
            returns %s
            language plpgsql volatile parallel safe security invoker
            set search_path = public, pg_temp
            as $body$
            begin
                raise exception %L using errcode = 'feature_not_supported';
            end
            $body$ $f$,
            stub.name, stub.args, stub.returns,
            format('%s() needs plpython3u, which this database does not have (client-side install): %s',
                   stub.name, stub.instead));
    end loop;
    -- A plain INSERT INTO photos: the client fills what the server's trigger would (the hash, the size, the
    -- faces). Without them it would fail on sha256's NOT NULL, with the image's bytes in the DETAIL; say why
    -- instead. (Named to fire after photos_analyse, should a server-side migrate add it later.)
    create or replace function pgfaces_insert_from_client()
    returns trigger
    language plpgsql volatile parallel safe security invoker
    set search_path = public, pg_temp
    as $body$
    begin
        if new.sha256 is null then
            raise exception '%: this database cannot analyse photos (no plpython3u: a client-side install): load them with python -m pgfaces.client load FILE...',
                coalesce(new.filename, 'photo')
                using errcode = 'feature_not_supported',
                      hint = 'the client analyses each photo and writes the photo with its hash, size and faces (README, "Managed PostgreSQL")';
        end if;
        return new;
    end
    $body$;
    create or replace trigger photos_sha256_from_client before insert on photos
        for each row execute function pgfaces_insert_from_client();
end
$stubs$;
