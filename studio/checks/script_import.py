"""Import a shell script that launches a FlagEmbedding fine-tune into a studio config.

Users arrive with a script copied from FlagEmbedding's docs (like the seed's), often with
mistakes a shell hides: a line without its trailing backslash silently cuts the command in
two, a flag given twice keeps only its last value, a typo in a flag name fails only after the
model loads. The importer reads the script the way the author meant it — every flag line of
the launch command — and reports each of these with its line number and the fix.

Understood: what bash does with the script (studio.shell_words: comments, quoting, line
continuations, variables, `export`, `${VAR:-default}`, `~`, `if [ -z "$X" ]`, and the
`cmd="torchrun ... $model_args"; eval $cmd` style of FlagEmbedding's examples), `VAR=value`
prefixes, and the launchers `torchrun`, `python -m torch.distributed.run|launch`, `deepspeed`
and `python -m <module>`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from studio.checks import preflight
from studio.checks.shell_words import read_commands
from studio.core.config import (
    DeepSpeedSettings,
    StudioConfig,
    TorchrunSettings,
    check_args,
    looks_like_path,
    relative_paths,
)
from studio.facts import modules
from studio.facts.hardware import Hardware
from studio.facts.problems import ERROR, INFO, WARNING, Problem, unknown_name
from studio.facts.schema import ENTRY_MODULE, Schema, load_schema

KNOWN_MODULES = (
    *(m.python_module for m in modules.MODULES.values()),
    "studio.training.train_entry",
    "studio.training.worker",
    *modules.LEGACY_MODULES,
)
LAUNCH_WORDS = ("torchrun", "deepspeed", "python", "python3", "accelerate")
TORCHRUN_OPTIONS = {
    "nproc_per_node": "nproc_per_node",
    "nproc-per-node": "nproc_per_node",
    "nnodes": "nnodes",
    "node_rank": "node_rank",
    "node-rank": "node_rank",
    "master_addr": "master_addr",
    "master-addr": "master_addr",
    "master_port": "master_port",
    "master-port": "master_port",
    "num_gpus": "nproc_per_node",
    "num-gpus": "nproc_per_node",
    "num_nodes": "nnodes",
    "num-nodes": "nnodes",
}
# Flags whose values are paths the run reads; their existence is checked against base_dir.
READ_PATHS = ("train_data", "deepspeed")


@dataclass
class ImportResult:
    config: StudioConfig
    problems: list[Problem] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    module: str | None = None


@dataclass
class _Token:
    text: str
    line: int


def _is_launch_start(tokens: list[_Token]) -> bool:
    words = [t.text for t in tokens if "=" not in t.text or t.text.startswith("-")]
    if not words:
        return False
    first = Path(words[0]).name
    return first in LAUNCH_WORDS or any(w in KNOWN_MODULES for w in words)


def _find_command(
    text: str, file: str, environ: Mapping[str, str]
) -> tuple[list[_Token], list[Problem], dict[str, str]]:
    """The launch command's tokens, read as bash would (variables, `export`, `eval $cmd`,
    see studio.shell_words), plus the lines a missing backslash cut off (reported and kept),
    and the variables the script exports."""
    commands, state = read_commands(text, environ, file)
    problems = list(state.problems)
    env = dict(state.exported)
    as_tokens = [[_Token(w.text, w.line) for w in c.words] for c in commands]
    start = next((k for k, toks in enumerate(as_tokens) if _is_launch_start(toks)), None)
    if start is None:
        return (
            [],
            problems
            + [
                Problem(
                    ERROR,
                    f"no launch command found (torchrun, deepspeed or python -m {ENTRY_MODULE}).",
                    "Paste the script that starts training.",
                    file=file,
                    code="no_command",
                )
            ],
            env,
        )
    command = as_tokens[start]
    previous = commands[start]
    # The shell ends the command at a line without a backslash. Commands right below it that
    # start with a flag were meant as part of it: report the cut, keep them as intended.
    for following, toks in zip(commands[start + 1 :], as_tokens[start + 1 :], strict=True):
        if following.first_line != previous.last_line + 1 or not toks[0].text.startswith("--"):
            break
        number = previous.last_line
        dropped = [t.text for t in toks if t.text.startswith("--")]
        problems.append(
            Problem(
                ERROR,
                f"line {number} does not end with a backslash, so a shell ends the command "
                f"there and runs the next lines as a separate command: {len(dropped)} flag(s) "
                f"would be dropped ({', '.join(dropped[:6])}{', ...' if len(dropped) > 6 else ''}).",
                f"Add ` \\` at the end of line {number}. The studio keeps those flags.",
                file=file,
                line=number,
                code="missing_backslash",
            )
        )
        command += toks
        previous = following
    return command, problems, env


def _split_launcher(
    tokens: list[_Token], file: str
) -> tuple[dict, str | None, list[_Token], list[Problem], dict[str, str]]:
    """Separate env prefixes, the launcher's options and the module from the flags."""
    env: dict[str, str] = {}
    launch: dict[str, tuple[str, int]] = {}
    problems: list[Problem] = []
    i = 0
    while i < len(tokens) and "=" in tokens[i].text and not tokens[i].text.startswith("-"):
        key, _, value = tokens[i].text.partition("=")
        env[key] = value
        i += 1
    module = None
    while i < len(tokens):
        t = tokens[i]
        word = t.text
        if word == "-m" or word == "--module":
            if i + 1 < len(tokens):
                module = tokens[i + 1].text
                i += 2
                if module in ("torch.distributed.run", "torch.distributed.launch"):
                    module = None
                    continue
                break
            i += 1
            continue
        if word.endswith(".py") and not word.startswith("-"):
            module = word
            i += 1
            break
        if word.startswith("--") and not word.startswith("--deepspeed"):
            name, eq, value = word[2:].partition("=")
            if name in TORCHRUN_OPTIONS:
                if not eq and i + 1 < len(tokens):
                    value = tokens[i + 1].text
                    i += 1
                launch[TORCHRUN_OPTIONS[name]] = (value, t.line)
        i += 1
    if module is None:
        problems.append(
            Problem(
                ERROR,
                "the command names no training module.",
                f"Launch `-m {ENTRY_MODULE}`.",
                file=file,
                code="no_module",
            )
        )
    else:
        problems += _module_problems(module, file, tokens[i - 1].line if i else None)
    return launch, module, tokens[i:], problems, env


