"""Pre-flight checks: what would make a run fail or waste hours, found before it starts.

Each rule is a small function returning problems (error or warning, each with its fix); every
face — CLI `check`, the web UI's Train tab, the notebook, the run manager — calls
:func:`run_checks`, so they all refuse the same things. Paths are read as the run will read
them: relative to the config's recorded `studio.base_dir`, else `base_dir` (the folder the studio
runs in, like the shell script would); see `studio.core.config.base_of`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from studio.checks.cluster import check_multinode
from studio.core import deepspeed_config
from studio.core.buildlocks import check_build_locks
from studio.core.config import StudioConfig, looks_like_path, resolve_paths
from studio.facts import datafiles
from studio.facts.hardware import Hardware, detect
from studio.facts.problems import ERROR, INFO, WARNING, Problem
from studio.facts.schema import Schema, load_schema

Check = Callable[[StudioConfig, Hardware, Schema], list[Problem]]


# Flags no run starts without: (flag, what is wrong, the fix, code).
REQUIRED = (
    (
        "model_name_or_path",
        "no model is set.",
        "Set `model_name_or_path` to a folder or a hub id (the bundled model: "
        "bundled:all-MiniLM-L6-v2).",
        "no_model",
    ),
    (
        "train_data",
        "no training data is set.",
        "Set `train_data` to one or more .jsonl files or folders.",
        "no_data",
    ),
)


def check_required(config: StudioConfig, hw: Hardware, schema: Schema) -> list[Problem]:
    return [
        Problem(ERROR, message, fix, field=flag, code=code)
        for flag, message, fix, code in REQUIRED
        if not config.args.get(flag)
    ]


def check_data_paths(config: StudioConfig, hw: Hardware, schema: Schema) -> list[Problem]:
    """The data checker's path rules (:func:`studio.datawork.check.path_problems`), as ``data_*``."""
    from studio.datawork.check import path_problems

    return path_problems(datafiles.expand(config.args.get("train_data") or []), "data")


# Pre-flight checks the first this many MB of each train file (`studio.preflight_max_mb`; 0: every
# line). The checker reads 66 MB/s (msmarco-like rows of 10 kB, 7,000 rows/s) to 190 MB/s
# (rows of 1.4 kB, 130,000 rows/s) on one core of this machine: the default costs 1-3 s once per
# file version (the result is cached), and counting the lines past it runs at read speed.
PREFLIGHT_MAX_MB = 200
EXAMPLES_PER_KIND = 3


def check_data_rows(config: StudioConfig, hw: Hardware, schema: Schema) -> list[Problem]:
    """The data checker over every train file, as this module's run will read it.

    One implementation (:func:`studio.datawork.check.check_paths`), so pre-flight and
    `data check` say the same words about the same lines. The path problems are
    :func:`check_data_paths`'s; this adds the rows (empty file, bad JSON, wrong types...),
    the first few of each kind with file:line, and a count of the rest.
    """
    found = datafiles.expand(config.args.get("train_data") or [])
    if not found.files:
        return []
    kd = "knowledge_distillation" in schema and bool(config.get("knowledge_distillation", schema))
    group = config.get("train_group_size", schema) if "train_group_size" in schema else None
    limit = int(config.studio.get("preflight_max_mb", PREFLIGHT_MAX_MB) * 1_000_000)
    try:
        stamps = tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in found.files)
    except OSError as exc:
        return [Problem(ERROR, f"cannot read the data: {exc}", "Fix the path.", code="data_read")]
    return list(_data_rows(stamps, kd, group, limit))


@lru_cache(maxsize=8)
def _data_rows(
    stamps: tuple[tuple[str, int, int], ...], kd: bool, group: int | None, limit: int
) -> tuple[Problem, ...]:
    """Cached per file version and settings: the web UI re-runs pre-flight as the user types."""
    from studio.datawork.check import check_paths

    report = check_paths(
        [name for name, _, _ in stamps],
        knowledge_distillation=kd,
        max_examples_per_kind=EXAMPLES_PER_KIND,
        train_group_size=group,
        max_bytes=limit,
    )
    out = list(report.problems)
    for code, count in sorted(report.counts.items()):
        kept = len(report.examples.get(code, []))
        if kept and count > kept:
            out.append(
                Problem(
                    INFO,
                    f"{count:,} lines have `{code}` problems in all; the first {kept} are "
                    "listed above.",
                    "Run `python -m studio data check` on the config to list every one.",
                    field="train_data",
                    code="data_more",
                )
            )
    return tuple(out)


