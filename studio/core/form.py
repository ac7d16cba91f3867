"""The config as a form: which flag goes on which page, and widget values <-> config values.

Both faces (Gradio and ipywidgets) build their inputs from this module, so a field's page,
order, widget kind and the way its text is read back are decided once. Widgets hold plain
values (text, numbers, bools); this module turns them into a :class:`StudioConfig` with the
config's own type checks, and back.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Any

from studio.core.config import (
    STUDIO_KEYS,
    TORCHRUN_RANGES,
    DeepSpeedSettings,
    StudioConfig,
    TorchrunSettings,
    _in_range,
    coerce,
)
from studio.facts.problems import ERROR, Problem
from studio.facts.schema import Field, Schema, load_schema

# The "Model & data" page, in order; everything else of the schema is on "Training".
MODEL_DATA = (
    "model_name_or_path",
    "train_data",
    "output_dir",
    "sentence_pooling_method",
    "normalize_embeddings",
    "query_instruction_for_retrieval",
    "query_instruction_format",
    "passage_instruction_for_retrieval",
    "passage_instruction_format",
    "query_max_len",
    "passage_max_len",
)
# Set on the "Launch" page through one precision choice.
PRECISION_FLAGS = ("fp16", "bf16")
PRECISIONS = ("fp32", "fp16", "bf16")
DS_MODES = ("none", "generated", "file")
DS_PRECISIONS = ("auto", "fp32", "fp16", "bf16")  # the generated DeepSpeed JSON's fp16/bf16


def widget_kind(f: Field) -> str:
    """checkbox | dropdown | number | integer | text | lines."""
    if f.type == "bool":
        return "checkbox"
    if f.choices and not f.multiple:
        return "dropdown"
    if f.multiple:
        return "lines" if f.type == "str" else "text"
    if f.type in ("int", "float") and f.default is not None:
        return "integer" if f.type == "int" else "number"
    return "text"


def model_data_fields(schema: Schema | None = None) -> list[Field]:
    schema = schema or load_schema()
    return [schema[n] for n in MODEL_DATA if n in schema]


def training_fields(schema: Schema | None = None) -> tuple[list[Field], dict[str, list[Field]]]:
    """(basic fields, {group: fields}) for the Training page, minus the other pages' fields."""
    schema = schema or load_schema()
    taken = set(MODEL_DATA) | set(PRECISION_FLAGS)
    basic = [f for f in schema.basic() if f.name not in taken]
    groups = {g: [f for f in fs if f.name not in taken] for g, fs in schema.groups().items()}
    return basic, {g: fs for g, fs in groups.items() if fs}


def form_field_names(schema: Schema | None = None) -> list[str]:
    basic, groups = training_fields(schema)
    names = [f.name for f in model_data_fields(schema)] + [f.name for f in basic]
    return names + [f.name for fs in groups.values() for f in fs]


@functools.cache
def all_modules_layout() -> tuple[list[Field], list[Field], dict[str, list[Field]]]:
    """(Model & data, basic, {group: fields}) over every fine-tune module, for a face that
    builds its widgets once and shows each module's own (see :func:`module_field_names`).

    A flag is placed where the first module that has it (in :data:`studio.facts.modules.MODULES`
    order) places it, and described by that module's field.
    """
    from studio.facts.modules import MODULES

    seen: set[str] = set()
    model_data: list[Field] = []
    basic: list[Field] = []
    groups: dict[str, list[Field]] = {}
    for module in MODULES:
        schema = load_schema(module)
        for f in model_data_fields(schema):
            if f.name not in seen:
                seen.add(f.name)
                model_data.append(f)
        module_basic, module_groups = training_fields(schema)
        for f in module_basic:
            if f.name not in seen:
                seen.add(f.name)
                basic.append(f)
        for group, fields in module_groups.items():
            for f in fields:
                if f.name not in seen:
                    seen.add(f.name)
                    groups.setdefault(group, []).append(f)
    return model_data, basic, groups


