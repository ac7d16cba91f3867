"""Held-out retrieval data: a corpus, queries and relevance judgments (qrels), read strictly.

Two layouts exist in the wild and the studio reads both into one :class:`EvalData`:

``beir``          corpus.jsonl (``_id``, ``title``, ``text``), queries.jsonl (``_id``, ``text``),
                  qrels/<split>.tsv (``query-id  corpus-id  score``, header optional, or the
                  four-column TREC form ``qid 0 docid rel``). The data workbench writes this.
``flagembedding`` corpus.jsonl (``id``, ``title``, ``text``), <split>_queries.jsonl (``id``,
                  ``text``), <split>_qrels.jsonl (``qid``, ``docid``, ``relevance``): the layout
                  of ``FlagEmbedding.evaluation.custom``.

Why strict: a metric is only as trustworthy as the data it was computed on. Ids are compared as
strings (``7`` and ``"7"`` are the same document), a duplicate id is an error rather than a silent
overwrite, and every malformed line raises :class:`EvalDataError` naming the file and the line.
Queries without any relevant document cannot be scored; they are skipped and counted, never a
crash. That includes queries whose judgments are all 0: pytrec_eval (and BEIR, which calls it)
keeps such a query and scores it 0 on every metric, which lowers every model's mean by the same
share and says nothing about either; the studio leaves them out and says so in every report
(:func:`scoring_note`), so its means are over the queries that have a relevant document. A passage is ``"{title} {text}"`` stripped, as FlagEmbedding's evaluator builds it.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


class EvalDataError(ValueError):
    """A problem in an eval data set, with the file and (when known) the line."""

    def __init__(
        self, message: str, file: str | Path | None = None, line: int | None = None, fix: str = ""
    ):
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.fix = fix
        where = f"{self.file}:{line}: " if file and line else f"{self.file}: " if file else ""
        super().__init__(f"{where}{message}" + (f" Fix: {fix}" if fix else ""))


NO_QRELS = "no qrels"
ALL_ZERO = "no relevant document"  # judged, every judgment 0


def scoring_note(summary: dict) -> str | None:
    """The line every face shows when queries were left out of the metrics, or None."""
    all_zero = summary.get("skipped_all_zero", 0)
    no_qrels = summary.get("skipped_no_qrels", 0)
    if not all_zero and not no_qrels:
        return None
    scored = summary.get("n_queries", 0)
    parts = []
    if all_zero:
        parts.append(f"{all_zero} whose judgments are all 0")
    if no_qrels:
        parts.append(f"{no_qrels} with no judgments")
    return (
        f"{all_zero + no_qrels} queries are left out of every metric ({', '.join(parts)}); "
        f"the means are over the {scored} queries with a relevant document. pytrec_eval and "
        "BEIR would count an all-0 query as 0 on every metric instead."
    )


def data_findings(summary: dict) -> list[tuple[str, str, str]]:
    """Every data-consistency count of an eval set as (code, what, fix), in the words every
    face shows (the CLI, the Evaluate tab, the notebook, pre-flight): queries left out of the
    metrics, judgments naming a query absent from the queries file, judgments naming a document
    absent from the corpus. Empty when the data is consistent."""
    found = []
    note = scoring_note(summary)
    if note:
        found.append(
            ("eval_queries_unjudged", note, "Add judgments for them, or drop those queries.")
        )
    rows = summary.get("judgments_without_query", 0)
    ids = summary.get("qrels_without_query", 0)
    if rows or ids:
        found.append(
            (
                "eval_qrels_unknown_query",
                f"{rows or ids} judgment(s) in the qrels name {ids} query id(s) absent from the "
                "queries file; they are not scored.",
                "Check that the queries and the qrels come from the same data set and split.",
            )
        )
    missing = summary.get("judged_docs_missing", 0)
    if missing:
        found.append(
            (
                "eval_docs_missing",
                f"{missing} judgment(s) of scored queries name a document absent from the "
                "corpus: it counts as relevant but can never be retrieved, which lowers every "
                "model's recall and nDCG alike.",
                "Add the documents to corpus.jsonl or drop those qrels.",
            )
        )
    return found


def data_notes(summary: dict) -> list[str]:
    """:func:`data_findings` as the lines the evaluation faces print."""
    return [
        what if code == "eval_queries_unjudged" else f"{what} {fix}"
        for code, what, fix in data_findings(summary)
    ]


@dataclass
class EvalData:
    """Everything an evaluation needs, with ids as strings and order as in the files."""

    path: Path
    layout: str
    split: str
    corpus_ids: list[str]
    corpus_texts: list[str]
    query_ids: list[str]  # only the scorable queries (at least one relevant document)
    query_texts: list[str]
    qrels: dict[str, dict[str, int]]  # scorable queries only
    skipped: dict[str, str] = field(default_factory=dict)  # query id -> why it is not scored
    qrels_without_query: int = 0  # judged query ids absent from the queries file
    judgments_without_query: int = 0  # qrels rows naming those ids
    judged_docs_missing: int = 0  # judgments naming a document absent from the corpus

    def __post_init__(self) -> None:
        self._doc_index = {d: i for i, d in enumerate(self.corpus_ids)}
        self._query_index = {q: i for i, q in enumerate(self.query_ids)}

    @property
    def n_queries(self) -> int:
        return len(self.query_ids)

    def doc_text(self, doc_id: str) -> str | None:
        i = self._doc_index.get(doc_id)
        return None if i is None else self.corpus_texts[i]

    def query_text(self, query_id: str) -> str | None:
        i = self._query_index.get(query_id)
        return None if i is None else self.query_texts[i]

    def subset(self, query_ids: list[str]) -> EvalData:
        """The same corpus with only the given queries (e.g. a quick look at 20 of them)."""
        keep = [q for q in query_ids if q in self._query_index]
        return EvalData(
            path=self.path,
            layout=self.layout,
            split=self.split,
            corpus_ids=self.corpus_ids,
            corpus_texts=self.corpus_texts,
            query_ids=keep,
            query_texts=[self.query_texts[self._query_index[q]] for q in keep],
            qrels={q: self.qrels[q] for q in keep},
        )

    def fingerprint(self) -> str:
        """A hash of what is scored (corpus, queries, judgments), for caches and reports."""
        h = hashlib.sha256()
        for part in (self.corpus_ids, self.corpus_texts, self.query_ids, self.query_texts):
            h.update(json.dumps(part, ensure_ascii=False).encode("utf-8"))
        h.update(json.dumps(self.qrels, sort_keys=True).encode("utf-8"))
        return h.hexdigest()[:16]

    def summary(self) -> dict:
        return {
            "path": str(self.path),
            "layout": self.layout,
            "split": self.split,
            "n_corpus": len(self.corpus_ids),
            "n_queries": self.n_queries,
            "skipped_queries": len(self.skipped),
            "skipped_all_zero": sum(1 for why in self.skipped.values() if why == ALL_ZERO),
            "skipped_no_qrels": sum(1 for why in self.skipped.values() if why == NO_QRELS),
            "qrels_without_query": self.qrels_without_query,
            "judgments_without_query": self.judgments_without_query,
            "judged_docs_missing": self.judged_docs_missing,
            "fingerprint": self.fingerprint(),
        }


# --------------------------------------------------------------------------- layout


def detect_layout(path: str | Path, split: str = "test") -> str:
    """``beir`` or ``flagembedding``; raise EvalDataError saying which files are expected."""
    root = Path(path)
    if not root.is_dir():
        raise EvalDataError(
            "no such folder.", root, fix="Give a folder holding corpus.jsonl and queries/qrels."
        )
    if not (root / "corpus.jsonl").is_file():
        raise EvalDataError(
            "corpus.jsonl is missing.",
            root,
            fix="An eval folder holds corpus.jsonl plus queries.jsonl and qrels/"
            f"{split}.tsv (BEIR) or {split}_queries.jsonl and {split}_qrels.jsonl (FlagEmbedding).",
        )
    if (root / "queries.jsonl").is_file() and (root / "qrels" / f"{split}.tsv").is_file():
        return "beir"
    if (root / f"{split}_queries.jsonl").is_file() and (root / f"{split}_qrels.jsonl").is_file():
        return "flagembedding"
    raise EvalDataError(
        f"found corpus.jsonl but no queries and qrels for split {split!r}.",
        root,
        fix=f"Add queries.jsonl and qrels/{split}.tsv (BEIR) or {split}_queries.jsonl and "
        f"{split}_qrels.jsonl (FlagEmbedding custom).",
    )


# --------------------------------------------------------------------------- readers


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of every non-blank line; an unreadable file names itself."""
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise EvalDataError(f"cannot read: {exc.strerror}.", path) from None
    with handle:
        for number, raw in enumerate(handle, 1):
            if raw.strip():
                yield number, raw


