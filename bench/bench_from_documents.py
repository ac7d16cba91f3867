"""Documents only -> a better model? ``studio adapt`` on a corpus the studio was never tuned on.

Builds the numpy/pandas docstring corpus (``scripts/build_docs_corpus.py``: the summary line
of each docstring is its title, the rest its text), then runs the whole flow as a user would,
``python -m studio adapt CORPUS --from title --out DIR --max-steps N`` (pairs from titles,
whole documents held out, negatives mined with the false-negative filter, a run that scores
the held-out split at every save, merges with the base), and prints the held-out nDCG@10 of
the base (before) and of the exported model (after), with their ratio. The baseline is the base
model in the same invocation, on the same held-out split.

    python bench/bench_from_documents.py [--max-steps 150] [--limit 1029] [--method title]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-steps", type=int, default=150)
    parser.add_argument("--limit", type=int, help="documents in the corpus (default: all)")
    parser.add_argument("--method", default="title", choices=["title", "crop"])
    parser.add_argument("--out", help="keep the flow's folder here (default: a temp folder)")
    args = parser.parse_args()
    work = Path(args.out or tempfile.mkdtemp(prefix="bench-docs-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    build = [sys.executable, str(ROOT / "scripts" / "build_docs_corpus.py"), "--out", str(work)]
    if args.limit:
        build += ["--limit", str(args.limit)]
    subprocess.run(build, check=True, env=env)
    started = time.perf_counter()
    flow = [sys.executable, "-m", "studio", "adapt", str(work / "corpus.jsonl")]
    flow += ["--from", args.method, "--out", str(work / "out"), "--max-steps", str(args.max_steps)]
    done = subprocess.run(flow, env=env, cwd=ROOT, text=True, capture_output=True)
    seconds = time.perf_counter() - started
    print(done.stdout[-4000:])
    if done.returncode == 2:
        print(done.stderr[-3000:], file=sys.stderr)
        return 2
    choice = json.loads(next(work.glob("out/adapt-*/choice.json")).read_text())
    by_model = {c["model"]: c["score"] for c in choice["candidates"]}
    before, after = by_model["base"], by_model[choice["chosen"]]
    print(f"corpus             {work / 'corpus.jsonl'} ({args.method} pairs)")
    print(f"held-out nDCG@10   before (base) {before:.4f}   after ({choice['chosen']}) {after:.4f}")
    print(f"ratio after/before {after / before:.3f}   flow {seconds:.0f} s")
    return 0 if after > before else 1


if __name__ == "__main__":
    sys.exit(main())
