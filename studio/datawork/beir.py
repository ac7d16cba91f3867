"""The BEIR layout of an evaluation set: `corpus.jsonl`, `queries.jsonl`, `qrels/test.tsv`.

The split writes held-out data in this layout, the statistics read its queries to find
training queries that leak into the evaluation, and the evaluation reads it. Ids are strings
(FlagEmbedding's evaluator wants string ids and a qrel for every query).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

CORPUS = "corpus.jsonl"
QUERIES = "queries.jsonl"
QRELS = Path("qrels") / "test.tsv"


def write(
    out_dir: str | Path,
    corpus: Iterable[tuple[str, str] | tuple[str, str, str]],
    queries: Iterable[tuple[str, str]],
    qrels: Iterable[tuple[str, str, int]],
) -> list[Path]:
    """Write the three files; returns their paths. The caller refuses to overwrite.

    A corpus item is ``(id, text)`` or ``(id, title, text)`` (titles kept where the source has
    them); a qrel is ``(query id, doc id, grade)``, the grade written as given."""
    out = Path(out_dir)
    (out / QRELS).parent.mkdir(parents=True, exist_ok=True)
    with open(out / CORPUS, "w", encoding="utf-8") as fh:
        for item in corpus:
            doc_id, title, text = item if len(item) == 3 else (item[0], "", item[1])
            fh.write(json.dumps({"_id": doc_id, "title": title, "text": text}, ensure_ascii=False))
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


# --------------------------------------------------------------------------- BEIR sources


def is_folder(path: str | Path) -> bool:
    """A BEIR data set folder: corpus.jsonl, queries.jsonl and at least one qrels/*.tsv."""
    root = Path(path)
    return (
        root.is_dir()
        and (root / CORPUS).is_file()
        and (root / QUERIES).is_file()
        and any((root / "qrels").glob("*.tsv"))
    )


def pick_split(folder: str | Path, split: str | None = None) -> str:
    """The qrels split to read: the one asked for, else ``train`` when the folder has it, else
    its only split; ValueError naming the splits there otherwise."""
    root = Path(folder)
    found = sorted(p.stem for p in (root / "qrels").glob("*.tsv"))
    if split:
        if split not in found:
            raise ValueError(
                f"{root / 'qrels'} has no {split}.tsv (found: {', '.join(found) or 'none'}). "
                "Fix: pick one of those with --split."
            )
        return split
    if "train" in found:
        return "train"
    if len(found) == 1:
        return found[0]
    raise ValueError(
        f"{root / 'qrels'} holds several splits ({', '.join(found)}) and no train.tsv. "
        "Fix: pick one with --split."
    )


def passage(title: str, text: str) -> str:
    """A passage as FlagEmbedding's evaluator (and the studio's) builds it: "title text"."""
    return f"{title} {text}".strip() if title else text


def iter_corpus(path: str | Path) -> Iterator[tuple[str, str, str]]:
    """(id, title, text) of every row of a BEIR corpus.jsonl (``_id`` or ``id``); a malformed
    line raises ValueError naming the file and the line."""
    with open(path, encoding="utf-8") as fh:
        for number, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except ValueError as exc:
                raise ValueError(f"{path}:{number}: not valid JSON ({exc}).") from None
            doc_id = row.get("_id", row.get("id")) if isinstance(row, dict) else None
            text = row.get("text") if isinstance(row, dict) else None
            if doc_id is None or not isinstance(text, str):
                raise ValueError(f"{path}:{number}: a corpus row needs `_id` and a string `text`.")
            title = row.get("title")
            yield str(doc_id), title if isinstance(title, str) else "", text
