"""The launch command: an argv list for the studio's own runs, a shell script for everyone else.

Both come from one function (:func:`flag_argv`), so the command a user copies to a cluster is
the command the studio ran, flag for flag. The script runs with FlagEmbedding alone: it calls
the config's FlagEmbedding module (``-m FlagEmbedding.finetune.<module>``) and reads the
DeepSpeed JSON saved beside it.
"""

from __future__ import annotations

import shlex
from typing import Any

from studio.core.config import BUNDLED_PREFIX, StudioConfig, bundled_model_path
from studio.core.deepspeed_config import DS_FILE_NAME
from studio.facts import modules
from studio.facts.schema import Schema

STUDIO_ENTRY_MODULE = "studio.training.worker"  # contains the worker, then runs studio.train_entry
DEFAULT_MASTER_PORT = 29500


def _render_value(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def flag_argv(
    config: StudioConfig, ds_path: str | None = None, schema: Schema | None = None
) -> list[str]:
    """FlagEmbedding's flags for a config, in the config's order; `--report_to none` by default.

    Bools are written the way HfArgumentParser reads them: `--flag` for true, `--flag False`
    for false. Lists (`--train_data a b`) follow their flag.
    """
    schema = schema or config.schema
    argv: list[str] = []
    for name, value in config.args.items():
        if value is None or name not in schema or schema[name].secret:
            continue
        field = schema[name]
        if name == "model_name_or_path" and str(value).startswith(BUNDLED_PREFIX):
            value = str(bundled_model_path() or value)
        if field.multiple:
            if not value:
                continue
            argv += [f"--{name}", *(_render_value(v) for v in value)]
        elif field.type == "bool":
            argv += [f"--{name}"] if value else [f"--{name}", "False"]
        else:
            argv += [f"--{name}", _render_value(value)]
    if "report_to" not in config.args:
        argv += ["--report_to", "none"]  # HF's default reports to every installed integration
    if ds_path is not None:
        argv += ["--deepspeed", ds_path]
    return argv


def torchrun_argv(config: StudioConfig, master_port: int | None = None) -> list[str]:
    """torchrun's own options; a fixed port only when asked, or when several nodes need one."""
    t = config.torchrun
    argv = ["--nproc_per_node", str(t.nproc_per_node)]
    if t.nnodes > 1:
        argv += [
            "--nnodes",
            str(t.nnodes),
            "--node_rank",
            str(t.node_rank),
            "--master_addr",
            t.master_addr,
        ]
    port = master_port or t.master_port
    if port is None and t.nnodes > 1:
        port = DEFAULT_MASTER_PORT
    if port is not None:
        argv += ["--master_port", str(port)]
    return argv


def launch_argv(
    config: StudioConfig,
    python: str,
    ds_path: str | None,
    master_port: int | None = None,
    module: str = STUDIO_ENTRY_MODULE,
) -> list[str]:
    """The argv a studio run executes (no shell): the venv's torchrun over our entry point.

    `python -m torch.distributed.run` is torchrun itself, but pinned to the interpreter the
    studio runs in, so a run never picks up another environment's torchrun from PATH. The
    studio's entry point is told the fine-tune module first (``--finetune_module M``), which
    it strips before FlagEmbedding's parser reads the rest.
    """
    selector = [modules.ENTRY_FLAG, config.module] if module == STUDIO_ENTRY_MODULE else []
    return [
        python,
        "-m",
        "torch.distributed.run",
        *torchrun_argv(config, master_port),
        "-m",
        module,
        *selector,
        *flag_argv(config, ds_path),
    ]


def flag_lines(config: StudioConfig, with_deepspeed_file: bool | None = None) -> list[str]:
    """FlagEmbedding's flags as shell lines, one flag and its values a line, safely quoted.

    The DeepSpeed JSON is referenced as ``"$HERE/ds_config.json"``: every script that uses
    these lines (command.sh, the per-node and Slurm scripts of :mod:`studio.cluster`) sets
    ``HERE`` to its own folder and keeps the JSON beside it.
    """
    if with_deepspeed_file is None:
        with_deepspeed_file = config.deepspeed is not None
    ds_token = "__STUDIO_DS__"
    flags = flag_argv(config, ds_token if with_deepspeed_file else None)
    lines = []
    i = 0
    while i < len(flags):
        flag = flags[i]
        values = []
        i += 1
        while i < len(flags) and not flags[i].startswith("--"):
            values.append(flags[i])
            i += 1
        rendered = [shlex.quote(flag)]
        for v in values:
            rendered.append(f'"$HERE/{DS_FILE_NAME}"' if v == ds_token else shlex.quote(v))
        lines.append(" ".join(rendered))
    return lines


def continued(lines: list[str]) -> str:
    """Shell lines joined into one command with backslash continuations."""
    return " \\\n    ".join(lines)


HERE_LINE = 'HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"'


def render_script(config: StudioConfig, with_deepspeed_file: bool | None = None) -> str:
    """A bash script, one flag a line, safe quoting, that runs with FlagEmbedding alone."""
    if with_deepspeed_file is None:
        with_deepspeed_file = config.deepspeed is not None
    lines = [
        "torchrun " + " ".join(shlex.quote(a) for a in torchrun_argv(config)),
        f"-m {modules.get(config.module).python_module}",
        *flag_lines(config, with_deepspeed_file),
    ]
    body = continued(lines)
    header = [
        "#!/usr/bin/env bash",
        "# Generated by BGE Studio. Runs with FlagEmbedding alone (no studio needed):",
        "#   bash command.sh",
    ]
    if with_deepspeed_file:
        header.append(f"# It reads the DeepSpeed config {DS_FILE_NAME} saved beside it.")
    header += ["set -euo pipefail", HERE_LINE, ""]
    return "\n".join(header) + body + "\n"
