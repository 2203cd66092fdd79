-- requires: plpython3u
-- The in-server worker (README, "Deferred analysis"): `./pgfaces work` loops over pgfaces_claim_job (040-queue.sql,
-- which commits the claim) and pgfaces_run_job, which analyses the claimed photo in this backend and writes its
-- faces as the INSERT trigger does (pgfaces.server.write_faces), all in one transaction with the job marked done.

create or replace function pgfaces_py_run_job(photo_id bigint, p profiles)
returns int
language plpython3u volatile parallel unsafe security definer
set search_path = public, pg_temp
as $$
from pgfaces import server
return server.run_job(plpy, GD, photo_id, p)
$$;

-- Analyses the job whose running claim is `token` (pgfaces_claim_job's). An error of the analysis does not end the
-- call: its faces are rolled back and the job queued again (or failed after max_attempts), and the row says so.
-- state: done (faces is the count), queued or failed (error is the one-line message), or lost (`token` is not the
-- job's running claim: its lease expired and another worker took it; nothing is written).
create or replace function pgfaces_run_job(photo_id bigint, profile text, token text, max_attempts int default 3)
returns table (state text, faces int, error text)
language plpgsql volatile parallel unsafe security definer
set search_path = public, pg_temp
as $$
declare
    p profiles := pgfaces_profile(profile);
    found_faces int;
    message text;
begin
    if max_attempts is null or max_attempts < 1 then
        raise exception 'max_attempts must be at least 1 (got %)', max_attempts using errcode = 'invalid_parameter_value';
    end if;
    if not pgfaces_job_is_mine(photo_id, p.name, token) then
        return query select 'lost'::text, null::int, null::text;
        return;
    end if;
    begin
        found_faces := pgfaces_py_run_job(photo_id, p);
    exception when others then
        message := pgfaces_plain_message(sqlerrm);
        return query select pgfaces_fail_job(photo_id, p.name, token, message, max_attempts), null::int,
                            message;
        return;
    end;
    perform pgfaces_job_done(photo_id, p.name);
    return query select 'done'::text, found_faces, null::text;
end
$$;
