"""A real Slurm (scripts/local_slurm.sh: slurm-wlm + munge, one node, no accounting).

One flow, so the node's CPUs do the waiting for us: a long run takes every CPU of the node,
a tiny run submitted through `python -m studio submit --slurm` then waits (queued, Slurm's reason
"Resources"), the long run is stopped (scancel: squeue no longer lists it, none of its processes
is left, state stopped), and the tiny run goes running -> succeeded with its metrics. A job
Slurm refuses gets Slurm's own message.

These tests fail, not skip, without Slurm: scripts/test.sh starts it before pytest.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT

from studio.cluster import slurm
from studio.core.config import StudioConfig, TorchrunSettings
from studio.facts.statusfile import read_json
from studio.training import runs
from studio.training.runlog import read_metrics, step_records

pytestmark = pytest.mark.slow
TIMEOUT_S = 600
TRAIN = ROOT / "example_data" / "train.jsonl"


@pytest.fixture(scope="module")
def node_cpus() -> int:
    if shutil.which("sinfo") is None:
        pytest.fail("Slurm is not installed: run `sudo bash scripts/local_slurm.sh` first")
    proc = subprocess.run(["sinfo", "-h", "-N", "-o", "%t %c"], capture_output=True, text=True)
    states = proc.stdout.split()
    if proc.returncode != 0 or not states or states[0] not in ("idle", "mix", "alloc"):
        pytest.fail(f"Slurm is not up ({proc.stdout or proc.stderr}): run scripts/local_slurm.sh")
    return int(states[1])


def _config(max_steps: int, save_steps: int = 1000) -> StudioConfig:
    args = {
        "model_name_or_path": "bundled:all-MiniLM-L6-v2",
        "train_data": [str(TRAIN)],
        "sentence_pooling_method": "mean",
        "train_group_size": 2,
        "per_device_train_batch_size": 2,
        "query_max_len": 16,
        "passage_max_len": 32,
        "max_steps": max_steps,
        "logging_steps": 1,
        "save_steps": save_steps,
    }
    return StudioConfig(args, TorchrunSettings(), None)


def _wait_for(predicate, what: str, timeout_s: float = TIMEOUT_S):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _processes_of(run_dir: Path) -> list[int]:
    """Live processes whose command line or environment names the run folder."""
    needle = str(run_dir).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            stat = (entry / "stat").read_text()
            if stat[stat.rfind(")") + 2] == "Z":
                continue
            if (
                needle in (entry / "cmdline").read_bytes()
                or needle in (entry / "environ").read_bytes()
            ):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _squeue_all() -> str:
    return subprocess.run(["squeue", "-h"], capture_output=True, text=True).stdout.strip()


def _squeue(job_id: str) -> str:
    proc = subprocess.run(["squeue", "-h", "-j", job_id], capture_output=True, text=True)
    return proc.stdout.strip()


@pytest.fixture
def runs_dir(tmp_path):
    """The test's runs folder; whatever job a failing test left in Slurm is cancelled."""
    root = tmp_path / "runs"
    yield root
    jobs = [read_json(p / "status.json").get("job_id") for p in root.glob("*")]
    jobs = [j for j in jobs if j]
    if jobs:
        subprocess.run(["scancel", *jobs], capture_output=True)


def _cli_submit(cfg: Path, runs_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "studio", "submit", str(cfg), "--slurm", "--runs-dir"]
        + [str(runs_dir), *extra],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


