-- Originals outside the database (README, "Originals outside the database"): a photo row holds either the bytes
-- (`image`) or where they are (`uri`: an absolute path the server may read, under pgfaces.originals_dirs, or an
-- http(s)/s3 URL that client workers fetch), never neither. A row with a URI keeps a small preview of the picture
-- for contact sheets, and the hash, size and EXIF read from the original when it was stored; a URL's are filled by
-- the first client worker that fetches it (until then its sha256 is NULL).
alter table photos alter column image drop not null;
alter table photos alter column sha256 drop not null;
alter table photos add column uri text;
alter table photos add column preview bytea;
alter table photos add column size_bytes bigint check (size_bytes > 0);  -- the original's size (NULL: stored before)
alter table photos add constraint photos_image_or_uri check ((image is null) <> (uri is null));
-- What a uri may look like (the INSERT trigger says why in its own words first; client-side, this is the check).
alter table photos add constraint photos_uri_form
    check (uri ~ '^(/|(https?|s3)://)' and length(uri) <= 4096 and uri !~ '[[:cntrl:]]');
-- Only a URL's row waits for its hash: a path is read, and its hash taken, by the INSERT.
alter table photos add constraint photos_sha256_known check (sha256 is not null or uri ~ '^(https?|s3)://');
-- One row per original: the same path twice would be one file described twice.
create unique index photos_uri on photos (uri) where uri is not null;
-- The preview is a WebP: compressed already (see 012-photo-bytes-uncompressed.sql).
alter table photos alter column preview set storage external;
