"""The small process that owns one training run: `python -m studio.training.supervisor RUN_DIR`.

Why a supervisor and not the UI: the UI may reload, restart or die while a run goes on, and
the end must still reach `status.json`. The supervisor leads the run's process group (started
in a new session by :mod:`studio.training.runs`), starts torchrun with all output going to `train.log`
(a file, never a pipe nobody drains), waits, and records how this attempt ended; after a
success it runs `studio.training.post_train` (sentence-transformers export, opt-in evaluation).

Containment: the launcher (and post-training) are started with `PR_SET_PDEATHSIG`, so a `kill
-9` of the supervisor ends them, and their workers die with the launcher (see
:mod:`studio.training.worker`). When the launcher has ended, the supervisor ends whatever of the run is
still alive (a worker, a compiler of a DeepSpeed op build), removes build locks its own killed
builds left, and only then records the end with an honest reason (:mod:`studio.training.reasons`). It
ignores TERM itself, so that a Stop (TERM to everything) lets it record "stopped".
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from studio.core import buildlocks
from studio.facts.runfolder import Phase, RunFolder, RunState
from studio.facts.statusfile import disk_full, disk_full_reason, write_ending
from studio.training import procs, reasons

STOP_MARKER = RunFolder.STOP_MARKER
SWEEP_GRACE_S = 5.0


def final_state(run_dir: Path, exit_code: int) -> str:
    if RunFolder(run_dir).stop_marker.exists():
        return RunState.STOPPED.value
    return (RunState.SUCCEEDED if exit_code == 0 else RunState.FAILED).value


def _run_logged(folder: RunFolder, argv: list[str], cwd: str | None, role: str) -> int:
    """Run a child that dies with this process, all its output appended to train.log."""
    with folder.log.open("ab") as log:
        child = subprocess.Popen(
            argv,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=procs.die_with_parent,  # safe: this process runs one thread
        )
        with contextlib.suppress(OSError):
            procs.record(folder, child.pid, role)
        with contextlib.suppress(OSError):
            folder.update_status(child_pid=child.pid)
        return child.wait()


def _sweep(folder: RunFolder) -> None:
    """End what the launcher left alive, and the build locks this run's killed builds left."""
    procs.end_all(folder, SWEEP_GRACE_S)
    for path in buildlocks.remove_own_stale_locks(folder):
        print(f"[studio] removed the build lock {path} this run's stopped build left", flush=True)


def supervise(run_dir: Path) -> int:
    folder = RunFolder(run_dir)
    status = folder.read_status()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a Stop's TERM is for the trainer
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_code = _run_logged(folder, status["argv"], status.get("cwd"), "launcher")
    _sweep(folder)
    state = final_state(run_dir, exit_code)
    if state == RunState.SUCCEEDED:
        folder.set_phase(Phase.POST_TRAINING)
        post = [sys.executable, "-m", "studio.training.post_train", str(run_dir)]
        if _run_logged(folder, post, status.get("cwd"), "post-train") != 0 and (
            folder.stop_marker.exists()
        ):
            with contextlib.suppress(OSError):
                folder.update_status(eval_error="stopped by the user during evaluation")
        _sweep(folder)
    ending: dict = {"exit_code": exit_code, "error": None, "log_tail": None}
    if state == RunState.FAILED:
        text = reasons.attempt_log(folder.log, status.get("log_offset"))
        error = reasons.failure_reason(text, exit_code)
        if reasons.no_room_in(text) is None and _no_room_left(folder):
            where = reasons.last_saving(text) or folder.path  # the log itself found no room
            error = f"{disk_full_reason(where)}; {error}"
        ending.update(error=error, log_tail=reasons.last_lines(text))
    record_end(folder, RunState(state), status.get("attempt"), ending)
    return exit_code


def _no_room_left(folder: RunFolder) -> bool:
    """The run folder's disk has (almost) no free space: under 1 MiB."""
    try:
        st = os.statvfs(folder.path)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 2**20


def record_end(folder: RunFolder, state: RunState, attempt: int | None, ending: dict) -> None:
    """Write the end to status.json; when the disk has no room for that, keep it in the
    attempt's reserved `.ending.json` (written in place), which every refresh reads.

    Without this, a full disk left status.json at "running" and the next refresh, finding no
    process, blamed a kill or a restart."""
    for attempt_no in range(3):
        try:
            folder.end_running(state, **ending)
            return
        except OSError as exc:
            if state == RunState.FAILED and not str(ending.get("error") or "").startswith("disk"):
                ending = {**ending, "error": f"{_reason_for(exc, folder)}; {ending.get('error')}"}
            elif state != RunState.FAILED:
                ending = {**ending, "write_error": _reason_for(exc, folder)}
            print(f"[studio] cannot record the end in {folder.status}: {exc}", file=sys.stderr)
            if attempt_no < 2:
                time.sleep(1.0)  # a moment for space to come back (a log rotated, a tmp deleted)
    try:
        write_ending(
            folder.ending,
            {"attempt": attempt, "state": state.value, "ended_at": time.time(), **ending},
        )
    except OSError as exc:
        print(f"[studio] cannot record the end in {folder.ending} either: {exc}", file=sys.stderr)


def _reason_for(exc: OSError, folder: RunFolder) -> str:
    if disk_full(exc):
        return disk_full_reason(folder.status, exc.errno)
    return f"cannot write {folder.status}: {exc}"


if __name__ == "__main__":
    sys.exit(supervise(Path(sys.argv[1])))
