-- Who may do what (README, "Roles"): pgfaces_reader searches; pgfaces_writer also inserts and deletes photos,
-- remembers faces and edits people; pgfaces_worker drains the queue of deferred analysis (claims jobs, analyses
-- them in the server or sends the faces it found for its own jobs, retries failed jobs) and reads what it needs. Neither may create functions (in any schema, temporary ones included), use
-- plpython3u (an untrusted language: only superusers create functions in it anyway), read server files, change
-- profiles or call the internal functions. Runs after every migration: a function added later is executable by
-- nobody until it is listed here.
--
-- The public functions are SECURITY DEFINER (owned by the superuser who migrates, with a fixed search_path), so
-- the roles need no rights on what they call: faces are written by the after-insert trigger with the owner's
-- rights, and neither role may insert, update or delete a face itself (except client-side, below).

revoke create on schema public from public;
grant usage on schema public to pgfaces_reader, pgfaces_writer, pgfaces_worker;

do $$
begin
    execute format('revoke temporary on database %I from public', current_database());
end
$$;

grant select on photos, faces, profiles, people, person_references, face_people, people_overview, unassigned_faces,
    face_quality
    to pgfaces_reader, pgfaces_writer;
-- A writer gives a photo's name, bytes and, if they like, its metadata; the id, the time it was added and what
-- the bytes say (hash, size) are the server's to fill.
revoke insert, update on photos from pgfaces_writer;
-- Or, instead of the bytes, where they are (uri): the server reads only what pgfaces.originals_dirs and
-- pgfaces.originals_urls allow (006-originals.sql).
grant insert (filename, image, uri, taken_at, latitude, longitude, camera, exif) on photos to pgfaces_writer;
grant delete on photos to pgfaces_writer;
revoke insert on people, person_references from pgfaces_writer;  -- through remember_face and the people functions
-- Everyone may watch the queue. A worker reads the photos it analyses (a client worker fetches the bytes) and the
-- profiles; it writes faces and job states only through the functions below, for the jobs it claimed.
grant select on analysis_queue, analysis_progress to pgfaces_reader, pgfaces_writer, pgfaces_worker;
grant select on photos, profiles to pgfaces_worker;

-- Client-side mode (no plpython3u): the client analyses the photo and writes what the server would have derived.
do $$
begin
    if pgfaces_is_client_side() then
        grant insert (sha256, width, height, size_bytes, preview) on photos to pgfaces_writer;
        grant insert on faces to pgfaces_writer;
    end if;
end
$$;

-- Functions are executable by PUBLIC by default: take that away from every function of this schema (not those of
-- extensions), then give each role its list.
do $$
declare
    f regprocedure;
    reader_may constant text[] := array[
        'find_faces_near', 'find_photos_near', 'find_photos_of', 'find_faces_like', 'find_photos_like',
        'face_embedding', 'detect_and_embed', 'km_between', 'face_key', 'find_photos_with', 'suggest_people',
        'suggest_merges', 'person_id',  -- person_id(faces): `select f.person_id from faces f` (050-people.sql)
        -- read-only helpers the clients' own queries use (pgfaces.search, pgfaces.client)
        'pgfaces_profile', 'pgfaces_operator', 'pgfaces_limits', 'pgfaces_is_client_side', 'pgfaces_person_name',
        'pgfaces_nearest_names',
        -- the WHEN of the photos triggers, evaluated as the user who inserts
        'pgfaces_deferred'];
    writer_may text[] := array[
        'remember_face', 'name_person', 'merge_people', 'assign_face', 'unassign_face', 'hide_person',
        'forget_person', 'cluster_faces'];
    -- client-side mode: what the server's Python would call, called by the client (pgfaces.client). Where
    -- plpython3u is installed the server calls them itself, and a writer calling them would skip its checks.
    client_side_writer_may constant text[] := array[
        'pgfaces_remember', 'pgfaces_faces_added', 'pgfaces_cluster_begin', 'pgfaces_cluster_faces',
        'pgfaces_refresh_neighbours', 'pgfaces_cluster_unchanged', 'pgfaces_cluster_apply'];
    worker_may constant text[] := array[
        'pgfaces_claim_job', 'pgfaces_run_job', 'pgfaces_finish_job', 'pgfaces_fail_job', 'retry_failed',
        'pgfaces_profile', 'pgfaces_limits', 'pgfaces_is_client_side',
        -- originals outside the database: what a worker may read, and a URL original's description
        'pgfaces_originals', 'pgfaces_original_fetched', 'pgfaces_url_original'];
begin
    if pgfaces_is_client_side() then
        writer_may := writer_may || client_side_writer_may;
    end if;
    for f in
        select p.oid::regprocedure from pg_proc p
        where p.pronamespace = 'public'::regnamespace
          and not exists (select from pg_depend d where d.classid = 'pg_proc'::regclass and d.objid = p.oid
                          and d.deptype = 'e')
    loop
        execute format('revoke all on function %s from public, pgfaces_reader, pgfaces_writer, pgfaces_worker', f);
    end loop;
    for f in
        select p.oid::regprocedure from pg_proc p
        where p.pronamespace = 'public'::regnamespace and p.proname = any (reader_may || writer_may)
    loop
        execute format('grant execute on function %s to pgfaces_writer', f);
    end loop;
    for f in
        select p.oid::regprocedure from pg_proc p
        where p.pronamespace = 'public'::regnamespace and p.proname = any (reader_may)
    loop
        execute format('grant execute on function %s to pgfaces_reader', f);
    end loop;
    for f in
        select p.oid::regprocedure from pg_proc p
        where p.pronamespace = 'public'::regnamespace and p.proname = any (worker_may)
    loop
        execute format('grant execute on function %s to pgfaces_worker', f);
    end loop;
end
$$;
