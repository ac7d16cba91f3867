"""Benchmark: check + statistics of a large JSONL against `pandas.read_json(lines=True)`.

Why: the data workbench promises to check a 300 MB training file faster than pandas can merely
load it, with at most half of pandas' peak memory (it streams and never holds the file). This
script generates such a file (100,000 rows of 1 positive and 7 negatives, about 280 MB), then runs
each contender in its own subprocess so that peak memory (`ru_maxrss`) is measured per
contender, and prints the times, the peaks and the ratios against the goals
(time <= 0.6x, peak memory <= 0.5x). A bare `json.loads` loop is timed too, as the floor.

    python bench/bench_data_check.py              # the 280 MB file
    python bench/bench_data_check.py --rows 10000 # a quick run
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIME_GOAL = 0.6
MEMORY_GOAL = 0.5

CHILD = r"""
import json, resource, sys, time
kind, path = sys.argv[1], sys.argv[2]
import pandas as pd
if kind == "ours":
    from studio.core.config import StudioConfig
    from studio.datawork.check import check_paths
    from studio.datawork.stats import stats
    config = StudioConfig({"train_group_size": 8, "per_device_train_batch_size": 32})
rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
if kind == "pandas":
    df = pd.read_json(path, lines=True)
    rows = len(df)
elif kind == "loads":
    rows = 0
    with open(path, "rb") as fh:
        for line in fh:
            json.loads(line)
            rows += 1
else:
    report = check_paths([path])
    result = stats(report, config)
    rows = result.summary["rows"]
    assert not report.has_errors, report.table()
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_kb": peak, "before_kb": rss_before, "rows": rows}))
"""


def generate(path: Path, rows: int, negatives: int = 7, seed: int = 0) -> int:
    """Write `rows` lines of 1 positive and `negatives` negatives (~2.8 kB a line)."""
    rng = random.Random(seed)
    vocab = [
        "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(3, 10)))
        for _ in range(5000)
    ]
    pool = [" ".join(rng.choices(vocab, k=44)).capitalize() + "." for _ in range(20000)]
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(rows):
            picks = rng.sample(range(len(pool)), negatives + 1)
            row = {
                "query": f"query {i}: " + " ".join(rng.choices(vocab, k=8)) + "?",
                "pos": [pool[picks[0]]],
                "neg": [pool[j] for j in picks[1:]],
            }
            fh.write(json.dumps(row) + "\n")
    return path.stat().st_size


def run_child(kind: str, path: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", CHILD, kind, str(path)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall_s"] = time.perf_counter() - started
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--file", help="use this JSONL instead of generating one")
    parser.add_argument("--repeat", type=int, default=1, help="runs per contender (best kept)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        if args.file:
            path = Path(args.file)
        else:
            path = Path(tmp) / "train.jsonl"
            size = generate(path, args.rows)
            print(f"generated {args.rows:,} rows, {size / 1e6:.0f} MB: {path}")
        results = {}
        for kind in ("pandas", "loads", "ours"):
            runs = [run_child(kind, path) for _ in range(args.repeat)]
            results[kind] = min(runs, key=lambda r: r["seconds"])
            r = results[kind]
            print(
                f"{kind:7} {r['seconds']:6.2f} s  peak {r['peak_kb'] / 1024:7.0f} MB "
                f"(after imports {r['before_kb'] / 1024:4.0f} MB)  rows {r['rows']:,}"
            )
    pandas, ours = results["pandas"], results["ours"]
    time_ratio = ours["seconds"] / pandas["seconds"]
    memory_ratio = ours["peak_kb"] / pandas["peak_kb"]
    print(
        f"check+stats / pandas.read_json: time {time_ratio:.2f}x (goal <= {TIME_GOAL}x), "
        f"peak memory {memory_ratio:.2f}x (goal <= {MEMORY_GOAL}x)"
    )
    print(
        f"check+stats / bare json.loads loop: time {ours['seconds'] / results['loads']['seconds']:.2f}x"
    )
    ok = time_ratio <= TIME_GOAL and memory_ratio <= MEMORY_GOAL
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
