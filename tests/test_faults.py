"""Fault injection on real runs (torchrun + FlagEmbedding + the bundled model on CPU).

Each test injects one fault into a real run and checks what a user would see: within 30 s no
process of the run remains (found from the run folder: any process whose command line or
environment names it, independent of studio.procs), status.json holds an ended state and a
reason in words, and what the user made (config, checkpoints, metrics) is still there.

With `STUDIO_FAULTS_REPORT=FILE` set, each test appends its outcome as a JSON line to FILE;
`python scripts/reliability_table.py FILE` renders docs/reliability.md from those lines.

Cost: one real run per fault, a few steps at tiny lengths; the DeepSpeed tests share one
extensions folder (one build of the CPU accelerator's op) in a temp dir, never the user's.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from studio.checks import preflight
from studio.core import buildlocks
from studio.core.config import DeepSpeedSettings, StudioConfig, TorchrunSettings
from studio.facts.runfolder import Phase, RunFolder
from studio.training import procs, runs
from studio.training.runlog import read_metrics, step_records

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT / "example_data" / "train.jsonl"
CLEAN_S = 30.0  # the bound: no process of the run left after this
SLOW_S = 1800.0  # the most to wait for a run to reach a point (a shared, loaded machine)
REPORT_ENV = "STUDIO_FAULTS_REPORT"


def fault_config(deepspeed: bool = False, **overrides) -> StudioConfig:
    args = {
        "model_name_or_path": "bundled:all-MiniLM-L6-v2",
        "train_data": [str(TRAIN)],
        "sentence_pooling_method": "mean",
        "train_group_size": 2,
        "per_device_train_batch_size": 2,
        "query_max_len": 16,
        "passage_max_len": 16,
        "max_steps": 4,
        "logging_steps": 1,
        "save_steps": 100,
        "warmup_ratio": 0.1,
    }
    args.update(overrides)
    return StudioConfig(args, TorchrunSettings(), DeepSpeedSettings(stage=0) if deepspeed else None)


def write_config(path: Path, cfg: StudioConfig) -> Path:
    from studio.core import config as config_mod

    config_mod.save(cfg, path)
    return path


@pytest.fixture(autouse=True)
def _no_run_outlives_its_test(tmp_path_factory):
    """A failed assertion must not leave a run training on a shared machine: stop every run
    of this session that still has a live process (found from its folder)."""
    yield
    for status_file in tmp_path_factory.getbasetemp().rglob(RunFolder.STATUS):
        if procs.live(RunFolder(status_file.parent)):
            runs.stop(status_file.parent, grace_s=5)


# --------------------------------------------------------------------------- observation


def processes_of(run_dir: Path) -> list[int]:
    """Live processes naming the run folder in their command line or environment (from /proc,
    without studio.procs, so a bug there cannot hide a survivor)."""
    needle = str(Path(run_dir).resolve()).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            blob = (entry / "cmdline").read_bytes() + b"\0" + (entry / "environ").read_bytes()
        except (OSError, IndexError):
            continue
        if state != "Z" and needle in blob:
            found.append(int(entry.name))
    return found


def wait_for(predicate, timeout_s: float = SLOW_S, what: str = "a condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")


def wait_clean(run_dir: Path) -> float:
    """Seconds until no process of the run lives and its status says it ended (<= 30 s)."""
    start = time.monotonic()
    wait_for(
        lambda: not processes_of(run_dir) and runs.refresh(run_dir).get("state") != "running",
        CLEAN_S,
        f"every process of {run_dir.name} to end; left: {processes_of(run_dir)}",
    )
    return time.monotonic() - start


def live_record(run_dir: Path, role_prefix: str) -> procs.ProcRecord:
    def find():
        return next(
            (
                r
                for r in procs.records(RunFolder(run_dir))
                if r.role.startswith(role_prefix) and r.alive()
            ),
            None,
        )

    return wait_for(find, what=f"a live {role_prefix} of {run_dir.name}")


def log_of(run_dir: Path) -> str:
    return RunFolder(run_dir).log.read_text(errors="replace")[-4000:]


def train_until_it_fails(cfg_path: Path, runs_dir: Path, preexec_fn=None):
    """`studio train` in the foreground, which must exit 1; then the run folder once no process
    of it is left: (the CLI's result, run folder, status, seconds to clean, what was kept)."""
    cli = subprocess.run(
        [sys.executable, "-m", "studio", "train", str(cfg_path), "--runs-dir", str(runs_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        preexec_fn=preexec_fn,
        timeout=SLOW_S,
    )
    assert cli.returncode == 1, cli.stderr[-3000:]
    run_dir = Path(cli.stdout.strip().splitlines()[-1])
    clean_s = wait_clean(run_dir)
    status = runs.refresh(run_dir)
    kept = kept_files(run_dir, RunFolder(run_dir).config.read_text())
    return cli, run_dir, status, clean_s, kept


def report(fault: str, run_dir: Path | None, status: dict, clean_s: float | None, **kept):
    """Append this fault's outcome for docs/reliability.md (only when asked)."""
    path = os.environ.get(REPORT_ENV)
    if not path:
        return
    row = {
        "fault": fault,
        "state": status.get("state"),
        "reason": status.get("error") or "",
        "processes_left": len(processes_of(run_dir)) if run_dir else 0,
        "clean_s": None if clean_s is None else round(clean_s, 1),
        "kept": [name for name, ok in kept.items() if ok],
    }
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def kept_files(run_dir: Path, config_text: str) -> dict[str, bool]:
    folder = RunFolder(run_dir)
    model = folder.default_model
    return {
        "config": folder.config.read_text() == config_text,
        "checkpoints": any(model.glob("checkpoint-*/trainer_state.json")),
        "metrics": bool(step_records(read_metrics(folder.metrics))),
    }


# --------------------------------------------------------------------------- kills


@pytest.fixture(scope="module")
def worker_killed(tmp_path_factory):
    """A run killed by SIGKILL of its worker after its first checkpoint."""
    runs_dir = tmp_path_factory.mktemp("faults") / "runs"
    run_dir = runs.start(fault_config(max_steps=200, save_steps=1), runs_dir, ROOT)
    config_text = RunFolder(run_dir).config.read_text()
    checkpoint = run_dir / "model" / "checkpoint-1" / "trainer_state.json"
    wait_for(
        lambda: checkpoint.is_file() or runs.refresh(run_dir)["state"] != "running",
        what="checkpoint-1",
    )
    assert checkpoint.is_file(), log_of(run_dir)
    os.kill(live_record(run_dir, "worker").pid, signal.SIGKILL)
    clean_s = wait_clean(run_dir)
    return run_dir, runs.refresh(run_dir), clean_s, config_text


def test_sigkill_of_a_worker_fails_with_the_signal_and_keeps_the_checkpoint(worker_killed):
    run_dir, status, clean_s, config_text = worker_killed
    kept = kept_files(run_dir, config_text)
    report("SIGKILL of a worker (after checkpoint-1)", run_dir, status, clean_s, **kept)
    assert status["state"] == "failed"
    assert status["error"] == "worker killed by signal 9 (SIGKILL, often the out-of-memory killer)"
    assert status["log_tail"], "the reason comes with the last lines of this attempt's log"
    assert all(kept.values()), kept


def test_two_concurrent_resumes_start_one_attempt_then_launcher_kill_is_named(worker_killed):
    run_dir, _, _, config_text = worker_killed
    argv = [sys.executable, "-m", "studio", "resume", str(run_dir)]
    both = [
        subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outcomes = [(p.wait(120), p.stdout.read(), p.stderr.read()) for p in both]
    codes = sorted(code for code, _, _ in outcomes)
    assert codes == [0, 2], outcomes
    refused = next(err for code, _, err in outcomes if code == 2)
    assert f"run {run_dir.name} is still running" in refused and "stop it first" in refused
    status = runs.refresh(run_dir)
    assert status["state"] == "running" and status["attempt"] == 2
    assert len(procs.records(RunFolder(run_dir))) >= 3  # attempt 1's records stay beside
    report(
        "two concurrent resumes (`python -m studio resume` twice at once)",
        None,
        {"state": "one attempt runs, the other is refused", "error": refused.strip()},
        None,
    )

    # Attempt 2: kill -9 its launcher once its worker lives (the out-of-memory killer's way).
    worker = live_record(run_dir, "worker")
    launcher = live_record(run_dir, "launcher")
    os.kill(launcher.pid, signal.SIGKILL)
    clean_s = wait_clean(run_dir)
    assert not worker.alive(), "the worker outlived its launcher"
    status = runs.refresh(run_dir)
    kept = kept_files(run_dir, config_text)
    report("SIGKILL of the launcher (torchrun)", run_dir, status, clean_s, **kept)
    assert status["state"] == "failed" and status["attempt"] == 2
    assert (
        status["error"] == "launcher killed by signal 9 (SIGKILL, often the out-of-memory killer)"
    )
    assert all(kept.values()), kept


def _own_live_record(run_dir: Path, role_prefix: str) -> procs.ProcRecord:
    """A live record of this folder's own processes (a copy also lists the original's)."""
    folder = RunFolder(run_dir)

    def find():
        return next(
            (
                r
                for r in procs.records(folder)
                if r.role.startswith(role_prefix) and r.alive() and procs.belongs(r.pid, folder)
            ),
            None,
        )

    return wait_for(find, what=f"a live {role_prefix} of {run_dir.name}")


def test_stop_on_a_copied_run_folder_leaves_the_original_and_the_copy_resumes_into_itself(
    tmp_path,
):
    cfg = fault_config(max_steps=400, save_steps=2, save_total_limit=3)
    run_dir = runs.start(cfg, tmp_path / "runs", ROOT)
    checkpoint = run_dir / "model" / "checkpoint-2" / "trainer_state.json"
    wait_for(
        lambda: checkpoint.is_file() or runs.refresh(run_dir)["state"] != "running",
        what="checkpoint-2",
    )
    assert checkpoint.is_file(), log_of(run_dir)
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(run_dir), str(copy)], check=False)  # while it trains
    original_pids = processes_of(run_dir)

    stop = [sys.executable, "-m", "studio", "stop", str(copy)]
    cli = subprocess.run(stop, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert all(procs.is_alive(p) for p in original_pids), "stop on the copy killed the original"
    step = step_records(read_metrics(RunFolder(run_dir).metrics))[-1]["step"]
    wait_for(
        lambda: step_records(read_metrics(RunFolder(run_dir).metrics))[-1]["step"] > step,
        what="the original to train on after the copy's stop",
    )
    copy_status = runs.refresh(copy)
    report(
        "`studio stop` on a copy (cp -a) of a running run folder",
        copy,
        {**copy_status, "error": f"original still training; copy: {copy_status.get('error')}"},
        None,
        original_running=runs.refresh(run_dir)["state"] == "running",
    )
    assert copy_status["state"] == "failed" and "copy of" in copy_status["error"]

    # Resume the copy: its processes write into the copy, never into the original's model/.
    runs.resume(copy)
    worker = _own_live_record(copy, "worker")
    cmdline = Path(f"/proc/{worker.pid}/cmdline").read_bytes().decode().split("\0")
    out = cmdline[cmdline.index("--output_dir") + 1]
    assert out == str(copy.resolve() / "model"), cmdline
    assert runs.load_run_config(copy).args["output_dir"] == out
    assert runs.stop(copy)["state"] == "stopped"
    assert runs.refresh(run_dir)["state"] == "running", "the copy's stop reached the original"
    report(
        "resume of that copy",
        copy,
        {"state": "resumed into the copy", "error": runs.refresh(copy).get("adopted", "")},
        None,
    )

    status = runs.stop(run_dir)  # the original stops as usual
    clean_s = wait_clean(run_dir)
    assert status["state"] == "stopped" and clean_s < CLEAN_S


UI_SCRIPT = """
import sys, time
from pathlib import Path
from studio.core import config
from studio.training import runs
from studio.webui.app import AppContext, build_app

ctx = AppContext(runs_dir=Path(sys.argv[2]), base_dir=Path(sys.argv[3]),
                 initial=config.load(sys.argv[1]))
demo = build_app(ctx)  # the web studio as launch.py builds it
run_dir = runs.start(ctx.initial, ctx.runs_dir, ctx.base_dir)  # what its Start button calls
print(run_dir, flush=True)
time.sleep(3600)
"""


def test_web_studio_killed_mid_run_reattaches_then_supervisor_kill_ends_the_run(tmp_path):
    from conftest import web_handler

    from studio.webui.app import AppContext, build_app

    runs_dir = tmp_path / "runs"
    cfg_path = write_config(tmp_path / "cfg.yaml", fault_config(max_steps=200, save_steps=2))
    ui = subprocess.Popen(
        [sys.executable, "-c", UI_SCRIPT, str(cfg_path), str(runs_dir), str(ROOT)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    run_dir = Path(ui.stdout.readline().strip())
    assert run_dir.is_dir()
    live_record(run_dir, "worker")
    ui.kill()  # the web studio dies (kill -9); its run must go on
    ui.wait(30)
    metrics = RunFolder(run_dir).metrics
    wait_for(lambda: step_records(read_metrics(metrics)), what="a step after the UI died")

    restarted = build_app(AppContext(runs_dir=runs_dir, base_dir=ROOT))
    shown = web_handler(restarted, "attach")(None)  # a fresh page on a restarted studio
    watcher = shown[restarted.registry["session.watcher"]]
    text = shown[restarted.registry["train.status"]]
    assert watcher is not None and watcher.run_dir == run_dir
    assert "running" in text
    report(
        "web studio killed (kill -9) mid-run, then restarted",
        None,
        {"state": "running", "error": "the run kept training; the restarted studio re-attached"},
        None,
    )

    config_text = RunFolder(run_dir).config.read_text()
    os.kill(live_record(run_dir, "supervisor").pid, signal.SIGKILL)
    clean_s = wait_clean(run_dir)
    status = runs.refresh(run_dir)
    kept = kept_files(run_dir, config_text)
    report("SIGKILL of the supervisor", run_dir, status, clean_s, **kept)
    assert status["state"] == "failed"
    assert "supervisor" in status["error"] and "killed" in status["error"]
    assert kept["config"] and kept["metrics"]


def test_a_full_run_folder_fails_with_the_write_error_and_keeps_what_was_written(tmp_path):
    runs_dir = tmp_path / "runs"
    cfg_path = write_config(tmp_path / "cfg.yaml", fault_config(max_steps=4, save_steps=1))
    limit = 8 * 1024 * 1024  # the log and metrics fit; the first checkpoint (90 MB) does not

    def full_disk():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    cli, run_dir, status, clean_s, kept = train_until_it_fails(cfg_path, runs_dir, full_disk)
    report("run folder full (RLIMIT_FSIZE 8 MiB)", run_dir, status, clean_s, **kept)
    assert status["state"] == "failed"
    checkpoint = run_dir.resolve() / "model" / "checkpoint-1"
    assert status["error"].startswith(
        f"disk full for this process (file too large writing {checkpoint}"
    )
    assert "`ulimit -f`" in status["error"] and "then resume" in status["error"], status["error"]
    assert f"error: {status['error']}" in cli.stderr  # the CLI says why, with the log's end
    assert kept["config"] and kept["metrics"]


FULL_DISK_SCRIPT = r"""
set -u
mount -t tmpfs -o size=64m tmpfs "$MNT" || exit 90
py() { "$PY" -m studio "$@"; }
fill() {  # once the run has logged a step, something else fills the disk to the last byte
  until grep -qs '"loss"' "$MNT"/runs/*/metrics.jsonl; do sleep 0.2; done
  dd if=/dev/zero of="$MNT/filler" bs=64k 2>/dev/null
  df -B1 --output=avail "$MNT" | tail -1 >"$OUT/avail_full.txt"
}
fill &
py train "$CFG" --runs-dir "$MNT/runs" >"$OUT/train.out" 2>"$OUT/train.err"; echo $? >"$OUT/train.rc"
wait
py runs --runs-dir "$MNT/runs" >"$OUT/runs_full.out" 2>"$OUT/runs_full.err"; echo $? >"$OUT/runs_full.rc"
run="$MNT/runs/$(ls "$MNT/runs")"
ls -A "$run" >"$OUT/files_full.txt"
cp "$run/status.json" "$OUT/status_full.json"
rm -f "$MNT/filler"  # the user frees space
py runs --runs-dir "$MNT/runs" >"$OUT/runs_freed.out" 2>"$OUT/runs_freed.err"
cp "$run/status.json" "$OUT/status_freed.json"
ls -A "$run" >"$OUT/files_freed.txt"
"""


def test_a_disk_that_fills_mid_run_gives_disk_full_and_a_clean_status(tmp_path):
    """A real full filesystem (a tmpfs in a private mount namespace), filled to the last byte
    after the run's first step: the checkpoint, the log, the metrics and status.json's writes
    all fail, until the filler is deleted."""
    mnt, out = tmp_path / "mnt", tmp_path / "out"
    mnt.mkdir()
    out.mkdir()
    cfg_path = write_config(tmp_path / "cfg.yaml", fault_config(max_steps=4, save_steps=2))
    env = {**os.environ, "MNT": str(mnt), "OUT": str(out), "CFG": str(cfg_path)}
    env["PY"] = sys.executable
    argv = ["unshare", "--user", "--map-root-user", "--mount", "bash", "-c", FULL_DISK_SCRIPT]
    try:
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, timeout=SLOW_S)
    except FileNotFoundError:
        pytest.skip("needs util-linux unshare (a private mount namespace for the tmpfs)")
    if done.returncode == 90 or not (out / "train.rc").exists():
        pytest.skip(f"needs CAP_SYS_ADMIN to mount a tmpfs (root here): {done.stderr[-500:]!r}")
    text = {p.name: p.read_text(errors="replace") for p in out.iterdir()}
    freed = json.loads(text["status_freed.json"])
    assert int(text["avail_full.txt"]) == 0, "the filesystem was not full"
    shown = json.loads(text["status_full.json"])  # status.json as the disk holds it when full
    own = text["train.err"].split("last lines of this attempt's log:")[0]  # not the run's log
    assert text["train.rc"].strip() == "1" and "Traceback" not in own, text["train.err"][-3000:]
    last = text["train.err"].strip().splitlines()
    error_line = next(line for line in last if line.startswith("error: "))
    assert error_line.startswith("error: disk full writing "), text["train.err"][-2000:]
    assert text["runs_full.rc"].strip() == "0" and "Traceback" not in text["runs_full.err"]
    assert " failed " in text["runs_full.out"], text["runs_full.out"]
    assert not [n for n in text["files_full.txt"].split() if n.endswith(".tmp")], text
    assert freed["state"] == "failed" and freed["error"].startswith("disk full writing ")
    assert "killed or the machine restarted" not in freed["error"]
    assert not [n for n in text["files_freed.txt"].split() if n.endswith(".tmp")]
    report(
        "disk full mid-run (tmpfs filled to 0 bytes free after step 1)",
        None,
        {
            **freed,
            "error": f"{freed['error']} (status.json on the full disk: {shown.get('state')}; "
            "`studio runs` while full: listed, exit 0; no .tmp left)",
        },
        None,
        config="config.yaml" in text["files_freed.txt"],
        metrics="metrics.jsonl" in text["files_freed.txt"],
    )


def test_running_status_with_a_gone_or_reused_pid_is_corrected_and_kills_nothing(tmp_path):
    folder = RunFolder(runs.prepare(fault_config(), tmp_path / "runs", ROOT))
    gone = subprocess.Popen(["sleep", "0"])
    gone_start = procs.start_time(gone.pid)
    gone.wait()
    stranger = subprocess.Popen(["sleep", "120"])  # an unrelated process with a known pid
    try:
        folder.update_status(state="running", pid=gone.pid, pgid=stranger.pid, attempt=1)
        folder.procs.mkdir()
        for role, pid, start in (
            ("supervisor", gone.pid, gone_start),
            ("worker0", stranger.pid, procs.start_time(stranger.pid) + 1),  # pid reused
        ):
            (folder.procs / f"{role}-{pid}.json").write_text(
                json.dumps({"pid": pid, "start_time": start, "role": role})
            )
        status = runs.refresh(folder.path)
        assert status["state"] == "failed"
        assert f"supervisor (pid {gone.pid})" in status["error"]
        assert runs.stop(folder.path)["state"] == "failed"
        assert stranger.poll() is None, "stop killed a process that is not the run's"
        report(
            "status 'running' with a pid that is gone or reused by another process",
            folder.path,
            status,
            0.0,
            config=folder.config.is_file(),
        )
    finally:
        stranger.kill()
        stranger.wait()


# --------------------------------------------------------------------------- training health


def test_a_diverged_run_that_logged_no_step_fails_with_the_nan_weights_reason(tmp_path):
    """learning_rate 1e6 with HF's default logging_steps (500 > max_steps): the loss check sees
    no step; it used to exit 0, "succeeded", with NaN train_loss and NaN weights (issue 18)."""
    cfg = fault_config(learning_rate=1e6, max_steps=4)
    del cfg.args["logging_steps"]  # HF's default, 500
    cfg_path = write_config(tmp_path / "cfg.yaml", cfg)
    cli, run_dir, status, clean_s, kept = train_until_it_fails(cfg_path, tmp_path)
    fault = "learning_rate 1e6, 4 steps, none logged (logging_steps 500)"
    report(fault, run_dir, status, clean_s, config=kept["config"])
    assert status["state"] == "failed" and status["exit_code"] != 0
    error = status["error"]
    assert error.startswith(
        "studio.training.train_outcome.TrainingOutcomeError: the saved model has "
    )
    assert "NaN weights in " in error and "(model.safetensors): training diverged" in error
    nan = int(error.split("has ")[1].split(" NaN")[0].replace(",", ""))
    assert nan > 1_000_000, error  # most of MiniLM's 22.7M weights
    assert "train_loss is nan" in error
    assert "learning_rate 1e+06 is far above fine-tuning's" in error and "lower it" in error
    assert "logging_steps 500 > the 4 steps trained" in error
    assert f"error: {error}" in cli.stderr  # the CLI says why
    assert not step_records(read_metrics(RunFolder(run_dir).metrics))  # no step was logged
    assert kept["config"]
    assert "export and model card written" not in RunFolder(run_dir).log.read_text()


# --------------------------------------------------------------------------- DeepSpeed op builds


@pytest.fixture(scope="module")
def shared_ext(tmp_path_factory):
    """One TORCH_EXTENSIONS_DIR for the module's DeepSpeed runs: one op build, never the user's."""
    return tmp_path_factory.mktemp("torch_extensions")


@pytest.fixture
def ext_env(shared_ext, monkeypatch):
    """The runs' environment; pre-flight (which reads this process's) sees the same folder."""
    monkeypatch.setenv(buildlocks.EXTENSIONS_ENV, str(shared_ext))
    return {**os.environ, buildlocks.EXTENSIONS_ENV: str(shared_ext)}


def plant_stale_lock(ext: Path, op: str) -> Path:
    """A lock as a killed build leaves it: the file exists, no process holds it, not new."""
    path = ext / op / buildlocks.LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    old = time.time() - 60
    os.utime(path, (old, old))
    return path


def test_stop_during_the_op_build_then_a_new_run_trains_despite_stale_adam_locks(tmp_path, ext_env):
    ext = Path(ext_env[buildlocks.EXTENSIONS_ENV])
    cfg = fault_config(deepspeed=True, max_steps=2)
    run_dir = runs.start(cfg, tmp_path / "runs", ROOT, env=ext_env)
    folder = RunFolder(run_dir)
    shm_lock = ext / "deepspeed_shm_comm" / buildlocks.LOCK_NAME
    wait_for(
        lambda: (
            (folder.read_status().get("phase") == Phase.BUILDING_OP.value and shm_lock.exists())
            or runs.refresh(run_dir)["state"] != "running"
        ),
        what="the DeepSpeed op build",
    )
    assert shm_lock.exists(), log_of(run_dir)
    status = runs.stop(run_dir)
    clean_s = wait_clean(run_dir)
    report("Stop during the DeepSpeed op build", run_dir, status, clean_s, config=True)
    assert status["state"] == "stopped"
    assert not shm_lock.exists(), "the stopped build's own lock was left behind"

    # A new run, with stale fused_adam/cpu_adam locks (no holder) in the cache: it trains.
    stale = [plant_stale_lock(ext, op) for op in ("fused_adam", "cpu_adam")]
    problems = preflight.run_checks(cfg, ROOT)
    named = [p for p in problems if p.code == "stale_build_lock"]
    assert {p.file for p in named} == {str(p) for p in stale}
    assert all(p.level == "warning" and "--clear-stale-locks" in p.fix for p in named)
    start = time.monotonic()
    run_dir = runs.start(cfg, tmp_path / "runs", ROOT, env=ext_env)
    status = runs.wait(run_dir, SLOW_S)
    trained = f"trained ({time.monotonic() - start:.0f}s, op build included)"
    report(
        "new DeepSpeed run after that Stop, stale fused_adam + cpu_adam locks in the cache",
        run_dir,
        {
            **status,
            "error": status.get("error") or (trained if status["state"] == "succeeded" else ""),
        },
        None,
    )
    assert status["state"] == "succeeded", log_of(run_dir)
    assert all(p.exists() for p in stale), "locks the user did not agree to clear were removed"


def test_a_stale_lock_on_a_needed_op_is_refused_at_once_with_the_fix(tmp_path, ext_env):
    ext = Path(ext_env[buildlocks.EXTENSIONS_ENV])
    lock = plant_stale_lock(ext, "deepspeed_shm_comm")
    cfg_path = write_config(tmp_path / "cfg.yaml", fault_config(deepspeed=True))
    train = [sys.executable, "-m", "studio", "train", str(cfg_path), "--runs-dir", "runs"]
    start = time.monotonic()
    cli = subprocess.run(train, cwd=tmp_path, env=ext_env, capture_output=True, text=True)
    refused_s = time.monotonic() - start
    assert cli.returncode == 1 and str(lock) in cli.stderr and "--clear-stale-locks" in cli.stderr
    assert refused_s < CLEAN_S
    assert not (tmp_path / "runs").exists(), "a refused run creates no folder"
    report(
        "stale build lock of a dead process on an op the run builds",
        None,
        {"state": "refused before start", "error": cli.stderr.strip().splitlines()[0]},
        None,
    )
    check = [sys.executable, "-m", "studio", "check", str(cfg_path), "--clear-stale-locks"]
    cleared = subprocess.run(check, cwd=tmp_path, env=ext_env, capture_output=True, text=True)
    assert cleared.returncode == 0 and f"removed stale build lock {lock}" in cleared.stderr
    assert not lock.exists()


def test_a_lock_gone_stale_after_pre_flight_fails_the_run_at_once(tmp_path, ext_env):
    ext = Path(ext_env[buildlocks.EXTENSIONS_ENV])
    run_dir = runs.start(fault_config(deepspeed=True), tmp_path / "runs", ROOT, env=ext_env)
    lock = plant_stale_lock(ext, "deepspeed_shm_comm")  # after pre-flight passed
    try:
        status = runs.wait(run_dir, SLOW_S)
        clean_s = wait_clean(run_dir)
        report("build lock gone stale during the run", run_dir, status, clean_s, config=True)
        assert status["state"] == "failed"
        assert "StaleBuildLockError: stale DeepSpeed build lock" in status["error"]
        assert str(lock) in status["error"] and "--clear-stale-locks" in status["error"]
        assert lock.exists(), "a lock the run did not take is the user's to clear"
    finally:
        lock.unlink(missing_ok=True)


def test_config_round_trips_for_the_cli(tmp_path):
    """write_config writes what `python -m studio train` reads (guards the tests above)."""
    path = write_config(tmp_path / "c.yaml", fault_config(deepspeed=True))
    data = yaml.safe_load(path.read_text())
    assert data["deepspeed"]["stage"] == 0 and data["max_steps"] == 4
