-- faces.face_key copied the photo's file stem into every face (a megabyte-long filename: a megabyte per face) and
-- nothing read it. It is now computed when asked for: face_key(faces) in idempotent/020-search-vectors.sql, so
-- `select f.face_key from faces f` still works.
alter table faces drop column face_key;
