-- Deferred analysis: the queue's functions (README, "Deferred analysis"). Plain SQL, present in both modes: client
-- workers drain the queue on managed services too. The table is incremental/010-analysis-queue.sql's.
--
-- A job's life: queued -> running (claimed: worker, backend, started_at, lease_until committed at once) -> done, or
-- back to queued after an error, or failed after max_attempts claims. A running job is taken again when its
-- worker's backend is gone (killed, disconnected, server restarted) or its lease expired. Each claim draws a random
-- token that only the claimer learns (the queue keeps its SHA-256, claim_digest): a worker's result counts only
-- with the token of the claim still running, so a late worker never writes faces twice, and no other worker, who
-- can read the holder's name and attempt, can end the job for it.

-- Queues a photo (NULL: every photo) for a profile (NULL: every profile marked `ingest`, as the trigger would
-- analyse it). A job that exists already starts again from scratch. Returns the number of jobs queued.
create or replace function pgfaces_queue(photo_id bigint default null, profile text default null)
returns bigint
language plpgsql volatile parallel unsafe security invoker
set search_path = public, pg_temp
as $$
declare
    queued bigint;
begin
    insert into analysis_queue as q (photo_id, profile)
    select ph.id, pr.name
    from photos ph cross join profiles pr
    where (pgfaces_queue.photo_id is null or ph.id = pgfaces_queue.photo_id)
      and (case when pgfaces_queue.profile is null then pr.ingest else pr.name = pgfaces_queue.profile end)
    on conflict on constraint analysis_queue_pkey do update
        set state = 'queued', attempts = 0, worker = null, backend_pid = null, started_at = null, lease_until = null,
            finished_at = null, error = null, queued_at = now(), claim_digest = null;
    get diagnostics queued = row_count;
    return queued;
end
$$;

-- Queues a photo INSERTed under pgfaces.analyse = 'deferred' for every ingest profile. In both modes: server
-- installs analyse the metadata in their before trigger (010-ingest.sql), client-side ones get it from the client.
-- WHEN is evaluated as the row is inserted: an immediate INSERT queues no event at all.
create or replace function pgfaces_photos_queue()
returns trigger
language plpgsql volatile security definer
set search_path = public, pg_temp
as $$
begin
    perform pgfaces_queue(new.id);
    return null;
end
$$;

-- A URL original (no sha256 yet: the server never fetches it) is always queued, for the client workers.
create or replace trigger photos_queue after insert on photos
for each row when (pgfaces_deferred() or new.sha256 is null) execute function pgfaces_photos_queue();

-- Whether a photo's original is a URL, which only client workers fetch.
create or replace function pgfaces_url_original(photo_id bigint)
returns boolean
language sql stable parallel safe security invoker
set search_path = public, pg_temp
as $$ select exists (select from photos p where p.id = $1 and p.image is null and p.uri ~ '^(https?|s3)://') $$;

-- The digest the queue keeps of a claim's token.
create or replace function pgfaces_claim_digest(token text)
returns bytea
language sql immutable parallel safe security invoker
set search_path = public, pg_temp
as $$ select sha256(convert_to(token, 'UTF8')) $$;

-- (before, a claim returned no token and took no fetch_urls, and the functions below took the worker's name and
-- attempt)
drop function if exists pgfaces_claim_job(text, interval, int);
do $$
begin
    if exists (select from pg_proc where proname = 'pgfaces_claim_job' and pronamespace = 'public'::regnamespace
               and not 'token' = any (proargnames)) then
        drop function pgfaces_claim_job(text, interval, int, boolean);
    end if;
end
$$;
drop function if exists pgfaces_job_is_mine(bigint, text, text, int);
drop function if exists pgfaces_fail_job(bigint, text, text, int, text, int);
drop function if exists pgfaces_finish_job(bigint, text, text, int, int[], int[], int[], int[], real[], vector[], bytea[],
                                           real[], real[], real[]);
drop function if exists pgfaces_run_job(bigint, text, text, int, int);

-- Takes the next job for `worker`: first a running job whose worker is gone or whose lease expired (rows a live
-- worker holds locked are skipped), else the first queued one. The claim commits with the caller's statement, so
-- everyone sees who runs what. A job abandoned max_attempts times (a photo that kills its backend, say) is parked
-- as failed instead. No row: nothing to take now. `token` is the claim's: keep it, and give it to
-- pgfaces_finish_job, pgfaces_fail_job or pgfaces_run_job; nobody else learns it. fetch_urls false (the in-server
-- workers): jobs of photos whose original is a URL are left to the client workers (the server never fetches one).
create or replace function pgfaces_claim_job(worker text, lease interval default '10 minutes', max_attempts int default 3,
                                             fetch_urls boolean default true)
returns table (photo_id bigint, profile text, filename text, attempt int, token text)
language plpgsql volatile parallel unsafe security definer
set search_path = public, pg_temp
as $$
declare
    job analysis_queue;
    taken boolean := false;
    claimed int;
    secret text := gen_random_uuid()::text;  -- 122 random bits (pg_strong_random)
