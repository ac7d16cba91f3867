"""How texts become embeddings: pooling, normalization, instructions and max lengths.

An evaluation is only meaningful with the settings the model was trained with. A model
fine-tuned with CLS pooling and an instruction, scored with mean pooling and no instruction,
looks worse than it is. So the settings come, in this order, from

1. what the caller states explicitly (CLI flags, function arguments),
2. the training config (a studio YAML or a run's config.yaml): FlagEmbedding's own flags
   ``sentence_pooling_method``, ``normalize_embeddings``, ``query_max_len``, ``passage_max_len``,
   ``query_instruction_for_retrieval``/``_format``, ``passage_instruction_for_retrieval``/``_format``
   with FlagEmbedding's defaults for the ones not set,
3. for a bare model, its sentence-transformers files (``modules.json``, ``1_Pooling/config.json``,
   ``sentence_bert_config.json``): the bundled all-MiniLM-L6-v2 is mean-pooled and normalized,
4. FlagEmbedding's training defaults (cls pooling, normalized, 32/128 tokens).

Texts are formatted as FlagEmbedding formats them at training time:
``format.format(instruction, text)`` (instruction first; ``\\n`` in a format means a newline).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

POOLINGS = ("cls", "mean", "last_token")
# FlagEmbedding 1.4.2 AbsEmbedderDataArguments / AbsEmbedderModelArguments defaults.
FE_DEFAULTS = {
    "pooling": "cls",
    "normalize": True,
    "query_max_len": 32,
    "passage_max_len": 128,
}


@dataclass(frozen=True)
class EncodeSettings:
    pooling: str = "cls"
    normalize: bool = True
    query_max_len: int = 32
    passage_max_len: int = 128
    query_instruction: str | None = None
    query_instruction_format: str = "{}{}"
    passage_instruction: str | None = None
    passage_instruction_format: str = "{}{}"
    # Decoder (LLM) modules tokenize with the EOS token appended and pad on the left
    # (FlagEmbedding's decoder runners load the tokenizer with add_eos_token=True).
    decoder_tokens: bool = False
    source: str = "defaults"  # where the settings came from, for reports

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling {self.pooling!r} is not one of {', '.join(POOLINGS)}")
        for name in ("query_max_len", "passage_max_len"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1")

    def query_text(self, text: str) -> str:
        if self.query_instruction is None:
            return text
        return _unescape(self.query_instruction_format).format(self.query_instruction, text)

    def passage_text(self, text: str) -> str:
        if self.passage_instruction is None:
            return text
        return _unescape(self.passage_instruction_format).format(self.passage_instruction, text)

    def with_changes(self, **changes: Any) -> EncodeSettings:
        """A copy with the given fields replaced; None values are ignored."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise TypeError(f"unknown encode settings: {', '.join(sorted(unknown))}")
        given = {k: v for k, v in changes.items() if v is not None}
        return replace(self, **given) if given else self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EncodeSettings:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _unescape(fmt: str) -> str:
    return fmt.replace("\\n", "\n")


# --------------------------------------------------------------------------- sources


def settings_from_config(config) -> EncodeSettings:
    """The settings a FlagEmbedding fine-tune with this StudioConfig trains with."""
    from studio.evaluation.modes import is_decoder, module_of

    pooling = config.get("sentence_pooling_method") or FE_DEFAULTS["pooling"]
    pooling = getattr(pooling, "value", pooling)
    normalize = config.get("normalize_embeddings")
    return EncodeSettings(
        pooling=str(pooling),
        normalize=FE_DEFAULTS["normalize"] if normalize is None else bool(normalize),
        query_max_len=int(config.get("query_max_len") or FE_DEFAULTS["query_max_len"]),
        passage_max_len=int(config.get("passage_max_len") or FE_DEFAULTS["passage_max_len"]),
        query_instruction=config.get("query_instruction_for_retrieval"),
        query_instruction_format=config.get("query_instruction_format") or "{}{}",
        passage_instruction=config.get("passage_instruction_for_retrieval"),
        passage_instruction_format=config.get("passage_instruction_format") or "{}{}",
        decoder_tokens=is_decoder(module_of(config)),
        source="training config",
    )


def read_st_pooling(model_dir: str | Path) -> dict[str, Any] | None:
    """Pooling, normalization and max length from a sentence-transformers folder, if any.

    Returns None when the folder has no modules.json (a plain HF model such as FlagEmbedding
    saves). Raises ValueError for a pooling mode the studio cannot reproduce (max, weighted).
    """
    root = Path(model_dir)
    modules_file = root / "modules.json"
    if not modules_file.is_file():
        return None
    modules = json.loads(modules_file.read_text(encoding="utf-8"))
    found: dict[str, Any] = {"normalize": False}
    for module in modules:
        kind = str(module.get("type", ""))
        if kind.endswith("Pooling"):
            config_file = root / module.get("path", "") / "config.json"
            pool = json.loads(config_file.read_text(encoding="utf-8"))
            modes = [k for k, v in pool.items() if k.startswith("pooling_mode_") and v is True]
            mapping = {
                "pooling_mode_cls_token": "cls",
                "pooling_mode_mean_tokens": "mean",
                "pooling_mode_lasttoken": "last_token",
            }
            if len(modes) != 1 or modes[0] not in mapping:
                raise ValueError(
                    f"{config_file}: pooling {modes} cannot be reproduced; the studio "
                    f"supports {', '.join(POOLINGS)}."
                )
            found["pooling"] = mapping[modes[0]]
        elif kind.endswith("Normalize"):
            found["normalize"] = True
    bert_config = root / "sentence_bert_config.json"
    if bert_config.is_file():
        max_len = json.loads(bert_config.read_text(encoding="utf-8")).get("max_seq_length")
        if max_len:
            found["max_len"] = int(max_len)
    return found if "pooling" in found else None


def settings_for_model(model_dir: str | Path) -> EncodeSettings:
    """Settings for a bare model: its sentence-transformers config, else FlagEmbedding's."""
    st = read_st_pooling(model_dir)
    if st is None:
        return EncodeSettings(source="FlagEmbedding defaults")
    max_len = st.get("max_len")
    return EncodeSettings(
        pooling=st["pooling"],
        normalize=st["normalize"],
        query_max_len=max_len or FE_DEFAULTS["query_max_len"],
        passage_max_len=max_len or FE_DEFAULTS["passage_max_len"],
        source="sentence-transformers config",
    )
