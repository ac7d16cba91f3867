"""Evaluating the models of one fine-tune in the way its module is used: the one entry point.

``evaluate_for_module(models, data, config)`` takes the models of a comparison (base, checkpoints,
final, or any baseline and model) and returns one report, whatever the module:

* ``modes``: for each score name of the module (:data:`studio.evaluation.modes.MODE_NAMES`:
  ``dense``; a reranker's ``rerank`` and ``first_stage``; a module's own, e.g. ``dense``,
  ``sparse``, ``colbert``, ``hybrid``) the models' metrics and the delta between the first and the last model,
* ``models`` / ``delta`` / ``compared``: the headline mode's, so every face that shows a plain
  embedder's report (tables, charts, metrics over steps, the model card) shows this one too.

LoRA adapters (decoder modules) are merged into their base first (:mod:`.loading`); the base
embedder keeps its own path (:func:`studio.training.run_eval.evaluate_run`), unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from studio.evaluation.data import EvalData, data_notes
from studio.evaluation.evaluate import (
    EvalResult,
    comparison_report,
    evaluate_model,
    evaluate_models,
    load_eval_data,
    resolve_settings,
)
from studio.evaluation.metrics import DEFAULT_KS
from studio.evaluation.modes import MODE_NAMES, RERANK_TOP_K, arg, kind_of, module_of
from studio.evaluation.settings import settings_from_config
from studio.facts import modules as finetune

DEFAULT_RETRIEVER = "bundled:all-MiniLM-L6-v2"


def _delta(first: EvalResult, last: EvalResult) -> dict[str, float]:
    return {n: last.metrics[n] - first.metrics[n] for n in last.metrics if n in first.metrics}


def _plain(entry: dict[str, Any], module: str, config, base: str | None, output_dir) -> Path:
    from studio.evaluation.loading import plain_model

    return plain_model(
        entry["path"],
        module,
        base=base,
        output_dir=output_dir,
        trust_remote_code=bool(arg(config, "trust_remote_code", module)),
    )


def evaluate_for_module(
    models: Sequence[dict[str, Any]],
    data: EvalData,
    config,
    ks: Sequence[int] = DEFAULT_KS,
    *,
    module: str | None = None,
    retriever: str | Path | None = None,
    top_k: int | None = None,
    m3_weights: Sequence[float] | None = None,
    details: Sequence[str] | None = None,
    use_cache: bool = True,
    cache_root: str | Path | None = None,
    output_dir: str | Path | None = None,
) -> dict[str, Any]:
    """One report for ``models`` (``[{label, path, step}]``, baseline first, compared last).

    ``details`` names the labels whose per-query values and top hits are kept (default: the
    first and the last). ``retriever``/``top_k`` are the reranker's first stage (default: the
    bundled model, top 100); ``m3_weights`` the hybrid weights of a module with dense, sparse and
    ColBERT scores (default 0.4, 0.2, 0.4).
    """
    module = module or module_of(config)
    kind = kind_of(module)
    ks = sorted({int(k) for k in ks})
    labels = [m["label"] for m in models]
    details = set(details or {labels[0], labels[-1]})
    base_model = str(models[0]["path"])
    warnings: list[str] = []
    per_mode: dict[str, dict[str, EvalResult]] = {name: {} for name in MODE_NAMES[kind]}
    extra: dict[str, Any] = {}
    started = time.perf_counter()

    def run(entry: dict[str, Any]) -> dict[str, Any]:
        """What every scorer is told about one model besides its path: label, step, cache."""
        return {
            "label": entry["label"],
            "step": entry.get("step"),
            "use_cache": use_cache,
            "cache_root": cache_root,
        }

    # Each kind sets `score(entry) -> {mode: EvalResult}`; one loop below fills per_mode.
    if kind == "embedder":
        settings = settings_from_config(config)
        settings_dict = settings.to_dict()

        def score(entry: dict[str, Any]) -> dict[str, EvalResult]:
            path = _plain(entry, module, config, base_model, output_dir)
            return {"dense": evaluate_model(path, data, settings, ks, **run(entry))}

    elif kind == "reranker":
        from dataclasses import asdict

        from studio.evaluation.rerank import (
            evaluate_reranker,
            first_stage,
            has_head,
            rerank_settings,
            untrained_head_note,
        )

        depth = int(top_k or RERANK_TOP_K)
        stage = first_stage(
            retriever or DEFAULT_RETRIEVER,
            data,
            depth,
            ks,
            use_cache=use_cache,
            cache_root=cache_root,
        )
        settings = rerank_settings(config, module)
        settings_dict = asdict(settings)
        extra["retriever"] = stage.retriever
        extra["top_k"] = depth
        if max(ks) > depth:
            warnings.append(
                f"the reranker sees the first stage's top {depth}: metrics at k > {depth} "
                f"count only those passages."
            )

        def score(entry: dict[str, Any]) -> dict[str, EvalResult]:
            path = _plain(entry, module, config, base_model, output_dir)
            if not has_head(path, module):
                warnings.append(untrained_head_note(entry["label"], settings.seed))
                extra.setdefault("untrained_head", {})[entry["label"]] = settings.seed
            reranked = evaluate_reranker(path, data, stage, settings, ks, **run(entry))
            stage_only = {
                **stage.result.__dict__,
                "label": entry["label"],
                "step": entry.get("step"),
            }
            return {"rerank": reranked, "first_stage": EvalResult(**stage_only)}

    else:  # a kind of the module's own: it names the function that scores it
        from studio.facts.modules.base import resolve

        scorer = resolve(finetune.get(module).scorer)
        settings_dict, score = scorer(
            config, module, data, ks, weights=m3_weights, warnings=warnings, extra=extra, run=run
        )

    for entry in models:
        for name, result in score(entry).items():
            per_mode[name][entry["label"]] = result

    primary = MODE_NAMES[kind][0]
    modes_out: dict[str, Any] = {}
    for name, results in per_mode.items():
        first, last = results[labels[0]], results[labels[-1]]
        modes_out[name] = {
            "models": {label: r.to_dict(details=label in details) for label, r in results.items()},
            # one model has no baseline: no delta, rather than zeros that read as "no change"
            "delta": _delta(first, last) if len(results) > 1 else {},
        }
    report: dict[str, Any] = {
        "version": 1,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "module": module,
        "kind": kind,
        "primary": primary,
        "data": data.summary(),
        "k": ks,
        "settings": {**settings_dict, "source": f"training config ({module})"},
        "warnings": [*warnings, *data_notes(data.summary())],
        **extra,
        "modes": modes_out,
        "models": modes_out[primary]["models"],
        "delta": modes_out[primary]["delta"],
        "compared": [labels[0], labels[-1]],
        "seconds": round(time.perf_counter() - started, 3),
    }
    return report


def mode_summary(report: dict[str, Any], metric: str = "ndcg_at_10") -> list[dict[str, Any]]:
    """One row per mode: before, after and the change of one metric (CLI lines, cards, notes);
    with one model only, ``before`` and ``delta`` are None."""
    rows = []
    first, last = report.get("compared") or [None, None]
    for name, mode in (report.get("modes") or {}).items():
        models = mode.get("models") or {}
        if first not in models or last not in models:
            continue
        before, after = models[first].get(metric), models[last].get(metric)
        if before is None or after is None:
            continue
        if first == last:  # one model: no before, no change
            rows.append({"mode": name, "before": None, "after": after, "delta": None})
            continue
        rows.append({"mode": name, "before": before, "after": after, "delta": after - before})
    return rows


def summary_line(report: dict[str, Any], metric: str = "ndcg_at_10") -> str:
    """``nDCG@10 change: +0.0123`` (one line per mode for a module with several), for every face."""
    rows = mode_summary(report, metric) if len(report.get("modes") or {}) > 1 else []
    if rows:
        parts = [
            f"{r['mode']} {r['after']:.4f}"
            if r["delta"] is None
            else f"{r['mode']} {r['before']:.4f} -> {r['after']:.4f} ({r['delta']:+.4f})"
            for r in rows
        ]
        return "nDCG@10: " + "; ".join(parts)
    delta = (report.get("delta") or {}).get(metric)
    return f"nDCG@10 change: {delta:+.4f}" if delta is not None else ""


def compare_models(
    baseline: str | Path,
    model: str | Path,
    data: str | Path | EvalData,
    config=None,
    ks: Sequence[int] = DEFAULT_KS,
    base_dir: str | Path = ".",
    retriever: str | Path | None = None,
) -> dict[str, Any]:
    """A baseline and a fine-tuned model on held-out data, with one set of settings (the
    config's pooling, instructions and lengths where given): the report both faces show.

    With a config naming another module than the base embedder, each is scored that module's
    way (every score of the module; a reranker over ``retriever``'s top k, the bundled model by
    default).
    """
    from studio.core.config import resolve_model
    from studio.evaluation.modes import BASE

    if not str(model or "").strip():
        raise ValueError("Give the fine-tuned model's folder (a run's model/ or a checkpoint).")
    paths = {
        "baseline": resolve_model(str(baseline), Path(base_dir)),
        "fine-tuned": resolve_model(str(model), Path(base_dir)),
    }
    if not isinstance(data, EvalData):
        data = load_eval_data(data)
    if config is not None and module_of(config) != BASE:
        entries = [{"label": label, "path": path} for label, path in paths.items()]
        if retriever:
            retriever = resolve_model(str(retriever), Path(base_dir))
        return evaluate_for_module(entries, data, config, ks, retriever=retriever)
    settings, warnings = resolve_settings([paths["fine-tuned"], paths["baseline"]], config=config)
    results = evaluate_models(paths, data, settings, ks)
    return comparison_report(results, data, settings, warnings, details=True)
