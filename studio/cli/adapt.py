"""`python -m studio adapt CORPUS --from title|crop|llm --out RUNS_DIR`: documents to a model.

Parses, calls :func:`studio.app.adapt.adapt`, prints each step as it goes and, last, the table
of candidates, the verdict and ``exported: PATH``. Exit 0 when the exported model beats the
base on the held-out split, 1 when it does not (the base is exported and the last lines say
so), 2 when a step could not run.
"""

from __future__ import annotations

import argparse
import sys

from studio.cli import llm_options


def cmd_adapt(args) -> int:
    from studio.app.adapt import AdaptError, adapt

    cfg = None
    if args.config:
        from studio.core import config as config_mod

        try:
            cfg = config_mod.load(args.config)
        except config_mod.ConfigError as exc:
            for p in exc.problems:
                print(str(p), file=sys.stderr)
            return 2
    llm = None
    if args.method == "llm":
        try:
            llm = llm_options.settings(args, "--llm-model")
        except (ValueError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    try:
        result = adapt(
            args.corpus,
            args.out,
            args.method,
            model=args.model,
            max_steps=args.max_steps,
            heldout=args.heldout,
            base_config=cfg,
            llm=llm,
            restart=args.restart,
            say=lambda line: print(line, flush=True),
        )
    except (AdaptError, FileNotFoundError, FileExistsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print()
    print("\n".join(result.lines()))
    return 0 if result.beat_base else 1


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "adapt",
        help="documents -> pairs -> mined negatives -> held-out split -> train -> best model",
        description="From a folder of documents (or a BEIR corpus.jsonl) to the best of base, "
        "checkpoints and merges with the base, by held-out nDCG@10. Each step is kept in "
        "OUT/adapt-NAME and reused when run again.",
    )
    p.add_argument("corpus", help="a BEIR corpus.jsonl (or its folder), or a folder of .txt/.md")
    p.add_argument("--from", dest="method", choices=["title", "crop", "llm"], required=True)
    p.add_argument("--out", required=True, help="the folder for the flow's files and run")
    p.add_argument("--model", default="bundled:all-MiniLM-L6-v2", help="the model to fine-tune")
    p.add_argument("--max-steps", type=int, default=150)
    p.add_argument("--heldout", type=int, help="documents held out (default: a fifth, <= 200)")
    p.add_argument("--config", help="training settings to start from (default: the quickstart)")
    p.add_argument("--restart", action="store_true", help="start the flow over in that folder")
    llm_options.add(p, "--llm-model")
    p.set_defaults(func=cmd_adapt)
    return p
