"""Statistics on FlagEmbedding's real example data, and the split that holds out an eval set."""

from __future__ import annotations

import csv
import json

import pytest
from conftest import FE_DATA, MSMARCO

from studio.core.config import StudioConfig, TorchrunSettings
from studio.datawork import beir
from studio.datawork.check import check_paths
from studio.datawork.split import split
from studio.datawork.stats import stats, steps_per_epoch

RETRIEVAL = FE_DATA / "retrieval"


def test_statistics_of_the_retrieval_examples():
    config = StudioConfig(
        {"train_group_size": 8, "per_device_train_batch_size": 4, "num_train_epochs": 2},
        TorchrunSettings(nproc_per_node=2),
    )
    result = stats(check_paths([RETRIEVAL]), config)
    files = result.files.set_index(result.files["file"].str.rsplit("/", n=1).str[-1])
    assert files.loc[["msmarco.jsonl", "nli.jsonl", "nq.jsonl"], "rows"].tolist() == [10, 10, 10]
    assert files["with_teacher_scores"].tolist() == [10, 10, 10]
    assert files.loc["nli.jsonl", "types"] == "only_1neg"
    negatives = dict(zip(result.negatives["count"], result.negatives["rows"], strict=True))
    assert negatives == {1: 10, 25: 10, 79: 1, 100: 9}
    assert result.positives.to_dict("list") == {"count": [1], "rows": [30]}
    s = result.summary
    assert s["rows"] == 30 and s["rows_with_errors"] == 0
    assert s["rows_short_of_negatives"] == 10  # nli: 1 negative < 7, repeated by FlagEmbedding
    assert s["duplicate_query_rows"] == 0 and s["pos_in_neg_rows"] == 0
    assert s["rows_with_teacher_scores"] == 30 and s["rows_with_prompt"] == 30
    # 30 rows, 4 per device, 2 processes: ceil(ceil(30 / 4) / 2) = 4 steps; 2 epochs = 8
    assert (s["steps_per_epoch"], s["total_steps"], s["global_batch"]) == (4, 8, 8)
    assert {p.code for p in result.problems} == {"negatives_short", "scores_unused"}
    figure = result.figure()
    assert [t.type for t in figure.data] == ["bar", "bar"]


def test_stats_takes_paths_and_knowledge_distillation_from_the_config():
    result = stats([MSMARCO], StudioConfig({"knowledge_distillation": True}))
    assert result.summary["knowledge_distillation"] is True
    assert "scores_unused" not in {p.code for p in result.problems}


def test_duplicates_and_passages_that_are_both(tmp_path):
    rows = [
        {"query": "What is a cat?", "pos": ["cat"], "neg": ["dog", "cow"]},
        {"query": "what is  a cat? ", "pos": ["kitten"], "neg": ["kitten", "cow"]},
        {"query": "what is a dog?", "pos": ["dog"], "neg": ["cat"]},
    ]
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = stats([path], StudioConfig({"train_group_size": 3}))
    s = result.summary
    assert (s["distinct_queries"], s["duplicate_query_rows"], s["pos_in_neg_rows"]) == (2, 1, 1)
    assert s["rows_short_of_negatives"] == 1
    assert result.duplicates.to_dict("records") == [
        {"file": str(path), "line": 2, "first_file": str(path), "first_line": 1}
    ]
    assert "duplicate_queries" in {p.code for p in result.problems}


@pytest.mark.parametrize(
    ("args", "nproc", "expected"),
    [
        ({"per_device_train_batch_size": 4}, 1, 8),  # ceil(30 / 4)
        ({"per_device_train_batch_size": 4, "dataloader_drop_last": True}, 1, 7),
        ({"per_device_train_batch_size": 4, "gradient_accumulation_steps": 3}, 1, 3),
        # one batch per 4 x 2 rows of one file: each 10-row file gives 1 batch
        ({"per_device_train_batch_size": 4, "same_dataset_within_batch": True}, 2, 3),
        ({"per_device_train_batch_size": 4, "max_example_num_per_dataset": 2}, 1, 2),
    ],
)
def test_steps_per_epoch(args, nproc, expected):
    config = StudioConfig(args, TorchrunSettings(nproc_per_node=nproc))
    assert steps_per_epoch([10, 10, 10], config)[0] == expected


def test_split_writes_beir_and_leaves_no_leak(tmp_path):
    source = tmp_path / "all.jsonl"
    source.write_bytes(b"".join(p.read_bytes() for p in sorted(RETRIEVAL.glob("*.jsonl"))))
    result = split(source, tmp_path / "out", n_queries=5, seed=1, distractors=50)
    assert (result.eval_queries, result.eval_rows, result.train_rows) == (5, 5, 25)
    eval_dir = tmp_path / "out" / "eval"
    corpus = [json.loads(line) for line in (eval_dir / "corpus.jsonl").open()]
    queries = [json.loads(line) for line in (eval_dir / "queries.jsonl").open()]
    with (eval_dir / "qrels" / "test.tsv").open() as fh:
        qrels = list(csv.reader(fh, delimiter="\t"))
    assert qrels[0] == ["query-id", "corpus-id", "score"]
    assert {q["_id"] for q in queries} == {r[0] for r in qrels[1:]}
    ids = {d["_id"] for d in corpus}
    assert {r[1] for r in qrels[1:]} <= ids and len(ids) == len(corpus) == result.corpus_size
    # the held-out queries' passages and 50 distractors
    assert result.corpus_size > 50
    # train.jsonl keeps the other lines byte for byte; none of its queries is in the eval set
    train_lines = (tmp_path / "out" / "train.jsonl").read_bytes().splitlines()
    assert set(train_lines) <= set(source.read_bytes().splitlines())
    leak = stats(check_paths([result.train_path]), eval_queries=eval_dir).summary
    assert leak["eval_queries"] == 5 and leak["eval_leak_rows"] == 0
    assert beir.read_queries(eval_dir) == [q["text"] for q in queries]
    # and the unsplit file leaks exactly the held-out rows
    assert stats(check_paths([source]), eval_queries=eval_dir).summary["eval_leak_rows"] == 5
    with pytest.raises(FileExistsError):
        split(source, tmp_path / "out", n_queries=5)
    with pytest.raises(ValueError, match="distinct usable queries"):
        split(source, tmp_path / "other", n_queries=30)
