"""Embed texts with a model the way FlagEmbedding's encoder-only embedder does.

Mining hard negatives needs the model's own view of similarity: the same weights, the same
pooling (`cls`, `mean` or `last_token`, from the config's `sentence_pooling_method`) and
normalised vectors, so inner product is cosine. Plain transformers are used rather than
sentence-transformers because FlagEmbedding's saved models carry no pooling config (a
SentenceTransformer would silently mean-pool a CLS-trained model).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from studio.config import StudioConfig, resolve_model

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
        import torch
        from transformers import AutoModel, AutoTokenizer

        if pooling not in POOLING:
            raise ValueError(f"pooling must be one of {', '.join(POOLING)}, not {pooling!r}")
        model = resolve_model(str(model), Path("."))
        self.name = str(model)
        self.pooling = pooling
        self.normalize = normalize
        self.max_length = max_length
        self.batch_size = batch_size
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(model, trust_remote_code=trust_remote_code)
        self.model = AutoModel.from_pretrained(model, trust_remote_code=trust_remote_code)
        self.model.to(self.device).eval()

    @classmethod
    def from_config(cls, config: StudioConfig, base_dir: str | Path = ".", **overrides) -> Encoder:
        """The config's model with its pooling; max_length defaults to `passage_max_len`."""
        options = {
            "pooling": config.get("sentence_pooling_method") or "cls",
            "max_length": int(config.get("passage_max_len") or 256),
            "trust_remote_code": bool(config.get("trust_remote_code")),
            **overrides,
        }
        model = resolve_model(config.get("model_name_or_path") or "", Path(base_dir))
        return cls(model, **options)

    def _pool(self, hidden, mask):
        import torch

        if self.pooling == "cls":
            return hidden[:, 0]
        if self.pooling == "mean":
            summed = (hidden * mask.unsqueeze(-1).to(hidden.dtype)).sum(dim=1)
            return summed / mask.sum(dim=1, keepdim=True).clamp(min=1).to(hidden.dtype)
        # last_token, as FlagEmbedding does it for left- and right-padded batches
        if bool(mask[:, -1].all()):
            return hidden[:, -1]
        lengths = mask.sum(dim=1) - 1
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), lengths]

    def encode(
        self, texts: list[str], progress: Progress | None = None, stage: str = "encoding"
    ) -> np.ndarray:
        """float32 vectors, one row per text, in input order (normalised unless told not to)."""
        import numpy as np
        import torch

        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # similar lengths batch
        dim = self.model.config.hidden_size
        out = np.zeros((len(texts), dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                batch = self.tokenizer(
                    [texts[i] for i in idx],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                ).to(self.device)
                hidden = self.model(**batch, return_dict=True).last_hidden_state
                vectors = self._pool(hidden, batch["attention_mask"])
                if self.normalize:
                    vectors = torch.nn.functional.normalize(vectors, dim=-1)
                out[idx] = vectors.float().cpu().numpy()
                if progress:
                    progress(stage, min(start + self.batch_size, len(order)), len(order))
        return out
