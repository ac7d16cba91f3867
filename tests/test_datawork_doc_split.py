"""Holding out whole documents: no pair of a held-out document in training, the whole pool as
the evaluation corpus, and passages without the title a `title` query would match."""

from __future__ import annotations

import json

import pytest

from studio.datawork import doc_split, pairs


def corpus_file(path, n=30):
    with open(path, "w") as fh:
        for i in range(n):
            body = " ".join(f"w{i}_{j}" for j in range(20))
            fh.write(json.dumps({"_id": f"d{i}", "title": f"Title {i}", "text": body}))
            fh.write("\n")
    return path


def test_split_by_document_never_leaks_and_keeps_the_whole_pool(tmp_path):
    corpus = corpus_file(tmp_path / "corpus.jsonl")
    made = tmp_path / "pairs.jsonl"
    pairs.make_pairs(corpus, made, "crop", crop=pairs.CropSettings((2, 4), (5, 10), per_document=3))
    result = doc_split.split_by_document(made, corpus, tmp_path / "split", 6, seed=1)
    held = doc_split.read_heldout(result.heldout_list)
    assert len(held) == 6
    train = [json.loads(x) for x in result.train_path.read_text().splitlines()]
    assert len(train) == 24 * 3 and not {r["doc_id"] for r in train} & held
    corpus_rows = [
        json.loads(x) for x in (result.eval_dir / "corpus.jsonl").read_text().splitlines()
    ]
    assert len(corpus_rows) == 30  # every document, held out or not
    assert all(r["title"] == "" and not r["text"].startswith("Title") for r in corpus_rows)
    qrels = (result.eval_dir / "qrels" / "test.tsv").read_text().splitlines()[1:]
    assert {line.split("\t")[1] for line in qrels} == held
    assert result.eval_queries == len(qrels) == 18
    assert [p.code for p in result.problems] == ["split_few_queries"]


def test_split_by_document_refuses_rows_without_doc_id_and_too_many(tmp_path):
    corpus = corpus_file(tmp_path / "corpus.jsonl", n=3)
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"query": "q", "pos": ["p"], "neg": ["n"]}) + "\n")
    with pytest.raises(ValueError, match="rows.jsonl:1: a row without `doc_id`"):
        doc_split.split_by_document(rows, corpus, tmp_path / "a", 1)
    made = tmp_path / "pairs.jsonl"
    pairs.make_pairs(corpus, made, "title")
    with pytest.raises(ValueError, match="hold out between 1 and 2"):
        doc_split.split_by_document(made, corpus, tmp_path / "b", 3)
