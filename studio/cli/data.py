"""`python -m studio data ...`: the command-line face of the data workbench.

`register(subparsers)` adds the `data` command with `check`, `stats`, `preview`, `lengths`,
`split`, `convert`, `mine`, `score`, `pairs` and `difficulty` beneath it; `studio.cli.commands` calls it.
Each handler parses, calls one core function, prints what came back and returns the exit code
(`data check` returns 1 on errors).
Only this module prints. Heavy imports happen inside the handlers, so `--help` answers at once.
"""

from __future__ import annotations

import argparse
import json
import sys

from studio.cli import llm_options
from studio.facts.problems import ERROR, WARNING, Problem


def _print_problems(problems: list[Problem], stream=None) -> None:
    stream = stream or sys.stdout
    for p in problems:
        print(str(p), file=stream)


def _config(args):
    """The config named by --config with its paths resolved against --base-dir, or None."""
    if not getattr(args, "config", None):
        return None
    from studio.core import config

    try:
        cfg = config.load(args.config)
    except config.ConfigError as exc:
        _print_problems(exc.problems, sys.stderr)
        raise SystemExit(2) from None
    try:
        return config.resolve_paths(cfg, args.base_dir)
    except config.ConfigError as exc:
        _print_problems(exc.problems, sys.stderr)
        raise SystemExit(2) from None


def _paths(args, cfg) -> list[str]:
    if args.paths:
        return list(args.paths)
    if cfg is not None and cfg.args.get("train_data"):
        return list(cfg.args["train_data"])
    print("error: give data files or folders, or --config with `train_data`", file=sys.stderr)
    raise SystemExit(2)


