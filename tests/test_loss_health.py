"""Loss health: NaN/inf stops a run with the step, the cause and the fix; a stuck loss warns.

The unit tests drive :class:`LossHealth` with the logs the Trainer passes to ``on_log``; the slow
test makes a real CPU fine-tune of the bundled model diverge (learning rate 1e6) through the CLI.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from studio.core import config as config_mod
from studio.core.config import StudioConfig, TorchrunSettings
from studio.training import loss_health
from studio.training.loss_health import LossHealth, LossNotFiniteError

ROOT = Path(__file__).resolve().parents[1]


def args(**values):
    base = {"fp16": False, "bf16": False, "learning_rate": 2e-5, "temperature": 0.02}
    return SimpleNamespace(**{**base, **values})


def test_nan_grad_norm_stops_with_step_cause_and_fix(tmp_path):
    health = LossHealth(findings_path=tmp_path / "health.jsonl")
    health.check(args(learning_rate=1e6), 1, {"loss": 0.5, "grad_norm": 3.0})
    with pytest.raises(LossNotFiniteError) as caught:
        health.check(args(learning_rate=1e6), 2, {"loss": 0.0, "grad_norm": math.nan})
    message = str(caught.value)
    assert "step 2" in message and "NaN/inf" in message and "grad_norm nan" in message
    assert "learning_rate 1e+06" in message and "lower it" in message
    assert "\n" not in message  # one line: the run's error line is read from the log
    (finding,) = loss_health.read_findings(tmp_path)
    assert finding["level"] == "error" and finding["step"] == 2


def test_fp16_overflow_advises_bf16_only_where_the_device_has_it():
    gpu = loss_health.likely_causes(args(fp16=True), bf16_available=True)
    assert gpu[0].startswith("fp16 overflow: train with bf16")
    old = loss_health.likely_causes(args(fp16=True), bf16_available=False)
    assert "bf16" in old[0] and "no bf16 here" in old[0]
    cold = loss_health.likely_causes(args(temperature=0.001))
    assert "temperature 0.001" in cold[0]


def test_inf_loss_with_ignore_nan_warns_once_and_goes_on(tmp_path):
    settings = loss_health.settings_from_studio({"ignore_nan": True})
    health = LossHealth(**settings, findings_path=tmp_path / "health.jsonl")
    for step in (1, 2, 3):
        health.check(args(), step, {"loss": math.inf, "grad_norm": None})
    findings = loss_health.read_findings(tmp_path)
    assert [f["level"] for f in findings] == ["warning"] and "loss inf" in findings[0]["message"]


def test_stuck_and_zero_loss_warn_after_the_configured_steps(tmp_path):
    stuck = LossHealth(stuck_loss_steps=5, findings_path=tmp_path / "health.jsonl")
    for step in range(1, 5):
        stuck.check(args(), step, {"loss": 0.6931})
    assert loss_health.read_findings(tmp_path) == []  # four equal losses: not yet
    stuck.check(args(), 5, {"loss": 0.6931})
    (warning,) = loss_health.read_findings(tmp_path)
    assert warning["level"] == "warning" and "0.6931" in warning["message"]
    assert "5 logged steps" in warning["message"]

    zero_dir = tmp_path / "zero"
    zero_dir.mkdir()
    zero = LossHealth(stuck_loss_steps=3, findings_path=zero_dir / "health.jsonl")
    for step in range(1, 4):
        zero.check(args(), step, {"loss": 0.0})
    (warning,) = loss_health.read_findings(zero_dir)
    assert "at 0" in warning["message"] and "neg" in warning["message"]

    moving = LossHealth(stuck_loss_steps=3, findings_path=tmp_path / "moving.jsonl")
    for step, loss in enumerate([0.9, 0.8, 0.7, 0.6], 1):
        moving.check(args(), step, {"loss": loss})
    assert not (tmp_path / "moving.jsonl").exists()


def test_studio_section_reaches_the_worker_environment():
    env = loss_health.env_for({"ignore_nan": True, "stuck_loss_steps": 7})
    health = loss_health.health_from_env(Path("/nonexistent/metrics.jsonl"), env)
    assert health.stop_on_nan is False and health.stuck_steps == 7
    default = loss_health.health_from_env(None, {})
    assert default.stop_on_nan is True and default.stuck_steps == 20


# --------------------------------------------------------------------------- fp16 loss scaler

H200_FP16 = ROOT / "tests" / "data" / "run2-fp16-noDS-minilm-like-ignore_nan.metrics.jsonl"


def h200_steps() -> list[dict]:
    """The step lines of a real fp16 run on an H200 (MiniLM-size, no DeepSpeed, batch 64):
    torch's GradScaler skipped step 6 (grad_norm NaN, loss finite), the run went on to bf16's
    losses. Recorded with ``ignore_nan`` by the old check, which stopped it at step 6."""
    records = [json.loads(line) for line in H200_FP16.read_text().splitlines()]
    return [r for r in records if "event" not in r]


def replay(health: LossHealth, run_args, steps: list[dict]) -> None:
    """Feed logged steps to the check as the metrics callback's on_log does."""
    for record in steps:
        logs = {k: record[k] for k in ("loss", "grad_norm", "learning_rate", "epoch")}
        health.check(run_args, record["step"], logs)


