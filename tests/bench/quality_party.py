"""The party benchmark (../shared/faces/party) as the quality benchmark reads it: its manifest and queries, and the
scoring of one query's ranking (average precision, recall@10, precision@10; the ignore_files dropped first).
"""

from __future__ import annotations

import csv
import dataclasses
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]

PARTY = ROOT.parent / "shared" / "faces" / "party"


@dataclasses.dataclass
class Query:
    identity: str
    reference: str
    relevant: set[str]
    ignore: set[str]


def read_manifest(party: pathlib.Path = PARTY) -> dict[str, dict]:
    with open(party / "MANIFEST.tsv", newline="") as f:
        return {row["file"]: row for row in csv.DictReader(f, delimiter="\t")}


def read_queries(party: pathlib.Path = PARTY) -> list[Query]:
    def files(text: str) -> set[str]:
        return {x for x in text.split(";") if x}

    with open(party / "QUERIES.tsv", newline="") as f:
        return [Query(r["identity"], r["reference_file"], files(r["relevant_files"]), files(r["ignore_files"]))
                for r in csv.DictReader(f, delimiter="\t")]


# --- scoring -------------------------------------------------------------------------------------------------------


def average_precision(ranking: list[str], relevant: set[str]) -> float:
    """AP over the whole ranking; relevant photos never returned contribute zero precision."""
    if not relevant:
        return 0.0
    hits, total = 0, 0.0
    for rank, name in enumerate(ranking, 1):
        if name in relevant:
            hits += 1
            total += hits / rank
    return total / len(relevant)


def score_query(ranking: list[str], query: Query, k: int = 10) -> dict:
    ranking = [name for name in ranking if name not in query.ignore]
    top = ranking[:k]
    hits = sum(1 for name in top if name in query.relevant)
    return {
        "ap": average_precision(ranking, query.relevant),
        "recall_at_10": hits / len(query.relevant),
        "precision_at_10": hits / k,
        "relevant": len(query.relevant),
        "returned_relevant": sum(1 for name in ranking if name in query.relevant),
        "missed": sorted(query.relevant - set(ranking)),
    }
