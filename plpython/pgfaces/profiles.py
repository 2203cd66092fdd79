"""A profile as the pipeline wants it: a dict made from a `profiles` row, whichever driver read the row."""

from __future__ import annotations

import json
from typing import Mapping

# The columns the pipeline reads; the server passes the whole row, the client selects these.
COLUMNS = ("name, detector, detector_params, embedder, embedder_params, dimensions, metric, match_threshold,"
           " cluster_threshold")


def from_row(row: Mapping) -> dict:
    """The row as a dict, its jsonb parameters parsed (PL/Python passes jsonb as text, psycopg as dicts)."""
    profile = dict(row)
    for key in ("detector_params", "embedder_params"):
        value = profile.get(key)
        profile[key] = json.loads(value) if isinstance(value, str) else (value or {})
    return profile
