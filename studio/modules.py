"""FlagEmbedding 1.4.2's fine-tune modules: which dataclasses and runner each one uses.

Every fine-tune mode is a package under ``FlagEmbedding.finetune.`` whose ``__main__`` parses its
own three dataclasses with ``HfArgumentParser`` and hands them to its own runner. The studio names
a mode by that package's tail (``module:`` in a config, e.g. ``reranker.encoder_only.base``) and
reads this table to build the schema, the command and the in-process runner, so the form, the
checks and the training all follow the same classes FlagEmbedding's own ``__main__`` would use.

The table names classes by import path (strings), not objects: importing FlagEmbedding costs
seconds, and the CLI, the web UI and the schema cache must be able to list modules without it.

It also holds the pre-1.3 launch paths FlagEmbedding removed, each with the modern module that
replaced it, so a script importer can say "this is X now" instead of "unknown module".
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

PACKAGE = "FlagEmbedding.finetune"
# The seven modules' names: every other module (evaluation, checks, export) imports these.
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


@dataclass(frozen=True)
class FinetuneModule:
    """One fine-tune mode: where its argument classes and its runner live."""

    name: str  # the tail under FlagEmbedding.finetune., e.g. "embedder.encoder_only.m3"
    model_args: str  # "package:ClassName"
    data_args: str
    training_args: str
    runner: str
    title: str  # a short human name for menus

    @property
    def python_module(self) -> str:
        """What ``python -m`` / ``torchrun -m`` runs."""
        return f"{PACKAGE}.{self.name}"

    @property
    def kind(self) -> str:
        """``embedder`` or ``reranker``: decides the loss fields, preview and evaluation."""
        return self.name.split(".")[0]

    @property
    def is_reranker(self) -> bool:
        return self.kind == "reranker"

    @property
    def is_decoder(self) -> bool:
        """Decoder-only (LLM) modes: LoRA fields, flash attention, last-token pooling."""
        return ".decoder_only." in f".{self.name}."

    def classes(self) -> tuple[type, type, type]:
        """The (model, data, training) dataclasses, in the order ``__main__`` parses them."""
        return tuple(_resolve(p) for p in (self.model_args, self.data_args, self.training_args))

    def runner_class(self) -> type:
        return _resolve(self.runner)


def _resolve(path: str) -> type:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


_EMB = "FlagEmbedding.abc.finetune.embedder"
_RR = "FlagEmbedding.abc.finetune.reranker"
_F = PACKAGE

# Read from each module's __main__.py in FlagEmbedding 1.4.2 (the classes it parses and runs).
MODULES: dict[str, FinetuneModule] = {
    m.name: m
    for m in (
        FinetuneModule(
            BASE,
            f"{_EMB}:AbsEmbedderModelArguments",
            f"{_EMB}:AbsEmbedderDataArguments",
            f"{_EMB}:AbsEmbedderTrainingArguments",
            f"{_F}.embedder.encoder_only.base:EncoderOnlyEmbedderRunner",
            "Embedder (encoder-only, BGE)",
        ),
        FinetuneModule(
            M3,
            f"{_F}.embedder.encoder_only.m3:EncoderOnlyEmbedderM3ModelArguments",
            f"{_EMB}:AbsEmbedderDataArguments",
            f"{_F}.embedder.encoder_only.m3:EncoderOnlyEmbedderM3TrainingArguments",
            f"{_F}.embedder.encoder_only.m3:EncoderOnlyEmbedderM3Runner",
            "BGE-M3 (dense + sparse + ColBERT)",
        ),
        FinetuneModule(
            DECODER_EMBEDDER,
            f"{_F}.embedder.decoder_only.base:DecoderOnlyEmbedderModelArguments",
            f"{_EMB}:AbsEmbedderDataArguments",
            f"{_EMB}:AbsEmbedderTrainingArguments",
            f"{_F}.embedder.decoder_only.base:DecoderOnlyEmbedderRunner",
            "LLM embedder (decoder-only, LoRA)",
        ),
        FinetuneModule(
            ICL,
            f"{_F}.embedder.decoder_only.icl:DecoderOnlyEmbedderICLModelArguments",
            f"{_F}.embedder.decoder_only.icl:DecoderOnlyEmbedderICLDataArguments",
            f"{_EMB}:AbsEmbedderTrainingArguments",
            f"{_F}.embedder.decoder_only.icl:DecoderOnlyEmbedderICLRunner",
            "LLM embedder with in-context examples (ICL)",
        ),
        FinetuneModule(
            RERANKER,
            f"{_RR}:AbsRerankerModelArguments",
            f"{_RR}:AbsRerankerDataArguments",
            f"{_RR}:AbsRerankerTrainingArguments",
            f"{_F}.reranker.encoder_only.base:EncoderOnlyRerankerRunner",
            "Reranker (cross-encoder)",
        ),
        FinetuneModule(
            DECODER_RERANKER,
            f"{_F}.reranker.decoder_only.base:RerankerModelArguments",
            f"{_RR}:AbsRerankerDataArguments",
            f"{_RR}:AbsRerankerTrainingArguments",
            f"{_F}.reranker.decoder_only.base:DecoderOnlyRerankerRunner",
            "LLM reranker (decoder-only, LoRA)",
        ),
        FinetuneModule(
            LAYERWISE,
            f"{_F}.reranker.decoder_only.layerwise:RerankerModelArguments",
            f"{_RR}:AbsRerankerDataArguments",
            f"{_RR}:AbsRerankerTrainingArguments",
            f"{_F}.reranker.decoder_only.layerwise:DecoderOnlyRerankerRunner",
            "Layerwise LLM reranker (MiniCPM layerwise)",
        ),
    )
}

# Launch paths of FlagEmbedding before 1.3 (removed since; they live on under research/ in its
# repository; read from the last commit before the 1.3 refactor), each with the module that
# does the same job in 1.4.2. Flags changed names too: the importer reports, it does not map.
LEGACY_MODULES: dict[str, str] = {
    "FlagEmbedding.baai_general_embedding.finetune.run": "embedder.encoder_only.base",
    "FlagEmbedding.BGE_M3.run": "embedder.encoder_only.m3",
    "FlagEmbedding.reranker.run": "reranker.encoder_only.base",
    "FlagEmbedding.llm_reranker.finetune_for_instruction.run": "reranker.decoder_only.base",
    "FlagEmbedding.llm_reranker.finetune_for_layerwise.run": "reranker.decoder_only.layerwise",
    "FlagEmbedding.llm_dense_retriever.finetune.run": "embedder.decoder_only.base",
}


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
    if dotted == "studio.train_entry":
        return DEFAULT_MODULE, "studio"
    tail = from_python_module(dotted)
    return (tail, "flagembedding") if tail else (DEFAULT_MODULE, "other")


def from_python_module(dotted: str) -> str | None:
    """The module tail for a ``-m`` target, or None when it is not one of FlagEmbedding's."""
    tail = normalize(dotted)
    return tail if tail in MODULES else None