@functools.cache
def module_field_names(module: str) -> frozenset[str]:
    """The form fields a module shows."""
    return frozenset(form_field_names(load_schema(module)))


def to_widget(f: Field, value: Any) -> Any:
    """A config value as the widget shows it (lists as lines/space-separated text)."""
    if value is None:
        value = f.default
    kind = widget_kind(f)
    if kind == "checkbox":
        return bool(value)
    if kind == "lines":
        return "\n".join(str(v) for v in value or [])
    if kind == "text":
        if value is None:
            return ""
        return " ".join(str(v) for v in value) if isinstance(value, list) else str(value)
    return value


def from_widget(f: Field, raw: Any) -> Any:
    """A widget value as the config holds it (None: not set). Raises ValueError if bad."""
    if widget_kind(f) == "lines":
        raw = [line.strip() for line in str(raw or "").splitlines() if line.strip()]
        return coerce(f, raw) if raw else None
    if isinstance(raw, str) and raw.strip() == "" and f.type != "str":
        return None
    if isinstance(raw, str) and f.type == "str" and raw == "" and f.default in (None, ""):
        return None
    value = coerce(f, raw)
    if f.type == "float" and isinstance(value, float) and value.is_integer():
        value = int(value)  # a number widget says 4.0 where the user meant 4 (`--save_steps 4`)
    return value


def field_error(name: str, raw: Any, schema: Schema | None = None) -> str | None:
    """The message to show at a field whose widget value cannot be used, else None."""
    schema = schema or load_schema()
    try:
        from_widget(schema[name], raw)
    except ValueError as exc:
        return str(exc)
    return None


def values_to_config(
    values: dict[str, Any],
    launch: dict[str, Any],
    studio: dict[str, Any] | None = None,
    explicit: tuple[str, ...] = (),
    schema: Schema | None = None,
) -> tuple[StudioConfig, list[Problem]]:
    """Build a config from widget values: only flags that differ from FlagEmbedding's default
    go in, so the command stays the short list of what the user chose; flags named in
    `explicit` (those of a loaded config) stay even at their default."""
    schema = schema or load_schema()
    args: dict[str, Any] = {}
    problems: list[Problem] = []
    for name, raw in values.items():
        f = schema[name]
        try:
            value = from_widget(f, raw)
        except ValueError as exc:
            problems.append(
                Problem(ERROR, f"bad value for `{name}`: {exc}.", field=name, code="bad_value")
            )
            continue
        if value is not None and (value != f.default or name in explicit):
            args[name] = value
    precision = launch.get("precision", "fp32")
    if precision in ("fp16", "bf16"):
        args[precision] = True
    torchrun = TorchrunSettings(
        nproc_per_node=int(launch.get("nproc_per_node") or 1),
        nnodes=int(launch.get("nnodes") or 1),
        node_rank=int(launch.get("node_rank") or 0),
        master_addr=str(launch.get("master_addr") or "127.0.0.1"),
        master_port=int(launch["master_port"]) if launch.get("master_port") else None,
    )
    for key, (low, high) in TORCHRUN_RANGES.items():
        value = getattr(torchrun, key)
        if value is not None and not _in_range(key, value):
            problems.append(
                Problem(
                    ERROR,
                    f"`{key}` must be from {low}{f' to {high}' if high else ' up'}, got {value}.",
                    field=f"torchrun.{key}",
                    code="bad_value",
                )
            )
    mode = launch.get("ds_mode", "generated")
    deepspeed = None
    if mode == "generated":
        deepspeed = DeepSpeedSettings(
            stage=int(launch.get("ds_stage") or 0),
            offload_optimizer=bool(launch.get("ds_offload_optimizer")),
            offload_param=bool(launch.get("ds_offload_param")),
            precision=str(launch.get("ds_precision") or "auto"),
        )
    elif mode == "file":
        if launch.get("ds_file"):
            deepspeed = DeepSpeedSettings(config_file=str(launch["ds_file"]))
        else:
            problems.append(
                Problem(
                    ERROR,
                    "DeepSpeed is set to a file but no file is given.",
                    "Give the JSON's path, or pick 'generated'.",
                    field="deepspeed",
                    code="ds_missing",
                )
            )
    config = StudioConfig(args, torchrun, deepspeed, dict(studio or {}), schema.module)
    return config, problems


