"""Pre-flight rules that depend on the fine-tune module: shared ones (rerankers, LLM modules)
here, and each module's own rules from its file in :mod:`studio.facts.modules` (its ``checks``).

Each rule reads what FlagEmbedding 1.4.2's code for that module does with the flags (the runner,
the dataset, ``load_model.py``) and says, before GPU hours are spent, what will fail or silently
do nothing. :mod:`studio.checks.preflight` runs them after its own rules; every face shows them.

The model is inspected without loading weights: its ``config.json`` (positions, ``auto_map``),
and for LoRA its module names from a model built on the ``meta`` device.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from functools import lru_cache

from studio.core.config import StudioConfig
from studio.facts import modules
from studio.facts.hardware import Hardware
from studio.facts.modules.base import model_config, remote_code_problem
from studio.facts.problems import ERROR, WARNING, Problem
from studio.facts.schema import Schema

Check = Callable[[StudioConfig, Hardware, Schema], list[Problem]]


def _module(config: StudioConfig) -> modules.FinetuneModule:
    return modules.get(config.module)


# --------------------------------------------------------------------------- the module's own


def check_module(config: StudioConfig, hw: Hardware, schema: Schema) -> list[Problem]:
    """The rules of the config's module, from its file (studio.modules)."""
    return [p for check in _module(config).checks for p in check(config, hw, schema)]


# --------------------------------------------------------------------------- embedders


def _kd_loss_unused(config: StudioConfig, schema: Schema) -> list[Problem]:
    if "kd_loss_type" not in schema or config.get("kd_loss_type", schema) != "m3_kd_loss":
        return []
    if config.get("knowledge_distillation", schema):
        return []
    return [
        Problem(
            WARNING,
            "`kd_loss_type m3_kd_loss` is ignored: it is the loss against teacher scores, and "
            "`knowledge_distillation` is off, so no teacher scores are read and the plain "
            "contrastive loss is used.",
            "Turn `knowledge_distillation` on (rows need `pos_scores` and `neg_scores`), "
            "or drop `kd_loss_type`.",
            field="kd_loss_type",
            code="kd_loss_unused",
        )
    ]


def check_kd_loss(config: StudioConfig, hw: Hardware, schema: Schema) -> list[Problem]:
    """A `kd_loss_type` that nothing reads, in any module that has the flag."""
    return _kd_loss_unused(config, schema)


# --------------------------------------------------------------------------- rerankers


def reranker_pair_length(config: StudioConfig, schema: Schema) -> int:
    """The length FlagEmbedding cuts a query + passage pair to: query_max_len + passage_max_len
    (AbsRerankerTrainDataset.max_length); `max_len` is not read by 1.4.2's reranker datasets."""
    return config.get("query_max_len", schema) + config.get("passage_max_len", schema)


def check_reranker_lengths(config: StudioConfig, hw: Hardware, schema: Schema) -> list[Problem]:
    if not _module(config).is_reranker:
        return []
    out = []
    pair = reranker_pair_length(config, schema)
    max_len = config.args.get("max_len")
    if max_len is not None and max_len != pair:
        out.append(
            Problem(
                WARNING,
                f"`max_len` {max_len} is not used by FlagEmbedding 1.4.2's reranker datasets: "
                f"a query + passage pair is cut at query_max_len + passage_max_len = {pair} "
                "tokens (the passage side is cut first).",
                f"Set query_max_len and passage_max_len so that they add up to {max_len}.",
                field="max_len",
                code="max_len_unused",
            )
        )
    cfg = model_config(config.args.get("model_name_or_path")) or {}
    positions = cfg.get("max_position_embeddings")
    if _module(config).is_decoder or not isinstance(positions, int):
        return out
    if pair > positions:
        out.append(
            Problem(
                WARNING,
                f"pairs can reach {pair} tokens (query_max_len + passage_max_len), but the model "
                f"has {positions} positions: training stops with a tensor size error "
                f"({pair} vs {positions}) at the first pair longer than that.",
                f"Keep query_max_len + passage_max_len at or below {positions}.",
                field="passage_max_len",
                code="pair_too_long",
            )
        )
    return out


