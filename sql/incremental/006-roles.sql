-- The two group roles of the README's "Roles" section. Roles belong to the cluster, not to a database, so this
-- runs in every database that is migrated and creates them only where they are missing. Log-in users are made
-- members: CREATE ROLE alice LOGIN PASSWORD '...' IN ROLE pgfaces_reader. The grants are in idempotent/090-grants.sql.
do $$
begin
    if not exists (select from pg_roles where rolname = 'pgfaces_reader') then
        create role pgfaces_reader nologin;
    end if;
exception when duplicate_object or unique_violation then
    null;  -- another database's migration created it at the same moment
end
$$;

do $$
begin
    if not exists (select from pg_roles where rolname = 'pgfaces_writer') then
        create role pgfaces_writer nologin;
    end if;
exception when duplicate_object or unique_violation then
    null;
end
$$;
