-- People: the collection's faces grouped into people (cluster_faces), named once by the user, searched by name.
-- The people remember_face stored keep their ids, names and references: they become named people of the default
-- profile. See sql/idempotent/050-people.sql and 055-people-clustering.sql, and README.md, "People".

create function pgfaces_default_profile()
returns text
language sql stable parallel safe security invoker
set search_path = public, pg_temp
as $$ select name from profiles where is_default $$;

-- A person is named by the user (NULL: a group clustering found, waiting for a name), may be hidden (strangers),
-- and groups faces of one profile. The cover face is the one the overview shows (NULL: the largest face).
alter table people alter column name drop not null;
alter table people drop constraint people_name_check;
alter table people add constraint people_name_check check (name is null or length(trim(name)) between 1 and 200);
alter table people add column profile text references profiles (name) on update cascade on delete cascade;
update people set profile = pgfaces_default_profile();
alter table people alter column profile set not null;
alter table people alter column profile set default pgfaces_default_profile();
alter table people add column hidden boolean not null default false;
alter table people add column cover_face_id bigint references faces (id) on delete set null;

-- Which person each face is (faces.person_id reads it: `select f.person_id from faces f`). A table of its own, not a
-- column of faces: assigning a million faces then writes a million small rows, where updating faces would write
-- every face's row and embedding again and insert each into the HNSW index anew (hours at a million faces).
-- No row: the face waits for cluster_faces(). assigned_by: by cluster_faces, by joining a person on INSERT, or by
-- the user, whose decisions no run changes (a face assigned, ejected or released by forget_person: person_id NULL).
create table face_people (
    face_id bigint primary key references faces (id) on delete cascade,
    person_id bigint references people (id) on delete set null,
    assigned_by text not null check (assigned_by in ('cluster', 'join', 'user'))
);
create index face_people_person on face_people (person_id);

-- Each face's nearest faces of its profile (at most k, within the clustering's radius), read from the HNSW index
-- once, when the face is written: the join on INSERT uses them, and cluster_faces() reads them instead of querying
-- the index for every face again. newest_face: the newest face's id then; a list is made again once the ids have
-- doubled, so that an early face also sees the many faces that came after it.
create table face_neighbours (
    face_id bigint primary key references faces (id) on delete cascade,
    neighbours bigint[] not null,
    distances real[] not null,
    newest_face bigint not null
);

-- The distance under which two groups of faces are one person, on average over their pairs (pgfaces.clustering).
-- 0.6 for dlib's descriptor, the margin its network was trained to; a profile without one is not clustered.
alter table profiles add column cluster_threshold float8 check (cluster_threshold > 0);
update profiles set cluster_threshold = 0.6 where embedder = 'dlib';

-- What the last cluster_faces() of each profile left (a fingerprint of the faces, their lists and who is whose):
-- a run that finds the same has nothing to do, so a re-run on unchanged data changes nothing.
create table people_clustered (
    profile text primary key references profiles (name) on update cascade on delete cascade,
    fingerprint text not null,
    finished_at timestamptz not null
);

