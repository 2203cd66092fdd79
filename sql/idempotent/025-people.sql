-- People: named persons and their reference faces. Plain SQL: present in both modes.

-- Unicode's combining marks (general categories Mn and Me, Unicode 14.0.0), as a regular expression's bracket
-- contents: generated with Python's unicodedata (`[c for c in range(0x110000) if unicodedata.category(chr(c)) in
-- ('Mn', 'Me')]`, as ranges). A name may stack a few on a letter (Vietnamese two, pointed Hebrew four), not more.
create or replace function pgfaces_combining_marks()
returns text
language sql immutable parallel safe security invoker
set search_path = public, pg_temp
as $$ select '\u0300-\u036F\u0483-\u0489\u0591-\u05BD\u05BF\u05C1-\u05C2\u05C4-\u05C5\u05C7\u0610-\u061A'
        || '\u064B-\u065F\u0670\u06D6-\u06DC\u06DF-\u06E4\u06E7-\u06E8\u06EA-\u06ED\u0711\u0730-\u074A'
        || '\u07A6-\u07B0\u07EB-\u07F3\u07FD\u0816-\u0819\u081B-\u0823\u0825-\u0827\u0829-\u082D\u0859-\u085B'
        || '\u0898-\u089F\u08CA-\u08E1\u08E3-\u0902\u093A\u093C\u0941-\u0948\u094D\u0951-\u0957\u0962-\u0963'
        || '\u0981\u09BC\u09C1-\u09C4\u09CD\u09E2-\u09E3\u09FE\u0A01-\u0A02\u0A3C\u0A41-\u0A42\u0A47-\u0A48'
        || '\u0A4B-\u0A4D\u0A51\u0A70-\u0A71\u0A75\u0A81-\u0A82\u0ABC\u0AC1-\u0AC5\u0AC7-\u0AC8\u0ACD'
        || '\u0AE2-\u0AE3\u0AFA-\u0AFF\u0B01\u0B3C\u0B3F\u0B41-\u0B44\u0B4D\u0B55-\u0B56\u0B62-\u0B63\u0B82'
        || '\u0BC0\u0BCD\u0C00\u0C04\u0C3C\u0C3E-\u0C40\u0C46-\u0C48\u0C4A-\u0C4D\u0C55-\u0C56\u0C62-\u0C63'
        || '\u0C81\u0CBC\u0CBF\u0CC6\u0CCC-\u0CCD\u0CE2-\u0CE3\u0D00-\u0D01\u0D3B-\u0D3C\u0D41-\u0D44\u0D4D'
        || '\u0D62-\u0D63\u0D81\u0DCA\u0DD2-\u0DD4\u0DD6\u0E31\u0E34-\u0E3A\u0E47-\u0E4E\u0EB1\u0EB4-\u0EBC'
        || '\u0EC8-\u0ECD\u0F18-\u0F19\u0F35\u0F37\u0F39\u0F71-\u0F7E\u0F80-\u0F84\u0F86-\u0F87\u0F8D-\u0F97'
        || '\u0F99-\u0FBC\u0FC6\u102D-\u1030\u1032-\u1037\u1039-\u103A\u103D-\u103E\u1058-\u1059\u105E-\u1060'
        || '\u1071-\u1074\u1082\u1085-\u1086\u108D\u109D\u135D-\u135F\u1712-\u1714\u1732-\u1733\u1752-\u1753'
        || '\u1772-\u1773\u17B4-\u17B5\u17B7-\u17BD\u17C6\u17C9-\u17D3\u17DD\u180B-\u180D\u180F\u1885-\u1886'
        || '\u18A9\u1920-\u1922\u1927-\u1928\u1932\u1939-\u193B\u1A17-\u1A18\u1A1B\u1A56\u1A58-\u1A5E\u1A60'
        || '\u1A62\u1A65-\u1A6C\u1A73-\u1A7C\u1A7F\u1AB0-\u1ACE\u1B00-\u1B03\u1B34\u1B36-\u1B3A\u1B3C\u1B42'
        || '\u1B6B-\u1B73\u1B80-\u1B81\u1BA2-\u1BA5\u1BA8-\u1BA9\u1BAB-\u1BAD\u1BE6\u1BE8-\u1BE9\u1BED'
        || '\u1BEF-\u1BF1\u1C2C-\u1C33\u1C36-\u1C37\u1CD0-\u1CD2\u1CD4-\u1CE0\u1CE2-\u1CE8\u1CED\u1CF4'
        || '\u1CF8-\u1CF9\u1DC0-\u1DFF\u20D0-\u20F0\u2CEF-\u2CF1\u2D7F\u2DE0-\u2DFF\u302A-\u302D\u3099-\u309A'
        || '\uA66F-\uA672\uA674-\uA67D\uA69E-\uA69F\uA6F0-\uA6F1\uA802\uA806\uA80B\uA825-\uA826\uA82C'
        || '\uA8C4-\uA8C5\uA8E0-\uA8F1\uA8FF\uA926-\uA92D\uA947-\uA951\uA980-\uA982\uA9B3\uA9B6-\uA9B9'
        || '\uA9BC-\uA9BD\uA9E5\uAA29-\uAA2E\uAA31-\uAA32\uAA35-\uAA36\uAA43\uAA4C\uAA7C\uAAB0\uAAB2-\uAAB4'
        || '\uAAB7-\uAAB8\uAABE-\uAABF\uAAC1\uAAEC-\uAAED\uAAF6\uABE5\uABE8\uABED\uFB1E\uFE00-\uFE0F'
        || '\uFE20-\uFE2F\U000101FD\U000102E0\U00010376-\U0001037A\U00010A01-\U00010A03\U00010A05-\U00010A06'
        || '\U00010A0C-\U00010A0F\U00010A38-\U00010A3A\U00010A3F\U00010AE5-\U00010AE6\U00010D24-\U00010D27'
        || '\U00010EAB-\U00010EAC\U00010F46-\U00010F50\U00010F82-\U00010F85\U00011001\U00011038-\U00011046'
        || '\U00011070\U00011073-\U00011074\U0001107F-\U00011081\U000110B3-\U000110B6\U000110B9-\U000110BA'
        || '\U000110C2\U00011100-\U00011102\U00011127-\U0001112B\U0001112D-\U00011134\U00011173'
        || '\U00011180-\U00011181\U000111B6-\U000111BE\U000111C9-\U000111CC\U000111CF\U0001122F-\U00011231'
        || '\U00011234\U00011236-\U00011237\U0001123E\U000112DF\U000112E3-\U000112EA\U00011300-\U00011301'
        || '\U0001133B-\U0001133C\U00011340\U00011366-\U0001136C\U00011370-\U00011374\U00011438-\U0001143F'
        || '\U00011442-\U00011444\U00011446\U0001145E\U000114B3-\U000114B8\U000114BA\U000114BF-\U000114C0'
        || '\U000114C2-\U000114C3\U000115B2-\U000115B5\U000115BC-\U000115BD\U000115BF-\U000115C0'
        || '\U000115DC-\U000115DD\U00011633-\U0001163A\U0001163D\U0001163F-\U00011640\U000116AB\U000116AD'
        || '\U000116B0-\U000116B5\U000116B7\U0001171D-\U0001171F\U00011722-\U00011725\U00011727-\U0001172B'
        || '\U0001182F-\U00011837\U00011839-\U0001183A\U0001193B-\U0001193C\U0001193E\U00011943'
        || '\U000119D4-\U000119D7\U000119DA-\U000119DB\U000119E0\U00011A01-\U00011A0A\U00011A33-\U00011A38'
        || '\U00011A3B-\U00011A3E\U00011A47\U00011A51-\U00011A56\U00011A59-\U00011A5B\U00011A8A-\U00011A96'
        || '\U00011A98-\U00011A99\U00011C30-\U00011C36\U00011C38-\U00011C3D\U00011C3F\U00011C92-\U00011CA7'
        || '\U00011CAA-\U00011CB0\U00011CB2-\U00011CB3\U00011CB5-\U00011CB6\U00011D31-\U00011D36\U00011D3A'
        || '\U00011D3C-\U00011D3D\U00011D3F-\U00011D45\U00011D47\U00011D90-\U00011D91\U00011D95\U00011D97'
        || '\U00011EF3-\U00011EF4\U00016AF0-\U00016AF4\U00016B30-\U00016B36\U00016F4F\U00016F8F-\U00016F92'
        || '\U00016FE4\U0001BC9D-\U0001BC9E\U0001CF00-\U0001CF2D\U0001CF30-\U0001CF46\U0001D167-\U0001D169'
        || '\U0001D17B-\U0001D182\U0001D185-\U0001D18B\U0001D1AA-\U0001D1AD\U0001D242-\U0001D244'
        || '\U0001DA00-\U0001DA36\U0001DA3B-\U0001DA6C\U0001DA75\U0001DA84\U0001DA9B-\U0001DA9F'
        || '\U0001DAA1-\U0001DAAF\U0001E000-\U0001E006\U0001E008-\U0001E018\U0001E01B-\U0001E021'
        || '\U0001E023-\U0001E024\U0001E026-\U0001E02A\U0001E130-\U0001E136\U0001E2AE\U0001E2EC-\U0001E2EF'
        || '\U0001E8D0-\U0001E8D6\U0001E944-\U0001E94A\U000E0100-\U000E01EF' $$;

-- A person's name as stored and as looked up: the one rule every function that takes a name applies
-- (name_person, remember_face, find_photos_of, find_photos_with, suggest_people, forget_person, the CLI's --person).
-- NFC; white space of every kind (tabs, no-break spaces, ...) and invisible characters trimmed at the ends, white
-- space inside one space; 1 to 200 characters. Refused, so that a name shows as what it is: control characters,
-- bidirectional controls (an RTL override shows "gnp.exe" as "exe.png"), invisible characters inside, more than four
-- combining marks on a character (they draw over the lines around).
create or replace function pgfaces_person_name(name text)
returns text
language plpgsql immutable parallel safe security definer
set search_path = public, pg_temp
as $$
declare
    white constant text := '\u0009-\u000D\u0020\u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000';
    invisible constant text := '\u00AD\u115F\u1160\u180E\u200B\u2060-\u2064\u3164\uFEFF\uFFA0';
    joiners constant text := '\u200C\u200D';  -- needed inside words of some scripts and emoji, nothing at the ends
    marks constant text := pgfaces_combining_marks();
    found text;
begin
    if name is not null then
        name := normalize(name, NFC);
        name := regexp_replace(name, format('^[%1$s%2$s%3$s]+|[%1$s%2$s%3$s]+$', white, invisible, joiners), '', 'g');
        name := regexp_replace(name, format('[%s]+', white), ' ', 'g');
    end if;
    if name is null or name = '' then
        raise exception 'a person needs a name (unnamed people wait for one in people_overview)'
            using errcode = 'invalid_parameter_value';
    end if;
    if length(name) > 200 then
        raise exception 'a person''s name has at most 200 characters, not %', length(name)
            using errcode = 'invalid_parameter_value';
    end if;
    found := substring(name from '[\u0001-\u001F\u007F-\u009F]');
    if found is not null then
        raise exception 'a person''s name may not contain control characters (it has U+%)', upper(lpad(to_hex(ascii(found)), 4, '0'))
            using errcode = 'invalid_parameter_value';
    end if;
    found := substring(name from '[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]');
    if found is not null then
        raise exception 'a person''s name may not contain bidirectional controls, which change the order it is shown in (it has U+%)',
            upper(lpad(to_hex(ascii(found)), 4, '0'))
            using errcode = 'invalid_parameter_value';
    end if;
    found := substring(name from format('[%s]', invisible));
    if found is not null then
        raise exception 'a person''s name may not contain invisible characters (it has U+%)', upper(lpad(to_hex(ascii(found)), 4, '0'))
            using errcode = 'invalid_parameter_value';
    end if;
    if name ~ format('^[%s]', marks) then
        raise exception 'a person''s name may not start with a combining mark' using errcode = 'invalid_parameter_value';
    end if;
    if name ~ format('[%s]{5}', marks) then
        raise exception 'a person''s name may have at most 4 combining marks on a character'
            using errcode = 'invalid_parameter_value';
    end if;
    return name;
end
$$;

-- Names stored before the rule (issue 20) are brought under it where it gives a valid name that no one else has; the
-- others stay as they were (name_person(id, name) renames, forget_person(id) forgets by id). Only names with
-- something besides printable ASCII or with doubled spaces are looked at: cheap enough for every migration.
do $$
declare
    pe record;
    fixed text;
begin
    for pe in select id, name from people where name ~ '[^\u0021-\u007E ]|  ' loop
        begin
            fixed := pgfaces_person_name(pe.name);
        exception when invalid_parameter_value then
            continue;
        end;
        if fixed <> pe.name and not exists (select from people o where o.name = fixed) then
            update people set name = fixed where id = pe.id;
        end if;
    end loop;
end
$$;

-- Stores a reference face whose embedding was computed already (by remember_face in the server, or by the client
-- in client-side mode) and returns the person's id; the same picture twice for one person and profile is stored once.
create or replace function pgfaces_remember(name text, profile text, image bytea, embedding vector,
                                            thumbnail bytea default null)
returns bigint
language plpgsql volatile parallel unsafe security definer
set search_path = public, pg_temp
as $$
declare
    p profiles := pgfaces_profile(profile);
    who bigint;
begin
    name := pgfaces_person_name(name);
    if image is null or embedding is null then
        raise exception 'a reference needs its image and its embedding' using errcode = 'null_value_not_allowed';
    end if;
    -- as remember_face in the server would have made them (client-side mode hands them over: 006-input-checks.sql)
    perform pgfaces_check_image(image, 'reference image');
    perform pgfaces_check_embedding(p, embedding, 'reference image');
    perform pgfaces_check_thumbnail(thumbnail, 'reference image');
    insert into people (name, profile) values (pgfaces_remember.name, p.name)
        on conflict on constraint people_name_key do nothing;
    select pe.id into who from people pe where pe.name = pgfaces_remember.name;
    insert into person_references (person_id, profile, image, embedding, thumbnail)
    select who, p.name, pgfaces_remember.image, pgfaces_remember.embedding, pgfaces_remember.thumbnail
    where not exists (select from person_references r
                      where r.person_id = who and r.profile = p.name and md5(r.image) = md5(pgfaces_remember.image));
    return who;
end
$$;
