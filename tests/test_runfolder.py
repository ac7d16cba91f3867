"""Unit tests of the run folder's status store, process records, reasons and build locks.

Fast: no training. Real processes where a process is the point (a lock holder, a reused pid).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from studio.core import buildlocks, deepspeed_config
from studio.core.config import DeepSpeedSettings, StudioConfig, TorchrunSettings
from studio.facts.hardware import Hardware
from studio.facts.runfolder import (
    Phase,
    RunFolder,
    RunState,
    TransitionError,
    phase_text,
    run_folder_env,
)
from studio.training import procs, reasons

# --------------------------------------------------------------------------- status store


def test_state_values_stay_the_json_strings():
    assert [s.value for s in RunState] == [
        "running",
        "queued",
        "succeeded",
        "failed",
        "stopped",
        "unknown",
    ]
    assert RunState("failed") is RunState.FAILED and f"{RunState.STOPPED}" == "stopped"


def test_transitions_refuse_rewriting_an_ended_attempt(tmp_path):
    folder = RunFolder(tmp_path)
    folder.update_status(state=RunState.RUNNING, attempt=1)
    folder.update_status(state="succeeded")
    with pytest.raises(TransitionError, match="succeeded to failed"):
        folder.update_status(state="failed")
    assert folder.end_running(RunState.FAILED, error="late") is None  # nothing was running
    assert folder.read_status()["state"] == "succeeded"
    folder.update_status(state="running", attempt=2)  # a resume starts a new attempt


def test_concurrent_writers_lose_no_field(tmp_path):
    folder = RunFolder(tmp_path)
    folder.update_status(state="running")

    def writer(i):
        for j in range(20):
            folder.update_status(**{f"w{i}_{j}": j})

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    status = folder.read_status()
    assert all(f"w{i}_{j}" in status for i in range(4) for j in range(20))


def test_phase_text_counts_from_the_attempt_start():
    status = {
        "state": "running",
        "phase": Phase.BUILDING_OP.value,
        "phase_detail": "fused_adam",
        "started_at": 100.0,
    }
    assert phase_text(status, now=142.4) == "building DeepSpeed op fused_adam · 42s since start"
    assert phase_text({**status, "state": "failed"}, now=142.4) == ""


def test_faces_render_the_phase_and_the_reason(tmp_path):
    from studio.app.views import status_text as status_markdown
    from studio.cli.commands import _progress_line
    from studio.notebook.render import progress_text, status_html
    from studio.training.charts import Series
    from studio.webui.tabs.train import progress_html

    now = time.time()
    running = {"state": "running", "phase": "loading data", "started_at": now - 7}
    assert _progress_line(None, now, running).startswith("loading data · ")
    assert "loading data · " in status_markdown(tmp_path, running)
    assert "loading data · " in status_html(tmp_path, running)
    assert "loading data · " in progress_html(Series(), running)
    info = {"step": 0, "total": 0, "elapsed_s": 0, "eta_s": None}
    assert progress_text(info, running).startswith("loading data · ")
    failed = {"state": "failed", "error": "launcher killed by signal 9", "log_tail": "a\nb"}
    for text in (status_markdown(tmp_path, failed), status_html(tmp_path, failed)):
        assert "launcher killed by signal 9" in text and "Last lines" in text


# --------------------------------------------------------------------------- reasons


def test_reasons_name_the_kill_and_only_this_attempt(tmp_path):
    log = tmp_path / "train.log"
    log.write_text("ValueError: the previous attempt's error\n")
    offset = log.stat().st_size
    with log.open("a") as fh:
        fh.write(
            "[rank0]: step 3\nexitcode  : -9 (pid: 123)\n"
            "traceback : Signal 9 (SIGKILL) received by PID 123\n"
            "torch.distributed.elastic.multiprocessing.errors.ChildFailedError:\n"
        )
    text = reasons.attempt_log(log, offset)
    assert "previous attempt" not in text
    assert reasons.failure_reason(text, 1) == (
        "worker killed by signal 9 (SIGKILL, often the out-of-memory killer)"
    )
    assert reasons.failure_reason("", -9).startswith("launcher killed by signal 9 (SIGKILL")
    assert reasons.failure_reason("x\nKeyError: 'neg'\n", 1) == "KeyError: 'neg'"
    assert reasons.failure_reason("nothing\n", 3).startswith("the launcher exited with code 3")


# --------------------------------------------------------------------------- process records


def _tagged_sleep(folder: RunFolder, seconds: int = 30, run_id: str | None = None):
    """A process started as the studio starts a run's processes (its tags in the environment)."""
    env = {**os.environ, **run_folder_env(folder, run_id)}
    return subprocess.Popen(["sleep", str(seconds)], env=env)


