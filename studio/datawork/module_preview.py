"""What the model sees, for the fine-tune modules whose input is not "query" and "passage" apart.

* Rerankers (``reranker.*``) score a joined pair. The encoder-only reranker joins query and
  passage with the tokenizer's own separators; the LLM rerankers join ``[bos] query``,
  ``sep_token``, the passage, ``sep_token`` again and the row's ``prompt`` (a default yes/no
  question). Either way the pair is cut, passage side first, at ``query_max_len +
  passage_max_len`` tokens (FlagEmbedding 1.4.2's reranker datasets do not read ``max_len``).
  Instructions come from ``query_instruction_for_rerank`` / ``passage_instruction_for_rerank``,
  and a row's ``query_prompt`` / ``passage_prompt`` replaces them.
* The ICL embedder (``embedder.decoder_only.icl``) puts up to five other rows of the batch in
  front of the query as examples (``example query + icl_suffix_str + example passage``, then a
  blank line), and adds an example only while the examples stay within ``query_max_len - 512``
  tokens: below 512 + their length there are never any. The query ends in ``icl_suffix_str``.
* The decoder embedder's instruction format (``<instruct>{}\\n<query>{}``) is the embedder's
  ``query_instruction_format`` (:mod:`studio.datawork.instructions`); it pools the last token.

Each function mirrors the FlagEmbedding dataset code named in its docstring, and is tested
against that class's output.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from studio.core.config import StudioConfig, resolve_model

DEFAULT_LLM_PROMPT = (
    "Given a query A and a passage B, determine whether the passage contains an answer to the "
    "query by providing a prediction of either 'Yes' or 'No'."
)


def load_tokenizer(config: StudioConfig, base_dir: str | Path = "."):
    """The tokenizer FlagEmbedding will load for the config's model."""
    from transformers import AutoTokenizer

    model = resolve_model(config.get("model_name_or_path") or "", Path(base_dir))
    return AutoTokenizer.from_pretrained(
        model,
        cache_dir=config.get("cache_dir"),
        use_fast=bool(config.get("use_fast_tokenizer")),
        trust_remote_code=bool(config.get("trust_remote_code")),
    )


def _fmt(config: StudioConfig, name: str) -> str:
    return (config.get(name) or "{}{}").replace("\\n", "\n")


def _rule(key: str | None, read=None):
    """A rules field read from the config: flag `key`, through `read(config, key)` (default:
    the flag's value). One reader builds every rules record (:func:`_from_config`)."""
    return field(metadata={"key": key, "read": read or (lambda config, k: config.get(k))})


def _text_or(default: str):
    return lambda config, key: config.get(key) or default


def _int(config: StudioConfig, key: str) -> int:
    return int(config.get(key))


def _decoder(config: StudioConfig, _key) -> bool:
    from studio.facts.modules import get

    return get(config.module).is_decoder


def _from_config(cls, config: StudioConfig):
    return cls(**{f.name: f.metadata["read"](config, f.metadata["key"]) for f in fields(cls)})


@dataclass(frozen=True)
class RerankRules:
    """The reranker dataset's text rules (AbsRerankerTrainDataset.__getitem__)."""

    instruction: str | None = _rule("query_instruction_for_rerank")
    query_format: str = _rule("query_instruction_format", _fmt)
    passage_instruction: str | None = _rule("passage_instruction_for_rerank")
    passage_format: str = _rule("passage_instruction_format", _fmt)
    query_max_len: int = _rule("query_max_len", _int)
    passage_max_len: int = _rule("passage_max_len", _int)
    sep_token: str = _rule("sep_token", _text_or("\n"))
    llm: bool = _rule(None, _decoder)

    @classmethod
    def from_config(cls, config: StudioConfig) -> RerankRules:
        return _from_config(cls, config)

    @property
    def pair_max_len(self) -> int:
        return self.query_max_len + self.passage_max_len

    def query_text(self, row: dict) -> str:
        query = row["query"]
        if self.instruction is None:
            return query
        return self.query_format.format(row.get("query_prompt", self.instruction), query)

    def passage_text(self, row: dict, passage: str) -> str:
        if self.passage_instruction is None:
            return passage
        prefix = row.get("passage_prompt", self.passage_instruction)
        return self.passage_format.format(prefix, passage)


