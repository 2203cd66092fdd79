"""Scores of a grouping into people against the truth: pairwise and BCubed precision / recall, on a FaceSet's
labelled faces (metrics) or on synthetic sets where every face is labelled (metrics_large).
"""

from __future__ import annotations

import numpy as np

from .people_faces import FaceSet


def metrics(labels, faces: FaceSet) -> dict:
    """Pairwise and BCubed precision/recall on the labelled faces (an unassigned face is alone), same-photo
    violations (photos with two faces in one person, all faces), people found vs true, unassigned share."""
    labels = np.asarray(labels)
    assigned = labels != -1
    key = labels[assigned] * (faces.photo.max() + 1) + faces.photo[assigned]
    _, per_key = np.unique(key, return_counts=True)
    violations = len(np.unique(key[np.isin(key, np.unique(key)[per_key > 1])] % (faces.photo.max() + 1)))
    lab, ident = labels[faces.labelled], faces.identity[faces.labelled]
    alone = lab == -1
    cl = np.where(alone, -(10**9) - np.arange(len(lab)), lab)
    same_c, same_i = cl[:, None] == cl[None, :], ident[:, None] == ident[None, :]
    off = ~np.eye(len(lab), dtype=bool)
    tp = (same_c & same_i & off).sum()
    both = (same_c & same_i).sum(1)
    bp, br = (both / same_c.sum(1)).mean(), (both / same_i.sum(1)).mean()
    return {"P": tp / max(1, (same_c & off).sum()), "R": tp / max(1, (same_i & off).sum()), "BP": bp, "BR": br,
            "F1": 2 * bp * br / (bp + br), "viol": violations, "found": len(np.unique(lab[~alone])),
            "true": len(np.unique(ident)), "unassigned": alone.mean()}


def metrics_large(pred, truth) -> dict:
    """Pairwise and BCubed from the contingency table (synthetic sets: every face labelled; -1 alone)."""
    pred = np.where(pred == -1, pred.max() + 2 + np.arange(len(pred)), pred)
    p, t = np.unique(pred, return_inverse=True)[1], np.unique(truth, return_inverse=True)[1]
    cell, count = np.unique(p * (t.max() + 1) + t, return_counts=True)
    sp, st = np.bincount(p), np.bincount(t)
    tp, pp, tt = (count * (count - 1)).sum() / 2, (sp * (sp - 1)).sum() / 2, (st * (st - 1)).sum() / 2
    bp = (count * count / sp[cell // (t.max() + 1)]).sum() / len(p)
    br = (count * count / st[cell % (t.max() + 1)]).sum() / len(p)
    return {"P": tp / max(pp, 1), "R": tp / max(tt, 1), "BP": bp, "BR": br, "F1": 2 * bp * br / (bp + br)}
