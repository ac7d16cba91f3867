"""Which evaluation a fine-tune module gets, and the few facts about it the evaluation needs.

FlagEmbedding 1.4.2 fine-tunes seven kinds of model (``FlagEmbedding.finetune.<module>``); each
is scored the way it is used (its ``eval_kind`` in :mod:`studio.facts.modules`, else its kind):

``embedder``  one dense vector per text, exact inner-product search (decoder modules: last-token
              pooling, the tokenizer's EOS appended as in training, LoRA adapters merged first)
``reranker``  a first-stage embedder retrieves the top k, the reranker reorders them
a kind of its own   a module with several scores (dense, sparse, multi-vector, hybrid) names
              them (``eval_modes``) and the function that scores them (``scorer``)

The module comes from the config (its top-level ``module:`` key); a config without one is the
base embedder, as before the key existed. Values a config leaves out are FlagEmbedding's defaults
for that module, which differ between modules (``use_lora`` is on by default for the decoder ones),
so they are read here with the module's default rather than from the base embedder's schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from studio.facts import modules as finetune
from studio.facts.modules import BASE

# The module names come from studio.modules, the one list of what FlagEmbedding fine-tunes.
MODULES = tuple(finetune.MODULES)
DECODER = tuple(name for name, m in finetune.MODULES.items() if m.is_decoder)
# How each module is scored: its kind (embedder/reranker), or a kind of its own.
KINDS = {name: m.evaluation for name, m in finetune.MODULES.items()}
# The score names each kind writes into eval.json (``modes``), the first one is the headline.
MODE_NAMES = {m.evaluation: m.modes for m in finetune.MODULES.values()}
# The hybrid weights of dense, sparse and multi-vector (ColBERT) scores: the model card's example.
M3_WEIGHTS = (0.4, 0.2, 0.4)
# Passages the first stage hands the reranker per query.
RERANK_TOP_K = 100
# Where each module's inference class lives, as users load a fine-tuned model.
LOADERS = {name: m.loader for name, m in finetune.MODULES.items()}
# FlagEmbedding 1.4.2 defaults that differ by module (the rest are the same everywhere).
_DEFAULTS: dict[str, dict[str, Any]] = {
    name: dict(m.defaults) for name, m in finetune.MODULES.items() if m.defaults
}
_COMMON_DEFAULTS: dict[str, Any] = {
    "max_len": 512,
    "query_max_len": 32,
    "passage_max_len": 128,
    "colbert_dim": -1,
    "sentence_pooling_method": "cls",
    "normalize_embeddings": True,
    "trust_remote_code": False,
    "save_merged_lora_model": False,
    "use_lora": False,
}


def module_of(config) -> str:
    """The FlagEmbedding module a StudioConfig trains (the base embedder when it names none)."""
    if config is None:
        return BASE
    module = getattr(config, "module", None)
    if module is None and hasattr(config, "args"):
        module = config.args.get("module")
    return finetune.normalize(str(module or BASE))


def kind_of(module: str) -> str:
    """``embedder``, ``reranker`` or the module's own kind; ValueError naming the known modules
    otherwise."""
    try:
        return KINDS[module]
    except KeyError:
        raise ValueError(
            f"module {module!r} is not one the studio evaluates. Fix: one of {', '.join(MODULES)}."
        ) from None


def arg(config, name: str, module: str | None = None) -> Any:
    """A flag's value as FlagEmbedding sees it for this module: the config's, else its default."""
    if config is not None and name in config.args:
        return config.args[name]
    module = module or module_of(config)
    if name in _DEFAULTS.get(module, {}):
        return _DEFAULTS[module][name]
    return _COMMON_DEFAULTS.get(name)


def is_decoder(module: str) -> bool:
    return module in DECODER


def parse_weights(text: str | Sequence[float] | None) -> tuple[float, float, float]:
    """``"0.4,0.2,0.4"`` -> dense, sparse, ColBERT weights; ValueError with the fix otherwise."""
    if text is None:
        return M3_WEIGHTS
    items = text.replace(",", " ").split() if isinstance(text, str) else list(text)
    try:
        weights = tuple(float(w) for w in items)
    except (TypeError, ValueError):
        weights = ()
    if len(weights) != 3 or min(weights) < 0 or sum(weights) <= 0:
        raise ValueError(
            f"hybrid weights {text!r}: give three non-negative numbers for dense, sparse and "
            "ColBERT that do not all be zero, e.g. 0.4,0.2,0.4"
        )
    return weights  # type: ignore[return-value]
