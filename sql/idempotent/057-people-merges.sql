-- Split people come back together: the merges a person most likely needs, ranked by how near their faces are
-- (suggest_merges). The ones as certain as the grouping itself are the grouping's own: cluster_faces() merges every
-- pair of groups whose faces average under the threshold, starting from the people as they are. Plain SQL:
-- present in both modes. README.md, "People", "Split people".

-- Pairs of people whose faces lie near each other: candidates are the pairs whose faces list each other as nearest
-- faces (face_neighbours), scored by the mean distance between their faces (up to 50 of each, the largest); never
-- two people with a face in one photo (never one person), two named people (the user told them apart) or a hidden
-- one. Nearest first, at most `n`; `person`: only the pairs with that person.
create or replace function pgfaces_merge_candidates(p profiles, n int, person bigint default null)
returns table (person_id bigint, other_id bigint, distance float8)
language sql stable parallel safe security invoker
set search_path = public, pg_temp
as $$
    with links as (
        select least(fa.person_id, fb.person_id) as a, greatest(fa.person_id, fb.person_id) as b, count(*) as listed
        from face_people fa
        join faces f on f.id = fa.face_id and f.profile = p.name
        join face_neighbours nb on nb.face_id = fa.face_id
        cross join lateral unnest(nb.neighbours) as u(neighbour)
        join face_people fb on fb.face_id = u.neighbour
        where fa.person_id is not null and fb.person_id is not null and fa.person_id <> fb.person_id
          and (person is null or fa.person_id = person or fb.person_id = person)
        group by 1, 2),
    candidates as (
        select l.a, l.b from links l
        join people pa on pa.id = l.a
        join people pb on pb.id = l.b
        where not pa.hidden and not pb.hidden and (pa.name is null or pb.name is null)
          and not exists (select from face_people x join faces fx on fx.id = x.face_id
                          join faces fy on fy.photo_id = fx.photo_id join face_people y on y.face_id = fy.id
                          where x.person_id = l.a and y.person_id = l.b)
        order by l.listed desc, l.a, l.b
        limit n * 5)
    select c.a, c.b, d.distance
    from candidates c
    cross join lateral (
        select avg(x.embedding <-> y.embedding) as distance
        from (select f.embedding from face_people fp join faces f on f.id = fp.face_id
              where fp.person_id = c.a order by f.width * f.height desc, f.id limit 50) x,
             (select f.embedding from face_people fp join faces f on f.id = fp.face_id
              where fp.person_id = c.b order by f.width * f.height desc, f.id limit 50) y) d
    order by d.distance, c.a, c.b
    limit n
$$;

-- The merges to look at, nearest first: `select * from suggest_merges()`; then `merge_people(person_id, other_id)`.
create or replace function suggest_merges(n int default 20, person bigint default null, profile text default null)
returns table (person_id bigint, name text, faces bigint, other_id bigint, other_name text, other_faces bigint,
               distance float8)
language plpgsql stable parallel safe security definer
set search_path = public, pg_temp
as $$
declare
    p profiles;
begin
    perform pgfaces_check_n(n);
    if person is not null then
        p := pgfaces_profile((pgfaces_person(person)).profile);
    else
        p := pgfaces_profile(profile);
    end if;
    return query
    select c.person_id, a.name, a.faces, c.other_id, b.name, b.faces, c.distance
    from pgfaces_merge_candidates(p, n, person) c
    join people_overview a on a.person_id = c.person_id
    join people_overview b on b.person_id = c.other_id
    order by c.distance, c.person_id, c.other_id;
end
$$;
