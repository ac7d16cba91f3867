"""Fast tests of the evaluation core: metrics against pytrec_eval, data, settings, search, cache.

The metrics are checked against pytrec_eval itself on fixed and on random rankings with ties,
graded relevance and missing judgments: the studio's numbers must be the field's numbers.
Model-dependent parts use a tiny random BERT built from the bundled model's config and
tokenizer (seconds); the real model is exercised in test_evaluation_model.py.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import numpy as np
import pytest
import pytrec_eval
from conftest import ROOT

from studio.core.config import StudioConfig
from studio.evaluation import cache
from studio.evaluation.data import EvalDataError, load_eval_data
from studio.evaluation.metrics import metric_names, parse_ks, query_metrics, score_rankings
from studio.evaluation.search import id_order, top_k
from studio.evaluation.settings import (
    EncodeSettings,
    read_st_pooling,
    settings_for_model,
    settings_from_config,
)

KS = [1, 3, 5, 10, 100]


# --------------------------------------------------------------------------- pytrec_eval


def pytrec_metrics(qrels, run, ks):
    """Reference values: what pytrec_eval reports, named as the studio names them.

    MRR@k is pytrec_eval's recip_rank on the run cut at k (the run's own top k by pytrec's
    order: score descending, then doc id descending).
    """
    measures = {
        "ndcg_cut." + ",".join(map(str, ks)),
        "recall." + ",".join(map(str, ks)),
        "map_cut." + ",".join(map(str, ks)),
    }
    full = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    out = {q: {} for q in full}
    for q, values in full.items():
        for k in ks:
            out[q][f"ndcg_at_{k}"] = values[f"ndcg_cut_{k}"]
            out[q][f"recall_at_{k}"] = values[f"recall_{k}"]
            out[q][f"map_at_{k}"] = values[f"map_cut_{k}"]
    for k in ks:
        cut = {
            q: dict(sorted(docs.items(), key=lambda d: (d[1], d[0]), reverse=True)[:k])
            for q, docs in run.items()
        }
        rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(cut)
        for q in out:
            out[q][f"mrr_at_{k}"] = rr[q]["recip_rank"]
    return out


def studio_metrics_from_scores(scores: np.ndarray, doc_ids, query_ids, qrels, ks):
    ranking = top_k(scores, np.eye(scores.shape[1], dtype=np.float32), max(ks), id_order(doc_ids))
    rankings = dict(zip(query_ids, ranking.ids(doc_ids), strict=True))
    return score_rankings(rankings, qrels, ks)


def assert_same(ours, reference, tol=1e-9):
    assert set(ours) == set(reference)
    for q in reference:
        for name, value in reference[q].items():
            assert ours[q][name] == pytest.approx(value, abs=tol), (q, name)


def test_fixed_rankings_with_ties_graded_relevance_and_missing_qrels():
    doc_ids = ["a", "b", "c", "d", "e", "10", "9", "x"]
    query_ids = ["q1", "q2", "q3", "q4"]
    # q1: a four-way tie (0.5) around graded relevant docs; q2: all tied; q3: no qrels at all;
    # q4: its only relevant doc "z" is not in the corpus plus a relevant "x" ranked last.
    scores = np.array(
        [
            [0.5, 0.5, 0.9, 0.5, 0.1, 0.5, 0.2, 0.0],
            [0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3],
            [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2],
            [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, -1.0],
        ],
        dtype=np.float32,
    )
    qrels = {
        "q1": {"a": 1, "b": 2, "c": 0, "10": 3, "e": 1},
        "q2": {"9": 1, "10": 2, "a": 1},
        "q4": {"z": 2, "x": 1, "a": 0},
    }
    run = {
        q: {d: float(s) for d, s in zip(doc_ids, row, strict=True)}
        for q, row in zip(query_ids, scores, strict=True)
    }
    mean, ours = studio_metrics_from_scores(scores, doc_ids, query_ids, qrels, KS)
    reference = pytrec_metrics(qrels, run, KS)
    assert "q3" not in ours and "q3" not in reference  # no qrels: skipped by both
    assert_same(ours, reference)
    for name in metric_names(KS):
        expected = sum(reference[q][name] for q in reference) / len(reference)
        assert mean[name] == pytest.approx(expected, abs=1e-12)
    # the tie order is pytrec_eval's (doc id descending): q2 ranks "e" > "d" > ... > "a"
    assert ours["q2"]["mrr_at_100"] == pytest.approx(1 / 6)  # x e d c b a 9 10: "a" is 6th


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_rankings_with_many_ties_match_pytrec_eval(seed):
    rng = random.Random(seed)
    doc_ids = [str(i) for i in range(60)] + [f"doc-{i}" for i in range(20)]
    query_ids = [f"q{i}" for i in range(40)]
    scores = np.array(
        [[round(rng.random(), 1) for _ in doc_ids] for _ in query_ids], dtype=np.float32
    )
    qrels = {}
    for q in query_ids[:-3]:  # the last three queries have no judgments
        judged = rng.sample(doc_ids, rng.randint(1, 8))
        qrels[q] = {d: rng.choice([0, 1, 1, 2, 3]) for d in judged}
        if rng.random() < 0.2:
            qrels[q]["missing-doc"] = 1
    run = {
        q: {d: float(s) for d, s in zip(doc_ids, row, strict=True)}
        for q, row in zip(query_ids, scores, strict=True)
    }
    _, ours = studio_metrics_from_scores(scores, doc_ids, query_ids, qrels, KS)
    assert_same(ours, pytrec_metrics(qrels, run, KS))


def test_query_metrics_handcrafted_values():
    m = query_metrics(["c", "d", "b"], {"a": 1, "b": 2, "c": 0, "z": 1}, [1, 3])
    assert m["ndcg_at_3"] == pytest.approx(1 / (2 + 1 / np.log2(3) + 0.5))
    assert m["recall_at_3"] == pytest.approx(1 / 3)
    assert m["mrr_at_3"] == pytest.approx(1 / 3) and m["mrr_at_1"] == 0
    assert m["map_at_3"] == pytest.approx((1 / 3) / 3)


def test_parse_ks():
    assert parse_ks("10, 1,5,10") == [1, 5, 10]
    with pytest.raises(ValueError):
        parse_ks("0,5")
    with pytest.raises(ValueError):
        parse_ks("five")


def test_top_k_keeps_boundary_ties_in_trec_order():
    ids = ["a", "b", "c", "d"]
    q = np.array([[1.0]], dtype=np.float32)
    corpus = np.array([[0.5], [0.9], [0.5], [0.5]], dtype=np.float32)
    ranking = top_k(q, corpus, 2, id_order(ids))
    assert ranking.ids(ids) == [["b", "d"]]  # of the tied a, c, d the highest id wins
    assert ranking.scores.tolist() == [[pytest.approx(0.9), pytest.approx(0.5)]]


# --------------------------------------------------------------------------- data


def write_beir(root: Path, corpus, queries, qrels_lines, header=True):
    root.mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus))
    (root / "queries.jsonl").write_text("".join(json.dumps(r) + "\n" for r in queries))
    (root / "qrels").mkdir(exist_ok=True)
    head = "query-id\tcorpus-id\tscore\n" if header else ""
    (root / "qrels" / "test.tsv").write_text(head + "".join(f"{line}\n" for line in qrels_lines))
    return root


def test_beir_with_integer_ids_and_queries_without_qrels(tmp_path):
    root = write_beir(
        tmp_path / "beir",
        [
            {"_id": 1, "title": "os.path.split", "text": "Split a path."},
            {"_id": 2, "text": "Join paths."},
        ],
        [
            {"_id": 10, "text": "split a path"},
            {"_id": 11, "text": "no judgments"},
            {"_id": 12, "text": "zero"},
        ],
        ["10\t1\t1", "12\t2\t0", "99\t1\t1"],
    )
    data = load_eval_data(root)
    assert data.layout == "beir"
    assert data.corpus_ids == ["1", "2"]
    assert data.corpus_texts == ["os.path.split Split a path.", "Join paths."]
    assert data.query_ids == ["10"] and data.qrels == {"10": {"1": 1}}
    assert data.skipped == {"11": "no qrels", "12": "no relevant document"}
    assert data.qrels_without_query == 1
    assert data.summary()["skipped_queries"] == 2


def test_flagembedding_custom_layout(tmp_path):
    root = tmp_path / "custom"
    root.mkdir()
    (root / "corpus.jsonl").write_text(
        json.dumps({"id": "d1", "title": "", "text": "alpha"})
        + "\n"
        + json.dumps({"id": "d2", "text": "beta"})
        + "\n"
    )
    (root / "test_queries.jsonl").write_text(json.dumps({"id": 1, "text": "a?"}) + "\n")
    (root / "test_qrels.jsonl").write_text(
        json.dumps({"qid": 1, "docid": "d2", "relevance": 1}) + "\n"
    )
    data = load_eval_data(root)
    assert data.layout == "flagembedding"
    assert data.qrels == {"1": {"d2": 1}} and data.corpus_texts == ["alpha", "beta"]


@pytest.mark.parametrize(
    "file,content,line,words",
    [
        ("corpus.jsonl", '{"_id": "1", "text": "ok"}\n{"_id": "2", "text": "x"\n', 2, "JSON"),
        ("corpus.jsonl", '{"_id": "1", "text": "ok"}\n\n{"_id": "2"}\n', 3, "text"),
        ("corpus.jsonl", '{"_id": "1", "text": "a"}\n{"_id": 1, "text": "b"}\n', 2, "duplicate"),
        ("queries.jsonl", '{"text": "no id"}\n', 1, "_id"),
        ("qrels/test.tsv", "query-id\tcorpus-id\tscore\nq1\t1\n", 2, "3 tab-separated"),
        ("qrels/test.tsv", "query-id\tcorpus-id\tscore\nq1\t1\thigh\n", 2, "integer"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path, file, content, line, words):
    root = write_beir(
        tmp_path / "bad", [{"_id": "1", "text": "ok"}], [{"_id": "q1", "text": "q"}], ["q1\t1\t1"]
    )
    (root / file).write_text(content)
    with pytest.raises(EvalDataError) as info:
        load_eval_data(root)
    assert info.value.file.endswith(file) and info.value.line == line
    assert words in str(info.value) and f"{file}:{line}" in str(info.value)


def test_missing_layout_is_explained(tmp_path):
    (tmp_path / "corpus.jsonl").write_text('{"_id": "1", "text": "a"}\n')
    with pytest.raises(EvalDataError, match="qrels/test.tsv"):
        load_eval_data(tmp_path)


def test_no_scorable_query_is_an_error_not_a_crash(tmp_path):
    root = write_beir(
        tmp_path / "d", [{"_id": "1", "text": "a"}], [{"_id": "q", "text": "q"}], ["other\t1\t1"]
    )
    with pytest.raises(EvalDataError, match="no query has a relevant document"):
        load_eval_data(root)


# --------------------------------------------------------------------------- settings


def test_settings_from_training_config_apply_instructions_as_flagembedding():
    config = StudioConfig(
        {
            "sentence_pooling_method": "mean",
            "normalize_embeddings": False,
            "query_max_len": 48,
            "query_instruction_for_retrieval": "Find: ",
            "query_instruction_format": "<i>{}\\n<q>{}",
            "passage_instruction_for_retrieval": "P: ",
        }
    )
    s = settings_from_config(config)
    assert (s.pooling, s.normalize, s.query_max_len, s.passage_max_len) == ("mean", False, 48, 128)
    assert s.query_text("hello") == "<i>Find: \n<q>hello"
    assert s.passage_text("doc") == "P: doc"
    defaults = settings_from_config(StudioConfig({}))
    assert (defaults.pooling, defaults.normalize) == ("cls", True)  # FlagEmbedding's defaults
    assert defaults.query_text("x") == "x"


def test_bundled_model_settings_come_from_its_sentence_transformers_config():
    from studio.core.config import bundled_model_path

    s = settings_for_model(bundled_model_path())
    assert (s.pooling, s.normalize, s.query_max_len, s.passage_max_len) == ("mean", True, 256, 256)


def test_unsupported_pooling_is_refused(tmp_path):
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "modules.json").write_text(
        json.dumps([{"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}])
    )
    (tmp_path / "1_Pooling" / "config.json").write_text(
        json.dumps({"pooling_mode_max_tokens": True})
    )
    with pytest.raises(ValueError, match="cannot be reproduced"):
        read_st_pooling(tmp_path)
    with pytest.raises(ValueError):
        EncodeSettings(pooling="max")


# --------------------------------------------------------------------------- cache


def test_cache_key_follows_weights_texts_and_settings(tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"0" * 10)
    fp = cache.model_fingerprint(model)
    (model / "README.md").write_text("card")  # a model card does not change the embeddings
    (model / "modules.json").write_text("[]")
    assert cache.model_fingerprint(model) == fp
    key = cache.embedding_key(fp, cache.texts_fingerprint(["a", "b"]), pooling="cls", max_len=8)
    assert key != cache.embedding_key(fp, cache.texts_fingerprint(["ab"]), pooling="cls", max_len=8)
    assert key != cache.embedding_key(
        fp, cache.texts_fingerprint(["a", "b"]), pooling="mean", max_len=8
    )
    os.utime(model / "model.safetensors", ns=(time.time_ns(), time.time_ns() + 10**9))
    assert cache.model_fingerprint(model) != fp
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    cache.save(key, arr, tmp_path / "c")
    assert np.array_equal(cache.load(key, tmp_path / "c"), arr)
    assert cache.load("0" * 64, tmp_path / "c") is None


def test_cache_root_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("BGE_STUDIO_CACHE", str(tmp_path / "root"))
    assert cache.embeddings_dir() == tmp_path / "root" / "embeddings"


def test_all_zero_queries_are_left_out_and_every_report_says_so(tmp_path):
    """Decision: a query whose judgments are all 0 is skipped (and said), not scored 0."""
    from studio.evaluation.data import scoring_note

    root = write_beir(
        tmp_path / "beir",
        [{"_id": 1, "text": "Split a path."}, {"_id": 2, "text": "Join paths."}],
        [{"_id": 10, "text": "split"}, {"_id": 11, "text": "none"}, {"_id": 12, "text": "zero"}],
        ["10\t1\t1", "12\t2\t0"],
    )
    summary = load_eval_data(root).summary()
    assert summary["skipped_all_zero"] == 1 and summary["skipped_no_qrels"] == 1
    note = scoring_note(summary)
    assert note.startswith("2 queries are left out of every metric (1 whose judgments are all 0")
    assert "over the 1 queries with a relevant document" in note and "pytrec_eval" in note
    # what pytrec_eval would have done instead: keep q12 and score it 0
    run = {q: {"1": 1.0, "2": 0.5} for q in ("10", "12")}
    scored = pytrec_eval.RelevanceEvaluator(
        {"10": {"1": 1}, "12": {"2": 0}}, {"ndcg_cut.10"}
    ).evaluate(run)
    assert scored["12"]["ndcg_cut_10"] == 0.0 and scored["10"]["ndcg_cut_10"] == 1.0
    assert scoring_note(load_eval_data(ROOT / "example_data" / "eval").summary()) is None
