"""Hold out an evaluation set, so the before/after evaluation uses queries the model never saw.

`split` picks `n_queries` distinct queries at random (seeded), moves every row with one of them
into a BEIR-layout evaluation set (`eval/corpus.jsonl`, `eval/queries.jsonl`,
`eval/qrels/test.tsv`) and copies every other line unchanged into `train.jsonl`. Rows sharing a
query (ignoring case and spacing) go to the same side, so nothing leaks.

The corpus decides how hard the evaluation is, so it is never the positives alone (each
held-out query then competes only with other queries' positives, and a base model scored nDCG@10
0.95 there against 0.53 for the same queries on the real corpus). It is the user's whole
passage pool (every positive and negative of every row), plus the collection the rows came from
when given (`corpus`, a BEIR corpus.jsonl: its ids and titles kept), or, when asked, a seeded
sample of `distractors` pool passages. Rows without any negative and no corpus are refused: the
pool would be positives only. A BEIR folder is split as itself: the whole corpus with titles,
the held-out queries' judgments with their grades, the other queries as training rows
(:mod:`.convert`). Each split says how its numbers compare with the full corpus, in its summary
and in `eval/README.md`. Nothing is overwritten.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from studio.datawork import beir
from studio.datawork.check import query_key
from studio.datawork.rows import BOM
from studio.facts.problems import WARNING, Problem


@dataclass
class SplitResult:
    train_path: Path
    eval_dir: Path
    train_rows: int  # lines written to train.jsonl (bad lines included, unchanged)
    eval_queries: int
    eval_rows: int  # input rows that went to the evaluation set
    corpus_size: int
    qrels: int
    corpus_source: str = ""  # what the eval corpus is made of
    note: str = ""  # how its numbers compare with the full corpus (also eval/README.md)
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
            "corpus_source": self.corpus_source,
            "note": self.note,
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


NOTE_FILE = "README.md"


def _targets(out: Path) -> tuple[Path, Path]:
    train_path, eval_dir = out / "train.jsonl", out / "eval"
    for target in (train_path, eval_dir):
        if target.exists():
            raise FileExistsError(f"{target} already exists; choose another output folder")
    return train_path, eval_dir


def _write_note(eval_dir: Path, note: str) -> None:
    (eval_dir / NOTE_FILE).write_text(
        "# How this evaluation set was made\n\n" + note + "\n", encoding="utf-8"
    )


def split(
    path: str | Path,
    out_dir: str | Path,
    n_queries: int,
    seed: int = 0,
    *,
    distractors: int | None = None,
    corpus: str | Path | None = None,
    qrels_split: str | None = None,
    min_grade: int = 1,
) -> SplitResult:
    """Write `out_dir/train.jsonl` and the BEIR set `out_dir/eval/`; never overwrites.

    `path` is a JSON Lines file of rows, or a BEIR folder (then `qrels_split` picks its qrels and
    `min_grade` the grade a training positive needs). The eval corpus is the whole passage pool
    of the rows plus `corpus` (a BEIR corpus.jsonl or its folder) when given; `distractors` N
    samples N pool passages instead of taking them all (seeded), and the note says so.
    """
    path, out = Path(path), Path(out_dir)
    if n_queries < 1:
        raise ValueError("n_queries must be at least 1")
    if beir.is_folder(path):
        return _split_beir(path, out, n_queries, seed, qrels_split, min_grade)
    if path.is_dir():
        raise FileNotFoundError(
            f"{path} is a folder but not a BEIR data set (corpus.jsonl, queries.jsonl, "
            "qrels/*.tsv); split one JSON Lines file, or a BEIR folder"
        )
    if not path.is_file():
        raise FileNotFoundError(f"{path} is not a file; split one JSON Lines file at a time")
    if corpus is not None:
        corpus = Path(corpus)
        corpus = corpus / beir.CORPUS if corpus.is_dir() else corpus
        if not corpus.is_file():
            raise FileNotFoundError(f"{corpus}: no such corpus file (a BEIR corpus.jsonl)")
    train_path, eval_dir = _targets(out)

    # pass 1: the distinct usable queries, in order of first appearance, and whether any row
    # has a negative (without one, and without a corpus, the pool would be positives only)
    order: list[int] = []
    seen: set[int] = set()
    negatives = 0
    rows_like_beir = 0
    with open(path, "rb") as fh:
        for raw in fh:
            obj = _parse(raw)
            usable = _usable(obj)
            if usable:
                negatives += bool(_negatives(obj))
                key = query_key(usable[0])
                if key not in seen:
                    seen.add(key)
                    order.append(key)
            elif isinstance(obj, dict) and "query" not in obj and ("_id" in obj or "id" in obj):
                rows_like_beir += 1
    if rows_like_beir and not order:
        raise ValueError(
            f"{path} looks like a BEIR corpus or queries file (rows with `_id`, no `query`), not "
            f"training rows. Fix: split the BEIR folder itself (`data split {path.parent}`) or "
            f"convert it first (`data convert {path.parent} --out train.jsonl`)"
        )
    if n_queries >= len(order):
        raise ValueError(
            f"{path} has {len(order)} distinct usable queries; hold out fewer than that "
            f"(asked for {n_queries}) so some remain for training"
        )
    if not negatives and corpus is None:
        raise ValueError(
            f"{path}: no row has negatives, so the eval corpus would hold positives only (each "
            "held-out query competing with other queries' positives), a far easier test than "
            "the collection the rows came from. Fix: give that collection with --corpus "
            "corpus.jsonl, mine negatives first (`python -m studio data mine`), or split the "
            "BEIR folder itself"
        )
    rng = random.Random(seed)
    held = set(rng.sample(order, n_queries))
    del seen, order

    # the collection first, so its ids and titles are kept and rows' passages found in it
    doc_ids: dict[str, str] = {}
    titled: list[tuple[str, str, str]] = []
    if corpus is not None:
        for did, title, text in beir.iter_corpus(corpus):
            titled.append((did, title, text))
            doc_ids.setdefault(beir.passage(title, text), did)
            doc_ids.setdefault(text, did)
    taken = {did for did, _, _ in titled}
    from_corpus = len(titled)

    # pass 2: route every line
    out.mkdir(parents=True, exist_ok=True)
    new_docs: dict[str, str] = {}  # passages only the rows have -> id
    queries: dict[int, tuple[str, str]] = {}  # key -> (query id, text)
    qrels: set[tuple[str, str]] = set()
    pool: list[str] = []  # the pool's other passages (a sample when `distractors` is given)
    seen_passages = 0
    held_passages: set[str] = set()
    train_rows = eval_rows = 0

    def doc_id(text: str) -> str:
        found = doc_ids.get(text) or new_docs.get(text)
        if found is None:
            n = len(new_docs) + 1
            while f"d{n}" in taken:
                n += 1
            found = new_docs[text] = f"d{n}"
            taken.add(found)
        return found

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
                if usable:
                    for text in usable[1] + _negatives(obj):
                        if distractors is None:
                            pool.append(text)
                            continue
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
                held_passages.add(p)
            for p in _negatives(obj):
                doc_id(p)
                held_passages.add(p)
    sampled = len(pool)
    for text in pool:
        doc_id(text)
    del pool

    # a held-out negative can be another held-out query's positive: the qrels decide
    relevant = sorted(qrels, key=lambda q: (int(q[0][1:]), q[1]))
    beir.write(
        eval_dir,
        [*titled, *((i, text) for text, i in new_docs.items())],
        queries.values(),
        ((qid, did, 1) for qid, did in relevant),
    )
    size = from_corpus + len(new_docs)
    if corpus is not None:
        source = (
            f"the collection {corpus} ({from_corpus:,} passages) + {len(new_docs):,} only in rows"
        )
        note = (
            f"The eval corpus is the collection {corpus} ({from_corpus:,} passages, ids and "
            f"titles kept) plus {len(new_docs):,} passages found only in the rows: each "
            "held-out query is searched in the full collection, so the numbers compare with "
            "evaluating on it. Judgments are binary (training rows have no grades)."
        )
    elif distractors is not None:
        source = f"held-out rows' passages + a sample of {sampled:,} pool passages"
        note = (
            f"The eval corpus ({size:,} passages) is the held-out rows' passages plus a seeded "
            f"sample of {sampled:,} of the rows' other passages. A smaller corpus is easier: "
            "numbers here are higher than on your whole passage pool, and higher still than on "
            "the collection the rows came from. Drop --distractors to use the whole pool, or "
            "give that collection with --corpus."
        )
    else:
        source = f"every passage of the rows ({size:,}: positives and negatives)"
        note = (
            f"The eval corpus is every passage your rows name ({size:,}: the positives and "
            "negatives of all rows). The collection the rows came from is likely larger, and "
            "retrieval in a larger corpus is harder: expect lower numbers there than here. For "
            "numbers that compare with it, split again with --corpus (its corpus.jsonl). "
            "Judgments are binary (training rows have no grades)."
        )
    _write_note(eval_dir, note)
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
        corpus_size=size,
        qrels=len(relevant),
        corpus_source=source,
        note=note,
        problems=problems,
    )


def _negatives(obj) -> list[str]:
    neg = obj.get("neg") if isinstance(obj, dict) else None
    return [p for p in neg if isinstance(p, str) and p.strip()] if isinstance(neg, list) else []


def _split_beir(
    folder: Path, out: Path, n_queries: int, seed: int, qrels_split: str | None, min_grade: int
) -> SplitResult:
    """A BEIR folder: the whole corpus (copied, titles kept) and the held-out queries'
    judgments with their grades; the other judged queries become training rows."""
    from studio.datawork.convert import beir_rows, rows_problems, write_rows
    from studio.evaluation.data import read_qrels_tsv, read_queries

    if min_grade < 1:
        raise ValueError(f"the grade threshold must be at least 1 (got {min_grade})")
    qsplit = beir.pick_split(folder, qrels_split)
    train_path, eval_dir = _targets(out)
    queries = read_queries(folder / beir.QUERIES)
    qrels = read_qrels_tsv(folder / "qrels" / f"{qsplit}.tsv")
    usable = [q for q in queries if any(g >= min_grade for g in (qrels.get(q) or {}).values())]
    if n_queries >= len(usable):
        raise ValueError(
            f"{folder} has {len(usable)} queries with a passage graded {min_grade} or more in "
            f"qrels/{qsplit}.tsv; hold out fewer than that (asked for {n_queries}) so some "
            "remain for training"
        )
    held = set(random.Random(seed).sample(usable, n_queries))
    rows, counts = beir_rows(folder, qsplit, min_grade, skip=held)
    out.mkdir(parents=True, exist_ok=True)
    write_rows(rows, train_path)
    (eval_dir / "qrels").mkdir(parents=True)
    shutil.copyfile(folder / beir.CORPUS, eval_dir / beir.CORPUS)
    with open(folder / beir.QUERIES, "rb") as src, open(eval_dir / beir.QUERIES, "wb") as dst:
        for raw in src:
            obj = _parse(raw)
            qid = obj.get("_id", obj.get("id")) if isinstance(obj, dict) else None
            if qid is not None and str(qid) in held:
                dst.write(raw if raw.endswith(b"\n") else raw + b"\n")
    judged = [(q, d, g) for q in queries if q in held for d, g in qrels[q].items()]
    with open(eval_dir / beir.QRELS, "w", encoding="utf-8", newline="") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        fh.writelines(f"{q}\t{d}\t{g}\n" for q, d, g in judged)
    corpus_size = sum(1 for _ in beir.iter_corpus(folder / beir.CORPUS))
    grades = sorted({g for _, _, g in judged})
    note = (
        f"The eval corpus is the whole corpus of {folder} ({corpus_size:,} passages, titles "
        f"kept) and the {n_queries} held-out queries keep their judgments from "
        f"qrels/{qsplit}.tsv with their grades ({', '.join(map(str, grades))}): the numbers "
        "are those of these queries on the full data set. The other judged queries are the "
        f"training rows (positives graded {min_grade} or more)."
    )
    _write_note(eval_dir, note)
    problems = rows_problems(train_path, folder, rows, counts, min_grade)
    return SplitResult(
        train_path=train_path,
        eval_dir=eval_dir,
        train_rows=len(rows),
        eval_queries=n_queries,
        eval_rows=n_queries,
        corpus_size=corpus_size,
        qrels=len(judged),
        corpus_source=f"the whole BEIR corpus ({corpus_size:,} passages)",
        note=note,
        problems=problems,
    )
