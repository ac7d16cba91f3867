"""Issue 20's outcome in every face: which model was exported and why, and a fine-tuned model that
scores below the base said plainly with the merge command (web, notebook: the one run summary of
studio.views; CLI: the last lines of `train` and `export-model`). No training here: the run
folders are written as a run leaves them (tests/test_guard_rails.py makes a real one)."""

from __future__ import annotations

import pytest
from test_actions import make_run, page_call, same_words

from studio.cli import commands as cli
from studio.training import best_model

BELOW = {
    "models": {
        "base": {"ndcg_at_10": 0.6, "recall_at_10": 0.7, "step": 0, "path": "/m/base"},
        "final": {"ndcg_at_10": 0.5, "recall_at_10": 0.6, "step": 3, "path": "/r/model"},
    },
    "delta": {"ndcg_at_10": -0.1},
}
ABOVE = {
    "models": {
        "base": {"ndcg_at_10": 0.5, "recall_at_10": 0.6, "step": 0},
        "final": {"ndcg_at_10": 0.55, "recall_at_10": 0.7, "step": 3},
    },
    "delta": {"ndcg_at_10": 0.05},
}


def _faces_text(faces, name, report):
    demo, studio, runs_dir = faces
    run = make_run(runs_dir, name, {"state": "succeeded", "exit_code": 0}, report=report)
    web = page_call(demo, "open_run", runs__pick=name)
    return run, same_words(web["runs.summary"], studio.open_run(name)["summary"])


def test_below_the_base_is_said_in_every_face_with_the_merge_command(faces, capsys):
    run, text = _faces_text(faces, "worse", BELOW)
    assert "The fine-tuned model scores below the base on the held-out split" in text
    assert "0.6000 (base) -> 0.5000 (final)" in text
    assert "python -m studio merge --base" in text and "--model /r/model" in text
    cli._print_outcome(run)  # what `python -m studio train` prints last, before the run folder
    err = capsys.readouterr().err
    assert "warning: The fine-tuned model scores below the base" in err
    assert "python -m studio merge --base" in err and f"--config {run / 'config.yaml'}" in err


def test_a_model_better_than_the_base_raises_no_alarm(faces, capsys):
    run, text = _faces_text(faces, "better", ABOVE)
    assert "below the base" not in text and "studio merge" not in text
    cli._print_outcome(run)
    assert capsys.readouterr().err == ""


def test_the_choice_table_says_what_was_exported_and_why(faces):
    report = {
        "models": {
            **BELOW["models"],
            "checkpoint-2": {"ndcg_at_10": 0.7, "step": 2, "path": "/r/model/checkpoint-2"},
        }
    }
    report["choice"] = {**best_model.choose(report), "exported": "/r/exported"}
    _, text = _faces_text(faces, "chosen", report)
    assert "Which model is exported" in text
    assert "checkpoint-2 2 0.7000 ✓ highest held-out nDCG@10" in text
    assert "exported: /r/exported (checkpoint-2, highest held-out nDCG@10: 0.7000)" in text
    assert "export-model" in text  # how to pick another


def test_choose_prefers_the_later_model_on_a_tie_and_the_base_only_when_strictly_better():
    tie = {
        "models": {
            "base": {"ndcg_at_10": 0.5, "step": 0},
            "checkpoint-2": {"ndcg_at_10": 0.6, "step": 2},
            "checkpoint-4": {"ndcg_at_10": 0.6, "step": 4},
            "final": {"ndcg_at_10": 0.4, "step": 4},
        }
    }
    assert best_model.choose(tie)["label"] == "checkpoint-4"
    tie["models"]["base"]["ndcg_at_10"] = 0.6
    assert best_model.choose(tie)["label"] == "checkpoint-4"
    tie["models"]["base"]["ndcg_at_10"] = 0.61
    assert best_model.choose(tie)["label"] == "base"
    assert best_model.choose(tie, "2")["label"] == "checkpoint-2"
    with pytest.raises(ValueError, match="choose one of: base, checkpoint-2"):
        best_model.choose(tie, "7")


def test_export_model_without_an_evaluation_says_how_to_get_one(tmp_path, capsys):
    make_run(tmp_path, "plain", {"state": "succeeded"})
    assert cli.main(["export-model", "plain", "--runs-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "has no evaluation to choose from" in err and "studio eval --run" in err


def test_below_the_base_on_the_general_set_is_said_too(faces, capsys):
    general = {"data": "/sets/general", "models": {"base": {"ndcg_at_10": 0.8}}}
    general["models"]["final"] = {"ndcg_at_10": 0.7}
    run, text = _faces_text(faces, "general", {**ABOVE, "general": general})
    assert "below the base on the held-out split" not in text  # better on its own domain
    assert "scores below the base on the general set /sets/general" in text
    assert "0.8000 (base) -> 0.7000 (final)" in text and "python -m studio merge" in text
    cli._print_outcome(run)
    assert "general set /sets/general" in capsys.readouterr().err
    general["models"]["final"] = {"ndcg_at_10": 0.81}
    _, fine = _faces_text(faces, "general-fine", {**ABOVE, "general": general})
    assert "below the base" not in fine and "studio merge" not in fine


def test_the_best_checkpoint_stays_protected_across_a_resume(tmp_path):
    """The Trainer's rotation keeps `state.best_model_checkpoint`; a resumed attempt seeds it from
    the scores its earlier attempt wrote (not only from what it scores itself)."""
    import json
    from types import SimpleNamespace

    from studio.training.held_out import HeldOutEvalCallback

    out = tmp_path / "model"
    (out / "checkpoint-2").mkdir(parents=True)
    metrics = tmp_path / "metrics.jsonl"
    lines = [
        {"event": "eval", "step": 0, "label": "base", "eval_ndcg@10": 0.9},
        {"event": "eval", "step": 2, "label": "checkpoint-2", "eval_ndcg@10": 0.8},
        {"event": "eval", "step": 4, "label": "checkpoint-4", "eval_ndcg@10": 0.85},  # deleted
    ]
    metrics.write_text("".join(json.dumps(x) + "\n" for x in lines))
    callback = HeldOutEvalCallback(metrics, config=None, eval_data="unused")
    callback.score = lambda model, label, step: {"eval_ndcg@10": 0.7}  # a worse checkpoint
    args = SimpleNamespace(output_dir=str(out))
    state = SimpleNamespace(is_world_process_zero=True, global_step=4, best_model_checkpoint=None)
    callback.on_train_begin(args, state, None)
    state.global_step = 6
    callback.on_save(args, state, None)
    assert state.best_model_checkpoint == str(out / "checkpoint-2")
