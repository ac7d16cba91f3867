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

from studio import config as config_mod
from studio import loss_health
from studio.config import StudioConfig, TorchrunSettings
from studio.loss_health import LossHealth, LossNotFiniteError

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
