"""Seconds from Start to the first logged step on a fresh install (cold DeepSpeed op cache).

Two launches of the same fine-tune of the bundled model on CPU, each with `TORCH_EXTENSIONS_DIR`
pointing at a fresh temp folder (what a new user has), timed from the launch to the first
training step that reaches a log:

* **studio**: `runs.start` with the studio's default DeepSpeed config (ZeRO-0, no `optimizer`
  section: HF's torch AdamW), first step = first step line in `metrics.jsonl`;
* **plain**: `torchrun -m FlagEmbedding.finetune.embedder.encoder_only.base` with the same flags
  and FlagEmbedding's seed-style `ds_stage0.json` (an `optimizer` and a `WarmupDecayLR` section,
  so DeepSpeed JIT-builds its fused Adam first), first step = first `{'loss': ...}` log line.

Prints both times and the ratio studio/plain (below 1 means the studio reaches its first step
sooner). Whatever both share (e.g. the CPU accelerator's shm comm op) is built by both.

    python bench/bench_first_step.py [--steps 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from studio.core import command, config  # noqa: E402
from studio.facts.runfolder import RunFolder  # noqa: E402
from studio.training import runs  # noqa: E402
from studio.training.runlog import read_metrics, step_records  # noqa: E402

# FlagEmbedding's examples/finetune/ds_stage0.json, as the seed script uses it.
SEED_DS_STAGE0 = {
    "zero_optimization": {"stage": 0},
    "fp16": {
        "enabled": "auto",
        "loss_scale": 0,
        "loss_scale_window": 1000,
        "initial_scale_power": 12,
        "hysteresis": 2,
        "min_loss_scale": 1,
    },
    "bf16": {"enabled": "auto"},
    "optimizer": {
        "type": "AdamW",
        "params": {"lr": "auto", "betas": "auto", "eps": "auto", "weight_decay": "auto"},
    },
    "scheduler": {
        "type": "WarmupDecayLR",
        "params": {
            "warmup_min_lr": "auto",
            "warmup_max_lr": "auto",
            "warmup_num_steps": "auto",
            "total_num_steps": "auto",
        },
    },
    "gradient_accumulation_steps": "auto",
    "gradient_clipping": "auto",
    "steps_per_print": 100,
    "train_batch_size": "auto",
    "train_micro_batch_size_per_gpu": "auto",
    "wall_clock_breakdown": False,
}
_LOSS_LINE = re.compile(r"\{'loss':")
TIMEOUT_S = 1800


def bench_config(steps: int, out_dir: Path) -> config.StudioConfig:
    cfg = config.load(ROOT / "example_data" / "quickstart.yaml")
    cfg = replace(cfg, studio={})  # no evaluation at the end
    return cfg.with_args(max_steps=steps, save_steps=10_000, output_dir=str(out_dir))


def _wait_until(predicate, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.1)


def studio_first_step(steps: int, work: Path) -> float:
    env = {**os.environ, "TORCH_EXTENSIONS_DIR": str(work / "ext-studio")}
    start = time.perf_counter()
    run_dir = runs.start(bench_config(steps, work / "studio-out"), work / "runs", ROOT, env=env)
    folder = RunFolder(run_dir)

    def stepped() -> bool:
        if step_records(read_metrics(folder.metrics)):
            return True
        if runs.refresh(run_dir).get("state") != "running":
            raise SystemExit("studio run ended before a step:\n" + folder.log.read_text()[-3000:])
        return False

    _wait_until(stepped, "the studio's first step")
    elapsed = time.perf_counter() - start
    runs.wait(run_dir, TIMEOUT_S)
    return elapsed


def plain_first_step(steps: int, work: Path) -> float:
    cfg = config.resolve_paths(bench_config(steps, work / "plain-out"), ROOT)
    ds = work / "ds_stage0.json"
    ds.write_text(json.dumps(SEED_DS_STAGE0, indent=2))
    argv = command.launch_argv(
        cfg,
        sys.executable,
        str(ds),
        master_port=runs._free_port(),
        module="FlagEmbedding.finetune.embedder.encoder_only.base",
    )
    env = {**os.environ, "TORCH_EXTENSIONS_DIR": str(work / "ext-plain")}
    log_path = work / "plain.log"
    start = time.perf_counter()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)

        def stepped() -> bool:
            if _LOSS_LINE.search(log_path.read_text(errors="replace")):
                return True
            if proc.poll() is not None:
                raise SystemExit("plain run ended before a step:\n" + log_path.read_text()[-3000:])
            return False

        _wait_until(stepped, "the plain command's first step")
        elapsed = time.perf_counter() - start
        proc.wait(TIMEOUT_S)
    built = sorted(p.name for p in (work / "ext-plain").iterdir())
    print(f"plain command built: {', '.join(built)}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-first-step-") as tmp:
        work = Path(tmp)
        studio_s = studio_first_step(args.steps, work)
        built = sorted(p.name for p in (work / "ext-studio").iterdir())
        print(f"studio default built: {', '.join(built) or 'nothing'}")
        plain_s = plain_first_step(args.steps, work)
    print(f"studio default (no optimizer section): {studio_s:7.1f} s to the first step")
    print(f"plain FlagEmbedding + seed ds_stage0:  {plain_s:7.1f} s to the first step")
    print(f"ratio studio/plain: {studio_s / plain_s:.3f}")


if __name__ == "__main__":
    main()
