"""BGE-M3 on example_data: dense, sparse, ColBERT and hybrid nDCG@10, before and after a fine-tune.

    python bench/bench_m3_modes.py                 # fine-tune M3 from the bundled model, then score
    python bench/bench_m3_modes.py --steps 40      # longer
    python bench/bench_m3_modes.py --run runs/R    # score an M3 run you already have

The fine-tune goes through the run manager as a user's does (``module: embedder.encoder_only.m3``,
unified fine-tuning with self-distillation, CLS pooling, the bundled all-MiniLM-L6-v2 with
``[SEP]`` named its EOS token, which FlagEmbedding 1.4.2's M3 needs). "Before" is the base model
with the sparse and ColBERT heads FlagEmbedding initializes for it (seeded with the run's seed:
the heads the fine-tune started from). Every mode is exact search over example_data/eval
(100 queries, 1,500 passages), scored as in the run's eval.json. Prints one line per mode.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def minilm_with_eos(dest: Path) -> Path:
    from studio.core.config import bundled_model_path

    shutil.copytree(bundled_model_path(), dest)
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        data = json.loads((dest / name).read_text())
        data["eos_token"] = "[SEP]"
        (dest / name).write_text(json.dumps(data))
    return dest


def train(workdir: Path, steps: int) -> Path:
    from studio.core.config import StudioConfig, TorchrunSettings
    from studio.training import runs

    args = {
        "model_name_or_path": str(minilm_with_eos(workdir / "minilm-eos")),
        "train_data": [str(ROOT / "example_data" / "train.jsonl")],
        "unified_finetuning": True,
        "use_self_distill": True,
        "self_distill_start_step": 0,
        "sentence_pooling_method": "cls",
        "normalize_embeddings": True,
        "temperature": 0.05,
        "train_group_size": 2,
        "per_device_train_batch_size": 4,
        "query_max_len": 32,
        "passage_max_len": 64,
        "learning_rate": 1e-4,
        "max_steps": steps,
        "warmup_ratio": 0.1,
        "logging_steps": 1,
        "save_steps": 100000,
        "seed": 1,
    }
    config = StudioConfig(
        args, TorchrunSettings(nproc_per_node=1), None, {}, "embedder.encoder_only.m3"
    )
    run_dir = runs.start(config, workdir / "runs", ROOT)
    status = runs.wait(run_dir, 7200)
    if status["state"] != "succeeded":
        sys.exit((run_dir / "train.log").read_text()[-3000:])
    return run_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="an M3 run folder to score instead of training one")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--data", default=str(ROOT / "example_data" / "eval"))
    args = parser.parse_args()

    from studio.evaluation.module_eval import mode_summary
    from studio.training.run_eval import evaluate_run

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        run_dir = Path(args.run) if args.run else train(Path(tmp), args.steps)
        trained = time.perf_counter()
        report = evaluate_run(run_dir, args.data, ks=(1, 10), include_checkpoints=False)
        done = time.perf_counter()
        data = report["data"]
        print(
            f"M3 on {Path(data['path']).name}: {data['n_queries']} queries, {data['n_corpus']} "
            f"passages; hybrid weights {report['m3_weights']}"
        )
        print(f"{'mode':<8} {'before':>8} {'after':>8} {'delta':>8}   (nDCG@10)")
        for row in mode_summary(report):
            print(
                f"{row['mode']:<8} {row['before']:>8.4f} {row['after']:>8.4f} {row['delta']:>+8.4f}"
            )
        if not args.run:
            print(f"training {trained - started:.0f} s, evaluation {done - trained:.0f} s")


if __name__ == "__main__":
    main()
