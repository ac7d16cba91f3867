"""Exact nearest-neighbour search by inner product, with trec_eval's tie order.

Exact, not approximate: an evaluation must score what the model does, not what an index
approximates. A float32 matrix product over the whole corpus (BLAS, in query blocks to bound
memory) is exact and on a CPU as fast as faiss's flat index. Ties are broken the way trec_eval
sorts a run (score descending, then document id descending), so the ranking scored here is the
one pytrec_eval would score given the same scores: the metrics agree to the last digit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_BLOCK_ELEMENTS = 1 << 24  # about 64 MB of float32 scores per block


@dataclass
class Ranking:
    """Top-k corpus positions and scores per query, best first."""

    indices: np.ndarray  # (n_queries, k) int64 positions in the corpus
    scores: np.ndarray  # (n_queries, k) float32

    def ids(self, corpus_ids: list[str]) -> list[list[str]]:
        return [[corpus_ids[i] for i in row] for row in self.indices]


def id_order(corpus_ids: list[str]) -> np.ndarray:
    """Rank of each id in ascending string order (Python order = UTF-8 byte order = strcmp)."""
    order = np.empty(len(corpus_ids), dtype=np.int64)
    order[np.argsort(np.array(corpus_ids, dtype=object), kind="stable")] = np.arange(
        len(corpus_ids)
    )
    return order


def top_k(query_emb: np.ndarray, corpus_emb: np.ndarray, k: int, id_rank: np.ndarray) -> Ranking:
    """The k best corpus rows for each query by inner product, ties by id descending."""
    query_emb = np.ascontiguousarray(query_emb, dtype=np.float32)
    corpus_emb = np.ascontiguousarray(corpus_emb, dtype=np.float32)
    n_queries, n_docs = len(query_emb), len(corpus_emb)
    k = min(k, n_docs)
    indices = np.empty((n_queries, k), dtype=np.int64)
    scores = np.empty((n_queries, k), dtype=np.float32)
    block = max(1, _BLOCK_ELEMENTS // max(n_docs, 1))
    for start in range(0, n_queries, block):
        block_scores = query_emb[start : start + block] @ corpus_emb.T
        for row, s in enumerate(block_scores):
            chosen = _best(s, k, id_rank)
            indices[start + row] = chosen
            scores[start + row] = s[chosen]
    return Ranking(indices, scores)


def top_k_scores(score_matrix: np.ndarray, k: int, id_rank: np.ndarray) -> Ranking:
    """The same selection over scores computed elsewhere (sparse, ColBERT, hybrid: one row per
    query, one column per corpus document)."""
    score_matrix = np.asarray(score_matrix, dtype=np.float32)
    n_queries, n_docs = score_matrix.shape
    k = min(k, n_docs)
    indices = np.empty((n_queries, k), dtype=np.int64)
    scores = np.empty((n_queries, k), dtype=np.float32)
    for row, s in enumerate(score_matrix):
        chosen = _best(s, k, id_rank)
        indices[row] = chosen
        scores[row] = s[chosen]
    return Ranking(indices, scores)


def _best(s: np.ndarray, k: int, id_rank: np.ndarray) -> np.ndarray:
    """Positions of the k highest scores, ties by id descending (trec_eval's order)."""
    n_docs = len(s)
    if k < n_docs:
        kth = np.partition(s, n_docs - k)[n_docs - k]
        candidates = np.flatnonzero(s >= kth)  # keeps every doc tied at the boundary
    else:
        candidates = np.arange(n_docs)
    order = np.lexsort((-id_rank[candidates], -s[candidates]))[:k]
    return candidates[order]
