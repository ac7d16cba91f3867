"""Runs on the real stack: torchrun + DeepSpeed ZeRO-0 + FlagEmbedding + the bundled model, on CPU.

These are the proofs that the studio trains: no fakes. Each run is a few steps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, tiny_train_config

from studio.training import runs
from studio.training.runlog import read_metrics, step_records

pytestmark = pytest.mark.slow
TIMEOUT_S = 600


def _wait_for(predicate, timeout_s=TIMEOUT_S, what="condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_run_trains_saves_and_logs_every_step(tmp_path):
    run_dir = runs.start(tiny_train_config(max_steps=4, save_steps=100), tmp_path / "runs", ROOT)
    status = runs.wait(run_dir, TIMEOUT_S)
    assert status["state"] == "succeeded", (run_dir / "train.log").read_text()[-3000:]
    assert status["exit_code"] == 0
    for name in ("config.yaml", "command.sh", "ds_config.json", "train.log", "status.json"):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "model" / "model.safetensors").is_file()
    log = (run_dir / "train.log").read_text()
    assert "[studio] end check: 4 steps trained, train_loss " in log  # the end check ran: healthy
    assert "weights finite in " in log and "(model.safetensors, read in " in log
    steps = step_records(read_metrics(run_dir / "metrics.jsonl"))
    assert [r["step"] for r in steps] == [1, 2, 3, 4]
    assert all(isinstance(r["loss"], float) and r["learning_rate"] is not None for r in steps)
    assert all(r["elapsed_s"] >= 0 and r["eta_s"] >= 0 for r in steps)
    (listed,) = runs.list_runs(tmp_path / "runs")
    assert (
        listed.state == "succeeded" and listed.step == 4 and listed.last_loss == steps[-1]["loss"]
    )


def test_stop_leaves_no_process_and_resume_continues_the_steps(tmp_path):
    cfg = tiny_train_config(max_steps=8, save_steps=2)
    run_dir = runs.start(cfg, tmp_path / "runs", ROOT)
    checkpoint = run_dir / "model" / "checkpoint-2"
    _wait_for(
        lambda: (
            (checkpoint / "trainer_state.json").is_file()
            or runs.refresh(run_dir)["state"] != "running"
        ),
        what="checkpoint-2",
    )
    pgid = json.loads((run_dir / "status.json").read_text())["pgid"]
    status = runs.stop(run_dir)
    assert status["state"] == "stopped"
    assert runs.group_members(pgid) == []
    stopped_at = max(r["step"] for r in step_records(read_metrics(run_dir / "metrics.jsonl")))
    assert stopped_at < 8

    resumed_from = runs.last_checkpoint(run_dir)
    runs.resume(run_dir)
    status = runs.wait(run_dir, TIMEOUT_S)
    assert status["state"] == "succeeded", (run_dir / "train.log").read_text()[-3000:]
    assert status["attempt"] == 2 and status["resumed_from"] == str(resumed_from)
    steps = [r["step"] for r in step_records(read_metrics(run_dir / "metrics.jsonl"))]
    start = int(resumed_from.name.split("-")[1])
    after = steps[steps.index(start + 1, len(steps) - (8 - start)) :]
    assert after == list(range(start + 1, 9)), steps


def test_failure_is_reported_with_its_exception_line(tmp_path):
    """A fault pre-flight cannot see (its data is checked now): weights that are not a
    safetensors file. The run fails and its status names the exception line."""
    from studio.core.config import bundled_model_path

    model = tmp_path / "broken-model"
    model.mkdir()
    for item in bundled_model_path().iterdir():
        if item.is_file() and item.name != "model.safetensors":
            (model / item.name).symlink_to(item)
    (model / "model.safetensors").write_bytes(b"not a safetensors file")
    run_dir = runs.start(
        tiny_train_config(model_name_or_path=str(model), max_steps=2), tmp_path / "runs", ROOT
    )
    status = runs.wait(run_dir, TIMEOUT_S)
    assert status["state"] == "failed" and status["exit_code"] != 0
    assert "Error" in status["error"] and "safetensors" in status["error"].lower()


def test_exported_command_sh_trains_with_flagembedding_alone(tmp_path):
    run_dir = runs.prepare(tiny_train_config(max_steps=2, save_steps=100), tmp_path / "runs", ROOT)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    env.pop("STUDIO_METRICS_FILE", None)
    done = subprocess.run(
        ["bash", str(run_dir / "command.sh")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert (
        "FlagEmbedding.finetune.embedder.encoder_only.base" in (run_dir / "command.sh").read_text()
    )
    assert (run_dir / "model" / "model.safetensors").is_file()


def test_a_half_written_checkpoint_is_not_resumed_from(tmp_path):
    run_dir = runs.prepare(tiny_train_config(), tmp_path / "runs", ROOT)
    model = run_dir / "model"
    (model / "checkpoint-2").mkdir(parents=True)
    (model / "checkpoint-2" / "trainer_state.json").write_text("{}")
    (model / "checkpoint-4").mkdir()  # stopped while saving: no trainer_state.json yet
    assert runs.last_checkpoint(run_dir) == model / "checkpoint-2"
