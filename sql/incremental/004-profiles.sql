-- The shipped profiles. `tutorial` is the conference talk's pipeline, exactly as it had it; the others use
-- dlib's 128-d ResNet on faces aligned by the 5-point landmarks. Which one is the default was measured:
-- see README.md, "Search quality".
insert into profiles (name, detector, detector_params, embedder, embedder_params, dimensions, metric, description) values
('tutorial', 'haar', '{"scale_factor": 1.05, "min_neighbors": 2, "min_size": [250, 250], "max_side": 0}',
    'clip', '{"model_path": null}', 768, 'l2',
    'The talk: Haar cascade on full-size greyscale (1.05 / 2 / 250x250) + imgbeddings CLIP 768-d, L2'),
('haar', 'haar', '{"scale_factor": 1.1, "min_neighbors": 5, "min_size": [30, 30], "max_side": 0}',
    'dlib', '{}', 128, 'l2', 'Haar cascade 1.1 / 5 / 30x30 + dlib ResNet 128-d'),
('hog', 'hog', '{"upsample": 1, "max_side": 2000, "min_face": 40}',
    'dlib', '{}', 128, 'l2', 'dlib HOG, upsampled once on a 2000 px copy + dlib ResNet 128-d'),
('cnn', 'cnn', '{"upsample": 0, "max_side": 1600, "min_face": 40}',
    'dlib', '{}', 128, 'l2', 'dlib CNN (MMOD) on a 1600 px copy + dlib ResNet 128-d'),
('mtcnn', 'mtcnn', '{"max_side": 1024, "min_face": 40}',
    'dlib', '{}', 128, 'l2', 'MTCNN (ONNX) on a 1024 px copy + dlib ResNet 128-d'),
('blazeface', 'blazeface', '{"max_side": 1024, "min_face": 40}',
    'dlib', '{}', 128, 'l2', 'BlazeFace full-range (TFLite via OpenCV) + dlib ResNet 128-d');

-- mtcnn: best mean average precision of the measured profiles, at the lowest CPU cost of the good ones.
update profiles set is_default = true, ingest = true where name = 'mtcnn';
