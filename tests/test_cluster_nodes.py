"""Two nodes on one machine: the exported node-0.sh and node-1.sh, run as two processes.

CPU, gloo, no DeepSpeed, the bundled model, 3 steps at tiny lengths. The scripts come from the
CLI (`python -m studio export --target nodes`), exactly as a user gets them; they meet at a free
port on 127.0.0.1 and must train as one job of world size 2.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from conftest import ROOT

from studio.training.runlog import read_metrics, step_records

pytestmark = pytest.mark.slow
TIMEOUT_S = 600
STEPS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_exported_node_scripts_train_one_job_of_world_size_two(tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        "model_name_or_path: bundled:all-MiniLM-L6-v2\n"
        f"train_data: [{ROOT / 'example_data' / 'train.jsonl'}]\n"
        "sentence_pooling_method: mean\n"
        "train_group_size: 2\n"
        "per_device_train_batch_size: 2\n"
        "query_max_len: 16\n"
        "passage_max_len: 32\n"
        f"max_steps: {STEPS}\n"
        "logging_steps: 1\n"
        "save_steps: 100\n"
        "deepspeed: null\n"
    )
    out = tmp_path / "job"
    proc = subprocess.run(
        [sys.executable, "-m", "studio", "export", str(cfg), "--target", "nodes", "--out"]
        + [str(out), "--nnodes", "2", "--head", "127.0.0.1", "--port", str(_free_port())],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop("STUDIO_METRICS_FILE", None)
    procs, logs = [], []
    try:
        for rank in (1, 0):  # the joining node first: the order must not matter
            log = (out / f"node-{rank}.log").open("wb")
            logs.append(log)
            procs.append(
                subprocess.Popen(
                    ["bash", str(out / f"node-{rank}.sh")],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
            )
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline and any(p.poll() is None for p in procs):
            time.sleep(1)
        codes = [p.poll() for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        for log in logs:
            log.close()
    texts = {rank: (out / f"node-{rank}.log").read_text(errors="replace") for rank in (0, 1)}
    assert codes == [0, 0], {r: t[-3000:] for r, t in texts.items()}

    # Both nodes joined one job: global ranks 0 and 1 of 2, one on each node.
    ranks = sorted(
        line.split("[studio] global rank ")[1].split(" of ")[0]
        for t in texts.values()
        for line in t.splitlines()
        if "[studio] global rank" in line
    )
    assert ranks == ["0", "1"], texts
    assert all("[studio] versions ok" in t for t in texts.values())

    # Rank 0 alone wrote the metrics: each step once, and the world it saw was 2.
    records = read_metrics(out / "metrics.jsonl")
    assert records[0]["event"] == "train_begin" and records[0]["world_size"] == 2
    assert [r["step"] for r in step_records(records)] == list(range(1, STEPS + 1))

    # The model was saved once, by one node, complete.
    model = out / "model"
    saved = [
        line for t in texts.values() for line in t.splitlines() if line.endswith(f"to {model}")
    ]
    assert len(saved) == 1, saved
    assert (model / "model.safetensors").is_file()
    assert json.loads((model / "config.json").read_text())["hidden_size"] == 384
