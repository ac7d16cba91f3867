"""Runs: start, watch, stop, resume and list fine-tunes, each in its own folder on disk.

A run folder under the runs root (default `./runs/`) holds everything about it:

    config.yaml     the config with every path made absolute (reproducible as is)
    command.sh      the same launch for FlagEmbedding alone, beside ds_config.json
    ds_config.json  the DeepSpeed config actually used (when DeepSpeed is on)
    train.log       all output of the run
    metrics.jsonl   one line per logged step, written by a callback inside the trainer
    status.json     state (running/succeeded/failed/stopped), exit code, pids, error line
    model/          the output_dir, unless the config names another

The disk is the only state: any face, any browser session, a restarted studio all see the
same runs by listing the folder. There is no global "current run" to override.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from studio import command, deepspeed_config, loss_health, preflight
from studio import config as config_mod
from studio.config import StudioConfig
from studio.problems import Problem, errors
from studio.runlog import last_metrics
from studio.statusfile import read_json, update_json, write_json
from studio.supervisor import STOP_MARKER

DEFAULT_RUNS_DIR = Path("runs")
STOP_GRACE_S = 10.0
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


class PreflightFailed(RuntimeError):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("pre-flight checks failed:\n" + "\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class RunSummary:
    name: str
    path: Path
    state: str
    step: int | None
    max_steps: int | None
    last_loss: float | None
    started_at: float | None
    error: str | None = None

    def row(self) -> dict:
        started = (
            datetime.fromtimestamp(self.started_at).strftime("%Y-%m-%d %H:%M:%S")
            if self.started_at
            else ""
        )
        return {
            "name": self.name,
            "status": self.state,
            "step": self.step,
            "max_steps": self.max_steps,
            "last_loss": self.last_loss,
            "started": started,
        }


# --------------------------------------------------------------------------- helpers


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:40] or "run"


def _new_run_dir(runs_dir: Path, label: str) -> Path:
    runs_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = f"{stamp}-{_slug(label)}"
    for i in range(1, 1000):
        candidate = runs_dir / (base if i == 1 else f"{base}-{i}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise RuntimeError(f"cannot create a run folder under {runs_dir}")


def _label(config: StudioConfig) -> str:
    if config.studio.get("name"):
        return str(config.studio["name"])
    model = str(config.args.get("model_name_or_path", "model"))
    return Path(model.removeprefix(config_mod.BUNDLED_PREFIX)).name


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group, read from /proc."""
    members = []
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: ask the kernel whether the group exists at all
        try:
            os.killpg(pgid, 0)
            return [pgid]
        except (ProcessLookupError, PermissionError):
            return []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


# The Popen handles of supervisors this process started, so they are reaped (no zombies).
_CHILDREN: dict[str, subprocess.Popen] = {}


def _reap() -> None:
    for key, proc in list(_CHILDREN.items()):
        if proc.poll() is not None:
            del _CHILDREN[key]


# --------------------------------------------------------------------------- start


def prepare(
    config: StudioConfig,
    runs_dir: str | Path = DEFAULT_RUNS_DIR,
    base_dir: str | Path = ".",
    name: str | None = None,
) -> Path:
    """Create the run folder and write config.yaml, ds_config.json and command.sh."""
    resolved = config_mod.resolve_paths(config, base_dir)
    run_dir = _new_run_dir(Path(runs_dir), name or _label(resolved))
    if not resolved.args.get("output_dir"):
        resolved = resolved.with_args(output_dir=str((run_dir / "model").resolve()))
    ds = deepspeed_config.resolve(resolved.deepspeed)
    if ds is not None:
        (run_dir / deepspeed_config.DS_FILE_NAME).write_text(deepspeed_config.dumps(ds))
    config_mod.save(resolved, run_dir / "config.yaml")
    script = run_dir / "command.sh"
    script.write_text(command.render_script(resolved), encoding="utf-8")
    script.chmod(0o755)
    return run_dir


def load_run_config(run_dir: str | Path) -> StudioConfig:
    return config_mod.load(Path(run_dir) / "config.yaml")


def _launch(
    run_dir: Path,
    config: StudioConfig,
    extra_args: list[str],
    cwd: Path,
    env: dict[str, str] | None,
) -> None:
    ds_file = run_dir / deepspeed_config.DS_FILE_NAME
    argv = command.launch_argv(
        config,
        sys.executable,
        str(ds_file) if ds_file.exists() else None,
        master_port=config.torchrun.master_port or _free_port(),
    )
    argv += extra_args
    child_env = dict(os.environ if env is None else env)
    child_env["STUDIO_METRICS_FILE"] = str((run_dir / "metrics.jsonl").resolve())
    child_env.update(loss_health.env_for(config.studio))
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    (run_dir / STOP_MARKER).unlink(missing_ok=True)
    previous = read_json(run_dir / "status.json")
    write_json(
        run_dir / "status.json",
        {
            "state": "running",
            "argv": argv,
            "cwd": str(cwd),
            "started_at": time.time(),
            "first_started_at": previous.get("first_started_at", time.time()),
            "attempt": previous.get("attempt", 0) + 1,
            "exit_code": None,
            "error": None,
            "resumed_from": next(
                (
                    extra_args[i + 1]
                    for i, a in enumerate(extra_args)
                    if a == "--resume_from_checkpoint"
                ),
                None,
            ),
        },
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "studio.supervisor", str(run_dir)],
        cwd=str(cwd),
        env=child_env,
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _CHILDREN[str(run_dir)] = proc
    update_json(run_dir / "status.json", pid=proc.pid, pgid=proc.pid)


