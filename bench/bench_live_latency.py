"""How long a metrics line written to disk takes to show in the Train tab's chart (goal: 2 s).

A real `python launch.py` serves a runs folder holding one running run (its process group is
a `sleep`, standing in for the trainer); headless Chromium opens the page, which attaches to
the running run. The bench appends one metrics line at a time and measures until the chart
has drawn it. Prints each latency, the median and the ratio to the 2 s goal.

    python bench/bench_live_latency.py [--lines 8]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_S = 2.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fake_running_run(runs_dir: Path) -> tuple[Path, subprocess.Popen]:
    run_dir = runs_dir / "20260101-000000-bench"
    run_dir.mkdir(parents=True)
    stand_in = subprocess.Popen(["sleep", "600"], start_new_session=True)
    (run_dir / "status.json").write_text(
        json.dumps(
            {
                "state": "running",
                "pid": stand_in.pid,
                "pgid": stand_in.pid,
                "argv": [],
                "started_at": time.time(),
            }
        )
    )
    (run_dir / "config.yaml").write_text("learning_rate: 1.0e-05\n")
    (run_dir / "train.log").write_text("")
    (run_dir / "metrics.jsonl").write_text(
        json.dumps({"event": "train_begin", "max_steps": 100}) + "\n"
    )
    return run_dir, stand_in


def points(page) -> int:
    return page.evaluate("""() => {
        const el = document.querySelector('#studio-train-plot .js-plotly-plot');
        return el && el.data && el.data[0] && el.data[0].x ? el.data[0].x.length : 0; }""")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=8)
    n_lines = parser.parse_args().lines
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        runs_dir = Path(tmp) / "runs"
        run_dir, stand_in = fake_running_run(runs_dir)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "launch.py", "--port", str(port), "--runs-dir", str(runs_dir)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}/"
            for _ in range(240):
                try:
                    urllib.request.urlopen(url, timeout=2)
                    break
                except OSError:
                    time.sleep(0.5)
            latencies = []
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path="/usr/bin/chromium",
                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
                )
                page = browser.new_page()
                page.goto(url)
                page.get_by_role("tab", name="Train", exact=True).click()
                page.wait_for_selector("#studio-status:has-text('running')", timeout=60_000)
                page.wait_for_selector("#studio-train-plot .js-plotly-plot", timeout=60_000)
                for step in range(1, n_lines + 1):
                    before = points(page)
                    with (run_dir / "metrics.jsonl").open("a") as fh:
                        fh.write(
                            json.dumps(
                                {
                                    "step": step,
                                    "loss": 1.0 / step,
                                    "learning_rate": 1e-5,
                                    "elapsed_s": step,
                                    "eta_s": 100 - step,
                                    "max_steps": 100,
                                }
                            )
                            + "\n"
                        )
                    written = time.perf_counter()
                    while points(page) <= before:
                        if time.perf_counter() - written > 30:
                            raise SystemExit("the chart never drew the new line")
                        time.sleep(0.02)
                    latencies.append(time.perf_counter() - written)
                    print(f"line {step}: shown after {latencies[-1]:.2f} s")
                browser.close()
        finally:
            server.terminate()
            stand_in.kill()
    median = statistics.median(latencies)
    print(
        f"median {median:.2f} s, worst {max(latencies):.2f} s; ratio to the {GOAL_S:.0f} s goal "
        f"{max(latencies) / GOAL_S:.2f} ({'met' if max(latencies) <= GOAL_S else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
