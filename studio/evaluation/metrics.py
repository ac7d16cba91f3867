"""Retrieval metrics exactly as trec_eval (and so pytrec_eval, BEIR and FlagEmbedding) define them.

The studio computes them itself, per query, because it needs the per-query values for the
wins-and-losses table and because it ranks once for every cutoff. The definitions follow
trec_eval, and the tests check every value against pytrec_eval on fixed rankings:

``recall_at_k``  relevant documents in the top k / all relevant documents of the query
``ndcg_at_k``    DCG of the top k (gain = the graded relevance, discount log2(rank + 1)) over
                 the ideal DCG of the judged documents (``ndcg_cut_k``)
``mrr_at_k``     1 / rank of the first relevant document in the top k, else 0 (``recip_rank``
                 on the ranking cut at k)
``map_at_k``     sum of precision at each relevant rank <= k / all relevant documents
                 (``map_cut_k``)

"Relevant" means relevance >= 1 (trec_eval's default level); relevance <= 0 gains nothing.
A ranking is a list of document ids best first; ties must already be broken the way trec_eval
breaks them (score descending, then document id descending), which :mod:`.search` does.
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


def query_metrics(
    ranking: Sequence[str], qrel: Mapping[str, int], ks: Iterable[int] = DEFAULT_KS
) -> dict[str, float]:
    """Every metric at every cutoff for one query."""
    ks = sorted(set(ks))
    n_relevant = sum(1 for rel in qrel.values() if rel >= 1)
    ideal = sorted((rel for rel in qrel.values() if rel > 0), reverse=True)
    out: dict[str, float] = {}
    dcg = 0.0
    hits = 0
    precision_sum = 0.0
    first_hit = 0
    ideal_dcg = 0.0
    k_iter = iter(ks)
    k = next(k_iter)
    top = max(ks)
    for rank in range(1, top + 1):
        if rank <= len(ranking):
            rel = qrel.get(ranking[rank - 1], 0)
            if rel > 0:
                dcg += rel / math.log2(rank + 1)
            if rel >= 1:
                hits += 1
                precision_sum += hits / rank
                if not first_hit:
                    first_hit = rank
        if rank <= len(ideal):
            ideal_dcg += ideal[rank - 1] / math.log2(rank + 1)
        while k == rank:
            out[metric_name("ndcg", k)] = dcg / ideal_dcg if ideal_dcg > 0 else 0.0
            out[metric_name("recall", k)] = hits / n_relevant if n_relevant else 0.0
            out[metric_name("mrr", k)] = 1.0 / first_hit if first_hit else 0.0
            out[metric_name("map", k)] = precision_sum / n_relevant if n_relevant else 0.0
            k = next(k_iter, None)
    return {name: out[name] for name in metric_names(ks)}


def score_rankings(
    rankings: Mapping[str, Sequence[str]],
    qrels: Mapping[str, Mapping[str, int]],
    ks: Iterable[int] = DEFAULT_KS,
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """(mean over queries, per query) for every query that has both a ranking and qrels."""
    ks = sorted(set(ks))
    per_query = {
        qid: query_metrics(ranking, qrels[qid], ks)
        for qid, ranking in rankings.items()
        if qid in qrels
    }
    return mean_metrics(per_query, ks), per_query


def mean_metrics(
    per_query: Mapping[str, Mapping[str, float]], ks: Iterable[int] = DEFAULT_KS
) -> dict[str, float]:
    names = metric_names(ks)
    if not per_query:
        return {name: 0.0 for name in names}
    n = len(per_query)
    return {name: math.fsum(q[name] for q in per_query.values()) / n for name in names}
