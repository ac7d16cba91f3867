"""What every fine-tune module declares: the one record the shared code reads.

A module's file (``studio/modules/<file>.py``) builds one :class:`FinetuneModule` named
``MODULE``: its FlagEmbedding classes (as import-path strings, so listing modules costs no
import of FlagEmbedding), the flags its form shows first and groups apart, the values a flag
takes only in it, its pre-flight rules, how it is evaluated, loaded and exported. Shared code
(schema, form, pre-flight, script import, evaluation, export) asks :mod:`studio.facts.modules` for
the module of a config and reads these fields; it never tests for a module by name.

This file and the module files import nothing of the studio above :mod:`studio.facts.problems`;
hooks that need more get it as arguments.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.facts.problems import ERROR, Problem

PACKAGE = "FlagEmbedding.finetune"
EMB = "FlagEmbedding.abc.finetune.embedder"  # the embedders' shared argument classes
RR = "FlagEmbedding.abc.finetune.reranker"  # the rerankers'

# Flags several modules' example scripts add to the basic set.
LORA_FLAGS: tuple[str, ...] = (
    "use_lora",
    "lora_rank",
    "lora_alpha",
    "lora_dropout",
    "target_modules",
    "save_merged_lora_model",
    "use_flash_attn",
)
RERANK_FLAGS: tuple[str, ...] = (
    "max_len",
    "query_instruction_for_rerank",
    "passage_instruction_for_rerank",
    "sep_token",
)
# The score names each evaluation kind writes into eval.json (``modes``); the first is the
# headline. A module with scores of its own declares its own ``eval_modes``.
KIND_MODES: dict[str, tuple[str, ...]] = {
    "embedder": ("dense",),
    "reranker": ("rerank", "first_stage"),
}
CARD_WHAT = {"embedder": "An embedding model", "reranker": "A reranker"}
QUERY = "how do I split a path?"
PASSAGE = "os.path.split(p): Split a pathname."

Check = Callable[..., list[Problem]]  # (config, hardware, schema) -> problems


@dataclass(frozen=True)
class Group:
    """A form group of the module's own flags: its name, its Chinese name, its flags, and the
    shared group it follows in the form."""

    name: str
    zh: str
    flags: tuple[str, ...]
    after: str


@dataclass(frozen=True)
class Usage:
    """What a model card's "how to load it" lines need (:mod:`studio.evaluation.export_modes`)."""

    name: str  # the folder to load (``<model>/merged_model`` when a merged copy exists)
    base: str  # the base model an adapter goes on
    adapter: bool  # a LoRA adapter with no merged copy
    query_instruction: str | None
    query_format: str

    @property
    def target(self) -> str:
        return f'"{self.base}"' if self.adapter else f'"{self.name}"'

    @property
    def peft(self) -> str:
        return f', peft_path="{self.name}"' if self.adapter else ""