def _table(rows: list[dict]) -> str:
    if not rows:
        return ""
    headers = list(rows[0])
    cells = [[str(r[h]) for h in headers] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def cmd_check(args) -> int:
    from studio.datawork.check import check_paths

    cfg = _config(args)
    kd = args.kd or bool(cfg is not None and cfg.get("knowledge_distillation"))
    report = check_paths(
        _paths(args, cfg),
        knowledge_distillation=kd,
        max_examples_per_kind=args.examples,
        train_group_size=cfg.get("train_group_size") if cfg is not None else None,
        max_bytes=int(args.max_mb * 1_000_000) if args.max_mb else None,
    )
    extra: list[Problem] = []
    if cfg is not None:
        from studio.datawork.instructions import format_warnings

        extra = format_warnings(cfg, report)
    problems = report.problems + extra
    if args.json:
        print(
            json.dumps(
                {
                    "rows": report.rows,
                    "files": [f.file for f in report.files],
                    "counts": report.counts,
                    "problems": [p.to_dict() for p in problems],
                },
                indent=2,
                ensure_ascii=False,
            )
        )
    else:
        _print_problems(problems)
        if report.counts:
            print()
            print(_table(report.table()))
        errors = report.error_count + sum(p.level == ERROR for p in extra)
        warnings = report.warning_count + sum(p.level == WARNING for p in extra)
        print(
            f"\n{report.rows:,} rows in {len(report.files)} file(s) checked in "
            f"{report.seconds:.1f} s: {errors:,} error(s), {warnings:,} warning(s)"
        )
    return 1 if report.has_errors or any(p.level == ERROR for p in extra) else 0


def cmd_stats(args) -> int:
    from studio.core.config import StudioConfig
    from studio.datawork.check import check_paths
    from studio.datawork.stats import stats

    cfg = _config(args) or StudioConfig()
    report = check_paths(
        _paths(args, cfg),
        knowledge_distillation=bool(cfg.get("knowledge_distillation")),
        train_group_size=cfg.get("train_group_size"),
    )
    result = stats(report, cfg, eval_queries=args.eval)
    if args.json:
        print(json.dumps(result.summary, indent=2))
        return 0
    print(result.files.to_string(index=False))
    print()
    for key, value in result.summary.items():
        print(f"{key:28} {value:,.2f}" if isinstance(value, float) else f"{key:28} {value}")
    print("\nnegatives per row:")
    print(result.negatives.to_string(index=False))
    if report.error_count:
        print(f"\n{report.error_count:,} error(s) in the data: run `python -m studio data check`")
    if result.problems:
        print()
        _print_problems(result.problems)
    return 0


def cmd_preview(args) -> int:
    from studio.core.config import StudioConfig
    from studio.datawork.instructions import format_warnings, preview

    cfg = _config(args) or StudioConfig()
    paths = _paths(args, cfg)
    for row in preview(cfg, args.n, paths=paths, seed=args.seed):
        print(f"--- {row.file}:{row.line}  ({row.rule})")
        print(f"query:    {row.query!r}")
        if row.positives:
            print(f"positive: {row.positives[0][:300]!r}")
        for neg in row.negatives[:2]:
            print(f"negative: {neg[:300]!r}")
        if len(row.negatives) > 2:
            print(f"          ... {len(row.negatives) - 2} more negative(s)")
        for note in row.notes:
            print(f"note:     {note}")
    problems = format_warnings(cfg.with_args(train_data=paths))
    if problems:
        print()
        _print_problems(problems)
    return 1 if any(p.level == ERROR for p in problems) else 0


def cmd_lengths(args) -> int:
    from studio.core.config import StudioConfig
    from studio.datawork.tokens import token_lengths

    cfg = _config(args) or StudioConfig()
    if args.model:
        cfg = cfg.with_args(model_name_or_path=args.model)
    if not cfg.get("model_name_or_path"):
        print("error: give --model or --config (for its model)", file=sys.stderr)
        return 2
    result = token_lengths(
        cfg,
        sample_size=args.sample,
        seed=args.seed,
        paths=_paths(args, cfg),
        base_dir=args.base_dir or ".",
    )
    print(f"token lengths with {result.model} ({result.description()})")
    print(result.table().to_string(index=False))
    if args.html:
        result.figure().write_html(args.html, include_plotlyjs="cdn")
        print(f"wrote {args.html}")
    return 0


def cmd_split(args) -> int:
    from studio.datawork.split import split

    try:
        result = split(
            args.path,
            args.out,
            args.n_queries,
            args.seed,
            distractors=args.distractors,
            corpus=args.corpus,
            qrels_split=args.split,
            min_grade=args.min_grade,
        )
    except (FileExistsError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _print_result(result, 14)
    return 0


def cmd_convert(args) -> int:
    from studio.datawork.convert import convert

    encoder = None
    try:
        low, high = (int(x) for x in args.range.split("-"))
    except ValueError:
        print(f"error: --range wants FROM-TO, e.g. 10-100, got {args.range!r}", file=sys.stderr)
        return 2
    if args.model:
        from studio.datawork.encoder import Encoder

        options = {"pooling": args.pooling} if args.pooling else {}
        encoder = Encoder(args.model, **options)
    try:
        result = convert(
            args.folder,
            args.out,
            split=args.split,
            min_grade=args.min_grade,
            encoder=encoder,
            mine_range=(low, high),
            negatives=args.n,
        )
    except (FileExistsError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _print_result(result, 24)
    return 0


def _print_result(result, width: int, decimals: int | None = None) -> None:
    """What split, mine and score print when they succeed: the result's summary, one aligned
    ``key value`` line each (floats to ``decimals`` places when given), then its problems."""
    for key, value in result.summary().items():
        if decimals is not None and isinstance(value, float):
            value = f"{value:.{decimals}f}"
        print(f"{key:{width}} {value}")
    _print_problems(result.problems)


def _progress(stage: str, done: int, total: int) -> None:
    end = "\n" if done >= total else ""
    print(f"\r{stage}: {done:,}/{total:,}", end=end, file=sys.stderr, flush=True)


def cmd_mine(args) -> int:
    from studio.datawork.encoder import Encoder
    from studio.datawork.mining import mine

    cfg = _config(args)
    try:
        low, high = (int(x) for x in args.range.split("-"))
    except ValueError:
        print(f"error: --range wants FROM-TO, e.g. 10-100, got {args.range!r}", file=sys.stderr)
        return 2
    if cfg is None and not args.model:
        print("error: give --model or --config (for its model and pooling)", file=sys.stderr)
        return 2
    options = {"batch_size": args.batch_size}
    if args.max_length:
        options["max_length"] = args.max_length
    if args.pooling:
        options["pooling"] = args.pooling
    if cfg is not None:
        if args.model:
            cfg = cfg.with_args(model_name_or_path=args.model)
        encoder = Encoder.from_config(cfg, args.base_dir, **options)
    else:
        encoder = Encoder(args.model, **options)
    try:
        result = mine(
            args.path,
            args.out,
            encoder,
            low,
            high,
            args.n,
            candidate_pool=args.pool,
            only_rows_lacking=not args.all_rows,
            min_negatives=args.min_negatives,
            max_neg_ratio=args.max_neg_ratio,
            config=cfg,
            seed=args.seed,
            progress=_progress,
        )
    except (FileExistsError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _print_result(result, 16, decimals=1)
    return 0


def cmd_score(args) -> int:
    from studio.datawork.score import kd_settings_text, make_scorer, score_file

    cfg = _config(args)
    model = args.model or (cfg.get("model_name_or_path") if cfg is not None else None)
    if not model:
        print("error: give --model (a reranker or an embedder) or --config", file=sys.stderr)
        return 2
    try:
        scorer = make_scorer(model, cfg, args.base_dir, temperature=args.temperature)
        result = score_file(
            args.path,
            args.out,
            scorer,
            rows_per_batch=args.batch_rows,
            progress=_progress,
            restart=args.restart,
        )
    except (FileNotFoundError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _print_result(result, 16)
    print("\nTo distil from these scores, set in your config:")
    print(kd_settings_text(result.out_path), end="")
    return 0


def _word_range(text: str, flag: str) -> tuple[int, int]:
    try:
        low, high = (int(x) for x in text.split("-"))
    except ValueError:
        raise ValueError(f"{flag} wants FROM-TO words, e.g. 8-24, got {text!r}") from None
    return low, high


def cmd_pairs(args) -> int:
    """Training pairs from documents: `title` and `crop` at once, `llm` streamed and resumable."""
    from studio.datawork import llm_pairs, pairs

    try:
        if args.method == "llm":
            settings = llm_options.settings(args)
            if args.dry_run:
                for i, text in enumerate(llm_pairs.dry_run(args.corpus, settings, args.dry_run), 1):
                    print(f"--- prompt {i} ---\n{text}")
                print("(dry run: nothing was sent)")
                return 0
            result = llm_pairs.llm_pairs(
                args.corpus,
                args.out,
                settings,
                restart=args.restart,
                limit=args.limit,
                progress=_eta_progress,
            )
        else:
            crop = pairs.CropSettings(
                query_words=_word_range(args.query_words, "--query-words"),
                passage_words=_word_range(args.passage_words, "--passage-words"),
                per_document=args.per_document,
                seed=args.seed,
            )
            result = pairs.make_pairs(
                args.corpus, args.out, args.method, crop=crop, limit=args.limit, force=args.force
            )
    except (FileExistsError, FileNotFoundError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (llm_pairs.EndpointError, ConnectionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        print("Rerun the same command to resume: nothing written is lost.", file=sys.stderr)
        return 1
    _print_result(result, 14)
    return 1 if result.method == "llm" and result.failed else 0


def _eta_progress(done: int, total: int, eta: float | None) -> None:
    left = "" if eta is None else f", about {eta:,.0f} s left"
    end = "\n" if done >= total else ""
    print(f"\rpairs: {done:,}/{total:,} documents{left}   ", end=end, file=sys.stderr, flush=True)


def cmd_difficulty(args) -> int:
    """Score positives and negatives with the model to train; flag too easy and false ones."""
    from studio.datawork import difficulty
    from studio.datawork.encoder import Encoder

    cfg = _config(args)
    if cfg is None and not args.model:
        print("error: give --model or --config (for its model and pooling)", file=sys.stderr)
        return 2
    options = {"max_length": args.max_length} if args.max_length else {}
    common = {"sample_size": args.sample, "ratio": args.max_neg_ratio}
    try:
        if cfg is not None:
            report = difficulty.for_config(
                _paths(args, cfg),
                cfg,
                args.base_dir,
                model=args.model,
                temperature=args.temperature,
                **common,
                **options,
            )
        else:
            report = difficulty.difficulty(
                _paths(args, cfg),
                Encoder(args.model, **options),
                temperature=args.temperature or 0.02,
                **common,
            )
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for key, value in report.summary().items():
        print(f"{key:24} {value}")
    _print_problems(report.problems)
    if args.html:
        report.figure().write_html(args.html, include_plotlyjs="cdn")
        print(f"wrote {args.html}")
    return 0


def register(subparsers) -> argparse.ArgumentParser:
    """Add `data` and its subcommands to a `subparsers` object of the studio's CLI."""
    data = subparsers.add_parser(
        "data",
        help="check, describe, preview, split training data and mine hard negatives",
        description="The data workbench: everything here reads the data as FlagEmbedding does.",
    )
    sub = data.add_subparsers(dest="data_cmd", required=True)

    def common(p, paths: str = "*") -> None:
        p.add_argument(
            "paths", nargs=paths, help="data files or folders (default: the config's train_data)"
        )
        p.add_argument("--config", help="a studio config (YAML) to read settings from")
        p.add_argument(
            "--base-dir", default=".", help="folder the config's relative paths are read from"
        )

    p = sub.add_parser("check", help="check every line; exit 1 on errors")
    common(p)
    p.add_argument(
        "--kd", action="store_true", help="check teacher scores (knowledge distillation)"
    )
    p.add_argument("--examples", type=int, default=5, help="examples shown per kind of problem")
    p.add_argument(
        "--max-mb",
        type=float,
        default=None,
        help="check each file only up to its first N MB, and say so (default: every line)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("stats", help="rows, negatives, duplicates, leakage, steps per epoch")
    common(p)
    p.add_argument("--eval", help="evaluation set (BEIR folder or queries file) to check leakage")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("preview", help="the exact query and passage text the model will see")
    common(p)
    p.add_argument("-n", type=int, default=3, help="rows to show")
    p.add_argument("--seed", type=int, help="show a random sample instead of the first rows")
    p.set_defaults(func=cmd_preview)

    p = sub.add_parser("lengths", help="token lengths with the model's tokenizer")
    common(p)
    p.add_argument("--model", help="model whose tokenizer to use (default: the config's)")
    p.add_argument("--sample", type=int, default=2000, help="rows measured on large data")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--html", help="also write the histogram to this HTML file")
    p.set_defaults(func=cmd_lengths)

    p = sub.add_parser("split", help="hold out an evaluation set (BEIR layout)")
    p.add_argument("path", help="a JSON Lines training file, or a BEIR folder")
    p.add_argument("--out", required=True, help="folder for train.jsonl and eval/")
    p.add_argument("--n-queries", type=int, required=True, help="queries to hold out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--corpus", help="the collection the rows come from (BEIR corpus.jsonl): joins the eval set"
    )
    p.add_argument(
        "--distractors",
        type=int,
        help="a seeded sample of this many pool passages instead of the whole pool (easier)",
    )
    p.add_argument("--split", help="a BEIR folder's qrels split (default: train, else the only)")
    p.add_argument(
        "--min-grade", type=int, default=1, help="BEIR: the grade a training positive needs"
    )
    p.set_defaults(func=cmd_split)

    p = sub.add_parser("convert", help="turn a BEIR folder's judgments into training rows")
    p.add_argument("folder", help="a BEIR folder: corpus.jsonl, queries.jsonl, qrels/*.tsv")
    p.add_argument("--out", required=True, help="the JSON Lines file to write (never overwritten)")
    p.add_argument("--split", help="qrels split to read (default: train, else the only one)")
    p.add_argument(
        "--min-grade",
        type=int,
        default=1,
        help="passages graded this or more are positives (default 1); graded 0 are negatives",
    )
    p.add_argument(
        "--model", help="mine negatives from the corpus in the same step, with this model"
    )
    p.add_argument("--pooling", choices=["cls", "mean", "last_token"], help="with --model")
    p.add_argument("--range", default="10-100", help="with --model: ranks to sample from")
    p.add_argument("--n", type=int, default=15, help="with --model: negatives per row")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("mine", help="mine hard negatives into a new file")
    p.add_argument("path", help="a JSON Lines training file (never overwritten)")
    p.add_argument("--out", required=True, help="the new file to write")
    p.add_argument("--config", help="take model, pooling and query instruction from a config")
    p.add_argument(
        "--base-dir", default=".", help="folder the config's relative paths are read from"
    )
    p.add_argument("--model", help="model folder, hub id or bundled:all-MiniLM-L6-v2")
    p.add_argument("--pooling", choices=["cls", "mean", "last_token"])
    p.add_argument("--range", default="10-100", help="ranks to sample from (0 = nearest)")
    p.add_argument("--n", type=int, default=15, help="negatives per row")
    p.add_argument("--pool", help="corpus JSONL (`text` per line); default: the data's passages")
    p.add_argument("--all-rows", action="store_true", help="re-mine every row, replacing `neg`")
    p.add_argument("--min-negatives", type=int, default=1, help="rows with fewer are mined")
    p.add_argument(
        "--max-neg-ratio",
        type=float,
        help="drop candidates scoring at least this share of the row's positive (e.g. 0.95): "
        "likely false negatives",
    )
    p.add_argument("--max-length", type=int, help="tokens per text when encoding")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_mine)

    p = sub.add_parser("score", help="add teacher scores (pos_scores/neg_scores) for distillation")
    p.add_argument("path", help="a JSON Lines training file (never overwritten)")
    p.add_argument("--out", required=True, help="the scored file; re-run to resume it")
    p.add_argument(
        "--model", help="a cross-encoder reranker, or an embedder (default: the config's model)"
    )
    p.add_argument("--config", help="the training config (pooling, instructions, temperature)")
    p.add_argument(
        "--base-dir", default=".", help="folder the config's relative paths are read from"
    )
    p.add_argument(
        "--temperature", type=float, help="embedder scores are similarity / this (default 0.02)"
    )
    p.add_argument("--batch-rows", type=int, default=32, help="rows scored and written at once")
    p.add_argument(
        "--restart",
        action="store_true",
        help="score from the start, replacing --out (by default a re-run resumes it, and only "
        "when it was scored from this input with these settings)",
    )
    p.set_defaults(func=cmd_score)

    p = sub.add_parser(
        "pairs",
        help="training pairs from documents (title, random crops or LLM questions)",
        description="Queries for a BEIR corpus.jsonl or a folder of text files: the title, two "
        "random spans (Contriever's cropping) or questions an LLM writes. Rows keep their doc_id "
        "and have no negatives yet: mine them next.",
    )
    p.add_argument("corpus", help="a BEIR corpus.jsonl (or its folder), or a folder of .txt/.md")
    p.add_argument("--from", dest="method", choices=["title", "crop", "llm"], required=True)
    p.add_argument("--out", required=True, help="the pairs file (JSON Lines)")
    p.add_argument("--limit", type=int, help="only the first N documents")
    p.add_argument("--force", action="store_true", help="title/crop: replace an existing --out")
    g = p.add_argument_group("crop")
    g.add_argument("--query-words", default="8-24", help="query span length in words, FROM-TO")
    g.add_argument("--passage-words", default="48-160", help="positive span length, FROM-TO")
    g.add_argument("--per-document", type=int, default=1, help="pairs per document")
    g.add_argument("--seed", type=int, default=0)
    llm_options.add(p)
    g = p.add_argument_group("llm: resume or preview")
    g.add_argument("--restart", action="store_true", help="start over instead of resuming")
    g.add_argument(
        "--dry-run",
        type=int,
        nargs="?",
        const=3,
        default=0,
        metavar="N",
        help="print the first N prompts (default 3) and send nothing",
    )
    p.set_defaults(func=cmd_pairs)

    p = sub.add_parser(
        "difficulty",
        help="how hard the negatives are: too easy (loss ~0) or likely false negatives",
    )
    common(p)
    p.add_argument("--model", help="the model to train (default: the config's)")
    p.add_argument("--max-length", type=int, help="tokens per text (default: passage_max_len)")
    p.add_argument("--temperature", type=float, help="default: the config's, else 0.02")
    p.add_argument("--sample", type=int, default=1000, help="rows scored (a random sample)")
    p.add_argument(
        "--max-neg-ratio",
        type=float,
        default=0.95,
        help="a negative scoring at least this share of its positive is a likely false one",
    )
    p.add_argument("--html", help="also write the score histogram to this HTML file")
    p.set_defaults(func=cmd_difficulty)
    return data
