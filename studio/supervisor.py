"""The small process that owns one training run: `python -m studio.supervisor RUN_DIR`.

Why a supervisor and not the UI: the UI may reload, restart or die while a run goes on, and
the exit code must still reach `status.json`. The supervisor leads the run's process group
(started in a new session by :mod:`studio.runs`), starts torchrun in that group with all
output going to `train.log` (a file, never a pipe nobody drains), waits, and records how the
run ended; after a success it runs `studio.post_train` (sentence-transformers export, opt-in
evaluation) in the same group. A stop signals the whole group; the supervisor ignores TERM itself so that it can
record "stopped" once its child is gone.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from studio.runlog import exception_line
from studio.statusfile import read_json, update_json

STOP_MARKER = "stop_requested"


def final_state(run_dir: Path, exit_code: int) -> str:
    if (run_dir / STOP_MARKER).exists():
        return "stopped"
    return "succeeded" if exit_code == 0 else "failed"


def _run_logged(run_dir: Path, argv: list[str], cwd: str | None) -> int:
    """Run a child in this process group, all its output appended to train.log."""
    with (run_dir / "train.log").open("ab") as log:
        child = subprocess.Popen(
            argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        update_json(run_dir / "status.json", child_pid=child.pid)
        return child.wait()


def supervise(run_dir: Path) -> int:
    status_path = run_dir / "status.json"
    status = read_json(status_path)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the group's TERM is for the trainer
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_code = _run_logged(run_dir, status["argv"], status.get("cwd"))
    state = final_state(run_dir, exit_code)
    if state == "succeeded":
        update_json(status_path, phase="post-training")
        post = [sys.executable, "-m", "studio.post_train", str(run_dir)]
        if _run_logged(run_dir, post, status.get("cwd")) != 0 and (run_dir / STOP_MARKER).exists():
            update_json(status_path, eval_error="stopped by the user during evaluation")
    error = exception_line(run_dir / "train.log") if state == "failed" else None
    update_json(status_path, state=state, exit_code=exit_code, ended_at=time.time(), error=error)
    return exit_code


if __name__ == "__main__":
    sys.exit(supervise(Path(sys.argv[1])))
