"""The BEIR layout of an evaluation set: `corpus.jsonl`, `queries.jsonl`, `qrels/test.tsv`.

The split writes held-out data in this layout, the statistics read its queries to find
training queries that leak into the evaluation, and the evaluation reads it. Ids are strings
(FlagEmbedding's evaluator wants string ids and a qrel for every query).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path

CORPUS = "corpus.jsonl"
QUERIES = "queries.jsonl"
QRELS = Path("qrels") / "test.tsv"


def write(
    out_dir: str | Path,
    corpus: Iterable[tuple[str, str]],
    queries: Iterable[tuple[str, str]],
    qrels: Iterable[tuple[str, str, int]],
) -> list[Path]:
    """Write the three files; returns their paths. The caller refuses to overwrite."""
    out = Path(out_dir)
    (out / QRELS).parent.mkdir(parents=True, exist_ok=True)
    with open(out / CORPUS, "w", encoding="utf-8") as fh:
        for doc_id, text in corpus:
            fh.write(json.dumps({"_id": doc_id, "title": "", "text": text}, ensure_ascii=False))
            fh.write("\n")
    with open(out / QUERIES, "w", encoding="utf-8") as fh:
        for query_id, text in queries:
            fh.write(json.dumps({"_id": query_id, "text": text}, ensure_ascii=False) + "\n")
    with open(out / QRELS, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(["query-id", "corpus-id", "score"])
        writer.writerows(qrels)
    return [out / CORPUS, out / QUERIES, out / QRELS]


def read_queries(path: str | Path) -> list[str]:
    """Query texts of an evaluation set, for the leakage check.

    Accepts a BEIR folder (its `queries.jsonl`), a FlagEmbedding custom-eval folder
    (`*_queries.jsonl`), a `.jsonl` file whose rows have `text` or `query`, or a `.tsv` of
    `id<TAB>text` lines.
    """
    path = Path(path)
    if path.is_dir():
        candidates = [path / QUERIES] + sorted(path.glob("*queries.jsonl"))
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            raise FileNotFoundError(f"{path} has no queries.jsonl (BEIR layout)")
        path = found
    if path.suffix == ".tsv":
        with open(path, encoding="utf-8", newline="") as fh:
            return [cols[1] for cols in csv.reader(fh, delimiter="\t") if len(cols) > 1]
    texts = []
    with open(path, "rb") as fh:
        for raw in fh:
            try:
                obj = json.loads(raw)
            except ValueError:
                continue
            if isinstance(obj, dict):
                text = obj.get("text", obj.get("query"))
                if isinstance(text, str):
                    texts.append(text)
    return texts
