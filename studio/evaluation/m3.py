"""BGE-M3 retrieval, scored four ways: dense, sparse, ColBERT and their weighted hybrid.

An M3 fine-tune trains three heads at once (``unified_finetuning``): the dense CLS vector, a
sparse lexical weight per token (``sparse_linear.pt``) and ColBERT multi-vectors
(``colbert_linear.pt``). A dense-only evaluation cannot tell whether the sparse weights collapsed
to zero or ColBERT improved, so every head is scored on its own, and the hybrid as BGE-M3 ranks.

Encoding is FlagEmbedding's own: :class:`FlagEmbedding.BGEM3FlagModel` (``M3Embedder``), in
fp32, with the training config's pooling, normalization, lengths and instructions, and
``colbert_dim``. Scores are FlagEmbedding's formulas, computed for every query against every
passage (exact search, no approximate index):

``dense``    inner product of the (normalized) CLS vectors
``sparse``   sum over shared tokens of query weight x passage weight (``compute_lexical_matching_score``)
``colbert``  for each query token the best passage-token dot product, averaged over query tokens
             (``colbert_score``)
``hybrid``   ``(w_dense*dense + w_sparse*sparse + w_colbert*colbert) / sum(w)``, as
             ``compute_score`` weights them (default 0.4, 0.2, 0.4: the BGE-M3 model card's)

A model without M3 heads (the base model an M3 fine-tune starts from) gets FlagEmbedding's
freshly initialized heads, seeded with the training seed: the same heads the fine-tune started
from, so "before" is what training began with. Outputs are cached like dense embeddings.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from studio.evaluation import cache
from studio.evaluation.data import EvalData
from studio.evaluation.metrics import DEFAULT_KS
from studio.evaluation.modes import M3_WEIGHTS, arg, parse_weights  # noqa: F401 (re-exported)
from studio.evaluation.settings import EncodeSettings

MODES = ("dense", "sparse", "colbert", "hybrid")
HEAD_FILES = ("colbert_linear.pt", "sparse_linear.pt")
FORMAT = "m3-1"


def has_heads(model_dir: str | Path) -> bool:
    return all((Path(model_dir) / name).is_file() for name in HEAD_FILES)


class M3Encoder:
    """FlagEmbedding's BGEM3FlagModel on the CPU (or GPU), loaded on the first cache miss."""

    def __init__(
        self,
        model_dir: Path,
        settings: EncodeSettings,
        colbert_dim: int = -1,
        seed: int = 42,
        device: str | None = None,
    ):
        self.model_dir, self.settings = model_dir, settings
        self.colbert_dim, self.seed, self.device = colbert_dim, seed, device
        self._model = None

    def _load(self):
        import torch
        from FlagEmbedding import BGEM3FlagModel
        from transformers import set_seed

        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        # FlagEmbedding's runner seeds before it creates missing heads; so do we, so a base
        # model's random heads are the ones its fine-tune started from.
        set_seed(self.seed)
        return BGEM3FlagModel(
            str(self.model_dir),
            normalize_embeddings=self.settings.normalize,
            use_fp16=False,
            devices=device,
            pooling_method=self.settings.pooling,
            colbert_dim=self.colbert_dim,
            batch_size=64,
        )

    def encode(self, texts: list[str], max_len: int) -> dict[str, np.ndarray]:
        if self._model is None:
            self._model = self._load()
        out = self._model.encode(
            texts,
            batch_size=64,
            max_length=max_len,
            return_dense=True,
            return_sparse=True,
            return_colbert_vecs=True,
        )
        return pack(out)


def pack(out: dict[str, Any]) -> dict[str, np.ndarray]:
    """BGEM3FlagModel.encode's output as flat arrays (CSR sparse, concatenated ColBERT vectors)."""
    dense = np.asarray(out["dense_vecs"], dtype=np.float32)
    indptr, indices, data = [0], [], []
    for weights in out["lexical_weights"]:
        for token, weight in weights.items():
            indices.append(int(token))
            data.append(float(weight))
        indptr.append(len(indices))
    vecs = [np.asarray(v, dtype=np.float32) for v in out["colbert_vecs"]]
    offsets = np.cumsum([0] + [len(v) for v in vecs]).astype(np.int64)
    width = vecs[0].shape[1] if vecs and vecs[0].ndim == 2 else 0
    return {
        "dense": dense,
        "sparse_indptr": np.asarray(indptr, dtype=np.int64),
        "sparse_indices": np.asarray(indices, dtype=np.int64),
        "sparse_data": np.asarray(data, dtype=np.float32),
        "colbert_offsets": offsets,
        "colbert_vecs": np.concatenate(vecs) if vecs else np.zeros((0, width), np.float32),
    }


def _sparse_matrix(arrays: dict[str, np.ndarray], vocab: int):
    from scipy.sparse import csr_matrix

    n = len(arrays["sparse_indptr"]) - 1
    return csr_matrix(
        (arrays["sparse_data"], arrays["sparse_indices"], arrays["sparse_indptr"]), shape=(n, vocab)
    )