def _module_problems(module: str, file: str, line: int | None) -> list[Problem]:
    """A launch target that is not one of FlagEmbedding 1.4.2's fine-tune modules."""
    name, kind = modules.launch_target(module)
    modern = modules.get(name).python_module
    if kind == "legacy":
        return [
            Problem(
                ERROR,
                f"`{module}` was removed in FlagEmbedding 1.3: with 1.4.2 the script stops with "
                f"`No module named {module}`. Its modern module is `{modern}`; the flags are read "
                "as that one's.",
                f"Launch `-m {modern}` (the config names `module: {name}`).",
                file=file,
                line=line,
                field="module",
                code="removed_module",
            )
        ]
    if kind == "other":
        return [
            Problem(
                WARNING,
                f"the module `{module}` is not one of FlagEmbedding's fine-tune modules; its "
                f"flags are read as `{modern}`'s.",
                "Launch one of: " + ", ".join(m.python_module for m in modules.MODULES.values()),
                file=file,
                line=line,
                field="module",
                code="other_module",
            )
        ]
    return []


def _take_entry_module(flags: list[tuple[str, list[str], int]], file: str):
    """The studio entry point's `--finetune_module M` (a studio run's command), off the flags."""
    for index, (name, values, line) in enumerate(flags):
        if name == modules.ENTRY_FLAG[2:]:
            rest = flags[:index] + flags[index + 1 :]
            try:
                return modules.get(values[-1] if values else None).name, rest, []
            except ValueError as exc:
                return (
                    modules.DEFAULT_MODULE,
                    rest,
                    [Problem(ERROR, f"{exc}.", "", file=file, line=line, code="unknown_module")],
                )
    return None, flags, []