def config_to_values(config: StudioConfig, schema: Schema | None = None) -> dict[str, Any]:
    schema = schema or load_schema()
    return {
        name: to_widget(schema[name], config.args.get(name)) for name in form_field_names(schema)
    }


def config_to_launch(config: StudioConfig) -> dict[str, Any]:
    ds = config.deepspeed
    precision = "bf16" if config.args.get("bf16") else "fp16" if config.args.get("fp16") else "fp32"
    return {
        "precision": precision,
        "nproc_per_node": config.torchrun.nproc_per_node,
        "nnodes": config.torchrun.nnodes,
        "node_rank": config.torchrun.node_rank,
        "master_addr": config.torchrun.master_addr,
        "master_port": config.torchrun.master_port,
        "ds_mode": "none" if ds is None else "file" if ds.config_file else "generated",
        "ds_stage": ds.stage if ds and not ds.config_file else 0,
        "ds_offload_optimizer": bool(ds and ds.offload_optimizer),
        "ds_offload_param": bool(ds and ds.offload_param),
        "ds_precision": ds.precision if ds and not ds.config_file else "auto",
        "ds_file": ds.config_file if ds and ds.config_file else "",
    }


LAUNCH_KEYS = tuple(config_to_launch(StudioConfig()).keys())
# The launch settings picked from a list, and their lists (the others are numbers, text, boxes).
LAUNCH_CHOICES = {
    "precision": PRECISIONS,
    "ds_mode": DS_MODES,
    "ds_stage": (0, 1, 2, 3),
    "ds_precision": DS_PRECISIONS,
}
# How the Launch page groups them: one row each.
LAUNCH_ROWS = (
    ("precision",),
    ("nproc_per_node", "nnodes", "node_rank", "master_addr", "master_port"),
    ("ds_mode",),
    ("ds_stage", "ds_offload_optimizer", "ds_offload_param", "ds_precision"),
    ("ds_file",),
)


def with_studio(config: StudioConfig, **studio: Any) -> StudioConfig:
    return replace(config, studio={**config.studio, **studio})


def studio_label(key: str) -> str:
    """The label of a `studio:` key's widget: words, then the key as it is written in YAML."""
    return f"{key.replace('_', ' ').capitalize()} · studio.{key}"


def studio_to_widgets(config: StudioConfig) -> dict[str, Any]:
    """The config's `studio:` section as widgets show it: a box for a flag, text for the rest
    (numbers too, so a cleared field means "the default"; unset: empty text, unticked box)."""
    return {
        key: bool(config.studio.get(key))
        if kind is bool
        else ("" if config.studio.get(key) is None else str(config.studio[key]))
        for key, kind in STUDIO_KEYS.items()
    }


def studio_from_widgets(values: dict[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
    """Widget values back into a `studio:` section: only what is set (a ticked box, some text,
    a whole number), so an untouched form writes no `studio:` keys; a number field holding
    something else is a problem naming the key."""
    out: dict[str, Any] = {}
    problems: list[Problem] = []
    for key, kind in STUDIO_KEYS.items():
        value = values.get(key)
        text = "" if value is None else str(value).strip()
        if kind is bool:
            if value:
                out[key] = True
        elif kind is str:
            if text:
                out[key] = text
        elif text:
            try:
                number = float(text)
            except ValueError:
                number = None
            if number is None or not number.is_integer():
                problems.append(
                    Problem(
                        ERROR,
                        f"`studio.{key}` must be a whole number, got {text!r}.",
                        "Type a whole number, or clear the field for the default.",
                        field=f"studio.{key}",
                        code="bad_value",
                    )
                )
            else:
                out[key] = int(number)
    return out, problems
