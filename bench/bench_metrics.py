"""Metrics from pytrec_eval vs the hand-written per-query loop the studio used before.

Issue 11 asked whether hand-written metrics were needed for speed. This bench scores the same
rankings both ways (1,000 queries x 100 ranked documents, graded qrels) and prints the time
ratio and the largest difference. The hand-written loop lives only here, as the baseline.

    python bench/bench_metrics.py [--queries 1000] [--depth 100]
"""

from __future__ import annotations

import argparse
import math
import random
import time

from studio.evaluation.metrics import DEFAULT_KS, metric_name, metric_names, score_rankings


def hand_written(ranking, qrel, ks):
    ks = sorted(set(ks))
    n_relevant = sum(1 for rel in qrel.values() if rel >= 1)
    ideal = sorted((rel for rel in qrel.values() if rel > 0), reverse=True)
    out, dcg, hits, precision_sum, first_hit, ideal_dcg = {}, 0.0, 0, 0.0, 0, 0.0
    k_iter = iter(ks)
    k = next(k_iter)
    for rank in range(1, max(ks) + 1):
        if rank <= len(ranking):
            rel = qrel.get(ranking[rank - 1], 0)
            if rel > 0:
                dcg += rel / math.log2(rank + 1)
            if rel >= 1:
                hits += 1
                precision_sum += hits / rank
                first_hit = first_hit or rank
        if rank <= len(ideal):
            ideal_dcg += ideal[rank - 1] / math.log2(rank + 1)
        while k == rank:
            out[metric_name("ndcg", k)] = dcg / ideal_dcg if ideal_dcg > 0 else 0.0
            out[metric_name("recall", k)] = hits / n_relevant if n_relevant else 0.0
            out[metric_name("mrr", k)] = 1.0 / first_hit if first_hit else 0.0
            out[metric_name("map", k)] = precision_sum / n_relevant if n_relevant else 0.0
            k = next(k_iter, None)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--depth", type=int, default=100)
    args = parser.parse_args()
    rng = random.Random(0)
    docs = [f"d{i}" for i in range(5000)]
    rankings, qrels = {}, {}
    for q in range(args.queries):
        qid = f"q{q}"
        rankings[qid] = rng.sample(docs, args.depth)
        judged = rng.sample(rankings[qid], 3) + rng.sample(docs, 2)
        qrels[qid] = {d: rng.choice([0, 1, 2]) for d in judged}
    score_rankings({"q0": rankings["q0"]}, {"q0": qrels["q0"]})  # import pytrec_eval first

    t0 = time.perf_counter()
    _, ours = score_rankings(rankings, qrels, DEFAULT_KS)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    base = {q: hand_written(rankings[q], qrels[q], DEFAULT_KS) for q in rankings}
    t_base = time.perf_counter() - t0
    diff = max(abs(ours[q][n] - base[q][n]) for q in rankings for n in metric_names(DEFAULT_KS))
    print(f"pytrec_eval: {t_ours * 1000:.1f} ms   hand-written: {t_base * 1000:.1f} ms")
    print(f"ratio pytrec_eval / hand-written: {t_ours / t_base:.2f}   max |difference|: {diff:.2e}")
    return 0 if diff < 1e-9 else 1


if __name__ == "__main__":
    raise SystemExit(main())
