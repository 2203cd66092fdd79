-- requires: plpython3u
-- cluster_faces(): groups a profile's faces into people in the server (pgfaces.people). Without plpython3u the
-- client does the same run (`python -m pgfaces.client cluster`); the stub in 035 says so.

create or replace function pgfaces_py_cluster_faces(p profiles)
returns bigint
language plpython3u volatile parallel unsafe security definer
set search_path = public, pg_temp
as $$
from pgfaces import server
return server.cluster_faces(plpy, GD, p)
$$;

-- Groups the profile's faces (default: the default profile's) into people; returns how many faces changed person.
-- Progress comes as NOTICEs. User decisions and named people are kept (README.md, "People").
create or replace function cluster_faces(profile text default null)
returns int
language plpgsql volatile parallel unsafe security definer
set search_path = public, pg_temp
as $$
declare
    p profiles := pgfaces_profile(profile);
begin
    return pgfaces_py_cluster_faces(p);
exception when others or query_canceled then
    perform pgfaces_reraise(sqlstate, sqlerrm);
end
$$;
