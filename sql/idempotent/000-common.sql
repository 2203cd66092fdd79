-- Helpers every other file uses. Plain SQL: present in both modes.

-- The one way to know the install is client-side (no plpython3u: photos are analysed by the client).
create or replace function pgfaces_is_client_side()
returns boolean
language sql stable parallel safe security invoker
set search_path = public, pg_temp
as $$ select not exists (select from pg_extension where extname = 'plpython3u') $$;

-- Whether this session defers analysis (README, "Deferred analysis"): the setting pgfaces.defer (a boolean), or,
-- until that is set, its first form pgfaces.analyse = immediate | deferred (which needs quotes: ANALYSE is a
-- reserved word). docker/pgfaces_preload.c defines both (pgfaces.defer then shows the mode in force); without the
-- library (managed services) they are placeholders, checked here.
create or replace function pgfaces_deferred()
returns boolean
language plpgsql stable parallel safe security invoker
set search_path = public, pg_temp
as $$
declare
    defer text := lower(trim(current_setting('pgfaces.defer', true)));
    mode text := lower(coalesce(nullif(trim(current_setting('pgfaces.analyse', true)), ''), 'immediate'));
begin
    if nullif(defer, '') is not null then
        if defer not in ('on', 'off', 'true', 'false', 'yes', 'no', '1', '0') then
            raise exception 'pgfaces.defer must be on or off, not %', quote_literal(defer)
                using errcode = 'invalid_parameter_value';
        end if;
        return defer::boolean;
    end if;
    if mode not in ('immediate', 'deferred') then
        raise exception 'pgfaces.analyse must be immediate or deferred, not %', quote_literal(mode)
            using errcode = 'invalid_parameter_value';
    end if;
    return mode = 'deferred';
end
$$;

-- PL/Python prefixes an error's message with the Python class that carried it ("plpy.Error: ",
-- "spiexceptions.QueryCanceled: ") and adds the traceback as its context. This is the message without them: what
-- the user reads, and what a failed job of the queue stores.
create or replace function pgfaces_plain_message(message text)
returns text
language sql immutable parallel safe security invoker
set search_path = public, pg_temp
as $$ select regexp_replace(message, '^(plpy|spiexceptions)\.[A-Za-z]+: ', '') $$;

-- The plpgsql wrappers of the PL/Python functions re-raise every error through here: the plain message with its
-- own SQLSTATE (pgfaces.errors sets them), no Python class, no traceback.
create or replace function pgfaces_reraise(state text, message text)
returns void
language plpgsql immutable parallel safe security invoker
set search_path = public, pg_temp
as $$
begin
    raise exception using message = pgfaces_plain_message(message), errcode = state;
end
$$;
