"""`python -m studio`: the command-line face over the studio core.

Each subcommand is a few lines: parse, call a core function, print what it returned. Heavy
libraries (torch, transformers, FlagEmbedding) are imported only by the subcommands that
need them, so `--help` and `check` answer at once.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from studio.facts.problems import ERROR, Problem
from studio.facts.runfolder import RunFolder, RunState, state_of


def _print_problems(problems: list[Problem], stream=None) -> None:
    stream = stream or sys.stdout  # looked up now: a captured or redirected stdout is used
    for p in problems:
        print(str(p), file=stream)
    counts = {level: sum(p.level == level for p in problems) for level in ("error", "warning")}
    print(f"{counts['error']} error(s), {counts['warning']} warning(s)", file=stream)


def _load_config(path: str):
    from studio.core import config

    try:
        return config.load(path)
    except config.ConfigError as exc:
        _print_problems(exc.problems, sys.stderr)
        raise SystemExit(2) from None


def _clear_stale_locks(args) -> None:
    """`--clear-stale-locks`: the user agrees to remove DeepSpeed build locks nobody holds."""
    if not getattr(args, "clear_stale_locks", False):
        return
    from studio.core.buildlocks import clear_stale_locks

    removed = clear_stale_locks()
    for path in removed:
        print(f"removed stale build lock {path}", file=sys.stderr)
    if not removed:
        print("no stale build lock found", file=sys.stderr)


def cmd_check(args) -> int:
    from studio.checks import preflight

    _clear_stale_locks(args)
    problems = preflight.run_checks(_load_config(args.config), args.base_dir)
    _print_problems(problems)
    return 1 if any(p.level == ERROR for p in problems) else 0


def cmd_command(args) -> int:
    from studio.core import command, config, deepspeed_config

    cfg = _load_config(args.config)
    try:  # the paths the run will read, wherever this is started from
        cfg = config.resolve_paths(cfg, args.base_dir)
    except config.ConfigError as exc:
        _print_problems(exc.problems, sys.stderr)
        return 2
    script = command.render_script(cfg)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        target = out / "command.sh"
        if target.exists() and not args.force:
            print(f"error: {target} exists; pass --force to replace it", file=sys.stderr)
            return 2
        target.write_text(script, encoding="utf-8")
        target.chmod(0o755)
        ds = deepspeed_config.resolve(cfg.deepspeed)
        if ds is not None:
            (out / deepspeed_config.DS_FILE_NAME).write_text(deepspeed_config.dumps(ds))
            for path in deepspeed_config.secret_paths(ds):
                print(
                    f"warning: `{path}` of the DeepSpeed JSON looks like a secret; it is written "
                    "as ***. Fix: remove it and set it in the environment instead.",
                    file=sys.stderr,
                )
        print(f"wrote {target}", file=sys.stderr)
    sys.stdout.write(script)
    return 0


def cmd_import_script(args) -> int:
    from studio.checks.script_import import import_script
    from studio.core import config

    path = Path(args.script)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        print(f"error: cannot read {path}: {exc.strerror}. Fix: check the path.", file=sys.stderr)
        return 2
    except UnicodeDecodeError:
        print(
            f"error: {path} is not a text (UTF-8) file. Fix: give the shell script that "
            "launches the training.",
            file=sys.stderr,
        )
        return 2
    result = import_script(text, base_dir=args.base_dir or path.parent, file=str(path))
    _print_problems(result.problems)
    try:
        config.save(config.record_base(result.config, args.out), args.out, overwrite=args.force)
    except FileExistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    bad = sum(p.level == ERROR for p in result.problems)
    if bad:  # the config is written so it can be fixed, but the import did not succeed
        print(
            f"error: the script has {bad} error(s) (above); {args.out} holds them as the script "
            "had them. Fix them there (or in the script and import again) before training.",
            file=sys.stderr,
        )
        return 1
    return 0


def _progress_line(record: dict | None, started: float, status: dict | None = None) -> str:
    if not record:
        from studio.facts.runfolder import phase_text

        return phase_text(status or {}) or f"starting... {time.time() - started:5.0f}s"
    step, total = record.get("step", 0), record.get("max_steps") or 0
    width = 30
    done = int(width * step / total) if total else 0
    eta = record.get("eta_s")
    eta_text = f" eta {eta:5.0f}s" if isinstance(eta, int | float) else ""
    return (
        f"[{'#' * done}{'.' * (width - done)}] {step}/{total} "
        f"loss {record.get('loss', float('nan')):.4f}{eta_text}"
    )


def cmd_train(args) -> int:
    from studio.training import runs
    from studio.training.runlog import last_metrics

    cfg = _load_config(args.config)
    _clear_stale_locks(args)
    try:
        run_dir = runs.start(cfg, args.runs_dir, args.base_dir)
    except runs.PreflightFailed as exc:
        _print_problems(exc.problems, sys.stderr)
        return 1
    print(f"run folder: {run_dir}", file=sys.stderr)
    started = time.time()
    interactive = sys.stderr.isatty()
    shown = None
    metrics = RunFolder(run_dir).metrics
    try:
        while True:
            status = runs.refresh(run_dir)
            record = last_metrics(metrics)
            line = _progress_line(record, started, status)
            if interactive:
                print("\r" + line.ljust(79), end="", file=sys.stderr, flush=True)
            elif (record and record.get("step")) != shown or (
                not record and status.get("phase") != shown
            ):  # a log file gets one line a step (a phase before the first step)
                shown = record.get("step") if record else status.get("phase")
                print(line, file=sys.stderr, flush=True)
            if state_of(status) is not RunState.RUNNING:
                break
            time.sleep(1.0)
    except KeyboardInterrupt:
        print("\nstopping...", file=sys.stderr)
        status = runs.stop(run_dir)
    print(file=sys.stderr)
    print(f"{status.get('state')}: {run_dir}", file=sys.stderr)
    _print_reason(status)
    _print_health(run_dir)
    failures = _print_after_training(run_dir, status)
    _print_outcome(run_dir)
    print(run_dir)
    return 0 if state_of(status) is RunState.SUCCEEDED and not failures else 1


def _print_after_training(run_dir: Path, status: dict) -> list[str]:
    """The evaluation or export that failed after a finished training, last (not only in
    status.json); the caller exits non-zero when there is one."""
    from studio.app.views import after_training_failures

    failures = after_training_failures(run_dir, status)
    for line in failures:
        print(f"error: {line}", file=sys.stderr)
    return failures


def _print_outcome(run_dir: Path) -> None:
    """What the run summary says about the outcome (studio.best_model): the export chosen, a
    fine-tuned model below the base and the merge command, in the last lines."""
    from studio.training.best_model import outcome_lines
    from studio.training.run_eval import read_run_eval

    for line in outcome_lines(run_dir, read_run_eval(run_dir)):
        prefix = "" if line.startswith("exported:") else "warning: "
        print(prefix + line.replace("`", ""), file=sys.stderr)


def cmd_export(args) -> int:
    from studio.app import actions

    ws = actions.Workspace.at(args.runs_dir, args.base_dir)
    try:
        actions.export_run(ws, args.run, args.checkpoint)
        run_dir = actions.find_run(ws, args.run)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    _print_outcome(run_dir)
    return 0


def _print_reason(status: dict) -> None:
    """The failure's reason and the last lines of this attempt's log."""
    if status.get("error"):
        print(f"error: {status['error']}", file=sys.stderr)
    if status.get("log_tail"):
        print("last lines of this attempt's log:", file=sys.stderr)
        print(status["log_tail"], file=sys.stderr)


def _print_health(run_dir: Path) -> None:
    """The run's loss warnings and the steps the fp16 loss scaler skipped (studio.loss_health)."""
    from studio.training.loss_health import skip_line, warning_lines

    for warning in warning_lines(run_dir):
        print(f"warning: {warning}", file=sys.stderr)
    skips = skip_line(run_dir)
    if skips:
        print(f"note: {skips}", file=sys.stderr)