def check_model(config: StudioConfig, hw: Hardware, schema: Schema) -> list[Problem]:
    model = config.args.get("model_name_or_path")
    if not model:
        return []
    path = Path(model)
    if path.is_dir():
        if not (path / "config.json").is_file():
            return [
                Problem(
                    ERROR,
                    f"model folder `{model}` has no config.json.",
                    "Point at the folder that holds config.json and the weights.",
                    field="model_name_or_path",
                    code="model_bad",
                )
            ]
        return []
    if path.is_absolute() or looks_like_path(model) or path.exists():
        return [
            Problem(
                ERROR,
                f"model folder `{model}` does not exist.",
                "Fix the path, or give a hub id such as BAAI/bge-base-en-v1.5.",
                field="model_name_or_path",
                code="model_missing",
            )
        ]
    offline = (
        os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("TRANSFORMERS_OFFLINE") == "1"
    )
    note = (
        "offline mode is on: it must already be in the Hugging Face cache"
        if offline
        else "it will be downloaded from the Hugging Face hub (needs network)"
    )
    return [
        Problem(
            INFO,
            f"`{model}` is read as a hub id; {note}.",
            "Give a local folder to train without network.",
            field="model_name_or_path",
            code="model_hub",
        )
    ]


def check_precision(config: StudioConfig, hw: Hardware, schema: Schema) -> list[Problem]:
    fp16, bf16 = bool(config.args.get("fp16")), bool(config.args.get("bf16"))
    out = []
    if fp16 and bf16:
        out.append(
            Problem(
                ERROR,
                "`fp16` and `bf16` are both on.",
                "Pick one precision.",
                field="bf16",
                code="precision_both",
            )
        )
    if hw.gpu_count == 0:
        if bf16:
            out.append(
                Problem(
                    ERROR,
                    "`bf16` fails on this machine: no GPU is visible.",
                    "Turn `bf16` off to train in fp32 on the CPU.",
                    field="bf16",
                    code="bf16_cpu",
                )
            )
        if fp16:
            out.append(
                Problem(
                    WARNING,
                    "`fp16` was meant for a GPU; none is visible here, so "
                    "the run is slow CPU training.",
                    "Turn `fp16` off on a CPU, or run on a GPU machine.",
                    field="fp16",
                    code="fp16_cpu",
                )
            )
    elif bf16 and not all(g.supports_bf16 for g in hw.gpus):
        out.append(
            Problem(
                ERROR,
                f"`bf16` needs an Ampere or newer GPU; {hw.describe()} lacks it.",
                "Use `fp16` instead.",
                field="bf16",
                code="bf16_gpu",
            )
        )
    return out


def check_processes(config: StudioConfig, hw: Hardware, schema: Schema) -> list[Problem]:
    n = config.torchrun.nproc_per_node
    if hw.gpu_count == 0 and n > 1 and config.deepspeed is not None:
        # studio.train_entry.prepare_cpu_world refuses this launch at start: say so here.
        return [
            Problem(
                ERROR,
                f"{n} processes with DeepSpeed on a machine without a GPU: the training entry "
                "point refuses this at start (DeepSpeed on CPU runs one process only).",
                "Set `torchrun.nproc_per_node` to 1, or turn DeepSpeed off to train with DDP "
                "over gloo.",
                field="torchrun.nproc_per_node",
                code="nproc_deepspeed_cpu",
            )
        ]
    if hw.gpu_count == 0 and n > 1:
        return [
            Problem(
                WARNING,
                f"{n} processes per node, but no GPU is visible: each would train on the CPU.",
                "Set `torchrun.nproc_per_node` to 1 here, or run on a machine with that many GPUs.",
                field="torchrun.nproc_per_node",
                code="nproc_gpus",
            )
        ]
    if hw.gpu_count and n > hw.gpu_count:
        return [
            Problem(
                ERROR,
                f"{n} processes per node, but only {hw.gpu_count} GPU(s) are visible.",
                f"Set `torchrun.nproc_per_node` to {hw.gpu_count} or less.",
                field="torchrun.nproc_per_node",
                code="nproc_gpus",
            )
        ]
    return []


