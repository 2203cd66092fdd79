-- Deferred analysis: the queue's functions (README, "Deferred analysis"). Plain SQL, present in both modes: client
-- workers drain the queue on managed services too. The table is incremental/010-analysis-queue.sql's.
--
-- A job's life: queued -> running (claimed: worker, backend, started_at, lease_until committed at once) -> done, or
-- back to queued after an error, or failed after max_attempts claims. A running job is taken again when its
-- worker's backend is gone (killed, disconnected, server restarted) or its lease expired; `attempts` is the fencing
-- token: a worker's result counts only while the job still carries the attempt it claimed, so a late worker never
-- writes faces twice.

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
            finished_at = null, error = null, queued_at = now();
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

-- Takes the next job for `worker`: first a running job whose worker is gone or whose lease expired (rows a live
-- worker holds locked are skipped), else the first queued one. The claim commits with the caller's statement, so
-- everyone sees who runs what. A job abandoned max_attempts times (a photo that kills its backend, say) is parked
-- as failed instead. No row: nothing to take now. fetch_urls false (the in-server workers): jobs of photos whose
-- original is a URL are left to the client workers (the server never fetches one).
drop function if exists pgfaces_claim_job(text, interval, int);  -- before it took fetch_urls
create or replace function pgfaces_claim_job(worker text, lease interval default '10 minutes', max_attempts int default 3,
                                             fetch_urls boolean default true)
returns table (photo_id bigint, profile text, filename text, attempt int)
language plpgsql volatile parallel unsafe security definer
set search_path = public, pg_temp
as $$
declare
    job analysis_queue;
    taken boolean := false;
    claimed int;
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
        set state = 'failed', finished_at = now(), lease_until = null,
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
        finished_at = null
    where q.photo_id = job.photo_id and q.profile = job.profile
    returning q.attempts into claimed;
    return query select job.photo_id, job.profile, ph.filename, claimed from photos ph where ph.id = job.photo_id;
end
$$;

-- Whether `worker` still holds the job it claimed as `attempt`; locks the job's row until the transaction ends, so
-- nobody takes it meanwhile.
create or replace function pgfaces_job_is_mine(photo_id bigint, profile text, worker text, attempt int)
returns boolean
language plpgsql volatile parallel unsafe security invoker
set search_path = public, pg_temp
as $$
begin
    perform from analysis_queue q
    where q.photo_id = pgfaces_job_is_mine.photo_id and q.profile = pgfaces_job_is_mine.profile
      and q.state = 'running' and q.worker = pgfaces_job_is_mine.worker and q.attempts = attempt
    for update;
    return found;
end
$$;

create or replace function pgfaces_job_done(photo_id bigint, profile text)
returns void
language sql volatile parallel unsafe security invoker
set search_path = public, pg_temp
as $$
    update analysis_queue q set state = 'done', finished_at = clock_timestamp(), lease_until = null, error = null
    where q.photo_id = $1 and q.profile = $2
$$;

-- A claimed job's analysis failed with `error` (one line): queued again, or failed after max_attempts claims.
-- Returns the job's new state, or 'lost' when the job is no longer this worker's.
create or replace function pgfaces_fail_job(photo_id bigint, profile text, worker text, attempt int, error text,
                                            max_attempts int default 3)
returns text
language plpgsql volatile parallel unsafe security definer
set search_path = public, pg_temp
as $$
declare
    new_state text;
begin
    if not pgfaces_job_is_mine(photo_id, profile, worker, attempt) then
        return 'lost';
    end if;
    update analysis_queue q
    set state = case when q.attempts >= max_attempts then 'failed' else 'queued' end,
        finished_at = case when q.attempts >= max_attempts then clock_timestamp() end,
        lease_until = null, error = pgfaces_fail_job.error
    where q.photo_id = pgfaces_fail_job.photo_id and q.profile = pgfaces_fail_job.profile
    returning q.state into new_state;
    return new_state;
end
$$;

-- A client worker's result: the faces it found for its claimed job, written as the trigger writes them (any
-- faces of that photo and profile are replaced) and the job marked done, in one transaction. Returns 'done', or
-- 'lost' (nothing written) when the job is no longer this worker's. This is the one place where a client's
-- faces enter the table; the server's is pgfaces.server.write_faces.
-- (before the faces' quality it took no sharpness, brightness or yaw)
drop function if exists pgfaces_finish_job(bigint, text, text, int, int[], int[], int[], int[], real[], vector[], bytea[]);
create or replace function pgfaces_finish_job(photo_id bigint, profile text, worker text, attempt int,
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
       is distinct from (n, n, n, n, n, n) then
        raise exception 'the face arrays must all have one element per face (% faces)', n
            using errcode = 'invalid_parameter_value';
    end if;
    if exists (select from unnest(embedding) e where e is null or vector_dims(e) <> p.dimensions) then
        raise exception 'profile "%" has % dimensions: every embedding must have them', p.name, p.dimensions
            using errcode = 'invalid_parameter_value';
    end if;
    if not pgfaces_job_is_mine(photo_id, p.name, worker, attempt) then
        return 'lost';
    end if;
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
    set state = 'queued', attempts = 0, finished_at = null, lease_until = null, queued_at = now()
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