@dataclass(frozen=True)
class FinetuneModule:
    """One fine-tune mode: where its classes live, and everything the studio does differently
    for it. Defaults are what most modules share; a module's file sets what differs."""

    name: str  # the tail under FlagEmbedding.finetune., e.g. "embedder.encoder_only.base"
    model_args: str  # "package:ClassName"
    data_args: str
    training_args: str
    runner: str
    title: str  # a short human name for menus
    # Pre-1.3 launch paths (FlagEmbedding removed them) that did this module's job.
    legacy: tuple[str, ...] = ()
    # Flags of FlagEmbedding's example script for it beyond labels.BASIC, in its order.
    basic: tuple[str, ...] = ()
    group: Group | None = None
    # Flags that mean something else here: the values this module accepts.
    values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Script import: the fix to show when a flag of this module is given twice.
    duplicate_notes: Mapping[str, str] = field(default_factory=dict)
    checks: tuple[Check, ...] = ()  # its own pre-flight rules
    kd_loss: str = ""  # the `kd_loss_type` its own distillation uses (data work says so)
    # Its queries carry other rows of the batch as examples: the data preview shows them
    # (studio.datawork.module_preview's in-context rules).
    in_context_examples: bool = False
    # FlagEmbedding 1.4.2 defaults of this module that differ from the others'.
    defaults: Mapping[str, Any] = field(default_factory=dict)
    # Evaluation: a kind of its own (with its own score names and scorer), or its kind's.
    eval_kind: str = ""
    eval_modes: tuple[str, ...] = ()
    scorer: str = ""  # "package:function" that scores a model of an eval kind of its own
    loader: str = ""  # the inference class users load a fine-tuned model with
    inference_class: str = ""  # "package:Class" a reranker is scored with
    prepare: Callable[[Any], None] | None = None  # adjusts the loaded inference model
    remote_code: bool = False  # its models always need trust_remote_code
    merge_class: str = ""  # "package:Class" a LoRA adapter is merged into (default: Auto*)
    st_files: bool = False  # export: also write sentence-transformers files
    cross_encoder: bool = False  # export: config.json tells CrossEncoder the raw logit
    card_what: str = ""  # the model card's first words
    usage: Callable[[Usage], list[str]] | None = None  # the model card's loading lines

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

    @property
    def evaluation(self) -> str:
        """How it is scored: ``embedder``, ``reranker``, or a kind of its own."""
        return self.eval_kind or self.kind

    @property
    def modes(self) -> tuple[str, ...]:
        """The score names its evaluation writes, the headline first."""
        return self.eval_modes or KIND_MODES[self.kind]

    @property
    def card_words(self) -> str:
        return self.card_what or CARD_WHAT[self.kind]

    def classes(self) -> tuple[type, type, type]:
        """The (model, data, training) dataclasses, in the order ``__main__`` parses them."""
        return tuple(resolve(p) for p in (self.model_args, self.data_args, self.training_args))

    def runner_class(self) -> type:
        return resolve(self.runner)


def resolve(path: str) -> Any:
    """The object a ``"package.module:name"`` string names (imported now, not before)."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


# --------------------------------------------------------------------------- shared by rules


def model_config(model: str | None) -> dict | None:
    """The model's config.json when it is a local folder (no hub access), else None."""
    if not model:
        return None
    path = Path(model) / "config.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def remote_code_problem(what: str, fix: str) -> Problem:
    """A model with its own code and `trust_remote_code` off: one rule (``remote_code``), found
    from a local ``auto_map`` or from a module's knowledge of its models."""
    message = f"{what}: transformers refuses to load it without `trust_remote_code`."
    return Problem(ERROR, message, fix, field="trust_remote_code", code="remote_code")


# --------------------------------------------------------------------------- shared card lines


def llm_reranker_usage(cls: str, extra: str = "", score_extra: str = "", fix=()) -> Callable:
    """The card lines of a decoder reranker loaded with FlagEmbedding's ``cls``."""

    def usage(u: Usage) -> list[str]:
        return [
            f"from FlagEmbedding import {cls}",
            "",
            f"reranker = {cls}({u.target}{u.peft}, use_fp16=False{extra})",
            *fix,
            f'scores = reranker.compute_score([["{QUERY}", "{PASSAGE}"]]{score_extra})',
        ]

    return usage


def llm_embedder_usage(cls: str) -> Callable:
    """The card lines of a decoder embedder loaded with FlagEmbedding's ``cls`` (an adapter is
    merged into its base first)."""

    def usage(u: Usage) -> list[str]:
        lines = [f"from FlagEmbedding import {cls}", ""]
        name = u.name
        if u.adapter:
            lines = [
                "from peft import PeftModel",
                "from transformers import AutoModel",
                "",
                f'model = PeftModel.from_pretrained(AutoModel.from_pretrained("{u.base}"), '
                f'"{name}")',
                f'model.merge_and_unload().save_pretrained("{name}-merged")  # then load that:',
                *lines,
            ]
            name = f"{name}-merged"
        instr = f", query_instruction_for_retrieval={u.query_instruction!r}"
        fmt = f", query_instruction_format={u.query_format!r}"
        options = instr + fmt if u.query_instruction else ""
        return lines + [
            f'model = {cls}("{name}"{options}, use_fp16=False)',
            f'q = model.encode_queries(["{QUERY}"])',
            f'p = model.encode_corpus(["{PASSAGE}"])',
            "scores = q @ p.T",
        ]

    return usage
