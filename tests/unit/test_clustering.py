"""Grouping faces into people (pgfaces.clustering): the rules hold on hand-made data, and real faces group right."""

import numpy as np

from pgfaces import clustering

K = 5


def neighbour_lists(vectors, k=K, radius=clustering.RADIUS):
    """Each vector's k nearest (cut at radius), exact, as the database's neighbour query would return them."""
    d = np.linalg.norm(vectors[:, None] - vectors[None], axis=2)
    np.fill_diagonal(d, np.inf)
    i, j, dist = [], [], []
    for row in range(len(vectors)):
        for col in np.argsort(d[row])[:k]:
            if d[row, col] < radius:
                i.append(row), j.append(col), dist.append(d[row, col])
    return np.array(i), np.array(j), np.array(dist)


def people(sizes, spread=0.08, gap=1.0, dims=16, seed=1):
    """Faces of well separated people: person p's faces scatter `spread` around a centre `gap` from the others."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), dims))
    centres *= gap / np.sqrt(2) / np.linalg.norm(centres, axis=1, keepdims=True)  # ~gap apart
    truth = np.repeat(np.arange(len(sizes)), sizes)
    return centres[truth] + rng.normal(scale=spread / np.sqrt(dims), size=(len(truth), dims)), truth


def run(vectors, photos=None, ids=None, **kwargs):
    ids = np.arange(len(vectors)) * 10 + 100 if ids is None else ids  # face ids are not positions
    photos = np.arange(len(vectors)) if photos is None else photos
    i, j, d = neighbour_lists(vectors)
    return clustering.cluster(ids, photos, ids[i], ids[j], d, k=K, **kwargs), ids


def same_groups(a, b):
    """Do two labellings make the same groups (unassigned faces alone)?"""
    a = np.where(a == -1, -10**9 - np.arange(len(a)), a)
    b = np.where(b == -1, -10**9 - np.arange(len(b)), b)
    pairs = len(set(zip(a.tolist(), b.tolist())))
    return pairs == len(set(a.tolist())) == len(set(b.tolist()))


def test_separate_people_are_found():
    vectors, truth = people([4, 3, 5])
    labels, _ = run(vectors)
    assert same_groups(labels, truth)
    assert set(labels) == {-2, -3, -4}  # new people: -2, -3, ... in order of their smallest face id
    assert labels[0] == -2


def test_a_face_alone_is_unassigned():
    vectors, truth = people([4, 1])
    labels, _ = run(vectors)
    assert labels[-1] == clustering.UNASSIGNED and len(set(labels[:4])) == 1


def test_two_faces_of_one_photo_are_never_one_person():
    vectors, truth = people([4, 4], spread=0.05)
    photos = np.array([0, 1, 2, 3, 0, 1, 2, 3])  # every photo holds both people: fine
    labels, _ = run(vectors, photos)
    assert same_groups(labels, truth)
    twins = vectors.copy()
    twins[4:] = twins[:4] + 0.01  # person 2 looks exactly like person 1, but they appear together
    labels, _ = run(twins, photos)
    for p in range(4):
        assert labels[photos == p][0] != labels[photos == p][1] or labels[photos == p][0] == -1


def test_an_intruder_leaves_when_its_photo_meets_the_group():
    vectors, truth = people([10], spread=0.3)
    rng = np.random.default_rng(5)
    intruder = vectors[0] + 0.35 * rng.normal(size=16) / 4  # near enough to join the person...
    vectors = np.vstack([vectors, intruder])
    photos = np.concatenate([np.arange(10), [9]])  # ...but it shares photo 9 with one of the person's faces
    labels, _ = run(vectors, photos)
    assert len(set(labels[:10])) == 1 and labels[0] != -1  # the person holds together
    assert labels[10] != labels[0]


def test_pinned_faces_stay_with_their_person():
    vectors, truth = people([4, 4])
    ids = np.arange(8) * 10 + 100
    labels, _ = run(vectors, pinned={int(ids[0]): 7, int(ids[5]): 7})  # the user says face 5 is person 1
    assert labels[0] == labels[5] == 7
    assert (labels[:4] == 7).all()


def test_ejected_face_never_returns_to_its_person():
    vectors, truth = people([5, 4])
    ids = np.arange(9) * 10 + 100
    previous = {int(f): (11 if t == 0 else 12) for f, t in zip(ids, truth)}
    labels, _ = run(vectors, previous=previous, ejected={(int(ids[2]), 11)})
    assert labels[2] != 11
    assert (labels[[0, 1, 3, 4]] == 11).all() and (labels[5:] == 12).all()
    # without the previous run too: it never joins a group holding faces pinned to that person
    labels, _ = run(vectors, pinned={int(ids[0]): 11}, ejected={(int(ids[2]), 11)})
    assert labels[2] != 11 and labels[0] == 11


def test_named_people_are_never_merged_nor_dropped():
    vectors, truth = people([3, 3], gap=0.2)  # close enough to be one person
    ids = np.arange(6) * 10 + 100
    merged, _ = run(vectors)
    assert len(set(merged)) == 1
    previous = {int(f): int(20 + t) for f, t in zip(ids, truth)}
    labels, _ = run(vectors, previous=previous, named={20, 21})
    assert (labels[:3] == 20).all() and (labels[3:] == 21).all()


def test_named_person_gains_faces():
    vectors, truth = people([4, 3])
    ids = np.arange(7) * 10 + 100
    labels, _ = run(vectors, previous={int(ids[0]): 30, int(ids[1]): 30}, named={30})
    assert (labels[:4] == 30).all() and len(set(labels[4:])) == 1 and labels[4] < -1


def test_rerun_on_the_same_input_changes_nothing():
    vectors, truth = people([6, 4, 3, 1, 2], spread=0.3, gap=0.7, seed=4)
    photos = np.array([0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 6, 7, 8, 9, 10, 11])
    first, ids = run(vectors, photos)
    again, _ = run(vectors, photos)
    assert (first == again).all()
    order = np.random.default_rng(0).permutation(len(ids))  # the order rows come in does not matter
    shuffled, _ = run(vectors[order], photos[order], ids[order])
    assert (shuffled == first[order]).all()
    # the caller stores new people under ids of its own; the next run starts from them and keeps them
    stored = {int(f): int(1000 - p) for f, p in zip(ids, first) if p != -1}
    rerun, _ = run(vectors, photos, previous=stored)
    expected = np.array([stored.get(int(f), -1) for f in ids])
    assert (rerun == expected).all()


def test_previous_ids_follow_their_faces_when_new_faces_arrive():
    vectors, truth = people([4, 4, 3])
    ids = np.arange(11) * 10 + 100
    previous = {int(f): int(50 + t) for f, t in zip(ids[:8], truth[:8])}  # person 3's faces are new
    labels, _ = run(vectors, previous=previous)
    assert (labels[:4] == 50).all() and (labels[4:8] == 51).all() and len(set(labels[8:])) == 1
    assert labels[8] == -2


def test_a_large_person_holds_together_beyond_k_neighbours():
    vectors, truth = people([40, 30], spread=0.1)  # far more faces than each neighbour list holds
    labels, _ = run(vectors, dense=0.2)
    assert same_groups(labels, truth)


def test_join_rule():
    sizes = {1: 10, 2: 3}
    assert clustering.join_rule([0.3, 0.35, 0.4, 0.8], [1, 1, 1, 2], sizes, k=3) == 1
    assert clustering.join_rule([0.3, 0.35, 0.4], [1, 1, 1], sizes, k=3, exclude={1}) is None
    assert clustering.join_rule([0.45], [2], sizes, k=3) is None  # one of person 2's 3 faces is near: not enough
    assert clustering.join_rule([0.3, 0.32, 0.35], [2, 2, 2], sizes, k=3) == 2
    assert clustering.join_rule([0.5, 0.5, 0.5], [1, 2, -1], sizes, k=3) is None


MTCNN = {"name": "mtcnn", "detector": "mtcnn", "detector_params": {"max_side": 1280, "min_face": 16, "min_face_size": 12},
         "embedder": "dlib", "embedder_params": {}, "dimensions": 128}
IDENTITIES = {"raj", "sheldon", "alex_lacamoire", "obama", "biden", "amy", "penny"}  # raj and alex look alike


def test_real_faces_group_into_their_people(faces_dir):
    from pgfaces import pipeline
    from tests.bench.calibrate import labelled_images

    vectors, truth = [], []
    for path, identity in labelled_images(faces_dir / "photos"):
        if identity in IDENTITIES:
            faces = pipeline.detect_and_embed(path.read_bytes(), MTCNN)
            if faces:
                vectors.append(max(faces, key=lambda f: f.area).embedding)
                truth.append(identity)
    vectors, truth = np.array(vectors), np.array(truth)
    i, j, d = neighbour_lists(vectors, k=20)
    labels = clustering.cluster(np.arange(len(vectors)), np.arange(len(vectors)), i, j, d, k=20)
    for label in set(labels) - {-1}:
        assert len(set(truth[labels == label])) == 1, truth[labels == label]  # no person holds two identities
    for identity in ("raj", "sheldon"):  # five photos each: one person
        assert len(set(labels[truth == identity])) == 1 and labels[truth == identity][0] != -1


# Faces under the quality bar -------------------------------------------------------------------------------------

def blurred_crowd(n, seed=3):
    """Poor faces of n different people: blurred faces look like everyone, so they lie near each other (~0.45)."""
    rng = np.random.default_rng(seed)
    return rng.normal(scale=0.45 / np.sqrt(2) / 4, size=(n, 16)) + 5.0  # far from the good people, near each other


def test_faces_under_the_bar_form_no_person():
    poor = blurred_crowd(6)
    labels, _ = run(poor)
    assert len(set(labels.tolist())) < 6  # without a bar, the blurred faces chain into a "person"
    labels, _ = run(poor, groupable=np.zeros(6, dtype=bool))
    assert (labels == clustering.UNASSIGNED).all()


def test_a_face_under_the_bar_joins_the_person_its_nearest_faces_are():
    vectors, truth = people([6, 6])
    near_first = vectors[0] + 0.05 / 4  # a poor face of person 0, very near its faces
    vectors = np.vstack([vectors, near_first])
    good = np.ones(len(vectors), dtype=bool)
    good[-1] = False
    labels, _ = run(vectors, groupable=good)
    assert labels[-1] == labels[0] != clustering.UNASSIGNED
    # the same face in a photo where that person is already: it stays out (never two faces of one photo)
    photos = np.arange(len(vectors))
    photos[-1] = photos[3]
    labels, _ = run(vectors, photos=photos, groupable=good)
    assert labels[-1] == clustering.UNASSIGNED


def test_a_face_under_the_bar_between_two_people_joins_neither():
    vectors, truth = people([6, 6], gap=0.5)
    middle = (vectors[truth == 0].mean(0) + vectors[truth == 1].mean(0)) / 2
    vectors = np.vstack([vectors, middle])
    good = np.r_[np.ones(12, dtype=bool), False]
    labels, _ = run(vectors, groupable=good)
    assert labels[-1] == clustering.UNASSIGNED


def test_a_pair_alone_needs_the_same_person_distance():
    a = np.zeros(16)
    b = a.copy()
    b[0] = 0.58  # under the grouping's 0.6, over the profile's 0.567 for one pair
    labels, _ = run(np.vstack([a, b]))
    assert labels[0] == labels[1] != clustering.UNASSIGNED
    labels, _ = run(np.vstack([a, b]), pair_threshold=0.567)
    assert (labels == clustering.UNASSIGNED).all()


def test_a_previous_person_loses_faces_now_under_the_bar_and_keeps_pinned_ones():
    vectors, truth = people([5])
    ids = np.arange(len(vectors)) * 10 + 100
    previous = {int(f): 7 for f in ids}
    good = np.ones(5, dtype=bool)
    good[[1, 2]] = False
    far = vectors.copy()
    labels, _ = run(far, ids=ids, previous=previous, groupable=good, pinned={int(ids[2]): 7})
    assert labels[2] == 7  # the user's word stays
    assert labels[0] == 7  # the good faces keep the person's id
    assert labels[1] == 7  # the poor one is voted back in by its near faces