def check_deepspeed(config: StudioConfig, hw: Hardware, schema: Schema) -> list[Problem]:
    ds_settings = config.deepspeed
    if ds_settings is None:
        return []
    if ds_settings.config_file and not Path(ds_settings.config_file).is_file():
        return [
            Problem(
                ERROR,
                f"DeepSpeed config `{ds_settings.config_file}` does not exist.",
                "Fix the path, or let the studio generate one (deepspeed: {stage: 0}).",
                field="deepspeed",
                code="ds_missing",
            )
        ]
    try:
        ds = deepspeed_config.resolve(ds_settings)
    except ValueError as exc:
        return [Problem(ERROR, str(exc), "Fix the JSON.", field="deepspeed", code="ds_json")]
    hidden = deepspeed_config.secret_paths(ds or {})
    if hidden:
        return [
            Problem(
                ERROR,
                f"DeepSpeed config `{ds_settings.config_file}` holds what looks like a secret at "
                + ", ".join(f"`{p}`" for p in hidden)
                + "; the studio copies this JSON into the run folder and scripts, so it would "
                "be written there (it is masked as ***, which no service accepts).",
                "Remove it from the JSON and set it in the environment instead: the libraries "
                "read their keys from there (WANDB_API_KEY, COMET_API_KEY, HF_TOKEN, ...).",
                field="deepspeed",
                code="ds_secret",
            )
        ]
    scheduler = (ds or {}).get("scheduler") or {}
    if scheduler.get("type") == "WarmupDecayLR":
        warm = (scheduler.get("params") or {}).get("warmup_num_steps", "auto")
        if warm == "auto":
            zero_warmup = not config.get("warmup_steps", schema) and not config.get(
                "warmup_ratio", schema
            )
        else:
            zero_warmup = warm == 0
        if zero_warmup:
            return [
                Problem(
                    ERROR,
                    "DeepSpeed rejects its `WarmupDecayLR` scheduler with zero warmup steps.",
                    "Set `warmup_ratio` (e.g. 0.1) or `warmup_steps`, "
                    "or remove the scheduler block from the DeepSpeed JSON.",
                    field="warmup_ratio",
                    code="ds_warmup",
                )
            ]
    return []


def check_output_dir(config: StudioConfig, hw: Hardware, schema: Schema) -> list[Problem]:
    out_dir = config.args.get("output_dir")
    if not out_dir or not Path(out_dir).is_dir() or not any(Path(out_dir).iterdir()):
        return []
    if config.args.get("resume_from_checkpoint"):
        return []
    # FlagEmbedding (and transformers' Trainer) ignore `overwrite_output_dir`: the files in
    # the folder are overwritten with or without it. The studio reads the flag as the user's
    # consent only.
    if config.args.get("overwrite_output_dir"):
        return [
            Problem(
                WARNING,
                f"output folder `{out_dir}` is not empty and its files will be overwritten; "
                "`overwrite_output_dir` only records that you agree (FlagEmbedding ignores it).",
                "Pick a new folder to keep the old model.",
                field="output_dir",
                code="output_overwrite",
            )
        ]
    return [
        Problem(
            ERROR,
            f"output folder `{out_dir}` is not empty; FlagEmbedding writes over its files "
            "without asking (it ignores `overwrite_output_dir`).",
            "Pick a new `output_dir`, resume from its last checkpoint, or set "
            "`overwrite_output_dir` to confirm the old files may be overwritten.",
            field="output_dir",
            code="output_not_empty",
        )
    ]


def _train_rows(config: StudioConfig, schema: Schema) -> int | Problem:
    """The rows one epoch trains on (each file capped at `max_example_num_per_dataset`)."""
    rows = 0
    cap = config.get("max_example_num_per_dataset", schema)
    for f in datafiles.expand(config.args.get("train_data") or []).files:
        try:
            rows += min(datafiles.count_examples(f), cap)
        except (OSError, ValueError) as exc:
            return Problem(
                ERROR,
                f"cannot read `{f}`: {exc}",
                "Run `python -m studio data check` on it.",
                field="train_data",
                file=str(f),
                code="data_read",
            )
    return rows


