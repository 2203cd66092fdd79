-- The rules about people as constraints, so that they hold under concurrent transactions (issue 20, N1 and N7).
--
-- Two faces of one photo are never one person: face_people carries each face's photo (kept right by a foreign key
-- to faces (id, photo_id)) and a unique (person_id, photo_id) (rows without a person are never in conflict: NULLs
-- are distinct). A check before the write could not hold it: two transactions assigning two faces of one photo
-- each saw the other's face missing. DEFERRABLE, checked at the end of each statement (not row by row), so that a
-- run of cluster_faces may move faces between people in one statement, and may defer it to repair what it finds.
alter table faces add constraint faces_id_photo_key unique (id, photo_id);
alter table face_people add column photo_id bigint;
update face_people fp set photo_id = f.photo_id from faces f where f.id = fp.face_id;
-- What broke the rule before (two transactions at once could): one face stays, the others wait for the next run;
-- the user's placement first, then the join's, then the lowest face id.
delete from face_people fp using (
    select fp.face_id, row_number() over (partition by fp.person_id, fp.photo_id
                                          order by fp.assigned_by = 'user' desc, fp.assigned_by = 'join' desc,
                                                   fp.face_id) as rank
    from face_people fp where fp.person_id is not null) extra
where fp.face_id = extra.face_id and extra.rank > 1;
alter table face_people alter column photo_id set not null;
alter table face_people drop constraint face_people_face_id_fkey;
alter table face_people add constraint face_people_face_photo_fkey foreign key (face_id, photo_id)
    references faces (id, photo_id) on delete cascade;
alter table face_people add constraint face_people_photo_once unique (person_id, photo_id)
    deferrable initially immediate;
drop index face_people_person;  -- the unique index leads with person_id
delete from people_clustered;  -- the next run starts from what is left

-- Named people and their references survive the loss of every photo: TRUNCATE photos CASCADE followed this foreign
-- key to people (and on to person_references). The cover face is checked when it is read (people_overview).
alter table people drop constraint people_cover_face_id_fkey;
