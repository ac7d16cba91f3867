"""Teacher scores: streamed, resumable after a crash, never over the input, reranker or embedder.

The embedder is the real bundled all-MiniLM-L6-v2; the reranker is a tiny cross-encoder built
from a config (random weights: only the plumbing is under test there).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from studio.core.config import bundled_model_path
from studio.datawork import score

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT / "example_data" / "train.jsonl"


def first_rows(dest: Path, n: int = 6) -> Path:
    lines = TRAIN.read_text(encoding="utf-8").splitlines()[:n]
    dest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return dest


class Crash(RuntimeError):
    pass


class CrashAfter:
    """Wraps a scorer and fails on its n-th call, as a killed job would stop."""

    def __init__(self, scorer, calls: int):
        self.scorer, self.calls, self.kind = scorer, calls, scorer.kind
        self.settings_record = scorer.settings_record

    def score(self, pairs):
        self.calls -= 1
        if self.calls < 0:
            raise Crash("killed")
        return self.scorer.score(pairs)


@pytest.fixture(scope="module")
def embedder():
    return score.make_scorer("bundled:all-MiniLM-L6-v2", temperature=0.05)


def test_embedder_scores_resume_after_a_crash_and_match_one_pass(tmp_path, embedder):
    data = first_rows(tmp_path / "train.jsonl")
    before = data.read_bytes()
    out = tmp_path / "scored.jsonl"
    with pytest.raises(Crash):
        score.score_file(data, out, CrashAfter(embedder, 2), rows_per_batch=2)
    assert len(out.read_text().splitlines()) == 4  # two batches written before the crash
    with out.open("a") as handle:
        handle.write('{"query": "half a li')  # a line cut by the crash is cut off again
    again = score.score_file(data, out, embedder, rows_per_batch=2)
    assert again.rows_resumed == 4 and again.rows_written == 2 and again.scorer == "embedder"
    assert data.read_bytes() == before  # the input is never written

    whole = tmp_path / "whole.jsonl"
    score.score_file(data, whole, embedder, rows_per_batch=6)
    resumed = [json.loads(line) for line in out.read_text().splitlines()]
    one_pass = [json.loads(line) for line in whole.read_text().splitlines()]
    assert len(resumed) == 6
    for a, b in zip(resumed, one_pass, strict=True):
        assert a["query"] == b["query"]
        assert len(a["pos_scores"]) == len(a["pos"]) and len(a["neg_scores"]) == len(a["neg"])
        assert a["pos_scores"] == pytest.approx(b["pos_scores"], abs=1e-4)
        assert a["neg_scores"] == pytest.approx(b["neg_scores"], abs=1e-4)
    # similarity / temperature: cosines of at most 1 become at most 1 / 0.05
    assert all(abs(s) <= 20.0001 for r in resumed for s in r["pos_scores"] + r["neg_scores"])
    assert resumed[0]["pos_scores"][0] > min(resumed[0]["neg_scores"])


def test_refuses_to_write_over_its_input_and_copies_bad_lines(tmp_path, embedder):
    data = first_rows(tmp_path / "train.jsonl", 2)
    with pytest.raises(ValueError, match="refusing to write over the input"):
        score.score_file(data, data, embedder)
    with data.open("a") as handle:
        handle.write('{"query": "no positives"}\n')
    result = score.score_file(data, tmp_path / "out.jsonl", embedder)
    assert result.rows_written == 2 and result.lines_copied == 1
    (problem,) = result.problems
    assert problem.line == 3 and "copied unscored" in problem.message
    assert result.kd_settings() == {
        "train_data": [str(tmp_path / "out.jsonl")],
        "knowledge_distillation": True,
        "kd_loss_type": "kl_div",
    }


def test_a_cross_encoder_is_scored_as_a_reranker(tmp_path):
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tiny = tmp_path / "tiny-reranker"
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=1,
    )
    BertForSequenceClassification(config).save_pretrained(tiny)
    AutoTokenizer.from_pretrained(str(bundled_model_path())).save_pretrained(tiny)
    scorer = score.make_scorer(str(tiny))
    assert scorer.kind == "reranker"
    data = first_rows(tmp_path / "train.jsonl", 3)
    result = score.score_file(data, tmp_path / "out.jsonl", scorer)
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert result.rows_written == 3 and result.scorer == "reranker"
    assert all(len(r["neg_scores"]) == len(r["neg"]) for r in rows)


def test_cli_scores_and_offers_the_kd_settings(tmp_path):
    data = first_rows(tmp_path / "train.jsonl", 2)
    out = tmp_path / "scored.jsonl"
    argv = [sys.executable, "-m", "studio", "data", "score", str(data), "--out", str(out)]
    done = subprocess.run(
        [*argv, "--config", "example_data/quickstart.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "knowledge_distillation: true" in done.stdout and "kd_loss_type: kl_div" in done.stdout
    assert "rows_written     2" in done.stdout
    again = subprocess.run(
        [*argv, "--config", "example_data/quickstart.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "rows_resumed     2" in again.stdout and "rows_written     0" in again.stdout
    assert len(out.read_text().splitlines()) == 2


def test_cli_resumes_only_onto_its_own_input(tmp_path, capsys):
    """Issue 18: 40 rows scored, 35 lines kept, resumed with the rows reversed: refused, with the
    fix; the lines kept are untouched; `--restart` scores the new order; the same input resumes."""
    from studio.cli.commands import main

    data = first_rows(tmp_path / "train.jsonl", 40)
    out = tmp_path / "scored.jsonl"
    argv = ["data", "score", str(data), "--out", str(out), "--model", "bundled:all-MiniLM-L6-v2"]
    assert main([*argv, "--batch-rows", "16"]) == 0
    lines = out.read_text(encoding="utf-8").splitlines(keepends=True)
    out.write_text("".join(lines[:35]), encoding="utf-8")
    kept = out.read_bytes()
    rows = data.read_text(encoding="utf-8").splitlines()
    data.write_text("\n".join(reversed(rows)) + "\n", encoding="utf-8")
    capsys.readouterr()

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "another input" in err and "--restart" in err and "Traceback" not in err
    assert out.read_bytes() == kept
    score.sidecar_path(out).unlink()  # an output without its record: checked row by row
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "line 1 is not row 1" in err and "--restart" in err
    assert out.read_bytes() == kept

    assert main([*argv, "--restart"]) == 0
    scored = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["query"] for r in scored] == [json.loads(r)["query"] for r in reversed(rows)]

    out.write_text("".join(out.read_text().splitlines(keepends=True)[:35]), encoding="utf-8")
    capsys.readouterr()
    assert main(argv) == 0  # the same input and settings: resumed
    assert "rows_resumed     35" in capsys.readouterr().out
    again = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["query"] for r in again] == [r["query"] for r in scored]
    assert main([*argv, "--temperature", "0.5"]) == 2  # other settings: refused, named
    assert "temperature" in capsys.readouterr().err