def test_a_record_is_alive_only_for_the_same_process(tmp_path):
    folder = RunFolder(tmp_path)
    proc = _tagged_sleep(folder)
    try:
        rec = procs.record(folder, proc.pid, "worker0")
        assert rec.alive() and procs.live(folder) == [proc.pid]
        reused = procs.ProcRecord(proc.pid, rec.start_time + 1, "worker0")
        assert not reused.alive()  # same pid, another start time: not ours
    finally:
        proc.kill()
        proc.wait()
    assert not rec.alive() and procs.live(folder) == []


def test_tagged_descendants_are_found_and_ended(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    env = {**os.environ, procs.RUN_DIR_ENV: str(folder.path.resolve())}
    # A parent that starts a child in a new session (as torchrun does), then sleeps.
    code = "import subprocess,time; subprocess.Popen(['sleep','60'], start_new_session=True); time.sleep(60)"
    parent = subprocess.Popen([sys.executable, "-c", code], env=env)
    try:
        deadline = time.monotonic() + 20
        while len(procs.tagged(folder)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(procs.tagged(folder)) == 2  # neither is recorded; both carry the tag
        assert procs.end_all(folder, 5.0, reap=lambda: parent.poll()) == []
        assert procs.tagged(folder) == []
    finally:
        parent.kill()
        parent.wait()


def test_parent_death_signal_ends_the_child_with_its_parent(tmp_path):
    code = (
        "import os,signal,subprocess,sys,time\n"
        "from studio.training import procs\n"
        "c = subprocess.Popen(['sleep','60'], preexec_fn=procs.die_with_parent)\n"
        "print(c.pid, flush=True); time.sleep(60)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=Path.cwd()
    )
    child = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while procs.is_alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not procs.is_alive(child)


# --------------------------------------------------------------------------- build locks


def _config(**ds) -> StudioConfig:
    return StudioConfig({"model_name_or_path": "m"}, TorchrunSettings(), DeepSpeedSettings(**ds))


def test_a_held_lock_is_live_and_an_unheld_old_one_is_stale(tmp_path, monkeypatch):
    monkeypatch.setenv(buildlocks.EXTENSIONS_ENV, str(tmp_path))
    held = tmp_path / "fused_adam" / "lock"
    held.parent.mkdir()
    # A holder as torch's FileBaton is one: the file created with O_EXCL and kept open.
    code = f"import os,time; os.open({str(held)!r}, os.O_CREAT|os.O_EXCL); print(1, flush=True); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        holder.stdout.readline()
        stale = tmp_path / "py311_cpu" / "cpu_adam" / "lock"  # the default layout, one deeper
        stale.parent.mkdir(parents=True)
        stale.touch()
        os.utime(stale, (time.time() - 60, time.time() - 60))
        os.utime(held, (time.time() - 60, time.time() - 60))
        found = {lock.op: lock for lock in buildlocks.find_locks()}
        assert found["fused_adam"].holders == (holder.pid,) and not found["fused_adam"].stale
        assert found["cpu_adam"].stale
        assert buildlocks.clear_stale_locks() == [stale]
        assert held.exists() and not stale.exists()
    finally:
        holder.kill()
        holder.wait()


def test_preflight_errors_on_a_stale_lock_the_run_needs_and_warns_on_others(tmp_path, monkeypatch):
    monkeypatch.setenv(buildlocks.EXTENSIONS_ENV, str(tmp_path))
    for op in ("deepspeed_shm_comm", "fused_adam"):
        lock = tmp_path / op / "lock"
        lock.parent.mkdir()
        lock.touch()
        os.utime(lock, (time.time() - 60, time.time() - 60))
    problems = buildlocks.check_build_locks(_config(stage=0), Hardware())
    levels = {Path(p.file).parent.name: p.level for p in problems}
    assert levels == {"deepspeed_shm_comm": "error", "fused_adam": "warning"}
    assert all("--clear-stale-locks" in p.fix and "stale" in p.message for p in problems)
    assert (
        buildlocks.check_build_locks(StudioConfig({"model_name_or_path": "m"}), Hardware()) == []
    )  # no DeepSpeed: no op build, no rule


def test_generated_config_leaves_the_optimizer_to_hf_unless_offloaded():
    assert "optimizer" not in deepspeed_config.generate(DeepSpeedSettings(stage=0))
    assert "optimizer" not in deepspeed_config.generate(DeepSpeedSettings(stage=3))
    offload = deepspeed_config.generate(DeepSpeedSettings(stage=2, offload_optimizer=True))
    assert offload["optimizer"]["type"] == "AdamW"  # DeepSpeed's CPU Adam
    assert buildlocks.ops_for(_config(stage=0), Hardware()) == {"deepspeed_shm_comm"}
    assert buildlocks.ops_for(_config(stage=2, offload_optimizer=True), Hardware()) == {
        "deepspeed_shm_comm",
        "cpu_adam",
    }


def test_stop_on_a_failed_run_with_a_live_worker_kills_it(tmp_path):
    from studio.training import runs

    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    folder.update_status(state="running", attempt=1)
    folder.update_status(state="failed", error="launcher killed by signal 9")
    orphan = _tagged_sleep(folder, 60)  # a worker that outlived its launcher
    try:
        procs.record(folder, orphan.pid, "worker0")
        seen = runs.refresh(folder.path)
        assert seen["state"] == "running" and seen["live_pids"] == [orphan.pid]
        with pytest.raises(runs.RunBusy, match="still running"):
            runs._launch(folder.path, StudioConfig({}), [], tmp_path, None)
        status = runs.stop(folder.path, grace_s=5)
        orphan.wait(10)
        assert status["state"] == "failed" and status["error"] == "launcher killed by signal 9"
        assert procs.live(folder) == []
    finally:
        orphan.kill()
        orphan.wait()


# --------------------------------------------------------------------------- copied folders


def _running_folder(path: Path) -> tuple[RunFolder, subprocess.Popen]:
    """A run folder as `_launch` leaves it: status with run id and folder, a recorded process."""
    from studio.facts.runfolder import new_run_id

    folder = RunFolder(path)
    folder.path.mkdir()
    run_id = new_run_id()
    folder.update_status(
        state="running", attempt=1, run_id=run_id, run_dir=str(folder.path.resolve())
    )
    proc = _tagged_sleep(folder, 60, run_id)
    procs.record(folder, proc.pid, "supervisor", run_id)
    return folder, proc


def test_stop_on_a_copy_signals_nothing_of_the_original_and_a_move_still_stops(tmp_path):
    import shutil

    from studio.training import runs

    original, proc = _running_folder(tmp_path / "run")
    try:
        copy = RunFolder(shutil.copytree(original.path, tmp_path / "copy"))
        assert procs.records(copy)[0].pid == proc.pid  # the copy names the original's pid
        assert procs.live(copy) == [] and procs.live(original) == [proc.pid]
        status = runs.stop(copy.path, grace_s=2)
        assert proc.poll() is None, "stop on a copy killed the original's process"
        assert status["state"] == "failed" and "copy of" in status["error"]
        assert "killed or the machine restarted" not in status["error"]
        moved = RunFolder(original.path.rename(tmp_path / "moved"))
        assert procs.live(moved) == [proc.pid]  # a move keeps the folder: it still stops
        assert runs.stop(moved.path, grace_s=5)["state"] == "stopped"
        assert proc.wait(10) is not None
    finally:
        proc.kill()
        proc.wait()


def test_just_started_processes_belong_to_their_folder_and_never_to_its_copy(tmp_path):
    """Right after `Popen` returns, the child can still be inside `exec`, its /proc/PID/environ
    empty (one start in ten on an idle machine, most of them under load). Read at that instant,
    a copy claimed the original's process (seen in CI), or a run that had just started was
    called killed (seen by `studio adapt`). Both are read here at that instant, 80 times, on
    CPUs kept busy as CI's are (an idle machine rarely shows the instant)."""
    import shutil

    from studio.facts.runfolder import new_run_id

    busy = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(2 * (os.cpu_count() or 1))
    ]
    try:
        _copies_and_originals_right_after_popen(tmp_path, new_run_id, shutil)
    finally:
        for p in busy:
            p.kill()
            p.wait()


def _copies_and_originals_right_after_popen(tmp_path, new_run_id, shutil):
    for i in range(80):
        original = RunFolder(tmp_path / f"run{i}")
        original.path.mkdir()
        run_id = new_run_id()
        original.update_status(state="running", run_id=run_id, run_dir=str(original.path))
        copy = RunFolder(shutil.copytree(original.path, tmp_path / f"copy{i}"))
        proc = _tagged_sleep(original, 60, run_id)
        try:
            for folder in (copy, original):  # both name the pid, as a copy made now would
                procs.record(folder, proc.pid, "supervisor", run_id)
            assert procs.live(copy) == [], f"start {i}: a copy claimed the original's process"
            assert procs.live(original) == [proc.pid], f"start {i}: the run lost its process"
        finally:
            proc.kill()
            proc.wait()


def test_a_recorded_process_without_the_runs_tags_is_never_signalled(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    untagged = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_RUN_")}
    strangers = [
        subprocess.Popen(["sleep", "60"], env={}),  # an empty environment, for good
        subprocess.Popen(["sleep", "60"], env=untagged),
    ]
    try:
        for stranger in strangers:
            procs.record(folder, stranger.pid, "worker0")
        assert procs.live(folder) == []
        assert procs.signal_all(folder, signal.SIGTERM) == []
        assert [s.poll() for s in strangers] == [None, None]
    finally:
        for stranger in strangers:
            stranger.kill()
            stranger.wait()


def _prepared(tmp_path: Path, **args) -> Path:
    from studio.training import runs

    cfg = StudioConfig(
        {"model_name_or_path": "bert-base-uncased", "train_data": ["t.jsonl"], **args}
    )
    run_dir = runs.prepare(cfg, tmp_path / "runs", tmp_path)
    folder = RunFolder(run_dir)
    folder.update_status(state="running", run_id="r1", run_dir=str(run_dir.resolve()), attempt=1)
    folder.update_status(state="failed")
    return run_dir


def test_a_copy_is_given_its_own_output_dir_and_run_id_before_it_resumes(tmp_path):
    import shutil

    from studio.training import runs

    run_dir = _prepared(tmp_path)
    before = RunFolder(run_dir).config.read_text()
    copy = shutil.copytree(run_dir, tmp_path / "copy")
    note = runs.adopt_copy(copy)
    assert note and f"copied from {run_dir.resolve()}" in note
    out = runs.load_run_config(copy).args["output_dir"]
    assert out == str(copy.resolve() / "model")
    assert str(copy.resolve() / "model") in RunFolder(copy).command.read_text()
    assert RunFolder(run_dir).config.read_text() == before  # the original is untouched
    status = RunFolder(copy).read_status()
    assert status["run_id"] != "r1" and status["run_dir"] == str(copy.resolve())
    assert runs.adopt_copy(copy) is None  # adopted once


def test_a_copy_sharing_an_outside_output_dir_is_refused_with_the_fix(tmp_path):
    import shutil

    from studio.training import runs

    run_dir = _prepared(tmp_path, output_dir=str(tmp_path / "shared_out"))
    copy = shutil.copytree(run_dir, tmp_path / "copy")
    with pytest.raises(runs.CopyConflict, match="set output_dir in .*config.yaml"):
        runs.adopt_copy(copy)


# --------------------------------------------------------------------------- full disk


def _no_room(*_args, **_kwargs):
    import errno

    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_failed_status_write_keeps_the_old_status_and_leaves_no_temp_file(tmp_path, monkeypatch):
    folder = RunFolder(tmp_path)
    folder.update_status(state="running", attempt=1)
    before = folder.status.read_text()
    real_write = Path.write_text

    def half_then_full(self, text, *a, **kw):
        real_write(self, text[:10], *a, **kw)  # a part reaches the disk, then no room
        _no_room()

    monkeypatch.setattr(Path, "write_text", half_then_full)
    with pytest.raises(OSError):
        folder.update_status(state="failed", error="x")
    monkeypatch.undo()
    assert folder.status.read_text() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_refresh_and_runs_list_work_while_the_disk_is_full_and_read_the_kept_end(
    tmp_path, monkeypatch
):
    from studio.facts import runfolder, statusfile
    from studio.training import runs

    folder = RunFolder(tmp_path / "runs" / "r")
    folder.path.mkdir(parents=True)
    folder.update_status(state="running", attempt=2, started_at=1.0)
    statusfile.reserve_ending(folder.ending, 2)
    monkeypatch.setattr(runfolder, "write_json", _no_room)  # the disk is full from here
    from studio.training import supervisor

    monkeypatch.setattr(supervisor.time, "sleep", lambda s: None)
    supervisor.record_end(
        folder, RunState.FAILED, 2, {"exit_code": 1, "error": "OSError: x", "log_tail": "t"}
    )
    status = runs.refresh(folder.path)  # no exception
    assert status["state"] == "failed" and status["error"].startswith("disk full writing ")
    assert str(folder.status) in status["error"] and "then resume" in status["error"]
    assert [r.state for r in runs.list_runs(tmp_path / "runs")] == ["failed"]
    monkeypatch.undo()  # space is back: the next refresh writes the kept end
    assert runs.refresh(folder.path)["error"] == status["error"]
    assert folder.read_status()["state"] == "failed"


def test_a_vanished_run_whose_log_shows_a_full_disk_is_not_called_killed(tmp_path):
    log = (
        "Saving model checkpoint to /r/model/checkpoint-2\n"
        "Traceback (most recent call last):\n"
        "OSError: [Errno 28] No space left on device\n"
    )
    reason = reasons.vanished_reason(log, 123)
    assert reason.startswith("disk full writing /r/model/checkpoint-2") and "killed" not in reason
    safetensors = 'SafetensorError: Error while serializing: IoError(Os { code: 27, kind: FileTooLarge, message: "File too large" })'
    assert reasons.no_room_in(safetensors) == (27, None)
    assert "file-size limit" in reasons.failure_reason(safetensors, 1)
    assert reasons.no_room_in("OSError: [Errno 28] No space left on device: '/d/f.json'") == (
        28,
        "/d/f.json",
    )


def test_every_face_says_disk_full_with_the_path_instead_of_a_traceback(
    tmp_path, monkeypatch, capsys
):
    import errno

    from studio.app import views
    from studio.cli import commands as cli
    from studio.training import runs

    full = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "runs" / "x"))
    text = views.failure_text(full)  # the web page's and the notebook's message
    assert text.startswith(f"❌ disk full writing {tmp_path / 'runs' / 'x'}: free space")

    def no_room(*_a, **_k):
        raise full

    monkeypatch.setattr(runs, "list_runs", no_room)
    assert cli.main(["runs", "--runs-dir", str(tmp_path / "runs")]) == 1
    err = capsys.readouterr().err
    assert (
        err.startswith(f"error: disk full writing {tmp_path / 'runs' / 'x'}")
        and "then resume" in err
    )


