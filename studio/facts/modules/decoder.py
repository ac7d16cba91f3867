"""``embedder.decoder_only.base``: an LLM embedder (decoder-only, LoRA, last-token pooling)."""

from studio.facts.modules.base import EMB, LORA_FLAGS, PACKAGE, FinetuneModule, llm_embedder_usage

_F = f"{PACKAGE}.embedder.decoder_only.base"

MODULE = FinetuneModule(
    "embedder.decoder_only.base",
    f"{_F}:DecoderOnlyEmbedderModelArguments",
    f"{EMB}:AbsEmbedderDataArguments",
    f"{EMB}:AbsEmbedderTrainingArguments",
    f"{_F}:DecoderOnlyEmbedderRunner",
    "LLM embedder (decoder-only, LoRA)",
    legacy=("FlagEmbedding.llm_dense_retriever.finetune.run",),
    basic=(*LORA_FLAGS, "additional_special_tokens"),
    defaults={"use_lora": True},
    loader="FlagEmbedding.FlagLLMModel",
    st_files=True,
    usage=llm_embedder_usage("FlagLLMModel"),
)
