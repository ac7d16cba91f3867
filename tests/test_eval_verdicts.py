"""Evaluation verdicts that cannot flatter (issue 18): a reranker's untrained "before", tables
without a baseline, data-consistency counts in every face.

Real scoring on the bundled MiniLM over tests/data/eval_tiny (a first stage of 5 passages per
query), so each model costs seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from studio.core.config import StudioConfig, bundled_model_path
from studio.evaluation import rerank
from studio.evaluation.data import load_eval_data
from studio.facts import modules

REPO = Path(__file__).resolve().parents[1]
EVAL = REPO / "tests" / "data" / "eval_tiny"


def reranker_config(seed: int | None = None) -> StudioConfig:
    args = {"model_name_or_path": str(bundled_model_path())}
    if seed is not None:
        args["seed"] = seed
    return StudioConfig(args, module=modules.RERANKER)


def test_base_reranker_scores_each_pair_with_a_seeded_head():
    """The bundled MiniLM has no classifier head: FlagReranker alone adds an unseeded two-logit
    head whose flattened logits are not one score per pair. Scored as the fine-tune starts."""
    model = bundled_model_path()
    pairs = [("how to sort a list", "list.sort() sorts in place"), ("median", "statistics")]
    settings = rerank.RerankSettings(max_len=64)
    scorer = rerank.Scorer(model, settings, "cpu")
    both = scorer.score(pairs)
    alone = [scorer.score([p])[0] for p in pairs]
    np.testing.assert_allclose(both, alone, rtol=1e-5, atol=1e-6)
    assert not rerank.has_head(model)
    other_seed = rerank.Scorer(model, rerank.RerankSettings(max_len=64, seed=7), "cpu")
    assert not np.allclose(other_seed.score(pairs), both)


def test_two_identical_reranker_evals_give_identical_numbers_and_say_why(tmp_path, monkeypatch):
    """Two identical evals gave base nDCG@10 0.2290 and 0.2419; the cache then kept one."""
    from studio.evaluation import cache
    from studio.evaluation.module_eval import evaluate_for_module

    monkeypatch.setenv("BGE_STUDIO_CACHE", str(tmp_path / "cache"))
    data = load_eval_data(EVAL)
    base = bundled_model_path()
    config = reranker_config()
    settings = rerank.rerank_settings(config, modules.RERANKER)
    stage = rerank.first_stage(str(base), data, 3, [1, 3])
    fresh = rerank.evaluate_reranker(base, data, stage, settings, [1, 3], use_cache=False)

    # A value cached before heads were seeded (one run's luck) is never read back for it.
    doc = dict(zip(data.corpus_ids, data.corpus_texts, strict=True))
    pairs = [(q, doc[d]) for q, ids in zip(data.query_texts, stage.ids, strict=True) for d in ids]
    stale = rerank._pairs_key(cache.model_fingerprint(base), pairs, settings)
    cache.save(stale, np.random.default_rng(0).normal(size=len(pairs)))

    models = [{"label": "base", "path": str(base)}]
    report = evaluate_for_module(models, data, config, ks=[1, 3], top_k=3)
    again = report["modes"]["rerank"]["models"]["base"]
    assert again["cached"] == {"pairs": False}  # scored again, and identical
    assert again["ndcg_at_3"] == fresh.metrics["ndcg_at_3"]
    assert again["mrr_at_3"] == fresh.metrics["mrr_at_3"]
    assert report["untrained_head"] == {"base": 42}
    assert any("no trained classifier head" in w and "seed 42" in w for w in report["warnings"])
    # and the note stays when the scores come from the cache
    cached = evaluate_for_module(models, data, config, ks=[1, 3], top_k=3)
    assert cached["modes"]["rerank"]["models"]["base"]["cached"] == {"pairs": True}
    assert cached["untrained_head"] == {"base": 42}


def single_model_report() -> dict:
    """A reranker report of one model (no baseline), in evaluate_for_module's shape."""
    metrics = {"ndcg_at_10": 0.5123, "mrr_at_10": 0.4}
    first = {"ndcg_at_10": 0.45, "mrr_at_10": 0.35}
    return {
        "module": modules.RERANKER,
        "kind": "reranker",
        "primary": "rerank",
        "compared": ["model", "model"],
        "modes": {
            "rerank": {"models": {"model": metrics}, "delta": {}},
            "first_stage": {"models": {"model": first}, "delta": {}},
        },
        "models": {"model": metrics},
        "delta": {},
        "warnings": [],
        "data": {"n_queries": 3, "n_corpus": 10},
    }


def test_a_table_without_a_baseline_has_no_delta_column():
    """A single-model reranker table printed `delta 0.0000` everywhere: it read as no change."""
    from studio.app import actions
    from studio.evaluation.module_eval import summary_line
    from studio.evaluation.present import modes_table

    report = single_model_report()
    table = modes_table(report)  # what the CLI prints
    assert "delta" not in table.columns and list(table["model"])[:1] == [0.5123]
    view = actions.eval_view(report)  # what the web UI and the notebook show
    assert "delta" not in view.table.columns
    assert "+0.0000" not in view.summary and "rerank 0.5123" in view.summary
    assert summary_line(report) == "nDCG@10: rerank 0.5123; first_stage 0.4500"


def test_every_data_consistency_count_shows_in_every_face(tmp_path, monkeypatch, capsys):
    """652 judgments naming absent queries were counted only in the JSON; the CLI printed only
    the one missing corpus document."""
    import json

    from studio.app import actions, views
    from studio.cli.commands import main

    monkeypatch.setenv("BGE_STUDIO_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "eval"
    (folder / "qrels").mkdir(parents=True)
    docs = ["Sort a list in place.", "The high median of data.", "Split a path.", "Join paths."]
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(docs))
    )
    queries = ["how to sort a list", "median of data", "a query nobody judged"]
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": f"q{i}", "text": t}) + "\n" for i, t in enumerate(queries))
    )
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq0\td0\t1\nq0\td_gone\t1\nq1\td1\t1\n"
        "q_absent\td2\t1\nq_absent\td3\t0\nq_other\td3\t1\n"
    )
    out = tmp_path / "report.json"
    code = main(
        ["eval", "--model", "bundled:all-MiniLM-L6-v2", "--data", str(folder), "--k", "1,3"]
        + ["--json", str(out)]
    )
    err = capsys.readouterr().err
    assert code == 0
    expected = [
        "1 queries are left out of every metric (1 with no judgments)",
        "3 judgment(s) in the qrels name 2 query id(s) absent from the queries file",
        "1 judgment(s) of scored queries name a document absent from the corpus",
    ]
    for line in expected:
        assert err.count(line) == 1, (line, err)  # the CLI, once each
    view = actions.eval_view(json.loads(out.read_text()))  # the Evaluate tab and the notebook
    page = views.plain(views.to_html(view.summary))
    for line in expected:
        assert view.summary.count(line) == 1 and line in page
