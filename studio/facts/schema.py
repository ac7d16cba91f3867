"""The argument schema: every flag a FlagEmbedding fine-tune module accepts.

Why generated and not written by hand: FlagEmbedding's own dataclasses (and HF
``TrainingArguments`` beneath them) are the contract. We read them through
``HfArgumentParser`` — the very parser the training module uses — so names, types,
defaults, ``nargs``, choices (enum fields included) and the bool conventions match what
FlagEmbedding will accept. A new FlagEmbedding release brings its new flags with no code
change here.

Importing FlagEmbedding costs seconds (it pulls torch and transformers), so the generated
schema is cached as JSON keyed by the installed versions; the UI and the CLI start from the
cache and only the first start after an upgrade pays for the import.

What the dataclasses lack (grouping, the "basic" set, Chinese labels) lives beside this
module in :mod:`studio.facts.labels`.

Each fine-tune module (:mod:`studio.facts.modules`) has its own dataclasses, so each has its own
schema: a reranker has no ``temperature``, a multi-vector module adds ``colbert_dim``.
``load_schema(module)`` builds and caches one per module; without an argument it is the base embedder's.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from studio.facts import labels, modules

ENTRY_MODULE = modules.MODULES[modules.DEFAULT_MODULE].python_module
SCHEMA_VERSION = 4

# Fields never shown, pre-filled or stored: `token` reads HF_TOKEN through a default factory
# and must stay a secret; `hub_token`/`push_to_hub_token` likewise. `deepspeed` is owned by
# the config's own `deepspeed:` section.
SECRET_FIELDS = frozenset({"token", "hub_token", "push_to_hub_token"})
MANAGED_FIELDS = frozenset({"deepspeed"})


@dataclass(frozen=True)
class Field:
    """One command-line flag, as FlagEmbedding's parser understands it."""

    name: str
    type: str  # "bool" | "int" | "float" | "str"
    section: str  # "model" | "data" | "training": which dataclass owns it
    default: Any = None
    help: str = ""
    choices: tuple[str, ...] | None = None
    multiple: bool = False  # nargs="+": a list in the config
    required: bool = False
    deprecated: bool = False
    secret: bool = False
    group: str = "Other"
    basic: bool = False
    optional: bool = True  # None is an accepted value (flag omitted)

    @property
    def hidden(self) -> bool:
        return self.deprecated or self.secret or self.name in MANAGED_FIELDS


@dataclass(frozen=True)
class Schema:
    fields: dict[str, Field] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    module: str = modules.DEFAULT_MODULE

    def __contains__(self, name: str) -> bool:
        return name in self.fields

    def __getitem__(self, name: str) -> Field:
        return self.fields[name]

    def visible(self) -> list[Field]:
        return [f for f in self.fields.values() if not f.hidden]

    def basic(self) -> list[Field]:
        order = {name: i for i, name in enumerate(labels.basic_names(self.module))}
        chosen = [f for f in self.visible() if f.basic]
        return sorted(chosen, key=lambda f: order[f.name])

    def groups(self) -> dict[str, list[Field]]:
        """Visible non-basic fields by group, groups in the labels table's order."""
        out: dict[str, list[Field]] = {g: [] for g in labels.GROUP_ORDER}
        for f in self.visible():
            if not f.basic:
                out.setdefault(f.group, []).append(f)
        return {g: fs for g, fs in out.items() if fs}


