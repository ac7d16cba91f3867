"""`python -m studio merge`: LM-Cocktail mixes of a fine-tuned model and its base, evaluated.

Example::

    python -m studio merge --base bundled:all-MiniLM-L6-v2 --model runs/R/model \\
        --weights 0,0.5,1 --data held-out/ --general example_data/eval --json merge.json \\
        --export my-merged-model
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "merge",
        help="LM-Cocktail: mix a fine-tuned model with its base at several weights, evaluate each",
        description="Average the fine-tuned model's weights with the base's "
        "(w * fine-tuned + (1 - w) * base) for each weight, evaluate every mix on the held-out "
        "set (and a general set), and optionally export the chosen mix.",
    )
    p.add_argument("--base", required=True, help="the base model (e.g. bundled:all-MiniLM-L6-v2)")
    p.add_argument("--model", required=True, help="the fine-tuned model folder")
    p.add_argument("--weights", default="0,0.5,1", help="fine-tuned shares, e.g. 0,0.25,0.5,1")
    p.add_argument("--data", required=True, help="held-out eval folder (as for `studio eval`)")
    p.add_argument("--general", help="a second, general eval folder to watch for lost ability")
    p.add_argument("--config", help="the training config (pooling, instructions, lengths)")
    p.add_argument("--out", help="folder for the mixes (default: merges/ beside the model)")
    p.add_argument("--force", action="store_true", help="replace mixes already in --out")
    p.add_argument("--k", default="1,5,10,100", help="cutoffs (default 1,5,10,100)")
    p.add_argument("--metric", default="ndcg_at_10", help="metric that picks the best mix")
    p.add_argument("--json", dest="json_out", help="write the report (one entry per mix) here")
    p.add_argument("--export", help="copy the chosen mix (best held-out, or --pick) here")
    p.add_argument("--pick", type=float, help="the weight to export instead of the best")
    p.set_defaults(func=cmd_merge)
    return p


def cmd_merge(args) -> int:
    from studio.evaluation import merge
    from studio.evaluation.data import EvalDataError
    from studio.evaluation.metrics import parse_ks

    try:
        weights = merge.parse_weights(args.weights)
        ks = parse_ks(args.k)
        out = Path(args.out) if args.out else Path(args.model).parent / "merges"
        merge.check_destinations(weights, args.export, args.pick, args.json_out)
        report = merge.sweep(
            args.base,
            args.model,
            weights,
            args.data,
            out,
            general_data=args.general,
            config=args.config,
            ks=ks,
            metric=args.metric,
            overwrite=args.force,
        )
        exported = merge.export_mix(report, args.export, args.pick) if args.export else None
    except (ValueError, FileNotFoundError, FileExistsError, EvalDataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(report.lines()))
    if exported is not None:
        print(f"exported {exported}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
        print(f"wrote {args.json_out}", file=sys.stderr)
    return 0