def cmd_runs(args) -> int:
    from studio.training import runs

    rows = [r.row() for r in runs.list_runs(args.runs_dir)]
    if not rows:
        print(f"no runs in {Path(args.runs_dir).resolve()}")
        return 0
    headers = ["name", "status", "step", "last_loss", "started"]
    table = [
        [
            ("" if r[h] is None else f"{r[h]:.4f}" if h == "last_loss" else str(r[h]))
            for h in headers
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    return 0


def _find_run(args) -> Path | None:
    """The run folder named on the command line, or None after saying where it looked."""
    from studio.training import runs

    try:
        return runs.find_run(args.run, args.runs_dir)
    except FileNotFoundError as exc:
        print(
            f"error: {exc}. Fix: give a run name from `python -m studio runs --runs-dir "
            f"{args.runs_dir}`, or the run's folder.",
            file=sys.stderr,
        )
        return None


def cmd_stop(args) -> int:
    from studio.training import runs

    run_dir = _find_run(args)
    if run_dir is None:
        return 2
    status = runs.stop(run_dir)
    print(status.get("state"))
    _print_reason(status)
    return 0


def cmd_resume(args) -> int:
    from studio.training import runs

    _clear_stale_locks(args)
    run_dir = _find_run(args)
    if run_dir is None:
        return 2
    try:
        adopted = RunFolder(run_dir).read_status().get("adopted")
        run_dir = runs.resume(run_dir)
    except RuntimeError as exc:  # RunBusy, no checkpoint, a copy sharing the original's output
        print(f"error: {exc}", file=sys.stderr)
        return 2
    note = RunFolder(run_dir).read_status().get("adopted")
    if note and note != adopted:  # a copied or moved folder made its own before resuming
        print(note, file=sys.stderr)
    print(run_dir)
    if args.wait:
        status = runs.wait(run_dir)
        print(status.get("state"))
        _print_reason(status)
        _print_health(run_dir)
        failures = _print_after_training(run_dir, status)
        return 0 if state_of(status) is RunState.SUCCEEDED and not failures else 1
    return 0


def cmd_schema(args) -> int:
    from studio.facts.labels import label
    from studio.facts.schema import load_schema

    schema = load_schema(args.module)
    print(f"# FlagEmbedding.finetune.{schema.module}")
    for f in schema.basic() + [f for fs in schema.groups().values() for f in fs]:
        kind = f"list[{f.type}]" if f.multiple else f.type
        choices = f" {{{','.join(f.choices)}}}" if f.choices else ""
        print(
            f"{f.name:40} {kind:10} default={f.default!r}{choices}  [{f.group}] "
            f"{label(f.name, args.lang)}"
        )
    return 0


def cmd_estimate(args) -> int:
    import json

    from studio.checks import memory

    cfg = _load_config(args.config)
    device = None
    if args.device_gib is not None:
        if not math.isfinite(args.device_gib) or args.device_gib <= 0:
            print(
                f"error: --device-gib {args.device_gib:g} is not a device size. Fix: give the "
                "device's memory in GiB as a positive number, e.g. --device-gib 80.",
                file=sys.stderr,
            )
            return 2
        device = (f"{args.device_gib:g} GiB device", int(args.device_gib * memory.GIB))
    try:
        result = memory.estimate(cfg, args.base_dir, device=device)
    except (FileNotFoundError, KeyError, ValueError) as exc:
        for line in [str(p) for p in getattr(exc, "problems", [])] or [f"error: {exc}"]:
            print(line, file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print("\n".join(result.lines()))
    return 0 if result.fits is not False else 1


def _stale_locks_option(p) -> None:
    """``--clear-stale-locks``, the same option for `check`, `train` and `resume`."""
    p.add_argument(
        "--clear-stale-locks",
        action="store_true",
        help="first remove DeepSpeed build locks no live process holds (see `check`)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m studio",
        description="BGE Studio: configure, check, launch and watch FlagEmbedding fine-tunes.",
    )
    sub = parser.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("check", help="run the pre-flight checks on a config (exit 1 on errors)")
    p.add_argument("config")
    p.add_argument("--base-dir", default=".", help="folder relative paths are read from")
    _stale_locks_option(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("command", help="print the shell script that runs the config")
    p.add_argument("config")
    p.add_argument("--out", help="also write command.sh and ds_config.json into this folder")
    p.add_argument("--force", action="store_true", help="replace an existing command.sh")
    p.add_argument(
        "--base-dir",
        default=".",
        help="folder relative paths are read from (unless the config records its own)",
    )
    p.set_defaults(func=cmd_command)

    p = sub.add_parser("import-script", help="turn a training shell script into a config")
    p.add_argument("script")
    p.add_argument("--base-dir", help="folder the script ran from (default: the script's)")
    p.add_argument("--out", required=True, help="config file to write")
    p.add_argument("--force", action="store_true", help="replace an existing config file")
    p.set_defaults(func=cmd_import_script)

    p = sub.add_parser("train", help="run a config in the foreground with a progress bar")
    p.add_argument("config")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--base-dir", default=".")
    _stale_locks_option(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("runs", help="list runs: name, status, step, last loss")
    p.add_argument("--runs-dir", default="runs")
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("stop", help="stop a run: every process of it, found from its folder")
    p.add_argument("run", help="run name or folder")
    p.add_argument("--runs-dir", default="runs")
    p.set_defaults(func=cmd_stop)

    p = sub.add_parser("resume", help="resume a stopped run from its last checkpoint")
    p.add_argument("run", help="run name or folder")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--wait", action="store_true", help="wait for it to finish")
    _stale_locks_option(p)
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser(
        "estimate", help="peak memory per device of a config, and what to change if it won't fit"
    )
    p.add_argument("config")
    p.add_argument("--base-dir", default=".", help="folder relative paths are read from")
    p.add_argument("--json", action="store_true", help="JSON with peak_bytes and the parts")
    p.add_argument("--device-gib", type=float, help="ask about a device of this size instead")
    p.set_defaults(func=cmd_estimate)

    p = sub.add_parser(
        "export-model",
        help="export a run's best model by held-out nDCG@10 (or the one picked) to RUN/exported",
    )
    p.add_argument("run", help="run name or folder")
    p.add_argument("--checkpoint", help="a checkpoint step, base or final (default: the best)")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--base-dir", default=".")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("schema", help="list every FlagEmbedding argument the studio knows")
    p.add_argument("--lang", default="en", choices=["en", "zh"])
    from studio.facts.modules import DEFAULT_MODULE, MODULES

    p.add_argument(
        "--module",
        default=DEFAULT_MODULE,
        choices=list(MODULES),
        help="the fine-tune module under FlagEmbedding.finetune. (default: %(default)s)",
    )
    p.set_defaults(func=cmd_schema)

    from studio.cli.data import register as register_data

    register_data(sub)
    from studio.cli.evaluation import register as register_eval

    register_eval(sub)
    from studio.cli.cluster import register as register_cluster

    register_cluster(sub, _load_config, _print_problems)
    from studio.cli.merge import register as register_merge

    register_merge(sub)
    from studio.cli.adapt import register as register_adapt

    register_adapt(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from studio.cluster import slurm  # noqa: F401  (registers Slurm runs' launcher with runs)

    try:
        return args.func(args)
    except OSError as exc:  # a full disk (or file-size limit): words and the path, no traceback
        from studio.facts.statusfile import disk_full, disk_full_reason

        if not disk_full(exc):
            raise
        print(f"error: {disk_full_reason(exc.filename, exc.errno)}", file=sys.stderr)
        return 1
