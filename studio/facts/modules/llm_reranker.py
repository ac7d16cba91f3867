"""``reranker.decoder_only.base``: an LLM reranker (decoder-only, LoRA, "Yes" logit)."""

from studio.facts.modules.base import (
    LORA_FLAGS,
    PACKAGE,
    RERANK_FLAGS,
    RR,
    FinetuneModule,
    llm_reranker_usage,
)

_F = f"{PACKAGE}.reranker.decoder_only.base"

MODULE = FinetuneModule(
    "reranker.decoder_only.base",
    f"{_F}:RerankerModelArguments",
    f"{RR}:AbsRerankerDataArguments",
    f"{RR}:AbsRerankerTrainingArguments",
    f"{_F}:DecoderOnlyRerankerRunner",
    "LLM reranker (decoder-only, LoRA)",
    legacy=("FlagEmbedding.llm_reranker.finetune_for_instruction.run",),
    basic=(*RERANK_FLAGS, *LORA_FLAGS),
    defaults={"use_lora": True},
    loader="FlagEmbedding.FlagLLMReranker",
    inference_class="FlagEmbedding:FlagLLMReranker",
    usage=llm_reranker_usage("FlagLLMReranker"),
)
