-- Same-person distance thresholds, calibrated on the labelled real photos of ../shared/faces/photos (every pair
-- of one-person photos, same or different person; threshold at the best balanced accuracy, the middle of the
-- range when several are equally good): `python -m tests.bench.calibrate`, also run by `invoke bench-quality`.
-- False accept / false reject on those pairs:
--   haar 0.541 (0.0% / 2.0%), hog 0.576 (0.05% / 0.0%), cnn 0.663 (1.2% / 0.0%),
--   mtcnn 0.587 (0.10% / 0.0%), blazeface 0.556 (0.0% / 0.0%, but it finds a face in only 36 of the 67 photos).
-- `tutorial` (CLIP) gets none: its model could not be loaded where this was calibrated.
update profiles set match_threshold = 0.541 where name = 'haar';
update profiles set match_threshold = 0.576 where name = 'hog';
update profiles set match_threshold = 0.663 where name = 'cnn';
update profiles set match_threshold = 0.587 where name = 'mtcnn';
update profiles set match_threshold = 0.556 where name = 'blazeface';