begin
    if worker is null or length(trim(worker)) = 0 then
        raise exception 'a worker needs a name' using errcode = 'invalid_parameter_value';
    end if;
    if lease is null or lease <= interval '0' or max_attempts is null or max_attempts < 1 then
        raise exception 'lease must be positive and max_attempts at least 1 (got %, %)', lease, max_attempts
            using errcode = 'invalid_parameter_value';
    end if;
    for job in
        with alive as materialized (select a.pid, a.backend_start from pg_stat_activity a)  -- read once
        select q.* from analysis_queue q
        where q.state = 'running' and (fetch_urls or not pgfaces_url_original(q.photo_id))
          and (q.lease_until < now()
               or not exists (select from alive a
                              where a.pid = q.backend_pid and coalesce(a.backend_start <= q.started_at, true)))
        order by q.lease_until
        for update of q skip locked
    loop
        if job.attempts < max_attempts then
            taken := true;
            exit;
        end if;
        update analysis_queue q
        set state = 'failed', finished_at = now(), lease_until = null, claim_digest = null,
            error = format('abandoned %s times: its worker died, lost its connection or overran its lease while '
                           'analysing it (last: %s)', job.attempts, job.worker)
        where q.photo_id = job.photo_id and q.profile = job.profile;
    end loop;
    if not taken then
        select * into job from analysis_queue q
        where q.state = 'queued' and (fetch_urls or not pgfaces_url_original(q.photo_id))
        order by q.photo_id limit 1
        for update of q skip locked;
        if not found then
            return;
        end if;
    end if;
    update analysis_queue q
    set state = 'running', attempts = q.attempts + 1, worker = pgfaces_claim_job.worker,
        backend_pid = pg_backend_pid(), started_at = clock_timestamp(), lease_until = clock_timestamp() + lease,
        finished_at = null, claim_digest = pgfaces_claim_digest(secret)
    where q.photo_id = job.photo_id and q.profile = job.profile
    returning q.attempts into claimed;
    return query select job.photo_id, job.profile, ph.filename, claimed, secret from photos ph where ph.id = job.photo_id;
end
$$;

-- Whether `token` is the running claim of the job; locks the job's row until the transaction ends, so nobody takes
-- it meanwhile.
create or replace function pgfaces_job_is_mine(photo_id bigint, profile text, token text)
returns boolean
language plpgsql volatile parallel unsafe security invoker
set search_path = public, pg_temp
as $$
begin
    perform from analysis_queue q
    where q.photo_id = pgfaces_job_is_mine.photo_id and q.profile = pgfaces_job_is_mine.profile
      and q.state = 'running' and q.claim_digest = pgfaces_claim_digest(token)
    for update;
    return found;
end
$$;

create or replace function pgfaces_job_done(photo_id bigint, profile text)
returns void
language sql volatile parallel unsafe security invoker
set search_path = public, pg_temp
as $$
    update analysis_queue q set state = 'done', finished_at = clock_timestamp(), lease_until = null, error = null,
                                claim_digest = null
    where q.photo_id = $1 and q.profile = $2
$$;

-- A claimed job's analysis failed with `error` (one line): queued again, or failed after max_attempts claims.
-- Returns the job's new state, or 'lost' when `token` is not the job's running claim.
create or replace function pgfaces_fail_job(photo_id bigint, profile text, token text, error text,
                                            max_attempts int default 3)
returns text
language plpgsql volatile parallel unsafe security definer
set search_path = public, pg_temp
as $$
declare
    new_state text;
begin
    if max_attempts is null or max_attempts < 1 then
        raise exception 'max_attempts must be at least 1 (got %)', max_attempts using errcode = 'invalid_parameter_value';
    end if;
    if not pgfaces_job_is_mine(photo_id, profile, token) then
        return 'lost';
    end if;
    update analysis_queue q
    set state = case when q.attempts >= max_attempts then 'failed' else 'queued' end,
        finished_at = case when q.attempts >= max_attempts then clock_timestamp() end,
        lease_until = null, claim_digest = null,
        error = left(regexp_replace(coalesce(pgfaces_fail_job.error, 'failed'), '\s+', ' ', 'g'), 1000)  -- one line
    where q.photo_id = pgfaces_fail_job.photo_id and q.profile = pgfaces_fail_job.profile
    returning q.state into new_state;
    return new_state;
end
$$;

-- A client worker's result: the faces it found for its claimed job, written as the trigger writes them (any
-- faces of that photo and profile are replaced) and the job marked done, in one transaction. Returns 'done', or
-- 'lost' (nothing written) when `token` is not the job's running claim. This is the one place where a client's
-- faces enter the table; the server's is pgfaces.server.write_faces. What it is given must be what the server's
-- analysis would have made (pgfaces_check_faces): a wrong value is an error naming the face, and nothing is written.
create or replace function pgfaces_finish_job(photo_id bigint, profile text, token text,
                                              x int[], y int[], width int[], height int[], score real[],
                                              embedding vector[], thumbnail bytea[], sharpness real[] default null,
                                              brightness real[] default null, yaw real[] default null)
