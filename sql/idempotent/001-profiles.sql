-- Profile lookup, argument checks and the per-profile HNSW indexes. Plain SQL: present in both modes.

create or replace function pgfaces_profile(profile text default null)
returns profiles
language plpgsql stable parallel safe security invoker
set search_path = public, pg_temp
as $$
declare
    p profiles;
begin
    if profile is null then
        select * into p from profiles where is_default;
        if not found then
            raise exception 'no default profile: set one with update profiles set is_default = true where name = ...';
        end if;
    else
        select * into p from profiles where name = profile;
        if not found then
            raise exception 'unknown profile "%"; known profiles: %', profile,
                (select string_agg(name, ', ' order by name) from profiles)
                using errcode = 'invalid_parameter_value';
        end if;
    end if;
    return p;
end
$$;

-- Whether the server loaded pgfaces_preload, whose pgfaces.* settings are real, bounded, superuser-only ones. Read
-- from shared_preload_libraries, which only superusers (and pg_read_all_settings) may read: an owner who may not
-- (a managed service) has no such library either. Not from pg_settings, which builds every setting's row: four
-- lookups there cost 4 ms per pgfaces_limits() call, that is per INSERT and per search.
create or replace function pgfaces_library_loaded()
returns boolean
language plpgsql stable parallel safe security invoker
set search_path = public, pg_temp
as $$
begin
    return current_setting('shared_preload_libraries') ~ '(^|[\s,"])pgfaces_preload($|[\s,"])';
exception when insufficient_privilege then
    return false;
end
$$;

-- The value of one pgfaces.* limit (README, "Limits"). Where the server loads pgfaces_preload (every server pgfaces
-- installs) the limits are integer settings that only superusers may set, bounded by the library
-- (docker/pgfaces_preload.c), so no log-in role can raise what an administrator set. Without it (a managed
-- service, client-side mode) they are placeholders that any role may SET: there a value can only lower the default.
create or replace function pgfaces_setting(setting_name text, default_value bigint)
returns bigint
language plpgsql stable parallel safe security invoker
set search_path = public, pg_temp
as $$
declare
    given text := nullif(trim(current_setting(setting_name, true)), '');
    value numeric;
begin
    if given is null then
        return default_value;
    elsif given !~ '^[0-9]+$' or given::numeric < 1 then
        raise exception 'setting % must be a whole number of at least 1, not %', setting_name, quote_literal(given)
            using errcode = 'invalid_parameter_value';
    end if;
    value := given::numeric;
    if not pgfaces_library_loaded() then
        value := least(value, default_value);
    end if;
    return least(value, 9223372036854775807)::bigint;
end
$$;

-- Every limit in force for this session, read in one place by SQL, the server's Python and the client alike.
create or replace function pgfaces_limits(out max_image_bytes bigint, out max_pixels bigint, out max_faces int,
                                          out max_results int)
language plpgsql stable parallel safe security definer
set search_path = public, pg_temp
as $$
begin
    max_image_bytes := pgfaces_setting('pgfaces.max_image_bytes', 67108864);
    max_pixels := pgfaces_setting('pgfaces.max_pixels', 100000000);
    max_faces := least(pgfaces_setting('pgfaces.max_faces', 500), 2147483647);
    max_results := least(pgfaces_setting('pgfaces.max_results', 10000), 2147483647);
end
$$;

-- Bounds for the `n` a user gives a search function: between 1 and the setting pgfaces.max_results. Only the
-- public functions check it, once per call; what they fetch internally is never held to it.
create or replace function pgfaces_check_n(n int)
returns int
language plpgsql stable parallel safe security invoker
set search_path = public, pg_temp
as $$
declare
    max_n int := (pgfaces_limits()).max_results;
begin
    if n is null or n < 1 or n > max_n then
        raise exception 'n must be between 1 and % (got %)', max_n, coalesce(n::text, 'NULL')
            using errcode = 'invalid_parameter_value';
    end if;
    return n;
end
$$;

-- The distance operator and the HNSW operator class of a profile's metric.
create or replace function pgfaces_operator(p profiles)
returns text
language sql immutable parallel safe security invoker
set search_path = public, pg_temp
as $$ select case p.metric when 'cosine' then '<=>' else '<->' end $$;

create or replace function pgfaces_opclass(p profiles)
returns text
language sql immutable parallel safe security invoker
set search_path = public, pg_temp
as $$ select case p.metric when 'cosine' then 'halfvec_cosine_ops' else 'halfvec_l2_ops' end $$;

-- Each profile's vectors get their own HNSW index: an expression index on the fixed dimension, partial on
-- the profile, so that a search over one profile never sees another's vectors. The index holds the vectors at
-- half precision (halfvec): a third smaller and 10-20% faster to search than full precision, for the same
-- recall (`invoke bench --full-precision`); the table keeps full precision, and searches re-rank by the exact
-- distance. An index of an older definition (full-precision vector) is rebuilt, with a NOTICE.
create or replace function pgfaces_ensure_profile_index(profile text)
returns void
language plpgsql volatile parallel unsafe security invoker
set search_path = public, pg_temp
as $$
declare
    p profiles := pgfaces_profile(profile);
    index_name text := 'faces_hnsw_' || p.name;
    existing text;
begin
    select pg_get_indexdef(c.oid) into existing
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where c.relname = index_name and n.nspname = current_schema();
    if existing is not null and existing not like format('%%::halfvec(%s)) %s%%', p.dimensions, pgfaces_opclass(p)) then
        raise notice 'rebuilding index % at half precision (halfvec); queries of your own that order by '
                     'embedding::vector(%) must now order by embedding::halfvec(%) to use it',
                     index_name, p.dimensions, p.dimensions
            using errcode = 'PF101';  -- class PF: `invoke migrate` passes it to the user
        execute format('drop index %I', index_name);
    end if;
    execute format(
        'create index if not exists %I on faces using hnsw ((embedding::halfvec(%s)) %s) with (m = 16, ef_construction = 64) where profile = %L',
        index_name, p.dimensions, pgfaces_opclass(p), p.name);
end
$$;

create or replace function pgfaces_profiles_changed()
returns trigger
language plpgsql volatile security invoker
set search_path = public, pg_temp
as $$
begin
    if tg_op = 'UPDATE' and (old.dimensions, old.metric, old.name) is distinct from (new.dimensions, new.metric, new.name) then
        execute format('drop index if exists %I', 'faces_hnsw_' || old.name);
    end if;
    perform pgfaces_ensure_profile_index(new.name);
    return new;
end
$$;

create or replace trigger profiles_index after insert or update on profiles
for each row execute function pgfaces_profiles_changed();

select pgfaces_ensure_profile_index(name) from profiles;
