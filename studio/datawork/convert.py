"""Turn a BEIR data set (corpus.jsonl, queries.jsonl, qrels/) into FlagEmbedding training rows.

Public retrieval sets come as judgments, not rows: a query, a corpus and graded qrels. A row
here is one judged query: ``query`` is its text, ``pos`` the passages judged at least
``min_grade`` (the user picks it: 1 keeps every relevant passage, 2 only the highly relevant
ones of a graded set), ``neg`` the passages judged 0 (explicitly not relevant), else empty:
such rows are then given mined negatives from the corpus, in the same step when an encoder is
given (``data convert --model M``), else by ``data mine --pool corpus.jsonl``, which the
converter says. Passages are "title text", as the evaluator builds them, so a model is trained
on the text it is scored on. Nothing is overwritten.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from studio.datawork import beir
from studio.facts.problems import INFO, WARNING, Problem


@dataclass
class ConvertResult:
    out_path: Path
    split: str  # the qrels split read
    min_grade: int
    rows: int
    positives: int
    negatives: int  # passages judged 0, used as negatives
    rows_without_negatives: int
    queries_without_positive: int  # judged queries with no passage at min_grade or above
    judgments_without_query: int  # qrels rows naming a query absent from queries.jsonl
    judged_docs_missing: int  # qrels rows naming a document absent from the corpus
    problems: list[Problem] = field(default_factory=list)
    rows_mined: int = 0  # rows given mined negatives in the same step (with an encoder)
    rows_dropped: int = 0  # rows mining found no negative for, left out

    def summary(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "problems"} | {
            "out_path": str(self.out_path)
        }


def beir_rows(
    folder: str | Path,
    split: str,
    min_grade: int = 1,
    skip: Collection[str] = (),
) -> tuple[list[dict], dict[str, int]]:
    """(rows, counts) for the judged queries of ``folder``'s ``split`` not in ``skip``."""
    from studio.evaluation.data import read_qrels_tsv, read_queries

    root = Path(folder)
    queries = read_queries(root / beir.QUERIES)
    qrels = read_qrels_tsv(root / "qrels" / f"{split}.tsv")
    counts = {
        "judgments_without_query": sum(len(d) for q, d in qrels.items() if q not in queries),
        "queries_without_positive": 0,
        "judged_docs_missing": 0,
    }
    wanted = {d for q, docs in qrels.items() if q in queries and q not in skip for d in docs}
    texts: dict[str, str] = {}
    for doc_id, title, text in beir.iter_corpus(root / beir.CORPUS):
        if doc_id in wanted:
            texts[doc_id] = beir.passage(title, text)
    rows = []
    for qid, query in queries.items():
        judged = qrels.get(qid)
        if not judged or qid in skip:
            continue
        counts["judged_docs_missing"] += sum(d not in texts for d in judged)
        ranked = sorted(((g, d) for d, g in judged.items() if d in texts), key=lambda x: -x[0])
        pos = [texts[d] for g, d in ranked if g >= min_grade]
        neg = [texts[d] for g, d in ranked if g <= 0]
        if not pos:
            counts["queries_without_positive"] += 1
            continue
        rows.append({"query": query, "pos": pos, "neg": neg})
    return rows, counts