returns text
language plpgsql volatile parallel unsafe security definer
set search_path = public, pg_temp
as $$
declare
    p profiles := pgfaces_profile(profile);
    n int := coalesce(cardinality(x), 0);
begin
    if n > (pgfaces_limits()).max_faces then
        raise exception '% faces is more than pgfaces.max_faces (%)', n, (pgfaces_limits()).max_faces
            using errcode = 'data_exception';
    end if;
    if (coalesce(cardinality(y), 0), coalesce(cardinality(width), 0), coalesce(cardinality(height), 0),
        coalesce(cardinality(score), 0), coalesce(cardinality(embedding), 0), coalesce(cardinality(thumbnail), 0))
       is distinct from (n, n, n, n, n, n)
       or coalesce(cardinality(sharpness), n) <> n or coalesce(cardinality(brightness), n) <> n
       or coalesce(cardinality(yaw), n) <> n then
        raise exception 'the face arrays must all have one element per face (% faces)', n
            using errcode = 'invalid_parameter_value';
    end if;
    if not pgfaces_job_is_mine(photo_id, p.name, token) then
        return 'lost';
    end if;
    perform pgfaces_check_faces(photo_id, p, x, y, width, height, score, embedding, thumbnail, sharpness, brightness,
                                yaw);
    delete from faces f where f.photo_id = pgfaces_finish_job.photo_id and f.profile = p.name;
    insert into faces (photo_id, profile, x, y, width, height, score, embedding, thumbnail, sharpness, brightness, yaw)
    select pgfaces_finish_job.photo_id, p.name, u.x, u.y, u.width, u.height, u.score, u.embedding, u.thumbnail,
           u.sharpness, u.brightness, u.yaw
    from unnest(x, y, width, height, score, embedding, thumbnail, sharpness, brightness, yaw) with ordinality
         as u(x, y, width, height, score, embedding, thumbnail, sharpness, brightness, yaw, i)
    order by u.i;
    perform pgfaces_faces_added(photo_id);  -- as the trigger's faces do (pgfaces.server.write_faces)
    perform pgfaces_job_done(photo_id, p.name);
    return 'done';
end
$$;

-- Each face a client worker hands over, as the server's analysis makes it (006-input-checks.sql); the first that is
-- not raises invalid_parameter_value, naming it ("photo 7, face 2: ...").
create or replace function pgfaces_check_faces(photo_id bigint, p profiles, x int[], y int[], width int[],
                                               height int[], score real[], embedding vector[], thumbnail bytea[],
                                               sharpness real[], brightness real[], yaw real[])
returns void
language plpgsql stable parallel safe security invoker
set search_path = public, pg_temp
as $$
declare
    ph photos;
    face record;
begin
    select * into ph from photos where id = photo_id;
    for face in
        select * from unnest(x, y, width, height, score, embedding, thumbnail, sharpness, brightness, yaw)
                 with ordinality as u(x, y, width, height, score, embedding, thumbnail, sharpness, brightness, yaw, i)
    loop
        perform pgfaces_check_face(ph, p, format('photo %s, face %s', photo_id, face.i), face.x, face.y, face.width,
                                   face.height, face.score, face.embedding, face.thumbnail, face.sharpness,
                                   face.brightness, face.yaw);
    end loop;
end
$$;

-- Queues the failed jobs (of one profile, or all) again with a fresh count of attempts; returns how many.
create or replace function retry_failed(profile text default null)
returns bigint
language plpgsql volatile parallel unsafe security definer
set search_path = public, pg_temp
as $$
declare
    retried bigint;
begin
    if profile is not null then
        perform pgfaces_profile(profile);  -- an unknown name is an error, not 0
    end if;
    update analysis_queue q
    set state = 'queued', attempts = 0, finished_at = null, lease_until = null, queued_at = now(), claim_digest = null
    where q.state = 'failed' and (retry_failed.profile is null or q.profile = retry_failed.profile);
    get diagnostics retried = row_count;
    return retried;
end
$$;

-- Progress per profile: jobs in each state, the rate over the last minute (or since the oldest of those jobs
-- started, when that is sooner) and the time left at that rate.
create or replace view analysis_progress as
select s.profile, s.queued, s.running, s.done, s.failed,
       round(s.photos_per_second::numeric, 2) as photos_per_second,
       case when s.photos_per_second > 0 and s.queued + s.running > 0
            then make_interval(secs => round((s.queued + s.running) / s.photos_per_second)) end as time_left
from (select q.profile,
             count(*) filter (where q.state = 'queued') as queued,
             count(*) filter (where q.state = 'running') as running,
             count(*) filter (where q.state = 'done') as done,
             count(*) filter (where q.state = 'failed') as failed,
             coalesce(count(*) filter (where q.state = 'done' and q.finished_at > now() - interval '1 minute')
                      / nullif(extract(epoch from least(interval '1 minute',
                                   now() - min(q.started_at) filter (where q.state = 'done'
                                                                     and q.finished_at > now() - interval '1 minute'))),
                               0)::float8, 0) as photos_per_second
      from analysis_queue q
      group by q.profile) s;
