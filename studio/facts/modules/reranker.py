"""``reranker.encoder_only.base``: the cross-encoder reranker (BGE reranker)."""

from studio.facts.modules.base import (
    PACKAGE,
    PASSAGE,
    QUERY,
    RERANK_FLAGS,
    RR,
    FinetuneModule,
    Usage,
)


def usage(u: Usage) -> list[str]:
    """FlagReranker, or sentence-transformers' CrossEncoder told to return the raw logit."""
    return [
        "from FlagEmbedding import FlagReranker",
        "",
        f'reranker = FlagReranker("{u.name}", use_fp16=False)',
        f'scores = reranker.compute_score([["{QUERY}", "{PASSAGE}"]])',
        "",
        "# or with sentence-transformers (raw logits, the same scores):",
        "from sentence_transformers import CrossEncoder",
        "",
        f'model = CrossEncoder("{u.name}")',
        f'scores = model.predict([("{QUERY}", "{PASSAGE}")])',
    ]


MODULE = FinetuneModule(
    "reranker.encoder_only.base",
    f"{RR}:AbsRerankerModelArguments",
    f"{RR}:AbsRerankerDataArguments",
    f"{RR}:AbsRerankerTrainingArguments",
    f"{PACKAGE}.reranker.encoder_only.base:EncoderOnlyRerankerRunner",
    "Reranker (cross-encoder)",
    legacy=("FlagEmbedding.reranker.run",),
    basic=RERANK_FLAGS,
    defaults={"max_len": 512},
    loader="FlagEmbedding.FlagReranker / sentence_transformers.CrossEncoder",
    inference_class="FlagEmbedding:FlagReranker",
    cross_encoder=True,
    usage=usage,
)
