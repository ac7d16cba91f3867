"""The instruction preview equals what FlagEmbedding's own dataset classes produce, row by row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import FE_DATA, MSMARCO

from studio.core.config import StudioConfig, bundled_model_path
from studio.datawork.instructions import PromptCensus, format_warnings, preview

STS = FE_DATA / "sts" / "sts.jsonl"


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(bundled_model_path()))


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """msmarco rows with their prompts, the same rows without, and sts rows (symmetric)."""
    root = tmp_path_factory.mktemp("rows")
    rows = [json.loads(line) for line in MSMARCO.open()][:4]
    out = {
        "prompted": [json.dumps(r) for r in rows],
        "plain": [json.dumps({k: v for k, v in r.items() if k != "prompt"}) for r in rows],
        "sts": STS.read_text().splitlines()[:4],
    }
    paths = {}
    for name, lines in out.items():
        paths[name] = root / f"{name}.jsonl"
        paths[name].write_text("\n".join(lines) + "\n")
    return paths


def flagembedding_dataset(paths, tokenizer, cache, **args):
    from FlagEmbedding.abc.finetune.embedder.AbsArguments import AbsEmbedderDataArguments
    from FlagEmbedding.abc.finetune.embedder.AbsDataset import (
        AbsEmbedderSameDatasetTrainDataset,
        AbsEmbedderTrainDataset,
    )

    data_args = AbsEmbedderDataArguments(
        train_data=[str(p) for p in paths], cache_path=str(cache), **args
    )
    if args.get("same_dataset_within_batch"):
        return AbsEmbedderSameDatasetTrainDataset(data_args, 2, 0, tokenizer)
    return AbsEmbedderTrainDataset(data_args, tokenizer)


def flagembedding_items(dataset, group_size: int):
    """(query, passages) per row, in row order, from FlagEmbedding's own code."""
    if hasattr(dataset, "_create_batch_data"):  # same_dataset_within_batch
        for i in range(len(dataset.dataset)):
            queries, passages, _ = dataset._create_batch_data(dataset.dataset[[i]])
            yield queries[0], passages
    else:
        for i in range(len(dataset)):
            query, passages, _ = dataset[i]
            yield query, passages


CASES = {
    "no instruction": (["prompted"], {}),
    "row prompts replace the instruction": (
        ["prompted"],
        {"query_instruction_for_retrieval": "Q: "},
    ),
    "global instruction": (["plain"], {"query_instruction_for_retrieval": "Q: "}),
    "None for rows of a file without prompt": (
        ["prompted", "plain"],
        {"query_instruction_for_retrieval": "Q: "},
    ),
    "formats with a typed newline and passage instruction": (
        ["plain"],
        {
            "query_instruction_for_retrieval": "Represent this query: ",
            "query_instruction_format": "<instruct>{}\\n<query>{}",
            "passage_instruction_for_retrieval": "P: ",
            "passage_instruction_format": "[{}] {}",
        },
    ),
    "same dataset, no instruction: None": (["plain"], {"same_dataset_within_batch": True}),
    "same dataset, symmetric rows": (
        ["sts"],
        {"same_dataset_within_batch": True, "passage_instruction_for_retrieval": "P: "},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_preview_equals_flagembedding(case, files, tokenizer, tmp_path):
    names, args = CASES[case]
    args = {"train_group_size": 3, **args}
    paths = [files[n] for n in names]
    dataset = flagembedding_dataset(paths, tokenizer, tmp_path / "cache", **args)
    shown = preview(StudioConfig(dict(args, train_data=[str(p) for p in paths])), n=100)
    expected = list(flagembedding_items(dataset, args["train_group_size"]))
    assert len(shown) == len(expected) == 4 * len(paths)
    for row, (query, passages) in zip(shown, expected, strict=True):
        assert row.query == query
        assert passages[0] in row.positives  # FlagEmbedding picks one positive at random
        assert passages[0] == row.positives[0]  # the rows have one positive each
        assert all(p in row.negatives for p in passages[1:])  # and samples the negatives
    if "None" in case:
        assert any(r.query.startswith("None") for r in shown)
        assert any("None" in r.rule for r in shown)


def test_preview_shows_the_rule_and_notes(files):
    config = StudioConfig(
        {"train_data": [str(files["plain"])], "query_instruction_for_retrieval": "Q: "}
    )
    (row,) = preview(config, n=1)
    assert row.query == "Q: " + row.query_raw
    assert row.rule == "`query_instruction_for_retrieval`"
    assert len(row.negatives) == 25 and row.notes == []
    assert row.to_dict()["negatives"] == 25
    sampled = preview(config, n=2, seed=3)
    assert len(sampled) == 2 and all(r.query.startswith("Q: ") for r in sampled)


NO_PROMPTS = PromptCensus(rows=10, with_prompt_key=0, with_string_prompt=0)


def codes(config, census=NO_PROMPTS):
    return {p.code: p for p in format_warnings(StudioConfig(config), census=census)}


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        (
            "{}",
            "has 1 `{}` where exactly two belong (instruction, then query): the query itself "
            "is dropped: only the instruction is encoded.",
        ),
        (
            "{}{}{}",
            "has 3 `{}` where exactly two belong (instruction, then query): FlagEmbedding "
            "stops with IndexError (it passes only two values).",
        ),
        (
            "fixed",
            "has 0 `{}` where exactly two belong (instruction, then query): every query "
            "becomes the same fixed text.",
        ),
    ],
)
def test_formats_without_exactly_two_fields(fmt, expected):
    found = codes({"query_instruction_for_retrieval": "Q: ", "query_instruction_format": fmt})
    problem = found["format_fields"]
    assert problem.level == "error"
    assert problem.message == f"`query_instruction_format` {fmt!r} {expected}"


