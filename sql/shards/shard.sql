-- A shard: an ordinary pgfaces database (migrated as one node is) that holds some of the photos with their faces.
-- What makes it a shard is only that its ids come from a range of its own, so that an id is unique across the
-- shards and says where its row lives: shard k's photos, faces and people are numbered from k * 10^12 + 1 up to
-- (k + 1) * 10^12 - 1. Run after every migrate of the shard, with the setting pgfaces_shards.shard = k (pgfaces.shards
-- does it); running it again changes nothing. README, "Shards".

do $$
declare
    k bigint := nullif(current_setting('pgfaces_shards.shard', true), '')::bigint;
    low bigint;
    high bigint;
    s record;
    filled boolean;
begin
    if k is null or k not between 1 and 9000 then
        raise exception 'pgfaces_shards.shard must be the shard''s number, 1 to 9000 (got %)',
            coalesce(quote_literal(current_setting('pgfaces_shards.shard', true)), 'nothing')
            using errcode = 'invalid_parameter_value';
    end if;
    low := k * 1000000000000;
    high := low + 999999999999;
    -- Every identity column of the schema (photos, faces, people, person_references, ...).
    for s in
        select pg_get_serial_sequence(format('%I.%I', c.relnamespace::regnamespace, c.relname), a.attname)::regclass
                   as seq,
               c.relname, a.attname
        from pg_attribute a join pg_class c on c.oid = a.attrelid
        where c.relnamespace = 'public'::regnamespace and c.relkind = 'r' and a.attidentity <> ''
    loop
        if (select q.seqmin from pg_sequence q where q.seqrelid = s.seq) <> low then
            -- the first time only: a table with rows means this database was filled before it became this shard
            execute format('select exists (select from public.%I)', s.relname) into filled;
            if filled then
                raise exception 'table % has rows already: make shard % from an empty database', s.relname, k
                    using errcode = 'object_not_in_prerequisite_state';
            end if;
            execute format('alter sequence %s minvalue %s maxvalue %s start %s restart %s', s.seq, low, high, low, low);
        end if;
    end loop;
end
$$;
