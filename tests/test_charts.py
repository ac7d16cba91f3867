"""Live chart series: every step kept (0.0 included), bounded drawing, spikes survive."""

from __future__ import annotations

import json

from studio.training.charts import (
    MAX_POINTS,
    MinMaxDecimator,
    Series,
    overlay_figure,
    training_figure,
)
from studio.training.runlog import MetricsReader, exception_line


def rec(step, loss, **kw):
    return {
        "step": step,
        "loss": loss,
        "learning_rate": 1e-5,
        "grad_norm": 1.0,
        "elapsed_s": step,
        "eta_s": 10 - step,
        "max_steps": 10,
        **kw,
    }


def test_zero_loss_is_a_point():
    s = Series()
    assert s.extend([{"event": "train_begin", "max_steps": 10}, rec(1, 0.5), rec(2, 0.0)]) == 2
    assert s.loss == [0.5, 0.0] and s.max_steps == 10
    fig = training_figure(s)
    assert list(fig.data[0].y) == [0.5, 0.0]


def test_drawn_points_are_bounded_and_keep_spikes():
    d = MinMaxDecimator()
    for i in range(50_000):
        d.add(i, 100.0 if i == 31_337 else 1.0)
    xs, ys = d.points()
    assert len(xs) <= MAX_POINTS and 100.0 in ys and xs == sorted(xs)


def test_resumed_run_replaces_steps_after_the_checkpoint():
    s = Series()
    s.extend([rec(i, 1.0) for i in range(1, 6)])
    s.drawn("loss")
    s.extend([rec(3, 0.2), rec(4, 0.1)])
    assert s.steps == [1, 2, 3, 4] and s.loss[-2:] == [0.2, 0.1]
    assert s.drawn("loss")[0] == [1, 2, 3, 4]


def test_reader_returns_only_complete_new_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    reader = MetricsReader(path)
    assert reader.read_new() == []
    path.write_text(json.dumps(rec(1, 0.0)) + "\n" + '{"step": 2, "lo')
    assert [r["step"] for r in reader.read_new()] == [1]
    with path.open("a") as fh:
        fh.write('ss": 0.3}\n')
    assert reader.read_new() == [{"step": 2, "loss": 0.3}]
    assert reader.read_new() == []


def test_overlay_has_one_trace_per_run():
    a, b = Series(), Series()
    a.extend([rec(1, 1.0)])
    b.extend([rec(1, 2.0), rec(2, 1.5)])
    fig = overlay_figure({"a": a, "b": b})
    assert [t.name for t in fig.data] == ["a", "b"]


def test_exception_line_skips_torchrun_wrapper(tmp_path):
    log = tmp_path / "train.log"
    log.write_text(
        "step 1\nTraceback (most recent call last):\n[rank0]: KeyError: 'neg'\n"
        "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: \n"
    )
    assert exception_line(log) == "KeyError: 'neg'"


def test_held_out_scores_are_drawn_beside_the_loss_and_are_no_loss_steps():
    """studio.eval_at_save writes {"event": "eval", "step": N, "eval_ndcg@10": x} lines."""
    s = Series()
    s.extend(
        [
            {"event": "eval", "step": 0, "label": "base", "eval_ndcg@10": 0.9},
            {"step": 1, "loss": 1.0},
            {"step": 2, "loss": 0.5},
            {"event": "eval", "step": 2, "label": "checkpoint-2", "eval_ndcg@10": 0.8},
            {"event": "eval", "step": 4, "label": "checkpoint-4", "error": "boom"},
        ]
    )
    assert s.steps == [1, 2] and s.eval_steps == [0, 2] and s.eval_ndcg == [0.9, 0.8]
    trace = next(t for t in training_figure(s).data if t.name == "held-out nDCG@10")
    assert list(trace.x) == [0, 2] and list(trace.y) == [0.9, 0.8]
    assert not [t for t in training_figure(Series()).data if t.name == "held-out nDCG@10"]
