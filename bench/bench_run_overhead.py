"""A run started by the studio vs the plain FlagEmbedding command with identical arguments.

Both train the bundled model on CPU through torchrun + DeepSpeed ZeRO-0 for the same steps.
The studio run goes through its supervisor, its own entry point, the metrics callback and the
post-training sentence-transformers export (the opt-in evaluation is off);
the plain run is `torchrun -m FlagEmbedding.finetune.embedder.encoder_only.base` with the
argv the studio renders. Pairs alternate (plain, studio) to share the machine's drift; prints
each pair and the median ratio (goal: at most 1.03).

    python bench/bench_run_overhead.py [--pairs 3] [--steps 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from studio.core import command, config, deepspeed_config  # noqa: E402
from studio.training import runs  # noqa: E402


def bench_config(steps: int, out_dir: Path) -> config.StudioConfig:
    cfg = config.load(ROOT / "example_data" / "quickstart.yaml")
    cfg = replace(cfg, studio={})  # no evaluation at the end: the plain command has none
    return cfg.with_args(max_steps=steps, save_steps=10_000, output_dir=str(out_dir))


def plain_run(steps: int, work: Path) -> float:
    cfg = config.resolve_paths(bench_config(steps, work / "plain-out"), ROOT)
    ds = work / "ds.json"
    ds.write_text(deepspeed_config.dumps(deepspeed_config.resolve(cfg.deepspeed)))
    argv = command.launch_argv(
        cfg,
        sys.executable,
        str(ds),
        master_port=runs._free_port(),
        module="FlagEmbedding.finetune.embedder.encoder_only.base",
    )
    start = time.perf_counter()
    with open(work / "plain.log", "wb") as log:
        subprocess.run(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=True)
    return time.perf_counter() - start


def studio_run(steps: int, work: Path) -> float:
    start = time.perf_counter()
    run_dir = runs.start(bench_config(steps, work / "studio-out"), work / "runs", ROOT)
    status = runs.wait(run_dir, poll_s=0.05)
    elapsed = time.perf_counter() - start
    assert status["state"] == "succeeded", (run_dir / "train.log").read_text()[-2000:]
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    ratios = []
    for i in range(args.pairs):
        with tempfile.TemporaryDirectory() as tmp:
            plain = plain_run(args.steps, Path(tmp))
            studio = studio_run(args.steps, Path(tmp))
        ratios.append(studio / plain)
        print(
            f"pair {i + 1}: plain {plain:.1f} s, studio {studio:.1f} s, ratio {studio / plain:.3f}"
        )
    median = statistics.median(ratios)
    print(
        f"median ratio studio/plain: {median:.3f} (goal <= 1.03: "
        f"{'met' if median <= 1.03 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
