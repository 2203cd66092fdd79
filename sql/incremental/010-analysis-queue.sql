-- The work queue of deferred analysis (README, "Deferred analysis"): one job per photo and profile. An INSERT under
-- `SET pgfaces.analyse = 'deferred'` stores the photo and queues it here; workers take jobs with FOR UPDATE SKIP
-- LOCKED and hold them by a committed lease, so that `running` (who, since when) is visible to everyone and a dead
-- worker's job is taken again. A plain table rather than an extension: it works wherever pgvector does (README,
-- "Why a plain table").
create table analysis_queue (
    photo_id bigint not null references photos (id) on delete cascade,
    profile text not null references profiles (name) on update cascade on delete cascade,
    state text not null default 'queued' check (state in ('queued', 'running', 'done', 'failed')),
    attempts int not null default 0,           -- claims so far; a fencing token: a result is taken from this claim only
    worker text,                               -- who holds it (running) or held it last
    backend_pid int,                           -- the claiming connection's backend: its death frees the job at once
    started_at timestamptz,                    -- when the last claim began
    lease_until timestamptz,                   -- running: taken again after this, even from a live worker
    finished_at timestamptz,                   -- done or failed
    error text,                                -- the last failure, one line
    queued_at timestamptz not null default now(),
    primary key (photo_id, profile)
);
-- Workers take queued jobs in photo order, and look at the running ones for dead workers and expired leases.
create index analysis_queue_queued on analysis_queue (photo_id) where state = 'queued';
create index analysis_queue_running on analysis_queue (lease_until) where state = 'running';
create index analysis_queue_finished on analysis_queue (finished_at) where state = 'done';

-- Workers: log-in roles that drain the queue (in the server or in a client) are made members,
-- CREATE ROLE w1 LOGIN PASSWORD '...' IN ROLE pgfaces_worker. Grants in idempotent/090-grants.sql.
do $$
begin
    if not exists (select from pg_roles where rolname = 'pgfaces_worker') then
        create role pgfaces_worker nologin;
    end if;
exception when duplicate_object or unique_violation then
    null;  -- another database's migration created it at the same moment
end
$$;
