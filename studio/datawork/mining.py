"""Hard-negative mining: fill rows that lack negatives (or re-mine all) with the model's own view.

A row without negatives crashes FlagEmbedding, and random negatives teach little. Mining embeds
the rows' queries and a candidate pool (the data's own passages, or a corpus file) with the
chosen model and its pooling, searches the pool with faiss, and samples `n` negatives from
ranks `range_from` to `range_to` of the results (0 is the nearest passage; skipping the top
ranks avoids unlabelled positives). A passage that is one of the row's positives, or the query
itself, is never taken; nor, for rows made from documents (``data pairs``, which keeps each row's
``doc_id``), a passage of the row's own document. With ``max_neg_ratio`` (e.g. 0.95), a candidate
scoring at least that share of the row's positive is dropped as a likely false negative (an
unlabelled right answer), the filter of NV-Retriever's "TopK-PercPos". The result goes to a new file: the input and any existing file are never
overwritten, and unchanged lines are copied byte for byte.

A mined row is never written with no negative (`neg: []`, which `data check` rejects and
FlagEmbedding divides by): when ranks `range_from`-`range_to` hold nothing but the row's own
positives (dense judgments), the search widens to the ranks beyond, then to those above
`range_from`; a row that still finds none (the pool is its positives) is left out of the output.
Both are counted and said.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from studio.core.config import StudioConfig
from studio.datawork.encoder import Encoder
from studio.datawork.rows import BOM
from studio.facts.problems import INFO, WARNING, Problem

Progress = Callable[[str, int, int], None]


@dataclass
class MineResult:
    out_path: Path
    rows: int  # rows read
    rows_mined: int  # rows whose negatives were changed (dropped rows included)
    negatives_added: int
    rows_short: int  # mined rows that got fewer negatives than asked (small pool or range)
    pool_size: int
    skipped_lines: int  # lines copied unchanged because they cannot be mined (no query/pos)
    scores_dropped: int  # mined rows whose teacher scores were removed (they no longer match)
    seconds: float
    problems: list[Problem] = field(default_factory=list)
    rows_widened: int = 0  # rows that found no negative in the range and searched wider
    rows_dropped: int = 0  # rows left out: no negative anywhere in the pool
    false_negatives_filtered: int = 0  # candidates >= max_neg_ratio x the positive's score
    same_document_skipped: int = 0  # candidates from the row's own document (doc_id)

    def summary(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "problems"} | {
            "out_path": str(self.out_path)
        }


def _parse(raw: bytes):
    try:
        return json.loads(raw[3:] if raw.startswith(BOM) else raw)
    except ValueError:
        return None


def _strings(value) -> list[str]:
    return [v for v in value if isinstance(v, str) and v.strip()] if isinstance(value, list) else []


def read_pool(path: str | Path) -> list[str]:
    """Distinct passage texts of a corpus file: JSON Lines with `text` (and optional `title`,
    as in BEIR's corpus.jsonl and FlagEmbedding's candidate pool), or plain text lines."""
    texts: dict[str, None] = {}
    with open(path, "rb") as fh:
        for raw in fh:
            obj = _parse(raw)
            if isinstance(obj, dict):
                text = obj.get("text")
                if isinstance(text, str) and text.strip():
                    title = obj.get("title")
                    texts[f"{title} {text}" if isinstance(title, str) and title else text] = None
            elif isinstance(obj, str) and obj.strip():
                texts[obj] = None
            elif obj is None and raw.strip():
                texts[raw.decode("utf-8", "replace").strip()] = None
    return list(texts)


def mine(
    path: str | Path,
    out_path: str | Path,
    model: str | Path | Encoder | None = None,
    range_from: int = 10,
    range_to: int = 100,
    n: int = 15,
    candidate_pool: str | Path | None = None,
    only_rows_lacking: bool = True,
    *,
    min_negatives: int = 1,
    pooling: str = "cls",
    query_instruction: str | None = None,
    query_format: str = "{}{}",
    max_length: int = 256,
    batch_size: int = 32,
    seed: int = 0,
    progress: Progress | None = None,
    config: StudioConfig | None = None,
    base_dir: str | Path = ".",
    max_neg_ratio: float | None = None,
) -> MineResult:
    """Mine negatives for one JSON Lines file and write the result to `out_path`.

    With `only_rows_lacking` (the default) only rows with fewer than `min_negatives` valid
    negatives are mined, and they keep the negatives they have, topped up to `n`. Otherwise
    every row's negatives are replaced by `n` mined ones. Rows whose negatives change lose
    `pos_scores`/`neg_scores` (they would no longer match). `progress(stage, done, total)` is
    called as the work goes.

    `model` is a model name or path (encoded with `pooling`), or a ready :class:`Encoder`. With
    a `config`, the model (unless given), its pooling and `passage_max_len`, and the query
    instruction and format come from the config (rows' own prompts are not applied).
    """
    started = time.perf_counter()
    path, out_path = Path(path), Path(out_path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is not a file")
    if out_path.resolve() == path.resolve():
        raise ValueError(f"refusing to write over the input {path}; give another output file")
    if out_path.exists():
        raise FileExistsError(f"{out_path} already exists; give a new output file")
    if not 0 <= range_from < range_to:
        raise ValueError(f"the rank range must satisfy 0 <= from < to, got {range_from}-{range_to}")
    if n < 1:
        raise ValueError("n must be at least 1")
    if max_neg_ratio is not None and not 0 < max_neg_ratio <= 1:
        raise ValueError(f"--max-neg-ratio {max_neg_ratio}: want a share in (0, 1], e.g. 0.95")
    report = progress or (lambda stage, done, total: None)
    if config is not None:
        query_instruction = config.get("query_instruction_for_retrieval")
        query_format = (config.get("query_instruction_format") or "{}{}").replace("\\n", "\n")
    if model is None and config is None:
        raise ValueError("give a model (or a config that names one)")

    # pass 1: the rows to mine and, without a corpus, the pool of the data's own passages
    pool: dict[str, int] = {}
    targets: list[tuple[int, str, list[str], list[str]]] = []  # line, query, pos, kept negs
    doc_of: dict[int, str] = {}  # line -> the document a row was made from (data pairs)
    docs_of_text: dict[str, set[str]] = {}  # passage -> documents it is a positive of
    rows = skipped = 0
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            obj = _parse(raw)
            if not isinstance(obj, dict):
                skipped += bool(raw.strip())
                continue
            rows += 1
            query, pos, neg = obj.get("query"), _strings(obj.get("pos")), _strings(obj.get("neg"))
            if candidate_pool is None:
                for text in pos + neg:
                    pool.setdefault(text, len(pool))
            if obj.get("doc_id") is not None:
                doc_of[lineno] = str(obj["doc_id"])
                for text in pos:
                    docs_of_text.setdefault(text, set()).add(doc_of[lineno])
            if not isinstance(query, str) or not query.strip() or not pos:
                skipped += 1
                continue
            if only_rows_lacking and neg and len(neg) >= min_negatives:
                continue  # (a row without any negative is always mined)
            targets.append((lineno, query, pos, neg if only_rows_lacking else []))
    report("reading", rows, rows)
    texts = read_pool(candidate_pool) if candidate_pool is not None else list(pool)
    del pool

    mined: dict[int, list[str]] = {}
    short = widened = widened_empty = filtered = same_doc = 0
    if targets and texts:
        import faiss

        if isinstance(model, Encoder):
            encoder = model
        elif config is not None:
            if model is not None:
                config = config.with_args(model_name_or_path=str(model))
            encoder = Encoder.from_config(config, base_dir, batch_size=batch_size)
        else:
            encoder = Encoder(model, pooling=pooling, max_length=max_length, batch_size=batch_size)
        passages = encoder.encode(texts, report, "encoding passages")
        index = faiss.IndexFlatIP(passages.shape[1])
        index.add(passages)
        del passages
        queries = [
            query_format.format(query_instruction, q) if query_instruction is not None else q
            for _, q, _, _ in targets
        ]
        vectors = encoder.encode(queries, report, "encoding queries")
        limits = None  # each row's highest allowed negative score
        if max_neg_ratio is not None:
            import numpy as np

            positives = encoder.encode(
                [p[0] for _, _, p, _ in targets], report, "encoding positives"
            )
            limits = max_neg_ratio * np.einsum("ij,ij->i", vectors, positives)
            del positives

        def allowed(row: int, lineno: int, text: str, score: float) -> bool:
            nonlocal filtered, same_doc
            doc = doc_of.get(lineno)
            if doc is not None and doc in docs_of_text.get(text, ()):
                same_doc += 1
                return False
            if limits is not None and score >= limits[row]:
                filtered += 1
                return False
            return True

        k = min(range_to, len(texts))
        rng = random.Random(seed)
        step = 1024
        for start in range(0, len(targets), step):
            scores, found = index.search(vectors[start : start + step], k)
            for row, (lineno, query, pos, kept), ranked, score in zip(
                range(start, start + len(found)), targets[start : start + step], found, scores,
                strict=True,
            ):  # fmt: skip
                banned = set(pos) | set(kept) | {query}
                candidates = [
                    texts[i]
                    for i, s in zip(
                        ranked[range_from:range_to], score[range_from:range_to], strict=True
                    )
                    if i >= 0 and texts[i] not in banned and allowed(row, lineno, texts[i], s)
                ]
                want = max(n - len(kept), 0) if only_rows_lacking else n
                picked = rng.sample(candidates, min(want, len(candidates)))
                short += len(picked) < want
                mined[lineno] = kept + picked
            report("searching", min(start + step, len(targets)), len(targets))
        # rows left with no negative at all: search beyond the range, then above it
        empty = [i for i, t in enumerate(targets) if not mined[t[0]]]
        wide = min(len(texts), max(10 * range_to, 1000))
        for start in range(0, len(empty), step):
            chunk = empty[start : start + step]
            scores, found = index.search(vectors[chunk], wide)
            for i, ranked, score in zip(chunk, found, scores, strict=True):
                lineno, query, pos, _ = targets[i]
                banned = set(pos) | {query}
                order = [*range(range_to, len(ranked)), *range(min(range_from, len(ranked)))]
                beyond = list(
                    dict.fromkeys(
                        texts[ranked[j]]
                        for j in order
                        if ranked[j] >= 0
                        and texts[ranked[j]] not in banned
                        and allowed(i, lineno, texts[ranked[j]], score[j])
                    )
                )
                widened += 1
                widened_empty += not beyond
                mined[lineno] = rng.sample(beyond, min(n, len(beyond))) if beyond else []

    for lineno, _, _, kept in targets:  # an empty pool: rows keep what they had, if anything
        mined.setdefault(lineno, kept)

    # pass 2: copy every line, rewriting the mined rows
    added = dropped = rows_dropped = 0
    tmp = out_path.with_name(out_path.name + ".tmp")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "rb") as fh, open(tmp, "wb") as out:
        for lineno, raw in enumerate(fh, 1):
            negatives = mined.get(lineno)
            if negatives is None:
                out.write(raw if raw.endswith(b"\n") else raw + b"\n")
                continue
            if not negatives:
                rows_dropped += 1  # `neg: []` would fail `data check` and the training
                continue
            obj = _parse(raw)
            before = set(_strings(obj.get("neg"))) if only_rows_lacking else set()
            added += sum(t not in before for t in negatives)
            obj["neg"] = negatives
            if "pos_scores" in obj or "neg_scores" in obj:
                obj.pop("pos_scores", None)
                obj.pop("neg_scores", None)
                dropped += 1
            out.write(json.dumps(obj, ensure_ascii=False).encode("utf-8") + b"\n")
    tmp.replace(out_path)
    report("writing", rows, rows)

    problems = []
    if widened:
        problems.append(
            Problem(
                WARNING,
                f"{widened} row(s) found no negative in ranks {range_from}-{range_to} (the "
                "ranks held only their own positives): the search widened to the ranks beyond "
                f"{range_to}, then above {range_from}; {widened - widened_empty} got negatives "
                f"there and {widened_empty} found none in the pool of {len(texts)} passages and "
                "were left out of the output (a row with `neg: []` fails `data check` and "
                "training).",
                "Give a larger `candidate_pool` corpus (`--pool corpus.jsonl`), or widen the "
                "range yourself (e.g. `--range 10-500`).",
                file=str(out_path),
                code="mine_widened",
            )
        )
    if rows_dropped > widened_empty:
        problems.append(
            Problem(
                WARNING,
                f"{rows_dropped - widened_empty} row(s) without negatives were left out of the "
                "output: the candidate pool is empty.",
                "Give a `candidate_pool` corpus with passages (`--pool corpus.jsonl`).",
                file=str(out_path),
                code="mine_dropped",
            )
        )
    if short:
        problems.append(
            Problem(
                WARNING,
                f"{short} row(s) got fewer than the negatives asked for: ranks "
                f"{range_from}-{range_to} of a pool of {len(texts)} passages held too few "
                "candidates that are not positives.",
                "Widen the rank range or give a larger `candidate_pool` corpus.",
                file=str(out_path),
                code="mine_short",
            )
        )
    if dropped:
        problems.append(
            Problem(
                INFO,
                f"teacher scores were removed from {dropped} mined row(s): their negatives "
                "changed, so the scores no longer match.",
                "Score them again with a reranker before training with `knowledge_distillation`.",
                file=str(out_path),
                code="mine_scores_dropped",
            )
        )
    if skipped:
        problems.append(
            Problem(
                WARNING,
                f"{skipped} line(s) have no usable `query`/`pos` and were copied unchanged.",
                f"Run `python -m studio data check {path}` to see them.",
                file=str(path),
                code="mine_skipped",
            )
        )
    if not targets:
        problems.append(
            Problem(
                INFO,
                "no row needed mining: every row already has enough negatives.",
                "Pass only_rows_lacking=False (`--all-rows`) to re-mine every row.",
                file=str(path),
                code="mine_nothing",
            )
        )
    if filtered or same_doc:
        problems.append(
            Problem(
                INFO,
                f"left out as negatives: {filtered:,} candidate(s) scoring at least "
                f"{max_neg_ratio or 0:.0%} of their row's positive (likely false negatives) and "
                f"{same_doc:,} passage(s) of the row's own document.",
                "Nothing to do: they would have taught the model that right answers are wrong.",
                file=str(out_path),
                code="mine_filtered",
            )
        )
    return MineResult(
        out_path=out_path,
        rows=rows,
        rows_mined=len(mined),
        negatives_added=added,
        rows_short=short,
        pool_size=len(texts),
        skipped_lines=skipped,
        scores_dropped=dropped,
        seconds=time.perf_counter() - started,
        problems=problems,
        rows_widened=widened,
        rows_dropped=rows_dropped,
        false_negatives_filtered=filtered,
        same_document_skipped=same_doc,
    )
