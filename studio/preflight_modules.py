"""Pre-flight rules that depend on the fine-tune module (BGE-M3, rerankers, LLM modules).

Each rule reads what FlagEmbedding 1.4.2's code for that module does with the flags (the runner,
the dataset, ``load_model.py``) and says, before GPU hours are spent, what will fail or silently
do nothing. :mod:`studio.preflight` runs them after its own rules; every face shows them.

The model is inspected without loading weights: its ``config.json`` (positions, ``auto_map``),
and for LoRA its module names from a model built on the ``meta`` device.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from studio import modules
from studio.config import StudioConfig
from studio.hardware import Hardware
from studio.modules import ICL, LAYERWISE, M3
from studio.problems import ERROR, INFO, WARNING, Problem
from studio.schema import Schema

Check = Callable[[StudioConfig, Hardware, Schema], list[Problem]]
LAYERWISE_MODEL_TYPES = ("from_raw_model", "from_finetuned_model")


def _module(config: StudioConfig) -> modules.FinetuneModule:
    return modules.get(config.module)


def model_config(model: str | None) -> dict | None:
    """The model's config.json when it is a local folder (no hub access), else None."""
    if not model:
        return None
    path = Path(model) / "config.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------- BGE-M3


def check_m3(config: StudioConfig, hw: Hardware, schema: Schema) -> list[Problem]:
    """unified_finetuning / use_self_distill / self_distill_start_step / fix_encoder, as
    EncoderOnlyEmbedderM3Model.forward and its runner use them."""
    if config.module != M3:
        return []
    get = lambda name: config.get(name, schema)  # noqa: E731
    unified, distill = get("unified_finetuning"), get("use_self_distill")
    out = []
    if get("fix_encoder") and not unified:
        out.append(
            Problem(
                ERROR,
                "`fix_encoder` freezes the encoder and leaves only the ColBERT and sparse heads "
                "to train, but without `unified_finetuning` they are not in the loss: nothing "
                "is trainable and the first step fails (`element 0 of tensors does not require "
                "grad`).",
                "Turn `unified_finetuning` on, or `fix_encoder` off.",
                field="fix_encoder",
                code="m3_nothing_to_train",
            )
        )
    if distill and not unified:
        out.append(
            Problem(
                WARNING,
                "`use_self_distill` does nothing without `unified_finetuning`: self-distillation "
                "teaches dense, sparse and ColBERT from their ensemble, which only unified "
                "fine-tuning computes.",
                "Turn `unified_finetuning` on, or `use_self_distill` off.",
                field="use_self_distill",
                code="m3_distill_unused",
            )
        )
    max_steps = get("max_steps") or 0
    start = get("self_distill_start_step")
    if unified and distill and max_steps > 0 and start >= max_steps - 1:
        out.append(
            Problem(
                WARNING,
                f"self-distillation starts after step {start} (`self_distill_start_step`), "
                f"but the run stops at step {max_steps}: it never happens.",
                "Lower `self_distill_start_step` (-1 distills from the first step).",
                field="self_distill_start_step",
                code="m3_distill_never",
            )
        )
    if not unified:
        out.append(
            Problem(
                INFO,
                "`unified_finetuning` is off: only the dense embedding is trained, and the "
                "saved model has no colbert_linear.pt / sparse_linear.pt, so BGEM3FlagModel "
                "loads fresh random ColBERT and sparse heads (sparse weights and ColBERT scores "
                "of the result are meaningless).",
                "Turn `unified_finetuning` on to tune dense, sparse and ColBERT together.",
                field="unified_finetuning",
                code="m3_dense_only",
            )
        )
    out += _kd_loss_unused(config, schema)
    if unified:
        out += _m3_special_tokens(config.args.get("model_name_or_path"))
    return out


M3_SPECIAL_TOKENS = ("cls_token", "eos_token", "pad_token", "unk_token")


