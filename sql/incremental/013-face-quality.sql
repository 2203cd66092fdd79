-- How good each face is for telling who it is (pgfaces.quality), measured when the face is found: the detail in
-- it (sharpness), its brightness and how far it is turned (yaw); with its size (width, height) and the detector's
-- score, already stored. Faces found before this have none: they are judged on what is known.
alter table faces add column sharpness real;
alter table faces add column brightness real;
alter table faces add column yaw real;

-- A profile's quality bar: the faces under it are kept and searchable but form no person (README, "Which faces are
-- grouped"); each key is optional (min_score, min_sharpness, max_yaw, min_typicality). NULL: every face is grouped.
-- centre: where the embedder puts the average face; a face whose embedding lies near it looks like everyone
-- (blurred, dark, tiny faces do: their vectors carry little of the person), so its distance from the centre, its
-- typicality, is part of the bar. For the dlib descriptor: the mean of the 207 faces found in the labelled photos of
-- ../shared/faces/photos, the set that calibrated match_threshold (python -m tests.bench.people_bar --centre).
alter table profiles add column quality_bar jsonb constraint profiles_quality_bar_check check (
    quality_bar is null
    or (jsonb_typeof(quality_bar) = 'object'
        and quality_bar - array['min_score', 'min_sharpness', 'max_yaw', 'min_typicality'] = '{}'::jsonb
        and not jsonb_path_exists(quality_bar, '$.* ? (@.type() != "number")')));
alter table profiles add column centre vector;
update profiles set centre = '[-0.0840,0.0706,0.0491,-0.0291,-0.1004,-0.0105,-0.0215,-0.0846,0.1389,-0.0822,0.1889,-0.0328,-0.2444,-0.0144,-0.0219,0.1280,-0.1419,-0.1228,-0.1060,-0.0792,0.0156,0.0354,0.0243,0.0488,-0.1319,-0.3151,-0.0704,-0.1003,0.0247,-0.0882,0.0017,0.0621,-0.1601,-0.0265,0.0320,0.0657,-0.0524,-0.0756,0.2002,0.0188,-0.1778,0.0042,0.0510,0.2571,0.1890,0.0179,0.0291,-0.0720,0.1098,-0.2656,0.0624,0.1494,0.0901,0.0669,0.0840,-0.1556,0.0114,0.1346,-0.1794,0.0754,0.0624,-0.0732,-0.0316,-0.0634,0.1868,0.1063,-0.1098,-0.1281,0.1573,-0.1618,-0.0524,0.0773,-0.1127,-0.1863,-0.2564,0.0372,0.3830,0.1561,-0.1531,0.0158,-0.0693,-0.0197,0.0414,0.0655,-0.0685,-0.0405,-0.0820,0.0360,0.1960,-0.0158,-0.0290,0.2186,0.0001,-0.0122,0.0230,0.0373,-0.1117,-0.0181,-0.1210,-0.0271,0.0233,-0.0846,0.0049,0.0906,-0.1819,0.1450,-0.0294,-0.0295,-0.0063,-0.0022,-0.1003,-0.0068,0.1676,-0.2535,0.1869,0.1693,0.0361,0.1343,0.0607,0.0621,-0.0000,-0.0292,-0.1584,-0.0822,0.0448,-0.0179,0.0263,0.0297]'::vector where embedder = 'dlib' and dimensions = 128;
-- The bar, chosen on half of the identities of the party benchmark and two composed sets, scored on the other half
-- (README, "Which faces are grouped"). The detector's score is MTCNN's probability (other detectors' scores mean
-- other things), and the yaw is read from MTCNN's landmarks.
update profiles set quality_bar = '{"min_sharpness": 0.15, "min_typicality": 0.48}' where embedder = 'dlib';
update profiles set quality_bar = '{"min_score": 0.9, "min_sharpness": 0.15, "max_yaw": 0.45, "min_typicality": 0.48}'
where name = 'mtcnn' and detector = 'mtcnn';