def test_format_traps():
    named = codes({"query_instruction_for_retrieval": "Q: ", "query_instruction_format": "{i}{q}"})
    assert "named fields" in named["format_fields"].message
    assert codes({"query_instruction_for_retrieval": "Q: "}) == {}
    glued = codes({"query_instruction_for_retrieval": "Represent this"})["instruction_glued"]
    assert glued.level == "warning" and "runs straight into the text" in glued.message
    none_text = codes({"query_instruction_for_retrieval": "None"})["instruction_none_text"]
    assert "shell script's `None` arrives as a string" in none_text.message
    unused = codes({"passage_instruction_format": "{} {}"})["format_unused"]
    assert unused.level == "info"
    order = codes({"query_instruction_for_retrieval": "Q", "query_instruction_format": "{1} {0}"})
    assert order["format_order"].level == "info"


def test_none_prefix_traps():
    same = codes({"same_dataset_within_batch": True})["none_prefix"]
    assert same.level == "error"
    assert same.message == (
        "`same_dataset_within_batch` is on, with no `query_instruction_for_retrieval` and no "
        '`prompt` in the data: FlagEmbedding writes the text "None" in front of every query '
        '("None" + query).'
    )
    partial = codes({"query_instruction_for_retrieval": "Q: "}, PromptCensus(10, 4, 3))
    assert partial["none_prefix"].message.startswith(
        '7 of 10 rows have no string `prompt` while others do: FlagEmbedding writes the text "None"'
    )
    ignored = codes({}, PromptCensus(10, 10, 10))["prompts_ignored"]
    assert ignored.message.startswith("10 rows carry a `prompt`, but FlagEmbedding uses row")
    overridden = codes({"query_instruction_for_retrieval": "x"}, PromptCensus(10, 10, 10))
    assert set(overridden) == {"instruction_overridden"}  # no "glued" warning: x is never used


def test_format_warnings_scans_the_data_when_not_told(files):
    config = StudioConfig({"train_data": [str(files["prompted"]), str(files["plain"])]})
    assert set(codes_of(config)) == {"prompts_ignored"}
    with_instruction = config.with_args(query_instruction_for_retrieval="Q: ")
    problem = codes_of(with_instruction)["none_prefix"]
    assert problem.message.startswith("4 of 8 rows have no string `prompt`")


def codes_of(config):
    return {p.code: p for p in format_warnings(config)}
