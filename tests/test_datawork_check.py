"""The checker: one bad file per failure kind, each with the exact message users will read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import FE_DATA, MSMARCO

from studio.datawork.check import check_paths

BAD = Path(__file__).parent / "data" / "bad"
MINE = (
    "Mine hard negatives: `python -m studio data mine FILE --out NEW.jsonl` fills rows that lack "
    'them; or add "neg": ["a passage that does not answer the query"].'
)

# file -> the one problem the checker must report for it, exactly as printed
EXPECTED = {
    "bad_encoding.jsonl": "error: bad_encoding.jsonl:2: the line is not valid UTF-8 (byte 0xe9 at "
    "column 15); FlagEmbedding stops loading the file here with UnicodeDecodeError. Fix: Save the "
    "file as UTF-8, e.g. `iconv -f GB18030 -t UTF-8 IN > OUT` (put the file's real encoding "
    "after -f).",
    "bom.jsonl": "warning: bom.jsonl:1: the file starts with a UTF-8 byte-order mark (BOM); "
    "FlagEmbedding accepts it, but many JSON tools reject the first line. Fix: Save the file as "
    "UTF-8 without a BOM.",
    "blank_line.jsonl": "warning: blank_line.jsonl:2: blank line; FlagEmbedding skips it. Fix: "
    "Delete blank lines, e.g. `sed -i '/^[[:space:]]*$/d' FILE`.",
    "not_json.jsonl": "error: not_json.jsonl:2: not valid JSON: Expecting ',' delimiter at column "
    "47; FlagEmbedding stops loading the file here. Fix: Write one complete JSON object per line: "
    '{"query": "...", "pos": ["..."], "neg": ["..."]}.',
    "not_object.jsonl": "error: not_object.jsonl:2: the line is a JSON list, not an object with "
    '`query`, `pos` and `neg`. Fix: Write one object per line: {"query": "...", "pos": ["..."], '
    '"neg": ["..."]}.',
    "query_missing.jsonl": "error: query_missing.jsonl:2 query: `query` is missing; FlagEmbedding "
    "reads None for it and fails when it reaches this row (with an instruction set, it trains on "
    'the text "None" instead). Fix: Add the query text: "query": "...", or drop the row.',
    "query_type.jsonl": "error: query_type.jsonl:2 query: `query` is a number, not a string. Fix: "
    'Write the query as one JSON string: "query": "...".',
    "query_empty.jsonl": "warning: query_empty.jsonl:2 query: `query` is an empty string; "
    "FlagEmbedding trains on it, and the model learns to match nothing to these passages. Fix: "
    "Fill in the query or drop the row.",
    "pos_missing.jsonl": "error: pos_missing.jsonl:2 pos: `pos` is missing; every row needs a "
    "positive passage, and FlagEmbedding stops when it reaches this row (KeyError: 'pos' when no "
    'row has it, a bare AssertionError otherwise). Fix: Add "pos": ["a passage that answers the '
    'query"], or drop the row.',
    "pos_type.jsonl": "error: pos_type.jsonl:2 pos: `pos` is a string, not a list; FlagEmbedding "
    'stops with a bare AssertionError when it reaches this row. Fix: Wrap it in a list: "pos": '
    '["..."].',
    "pos_empty.jsonl": "error: pos_empty.jsonl:2 pos: `pos` is an empty list; FlagEmbedding picks "
    "a random positive and stops with IndexError when it reaches this row. Fix: Add at least one "
    "positive passage, or drop the row.",
    "pos_item_type.jsonl": "error: pos_item_type.jsonl:2 pos: `pos[1]` is a number, not a string; "
    "the tokenizer fails on it mid-training. Fix: Make every positive a text string.",
    "pos_item_empty.jsonl": "warning: pos_item_empty.jsonl:2 pos: `pos[1]` is an empty string; the "
    "model would be trained to match the query to an empty passage. Fix: Remove empty passages "
    "from `pos` (drop the row if none is left).",
    "neg_missing.jsonl": "error: neg_missing.jsonl:2 neg: `neg` is missing; FlagEmbedding stops "
    "when it reaches this row (KeyError: 'neg' when no row has it, a bare AssertionError "
    f"otherwise). Fix: {MINE}",
    "neg_type.jsonl": "error: neg_type.jsonl:2 neg: `neg` is a string, not a list; FlagEmbedding "
    'stops with a bare AssertionError when it reaches this row. Fix: Wrap it in a list: "neg": '
    '["..."].',
    "neg_empty.jsonl": "error: neg_empty.jsonl:2 neg: `neg` is an empty list; FlagEmbedding "
    "divides by its length and stops with ZeroDivisionError when it reaches this row. "
    f"Fix: {MINE}",
    "neg_item_type.jsonl": "error: neg_item_type.jsonl:2 neg: `neg[1]` is an object, not a "
    "string; the tokenizer fails on it mid-training. Fix: Make every negative a text string.",
    "neg_item_empty.jsonl": "warning: neg_item_empty.jsonl:2 neg: `neg[1]` is an empty string; it "
    "is a useless negative. Fix: Remove empty strings from `neg`.",
    "pos_in_neg.jsonl": "warning: pos_in_neg.jsonl:2 neg: a passage is both positive and negative "
    "for this query; the loss pulls it closer and pushes it away at once. Fix: Remove it from "
    "`neg` (mined negatives often contain unlabelled positives).",
    "prompt_type.jsonl": "warning: prompt_type.jsonl:2 prompt: `prompt` is a list, not a string; "
    "where FlagEmbedding applies prompts it writes that value's text in front of the query. "
    'Fix: Write the instruction as a string: "prompt": "Represent this query for retrieval: ".',
    "prompt_null.jsonl": "warning: prompt_null.jsonl:2 prompt: `prompt` is null; wherever "
    'FlagEmbedding applies prompts it writes the text "None" in front of this query. Fix: Give '
    "the instruction as a string, or delete the key from every row of every file.",
    "type_type.jsonl": "warning: type_type.jsonl:2 type: `type` is a number, not a string; "
    "FlagEmbedding reads it only with `same_dataset_within_batch`, where every type must be one "
    'string per file. Fix: Write the data type as a string, e.g. "type": "normal".',
    "type_mixed.jsonl": "warning: type_mixed.jsonl type: the file mixes `type` values: normal (2), "
    "symmetric_sts (1). With `same_dataset_within_batch` FlagEmbedding asserts one type per batch "
    "and stops ('Data type is not consistent in the same batch'). Fix: Put each type in its own "
    "file.",
    "empty_file.jsonl": "error: empty_file.jsonl train_data: the file holds no rows; datasets "
    "cannot load an empty JSON file, so FlagEmbedding stops with StopIteration while loading the "
    "data. Fix: Fill it or remove it from `train_data`.",
    "notes.txt": "warning: notes.txt train_data: `notes.txt` is skipped: FlagEmbedding reads only "
    ".json and .jsonl files. Fix: Rename it to .jsonl if it holds training rows.",
    "kd": "warning: kd train_data: folder `kd` inside a data folder is skipped: FlagEmbedding "
    "reads folders one level deep. Fix: Move its files up one level, or list the folder itself in "
    "`train_data`.",
    "kd_mix": "warning: kd_mix train_data: folder `kd_mix` inside a data folder is skipped: "
    "FlagEmbedding reads folders one level deep. Fix: Move its files up one level, or list the "
    "folder itself in `train_data`.",
    "prompts": "warning: prompts train_data: folder `prompts` inside a data folder is skipped: "
    "FlagEmbedding reads folders one level deep. Fix: Move its files up one level, or list the "
    "folder itself in `train_data`.",
}

EXPECTED_KD = {
    "scores_absent.jsonl": "error: scores_absent.jsonl knowledge_distillation: "
    "`knowledge_distillation` is on but no row of this file has `pos_scores` and `neg_scores`; "
    "FlagEmbedding stops with ValueError while loading it. Fix: Add teacher scores to every row or "
    "turn `knowledge_distillation` off.",
    "scores_missing.jsonl": "error: scores_missing.jsonl:2 neg_scores: `neg_scores` is missing but "
    "`knowledge_distillation` is on; FlagEmbedding stops with a bare AssertionError when it "
    "reaches this row. Fix: Add teacher scores, one number per passage, or turn "
    "`knowledge_distillation` off.",
    "scores_type.jsonl": "error: scores_type.jsonl:2 neg_scores: `neg_scores` is a string, not a "
    "list of numbers. Fix: Give a list with one teacher score per passage, in the same order.",
    "scores_length.jsonl": "error: scores_length.jsonl:2 neg_scores: `neg_scores` has 0 score(s) "
    "but `neg` has 1 passage(s); FlagEmbedding reads the score at the sampled passage's index and "
    "stops with IndexError when it samples a passage past the last score. Fix: Give one score "
    "per passage of `neg`, in the same order.",
    "scores_extra.jsonl": "warning: scores_extra.jsonl:2 neg_scores: `neg_scores` has 2 score(s) "
    "but `neg` has 1 passage(s); FlagEmbedding never reads the extra scores, and the others may "
    "not belong to the passages they line up with. Fix: Give one score per passage of `neg`, in "
    "the same order.",
    "scores_item_type.jsonl": "error: scores_item_type.jsonl:2 pos_scores: `pos_scores[0]` is a "
    "string, not a number; FlagEmbedding raises 'pos_score or neg_score must be digit'. Fix: Write "
    "teacher scores as JSON numbers, e.g. 0.87.",
}


def by_file(report, folder: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in report.problems:
        name = Path(p.file).relative_to(folder).as_posix()
        out.setdefault(name, []).append(str(p).replace(f"{folder}/", ""))
    return out


def test_each_bad_file_gets_exactly_its_message():
    report = check_paths([BAD], max_examples_per_kind=50)
    found = by_file(report, BAD)
    for name, message in EXPECTED.items():
        assert found.get(name) == [message], name
    # the JSON-array file: its bad item is numbered, and the file is flagged as an array
    assert [m.split(":")[0] for m in found["json_array.json"]] == ["error", "info"]
    assert found["json_array.json"][0].startswith("error: json_array.json:2 neg: `neg` is an empty")
    assert set(found) == set(EXPECTED) | {"json_array.json"}
    # every line of a bad file except the bad one is fine: the good first lines raised nothing
    assert report.rows == sum(f.rows for f in report.files)
    assert report.has_errors


def test_knowledge_distillation_files():
    folder = BAD / "kd"
    found = by_file(check_paths([folder], knowledge_distillation=True), folder)
    assert found == {name: [message] for name, message in EXPECTED_KD.items()}
    # without distillation, FlagEmbedding drops the scores: nothing to report
    assert check_paths([folder]).counts == {}


def test_partial_prompts_across_rows():
    folder = BAD / "prompts"
    report = check_paths([folder])
    assert [str(p).replace(f"{folder}/", "") for p in report.problems] == [
        "warning: prompt_partial.jsonl prompt: 2 of 3 rows have no string `prompt` while 1 row(s) "
        'in the data do; FlagEmbedding gives them prompt None and writes the text "None" in front '
        "of those queries wherever it applies prompts. Fix: Give every row a `prompt`, or remove "
        "`prompt` from every row of every file."
    ]


def test_prompt_in_one_file_makes_other_files_partial(tmp_path):
    row = {"query": "q", "pos": ["p"], "neg": ["n"]}
    (tmp_path / "a.jsonl").write_text(json.dumps(dict(row, prompt="P: ")) + "\n")
    (tmp_path / "b.jsonl").write_text(json.dumps(row) + "\n")
    report = check_paths([tmp_path])
    assert [(Path(p.file).name, p.code) for p in report.problems] == [("b.jsonl", "prompt_partial")]


def test_huge_lines(tmp_path):
    path = tmp_path / "big.jsonl"
    path.write_text(json.dumps({"query": "q", "pos": ["x" * 300], "neg": ["n"]}) + "\n")
    report = check_paths([path], max_line_bytes=100)
    (problem,) = report.problems
    assert problem.code == "huge_line" and problem.line == 1
    assert str(problem).endswith(
        "big.jsonl:1: the line is 342 bytes long (over 100 bytes); its passages will be cut to "
        "`passage_max_len` tokens, and huge lines slow loading down. Fix: Split long documents "
        "into passages of a few hundred words before training."
    )
    assert problem.level == "warning" and not report.has_errors


def test_counts_every_problem_but_keeps_the_first_few(tmp_path):
    path = tmp_path / "many.jsonl"
    path.write_text("".join(json.dumps({"query": f"q{i}", "pos": ["p"]}) + "\n" for i in range(20)))
    report = check_paths([path], max_examples_per_kind=3)
    assert report.counts == {"neg_missing": 20}
    assert [p.line for p in report.examples["neg_missing"]] == [1, 2, 3]
    assert report.error_count == 20 and report.rows == 20
    assert report.table()[0]["count"] == 20
    assert sum(report.row_ok) == 0


@pytest.mark.parametrize("folder", ["retrieval", "sts", "classification-no_in_batch_neg"])
def test_flagembedding_examples_are_clean(folder):
    report = check_paths([FE_DATA / folder])
    assert not report.has_errors, report.problems
    assert report.rows == 10 * len(report.files)


def test_msmarco_with_teacher_scores_is_clean():
    report = check_paths([MSMARCO], knowledge_distillation=True)
    assert report.counts == {}
    assert list(report.n_neg) == [25] * 10 and list(report.n_pos) == [1] * 10
    assert report.files[0].prompt_strings == 10 and report.files[0].types == {"normal": 10}


def test_missing_paths_and_empty_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    report = check_paths([tmp_path / "nope.jsonl", tmp_path / "empty"])
    assert [(p.code, p.level) for p in report.problems] == [
        ("path_missing", "error"),
        ("path_empty_dir", "error"),
    ]
    assert report.has_errors and report.rows == 0
