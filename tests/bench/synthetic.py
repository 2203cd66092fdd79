"""Synthetic face embeddings for the search benchmark, fitted to the benchmark's real ones.

Two models (`invoke bench --synthetic people|strangers`):

- people (default): a photo library. Each synthetic person has a centre, and the person's faces scatter around
  it with the within-person covariance measured on real faces grouped by person; centres scatter with the
  between-person covariance (all real faces' covariance minus the within-person part). Faces per person are
  geometric with mean `mean_faces`, so most people appear a few times and a few appear often. A query is a new
  face of a person already in the library: what `find_photos_like` is asked in practice.
- strangers: every vector an independent draw from one Gaussian fitted to all real faces, as if a million
  different people had each been photographed once. No stored face is much nearer to a query than the others,
  the hardest case for an HNSW index.
"""

from __future__ import annotations

import numpy as np

MODELS = ("people", "strangers")


def shrunk(cov: np.ndarray, weight: float = 0.2) -> np.ndarray:
    """Covariance estimated from few samples, pulled toward its mean variance so it is positive definite."""
    dims = len(cov)
    return (1 - weight) * cov + weight * np.eye(dims) * np.trace(cov) / dims


def within_person_covariance(real: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Pooled covariance of faces around their person's mean; labels < 0 are unknown people (left out)."""
    dims = real.shape[1]
    scatter, samples, people = np.zeros((dims, dims)), 0, 0
    for label in np.unique(labels[labels >= 0]):
        faces = real[labels == label].astype(np.float64)
        if len(faces) < 2:
            continue
        centred = faces - faces.mean(axis=0)
        scatter += centred.T @ centred
        samples += len(faces)
        people += 1
    if people < 2:
        raise ValueError(f"need at least 2 people with 2 labelled faces each to fit the people model (got {people})")
    return scatter / (samples - people), people


def nearest_psd(cov: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((cov + cov.T) / 2)
    return (vectors * np.clip(values, 0, None)) @ vectors.T


class Strangers:
    """Independent draws from a Gaussian fitted to the real embeddings."""

    name = "strangers"

    def __init__(self, real: np.ndarray, seed: int = 7):
        self.rng = np.random.default_rng(seed)
        self.mean = real.mean(axis=0)
        self.chol = np.linalg.cholesky(shrunk(np.cov(real, rowvar=False))).astype(np.float32)

    def describe(self) -> dict:
        return {"model": self.name}

    def draw(self, n: int) -> np.ndarray:
        z = self.rng.standard_normal((n, len(self.mean)), dtype=np.float32)
        return (self.mean + z @ self.chol.T).astype(np.float32)

    def queries(self, n: int) -> np.ndarray:
        return self.draw(n)


class People:
    """Faces of synthetic people: person centres from the between-person covariance, faces around them."""

    name = "people"

    def __init__(self, real: np.ndarray, labels: np.ndarray, mean_faces: float = 10.0, seed: int = 7):
        self.rng = np.random.default_rng(seed)
        self.mean_faces = mean_faces
        self.mean = real.mean(axis=0)
        within, self.labelled_people = within_person_covariance(real, labels)
        between = nearest_psd(np.cov(real, rowvar=False) - within)
        self.within_chol = np.linalg.cholesky(shrunk(within)).astype(np.float32)
        self.between_chol = np.linalg.cholesky(shrunk(between)).astype(np.float32)
        self.centres: list[np.ndarray] = []
        self.labelled_faces = int((labels >= 0).sum())

    def describe(self) -> dict:
        people = sum(len(c) for c in self.centres)
        return {"model": self.name, "mean_faces_per_person": self.mean_faces, "people": people,
                "fitted_on": f"{self.labelled_faces} faces of {self.labelled_people} people"}

    def new_centres(self, people: int) -> np.ndarray:
        z = self.rng.standard_normal((people, len(self.mean)), dtype=np.float32)
        return (self.mean + z @ self.between_chol.T).astype(np.float32)

    def faces_around(self, centres: np.ndarray) -> np.ndarray:
        z = self.rng.standard_normal(centres.shape, dtype=np.float32)
        return (centres + z @ self.within_chol.T).astype(np.float32)

    def draw(self, n: int) -> np.ndarray:
        """n faces of new people, in random order (a library is not written one person at a time)."""
        counts = self.rng.geometric(1 / self.mean_faces, size=int(n / self.mean_faces * 1.2) + 10)
        while counts.sum() < n:
            counts = np.concatenate([counts, self.rng.geometric(1 / self.mean_faces, size=len(counts))])
        people = int(np.searchsorted(np.cumsum(counts), n)) + 1
        counts = counts[:people]
        counts[-1] -= counts.sum() - n
        centres = self.new_centres(people)
        self.centres.append(centres)
        faces = self.faces_around(np.repeat(centres, counts, axis=0))
        return faces[self.rng.permutation(n)]

    def sample(self, people: int = 40, faces: int = 8) -> tuple[np.ndarray, np.ndarray]:
        """Faces of fresh people with their labels, for comparing synthetic distances with real ones."""
        return self.faces_around(np.repeat(self.new_centres(people), faces, axis=0)), np.repeat(np.arange(people), faces)

    def queries(self, n: int) -> np.ndarray:
        """New faces (not stored) of people picked at random among those drawn so far, one pick per person."""
        centres = np.concatenate(self.centres)
        return self.faces_around(centres[self.rng.choice(len(centres), n, replace=n > len(centres))])


def distances_summary(vectors: np.ndarray, labels: np.ndarray) -> dict:
    """Mean L2 distance between faces of the same person and of different people (a check of the fit)."""
    same, other = [], []
    for i in range(len(vectors)):
        if labels[i] < 0:
            continue
        d = np.linalg.norm(vectors - vectors[i], axis=1)
        known = (labels >= 0) & (np.arange(len(vectors)) != i)
        same.extend(d[known & (labels == labels[i])])
        other.extend(d[known & (labels != labels[i])])
    return {"same_person": float(np.mean(same)) if same else float("nan"),
            "different_people": float(np.mean(other)) if other else float("nan")}