# --------------------------------------------------------------------------- launchers


def test_a_run_of_an_unloaded_launcher_is_never_judged_as_a_local_one(tmp_path):
    """runs knows cluster launchers only as they register: a run whose launcher this process
    has not loaded is refused by name, not marked failed for want of local processes."""
    from studio.training import runs

    folder = RunFolder(tmp_path / "far")
    folder.path.mkdir()
    folder.update_status(state="running", launcher="elsewhere", started_at=1.0)
    with pytest.raises(runs.UnknownLauncher, match="'elsewhere' launcher"):
        runs.refresh(folder.path)
    assert folder.read_status()["state"] == "running"


def test_the_cli_reads_a_slurm_run_through_slurm(tmp_path):
    """`python -m studio runs` (a fresh process) hands a Slurm run to the Slurm launcher: its
    job script's exit code says it succeeded, where the local rule would say "failed"."""
    from studio.facts.statusfile import write_json

    run_dir = tmp_path / "runs" / "on-slurm"
    run_dir.mkdir(parents=True)
    write_json(
        run_dir / "status.json",
        {"launcher": "slurm", "state": "running", "job_id": "999999", "started_at": 1.0},
    )
    (run_dir / "slurm_exit_code").write_text("0\n")
    done = subprocess.run(
        [sys.executable, "-m", "studio", "runs", "--runs-dir", str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "succeeded" in done.stdout
