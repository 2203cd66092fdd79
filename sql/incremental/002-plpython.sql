-- requires: plpython3u
create extension if not exists plpython3u;