def _global_batch(config: StudioConfig, schema: Schema) -> tuple[int, int, int, int]:
    """(global batch, per device, processes, accumulation)."""
    per_device = config.get("per_device_train_batch_size", schema)
    accumulate = config.get("gradient_accumulation_steps", schema) or 1
    world = config.torchrun.nproc_per_node * config.torchrun.nnodes
    return per_device * world * accumulate, per_device, world, accumulate


def check_batch(config: StudioConfig, hw: Hardware, schema: Schema) -> list[Problem]:
    if not datafiles.expand(config.args.get("train_data") or []).files:
        return []
    rows = _train_rows(config, schema)
    if isinstance(rows, Problem):
        return [rows]
    if rows == 0:
        return []  # check_data_rows says which file is empty
    global_batch, per_device, world, accumulate = _global_batch(config, schema)
    if rows < global_batch:
        shape = (
            f"{rows} training examples are fewer than one global batch "
            f"({per_device} per device x {world} process(es) x {accumulate} "
            f"accumulation = {global_batch})"
        )
        if config.get("dataloader_drop_last", schema):
            return [
                Problem(
                    ERROR,
                    f"{shape}, and `dataloader_drop_last` drops the incomplete batch: no step "
                    "would train.",
                    "Lower the batch size, add data, or turn `dataloader_drop_last` off.",
                    field="per_device_train_batch_size",
                    code="batch_too_big",
                )
            ]
        return [
            Problem(
                WARNING,
                f"{shape}; each step trains on a partial batch of {rows}.",
                "Lower the batch size to what the data fills, or add data.",
                field="per_device_train_batch_size",
                code="batch_too_big",
            )
        ]
    return []


# Passes over the training rows from which pre-flight warns: the issue-20 runs (150 steps x
# batch 8 over 20 rows = 60 passes) lost held-out nDCG@10 (0.441 -> 0.422, 0.806 -> 0.772).
MANY_EPOCHS = 10


def check_epochs(config: StudioConfig, hw: Hardware, schema: Schema) -> list[Problem]:
    """Warn when the planned steps go many times over little data: the model memorises the
    training rows and usually gets worse on anything else. Held-out evaluation at each save
    (`studio.eval_at_save`) turns the warning into a note: the best checkpoint is exported."""
    if not datafiles.expand(config.args.get("train_data") or []).files:
        return []
    rows = _train_rows(config, schema)
    if isinstance(rows, Problem) or rows == 0:
        return []  # check_batch / check_data_rows say why
    global_batch, per_device, world, accumulate = _global_batch(config, schema)
    if not isinstance(global_batch, int) or global_batch < 1:
        return []  # training_value_problems refuses the batch
    steps = config.get("max_steps", schema)
    batch = f"batch {global_batch}" + (
        f" ({per_device} per device x {world} x {accumulate})" if global_batch != per_device else ""
    )
    if isinstance(steps, int) and steps > 0:
        passes = steps * global_batch / rows
        plan = f"{steps} steps x {batch} over {rows} rows is {passes:.3g} epochs"
        fewer = f"`max_steps` {max(1, round(3 * rows / global_batch))} (about 3 epochs)"
    else:
        passes = float(config.get("num_train_epochs", schema) or 0)
        plan = f"`num_train_epochs` {passes:g} over {rows} rows ({batch}) is {passes:g} epochs"
        fewer = "`num_train_epochs` 1-3"
    if passes < MANY_EPOCHS:
        return []
    field = "max_steps" if isinstance(steps, int) and steps > 0 else "num_train_epochs"
    if config.studio.get("eval_at_save") and config.studio.get("eval_data"):
        return [
            Problem(
                INFO,
                f"{plan}; `studio.eval_at_save` scores each checkpoint on the held-out data "
                "and exports the best one.",
                f"Fewer steps ({fewer}) or more data train faster to the same point.",
                field=field,
                code="many_epochs",
            )
        ]
    return [
        Problem(
            WARNING,
            f"{plan}: the model will memorise these rows and likely score worse than the "
            "base model on anything else.",
            f"Train fewer steps ({fewer}), add data (`python -m studio data pairs` makes pairs "
            "from documents), or set `studio: {eval_at_save: true, eval_data: DIR}` to score "
            "every checkpoint on held-out data and export the best.",
            field=field,
            code="many_epochs",
        )
    ]


