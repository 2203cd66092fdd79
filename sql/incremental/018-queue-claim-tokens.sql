-- A claim of the queue is held by a token that only its claimer learns (issue 20, N2): pgfaces_claim_job returns a
-- random token and keeps its SHA-256 here; finishing, failing or running the job needs the token itself. The
-- worker's name and the attempt, which every role may read here, no longer suffice to end another worker's job;
-- the digest does not give the token away. NULL: no claim is running.
alter table analysis_queue add column claim_digest bytea;
