"""`python -m studio`: exit codes, printed scripts and diagnostics, and Ctrl-C on a real run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, SEED_SCRIPT, tiny_train_config

from studio.core import config
from studio.training import runs
from studio.training.runs import group_members


def studio(*args, cwd=ROOT, **kw):
    return subprocess.run(
        [sys.executable, "-m", "studio", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        **kw,
    )


def test_help_lists_the_subcommands():
    out = studio("--help")
    assert out.returncode == 0
    for name in ("check", "command", "import-script", "train", "runs", "stop", "resume"):
        assert name in out.stdout


def test_check_exit_codes(tmp_path):
    assert studio("check", "example_data/quickstart.yaml").returncode == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("model_name_or_path: bundled:all-MiniLM-L6-v2\ntrain_data: [nope.jsonl]\n")
    out = studio("check", str(bad))
    assert out.returncode == 1 and "nope.jsonl" in out.stdout and "does not exist" in out.stdout
    typo = tmp_path / "typo.yaml"
    typo.write_text("learnig_rate: 1\n")
    out = studio("check", str(typo))
    assert out.returncode == 2 and f"{typo}:1" in out.stderr and "learning_rate" in out.stderr


def test_command_prints_the_script_and_writes_it_with_its_deepspeed_json(tmp_path):
    out = studio("command", "example_data/quickstart.yaml", "--out", str(tmp_path))
    assert out.returncode == 0 and out.stdout.startswith("#!/usr/bin/env bash")
    assert (tmp_path / "command.sh").read_text() == out.stdout
    assert json.loads((tmp_path / "ds_config.json").read_text())["zero_optimization"]["stage"] == 0
    again = studio("command", "example_data/quickstart.yaml", "--out", str(tmp_path))
    assert again.returncode == 2 and "--force" in again.stderr


def test_import_script_writes_config_and_prints_diagnostics(tmp_path):
    out_cfg = tmp_path / "seed.yaml"
    out = studio(
        "import-script", str(SEED_SCRIPT), "--base-dir", str(tmp_path), "--out", str(out_cfg)
    )
    assert out.returncode == 1, out.stderr  # written, but its errors fail the import
    assert "does not end with a backslash" in out.stdout
    assert "--passage_instruction_for_retrieval" in out.stdout
    assert config.load(out_cfg).torchrun.nproc_per_node == 8
    assert studio("import-script", str(SEED_SCRIPT), "--out", str(out_cfg)).returncode == 2


def test_runs_on_an_empty_folder(tmp_path):
    out = studio("runs", "--runs-dir", str(tmp_path))
    assert out.returncode == 0 and "no runs" in out.stdout


@pytest.mark.slow
def _ctrl_c_reaches_python() -> None:
    """A terminal's Ctrl-C: SIGINT at its default. A shell that starts a job in the background
    (`pytest ... &`, nohup) sets SIGINT to ignored, and the child would inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_train_in_the_foreground_and_ctrl_c_stops_cleanly(tmp_path):
    cfg = tmp_path / "long.yaml"
    cfg.write_text(
        (ROOT / "example_data" / "quickstart.yaml")
        .read_text()
        .replace("max_steps: 20", "max_steps: 500")
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "studio", "train", str(cfg), "--runs-dir", str(tmp_path / "runs")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
        preexec_fn=_ctrl_c_reaches_python,
    )
    try:
        deadline = time.monotonic() + 400
        metrics = None
        while time.monotonic() < deadline:
            found = list((tmp_path / "runs").glob("*/metrics.jsonl"))
            if found and '"loss"' in found[0].read_text():
                metrics = found[0]
                break
            time.sleep(1)
        assert metrics is not None, "no step was logged"
        pgid = json.loads((metrics.parent / "status.json").read_text())["pgid"]
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:  # whatever failed above, no training is left behind
        proc.kill()
        for run in runs.list_runs(tmp_path / "runs"):
            runs.stop(run.path)
    assert proc.returncode == 1 and "stopped" in stderr
    assert stdout.strip() == str(metrics.parent)
    assert json.loads((metrics.parent / "status.json").read_text())["state"] == "stopped"
    assert group_members(pgid) == []
    listed = studio("runs", "--runs-dir", str(tmp_path / "runs"))
    assert metrics.parent.name in listed.stdout and "stopped" in listed.stdout


@pytest.mark.slow
def test_train_says_last_and_exits_1_when_the_evaluation_after_training_fails(tmp_path):
    """The eval data passed pre-flight, then changed under the run (its qrels deleted while it
    trained): the evaluation after training fails. That was only in status.json, and
    `studio train` exited 0; now its last lines say it, with the fix, and it exits 1.
    The smallest real run: 2 steps of batch 2, lengths 32, no DeepSpeed, the tiny eval set."""
    import shutil

    eval_dir = tmp_path / "eval"
    shutil.copytree(ROOT / "tests" / "data" / "eval_tiny", eval_dir)
    cfg = tiny_train_config(
        tmp_path / "out", max_steps=2, query_max_len=32, passage_max_len=32, save_steps=1000
    )
    cfg.deepspeed = None
    cfg.studio = {"evaluate_at_end": True, "eval_data": str(eval_dir)}
    path = tmp_path / "run.yaml"
    config.save(cfg, path)
    env = dict(os.environ, BGE_STUDIO_CACHE=str(tmp_path / "cache"))
    argv = [
        sys.executable,
        "-m",
        "studio",
        "train",
        str(path),
        "--runs-dir",
        str(tmp_path / "runs"),
    ]
    proc = subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        first = proc.stderr.readline()  # "run folder: ...", printed once pre-flight passed
        assert first.startswith("run folder:"), first + proc.stderr.read()
        shutil.rmtree(eval_dir / "qrels")
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        proc.kill()
        for run in runs.list_runs(tmp_path / "runs"):
            runs.stop(run.path)
    run_dir = stdout.strip()
    status = json.loads((Path(run_dir) / "status.json").read_text())
    assert status["state"] == "succeeded" and "no queries and qrels" in status["eval_error"]
    assert proc.returncode == 1, stderr
    last = stderr.strip().splitlines()
    assert last[-1].startswith("error: the evaluation after training failed: EvalDataError")
    assert "no queries and qrels" in last[-1] and f"studio eval --run {run_dir}" in last[-1]
    assert f"succeeded: {run_dir}" in stderr


def test_train_refuses_data_the_checker_rejects_with_file_and_line(tmp_path):
    """Was: pre-flight 0 errors, then "ValueError: Expected object or value at position 23"
    from the run with no file or line (and an empty file: a warning, then StopIteration)."""
    from conftest import MSMARCO

    good = [line for line in MSMARCO.read_text().splitlines() if line.strip()][:5]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([*good, '{"query":"q","pos":"x","neg":["a"]}', "garbage"]) + "\n")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    path = tmp_path / "c.yaml"
    config.save(tiny_train_config(train_data=[str(bad), str(empty)]), path)
    out = studio("train", str(path), "--runs-dir", str(tmp_path / "runs"))
    assert out.returncode == 1 and not (tmp_path / "runs").exists()
    assert f"error: {bad}:6 pos: `pos` is a string, not a list" in out.stderr
    assert f"error: {bad}:7: not valid JSON" in out.stderr
    assert f"error: {empty} train_data: the file holds no rows" in out.stderr
    checked = studio("data", "check", str(bad), str(empty))
    errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 3
    for line in errors:
        assert line in checked.stdout  # the data checker's words, line for line