def test_queue_stop_and_succeed_on_a_real_slurm(tmp_path, runs_dir, node_cpus):
    long_run = slurm.submit(
        _config(max_steps=5000, save_steps=1),
        slurm.SlurmSettings(cpus_per_task=node_cpus),
        runs_dir,
        ROOT,
        name="long",
    )
    long_job = read_json(long_run / "status.json")["job_id"]
    assert long_job and (long_run / "job.sbatch").is_file()
    _wait_for(
        lambda: runs.last_checkpoint(long_run),
        "the long run's first checkpoint",
    )
    assert runs.refresh(long_run)["state"] == "running"

    # The node is full: the tiny run waits, and the Runs tab says why (Slurm's reason).
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(
        "model_name_or_path: bundled:all-MiniLM-L6-v2\n"
        f"train_data: [{TRAIN}]\nsentence_pooling_method: mean\ntrain_group_size: 2\n"
        "per_device_train_batch_size: 2\nquery_max_len: 16\npassage_max_len: 32\n"
        "max_steps: 4\nlogging_steps: 1\nsave_steps: 1000\ndeepspeed: null\n"
        "studio: {name: tiny}\n"
    )
    proc = _cli_submit(cfg, runs_dir, "--nodes", "1", "--cpus-per-task", "1")
    assert proc.returncode == 0, proc.stderr
    tiny = Path(proc.stdout.strip().splitlines()[-1])
    tiny_job = read_json(tiny / "status.json")["job_id"]
    assert f"submitted Slurm job {tiny_job}" in proc.stderr
    seen = [runs.refresh(tiny)["state"]]
    row = _wait_for(
        lambda: next(
            (r.row() for r in runs.list_runs(runs_dir) if r.name == tiny.name and r.reason),
            None,
        ),
        "Slurm's reason for the queued run",
        60,
    )
    assert row["status"] == "queued (Resources)", row

    # Stop the long run: scancel, nothing of it left queued or running.
    status = runs.stop(long_run)
    assert status["state"] == "stopped", status
    assert _squeue(long_job) == ""
    assert _processes_of(long_run) == []
    assert runs.summarize(long_run).state == "stopped"

    # Resume resubmits it from its last checkpoint; it queues behind the tiny run.
    checkpoint = runs.last_checkpoint(long_run)
    runs.resume(long_run)
    resumed = runs.refresh(long_run)
    assert resumed["state"] == "queued" and resumed["attempt"] == 2
    assert resumed["resumed_from"] == str(checkpoint) and resumed["job_id"] != long_job

    # The tiny run now gets the node: running, then succeeded, with its metrics.
    def ended():
        state = runs.refresh(tiny)["state"]
        if state != seen[-1]:
            seen.append(state)
        return state not in runs.ACTIVE_STATES

    _wait_for(ended, "the tiny run to end")
    status = read_json(tiny / "status.json")
    assert seen == ["queued", "running", "succeeded"], (
        seen,
        (tiny / "train.log").read_text()[-3000:],
    )
    assert status["exit_code"] == 0 and status["launcher"] == "slurm"
    steps = step_records(read_metrics(tiny / "metrics.jsonl"))
    assert [r["step"] for r in steps] == [1, 2, 3, 4]
    assert (tiny / "model" / "model.safetensors").is_file()
    assert "[studio] versions ok" in (tiny / "train.log").read_text()
    assert _squeue(tiny_job) == ""
    summary = runs.summarize(tiny)
    assert summary.state == "succeeded" and summary.step == 4

    # The resumed run starts at the checkpoint's step; stopped again, Slurm's queue is empty.
    step = int(checkpoint.name.split("-")[1])
    _wait_for(
        lambda: any(
            r.get("event") == "train_begin" and r.get("global_step") == step
            for r in read_metrics(long_run / "metrics.jsonl")
        ),
        "the resumed run to begin at its checkpoint",
    )
    assert runs.stop(long_run)["state"] == "stopped"
    assert _squeue_all() == ""
    assert _processes_of(long_run) == []


def test_a_job_slurm_refuses_gets_slurms_own_message(tmp_path, runs_dir, node_cpus):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"model_name_or_path: bundled:all-MiniLM-L6-v2\ntrain_data: [{TRAIN}]\n")
    proc = _cli_submit(cfg, runs_dir, "--partition", "no-such-partition")
    assert proc.returncode == 1
    assert "Invalid partition name specified" in proc.stderr, proc.stderr
    (listed,) = runs.list_runs(runs_dir)
    assert listed.state == "failed" and "Invalid partition name specified" in listed.error
    assert listed.row()["status"] == "failed"

    # The web UI's and the notebook's Submit show the same message of Slurm's.
    from studio.core.config import load
    from studio.notebook import Studio
    from studio.webui.app import AppContext
    from studio.webui.cluster_panel import SETTINGS, submit_from_form

    ctx = AppContext(runs_dir, ROOT)
    settings = dict.fromkeys(SETTINGS, "") | {"nodes": 1, "partition": "no-such-partition"}
    with pytest.raises(slurm.SlurmError, match="Invalid partition name specified"):
        submit_from_form(ctx, load(cfg), settings)
    st = Studio(cfg, runs_dir=runs_dir, base_dir=ROOT)
    try:
        panel = st.command_panel().children[-1]
        partition, _time = panel.children[3].children
        partition.value = "no-such-partition"
        panel.children[4].children[1].click()  # Submit to Slurm
        assert "Invalid partition name specified" in panel.children[5].value
    finally:
        st.close()
    assert len(runs.list_runs(runs_dir)) == 3 and not _squeue_all()


def test_a_job_slurm_has_forgotten_is_read_from_the_run_folder(tmp_path, node_cpus):
    """Without accounting, Slurm forgets a job minutes after it ends: the run's own files
    (the exit code its job script wrote, the stop marker) then say how it ended."""
    from studio.facts.statusfile import write_json
    from studio.training.supervisor import STOP_MARKER

    def run(name: str, **files: str) -> Path:
        run_dir = tmp_path / name
        run_dir.mkdir()
        write_json(
            run_dir / "status.json",
            {"launcher": "slurm", "state": "running", "job_id": "999999", "started_at": 1.0},
        )
        for file, text in files.items():
            (run_dir / file).write_text(text)
        return run_dir

    assert runs.refresh(run("ok", slurm_exit_code="0\n"))["state"] == "succeeded"
    failed = runs.refresh(run("bad", slurm_exit_code="1\n"))
    assert failed["state"] == "failed" and failed["exit_code"] == 1
    assert runs.refresh(run("stopped", **{STOP_MARKER: ""}))["state"] == "stopped"
    lost = runs.refresh(run("lost"))
    assert lost["state"] == "failed" and "Slurm no longer knows job 999999" in lost["error"]