def training_value_problems(config: StudioConfig, schema: Schema | None = None) -> list[Problem]:
    """Values FlagEmbedding accepts at parse time and fails on (or ignores) once it runs.

    One implementation for pre-flight and the memory estimate (which refuses them): a batch of
    0 fails at the first DataLoader ("batch_size should be a positive integer"), a group under
    1 at the first row (`random.sample` of a negative count), and no epochs and no `max_steps`
    trains 0 steps and saves the untrained model as if it were the result.
    """
    schema = schema or load_schema(config.module)
    get = lambda name: config.get(name, schema)  # noqa: E731
    out = []
    batch = get("per_device_train_batch_size")
    if isinstance(batch, int | float) and batch < 1:
        out.append(
            Problem(
                ERROR,
                f"`per_device_train_batch_size` is {batch}: the training DataLoader refuses "
                "a batch under 1 (ValueError: batch_size should be a positive integer).",
                "Set `per_device_train_batch_size` to 1 or more (e.g. 8).",
                field="per_device_train_batch_size",
                code="batch_not_positive",
            )
        )
    group = get("train_group_size") if "train_group_size" in schema else None
    if isinstance(group, int | float) and group < 1:
        out.append(
            Problem(
                ERROR,
                f"`train_group_size` is {group}: FlagEmbedding samples `train_group_size - 1` "
                "negatives per query and stops at the first row (ValueError: Sample larger "
                "than population or is negative).",
                "Set `train_group_size` to 1 or more: 1 positive plus that many minus 1 "
                "negatives (e.g. 8).",
                field="train_group_size",
                code="group_not_positive",
            )
        )
    epochs, steps = get("num_train_epochs"), get("max_steps")
    if (
        isinstance(epochs, int | float)
        and isinstance(steps, int | float)
        and epochs <= 0
        and steps <= 0
    ):
        out.append(
            Problem(
                ERROR,
                f"`num_train_epochs` is {epochs:g} and `max_steps` is {steps}: the run would "
                "train 0 steps and save the untrained model as its result.",
                "Set `num_train_epochs` above 0 (e.g. 1), or `max_steps` to the number of "
                "steps to train.",
                field="num_train_epochs",
                code="no_training",
            )
        )
    return out


def check_training_values(config: StudioConfig, hw: Hardware, schema: Schema) -> list[Problem]:
    return training_value_problems(config, schema)


def check_mrl(config: StudioConfig, hw: Hardware, schema: Schema) -> list[Problem]:
    if config.args.get("use_mrl") and not config.args.get("mrl_dims"):
        return [
            Problem(
                ERROR,
                "`use_mrl` is on but `mrl_dims` is empty.",
                "Set `mrl_dims`, e.g. 64 128 256, or turn `use_mrl` off.",
                field="mrl_dims",
                code="mrl_dims",
            )
        ]
    return []


def check_report_to(config: StudioConfig, hw: Hardware, schema: Schema) -> list[Problem]:
    if "report_to" in config.args:
        return []
    return [
        Problem(
            INFO,
            "`report_to` is unset; the studio passes `none` (HF would report to "
            "every installed integration).",
            "Set `report_to` to e.g. tensorboard to log there.",
            field="report_to",
            code="report_to",
        )
    ]


def check_eval_data(config: StudioConfig, hw: Hardware, schema: Schema) -> list[Problem]:
    on = [k for k in ("evaluate_at_end", "eval_at_save") if config.studio.get(k)]
    if not on:
        return []
    from studio.facts.modules import DEFAULT_MODULE

    if config.studio.get("eval_at_save") and config.module != DEFAULT_MODULE:
        return [
            Problem(
                WARNING,
                f"`studio.eval_at_save` scores the base embedder only; this `{config.module}` "
                "run is not scored at its saves and exports its final model.",
                "Turn `studio.eval_at_save` off, and use `studio.evaluate_at_end` to score "
                "base, checkpoints and final model after training.",
                field="studio.eval_at_save",
                code="eval_at_save_module",
            )
        ]
    data = config.studio.get("eval_data")
    if not data:
        return [
            Problem(
                ERROR,
                f"`studio.{on[0]}` is on but no `studio.eval_data` is set.",
                "Point `studio.eval_data` at a BEIR folder (corpus.jsonl, queries.jsonl, "
                "qrels/test.tsv), e.g. one written by `python -m studio data split`.",
                field="studio.eval_data",
                code="eval_data_missing",
            )
        ]
    if not Path(data).is_dir():
        return [
            Problem(
                ERROR,
                f"evaluation data folder `{data}` does not exist.",
                "Fix `studio.eval_data`, or turn `studio.evaluate_at_end` off.",
                field="studio.eval_data",
                code="eval_data_missing",
            )
        ]
    root = Path(data)
    stamps = tuple(
        (str(f), f.stat().st_size, f.stat().st_mtime_ns)
        for f in sorted(root.rglob("*"))
        if f.is_file() and f.suffix in (".jsonl", ".tsv")
    )
    return list(_eval_data_problems(str(root), stamps))


