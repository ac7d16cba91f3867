"""Retrieval metrics exactly as trec_eval (and so pytrec_eval, BEIR and FlagEmbedding) define them.

The values come from pytrec_eval (trec_eval's own C code) per query; the studio keeps the
per-query values for the wins-and-losses table. The definitions, as trec_eval has them:

``recall_at_k``  relevant documents in the top k / all relevant documents of the query
``ndcg_at_k``    DCG of the top k (gain = the graded relevance, discount log2(rank + 1)) over
                 the ideal DCG of the judged documents (``ndcg_cut_k``)
``mrr_at_k``     1 / rank of the first relevant document in the top k, else 0 (``recip_rank``
                 on the ranking cut at k)
``map_at_k``     sum of precision at each relevant rank <= k / all relevant documents
                 (``map_cut_k``)

"Relevant" means relevance >= 1 (trec_eval's default level); relevance <= 0 gains nothing.
A ranking is a list of document ids best first; ties must already be broken the way trec_eval
breaks them (score descending, then document id descending), which :mod:`.search` does. It is
handed to trec_eval as strictly decreasing scores, so trec_eval keeps exactly that order. MRR@k
is trec_eval's ``recip_rank`` when the first relevant document is within the top k, else 0.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence

METRICS = ("ndcg", "recall", "mrr", "map")
DEFAULT_KS = (1, 5, 10, 100)
_NAME = re.compile(r"^(ndcg|recall|mrr|map)_at_(\d+)$")


def metric_name(metric: str, k: int) -> str:
    return f"{metric}_at_{k}"


def metric_names(ks: Iterable[int] = DEFAULT_KS) -> list[str]:
    return [metric_name(m, k) for m in METRICS for k in sorted(set(ks))]


def is_metric_name(name: str) -> bool:
    return bool(_NAME.match(name))


def parse_metric_name(name: str) -> tuple[str, int] | None:
    match = _NAME.match(name)
    return (match.group(1), int(match.group(2))) if match else None


def parse_ks(text: str | Iterable[int]) -> list[int]:
    """``"1,5,10"`` or ``[1, 5, 10]`` -> sorted unique positive ints; ValueError otherwise."""
    items = text.replace(",", " ").split() if isinstance(text, str) else list(text)
    try:
        ks = sorted({int(k) for k in items})
    except (TypeError, ValueError):
        raise ValueError(f"cutoffs must be whole numbers, got {text!r}") from None
    if not ks or ks[0] < 1:
        raise ValueError(f"cutoffs must be positive whole numbers, got {text!r}")
    return ks


def _evaluator(qrels: Mapping[str, Mapping[str, int]], ks: Sequence[int]):
    import pytrec_eval  # C++ trec_eval; imported here so the CLI starts fast

    cut = ",".join(map(str, ks))
    measures = {f"ndcg_cut.{cut}", f"recall.{cut}", f"map_cut.{cut}", "recip_rank"}
    return pytrec_eval.RelevanceEvaluator(
        {qid: {doc: int(rel) for doc, rel in qrel.items()} for qid, qrel in qrels.items()},
        measures,
        relevance_level=1,
    )


def _as_run(ranking: Sequence[str]) -> dict[str, float]:
    """A best-first ranking as trec_eval scores: strictly decreasing, so its order is kept."""
    n = len(ranking)
    return {doc: float(n - i) for i, doc in enumerate(ranking)}


def _named(values: Mapping[str, float], ks: Sequence[int]) -> dict[str, float]:
    rr = values.get("recip_rank", 0.0)
    out: dict[str, float] = {}
    for k in ks:
        out[metric_name("ndcg", k)] = values.get(f"ndcg_cut_{k}", 0.0)
        out[metric_name("recall", k)] = values.get(f"recall_{k}", 0.0)
        # MRR@k: trec_eval's recip_rank counts only when the first hit is within the top k.
        out[metric_name("mrr", k)] = rr if rr * k >= 1.0 - 1e-12 else 0.0
        out[metric_name("map", k)] = values.get(f"map_cut_{k}", 0.0)
    return {name: out[name] for name in metric_names(ks)}


def query_metrics(
    ranking: Sequence[str], qrel: Mapping[str, int], ks: Iterable[int] = DEFAULT_KS
) -> dict[str, float]:
    """Every metric at every cutoff for one query."""
    return score_rankings({"q": ranking}, {"q": qrel}, ks)[1]["q"]


def score_rankings(
    rankings: Mapping[str, Sequence[str]],
    qrels: Mapping[str, Mapping[str, int]],
    ks: Iterable[int] = DEFAULT_KS,
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """(mean over queries, per query) for every query that has both a ranking and qrels."""
    ks = sorted(set(ks))
    judged = {qid: ranking for qid, ranking in rankings.items() if qid in qrels}
    scored = {qid: _as_run(r) for qid, r in judged.items() if r}
    raw = _evaluator({qid: qrels[qid] for qid in judged}, ks).evaluate(scored) if scored else {}
    # trec_eval leaves out a query with an empty ranking; it scores 0 on every metric.
    per_query = {qid: _named(raw.get(qid, {}), ks) for qid in judged}
    return mean_metrics(per_query, ks), per_query


def mean_metrics(
    per_query: Mapping[str, Mapping[str, float]], ks: Iterable[int] = DEFAULT_KS
) -> dict[str, float]:
    names = metric_names(ks)
    if not per_query:
        return {name: 0.0 for name in names}
    n = len(per_query)
    return {name: math.fsum(q[name] for q in per_query.values()) / n for name in names}
