"""bench/bench_gpu.py, the GPU bench anyone can rerun, works end to end on CPU (``--dry``)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_dry_bench_writes_the_ratios(tmp_path):
    out = tmp_path / "bench.json"
    # One A (studio) and one B (FlagEmbedding's command.sh): the shortest pair that compares.
    proc = subprocess.run(
        [sys.executable, "bench/bench_gpu.py", "--dry", "--order", "AB", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (case,) = json.loads(out.read_text())["cases"]
    assert case["ok"] and case["order"] == "AB" and case["steps"] == [3, 3]
    assert case["step_time_ratio"] > 0 and case["first_step_ratio"] > 0
    # Same config, same seed, fp32 on CPU: FlagEmbedding alone trains the same losses.
    assert case["loss_max_abs_diff"] < 1e-4
    assert case["estimate_bytes"] > 0
    for key in (
        "estimate_over_max_allocated",
        "smi_estimate_over_smi_peak",
        "smi_estimate_over_smi_peak_raw",
    ):
        assert key in case  # null on CPU: no GPU to measure
    assert "| fp32-off | AB | yes |" in proc.stdout
