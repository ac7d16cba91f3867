"""Retrieval evaluation: before/after metrics that can be trusted, and a model that loads elsewhere.

Modules, each owning one thing:

``data``      reading held-out data (BEIR or FlagEmbedding-custom layout), strictly
``settings``  pooling, normalization, instructions and lengths, from config or model
``encoder``   texts -> embeddings with plain transformers, as FlagEmbedding trains
``cache``     embeddings on disk keyed by model files, texts and settings
``search``    exact inner-product top-k with trec_eval's tie order
``metrics``   Recall/nDCG/MRR/MAP@k as trec_eval (pytrec_eval) defines them
``evaluate``  models x data -> EvalResult (the one entry point for every face)
``present``   comparison table, bar chart, per-query wins/losses, metrics over steps
``export``    sentence-transformers files and a model card in a fine-tuned model folder

The names below are importable from here; they load their module on first use, so importing
this package costs nothing (the CLI's ``--help`` must stay instant). A run's evaluation
(base, checkpoints, final model -> eval.json) is ``studio.training.run_eval``, and the command
line is ``studio.cli.evaluation``.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "EvalData": "data",
    "EvalDataError": "data",
    "load_eval_data": "data",
    "EncodeSettings": "settings",
    "settings_from_config": "settings",
    "settings_for_model": "settings",
    "EvalResult": "evaluate",
    "evaluate_model": "evaluate",
    "evaluate_models": "evaluate",
    "resolve_settings": "evaluate",
    "comparison_report": "evaluate",
    "comparison_table": "present",
    "bar_chart": "present",
    "per_query_table": "present",
    "metrics_over_steps": "present",
    "steps_table": "present",
    "export_sentence_transformers": "export",
    "ExportResult": "export",
    "query_metrics": "metrics",
    "score_rankings": "metrics",
    "DEFAULT_KS": "metrics",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'studio.evaluation' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"studio.evaluation.{module}"), name)
    globals()[name] = value
    return value