def _json_lines(path: Path) -> Iterator[tuple[int, dict]]:
    for number, raw in _lines(path):
        try:
            row = json.loads(raw)
        except ValueError as exc:
            raise EvalDataError(
                f"not valid JSON: {exc}.", path, number, "Write one JSON object per line."
            ) from None
        if not isinstance(row, dict):
            raise EvalDataError(f"expected a JSON object, got {type(row).__name__}.", path, number)
        yield number, row


def _id(row: dict, keys: tuple[str, ...], path: Path, line: int) -> str:
    for key in keys:
        if key in row:
            value = row[key]
            if isinstance(value, bool) or not isinstance(value, str | int):
                raise EvalDataError(
                    f"`{key}` must be a string or an integer, got {value!r}.", path, line
                )
            text = str(value)
            if not text.strip():
                raise EvalDataError(f"`{key}` is empty.", path, line)
            return text
    raise EvalDataError(f"no `{keys[0]}` field.", path, line, f"Give each row a `{keys[0]}`.")


def _text(row: dict, key: str, path: Path, line: int, required: bool = True) -> str:
    if key not in row or row[key] is None:
        if required:
            raise EvalDataError(f"no `{key}` field.", path, line, f"Give each row a `{key}`.")
        return ""
    value = row[key]
    if not isinstance(value, str):
        raise EvalDataError(f"`{key}` must be a string, got {type(value).__name__}.", path, line)
    return value


