"""The benchmark's synthetic face models (tests/bench/synthetic.py) reproduce what they are fitted to."""

import numpy as np
import pytest

from tests.bench import synthetic

DIMS = 64


def labelled_mixture(people=60, faces=6, between=0.25, within=0.08, seed=3):
    """Known people: centres with sd `between` per dimension, faces around them with sd `within`."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, between, (people, DIMS))
    vectors = np.repeat(centres, faces, axis=0) + rng.normal(0, within, (people * faces, DIMS))
    return vectors.astype(np.float32), np.repeat(np.arange(people), faces)


def test_people_model_reproduces_same_and_different_person_distances():
    real, labels = labelled_mixture()
    model = synthetic.People(real, labels)
    sample, sample_labels = model.sample(people=60, faces=6)
    want, got = synthetic.distances_summary(real, labels), synthetic.distances_summary(sample, sample_labels)
    assert got["same_person"] == pytest.approx(want["same_person"], rel=0.15)
    assert got["different_people"] == pytest.approx(want["different_people"], rel=0.15)


def test_unlabelled_faces_do_not_count_as_a_person():
    real, labels = labelled_mixture()
    labels = labels.copy()
    labels[::2] = -1  # half the faces of unknown people
    within, people = synthetic.within_person_covariance(real, labels)
    assert people == 60
    assert np.trace(within) == pytest.approx(DIMS * 0.08 ** 2, rel=0.25)


def test_draw_gives_exactly_n_faces_of_about_n_over_mean_people():
    real, labels = labelled_mixture()
    model = synthetic.People(real, labels, mean_faces=10)
    assert model.draw(5000).shape == (5000, DIMS)
    assert model.draw(1234).shape == (1234, DIMS)
    assert 6234 / 10 * 0.8 < model.describe()["people"] < 6234 / 10 * 1.2


def test_queries_of_people_have_near_neighbours_and_queries_of_strangers_do_not():
    real, labels = labelled_mixture()
    summary = synthetic.distances_summary(real, labels)
    halfway = (summary["same_person"] + summary["different_people"]) / 2

    def nearest(stored, queries):
        return np.array([np.linalg.norm(stored - q, axis=1).min() for q in queries])

    people = synthetic.People(real, labels, mean_faces=10)
    stored = people.draw(3000)
    assert np.median(nearest(stored, people.queries(100))) < halfway
    strangers = synthetic.Strangers(real)
    stored = strangers.draw(3000)
    assert np.median(nearest(stored, strangers.queries(100))) > halfway


def test_people_model_needs_two_labelled_people():
    real, labels = labelled_mixture(people=3)
    labels = np.where(labels == 0, 0, -1)
    with pytest.raises(ValueError, match="at least 2 people"):
        synthetic.People(real, labels)