def tokenizer_special_tokens(model: str | None) -> set[str] | None:
    """The special tokens a local tokenizer defines (from its JSON files, not loading it)."""
    if not model or not Path(model).is_dir():
        return None
    found: set[str] = set()
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        try:
            data = json.loads((Path(model) / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        found |= {k for k in M3_SPECIAL_TOKENS if data.get(k) not in (None, "")}
    return found


def _m3_special_tokens(model: str | None) -> list[Problem]:
    """EncoderOnlyEmbedderM3Model._sparse_embedding zeroes the cls, eos, pad and unk tokens'
    weights by id: a tokenizer without one of them (BERT has no eos) gives None there."""
    found = tokenizer_special_tokens(model)
    if found is None:
        return []
    missing = [t for t in M3_SPECIAL_TOKENS if t not in found]
    if not missing:
        return []
    return [
        Problem(
            ERROR,
            f"the tokenizer defines no {', '.join(missing)}: with `unified_finetuning` M3's "
            "sparse head looks up the cls, eos, pad and unk token ids, and the first step "
            "fails (`Could not infer dtype of NoneType`).",
            f"Start from a tokenizer that has them (XLM-R / bge-m3 do), or set {missing[0]} "
            'in the model folder\'s tokenizer_config.json (for BERT: "eos_token": "[SEP]").',
            field="model_name_or_path",
            code="m3_special_tokens",
        )
    ]


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
    """The same for the other embedder modules (M3's rule covers M3)."""
    if config.module == M3:
        return []
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


def check_layerwise(config: StudioConfig, hw: Hardware, schema: Schema) -> list[Problem]:
    if config.module != LAYERWISE:
        return []
    out = []
    model_type = config.get("model_type", schema)
    if model_type not in LAYERWISE_MODEL_TYPES:
        out.append(
            Problem(
                WARNING,
                f"`model_type {model_type}` is not a layerwise model type; FlagEmbedding loads "
                "anything but from_raw_model as from_finetuned_model.",
                "Use from_raw_model (a MiniCPM base) or from_finetuned_model "
                "(bge-reranker-v2-minicpm-layerwise).",
                field="model_type",
                code="layerwise_model_type",
            )
        )
    model = str(config.args.get("model_name_or_path") or "")
    remote = not config.get("trust_remote_code", schema) and model_config(model) is None
    if remote and "minicpm" in model.lower():
        out.append(
            _remote_code(
                f"`{model}` is a MiniCPM model with its own code in the repository",
                "Turn `trust_remote_code` on.",
            )
        )
    return out


def check_icl_examples(config: StudioConfig, hw: Hardware, schema: Schema) -> list[Problem]:
    """The ICL dataset adds an example only while the examples stay within query_max_len - 512
    tokens (DecoderOnlyEmbedderICLSameDatasetTrainDataset._create_batch_data)."""
    if config.module != ICL:
        return []
    if not config.get("retrieval_use_examples", schema):
        return []
    query_max_len = config.get("query_max_len", schema)
    shortest = 8  # an example is at least a few tokens: query, suffix, passage
    if query_max_len - 512 >= shortest:
        return []
    return [
        Problem(
            WARNING,
            f"`query_max_len` {query_max_len} leaves no room for in-context examples: "
            "FlagEmbedding adds examples only within query_max_len - 512 tokens, so every "
            "query trains without them.",
            "Raise `query_max_len` (FlagEmbedding's example uses 2048), or turn "
            "`retrieval_use_examples` off to say so.",
            field="query_max_len",
            code="icl_no_examples",
        )
    ]


# --------------------------------------------------------------------------- any model


def check_remote_code(config: StudioConfig, hw: Hardware, schema: Schema) -> list[Problem]:
    """A local model whose config.json maps to its own code (``auto_map``) needs the flag."""
    cfg = model_config(config.args.get("model_name_or_path"))
    if not cfg or not cfg.get("auto_map") or config.get("trust_remote_code", schema):
        return []
    return [
        _remote_code(
            f"the model's config.json maps to its own code ({', '.join(cfg['auto_map'])})",
            "Turn `trust_remote_code` on (read the model's code first).",
        )
    ]


def _remote_code(what: str, fix: str) -> Problem:
    """A model with its own code and `trust_remote_code` off: one rule (``remote_code``), found
    from a local ``auto_map`` or from a MiniCPM hub name."""
    message = f"{what}: transformers refuses to load it without `trust_remote_code`."
    return Problem(ERROR, message, fix, field="trust_remote_code", code="remote_code")


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
    check_m3,
    check_kd_loss,
    check_reranker_lengths,
    check_layerwise,
    check_icl_examples,
    check_remote_code,
    check_flash_attn,
    check_lora_targets,
)
