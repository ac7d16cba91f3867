"""Turning texts into embeddings with a plain transformers model, as FlagEmbedding trains it.

The forward pass is FlagEmbedding's ``BiEncoderOnlyEmbedderModel.encode``: tokenize with
truncation at the max length, run ``AutoModel``, pool the last hidden state (``cls``: the first
token; ``mean``: the attention-masked mean; ``last_token``: the last real token, or the last
position under left padding) and L2-normalize when the config says so. That makes the scores
the scores the model was trained to produce.

Speed on a CPU comes from doing less, not from lower precision: fp32 (fp16 on a CPU is slower
and changes the numbers), texts sorted by token length and batched under a token budget so
padding is minimal, ``torch.inference_mode``, and every available core. Nothing here is loaded
unless an embedding is missing from the cache.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

TOKENS_PER_BATCH = 4096
MAX_BATCH = 128


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def pool(last_hidden_state, attention_mask, method: str):
    """FlagEmbedding 1.4.2 ``_sentence_embedding``, line for line."""
    import torch

    if method == "cls":
        return last_hidden_state[:, 0]
    if method == "mean":
        summed = torch.sum(last_hidden_state * attention_mask.unsqueeze(-1).float(), dim=1)
        return summed / attention_mask.sum(dim=1, keepdim=True).float()
    if method == "last_token":
        left_padding = attention_mask[:, -1].sum() == attention_mask.shape[0]
        if left_padding:
            return last_hidden_state[:, -1]
        lengths = attention_mask.sum(dim=1) - 1
        rows = torch.arange(last_hidden_state.shape[0], device=last_hidden_state.device)
        return last_hidden_state[rows, lengths]
    raise ValueError(f"pooling method {method!r} is not one of cls, mean, last_token")


class Encoder:
    """One loaded model; :meth:`encode` returns float32 embeddings in input order."""

    def __init__(
        self,
        model_dir: str | Path,
        pooling: str,
        normalize: bool,
        device: str | None = None,
        tokens_per_batch: int = TOKENS_PER_BATCH,
        decoder_tokens: bool = False,
    ):
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.pooling = pooling
        self.normalize = normalize
        self.tokens_per_batch = tokens_per_batch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if self.device == "cpu":
            torch.set_num_threads(available_cores())
        if decoder_tokens:
            # As FlagEmbedding's decoder-only runners tokenize: EOS appended, padded on the left.
            self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), add_eos_token=True)
            self.tokenizer.padding_side = "left"
        else:
            self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        self.model = AutoModel.from_pretrained(str(model_dir))
        self.model.to(device=self.device, dtype=torch.float32).eval()
        self.hidden_size = int(getattr(self.model.config, "hidden_size", 0) or 0)

    def _pad(self, rows: list[dict[str, list[int]]]):
        import torch

        width = max(len(r["input_ids"]) for r in rows)
        left = self.tokenizer.padding_side == "left"
        pad_id = self.tokenizer.pad_token_id
        if pad_id is None:
            pad_id = self.tokenizer.eos_token_id or 0
        pad_values = {
            "input_ids": pad_id,
            "attention_mask": 0,
            "token_type_ids": getattr(self.tokenizer, "pad_token_type_id", 0) or 0,
        }
        batch = {}
        for key, fill in pad_values.items():
            if key not in rows[0]:
                continue
            padded = []
            for r in rows:
                extra = [fill] * (width - len(r[key]))
                padded.append(extra + list(r[key]) if left else list(r[key]) + extra)
            batch[key] = torch.tensor(padded, dtype=torch.long, device=self.device)
        return batch

    def encode(self, texts: list[str], max_len: int) -> np.ndarray:
        import torch

        if not texts:
            return np.zeros((0, self.hidden_size), dtype=np.float32)
        tokens = self.tokenizer(
            list(texts), truncation=True, max_length=max_len, return_attention_mask=True
        )
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in tokens]
        rows = [{k: tokens[k][i] for k in keys} for i in range(len(texts))]
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i]["input_ids"]))
        chunks: list[tuple[list[int], np.ndarray]] = []
        start = 0
        with torch.inference_mode():
            while start < len(order):
                width = len(rows[order[start]]["input_ids"])  # the longest of this batch
                size = max(1, min(MAX_BATCH, self.tokens_per_batch // max(width, 1)))
                ids = order[start : start + size]
                batch = self._pad([rows[i] for i in ids])
                hidden = self.model(**batch, return_dict=True).last_hidden_state
                emb = pool(hidden, batch["attention_mask"], self.pooling)
                if self.normalize:
                    emb = torch.nn.functional.normalize(emb, dim=-1)
                chunks.append((ids, emb.float().cpu().numpy()))
                start += size
        out = np.empty((len(rows), chunks[0][1].shape[1]), dtype=np.float32)
        for ids, emb in chunks:
            out[ids] = emb
        return out