def write_rows(rows: list[dict], out_path: Path) -> None:
    """JSON Lines through a temp file, so a failed write leaves nothing half written."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(out_path)


def rows_problems(
    out_path: Path, folder: Path, rows: list[dict], counts: dict[str, int], min_grade: int
) -> list[Problem]:
    """What the user should know about converted rows: those to mine, judgments left out."""
    problems = []
    bare = sum(not r["neg"] for r in rows)
    if bare:
        problems.append(
            Problem(
                WARNING,
                f"{bare} of {len(rows)} row(s) have no negatives (`neg: []`; the qrels judge "
                "no passage 0 for them): FlagEmbedding cannot train on them yet.",
                f"Mine them from the corpus: `python -m studio data mine {out_path} --pool "
                f"{folder / beir.CORPUS} --model MODEL --range 10-500 --out MINED.jsonl`.",
                file=str(out_path),
                code="convert_no_negatives",
            )
        )
    if counts["queries_without_positive"]:
        problems.append(
            Problem(
                INFO,
                f"{counts['queries_without_positive']} judged queries have no passage graded "
                f"{min_grade} or more and became no row.",
                "Lower the grade threshold (--min-grade) to keep them.",
                file=str(folder),
                code="convert_no_positive",
            )
        )
    if counts["judgments_without_query"]:
        problems.append(
            Problem(
                WARNING,
                f"{counts['judgments_without_query']} judgment(s) name a query absent from "
                "queries.jsonl and were left out.",
                "Check that the qrels and queries.jsonl come from the same data set.",
                file=str(folder),
                code="convert_qrels_without_query",
            )
        )
    if counts["judged_docs_missing"]:
        problems.append(
            Problem(
                WARNING,
                f"{counts['judged_docs_missing']} judgment(s) name a document absent from "
                "corpus.jsonl and were left out.",
                "Check that the qrels and corpus.jsonl come from the same data set.",
                file=str(folder),
                code="convert_docs_missing",
            )
        )
    return problems


def convert(
    folder: str | Path,
    out_path: str | Path,
    *,
    split: str | None = None,
    min_grade: int = 1,
    encoder=None,
    mine_range: tuple[int, int] = (10, 100),
    negatives: int = 15,
) -> ConvertResult:
    """Write the training rows of a BEIR folder's judged queries to a new JSON Lines file.

    With an `encoder` (a :class:`studio.datawork.encoder.Encoder`), rows without negatives are
    mined from the corpus in the same step (`negatives` per row from ranks `mine_range`), so
    the file is ready to train on."""
    root, out_path = Path(folder), Path(out_path)
    if not beir.is_folder(root):
        raise FileNotFoundError(
            f"{root} is not a BEIR folder (corpus.jsonl, queries.jsonl and qrels/*.tsv)."
        )
    if out_path.exists():
        raise FileExistsError(f"{out_path} already exists; give a new output file")
    if min_grade < 1:
        raise ValueError(f"the grade threshold must be at least 1 (got {min_grade})")
    split = beir.pick_split(root, split)
    rows, counts = beir_rows(root, split, min_grade)
    if not rows:
        raise ValueError(
            f"{root}: no query of qrels/{split}.tsv has a passage graded {min_grade} or more "
            "in the corpus. Fix: lower --min-grade or check the qrels' ids."
        )
    problems = rows_problems(out_path, root, rows, counts, min_grade)
    mined = dropped = 0
    if encoder is not None and any(not r["neg"] for r in rows):
        from studio.datawork.mining import mine

        unmined = out_path.with_name(out_path.name + ".unmined.tmp")
        write_rows(rows, unmined)
        try:
            result = mine(
                unmined,
                out_path,
                encoder,
                *mine_range,
                negatives,
                candidate_pool=root / beir.CORPUS,
                min_negatives=1,
            )
        finally:
            unmined.unlink(missing_ok=True)
        mined, dropped = result.rows_mined - result.rows_dropped, result.rows_dropped
        problems = [p for p in problems if p.code != "convert_no_negatives"] + [
            p for p in result.problems if p.code != "mine_nothing"
        ]
    else:
        write_rows(rows, out_path)
    return ConvertResult(
        out_path=out_path,
        split=split,
        min_grade=min_grade,
        rows=len(rows) - dropped,
        positives=sum(len(r["pos"]) for r in rows),
        negatives=sum(len(r["neg"]) for r in rows),
        rows_without_negatives=0 if encoder is not None else sum(not r["neg"] for r in rows),
        problems=problems,
        rows_mined=mined,
        rows_dropped=dropped,
        **counts,
    )
