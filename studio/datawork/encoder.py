"""Embed texts for mining with the config's model and pooling, through the studio's one encoder.

Mining hard negatives needs the model's own view of similarity: the same weights, the same
pooling (`cls`, `mean` or `last_token`) and normalised vectors, so inner product is cosine.
The forward pass is :class:`studio.evaluation.encoder.Encoder` (FlagEmbedding's pooling, batches
by token budget); this adapter adds what mining needs: a model resolved from a config, a fixed
max length, and progress reports between chunks.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from studio.core.config import StudioConfig, resolve_model

if TYPE_CHECKING:
    import numpy as np

Progress = Callable[[str, int, int], None]
POOLING = ("cls", "mean", "last_token")


class Encoder:
    def __init__(
        self,
        model: str | Path,
        pooling: str = "cls",
        normalize: bool = True,
        max_length: int = 256,
        batch_size: int = 32,
        trust_remote_code: bool = False,
        device: str | None = None,
    ):
        from studio.evaluation.encoder import Encoder as ModelEncoder

        if pooling not in POOLING:
            raise ValueError(f"pooling must be one of {', '.join(POOLING)}, not {pooling!r}")
        model = resolve_model(str(model), Path("."))
        self.name = str(model)
        self.pooling = pooling
        self.normalize = normalize
        self.max_length = max_length
        self.batch_size = batch_size  # texts per progress report
        self._encoder = ModelEncoder(model, pooling, normalize, device=device)
        self.device = self._encoder.device

    @classmethod
    def from_config(cls, config: StudioConfig, base_dir: str | Path = ".", **overrides) -> Encoder:
        """The config's model with its pooling; max_length defaults to `passage_max_len`."""
        options = {
            "pooling": config.get("sentence_pooling_method") or "cls",
            "normalize": bool(config.get("normalize_embeddings")),
            "max_length": int(config.get("passage_max_len") or 256),
            **overrides,
        }
        options.pop("trust_remote_code", None)
        model = resolve_model(config.get("model_name_or_path") or "", Path(base_dir))
        return cls(model, **options)

    def encode(
        self, texts: list[str], progress: Progress | None = None, stage: str = "encoding"
    ) -> np.ndarray:
        """float32 vectors, one row per text, in input order (normalised unless told not to)."""
        import numpy as np

        if not progress:
            return self._encoder.encode(texts, self.max_length)
        step = max(self.batch_size * 8, 256)
        parts = []
        for start in range(0, len(texts), step):
            parts.append(self._encoder.encode(texts[start : start + step], self.max_length))
            progress(stage, min(start + step, len(texts)), len(texts))
        if not parts:
            return self._encoder.encode([], self.max_length)
        return np.concatenate(parts)
