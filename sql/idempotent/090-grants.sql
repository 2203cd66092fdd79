-- Who may do what (README, "Roles"): pgfaces_reader searches; pgfaces_writer also inserts and deletes photos and
-- remembers faces. Neither may create functions (in any schema, temporary ones included), use plpython3u (an
-- untrusted language: only superusers create functions in it anyway), read server files or change profiles.
--
-- The PL/Python functions are SECURITY DEFINER (owned by the superuser who migrates, with a fixed search_path; see
-- 010-ingest.sql), so plpython3u is never granted and the faces of a photo are written by the after-insert trigger
-- with the owner's rights: neither role may insert, update or delete a face itself.
-- Runs after every migration, so functions added later get the same treatment.

revoke create on schema public from public;
grant usage on schema public to pgfaces_reader, pgfaces_writer;

do $$
begin
    execute format('revoke temporary on database %I from public', current_database());
end
$$;

grant select on photos, faces, profiles, people, person_references to pgfaces_reader, pgfaces_writer;
grant insert, delete on photos to pgfaces_writer;
grant insert on people, person_references to pgfaces_writer;  -- through remember_face (security invoker)

-- Client-side mode (no plpython3u): the loader writes the faces itself, so the writer needs that right.
do $$
begin
    if to_regproc('pgfaces_py_photos_after_insert') is null then
        grant insert on faces to pgfaces_writer;
    end if;
end
$$;

-- Functions are executable by PUBLIC by default: take that away from the ones that change data or run as their
-- owner without being meant for direct calls, and give back what each role needs.
do $$
declare
    f regprocedure;
begin
    for f in
        select p.oid::regprocedure from pg_proc p
        where p.pronamespace = 'public'::regnamespace
          and p.proname in ('reprocess', 'pgfaces_ensure_profile_index', 'pgfaces_profiles_changed', 'remember_face',
                            'pgfaces_py_analyse_photo', 'pgfaces_py_photos_after_insert', 'pgfaces_photos_before_insert')
    loop
        execute format('revoke execute on function %s from public', f);
    end loop;
    for f in
        select p.oid::regprocedure from pg_proc p
        where p.pronamespace = 'public'::regnamespace
          and p.proname in ('remember_face', 'pgfaces_py_analyse_photo')  -- the latter: called by the insert trigger
    loop
        execute format('grant execute on function %s to pgfaces_writer', f);
    end loop;
end
$$;