def _relevance(value, path: Path, line: int) -> int:
    if isinstance(value, bool):
        raise EvalDataError(f"relevance must be an integer, got {value!r}.", path, line)
    if isinstance(value, int):
        return value
    try:
        number = float(str(value).strip())
    except ValueError:
        number = None
    if number is None or not number.is_integer():
        raise EvalDataError(
            f"relevance must be an integer, got {value!r}.", path, line, "Use 0, 1, 2, ..."
        )
    return int(number)


def _rows_by_id(path: Path, what: str):
    """(line, id, row) of each JSONL row (``_id`` or ``id``); a second row with an id already
    seen is an error naming both lines. The corpus and the queries file are read through it."""
    seen: dict[str, int] = {}
    for line, row in _json_lines(path):
        row_id = _id(row, ("_id", "id"), path, line)
        if row_id in seen:
            raise EvalDataError(
                f"duplicate {what} id {row_id!r} (first on line {seen[row_id]}).", path, line
            )
        seen[row_id] = line
        yield line, row_id, row


def read_corpus(path: Path) -> tuple[list[str], list[str]]:
    ids: list[str] = []
    texts: list[str] = []
    for line, doc_id, row in _rows_by_id(path, "document"):
        title = _text(row, "title", path, line, required=False)
        text = _text(row, "text", path, line)
        ids.append(doc_id)
        texts.append(f"{title} {text}".strip() if title else text)
    if not ids:
        raise EvalDataError("the corpus is empty.", path)
    return ids, texts


def read_queries(path: Path) -> dict[str, str]:
    return {
        query_id: _text(row, "text", path, line)
        for line, query_id, row in _rows_by_id(path, "query")
    }


def read_qrels_tsv(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    for number, raw in _lines(path):
        line = raw.rstrip("\r\n")
        cols = next(csv.reader([line], delimiter="\t")) if "\t" in line else line.split()
        if len(cols) == 4:  # TREC: qid iteration docid relevance
            cols = [cols[0], cols[2], cols[3]]
        if len(cols) != 3:
            raise EvalDataError(
                f"expected 3 tab-separated columns (query-id, corpus-id, score), got {len(cols)}.",
                path,
                number,
            )
        query_id, doc_id, score = (c.strip() for c in cols)
        if number == 1 and not _looks_numeric(score):
            continue  # the header row
        qrels.setdefault(query_id, {})[doc_id] = _relevance(score, path, number)
    return qrels


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_qrels_jsonl(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    for line, row in _json_lines(path):
        query_id = _id(row, ("qid", "query-id", "query_id"), path, line)
        doc_id = _id(row, ("docid", "corpus-id", "doc_id"), path, line)
        if "relevance" not in row and "score" not in row:
            raise EvalDataError("no `relevance` field.", path, line)
        value = row["relevance"] if "relevance" in row else row["score"]
        qrels.setdefault(query_id, {})[doc_id] = _relevance(value, path, line)
    return qrels


# --------------------------------------------------------------------------- load


def load_eval_data(path: str | Path, split: str = "test") -> EvalData:
    """Read a BEIR or FlagEmbedding-custom eval folder; see the module docstring."""
    root = Path(path).expanduser().resolve()
    layout = detect_layout(root, split)
    corpus_ids, corpus_texts = read_corpus(root / "corpus.jsonl")
    if layout == "beir":
        queries_file = root / "queries.jsonl"
        queries = read_queries(queries_file)
        raw_qrels = read_qrels_tsv(root / "qrels" / f"{split}.tsv")
    else:
        queries_file = root / f"{split}_queries.jsonl"
        queries = read_queries(queries_file)
        raw_qrels = read_qrels_jsonl(root / f"{split}_qrels.jsonl")

    known_docs = set(corpus_ids)
    skipped: dict[str, str] = {}
    query_ids, query_texts, qrels = [], [], {}
    for query_id, text in queries.items():
        judged = raw_qrels.get(query_id)
        if not judged:
            skipped[query_id] = NO_QRELS
        elif not any(rel > 0 for rel in judged.values()):
            skipped[query_id] = ALL_ZERO
        else:
            query_ids.append(query_id)
            query_texts.append(text)
            qrels[query_id] = dict(judged)
    if not query_ids:
        raise EvalDataError(
            f"no query has a relevant document in the qrels ({len(queries)} queries read).",
            queries_file,
            fix="Check that the qrels use the same query ids as the queries file.",
        )
    return EvalData(
        path=root,
        layout=layout,
        split=split,
        corpus_ids=corpus_ids,
        corpus_texts=corpus_texts,
        query_ids=query_ids,
        query_texts=query_texts,
        qrels=qrels,
        skipped=skipped,
        qrels_without_query=sum(1 for q in raw_qrels if q not in queries),
        judgments_without_query=sum(len(d) for q, d in raw_qrels.items() if q not in queries),
        judged_docs_missing=sum(1 for q in qrels for d in qrels[q] if d not in known_docs),
    )
