"""Reranker evaluation: a first stage retrieves the top k, the reranker reorders them.

A reranker scores (query, passage) pairs; it cannot search a corpus. So its held-out quality is
measured as it is used: an embedder (the first stage; the bundled model unless the user names
another, e.g. their own fine-tuned embedder) retrieves the top ``k`` passages per query with exact
search, the reranker scores those pairs, and the reordered lists are scored with the same metrics.
The report puts three numbers side by side: the first stage alone, the reranker before
fine-tuning (the base model) and after. Metrics at cutoffs beyond ``k`` can only see the
``k`` reranked passages (recall@100 with k=50 equals the first stage's recall@50).

Scores come from FlagEmbedding's own inference classes, the ones users load a fine-tuned reranker
with (each module's ``inference_class`` in :mod:`studio.facts.modules`, adjusted by its ``prepare``),
in fp32: ``FlagReranker`` (encoder-only), ``FlagLLMReranker`` (decoder-only, the logit of
"Yes"), and the others the modules name, with the training config's
``max_len``, ``query_max_len`` and rerank instructions. Pair scores are cached by model files,
pairs and settings, so a re-run or another cutoff costs nothing.

A base model without a classifier head (an embedder such as the bundled MiniLM, the usual start
of an encoder reranker fine-tune) is scored with the head its fine-tune starts from, not with
whatever ``FlagReranker`` makes of it: FlagEmbedding's runner seeds with the training ``seed``
and then adds a one-logit head (``num_labels=1``), so the studio does exactly that
(:func:`has_head`, ``RerankSettings.seed``). The "before" is then repeatable and is the model
the fine-tune really started from, and the report says it is an untrained head. (Left to
itself, ``FlagReranker`` adds an unseeded two-logit head: each run differs, and its flattened
logits are no longer one score per pair.) Skipping the base was the other choice; it would hide
the fine-tune's starting point, which is what the delta is measured from.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from studio.evaluation import cache
from studio.evaluation.data import EvalData
from studio.evaluation.metrics import DEFAULT_KS
from studio.evaluation.modes import arg
from studio.facts import modules as finetune
from studio.facts.modules import RERANKER


@dataclass(frozen=True)
class RerankSettings:
    """How pairs are built and scored, from the training config (FlagEmbedding's flag names)."""

    module: str = RERANKER
    max_len: int = 512
    query_max_len: int | None = None
    query_instruction: str | None = None
    query_instruction_format: str = "{}{}"
    passage_instruction: str | None = None
    passage_instruction_format: str = "{}{}"
    trust_remote_code: bool = False
    batch_size: int = 32
    seed: int = 42  # the training seed: a base model's new head is initialised with it

    def key(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k not in ("batch_size", "seed")}


def has_head(model_dir: str | Path, module: str = RERANKER) -> bool:
    """Whether an encoder reranker's folder holds a trained classifier head (its config names a
    ``*ForSequenceClassification`` architecture); decoder rerankers score with their LM head."""
    if module != RERANKER:
        return True
    try:
        config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True
    return any(
        str(a).endswith("ForSequenceClassification") for a in config.get("architectures") or []
    )


def untrained_head_note(label: str, seed: int) -> str:
    """What every face says about a reranker scored with a new, seeded head."""
    return (
        f"{label} has no trained classifier head (its config.json names no "
        "*ForSequenceClassification): it is scored with the head its fine-tune starts from, a "
        f"new one-logit head initialised with the training seed {seed}, as FlagEmbedding's "
        "runner makes it. Its scores are repeatable, but they are an untrained head's: the "
        "delta is what training added, not a comparison with a working reranker."
    )


def rerank_settings(config, module: str) -> RerankSettings:
    def get(name):
        return arg(config, name, module)

    own = finetune.get(module)
    decoder = own.is_decoder
    return RerankSettings(
        module=module,
        max_len=int(get("max_len") or 512),
        query_max_len=int(get("query_max_len")) if get("query_max_len") else None,
        query_instruction=get("query_instruction_for_rerank") or ("A: " if decoder else None),
        query_instruction_format=get("query_instruction_format") or "{}{}",
        passage_instruction=get("passage_instruction_for_rerank") or ("B: " if decoder else None),
        passage_instruction_format=get("passage_instruction_format") or "{}{}",
        trust_remote_code=bool(get("trust_remote_code")) or own.remote_code,
        seed=int(get("seed") if get("seed") is not None else 42),
    )


@dataclass
class FirstStage:
    """The first stage's top-k per query (ids, scores) and its own metrics."""

    retriever: str
    k: int
    ids: list[list[str]]
    result: object  # EvalResult of the first stage alone


def first_stage(
    retriever: str | Path,
    data: EvalData,
    k: int,
    ks: Sequence[int] = DEFAULT_KS,
    *,
    use_cache: bool = True,
    cache_root: str | Path | None = None,
) -> FirstStage:
    """Retrieve the top ``k`` with an embedder (its own sentence-transformers settings)."""
    from studio.evaluation.evaluate import (
        _embed,
        _LazyEncoder,
        encode_data,
        resolve_model_path,
        resolve_settings,
        result_from_ranking,
        run_fields,
    )
    from studio.evaluation.search import id_order, top_k

    started = time.perf_counter()
    path = resolve_model_path(retriever)
    settings, _ = resolve_settings([path])
    encoder = _LazyEncoder(path, settings, None)
    fp = cache.model_fingerprint(path)
    root = Path(cache_root) if cache_root else None
    q_emb, p_emb, hits = encode_data(
        lambda texts, max_len: _embed(encoder, fp, texts, max_len, use_cache, root), data, settings
    )
    ranking = top_k(q_emb, p_emb, max(k, max(ks)), id_order(data.corpus_ids))
    ids = ranking.ids(data.corpus_ids)
    result = result_from_ranking(
        ids,
        ranking.scores,
        data,
        ks,
        **run_fields(path, "first_stage", None, started, hits),
    )
    return FirstStage(retriever=str(path), k=int(k), ids=[row[:k] for row in ids], result=result)


class Scorer:
    """One of FlagEmbedding's rerankers, loaded on the first cache miss, scoring in fp32."""

    def __init__(self, model_dir: Path, settings: RerankSettings, device: str | None = None):
        self.model_dir, self.settings, self.device = model_dir, settings, device
        self._model = None

    def _load(self):
        import torch

        s = self.settings
        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        common = {
            "use_fp16": False,
            "devices": device,
            "query_instruction_for_rerank": s.query_instruction,
            "query_instruction_format": s.query_instruction_format,
            "passage_instruction_for_rerank": s.passage_instruction,
            "passage_instruction_format": s.passage_instruction_format,
            "query_max_length": s.query_max_len,
            "max_length": s.max_len,
            "batch_size": s.batch_size,
            "trust_remote_code": s.trust_remote_code,
        }
        own = finetune.get(s.module)
        if not own.is_reranker or not own.inference_class:
            raise ValueError(f"{s.module} is not a reranker module")
        from studio.facts.modules.base import resolve

        cls = resolve(own.inference_class)
        if not own.is_decoder:
            model = cls(str(self.model_dir), **common)
            if not has_head(self.model_dir):
                model.model = _seeded_head_model(self.model_dir, s)
            return model
        model = cls(str(self.model_dir), use_bf16=False, **common)
        if own.prepare is not None:
            own.prepare(model)
        return _with_pad_token(model)

    def score(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        if self._model is None:
            self._model = self._load()
        # On a CPU FlagEmbedding turns fp16 off itself; keep it off elsewhere too (fp32).
        self._model.use_fp16 = False
        scores = self._model.compute_score(pairs, normalize=False)
        scores = np.asarray(scores, dtype=np.float32).reshape(-1)
        if len(scores) != len(pairs):
            raise RuntimeError(f"{self.model_dir}: {len(scores)} scores for {len(pairs)} pairs")
        return scores


def _seeded_head_model(model_dir: Path, s: RerankSettings):
    """The model an encoder reranker fine-tune starts from: FlagEmbedding's runner calls
    ``set_seed(seed)``, then loads the config with ``num_labels=1`` and the model over it."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, set_seed

    set_seed(s.seed)
    config = AutoConfig.from_pretrained(
        str(model_dir), num_labels=1, trust_remote_code=s.trust_remote_code
    )
    return AutoModelForSequenceClassification.from_pretrained(
        str(model_dir), config=config, trust_remote_code=s.trust_remote_code
    )


def _with_pad_token(model):
    """A base LLM often has no pad token; FlagEmbedding's decoder reranker runner trains with
    ``unk`` (else ``eos``) as pad, so score with the same instead of failing to pad a batch."""
    tok = model.tokenizer
    if tok.pad_token is None:
        tok.pad_token = tok.unk_token if tok.unk_token is not None else tok.eos_token
    return model


def _pairs_key(
    model_fp: str, pairs: list[tuple[str, str]], settings: RerankSettings, head_seed=None
) -> str:
    h = hashlib.sha256()
    for query, passage in pairs:
        for text in (query, passage):
            data = text.encode("utf-8")
            h.update(len(data).to_bytes(8, "little"))
            h.update(data)
    # A new head's scores depend on its seed; scores cached before it was seeded (random, one
    # run's luck) have no seed in their key and are never read back for such a model.
    seeded = {"untrained_head_seed": head_seed} if head_seed is not None else {}
    payload = json.dumps(
        {"v": "rerank-1", "model": model_fp, "pairs": h.hexdigest(), **settings.key(), **seeded},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def evaluate_reranker(
    model: str | Path,
    data: EvalData,
    stage: FirstStage,
    settings: RerankSettings,
    ks: Sequence[int] = DEFAULT_KS,
    label: str | None = None,
    *,
    step: int | None = None,
    use_cache: bool = True,
    cache_root: str | Path | None = None,
    device: str | None = None,
):
    """The reranker's EvalResult on the first stage's top k (reordered by its scores)."""
    from studio.evaluation.evaluate import resolve_model_path, result_from_ranking, run_fields
    from studio.evaluation.search import id_order

    started = time.perf_counter()
    model_dir = resolve_model_path(model)
    doc_index = {d: i for i, d in enumerate(data.corpus_ids)}
    pairs = [
        (query, data.corpus_texts[doc_index[doc]])
        for query, docs in zip(data.query_texts, stage.ids, strict=True)
        for doc in docs
    ]
    fp = cache.model_fingerprint(model_dir)
    head_seed = None if has_head(model_dir, settings.module) else settings.seed
    key = _pairs_key(fp, pairs, settings, head_seed)
    root = Path(cache_root) if cache_root else None
    scores, hit = cache.cached(
        key,
        lambda: Scorer(model_dir, settings, device).score(pairs),
        root,
        use_cache,
        valid=lambda found: len(found) == len(pairs),
    )
    rank = id_order(data.corpus_ids)
    ids, ranked_scores, start = [], [], 0
    for docs in stage.ids:
        s = np.asarray(scores[start : start + len(docs)], dtype=np.float32)
        start += len(docs)
        order = np.lexsort((-rank[[doc_index[d] for d in docs]], -s)) if docs else []
        ids.append([docs[i] for i in order])
        ranked_scores.append(s[order] if docs else s)
    return result_from_ranking(
        ids,
        ranked_scores,
        data,
        ks,
        **run_fields(model_dir, label, step, started, {"pairs": bool(hit)}),
    )
