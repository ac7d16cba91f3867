"""Hold out an evaluation set, so the before/after evaluation uses queries the model never saw.

`split` picks `n_queries` distinct queries at random (seeded), moves every row with one of them
into a BEIR-layout evaluation set (`eval/corpus.jsonl`, `eval/queries.jsonl`,
`eval/qrels/test.tsv`) and copies every other line unchanged into `train.jsonl`. Rows sharing a
query (ignoring case and spacing) go to the same side, so nothing leaks. The corpus holds the
held-out rows' positives and negatives plus a seeded sample of other passages as distractors.
Two streaming passes; nothing is overwritten.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from studio.datawork import beir
from studio.datawork.check import query_key
from studio.datawork.rows import BOM
from studio.problems import WARNING, Problem


@dataclass
class SplitResult:
    train_path: Path
    eval_dir: Path
    train_rows: int  # lines written to train.jsonl (bad lines included, unchanged)
    eval_queries: int
    eval_rows: int  # input rows that went to the evaluation set
    corpus_size: int
    qrels: int
    problems: list[Problem] = field(default_factory=list)

    def summary(self) -> dict:
        return {
            "train_path": str(self.train_path),
            "eval_dir": str(self.eval_dir),
            "train_rows": self.train_rows,
            "eval_queries": self.eval_queries,
            "eval_rows": self.eval_rows,
            "corpus_size": self.corpus_size,
            "qrels": self.qrels,
        }


def _usable(obj) -> tuple[str, list[str]] | None:
    """(query, positives) of a row that can be evaluated, else None."""
    if not isinstance(obj, dict):
        return None
    query, pos = obj.get("query"), obj.get("pos")
    if not isinstance(query, str) or not query.strip() or not isinstance(pos, list):
        return None
    pos = [p for p in pos if isinstance(p, str) and p.strip()]
    return (query, pos) if pos else None


def _parse(raw: bytes):
    try:
        return json.loads(raw[3:] if raw.startswith(BOM) else raw)
    except ValueError:
        return None


def split(
    path: str | Path,
    out_dir: str | Path,
    n_queries: int,
    seed: int = 0,
    *,
    distractors: int = 1000,
) -> SplitResult:
    """Write `out_dir/train.jsonl` and the BEIR set `out_dir/eval/`; never overwrites.

    `distractors` passages from the training rows join the corpus (seeded sample), so retrieval
    is not trivially easy; pass 0 for a corpus of only the held-out rows' passages.
    """
    path, out = Path(path), Path(out_dir)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is not a file; split one JSON Lines file at a time")
    train_path, eval_dir = out / "train.jsonl", out / "eval"
    for target in (train_path, eval_dir):
        if target.exists():
            raise FileExistsError(f"{target} already exists; choose another output folder")
    if n_queries < 1:
        raise ValueError("n_queries must be at least 1")

    # pass 1: the distinct usable queries, in order of first appearance
    order: list[int] = []
    seen: set[int] = set()
    with open(path, "rb") as fh:
        for raw in fh:
            usable = _usable(_parse(raw))
            if usable:
                key = query_key(usable[0])
                if key not in seen:
                    seen.add(key)
                    order.append(key)
    if n_queries >= len(order):
        raise ValueError(
            f"{path} has {len(order)} distinct usable queries; hold out fewer than that "
            f"(asked for {n_queries}) so some remain for training"
        )
    rng = random.Random(seed)
    held = set(rng.sample(order, n_queries))
    del seen, order

    # pass 2: route every line
    out.mkdir(parents=True, exist_ok=True)
    doc_ids: dict[str, str] = {}
    queries: dict[int, tuple[str, str]] = {}  # key -> (query id, text)
    qrels: set[tuple[str, str]] = set()
    pool: list[str] = []  # reservoir of training passages for distractors
    seen_passages = 0
    train_rows = eval_rows = 0

    def doc_id(text: str) -> str:
        if text not in doc_ids:
            doc_ids[text] = f"d{len(doc_ids) + 1}"
        return doc_ids[text]

    with open(path, "rb") as fh, open(train_path, "wb") as train:
        for raw in fh:
            obj = _parse(raw)
            usable = _usable(obj)
            query = obj.get("query") if isinstance(obj, dict) else None
            key = query_key(query) if isinstance(query, str) else None
            if key is None or key not in held:
                if raw.strip():
                    train.write(raw if raw.endswith(b"\n") else raw + b"\n")
                    train_rows += 1
                if usable and distractors:
                    for text in usable[1] + [
                        p for p in obj.get("neg") or [] if isinstance(p, str) and p.strip()
                    ]:
                        seen_passages += 1
                        if len(pool) < distractors:
                            pool.append(text)
                        else:
                            j = rng.randrange(seen_passages)
                            if j < distractors:
                                pool[j] = text
                continue
            eval_rows += 1
            if not usable:
                continue  # a broken row with a held-out query: dropped from both sides
            query, positives = usable
            if key not in queries:
                queries[key] = (f"q{len(queries) + 1}", query)
            qid = queries[key][0]
            for p in positives:
                qrels.add((qid, doc_id(p)))
            for p in obj.get("neg") or []:
                if isinstance(p, str) and p.strip():
                    doc_id(p)
    for text in pool:
        doc_id(text)

    # a held-out negative can be another held-out query's positive: the qrels decide
    relevant = sorted(qrels, key=lambda q: (int(q[0][1:]), int(q[1][1:])))
    beir.write(
        eval_dir,
        ((i, text) for text, i in doc_ids.items()),
        queries.values(),
        ((qid, did, 1) for qid, did in relevant),
    )
    problems = []
    if eval_rows > n_queries:
        problems.append(
            Problem(
                WARNING,
                f"{eval_rows - n_queries} held-out rows repeat a held-out query; their "
                "positives were merged into one query's qrels.",
                "Nothing to do; merge duplicate queries in the training data too.",
                code="split_merged",
            )
        )
    return SplitResult(
        train_path=train_path,
        eval_dir=eval_dir,
        train_rows=train_rows,
        eval_queries=len(queries),
        eval_rows=eval_rows,
        corpus_size=len(doc_ids),
        qrels=len(relevant),
        problems=problems,
    )