def start(
    config: StudioConfig,
    runs_dir: str | Path = DEFAULT_RUNS_DIR,
    base_dir: str | Path = ".",
    name: str | None = None,
    env: dict[str, str] | None = None,
) -> Path:
    """Check, prepare and launch a run in the background; return its folder.

    Raises PreflightFailed (nothing is created) when a pre-flight check finds an error.
    """
    problems = preflight.run_checks(config, base_dir)
    if errors(problems):
        raise PreflightFailed(errors(problems))
    _reap()
    run_dir = prepare(config, runs_dir, base_dir, name)
    _launch(run_dir, load_run_config(run_dir), [], Path(base_dir).resolve(), env)
    return run_dir


def last_checkpoint(run_dir: str | Path) -> Path | None:
    out_dir = load_run_config(run_dir).args.get("output_dir")
    if not out_dir or not Path(out_dir).is_dir():
        return None
    # trainer_state.json is written last: a stop during a save leaves a folder without it.
    found = [
        (int(m.group(1)), p)
        for p in Path(out_dir).iterdir()
        if p.is_dir() and (m := _CHECKPOINT.match(p.name)) and (p / "trainer_state.json").is_file()
    ]
    return max(found)[1] if found else None


def resume(run_dir: str | Path, env: dict[str, str] | None = None) -> Path:
    """Continue a stopped or failed run from its last checkpoint, in the same folder.

    Metrics and log are appended, so the charts continue where they stopped. The studio's
    entry point restores weights, optimizer, scheduler and step (FlagEmbedding 1.4.2's own
    `--resume_from_checkpoint` crashes; see studio.train_entry).
    """
    run_dir = Path(run_dir)
    state = refresh(run_dir).get("state")
    if state == "running":
        raise RuntimeError(f"run {run_dir.name} is still running; stop it first")
    checkpoint = last_checkpoint(run_dir)
    if checkpoint is None:
        raise RuntimeError(
            f"run {run_dir.name} saved no checkpoint to resume from; lower `save_steps` next time"
        )
    config = load_run_config(run_dir)
    status = read_json(run_dir / "status.json")
    cwd = Path(status.get("cwd") or ".")
    _launch(run_dir, config, ["--resume_from_checkpoint", str(checkpoint)], cwd, env)
    return run_dir


# --------------------------------------------------------------------------- watch & stop


def _alive(status: dict) -> bool:
    _reap()
    pgid = status.get("pgid")
    return bool(pgid) and bool(group_members(int(pgid)))


def refresh(run_dir: str | Path) -> dict:
    """status.json, corrected when its processes died without recording an end."""
    run_dir = Path(run_dir)
    path = run_dir / "status.json"
    status = read_json(path)
    if status.get("state") == "running" and not _alive(status):
        time.sleep(0.2)  # the supervisor may be writing its final status right now
        status = read_json(path)
        if status.get("state") == "running":
            from studio.runlog import exception_line

            stopped = (run_dir / STOP_MARKER).exists()
            status = update_json(
                path,
                state="stopped" if stopped else "failed",
                ended_at=time.time(),
                error=None
                if stopped
                else (
                    exception_line(run_dir / "train.log")
                    or "the run's processes ended without a status"
                ),
            )
    return status


def stop(run_dir: str | Path, grace_s: float = STOP_GRACE_S) -> dict:
    """Stop a run: TERM to its whole process group, KILL after the grace period.

    Returns the final status. No process of the run survives (checked from /proc).
    """
    run_dir = Path(run_dir)
    status = read_json(run_dir / "status.json")
    pgid = status.get("pgid")
    if status.get("state") != "running" or not pgid:
        return refresh(run_dir)
    (run_dir / STOP_MARKER).touch()
    _signal_group(int(pgid), signal.SIGTERM)
    if not _wait_gone(int(pgid), grace_s):
        _signal_group(int(pgid), signal.SIGKILL)
        _wait_gone(int(pgid), 10.0)
    return refresh(run_dir)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _wait_gone(pgid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _reap()
        if not group_members(pgid):
            return True
        time.sleep(0.1)
    return not group_members(pgid)


def wait(run_dir: str | Path, timeout_s: float | None = None, poll_s: float = 0.5) -> dict:
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        status = refresh(run_dir)
        if status.get("state") != "running":
            return status
        if deadline is not None and time.monotonic() > deadline:
            return status
        time.sleep(poll_s)


# --------------------------------------------------------------------------- list


def summarize(run_dir: str | Path) -> RunSummary:
    run_dir = Path(run_dir)
    status = refresh(run_dir)
    last = last_metrics(run_dir / "metrics.jsonl")
    return RunSummary(
        name=run_dir.name,
        path=run_dir,
        state=status.get("state", "unknown"),
        step=last.get("step") if last else None,
        max_steps=last.get("max_steps") if last else None,
        last_loss=last.get("loss") if last else None,
        started_at=status.get("first_started_at") or status.get("started_at"),
        error=status.get("error"),
    )


def list_runs(runs_dir: str | Path = DEFAULT_RUNS_DIR) -> list[RunSummary]:
    """Every run under the runs root, newest first, read from disk."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    found = [summarize(p) for p in root.iterdir() if (p / "status.json").is_file()]
    return sorted(found, key=lambda r: r.started_at or 0, reverse=True)


def find_run(name_or_path: str | Path, runs_dir: str | Path = DEFAULT_RUNS_DIR) -> Path:
    path = Path(name_or_path)
    if (path / "status.json").is_file():
        return path
    candidate = Path(runs_dir) / str(name_or_path)
    if (candidate / "status.json").is_file():
        return candidate
    raise FileNotFoundError(f"no run {name_or_path!r} (looked in {Path(runs_dir).resolve()})")
