"""`python -m studio eval`: score a model (and a baseline) on held-out data from the shell.

:func:`register` adds the subcommand to the studio's parser. Everything heavy is imported in
:func:`cmd_eval`, so ``python -m studio --help`` stays instant. Settings are taken, in order,
from the flags, ``--config``/``--run`` (the training config), a run folder the model sits in,
the models' sentence-transformers config, FlagEmbedding's defaults.

Examples::

    python -m studio eval --model runs/R/model --baseline bundled:all-MiniLM-L6-v2 \\
        --data example_data/eval --json out.json
    python -m studio eval --run runs/R            # base, checkpoints, final -> runs/R/eval.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "eval",
        help="retrieval metrics (Recall, nDCG, MRR, MAP @k) of a model vs a baseline",
        description="Score a model on held-out data (BEIR or FlagEmbedding layout) with exact "
        "search; with --baseline, side by side with the delta.",
    )
    p.add_argument("--model", help="model folder, checkpoint or bundled:all-MiniLM-L6-v2")
    p.add_argument("--baseline", help="a second model to compare against (e.g. the base model)")
    p.add_argument("--data", help="eval folder: corpus.jsonl + queries/qrels (BEIR or custom)")
    p.add_argument("--split", default="test", help="qrels split to read (default: test)")
    p.add_argument("--config", help="studio YAML whose pooling/instructions/lengths to use")
    p.add_argument(
        "--run",
        help="run folder: its training settings; alone, evaluates base, checkpoints and final "
        "model and writes RUN/eval.json",
    )
    p.add_argument("--pooling", choices=["cls", "mean", "last_token"])
    norm = p.add_mutually_exclusive_group()
    norm.add_argument("--normalize", dest="normalize", action="store_true", default=None)
    norm.add_argument("--no-normalize", dest="normalize", action="store_false")
    p.add_argument("--query-max-len", type=int)
    p.add_argument("--passage-max-len", type=int)
    p.add_argument("--query-instruction", help="e.g. 'Represent this sentence for searching: '")
    p.add_argument("--query-instruction-format", help="default {}{} (instruction, query)")
    p.add_argument("--passage-instruction")
    p.add_argument("--passage-instruction-format")
    p.add_argument(
        "--k", default="1,5,10,100", help="cutoffs, comma-separated (default 1,5,10,100)"
    )
    p.add_argument(
        "--retriever",
        help="rerankers: the first-stage embedder whose top k the reranker reorders "
        "(default: the bundled model; e.g. your fine-tuned embedder's model folder)",
    )
    p.add_argument(
        "--rerank-depth",
        type=int,
        metavar="K",
        help="rerankers: passages per query the first stage hands over (default 100)",
    )
    p.add_argument(
        "--m3-weights",
        metavar="D,S,C",
        help="BGE-M3: hybrid weights for dense, sparse and ColBERT (default 0.4,0.2,0.4)",
    )
    p.add_argument("--json", dest="json_out", help="write the results as JSON to this file")
    p.add_argument("--no-checkpoints", action="store_true", help="with --run: skip checkpoints")
    p.add_argument("--no-cache", action="store_true", help="re-encode even if cached")
    p.add_argument(
        "--per-query", type=int, default=0, metavar="N", help="also print the N largest wins/losses"
    )
    p.set_defaults(func=cmd_eval)
    return p


# The encoding settings the command line can override, each an option of the same name.
OVERRIDES = (
    "pooling",
    "normalize",
    "query_max_len",
    "passage_max_len",
    "query_instruction",
    "query_instruction_format",
    "passage_instruction",
    "passage_instruction_format",
)


def _overrides(args) -> dict:
    return {name: getattr(args, name) for name in OVERRIDES}


def cmd_eval(args) -> int:
    from studio.core.config import ConfigError
    from studio.evaluation.data import EvalDataError

    try:
        return _run(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(str(problem), file=sys.stderr)
        return 2
    except (EvalDataError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args) -> int:
    from studio.core import config as config_mod
    from studio.evaluation import present
    from studio.evaluation.data import data_notes, load_eval_data
    from studio.evaluation.evaluate import (
        EvalResult,
        comparison_report,
        evaluate_model,
        resolve_settings,
    )
    from studio.evaluation.metrics import parse_ks
    from studio.training.run_eval import evaluate_run, run_models

    ks = parse_ks(args.k)
    overrides = {k: v for k, v in _overrides(args).items() if v is not None}
    training_config = None
    if args.config:
        training_config = config_mod.load(args.config)
    if args.run:
        from studio.training.runs import load_run_config

        training_config = training_config or load_run_config(args.run)
    data_path = args.data or (training_config.studio.get("eval_data") if training_config else None)
    if not data_path:
        raise ValueError(
            "no eval data. Fix: pass --data DIR (or set studio.eval_data in the config)"
        )
    data = load_eval_data(data_path, args.split)
    _report_data(data)

    from studio.evaluation.modes import BASE, module_of, parse_weights

    weights = parse_weights(args.m3_weights) if args.m3_weights else None
    retriever = None
    if args.retriever:
        retriever = config_mod.resolve_model(args.retriever, Path.cwd())
    module = module_of(training_config)
    if args.run and not args.model and not overrides and args.config is None:
        report = evaluate_run(
            args.run,
            data,
            ks,
            include_checkpoints=not args.no_checkpoints,
            use_cache=not args.no_cache,
            retriever=retriever,
            top_k=args.rerank_depth,
            m3_weights=weights,
        )
        results = present.as_results(report)
    elif module != BASE:
        from studio.evaluation.module_eval import evaluate_for_module

        if not args.model and not args.run:
            raise ValueError("nothing to evaluate. Fix: pass --model PATH (or --run RUN_DIR)")
        entries = []
        baseline, model = args.baseline, args.model
        if args.run:
            run_list = run_models(args.run, include_checkpoints=False)
            baseline = baseline or run_list[0]["path"]
            model = model or run_list[-1]["path"]
        if baseline:
            entries.append({"label": "baseline", "path": baseline})
        entries.append({"label": "model", "path": model})
        report = evaluate_for_module(
            entries,
            data,
            training_config,
            ks,
            retriever=retriever,
            top_k=args.rerank_depth,
            m3_weights=weights,
            use_cache=not args.no_cache,
        )
        results = present.as_results(report)
    else:
        if not args.model and not args.run:
            raise ValueError("nothing to evaluate. Fix: pass --model PATH (or --run RUN_DIR)")
        models: dict[str, str] = {}
        baseline = args.baseline
        model = args.model
        if args.run:
            run_list = run_models(args.run, include_checkpoints=False)
            baseline = baseline or run_list[0]["path"]
            model = model or run_list[-1]["path"]
        if baseline:
            models["baseline"] = baseline
        models["model"] = model
        settings, warnings = resolve_settings(
            [model] + ([baseline] if baseline else []), training_config, overrides
        )
        results: dict[str, EvalResult] = {
            label: evaluate_model(
                path, data, settings, ks, label=label, use_cache=not args.no_cache
            )
            for label, path in models.items()
        }
        report = comparison_report(results, data, settings, warnings)
    shown = set(data_notes(data.summary()))  # printed as the data was read
    for w in present.report_notes(report):
        if w not in shown:
            print(f"warning: {w}", file=sys.stderr)
    print(f"settings: {_settings_line(report['settings'])}", file=sys.stderr)
    if report.get("modes"):
        print(f"module: {report['module']}", file=sys.stderr)
        if report.get("retriever"):
            print(f"first stage: {report['retriever']} (top {report['top_k']})", file=sys.stderr)
        table = present.modes_table(report)
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    else:
        table = present.comparison_table(results)
        print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    if args.per_query and len(results) >= 2:
        labels = list(results)
        frame = present.per_query_table(
            results[labels[0]], results[labels[-1]], data, n=args.per_query
        )
        print()
        print(frame.drop(columns=[c for c in frame.columns if c.endswith("top hits")]).to_string())
    if args.json_out:
        out = Path(args.json_out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {out}", file=sys.stderr)
    return 0


def _report_data(data) -> None:
    """The data line and every data-consistency count (the same lines the other faces show)."""
    from studio.evaluation.data import data_notes

    s = data.summary()
    print(
        f"data: {s['path']} ({s['layout']}): {s['n_queries']} queries, {s['n_corpus']} passages",
        file=sys.stderr,
    )
    for note in data_notes(s):
        print(f"note: {note}", file=sys.stderr)


def _settings_line(settings: dict) -> str:
    if "pooling" not in settings:  # a reranker: pair lengths and instructions
        shown = {k: v for k, v in settings.items() if k != "source" and v is not None}
        return " ".join(f"{k}={v!r}" for k, v in shown.items()) + f" (from {settings['source']})"
    parts = [
        f"pooling={settings['pooling']}",
        f"normalize={settings['normalize']}",
        f"query_max_len={settings['query_max_len']}",
        f"passage_max_len={settings['passage_max_len']}",
    ]
    if settings.get("query_instruction") is not None:
        parts.append(f"query_instruction={settings['query_instruction']!r}")
    if settings.get("passage_instruction") is not None:
        parts.append(f"passage_instruction={settings['passage_instruction']!r}")
    return " ".join(parts) + f" (from {settings['source']})"
