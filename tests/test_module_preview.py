"""The per-module preview equals what FlagEmbedding's own dataset classes build.

Rerankers: the joined pair (instructions, separators, the LLM prompt, the cut at
query_max_len + passage_max_len). ICL: the examples put in front of the query. The bundled
model's tokenizer stands in for each model's (no download)."""

from __future__ import annotations

import json
import random

import pytest
from conftest import ROOT

from studio.core.config import StudioConfig, bundled_model_path
from studio.datawork import instructions, module_preview
from studio.datawork.tokens import token_lengths

EXAMPLES = ROOT / "tests" / "data" / "fe_examples"
NORMAL = EXAMPLES / "reranker" / "example_data" / "normal" / "examples.jsonl"
PROMPTED = EXAMPLES / "reranker" / "example_data" / "prompt_based" / "examples.jsonl"
MSMARCO = EXAMPLES / "embedder" / "example_data" / "retrieval" / "msmarco.jsonl"
BUNDLED = str(bundled_model_path())


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(BUNDLED)


def _rows(path, n, tmp_path, one_pos=True):
    rows = [json.loads(line) for line in path.read_text().splitlines()[:n]]
    if one_pos:  # FlagEmbedding picks a positive at random: keep one so both sides agree
        for r in rows:
            r["pos"] = r["pos"][:1]
            if "pos_scores" in r:
                r["pos_scores"] = r["pos_scores"][:1]
    out = tmp_path / path.name
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(out), rows


RERANK_CASES = {
    "encoder, instructions, cut": (
        "reranker.encoder_only.base",
        NORMAL,
        {"query_instruction_for_rerank": "A: ", "passage_instruction_for_rerank": "B: "},
    ),
    "encoder, plain": ("reranker.encoder_only.base", NORMAL, {}),
    "LLM, prompt rows, sep token": (
        "reranker.decoder_only.base",
        PROMPTED,
        {"query_instruction_for_rerank": "A: ", "sep_token": " | "},
    ),
    "LLM, default prompt": ("reranker.decoder_only.layerwise", NORMAL, {}),
}


@pytest.mark.parametrize("case", list(RERANK_CASES))
def test_reranker_pair_is_flagembeddings(case, tmp_path, tokenizer):
    from FlagEmbedding.abc.finetune.reranker import AbsRerankerDataArguments
    from FlagEmbedding.abc.finetune.reranker.AbsDataset import (
        AbsLLMRerankerTrainDataset,
        AbsRerankerTrainDataset,
    )

    module, source, extra = RERANK_CASES[case]
    path, rows = _rows(source, 4, tmp_path)
    lengths = {"query_max_len": 24, "passage_max_len": 40, "train_group_size": 2}
    args = AbsRerankerDataArguments(train_data=[path], **lengths, **extra)
    llm = "decoder" in module
    dataset = (AbsLLMRerankerTrainDataset if llm else AbsRerankerTrainDataset)(args, tokenizer)
    config = StudioConfig({"train_data": [path], **lengths, **extra}, module=module)
    previews = instructions.preview(config, n=4, tokenizer=tokenizer)
    assert len(previews) == 4
    for i, shown in enumerate(previews):
        pairs, _ = dataset[i]
        expected = tokenizer.decode(pairs[0]["input_ids"])
        assert shown.positives[0] == expected
        assert f"pair: {len(pairs[0]['input_ids'])} tokens" in shown.notes[0]
    if extra.get("query_instruction_for_rerank"):
        assert previews[0].query.startswith("A: ")
    if llm:
        prompt = rows[0].get("prompt", module_preview.DEFAULT_LLM_PROMPT)
        assert (
            previews[0]
            .positives[0]
            .endswith(tokenizer.decode(tokenizer(prompt)["input_ids"][1:-1]))
        )
    assert any("the passage is cut" in p.notes[0] for p in previews)  # 64 tokens cut long texts


def test_icl_examples_in_front_of_the_query_as_flagembedding_puts_them(
    tmp_path, tokenizer, monkeypatch
):
    from FlagEmbedding.finetune.embedder.decoder_only.icl import DecoderOnlyEmbedderICLDataArguments
    from FlagEmbedding.finetune.embedder.decoder_only.icl.dataset import (
        DecoderOnlyEmbedderICLSameDatasetTrainDataset,
    )

    path, rows = _rows(MSMARCO, 6, tmp_path)
    settings = {
        "query_max_len": 640,
        "passage_max_len": 64,
        "example_query_max_len": 16,
        "example_passage_max_len": 24,
        "query_instruction_for_retrieval": "Given a query, retrieve passages.",
        "query_instruction_format": "<instruct>{}\\n<query>{}",
        "train_group_size": 2,
    }
    args = DecoderOnlyEmbedderICLDataArguments(
        train_data=[path], cache_path=str(tmp_path / "cache"), **settings
    )
    dataset = DecoderOnlyEmbedderICLSameDatasetTrainDataset(args, 6, 0, tokenizer)
    # FlagEmbedding draws 0-5 examples at random: make it draw 5, the next rows in order.
    monkeypatch.setattr(random, "choice", lambda seq: list(seq)[-1])
    monkeypatch.setattr(random, "sample", lambda seq, k: list(seq)[:k])
    queries, _, _ = dataset._create_batch_data(dataset.dataset[list(range(6))])
    config = StudioConfig({"train_data": [path], **settings}, module="embedder.decoder_only.icl")
    (first, *_) = instructions.preview(config, n=6, tokenizer=tokenizer)
    assert first.query == queries[0]
    # the rows' own `prompt` replaces the instruction; BERT's tokenizer lowercases on decode
    assert "< instruct > given a web search query" in first.query
    assert first.query.endswith("manhattan project?\nResponse:")
    assert first.query.count("response :") == 3  # three examples fit in 640 - 512 tokens
    assert first.notes[0] == "3 of 5 example(s) fit"
    args.query_max_len = 512
    queries, _, _ = dataset._create_batch_data(dataset.dataset[list(range(6))])
    assert "response :" not in queries[0]  # FlagEmbedding: no example within 512 - 512 tokens
    from studio.facts.modules.icl import check_icl_examples
    from studio.facts.schema import load_schema

    schema = load_schema("embedder.decoder_only.icl")
    (warning,) = check_icl_examples(config.with_args(query_max_len=512), None, schema)
    assert warning.code == "icl_no_examples"
    assert not check_icl_examples(config, None, schema)
    short = instructions.preview(config.with_args(query_max_len=512), n=6, tokenizer=tokenizer)
    assert (
        short[0].notes[0] == "0 of 5 example(s) fit" and "query_max_len - 512" in short[0].notes[1]
    )


def test_reranker_token_lengths_use_the_rerank_instructions(tmp_path, tokenizer):
    path, _ = _rows(PROMPTED, 4, tmp_path)
    base = {"train_data": [path], "train_group_size": 2}
    plain = token_lengths(
        StudioConfig(base, module="reranker.decoder_only.base"), tokenizer=tokenizer
    )
    instructed = token_lengths(
        StudioConfig(
            {**base, "query_instruction_for_rerank": "a long instruction for every query: "},
            module="reranker.decoder_only.base",
        ),
        tokenizer=tokenizer,
    )
    # the rows' `prompt` (the LLM reranker's question) is not taken as an instruction
    assert (instructed.query > plain.query).all()
    assert (instructed.passage == plain.passage).all()