def _group_flags(
    tokens: list[_Token], file: str
) -> tuple[list[tuple[str, list[str], int]], list[Problem]]:
    flags: list[tuple[str, list[str], int]] = []
    problems: list[Problem] = []
    for t in tokens:
        if t.text.startswith("--") and len(t.text) > 2:
            name, eq, value = t.text[2:].partition("=")
            flags.append((name, [value] if eq else [], t.line))
        elif flags:
            flags[-1][1].append(t.text)
        else:
            problems.append(
                Problem(
                    WARNING,
                    f"`{t.text}` stands before any flag and is ignored.",
                    "Remove it.",
                    file=file,
                    line=t.line,
                    code="stray",
                )
            )
    return flags, problems


def _canonical(name: str, schema: Schema) -> str:
    if name in schema:
        return name
    underscored = name.replace("-", "_")
    if underscored in schema:
        return underscored
    if underscored.startswith("no_") and underscored[3:] in schema:
        return underscored  # `--no_x` is resolved by _flag_value
    return name


def _flag_value(name: str, values: list[str], schema: Schema) -> tuple[str, object]:
    if name.startswith("no_") and name not in schema and name[3:] in schema:
        return name[3:], False
    f = schema[name]
    if f.type == "bool" and not values:
        return name, True
    if f.multiple:
        return name, values
    return name, values[-1] if values else None


def import_script(
    text: str,
    base_dir: str | Path = ".",
    file: str = "<script>",
    hardware: Hardware | None = None,
    schema: Schema | None = None,
    environ: Mapping[str, str] | None = None,
) -> ImportResult:
    """Parse a launch script into a config and every diagnostic, each with line and fix.

    Variables the script does not set are looked up in `environ` (default: this process's
    environment), each such use a warning."""
    base = Path(base_dir)
    tokens, problems, env = _find_command(text, file, os.environ if environ is None else environ)
    if not tokens:
        return ImportResult(StudioConfig(), problems, env)
    launch, module, flag_tokens, p, prefix_env = _split_launcher(tokens, file)
    problems += p
    env.update(prefix_env)
    flags, p = _group_flags(flag_tokens, file)
    problems += p
    module_name, kind = modules.launch_target(module)
    if kind == "studio":
        chosen, flags, p = _take_entry_module(flags, file)
        module_name, problems = chosen or module_name, problems + p
    schema = schema or load_schema(module_name)

    seen: dict[str, list[tuple[list[str], int]]] = {}
    raw_args: dict[str, object] = {}
    lines: dict[str, int] = {}
    deepspeed_path: str | None = None
    for name, values, line in flags:
        key = _canonical(name, schema)
        if key not in schema and not (key.startswith("no_") and key[3:] in schema):
            problems.append(
                unknown_name(
                    key,
                    list(schema.fields),
                    f"unknown flag `--{name}`: FlagEmbedding would stop "
                    "with `error: unrecognized arguments`.",
                    otherwise="Remove it.",
                    spell=lambda flag: f"`--{flag}`",
                    code="unknown_flag",
                    field=name,
                    file=file,
                    line=line,
                )
            )
            continue
        key, value = _flag_value(key, values, schema)
        seen.setdefault(key, []).append((values, line))
        if key == "deepspeed":
            deepspeed_path = str(value) if value else None
            lines[key] = line
            continue
        raw_args[key] = value
        lines[key] = line

    problems += _duplicate_problems(seen, file, schema.module)
    args, p = check_args(raw_args, schema, file=file, lines=lines)
    problems += p

    torchrun = TorchrunSettings()
    for key, (value, line) in launch.items():
        lines.setdefault(key, line)  # so hardware checks on torchrun.* name the line
        if key == "master_addr":
            torchrun.master_addr = value
        elif value.isdigit():
            setattr(torchrun, key, int(value))
        else:
            problems.append(
                Problem(
                    WARNING,
                    f"torchrun `--{key} {value}` is not a number; 1 is used.",
                    "Give a number of processes.",
                    file=file,
                    line=line,
                    field=f"torchrun.{key}",
                    code="torchrun_value",
                )
            )
    deepspeed = DeepSpeedSettings(config_file=deepspeed_path) if deepspeed_path else None
    config = StudioConfig(args, torchrun, deepspeed, module=schema.module)
    if relative_paths(config, base):
        # the script's relative paths are the script's folder's: the config records it, so it
        # trains the same from any working folder (studio.config.base_of)
        config = replace(config, studio={"base_dir": str(base.resolve())})

    problems += _path_problems(config, base, file, lines)
    checks = (preflight.check_precision, preflight.check_processes)
    from studio.facts.hardware import detect

    hw = hardware or detect()
    for check in checks:
        problems += [_at_line(p, file, lines) for p in check(config, hw, schema)]
    if env:
        problems.append(
            Problem(
                INFO,
                "environment variables set by the script: "
                + ", ".join(sorted(env))
                + "; the studio does not set them.",
                "Set them in your shell before starting the studio if needed.",
                file=file,
                code="env",
            )
        )
    return ImportResult(config, problems, env, module)


