"""``embedder.encoder_only.base``: the BGE embedder (encoder-only, one dense vector per text).

The studio's default module. Its export is the sentence-transformers folder
(:mod:`studio.evaluation.export`), so it declares no card lines of its own.
"""

from studio.facts.modules.base import EMB, PACKAGE, FinetuneModule

MODULE = FinetuneModule(
    "embedder.encoder_only.base",
    f"{EMB}:AbsEmbedderModelArguments",
    f"{EMB}:AbsEmbedderDataArguments",
    f"{EMB}:AbsEmbedderTrainingArguments",
    f"{PACKAGE}.embedder.encoder_only.base:EncoderOnlyEmbedderRunner",
    "Embedder (encoder-only, BGE)",
    legacy=("FlagEmbedding.baai_general_embedding.finetune.run",),
    loader="FlagEmbedding.FlagModel / sentence_transformers.SentenceTransformer",
)
