-- Great-circle distance in kilometres (haversine), for "within 50 km of a point". NULL when a point is unknown.
create or replace function km_between(lat1 float8, lon1 float8, lat2 float8, lon2 float8)
returns float8
language sql immutable parallel safe security invoker
set search_path = public, pg_temp
as $$
    select 2 * 6371.0088 * asin(sqrt(
        power(sin(radians(lat2 - lat1) / 2), 2)
        + cos(radians(lat1)) * cos(radians(lat2)) * power(sin(radians(lon2 - lon1) / 2), 2)))
$$;
