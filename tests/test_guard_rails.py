"""Issue 20's guard rails on one real overfitting run (module-scoped, read by several tests).

torchrun + FlagEmbedding + the bundled MiniLM on CPU, no DeepSpeed, 10 training rows, lengths
32, a learning rate of 1e-3 (20x the example's) for 6 steps of batch 2 (1.2 epochs is enough at
that rate to wreck a small model), a save every 2 steps with `save_total_limit: 2`, and
`studio: {eval_at_save: true}` on tests/data/eval_tiny. The held-out nDCG@10 is scored at step 0
and at each save, charted, and the best of base, checkpoints and final is exported, not the last.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import MSMARCO, ROOT

from studio.app import views
from studio.core.config import StudioConfig, TorchrunSettings
from studio.training import runs
from studio.training.run_eval import read_run_eval

pytestmark = pytest.mark.slow
EVAL = ROOT / "tests" / "data" / "eval_tiny"
ARGS = {
    "model_name_or_path": "bundled:all-MiniLM-L6-v2",
    "train_data": [str(MSMARCO)],
    "sentence_pooling_method": "mean",
    "train_group_size": 2,
    "per_device_train_batch_size": 2,
    "query_max_len": 32,
    "passage_max_len": 32,
    "learning_rate": 1e-3,
    "max_steps": 6,
    "logging_steps": 1,
    "save_steps": 2,
    "save_total_limit": 2,
    "seed": 1,
}


@pytest.fixture(scope="module")
def overfit_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("guard")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("BGE_STUDIO_CACHE", str(tmp / "cache"))
        config = StudioConfig(
            dict(ARGS),
            TorchrunSettings(),
            None,
            {"eval_at_save": True, "eval_data": str(EVAL), "general_data": str(EVAL)},
        )
        run_dir = runs.start(config, tmp / "runs", ROOT)
        status = runs.wait(run_dir, 600)
        log = (run_dir / "train.log").read_text()[-4000:]
        assert status["state"] == "succeeded" and not status.get("export_error"), log
        yield run_dir, status


def _evals(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("event") == "eval"]


def test_held_out_ndcg_is_scored_at_step_0_and_every_save_and_charted(overfit_run):
    from studio.training.charts import Series, training_figure

    run_dir, _ = overfit_run
    evals = _evals(run_dir)
    assert [r["step"] for r in evals] == [0, 2, 4, 6]
    assert all(0 <= r["eval_ndcg@10"] <= 1 and "eval_recall@100" in r for r in evals)
    series = Series()
    series.extend([json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()])
    assert series.steps == list(range(1, 7))  # the eval lines are no loss steps
    fig = training_figure(series)
    trace = next(t for t in fig.data if t.name == "held-out nDCG@10")
    assert list(trace.x) == [0, 2, 4, 6]
    assert list(trace.y) == [r["eval_ndcg@10"] for r in evals]


def test_the_best_on_held_out_is_exported_not_the_last(overfit_run):
    run_dir, _ = overfit_run
    report = read_run_eval(run_dir)
    choice = report["choice"]
    scores = {label: m["ndcg_at_10"] for label, m in report["models"].items()}
    print("held-out nDCG@10:", {k: round(v, 4) for k, v in scores.items()})
    assert choice["label"] == max(scores, key=scores.get) and choice["label"] != "final"
    assert scores["final"] < choice["score"]  # the run overfits: the last model is worse
    # the in-training scores are the end-of-run evaluation's
    during = {r["label"]: r["eval_ndcg@10"] for r in _evals(run_dir)}
    for label, value in scores.items():
        if label in during:
            assert during[label] == pytest.approx(value, abs=1e-6)
    # save_total_limit 2 rotated checkpoints out, never the best trained one
    saved = [r for r in _evals(run_dir) if r["label"] != "base"]
    best_saved = max(saved, key=lambda r: r["eval_ndcg@10"])["label"]
    kept = sorted(p.name for p in (run_dir / "model").glob("checkpoint-*"))
    assert best_saved in kept and len(kept) == 2, kept
    exported = Path(choice["exported"])
    assert exported == run_dir / "exported" and (exported / "modules.json").is_file()
    chosen = Path(report["models"][choice["label"]]["path"])
    weights = "model.safetensors"
    assert (exported / weights).read_bytes() == (chosen / weights).read_bytes()


def test_the_summary_and_the_cli_say_what_was_chosen_and_that_it_got_worse(overfit_run):
    run_dir, status = overfit_run
    report = read_run_eval(run_dir)
    text = views.plain(views.to_html(views.run_summary(run_dir, status, report)))
    choice = report["choice"]
    assert "Which model is exported" in text and f"exported: {run_dir / 'exported'}" in text
    assert f"{choice['label']}, highest held-out nDCG@10" in text
    assert "scores below the base on the held-out split" in text
    assert "python -m studio merge --base" in text
    # the "general" set here is the held-out folder again (cached embeddings, no extra cost)
    general = report["general"]["models"]
    assert general["final"]["ndcg_at_10"] == pytest.approx(report["models"]["final"]["ndcg_at_10"])
    assert "below the base on the general set" in text
    assert text.count("deleted by save_total_limit") == 1  # 3 saves, save_total_limit 2
    # the user picks another: the best checkpoint (a model, not the Trainer's state)
    kept = {k: m for k, m in report["models"].items() if k.startswith("checkpoint-")}
    pick = max(kept, key=lambda k: kept[k]["ndcg_at_10"])
    step = pick.removeprefix("checkpoint-")
    done = subprocess.run(
        [sys.executable, "-m", "studio", "export-model", str(run_dir), "--checkpoint", step],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"exported: {run_dir / 'exported'} ({pick}, picked by the user")
    assert read_run_eval(run_dir)["choice"]["label"] == pick
    exported = run_dir / "exported"
    assert not (exported / "optimizer.pt").exists() and (exported / "modules.json").is_file()
    from studio.evaluation.evaluate import evaluate_model

    again = evaluate_model(exported, EVAL, label="exported", use_cache=False)  # loads and scores
    assert again.metrics["ndcg_at_10"] == pytest.approx(kept[pick]["ndcg_at_10"], abs=1e-4)
