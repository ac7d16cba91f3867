"""``reranker.decoder_only.layerwise``: the layerwise LLM reranker (MiniCPM, a score per layer).

Everything the studio does differently for it is here: its `model_type` values (it redefines
the flag), its form group, its pre-flight rules, the remote code its models need, the class a
LoRA adapter is merged into, and how it is scored and loaded (the last layer's score).
"""

from studio.facts.modules.base import (
    LORA_FLAGS,
    PACKAGE,
    RERANK_FLAGS,
    RR,
    FinetuneModule,
    Group,
    llm_reranker_usage,
    model_config,
    remote_code_problem,
)
from studio.facts.problems import WARNING, Problem

_F = f"{PACKAGE}.reranker.decoder_only.layerwise"
# Its own comment in FlagEmbedding's arguments.py: from_raw_model | from_finetuned_model (the
# other rerankers' `model_type` is encoder | decoder).
MODEL_TYPES = ("from_raw_model", "from_finetuned_model")


def check_layerwise(config, hw, schema) -> list[Problem]:
    """Its `model_type` values, and the remote code of a MiniCPM model from the hub."""
    out = []
    model_type = config.get("model_type", schema)
    if model_type not in MODEL_TYPES:
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
            remote_code_problem(
                f"`{model}` is a MiniCPM model with its own code in the repository",
                "Turn `trust_remote_code` on.",
            )
        )
    return out


def prepare(model) -> None:
    """Score with the last layer, as the model card ranks; FlagEmbedding 1.4.2's MiniCPM code
    calls DynamicCache.get_usable_length, gone in transformers 4.57: scoring needs no cache,
    and without one that path is not taken."""
    model.cutoff_layers = [int(model.model.config.num_hidden_layers)]
    model.model.config.use_cache = False


MODULE = FinetuneModule(
    "reranker.decoder_only.layerwise",
    f"{_F}:RerankerModelArguments",
    f"{RR}:AbsRerankerDataArguments",
    f"{RR}:AbsRerankerTrainingArguments",
    f"{_F}:DecoderOnlyRerankerRunner",
    "Layerwise LLM reranker (MiniCPM layerwise)",
    legacy=("FlagEmbedding.llm_reranker.finetune_for_layerwise.run",),
    basic=(*RERANK_FLAGS, *LORA_FLAGS, "model_type", "start_layer", "head_multi", "head_type"),
    group=Group(
        "Layerwise reranker",
        "分层重排序模型",
        ("start_layer", "head_multi", "head_type"),
        after="LoRA & LLM",
    ),
    values={"model_type": MODEL_TYPES},
    duplicate_notes={
        "model_type": (
            "layerwise redefines `model_type` as from_raw_model | from_finetuned_model "
            "(any other value loads as from_finetuned_model); the base reranker's "
            "`encoder`/`decoder` value is a leftover. Keep the layerwise one."
        )
    },
    checks=(check_layerwise,),
    defaults={"use_lora": True, "model_type": "from_raw_model"},
    loader="FlagEmbedding.LayerWiseFlagLLMReranker",
    inference_class="FlagEmbedding:LayerWiseFlagLLMReranker",
    prepare=prepare,
    remote_code=True,
    merge_class=f"{_F}.modeling_minicpm_reranker:LayerWiseMiniCPMForCausalLM",
    usage=llm_reranker_usage(
        "LayerWiseFlagLLMReranker",
        extra=", trust_remote_code=True",
        score_extra=", cutoff_layers=[-1]",
        fix=(
            "# FlagEmbedding 1.4.2's MiniCPM code needs the cache off under transformers>=4.57",
            "reranker.model.config.use_cache = False",
        ),
    ),
)