def check_general_data(config: StudioConfig, hw: Hardware, schema: Schema) -> list[Problem]:
    """`studio.general_data`: scored after training when the held-out split is."""
    data = config.studio.get("general_data")
    if not data:
        return []
    if not (config.studio.get("evaluate_at_end") or config.studio.get("eval_at_save")):
        return [
            Problem(
                WARNING,
                "`studio.general_data` is set but nothing is evaluated after training.",
                "Turn `studio.eval_at_save` or `studio.evaluate_at_end` on.",
                field="studio.general_data",
                code="general_data_unused",
            )
        ]
    if not (Path(data) / "corpus.jsonl").is_file():
        return [
            Problem(
                ERROR,
                f"general evaluation folder `{data}` has no corpus.jsonl.",
                "Point `studio.general_data` at a BEIR folder (corpus.jsonl, queries.jsonl, "
                "qrels/test.tsv), or remove it.",
                field="studio.general_data",
                code="general_data_missing",
            )
        ]
    return []


@lru_cache(maxsize=4)
def _eval_data_problems(root: str, stamps: tuple) -> tuple[Problem, ...]:
    """The evaluation's own strict reader over the folder (what evaluate_at_end will load after
    training), so a missing qrels file or a bad line stops the run before it starts rather than
    after hours of training. Cached per file version: the corpus can be large."""
    from studio.evaluation.data import EvalDataError, data_findings, load_eval_data

    try:
        found = load_eval_data(root).summary()
    except EvalDataError as exc:
        return (
            Problem(
                ERROR,
                f"the evaluation data cannot be read after training: {exc.message}",
                exc.fix or "Fix the file, or turn `studio.evaluate_at_end` off.",
                field="studio.eval_data",
                file=exc.file,
                line=exc.line,
                code="eval_data_bad",
            ),
        )
    return tuple(
        Problem(WARNING, what, fix, field="studio.eval_data", file=root, code=code)
        for code, what, fix in data_findings(found)
    )


CHECKS: tuple[Check, ...] = (
    check_required,
    check_data_paths,
    check_data_rows,
    check_model,
    check_precision,
    check_processes,
    check_deepspeed,
    check_output_dir,
    check_training_values,
    check_batch,
    check_epochs,
    check_mrl,
    check_report_to,
    check_eval_data,
    check_general_data,
    check_build_locks,
    check_multinode,  # shared storage, hub models, cross-device negatives on N nodes
)


def _all_checks() -> tuple[Check, ...]:
    """The rules above, then the per-module ones (each module's own, rerankers, LLM/LoRA)."""
    from studio.checks.preflight_modules import MODULE_CHECKS

    return CHECKS + MODULE_CHECKS


def run_checks(
    config: StudioConfig,
    base_dir: str | Path = ".",
    hardware: Hardware | None = None,
    schema: Schema | None = None,
) -> list[Problem]:
    """Every rule over the config with paths resolved against base_dir; errors first."""
    schema = schema or load_schema(config.module)
    hw = hardware or detect()
    try:
        resolved = resolve_paths(config, base_dir)
    except ValueError as exc:  # ConfigError for a missing bundled model
        return list(getattr(exc, "problems", [Problem(ERROR, str(exc), code="resolve")]))
    problems: list[Problem] = []
    for check in _all_checks():
        problems += check(resolved, hw, schema)
    order = {ERROR: 0, WARNING: 1, INFO: 2}
    return sorted(problems, key=lambda p: order[p.level])