@dataclass
class PairPreview:
    """One query + passage pair as the reranker reads it."""

    text: str  # the joined input, decoded, special tokens shown
    tokens: int
    passage_cut: bool  # the passage lost tokens to the pair limit


def reranker_pair(rules: RerankRules, row: dict, passage: str, tokenizer) -> PairPreview:
    """The pair's token ids as AbsRerankerTrainDataset.create_one_example (encoder) or
    AbsLLMRerankerTrainDataset.__getitem__ (LLM) builds them."""
    from FlagEmbedding.utils.tokenizer_compat import prepare_for_model_compat

    q, p = rules.query_max_len, rules.passage_max_len
    query = rules.query_text(row)
    text = rules.passage_text(row, passage)
    if not rules.llm:
        q_ids = tokenizer.encode(
            query, truncation=True, max_length=q + p // 4, add_special_tokens=False
        )
        d_ids = tokenizer.encode(
            text, truncation=True, max_length=p + q // 2, add_special_tokens=False
        )
        item = prepare_for_model_compat(
            tokenizer, q_ids, d_ids, truncation="only_second", max_length=q + p, padding=False
        )
        ids = item["input_ids"]
        full = len(q_ids) + len(d_ids) + tokenizer.num_special_tokens_to_add(pair=True)
        return PairPreview(tokenizer.decode(ids), len(ids), full > len(ids))
    sep = tokenizer(rules.sep_token, add_special_tokens=False)["input_ids"]
    prompt = tokenizer(row.get("prompt", DEFAULT_LLM_PROMPT), add_special_tokens=False)["input_ids"]
    q_ids = tokenizer(query, max_length=q + p // 4, truncation=True, add_special_tokens=False)[
        "input_ids"
    ]
    d_ids = tokenizer(text, max_length=p + q // 2, truncation=True, add_special_tokens=False)[
        "input_ids"
    ]
    bos = tokenizer.bos_token_id
    first = [bos] + q_ids if bos is not None and bos != tokenizer.pad_token_id else q_ids
    limit = q + p - len(prompt) - len(sep)
    item = prepare_for_model_compat(
        tokenizer,
        first,
        sep + d_ids,
        truncation="only_second",
        max_length=limit,
        padding=False,
        return_attention_mask=False,
        return_token_type_ids=False,
        add_special_tokens=False,
    )
    ids = item["input_ids"] + sep + prompt
    cut = len(first) + len(sep) + len(d_ids) > len(item["input_ids"])
    return PairPreview(tokenizer.decode(ids), len(ids), cut)


@dataclass(frozen=True)
class IclRules:
    """The ICL dataset's query rules (DecoderOnlyEmbedderICLSameDatasetTrainDataset)."""

    instruction: str | None = _rule("query_instruction_for_retrieval")
    query_format: str = _rule("query_instruction_format", _fmt)
    suffix: str = _rule("icl_suffix_str", _text_or(""))
    query_max_len: int = _rule("query_max_len", _int)
    example_query_max_len: int = _rule("example_query_max_len", _int)
    example_passage_max_len: int = _rule("example_passage_max_len", _int)
    use_examples: bool = _rule("retrieval_use_examples", lambda config, k: bool(config.get(k)))

    @classmethod
    def from_config(cls, config: StudioConfig) -> IclRules:
        return _from_config(cls, config)

    @property
    def example_budget(self) -> int:
        """Tokens the examples may take: FlagEmbedding stops adding at query_max_len - 512."""
        return self.query_max_len - 512

    def formatted(self, row: dict, prompt_column: bool = False) -> str:
        prefix = row.get("prompt") if prompt_column else self.instruction
        return self.query_format.format(prefix, row["query"])

    def example(self, row: dict, tokenizer, prompt_column: bool = False) -> str:
        """One row as an example: its (formatted) query and first positive, each cut."""
        q_ids = tokenizer(self.formatted(row, prompt_column), add_special_tokens=False)["input_ids"]
        p_ids = tokenizer(row["pos"][0], add_special_tokens=False)["input_ids"]
        return self.suffix.join(
            (
                tokenizer.decode(q_ids[: self.example_query_max_len]),
                tokenizer.decode(p_ids[: self.example_passage_max_len]),
            )
        )


@dataclass
class IclPreview:
    query: str  # the query text with the examples that fit, as the model reads it
    examples_used: int
    examples_offered: int
    note: str


