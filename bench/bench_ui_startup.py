"""Start-up of `python launch.py` to its first HTTP 200, against a bare Gradio Blocks app with
one button, on the same machine in the same invocation (goal: at most 1.5x).

    python bench/bench_ui_startup.py [--runs 3]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BARE = """
import sys
import gradio as gr
with gr.Blocks() as demo:
    gr.Button("hello")
demo.launch(server_name="127.0.0.1", server_port=int(sys.argv[1]), share=False)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def time_to_200(argv_for_port) -> float:
    port = free_port()
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv_for_port(port), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                    if r.status == 200:
                        return time.perf_counter() - start
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"{argv_for_port(port)} exited early") from None
                time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp:
        bare_file = Path(tmp) / "bare.py"
        bare_file.write_text(BARE)
        time_to_200(
            lambda port: [
                sys.executable,
                "launch.py",
                "--port",
                str(port),
                "--runs-dir",
                f"{tmp}/runs",
            ]
        )  # warm caches (schema, pyc)
        studio, bare = [], []
        for _ in range(runs):
            bare.append(time_to_200(lambda port: [sys.executable, str(bare_file), str(port)]))
            studio.append(
                time_to_200(
                    lambda port: [
                        sys.executable,
                        "launch.py",
                        "--port",
                        str(port),
                        "--runs-dir",
                        f"{tmp}/runs",
                    ]
                )
            )
    s, b = statistics.median(studio), statistics.median(bare)
    print(f"bare Gradio app: {b:.2f} s, studio: {s:.2f} s (medians of {runs})")
    print(f"ratio studio/bare: {s / b:.2f} (goal <= 1.5: {'met' if s / b <= 1.5 else 'NOT met'})")


if __name__ == "__main__":
    main()