def scores(
    queries: dict[str, np.ndarray],
    corpus: dict[str, np.ndarray],
    weights: Sequence[float] = M3_WEIGHTS,
) -> dict[str, np.ndarray]:
    """Query x corpus score matrices for every mode, by FlagEmbedding's formulas."""
    out: dict[str, np.ndarray] = {}
    out["dense"] = queries["dense"] @ corpus["dense"].T
    vocab = int(
        max(queries["sparse_indices"].max(initial=0), corpus["sparse_indices"].max(initial=0))
    )
    q_sparse = _sparse_matrix(queries, vocab + 1)
    p_sparse = _sparse_matrix(corpus, vocab + 1)
    out["sparse"] = np.asarray((q_sparse @ p_sparse.T).todense(), dtype=np.float32)
    out["colbert"] = colbert_scores(queries, corpus)
    w_dense, w_sparse, w_colbert = weights
    out["hybrid"] = (
        w_dense * out["dense"] + w_sparse * out["sparse"] + w_colbert * out["colbert"]
    ) / float(w_dense + w_sparse + w_colbert)
    return {k: v.astype(np.float32) for k, v in out.items()}


def colbert_scores(queries: dict[str, np.ndarray], corpus: dict[str, np.ndarray]) -> np.ndarray:
    """Mean over query tokens of the best passage-token dot product, for every pair."""
    p_vecs, p_off = corpus["colbert_vecs"], corpus["colbert_offsets"]
    q_vecs, q_off = queries["colbert_vecs"], queries["colbert_offsets"]
    n_docs = len(p_off) - 1
    out = np.zeros((len(q_off) - 1, n_docs), dtype=np.float32)
    lengths = np.diff(p_off)
    starts = p_off[:-1]
    empty = lengths == 0
    safe_starts = np.minimum(starts, max(len(p_vecs) - 1, 0))
    for i in range(len(q_off) - 1):
        q = q_vecs[q_off[i] : q_off[i + 1]]
        if len(q) == 0 or len(p_vecs) == 0:
            continue
        token_scores = q @ p_vecs.T  # (query tokens, all passage tokens)
        best = np.maximum.reduceat(token_scores, safe_starts, axis=1)  # per passage
        best[:, empty] = 0.0
        out[i] = best.sum(axis=0) / len(q)
    return out


def _encode_cached(
    encoder: M3Encoder,
    model_fp: str,
    texts: list[str],
    max_len: int,
    use_cache: bool,
    cache_root: Path | None,
) -> tuple[dict[str, np.ndarray], bool]:
    s = encoder.settings
    key = cache.embedding_key(
        model_fp,
        cache.texts_fingerprint(texts),
        format=FORMAT,
        pooling=s.pooling,
        normalize=s.normalize,
        max_len=max_len,
        colbert_dim=encoder.colbert_dim,
        seed=None if has_heads(encoder.model_dir) else encoder.seed,
    )
    return cache.cached(
        key,
        lambda: encoder.encode(texts, max_len),
        cache_root,
        use_cache,
        valid=lambda found: len(found["sparse_indptr"]) == len(texts) + 1,
        arrays=True,
    )


def evaluate_m3_model(
    model: str | Path,
    data: EvalData,
    settings: EncodeSettings,
    ks: Sequence[int] = DEFAULT_KS,
    label: str | None = None,
    *,
    weights: Sequence[float] = M3_WEIGHTS,
    colbert_dim: int = -1,
    seed: int = 42,
    step: int | None = None,
    use_cache: bool = True,
    cache_root: str | Path | None = None,
    device: str | None = None,
):
    """{mode: EvalResult} for dense, sparse, colbert and hybrid of one M3 model."""
    from studio.evaluation.evaluate import (
        encode_data,
        resolve_model_path,
        result_from_scores,
        run_fields,
    )

    started = time.perf_counter()
    model_dir = resolve_model_path(model)
    root = Path(cache_root) if cache_root else None
    encoder = M3Encoder(model_dir, settings, int(colbert_dim), int(seed), device)
    model_fp = cache.model_fingerprint(model_dir, extra=HEAD_FILES)
    q_out, p_out, hits = encode_data(
        lambda texts, max_len: _encode_cached(encoder, model_fp, texts, max_len, use_cache, root),
        data,
        settings,
    )
    matrices = scores(q_out, p_out, weights)
    fields = run_fields(model_dir, label, step, started, hits)
    return {mode: result_from_scores(matrices[mode], data, ks, **fields) for mode in MODES}


def module_scorer(config, module: str, data: EvalData, ks, *, weights, warnings, extra, run):
    """The module's scores for :func:`studio.evaluation.module_eval.evaluate_for_module` (its
    ``scorer`` in studio.modules): the settings it reports and ``score(entry) -> {mode: result}``.
    """
    from studio.evaluation.evaluate import resolve_model_path
    from studio.evaluation.settings import settings_from_config

    settings = settings_from_config(config)
    weights = tuple(weights or M3_WEIGHTS)
    extra["m3_weights"] = {"dense": weights[0], "sparse": weights[1], "colbert": weights[2]}
    heads = {
        "weights": weights,
        "colbert_dim": int(arg(config, "colbert_dim", module) or -1),
        "seed": int(arg(config, "seed", module) or 42),
    }

    def score(entry: dict[str, Any]) -> dict[str, Any]:
        path = resolve_model_path(entry["path"])
        if not has_heads(path):
            warnings.append(
                f"{entry['label']} has no sparse/ColBERT heads (colbert_linear.pt, "
                "sparse_linear.pt): FlagEmbedding initializes them randomly, seeded with the "
                "training seed, as the fine-tune started; its sparse/colbert/hybrid scores "
                "are those untrained heads'."
            )
        return evaluate_m3_model(path, data, settings, ks, **heads, **run(entry))

    return settings.to_dict(), score
