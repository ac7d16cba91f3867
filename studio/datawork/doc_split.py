"""Hold out whole documents: the evaluation split for pairs made from documents.

Pairs made from documents (``data pairs``) can leak two ways if split by row: two crops of one
document land on both sides, or the held-out query's own document shows up in training as a
positive. Splitting by ``doc_id`` keeps every pair of a held-out document out of training.

The evaluation corpus is the user's **whole** document pool (every document, held out or not),
so the held-out numbers are about finding one document among all of them, not among a few
positives. Each passage is the document's body, as the training positives are: with ``title``
pairs the query is the title, and a passage that repeated it would make the evaluation a string
match. Held-out documents are also listed (``heldout_docs.txt``) so that mining can keep them
out of the training rows' negatives.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from studio.datawork import beir
from studio.datawork.pairs import read_documents
from studio.facts.problems import WARNING, Problem

HELDOUT_LIST = "heldout_docs.txt"


@dataclass
class DocSplitResult:
    train_path: Path
    eval_dir: Path
    heldout_list: Path
    train_rows: int
    eval_queries: int
    heldout_documents: int
    corpus_size: int
    problems: list[Problem] = field(default_factory=list)

    def summary(self) -> dict:
        return {
            "train rows": self.train_rows,
            "held-out docs": self.heldout_documents,
            "eval queries": self.eval_queries,
            "eval corpus": f"{self.corpus_size:,} documents (the whole pool)",
            "train file": str(self.train_path),
            "eval folder": str(self.eval_dir),
        }


def read_heldout(path: str | Path) -> set[str]:
    return {line.strip() for line in Path(path).read_text().splitlines() if line.strip()}


def split_by_document(
    pairs_path: str | Path,
    corpus: str | Path,
    out_dir: str | Path,
    n_documents: int,
    seed: int = 0,
) -> DocSplitResult:
    """Write ``out_dir/train.jsonl``, ``out_dir/eval/`` (BEIR) and ``out_dir/heldout_docs.txt``.

    ``n_documents`` documents that have pairs are held out (seeded); never overwrites.
    """
    pairs_path, out = Path(pairs_path), Path(out_dir)
    train_path, eval_dir, listed = out / "train.jsonl", out / "eval", out / HELDOUT_LIST
    for target in (train_path, eval_dir, listed):
        if target.exists():
            raise FileExistsError(f"{target} already exists; choose another output folder")
    rows = []
    with open(pairs_path, encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except ValueError:
                raise ValueError(f"{pairs_path}:{lineno}: not JSON") from None
            if not isinstance(obj, dict) or "doc_id" not in obj:
                raise ValueError(
                    f"{pairs_path}:{lineno}: a row without `doc_id`; split pairs made by "
                    "`data pairs` (or add each row's source document id)"
                )
            rows.append(obj)
    with_pairs = sorted({str(r["doc_id"]) for r in rows})
    if n_documents < 1 or n_documents >= len(with_pairs):
        raise ValueError(
            f"{pairs_path}: {len(with_pairs)} documents have pairs; hold out between 1 and "
            f"{len(with_pairs) - 1} (asked for {n_documents})"
        )
    held = set(random.Random(seed).sample(with_pairs, n_documents))
    docs = {d.doc_id: d for d in read_documents(corpus)}
    missing = sorted(set(with_pairs) - set(docs))
    if missing:
        raise ValueError(
            f"{len(missing)} pairs' doc_id are not in {corpus} (first: {missing[0]}); "
            "split with the corpus the pairs were made from"
        )
    out.mkdir(parents=True, exist_ok=True)
    queries: dict[str, str] = {}
    qrels: list[tuple[str, str, int]] = []
    train_rows = 0
    with open(train_path, "w", encoding="utf-8") as train:
        for r in rows:
            if str(r["doc_id"]) not in held:
                train.write(json.dumps(r, ensure_ascii=False) + "\n")
                train_rows += 1
                continue
            if r["query"] not in queries:
                queries[r["query"]] = f"q{len(queries) + 1}"
                qrels.append((queries[r["query"]], str(r["doc_id"]), 1))
    beir.write(
        eval_dir,
        ((doc_id, doc.text) for doc_id, doc in docs.items()),
        ((qid, text) for text, qid in queries.items()),
        qrels,
    )
    listed.write_text("".join(f"{d}\n" for d in sorted(held)))
    problems = []
    if len(queries) < 20:
        problems.append(
            Problem(
                WARNING,
                f"only {len(queries)} held-out queries: one query moves nDCG@10 by several "
                "points, so small differences between models mean nothing.",
                "Hold out more documents (at least 50 queries makes a difference of 0.02 "
                "readable), or make more pairs per document.",
                code="split_few_queries",
            )
        )
    return DocSplitResult(
        train_path, eval_dir, listed, train_rows, len(queries), len(held), len(docs), problems
    )
