-- People: the collection's faces grouped into people (cluster_faces), named once by the user, searched by name.
-- The people remember_face stored keep their ids, names and references: they become named people of the default
-- profile. See sql/idempotent/050-people.sql for the functions and README.md, "People".

-- A person is named by the user (NULL: a group clustering found, waiting for a name), may be hidden (strangers),
-- and groups faces of one profile. The cover face is the one the overview shows (NULL: the largest face).
alter table people alter column name drop not null;
alter table people drop constraint people_name_check;
alter table people add constraint people_name_check check (name is null or length(trim(name)) between 1 and 200);
alter table people add column profile text references profiles (name) on update cascade on delete cascade;
update people set profile = (select name from profiles where is_default);
alter table people alter column profile set not null;
alter table people add column hidden boolean not null default false;

alter table faces add column person_id bigint references people (id) on delete set null;
-- How the face got where it is: by cluster_faces, by joining a person on INSERT, or by the user, whose decisions
-- (a face assigned, ejected, or released by forget_person: person_id NULL) no run changes.
alter table faces add column assigned_by text check (assigned_by in ('cluster', 'join', 'user'));
create index faces_person on faces (person_id) where person_id is not null;

alter table people add column cover_face_id bigint references faces (id) on delete set null;