# --------------------------------------------------------------------------- any model


def check_remote_code(config: StudioConfig, hw: Hardware, schema: Schema) -> list[Problem]:
    """A local model whose config.json maps to its own code (``auto_map``) needs the flag."""
    cfg = model_config(config.args.get("model_name_or_path"))
    if not cfg or not cfg.get("auto_map") or config.get("trust_remote_code", schema):
        return []
    return [
        remote_code_problem(
            f"the model's config.json maps to its own code ({', '.join(cfg['auto_map'])})",
            "Turn `trust_remote_code` on (read the model's code first).",
        )
    ]


# --------------------------------------------------------------------------- LLM modules


def check_flash_attn(config: StudioConfig, hw: Hardware, schema: Schema) -> list[Problem]:
    if "use_flash_attn" not in schema or not config.get("use_flash_attn", schema):
        return []
    missing = importlib.util.find_spec("flash_attn") is None
    if not missing and hw.gpu_count:
        return []
    why = "the flash-attn package is not installed" if missing else "no GPU is visible"
    return [
        Problem(
            ERROR,
            f"`use_flash_attn` asks transformers for FlashAttention 2, but {why}: loading the "
            "model fails.",
            "Turn `use_flash_attn` off"
            + (" or `pip install flash-attn` on a CUDA machine." if missing else "."),
            field="use_flash_attn",
            code="flash_attn",
        )
    ]


@lru_cache(maxsize=8)
def module_names(model: str, trust_remote_code: bool = False) -> frozenset[str] | None:
    """The leaf names of a local model's modules (`q_proj`, ...), from a weightless build on
    the meta device; None when the model cannot be built without network or weights."""
    if model_config(model) is None:
        return None
    try:
        import torch
        from transformers import AutoConfig, AutoModel

        cfg = AutoConfig.from_pretrained(model, trust_remote_code=trust_remote_code)
        with torch.device("meta"):
            built = AutoModel.from_config(cfg, trust_remote_code=trust_remote_code)
    except Exception:  # noqa: BLE001 - an unknown architecture only skips this rule
        return None
    return frozenset(name.rsplit(".", 1)[-1] for name, _ in built.named_modules() if name)


def check_lora_targets(config: StudioConfig, hw: Hardware, schema: Schema) -> list[Problem]:
    if "target_modules" not in schema or not config.get("use_lora", schema):
        return []
    if config.args.get("from_peft"):
        return []  # the adapter brings its own targets
    model = config.args.get("model_name_or_path")
    names = module_names(str(model), bool(config.get("trust_remote_code", schema)))
    if names is None:
        return []
    targets = [t for t in config.get("target_modules", schema) or [] if t != "embed_tokens"]
    absent = [t for t in targets if t not in names]
    if not absent:
        return []
    linear = sorted(n for n in names if n.endswith("proj") or n in ("query", "key", "value"))
    hint = f" Its layers include: {', '.join(linear[:12])}." if linear else ""
    if len(absent) == len(targets):
        return [
            Problem(
                ERROR,
                f"none of the LoRA `target_modules` ({', '.join(targets)}) is in the model: "
                "peft stops with `Target modules ... not found in the base model`.",
                "Name the model's own linear layers." + hint,
                field="target_modules",
                code="lora_targets_missing",
            )
        ]
    return [
        Problem(
            WARNING,
            f"LoRA `target_modules` {', '.join(absent)} are not in the model; LoRA is applied "
            f"to {', '.join(t for t in targets if t not in absent)} only.",
            "Drop the names the model lacks." + hint,
            field="target_modules",
            code="lora_targets_partial",
        )
    ]


MODULE_CHECKS: tuple[Check, ...] = (
    check_module,
    check_kd_loss,
    check_reranker_lengths,
    check_remote_code,
    check_flash_attn,
    check_lora_targets,
)
