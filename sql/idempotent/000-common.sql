-- Helpers every other file uses. Plain SQL: present in both modes.

-- The one way to know the install is client-side (no plpython3u: photos are analysed by the client).
create or replace function pgfaces_is_client_side()
returns boolean
language sql stable parallel safe security invoker
set search_path = public, pg_temp
as $$ select not exists (select from pg_extension where extname = 'plpython3u') $$;

-- The plpgsql wrappers of the PL/Python functions re-raise every error through here. PL/Python prefixes an error's
-- message with the Python class that carried it ("plpy.Error: ", "spiexceptions.QueryCanceled: ") and adds the
-- traceback as its context; the user gets the plain message with its own SQLSTATE (pgfaces.errors sets them).
create or replace function pgfaces_reraise(state text, message text)
returns void
language plpgsql immutable parallel safe security invoker
set search_path = public, pg_temp
as $$
begin
    raise exception using message = regexp_replace(message, '^(plpy|spiexceptions)\.[A-Za-z]+: ', ''),
                          errcode = state;
end
$$;