def test_recorded_h200_fp16_run_goes_on_and_counts_the_skipped_step(tmp_path):
    steps = h200_steps()
    assert [s["step"] for s in steps if not math.isfinite(s["grad_norm"])] == [6]
    health = LossHealth(findings_path=tmp_path / "health.jsonl")  # the default: stop on NaN
    replay(health, args(fp16=True), steps)  # no LossNotFiniteError: all 40 steps go through
    assert health.skipped == [6]
    assert loss_health.skipped_steps(tmp_path) == [6]
    line = loss_health.skip_line(tmp_path)
    assert line.startswith("1 step skipped by the fp16 loss scaler (torch's GradScaler under")
    assert "step 6." in line
    assert loss_health.warning_lines(tmp_path) == []  # a skip is no warning


def test_recorded_h200_fp16_run_stops_when_the_loss_itself_turns_nan(tmp_path):
    steps = h200_steps()
    steps[11] = {**steps[11], "loss": math.nan}  # step 12
    health = LossHealth(findings_path=tmp_path / "health.jsonl")
    with pytest.raises(LossNotFiniteError, match=r"^step 12: loss nan \(NaN/inf\)"):
        replay(health, args(fp16=True), steps)
    assert health.skipped == [6]


def test_fp16_grad_norms_that_stay_nan_stop_naming_the_loss_scaler_and_the_fix(tmp_path):
    steps = [{**s, "grad_norm": math.nan} if s["step"] >= 8 else s for s in h200_steps()]
    health = LossHealth(findings_path=tmp_path / "health.jsonl")
    with pytest.raises(LossNotFiniteError) as caught:
        replay(health, args(fp16=True), steps)
    message = str(caught.value)
    last = 8 + loss_health.FP16_SKIP_LIMIT - 1  # 16 halvings take 65,536 to 1, one more overflows
    assert message.startswith(f"step {last}: the fp16 loss scaler (torch's GradScaler")
    assert f"skipped {loss_health.FP16_SKIP_LIMIT} steps in a row (steps 8-{last}" in message
    assert "from 65,536 its scale is at its floor (1)" in message and "cannot recover" in message
    assert "Likely cause: fp16 overflow" in message and "\n" not in message
    assert health.skipped == [6, *range(8, last + 1)]
    assert loss_health.read_findings(tmp_path)[-1]["level"] == "error"


def test_deepspeed_fp16_skips_name_deepspeeds_scaler(tmp_path):
    health = LossHealth(findings_path=tmp_path / "health.jsonl")
    ds_args = args(fp16=True, deepspeed="ds_config.json")
    with pytest.raises(LossNotFiniteError, match="DeepSpeed's fp16 loss scaler"):
        for step in range(1, loss_health.FP16_SKIP_LIMIT + 1):
            health.check(ds_args, step, {"loss": 1.0, "grad_norm": math.inf})


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_bf16_and_fp32_still_stop_at_the_first_nan_grad_norm(tmp_path, precision):
    health = LossHealth(findings_path=tmp_path / "health.jsonl")
    with pytest.raises(LossNotFiniteError, match=r"^step 6: grad_norm nan \(NaN/inf\)"):
        replay(health, args(bf16=precision == "bf16"), h200_steps())
    assert health.skipped == [] and loss_health.skip_line(tmp_path) is None


def real_scaler_optimizer():
    """accelerate's optimizer wrapper over a real torch GradScaler, as HF fp16 AMP builds it
    (the CPU GradScaler: the same skip-and-halve logic, no GPU needed)."""
    import torch
    from accelerate import Accelerator
    from accelerate.optimizer import AcceleratedOptimizer

    Accelerator(cpu=True)
    model = torch.nn.Linear(2, 1)
    optimizer = AcceleratedOptimizer(
        torch.optim.SGD(model.parameters(), lr=0.1),
        device_placement=False,
        scaler=torch.amp.GradScaler("cpu"),
    )

    def step(gradient_scale: float) -> None:
        optimizer.zero_grad()
        loss = (model(torch.ones(2)) * gradient_scale).sum()
        optimizer.scaler.scale(loss).backward()
        optimizer.step()

    return optimizer, step


