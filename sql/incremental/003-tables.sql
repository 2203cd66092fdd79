-- A profile is the tutorial's "switch for the detection parameters": a detector with its parameters and an
-- embedder. Faces of several profiles live side by side in one table, each with its own HNSW index.
create table profiles (
    name text primary key check (name ~ '^[a-z][a-z0-9_]{0,39}$'),
    detector text not null,
    detector_params jsonb not null default '{}',
    embedder text not null,
    embedder_params jsonb not null default '{}',
    dimensions int not null check (dimensions between 1 and 2000),
    metric text not null default 'l2' check (metric in ('l2', 'cosine')),
    -- Largest distance at which two faces are taken for the same person; calibrated on labelled photos.
    match_threshold float8 check (match_threshold > 0),
    ingest boolean not null default false,  -- run on every INSERT INTO photos
    is_default boolean not null default false,
    description text not null default ''
);
create unique index profiles_one_default on profiles (is_default) where is_default;

create table photos (
    id bigint generated always as identity primary key,
    filename text not null,
    image bytea not null,
    sha256 text not null unique,
    taken_at timestamptz,
    latitude double precision check (latitude between -90 and 90),
    longitude double precision check (longitude between -180 and 180),
    camera text,
    width int,
    height int,
    exif jsonb,
    added_at timestamptz not null default now()
);
create index photos_taken_at on photos (taken_at);

create table faces (
    id bigint generated always as identity primary key,
    photo_id bigint not null references photos (id) on delete cascade,
    profile text not null references profiles (name) on update cascade on delete cascade,
    face_key text not null,
    x int not null,
    y int not null,
    width int not null,
    height int not null,
    score real,
    embedding vector not null,
    thumbnail bytea
);
create index faces_photo_id on faces (photo_id);
create index faces_profile on faces (profile);

create table people (
    id bigint generated always as identity primary key,
    name text not null unique check (length(name) between 1 and 200),
    created_at timestamptz not null default now()
);

-- A reference face of a person, embedded by one profile; the image is kept so that other profiles can be
-- computed later without asking for it again.
create table person_references (
    id bigint generated always as identity primary key,
    person_id bigint not null references people (id) on delete cascade,
    profile text not null references profiles (name) on update cascade on delete cascade,
    image bytea not null,
    embedding vector not null,
    thumbnail bytea,
    added_at timestamptz not null default now()
);
create index person_references_person on person_references (person_id, profile);
