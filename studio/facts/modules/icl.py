"""``embedder.decoder_only.icl``: an LLM embedder that puts in-context examples before queries."""

from studio.facts.modules.base import EMB, LORA_FLAGS, PACKAGE, FinetuneModule, llm_embedder_usage
from studio.facts.problems import WARNING, Problem

_F = f"{PACKAGE}.embedder.decoder_only.icl"


def check_icl_examples(config, hw, schema) -> list[Problem]:
    """The ICL dataset adds an example only while the examples stay within query_max_len - 512
    tokens (DecoderOnlyEmbedderICLSameDatasetTrainDataset._create_batch_data)."""
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


MODULE = FinetuneModule(
    "embedder.decoder_only.icl",
    f"{_F}:DecoderOnlyEmbedderICLModelArguments",
    f"{_F}:DecoderOnlyEmbedderICLDataArguments",
    f"{EMB}:AbsEmbedderTrainingArguments",
    f"{_F}:DecoderOnlyEmbedderICLRunner",
    "LLM embedder with in-context examples (ICL)",
    basic=(
        *LORA_FLAGS,
        "additional_special_tokens",
        "example_query_max_len",
        "example_passage_max_len",
        "retrieval_use_examples",
        "icl_suffix_str",
    ),
    checks=(check_icl_examples,),
    in_context_examples=True,
    defaults={"use_lora": True},
    loader="FlagEmbedding.FlagICLModel",
    st_files=True,
    usage=llm_embedder_usage("FlagICLModel"),
)
