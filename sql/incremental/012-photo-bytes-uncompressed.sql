-- A photo's bytes are JPEG, PNG or WebP: compressed already. PostgreSQL's default storage for bytea (extended) tried
-- pglz over every photo anyway and kept the result for 1 photo in 133 of the party benchmark (11 kB saved of 48 MB):
-- 4-5 ms of the backend's CPU per photo for nothing, more for big ones. External storage moves them out of line
-- uncompressed. Rows stored before keep what they have.
alter table photos alter column image set storage external;
alter table person_references alter column image set storage external;
