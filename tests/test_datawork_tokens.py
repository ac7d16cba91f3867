"""Token lengths with the bundled model's real tokenizer: exact on small data, sampled on large."""

from __future__ import annotations

import json

import pytest
from conftest import FE_DATA, MSMARCO

from studio.core.config import StudioConfig
from studio.datawork.tokens import load_tokenizer, token_lengths

RETRIEVAL = FE_DATA / "retrieval"


@pytest.fixture(scope="module")
def config():
    return StudioConfig(
        {
            "model_name_or_path": "bundled:all-MiniLM-L6-v2",
            "train_data": [str(MSMARCO)],
            "query_max_len": 32,
            "passage_max_len": 64,
            "train_group_size": 4,
        }
    )


@pytest.fixture(scope="module")
def tokenizer(config):
    return load_tokenizer(config)


def test_exact_lengths_of_a_small_file(config, tokenizer):
    result = token_lengths(config, tokenizer=tokenizer)
    assert result.exact and result.rows_measured == 10 and result.total_rows == 10
    assert len(result.passage) == 10 * 4  # one positive and train_group_size - 1 negatives a row
    queries = [json.loads(line)["query"] for line in MSMARCO.open()]
    expected = [len(tokenizer(q)["input_ids"]) for q in queries]  # special tokens included
    assert result.query.tolist() == expected
    share = sum(n > 32 for n in expected) / 10
    assert result.truncated("query") == pytest.approx(share)
    suggestion = result.suggest("passage")
    assert suggestion["p95"] <= suggestion["p99"] <= suggestion["max"]
    assert suggestion["suggested"] % 8 == 0 and suggestion["suggested"] <= 512  # model limit
    table = result.table()
    assert table["text"].tolist() == ["query", "passage"]
    assert table["max_len"].tolist() == [32, 64]
    figure = result.figure()
    assert [t.type for t in figure.data] == ["histogram", "histogram"]
    assert "exact: all 10 rows" in figure.layout.title.text
    lines = [s for s in figure.layout.shapes if s.type == "line"]
    assert sorted(s.x0 for s in lines) == [32, 64]
    assert any("query_max_len=32" in a.text for a in figure.layout.annotations)


def test_the_instruction_counts_in_the_query_length(config, tokenizer):
    plain = token_lengths(config, tokenizer=tokenizer)
    instructed = token_lengths(
        config.with_args(query_instruction_for_retrieval="x", train_data=[str(FE_DATA / "sts")]),
        tokenizer=tokenizer,
    )
    first = json.loads((FE_DATA / "sts" / "sts.jsonl").open().readline())
    # the row's prompt replaces the global instruction, glued on by the format `{}{}`
    assert instructed.query[0] == len(tokenizer(first["prompt"] + first["query"])["input_ids"])
    assert len(plain.query) == 10


def test_a_large_input_is_sampled_and_says_so(config, tokenizer):
    result = token_lengths(
        config.with_args(train_data=[str(RETRIEVAL)]), sample_size=7, seed=1, tokenizer=tokenizer
    )
    assert not result.exact and result.total_rows == 30
    assert 0 < result.rows_measured <= 7
    assert "uniform sample of" in result.figure().layout.title.text
    assert result.description().endswith("of 30 rows")
    again = token_lengths(
        config.with_args(train_data=[str(RETRIEVAL)]), sample_size=7, seed=1, tokenizer=tokenizer
    )
    assert again.query.tolist() == result.query.tolist()  # seeded