def test_every_step_the_real_grad_scaler_skips_is_counted_and_charted_logged_or_not(tmp_path):
    from transformers import TrainerControl, TrainerState

    from studio.training.charts import Series, training_figure
    from studio.training.runlog import read_metrics
    from studio.training.train_entry import MetricsCallback

    metrics = tmp_path / "metrics.jsonl"
    health = LossHealth(findings_path=tmp_path / "health.jsonl")
    callback = MetricsCallback(metrics, health)
    state, control = TrainerState(max_steps=8), TrainerControl()
    run_args = args(fp16=True)
    callback.on_train_begin(run_args, state, control)
    optimizer, step = real_scaler_optimizer()
    for number, gradient_scale in enumerate([1.0, 1e39, 1.0, 1e39, 1e39, 1.0], 1):
        step(gradient_scale)  # 1e39 overflows: the scaler skips the step and halves its scale
        state.global_step = number
        callback.on_step_end(run_args, state, control, optimizer=optimizer)
        if number % 3 == 0:  # logging_steps 3: steps 2, 4 and 5 are never logged
            callback.on_log(run_args, state, control, logs={"loss": 0.5, "grad_norm": 1.0})
    assert health.skipped == [2, 4, 5]
    assert [f["scale"] for f in loss_health.read_findings(tmp_path)] == [32768, 16384, 8192]
    assert "3 steps skipped by the fp16 loss scaler" in loss_health.skip_line(tmp_path)
    series = Series()
    series.extend(read_metrics(metrics))
    assert series.skipped == [2, 4, 5]
    (mark,) = [t for t in training_figure(series).data if "skipped" in (t.name or "")]
    assert list(mark.x) == [2, 4, 5] and mark.name == "skipped by the fp16 loss scaler (3)"


def test_a_nan_grad_norm_the_scaler_did_not_skip_still_stops(tmp_path):
    """fp16 without a scaler (the optimizer says each step ran): NaN gradients reached the
    weights, so the old rule holds."""
    health = LossHealth(findings_path=tmp_path / "health.jsonl")
    health.step_end(args(fp16=True), 1, skipped=False)
    with pytest.raises(LossNotFiniteError, match="grad_norm nan"):
        health.check(args(fp16=True), 1, {"loss": 0.5, "grad_norm": math.nan})


def test_a_scale_grown_above_65536_has_room_before_the_run_stops(tmp_path):
    health = LossHealth(findings_path=tmp_path / "health.jsonl")
    scale = 2.0**24  # grown over a long run: 24 halvings to 1, not 16
    for step in range(1, 24):
        scale /= 2
        health.step_end(args(fp16=True), step, skipped=True, scale=scale)
    assert scale == 2.0 and len(health.skipped) == 23  # past the limit, still going
    with pytest.raises(LossNotFiniteError, match="skipped 24 steps in a row .*down to 1,"):
        health.step_end(args(fp16=True), 24, skipped=True, scale=scale / 2)


@pytest.mark.slow
def test_a_run_at_learning_rate_1e6_fails_naming_nan_and_the_step(tmp_path):
    cfg = StudioConfig(
        {
            "model_name_or_path": "bundled:all-MiniLM-L6-v2",
            "train_data": [str(ROOT / "example_data" / "train.jsonl")],
            "sentence_pooling_method": "mean",
            "train_group_size": 2,
            "per_device_train_batch_size": 2,
            "query_max_len": 16,
            "passage_max_len": 32,
            "learning_rate": 1e6,
            "max_steps": 8,
            "logging_steps": 1,
            "save_steps": 100,
        },
        TorchrunSettings(),
        None,
    )
    path = tmp_path / "diverge.yaml"
    config_mod.save(cfg, path)
    out = subprocess.run(
        [sys.executable, "-m", "studio", "train", str(path), "--runs-dir", str(tmp_path / "runs")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 1, out.stderr[-3000:]
    run_dir = Path(out.stdout.strip().splitlines()[-1])
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "failed"
    error = status["error"]
    assert "LossNotFiniteError" in error and "NaN/inf" in error, error
    step = int(error.split("step ")[1].split(":")[0])
    assert 1 <= step < 8  # stopped early, at the step that went bad
    assert "learning_rate 1e+06" in error
    assert f"error: {error}" in out.stderr  # the CLI face shows it
    steps = [
        json.loads(line)["step"]
        for line in (run_dir / "metrics.jsonl").read_text().splitlines()
        if '"event"' not in line
    ]
    assert max(steps) == step  # nothing trained after it
    (finding,) = loss_health.read_findings(run_dir)
    assert finding["level"] == "error" and finding["step"] == step
