"""FlagEmbedding 1.4.2's fine-tune modules: the registry, one file per module.

Every fine-tune mode is a package under ``FlagEmbedding.finetune.`` whose ``__main__`` parses its
own three dataclasses with ``HfArgumentParser`` and hands them to its own runner. The studio names
a mode by that package's tail (``module:`` in a config, e.g. ``reranker.encoder_only.base``).

Each module's specifics (its classes, basic flags and form group, the values a flag takes only
in it, its pre-flight rules, how it is evaluated, loaded and exported, its pre-1.3 launch paths)
live in its own file here, as one :class:`~studio.modules.base.FinetuneModule` named ``MODULE``.
Shared code asks :func:`get` for a config's module and reads those fields. Adding a module is
one new file and its name in :data:`REGISTERED`.

Classes are named by import path (strings), not objects: importing FlagEmbedding costs seconds,
and the CLI, the web UI and the schema cache must be able to list modules without it.
"""

from __future__ import annotations

import importlib

from studio.facts.modules.base import PACKAGE, FinetuneModule

# The module files, in menu order (the first is the default): one line per module.
REGISTERED = (
    "embedder",
    "m3",
    "decoder",
    "icl",
    "reranker",
    "llm_reranker",
    "layerwise",
)

MODULES: dict[str, FinetuneModule] = {
    m.name: m for m in (importlib.import_module(f"{__name__}.{f}").MODULE for f in REGISTERED)
}
# The seven modules' names, for code that means one of them (defaults, examples, tests);
# shared code reads a module's fields instead of comparing names.
BASE = "embedder.encoder_only.base"
M3 = "embedder.encoder_only.m3"
DECODER_EMBEDDER = "embedder.decoder_only.base"
ICL = "embedder.decoder_only.icl"
RERANKER = "reranker.encoder_only.base"
DECODER_RERANKER = "reranker.decoder_only.base"
LAYERWISE = "reranker.decoder_only.layerwise"
DEFAULT_MODULE = BASE
# How a studio run tells its entry point (studio.train_entry) which module to build; stripped
# before FlagEmbedding's parser sees the flags.
ENTRY_FLAG = "--finetune_module"

# Launch paths of FlagEmbedding before 1.3 (removed since; they live on under research/ in its
# repository), each with the module that does the same job in 1.4.2 (each module's ``legacy``).
# Flags changed names too: the importer reports, it does not map.
LEGACY_MODULES: dict[str, str] = {path: m.name for m in MODULES.values() for path in m.legacy}


def get(name: str | None) -> FinetuneModule:
    """The module named ``name`` (its tail, or the full ``FlagEmbedding.finetune.`` path).

    Raises ValueError naming the modules there are, so every face can show the same message.
    """
    key = normalize(name or DEFAULT_MODULE)
    if key not in MODULES:
        raise ValueError(f"unknown fine-tune module {name!r}; use one of {', '.join(MODULES)}")
    return MODULES[key]


def normalize(name: str) -> str:
    """``FlagEmbedding.finetune.x.y.z`` and ``x.y.z`` both name ``x.y.z``."""
    name = name.strip()
    prefix = PACKAGE + "."
    return name[len(prefix) :] if name.startswith(prefix) else name


def launch_target(dotted: str | None) -> tuple[str, str]:
    """What a script's ``-m`` target is: (module name, how it was recognised).

    ``("reranker.encoder_only.base", "flagembedding")`` for one of the seven,
    ``(modern, "legacy")`` for a pre-1.3 path FlagEmbedding removed, ``(default, "studio")``
    for the studio's own entry point (its ``--finetune_module`` says more), and
    ``(default, "other")`` for anything else.
    """
    if dotted is None:
        return DEFAULT_MODULE, "other"
    if dotted in LEGACY_MODULES:
        return LEGACY_MODULES[dotted], "legacy"
    if dotted == "studio.training.train_entry":
        return DEFAULT_MODULE, "studio"
    tail = from_python_module(dotted)
    return (tail, "flagembedding") if tail else (DEFAULT_MODULE, "other")


def from_python_module(dotted: str) -> str | None:
    """The module tail for a ``-m`` target, or None when it is not one of FlagEmbedding's."""
    tail = normalize(dotted)
    return tail if tail in MODULES else None
