"""The cost of one live chart update for a run with 50,000 logged steps vs one with 100.

One update is what the Train tab does each second: fold the newly appended metrics line
into the run's series (reading only the new bytes of metrics.jsonl) and build the figure the
browser receives (serialized to JSON as Gradio sends it). Goal: at most 2x.

    python bench/bench_chart_scale.py
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from studio.training.charts import training_figure  # noqa: E402
from studio.training.watch import RunWatcher  # noqa: E402


def record(step: int, total: int) -> str:
    return (
        json.dumps(
            {
                "step": step,
                "epoch": step / total,
                "loss": 1.0 / (1 + step % 97),
                "learning_rate": 1e-5,
                "grad_norm": 0.5 + step % 7,
                "elapsed_s": step,
                "eta_s": total - step,
                "max_steps": total,
            }
        )
        + "\n"
    )


def update_cost(n_steps: int, repeats: int = 15) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        metrics = run_dir / "metrics.jsonl"
        metrics.write_text("".join(record(i, n_steps + repeats) for i in range(1, n_steps + 1)))
        watcher = RunWatcher(run_dir)
        watcher.poll()  # the page attached earlier: history already folded in
        training_figure(watcher.series).to_json()
        times = []
        for k in range(repeats):
            with metrics.open("a") as fh:
                fh.write(record(n_steps + k + 1, n_steps + repeats))
            start = time.perf_counter()
            watcher.poll()
            training_figure(watcher.series, "run").to_json()
            times.append(time.perf_counter() - start)
        return statistics.median(times)


def main() -> None:
    small, large = update_cost(100), update_cost(50_000)
    print(f"one chart update: 100 steps {small * 1000:.1f} ms, 50,000 steps {large * 1000:.1f} ms")
    ratio = large / small
    print(f"ratio 50,000/100: {ratio:.2f} (goal <= 2: {'met' if ratio <= 2 else 'NOT met'})")


if __name__ == "__main__":
    main()
