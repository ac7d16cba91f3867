"""`python -m studio --help` must answer in under a second: heavy imports happen only when needed.

Prints the median wall time of `python -m studio --help` and of a bare `python -c pass`
(the interpreter's own start-up) over N runs, their ratio, and whether torch/transformers
were imported.

    python bench/bench_cli_help.py [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    help_times = [timed([sys.executable, "-m", "studio", "--help"]) for _ in range(runs)]
    bare_times = [timed([sys.executable, "-c", "pass"]) for _ in range(runs)]
    heavy = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, runpy; sys.argv=['studio','--help'];\n"
            "try:\n runpy.run_module('studio', run_name='__main__')\nexcept SystemExit: pass\n"
            "print(sorted(m for m in ('torch','transformers','FlagEmbedding','gradio','pandas') "
            "if m in sys.modules))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    h, b = statistics.median(help_times), statistics.median(bare_times)
    print(
        f"python -m studio --help: {h:.3f} s (median of {runs}); goal < 1 s: "
        f"{'met' if h < 1 else 'NOT met'}"
    )
    print(f"bare python start-up:    {b:.3f} s; ratio {h / b:.2f}x")
    print(f"heavy modules imported by --help: {heavy.splitlines()[-1]}")


if __name__ == "__main__":
    main()