def icl_query(
    rules: IclRules, row: dict, examples: list[dict], tokenizer, prompt_column: bool = False
) -> IclPreview:
    """The query with `examples` (other rows of its batch, in the order FlagEmbedding drew them)
    in front, cut as the ICL dataset cuts it. FlagEmbedding draws 0-5 examples a query at
    random; the preview shows the ones given."""
    if not rules.use_examples:
        examples = []
    prefix = ""
    used = 0
    for other in examples:
        candidate = prefix + other_example(rules, other, tokenizer, prompt_column) + "\n\n"
        if len(tokenizer(candidate)["input_ids"]) > rules.example_budget:
            break
        prefix, used = candidate, used + 1
    suffix_ids = tokenizer(f"{rules.suffix}{tokenizer.eos_token}", add_special_tokens=False)[
        "input_ids"
    ]
    prefix_ids = tokenizer(f"{tokenizer.bos_token}", add_special_tokens=False)["input_ids"]
    ids = tokenizer(
        prefix + rules.formatted(row, prompt_column),
        max_length=rules.query_max_len - len(prefix_ids) - len(suffix_ids),
        truncation=True,
        add_special_tokens=False,
    )["input_ids"]
    note = ""
    if examples and not used:
        note = (
            f"no example fits: FlagEmbedding adds examples only within query_max_len - 512 = "
            f"{rules.example_budget} tokens; raise query_max_len to use them"
        )
    return IclPreview(tokenizer.decode(ids) + rules.suffix, used, len(examples), note)


def other_example(rules: IclRules, row: dict, tokenizer, prompt_column: bool) -> str:
    return rules.example(row, tokenizer, prompt_column)


# --------------------------------------------------------------------------- preview rows


def applies(config: StudioConfig) -> bool:
    """Whether the module's model input needs this module (and a tokenizer) to be shown."""
    from studio.facts.modules import get

    module = get(config.module)
    return module.is_reranker or module.in_context_examples


def preview_rows(config: StudioConfig, picked, prompt_column: bool, tokenizer, row_type) -> list:
    """Preview rows (``row_type``: studio.datawork.instructions.PreviewRow, passed in by it)
    for a reranker or the ICL embedder: the reranker's `positive` is the joined pair the model
    reads; the ICL `query` carries the examples of the rows shown with it (as a batch of them
    would)."""
    from studio.facts.modules import get

    tokenizer = tokenizer or load_tokenizer(config)
    reranker = get(config.module).is_reranker
    rows = [r for r in picked if isinstance(r.data.get("query"), str)]
    out = []
    for index, row in enumerate(rows):
        data = row.data
        pos = [p for p in data.get("pos") or [] if isinstance(p, str)]
        neg = [p for p in data.get("neg") or [] if isinstance(p, str)]
        notes: list[str] = []
        if reranker:
            rules = RerankRules.from_config(config)
            query = rules.query_text(data)
            pair = reranker_pair(rules, data, pos[0], tokenizer) if pos else None
            positive = pair.text if pair else ""
            if pair:
                notes.append(
                    f"pair: {pair.tokens} tokens (cut at query_max_len + passage_max_len = "
                    f"{rules.pair_max_len}){'; the passage is cut' if pair.passage_cut else ''}"
                )
            positives = [positive] + [rules.passage_text(data, p) for p in pos[1:]]
            negatives = [rules.passage_text(data, p) for p in neg]
            rule = (
                "`query_instruction_for_rerank`"
                if rules.instruction is not None
                else "no instruction: the query as is"
            )
        else:
            rules = IclRules.from_config(config)
            others = [r.data for r in rows[index + 1 :] + rows[:index] if r.data.get("pos")][:5]
            icl = icl_query(rules, data, others, tokenizer, prompt_column)
            query = icl.query
            notes.append(f"{icl.examples_used} of {icl.examples_offered} example(s) fit")
            if icl.note:
                notes.append(icl.note)
            positives, negatives = pos, neg
            rule = "ICL: examples + `query_instruction_format` + `icl_suffix_str`"
        out.append(
            row_type(
                file=row.file,
                line=row.line,
                query_raw=data["query"],
                query=query,
                positives=positives,
                negatives=negatives,
                rule=rule,
                notes=notes,
            )
        )
    return out