def installed_versions() -> dict[str, str]:
    """Versions that decide the schema; cheap (no imports of the packages themselves)."""
    versions = {}
    for dist in ("FlagEmbedding", "transformers"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "missing"
    return versions


def _cache_file(versions: dict[str, str], module: str = modules.DEFAULT_MODULE) -> Path:
    root = Path(os.environ.get("BGE_STUDIO_CACHE", Path.home() / ".cache" / "bge-studio"))
    tag = "-".join(f"{k}{v}" for k, v in sorted(versions.items()))
    return root / f"schema-v{SCHEMA_VERSION}-{module}-{tag}.json"


def load_schema(module: str | None = None) -> Schema:
    """The schema of a fine-tune module (default: the base embedder) for the installed
    FlagEmbedding, from the cache when it is current. Raises ValueError for an unknown module."""
    return _load_schema(modules.get(module).name)


@lru_cache(maxsize=len(modules.MODULES))
def _load_schema(module: str) -> Schema:
    versions = installed_versions()
    cache = _cache_file(versions, module)
    try:
        raw = json.loads(cache.read_text(encoding="utf-8"))
        return _from_json(raw, versions, module)
    except (OSError, ValueError, TypeError, KeyError):
        pass
    fields = build_fields(module)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps([dataclasses.asdict(f) for f in fields]), encoding="utf-8")
        tmp.replace(cache)
    except OSError:
        pass  # a read-only home only costs start-up time
    return Schema({f.name: f for f in fields}, versions, module)


def _from_json(raw: list[dict], versions: dict[str, str], module: str) -> Schema:
    fields = []
    for item in raw:
        if item.get("choices") is not None:
            item["choices"] = tuple(item["choices"])
        fields.append(Field(**item))
    return Schema({f.name: f for f in fields}, versions, module)


def argument_dataclasses(module: str | None = None) -> tuple[type, type, type]:
    """FlagEmbedding's (model, data, training) argument classes of a fine-tune module."""
    return modules.get(module).classes()


def build_fields(module: str | None = None) -> list[Field]:
    """Generate the fields from the dataclasses, through HF's own argument parser."""
    from transformers import HfArgumentParser

    classes = argument_dataclasses(module)
    basic = labels.basic_names(modules.get(module).name)
    parser = HfArgumentParser(classes)
    actions = {}
    for action in parser._actions:
        if action.option_strings and action.option_strings[0] == f"--{action.dest}":
            actions[action.dest] = action  # the --no_x twin has dest x but another string
    fields = []
    for section, cls in zip(("model", "data", "training"), classes, strict=True):
        for dc_field in dataclasses.fields(cls):
            if not dc_field.init or dc_field.name not in actions:
                continue  # e.g. `_n_gpu` (init=False) has no flag
            fields.append(_field_from(dc_field, actions[dc_field.name], section, basic))
    return fields


def _field_from(dc_field: dataclasses.Field, action, section: str, basic=labels.BASIC) -> Field:
    name = dc_field.name
    help_text = str(dc_field.metadata.get("help", "") or "")
    kind = _kind_of(action)
    choices = tuple(str(c) for c in action.choices) if action.choices else None
    if choices is None and isinstance(action.type, type) and issubclass(action.type, Enum):
        choices = tuple(str(m.value) for m in action.type)  # e.g. `--debug` takes enum members
    if choices is None and dc_field.metadata.get("choices"):
        choices = tuple(str(c) for c in dc_field.metadata["choices"])
    default = None if name in SECRET_FIELDS else _jsonable(action.default)
    if kind == "bool" and default is None:
        default = False
    return Field(
        name=name,
        type=kind,
        section=section,
        default=default,
        help=help_text,
        choices=choices,
        multiple=action.nargs == "+",
        required=bool(action.required),
        deprecated="deprecat" in help_text.lower(),
        secret=name in SECRET_FIELDS,
        group=labels.group_of(name, section),
        basic=name in basic,
        optional=action.default is None,
    )


def _kind_of(action) -> str:
    fn = action.type
    if fn is None:
        return "str"
    if getattr(fn, "__name__", "") == "string_to_bool":
        return "bool"
    if fn is int:
        return "int"
    if fn is float:
        return "float"
    return "str"  # str itself, enum choice functions, and dict-as-JSON-string fields


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if hasattr(value, "value"):  # Enum members
        return _jsonable(value.value)
    return str(value)