def _at_line(problem: Problem, file: str, lines: dict[str, int]) -> Problem:
    from dataclasses import replace

    key = (problem.field or "").removeprefix("torchrun.")
    return replace(
        problem,
        file=file,
        line=problem.line or lines.get(key) or (1 if key == "nproc_per_node" else None),
    )


def _duplicate_problems(seen: dict, file: str, module: str = modules.DEFAULT_MODULE) -> list:
    out = []
    for key, uses in seen.items():
        if len(uses) < 2:
            continue
        where = ", ".join(f"line {line}" for _, line in uses)
        winner = " ".join(uses[-1][0]) or "(on)"
        fix = f"Keep one `--{key}`."
        if key.startswith("query_instruction_"):
            twin = key.replace("query_", "passage_", 1)
            fix = (
                f"The second one was probably meant as `--{twin}` (the passage side). "
                f"Rename it, or keep one `--{key}`."
            )
        own = modules.MODULES.get(module)
        if own is not None and key in own.duplicate_notes:
            fix = own.duplicate_notes[key]
        out.append(
            Problem(
                WARNING,
                f"`--{key}` is given {len(uses)} times ({where}); the last value wins: {winner!r}.",
                fix,
                field=key,
                file=file,
                line=uses[-1][1],
                code="duplicate",
            )
        )
    return out


def _path_problems(
    config: StudioConfig, base: Path, file: str, lines: dict[str, int]
) -> list[Problem]:
    out = []
    checks: list[tuple[str, str]] = [("train_data", p) for p in config.args.get("train_data", [])]
    if config.deepspeed and config.deepspeed.config_file:
        checks.append(("deepspeed", config.deepspeed.config_file))
    model = config.args.get("model_name_or_path")
    if model and looks_like_path(model):
        checks.append(("model_name_or_path", model))
    for key, raw in checks:
        resolved = (base / raw).resolve()
        if not resolved.exists():
            out.append(
                Problem(
                    WARNING,
                    f"`{raw}` (--{key}) does not exist: resolved against "
                    f"{base.resolve()} it is {resolved}.",
                    "Fix the path in the config, or import with --base-dir set to "
                    "the folder the script ran from.",
                    field=key,
                    file=file,
                    line=lines.get(key),
                    code="path_missing",
                )
            )
    return out
