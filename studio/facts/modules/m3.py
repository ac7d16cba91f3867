"""``embedder.encoder_only.m3``: BGE-M3 (dense + sparse + ColBERT from one encoder).

Everything the studio does differently for it is here: its form group, its pre-flight rules
(unified fine-tuning, self-distillation, the special tokens its sparse head needs), its four
evaluation scores (scored by :mod:`studio.evaluation.m3`), and its model card.
"""

import json
from pathlib import Path

from studio.facts.modules.base import EMB, PACKAGE, PASSAGE, QUERY, FinetuneModule, Group, Usage
from studio.facts.problems import ERROR, INFO, WARNING, Problem

_F = f"{PACKAGE}.embedder.encoder_only.m3"
FLAGS = ("colbert_dim", "unified_finetuning", "use_self_distill", "fix_encoder")
SPECIAL_TOKENS = ("cls_token", "eos_token", "pad_token", "unk_token")


def check_m3(config, hw, schema) -> list[Problem]:
    """unified_finetuning / use_self_distill / self_distill_start_step / fix_encoder, as
    EncoderOnlyEmbedderM3Model.forward and its runner use them."""
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
    if unified:
        out += special_tokens_problems(config.args.get("model_name_or_path"))
    return out


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
        found |= {k for k in SPECIAL_TOKENS if data.get(k) not in (None, "")}
    return found


def special_tokens_problems(model: str | None) -> list[Problem]:
    """EncoderOnlyEmbedderM3Model._sparse_embedding zeroes the cls, eos, pad and unk tokens'
    weights by id: a tokenizer without one of them (BERT has no eos) gives None there."""
    found = tokenizer_special_tokens(model)
    if found is None:
        return []
    missing = [t for t in SPECIAL_TOKENS if t not in found]
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


def usage(u: Usage) -> list[str]:
    return [
        "from FlagEmbedding import BGEM3FlagModel",
        "",
        f'model = BGEM3FlagModel("{u.name}", use_fp16=False)',
        f'out = model.encode(["{QUERY}"], return_dense=True, '
        "return_sparse=True, return_colbert_vecs=True)",
        f'scores = model.compute_score([("{QUERY}", '
        f'"{PASSAGE}")], weights_for_different_modes=[0.4, 0.2, 0.4])',
    ]


MODULE = FinetuneModule(
    "embedder.encoder_only.m3",
    f"{_F}:EncoderOnlyEmbedderM3ModelArguments",
    f"{EMB}:AbsEmbedderDataArguments",
    f"{_F}:EncoderOnlyEmbedderM3TrainingArguments",
    f"{_F}:EncoderOnlyEmbedderM3Runner",
    "BGE-M3 (dense + sparse + ColBERT)",
    legacy=("FlagEmbedding.BGE_M3.run",),
    basic=(*FLAGS, "self_distill_start_step"),
    group=Group(
        "BGE-M3",
        "BGE-M3（稠密 + 稀疏 + ColBERT）",
        (*FLAGS, "self_distill_start_step"),
        after="Embedding loss",
    ),
    checks=(check_m3,),
    kd_loss="m3_kd_loss",
    eval_kind="m3",
    eval_modes=("dense", "sparse", "colbert", "hybrid"),
    scorer="studio.evaluation.m3:module_scorer",
    loader="FlagEmbedding.BGEM3FlagModel",
    st_files=True,
    card_what="A BGE-M3 model",
    usage=usage,
)
