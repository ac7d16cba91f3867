"""Runs: start, watch, stop, resume and list fine-tunes, each in its own folder on disk.

A run folder under the runs root (default `./runs/`) holds everything about it:

    config.yaml     the config with every path made absolute (reproducible as is)
    command.sh      the same launch for FlagEmbedding alone, beside ds_config.json
    ds_config.json  the DeepSpeed config actually used (when DeepSpeed is on)
    train.log       all output of the run
    metrics.jsonl   one line per logged step, written by a callback inside the trainer
    status.json     state (running/succeeded/failed/stopped), phase, exit code, reason, log tail,
                    the run's id and the folder it was launched in (`run_id`, `run_dir`)
    .ending.json    space reserved at each launch for the end, when status.json cannot be
                    replaced (a full disk; see studio.statusfile)
    procs/          pid + start time + run id of every process of the run (see studio.procs)
    model/          the output_dir, unless the config names another

The names belong to :class:`studio.facts.runfolder.RunFolder`. The disk is the only state: any face,
any browser session, a restarted studio all see the same runs by listing the folder. There is
no global "current run" to override. A run is running while any of its processes lives
(found from the folder, not from a process group); starting or resuming into a folder whose
processes live is refused, under the folder's status lock, so two resumes cannot both start.
A process is the run's only when its environment carries the run's id and the folder's
identity, so a copied folder never stops or claims the original's processes, and a copy is
made its own (its paths moved into it, a new run id) before it resumes (:func:`adopt_copy`).
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
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from studio.checks import preflight
from studio.core import command, deepspeed_config
from studio.core import config as config_mod
from studio.core.config import StudioConfig
from studio.facts.problems import Problem, errors
from studio.facts.runfolder import ACTIVE_STATES as runfolder_ACTIVE
from studio.facts.runfolder import (
    RunFolder,
    RunState,
    new_run_id,
    phase_text,
    run_folder_env,
    state_of,
)
from studio.facts.statusfile import disk_full, disk_full_reason, read_ending, reserve_ending
from studio.training import loss_health, procs, reasons
from studio.training.runlog import last_metrics

DEFAULT_RUNS_DIR = Path("runs")
STOP_GRACE_S = 10.0


class RunBusy(RuntimeError):
    """A start or resume into a run folder whose processes are alive."""


ACTIVE_STATES = runfolder_ACTIVE  # running, or queued (a Slurm job waiting for its nodes)


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
    phase: str = ""
    reason: str | None = None  # the scheduler's word on a queued/ended job (Slurm: Resources...)

    def row(self) -> dict:
        started = (
            datetime.fromtimestamp(self.started_at).strftime("%Y-%m-%d %H:%M:%S")
            if self.started_at
            else ""
        )
        return {
            "name": self.name,
            "status": f"{self.state} ({self.reason})" if self.reason else self.state,
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
    folder = RunFolder(run_dir)
    if not resolved.args.get("output_dir"):
        resolved = resolved.with_args(output_dir=str(folder.default_model.resolve()))
    ds = deepspeed_config.resolve(resolved.deepspeed)
    if ds is not None:
        folder.ds_config.write_text(deepspeed_config.dumps(ds))
    config_mod.save(resolved, folder.config)
    script = folder.command
    script.write_text(command.render_script(resolved), encoding="utf-8")
    script.chmod(0o755)
    return run_dir


def load_run_config(run_dir: str | Path) -> StudioConfig:
    return config_mod.load(RunFolder(run_dir).config)


def _launch(
    run_dir: Path,
    config: StudioConfig,
    extra_args: list[str],
    cwd: Path,
    env: dict[str, str] | None,
) -> None:
    """Start an attempt's supervisor, unless a process of this run is alive (RunBusy).

    The check, the new status and the supervisor's pid record happen under the folder's
    status lock, so of two concurrent resumes (two browsers, UI and CLI) exactly one starts.
    """
    folder = RunFolder(run_dir)
    ds_file = folder.ds_config
    argv = command.launch_argv(
        config,
        sys.executable,
        str(ds_file) if ds_file.exists() else None,
        master_port=config.torchrun.master_port or _free_port(),
    )
    argv += extra_args
    run_id = folder.read_status().get("run_id") or new_run_id()
    child_env = dict(os.environ if env is None else env)
    child_env["STUDIO_METRICS_FILE"] = str(folder.metrics.resolve())
    child_env.update(run_folder_env(folder, run_id))
    child_env.update(loss_health.env_for(config.studio))
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    with folder.locked():
        _reap()
        previous = folder.read_status()
        live = _live(folder, previous)
        if live:
            raise RunBusy(
                f"run {folder.name} is still running (attempt {previous.get('attempt', '?')}, "
                f"pids {', '.join(map(str, live))}); stop it first, or wait for it to end"
            )
        folder.stop_marker.unlink(missing_ok=True)
        now = time.time()
        attempt = previous.get("attempt", 0) + 1
        folder._update_unlocked(
            state=RunState.RUNNING,
            run_id=run_id,
            run_dir=str(folder.path.resolve()),
            phase="starting",
            phase_detail=None,
            phase_since=now,
            argv=argv,
            cwd=str(cwd),
            started_at=now,
            first_started_at=previous.get("first_started_at", now),
            attempt=attempt,
            log_offset=folder.log.stat().st_size if folder.log.exists() else 0,
            exit_code=None,
            error=None,
            log_tail=None,
            ended_at=None,
            child_pid=None,
            resumed_from=next(
                (
                    extra_args[i + 1]
                    for i, a in enumerate(extra_args)
                    if a == "--resume_from_checkpoint"
                ),
                None,
            ),
        )
        reserve_ending(folder.ending, attempt)
        proc = subprocess.Popen(
            [sys.executable, "-m", "studio.training.supervisor", str(run_dir)],
            cwd=str(cwd),
            env=child_env,
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _CHILDREN[str(run_dir)] = proc
        procs.record(folder, proc.pid, "supervisor", run_id)
        folder._update_unlocked(pid=proc.pid, pgid=proc.pid)


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
    _launch(run_dir, load_run_config(run_dir), [], config_mod.base_of(config, base_dir), env)
    return run_dir


def last_checkpoint(run_dir: str | Path) -> Path | None:
    from studio.training.checkpoints import last_complete_checkpoint

    out_dir = load_run_config(run_dir).args.get("output_dir")
    return last_complete_checkpoint(out_dir) if out_dir else None


def run_in(runs_dir: str | Path, name: str | None) -> Path | None:
    """The run folder `name` directly inside `runs_dir`, or None.

    For names that come from a browser (stored in its local storage, so anyone can edit them):
    a name with a separator, `..`, or a link that leads out of `runs_dir` is not a run."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        return None
    root = Path(runs_dir).resolve()
    candidate = (root / name).resolve()
    if candidate.parent != root or not RunFolder(candidate).is_run():
        return None
    return candidate


def resume(run_dir: str | Path, env: dict[str, str] | None = None) -> Path:
    """Continue a stopped or failed run from its last checkpoint, in the same folder.

    Metrics and log are appended, so the charts continue where they stopped. The studio's
    entry point restores weights, optimizer, scheduler and step (FlagEmbedding 1.4.2's own
    `--resume_from_checkpoint` crashes; see studio.train_entry).
    """
    run_dir = Path(run_dir)
    if _cluster(run_dir):
        return _cluster(run_dir).resume(run_dir)
    status = refresh(run_dir)
    if state_of(status) is RunState.RUNNING:
        raise RunBusy(
            f"run {run_dir.name} is still running (attempt {status.get('attempt', '?')}); "
            "stop it first"
        )
    adopt_copy(run_dir)
    checkpoint = last_checkpoint(run_dir)
    if checkpoint is None:
        raise RuntimeError(
            f"run {run_dir.name} saved no checkpoint to resume from; lower `save_steps` next time"
        )
    config = load_run_config(run_dir)
    cwd = Path(status.get("cwd") or ".")
    _launch(run_dir, config, ["--resume_from_checkpoint", str(checkpoint)], cwd, env)
    return run_dir


class CopyConflict(RuntimeError):
    """A copied run folder whose output_dir is still the original's (outside both folders)."""


def _under(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _origin(folder: RunFolder, status: dict, config: StudioConfig) -> Path | None:
    """The folder this one was copied or moved from, or None when it is where it was made.

    Recorded at each launch (`run_dir`); for a folder from before that, the run folder its
    output_dir lies in, when that is another one."""
    here = folder.path.resolve()
    recorded = status.get("run_dir")
    if recorded:
        return None if Path(recorded) == here else Path(recorded)
    out = config.args.get("output_dir")
    if not out:
        return None
    for parent in Path(out).parents:
        if RunFolder(parent).is_run():
            return None if parent.resolve() == here else parent
    return None


def _rebase(value, old: Path, new: Path):
    """A path under the old folder, moved under the new one; anything else as it was."""
    if isinstance(value, list):
        return [_rebase(v, old, new) for v in value]
    if isinstance(value, str) and value.startswith("/") and _under(Path(value), old):
        return str(new / Path(value).relative_to(old))
    return value


def adopt_copy(run_dir: str | Path) -> str | None:
    """Make a copied (or moved) run folder its own before it runs again; return a note.

    The config of a run folder names paths inside it absolutely (output_dir = <folder>/model),
    so a copy would resume into the original's model/ and write over its checkpoints. Those
    paths are moved into this folder (config.yaml and command.sh rewritten), and a copy gets a
    run id of its own. An output_dir outside both folders, while the original still exists, is
    refused: the two runs would write into one folder."""
    folder = RunFolder(run_dir)
    status = folder.read_status()
    config = load_run_config(run_dir)
    origin = _origin(folder, status, config)
    if origin is None:
        return None
    here = folder.path.resolve()
    original_exists = RunFolder(origin).is_run()
    args = {k: _rebase(v, origin, here) for k, v in config.args.items()}
    out = args.get("output_dir")
    if out and original_exists and not _under(Path(out), here):
        raise CopyConflict(
            f"run {folder.name} is a copy of {origin}, and both write to output_dir {out}: "
            f"set output_dir in {folder.config} to a folder of this copy's own (copy the "
            "checkpoints there), then resume"
        )
    adopted = replace(config, args=args)
    if adopted != config:
        config_mod.save(adopted, folder.config, overwrite=True)
        folder.command.write_text(command.render_script(adopted), encoding="utf-8")
    word = "copied" if original_exists else "moved"
    note = (
        f"[studio] this run folder was {word} from {origin}: its paths now point into {here}"
        + (f" (output_dir {out})" if out else "")
        + ("; it has a run id of its own" if original_exists else "")
    )
    folder.update_status(
        run_dir=str(here),
        run_id=new_run_id() if original_exists else status.get("run_id"),
        adopted=note,
    )
    with contextlib.suppress(OSError), folder.log.open("a", encoding="utf-8") as log:
        log.write(note + "\n")
    return note


# --------------------------------------------------------------------------- watch & stop


# Launchers other than the local supervisor, by the name status.json records as `launcher`:
# each an object (a module) with refresh(run_dir), stop(run_dir) and resume(run_dir). A cluster
# launcher registers itself when imported (studio.cluster.slurm; studio.actions and the CLI
# import it), so this layer needs no import of the one above it.
LAUNCHERS: dict[str, object] = {}


def register_launcher(name: str, launcher: object) -> None:
    """Hand runs whose status.json says ``launcher: name`` to ``launcher``."""
    LAUNCHERS[name] = launcher


class UnknownLauncher(RuntimeError):
    """A run started by a launcher this process has not loaded (never guess it is local)."""


def _cluster(run_dir: Path):
    """The launcher that owns a run started on a cluster (status.json `launcher`), else None."""
    name = RunFolder(run_dir).read_status().get("launcher")
    if not name:
        return None
    if name not in LAUNCHERS:
        raise UnknownLauncher(
            f"run {Path(run_dir).name} was started by the {name!r} launcher, which this "
            f"process has not loaded (known: {', '.join(LAUNCHERS) or 'none'}); "
            "open it from `python -m studio`, the web UI or the notebook"
        )
    return LAUNCHERS[name]


def _legacy_group(folder: RunFolder, status: dict) -> list[int]:
    """A folder from before pid records: its supervisor's group, if that leader is still a
    studio supervisor of this run (a bare pgid may belong to anything after a reboot)."""
    pgid = status.get("pgid")
    if not pgid:
        return []
    try:
        cmdline = Path(f"/proc/{int(pgid)}/cmdline").read_bytes().split(b"\0")
        cwd = os.readlink(f"/proc/{int(pgid)}/cwd")
    except OSError:
        return []
    if b"studio.training.supervisor" not in cmdline or len(cmdline) < 2:
        return []
    named = next((a for a in reversed(cmdline) if a), b"").decode("utf-8", "replace")
    try:  # the supervisor of this very folder, not of the folder a copy was made from
        if not os.path.samefile(os.path.join(cwd, named), folder.path):
            return []
    except OSError:
        return []
    return group_members(int(pgid))


def _live(folder: RunFolder, status: dict) -> list[int]:
    """Every live process of the run (recorded with start time, or tagged with its folder)."""
    if folder.procs.is_dir():
        return procs.live(folder)
    return sorted(set(procs.live(folder)) | set(_legacy_group(folder, status)))


def refresh(run_dir: str | Path) -> dict:
    """status.json, corrected from the run's processes (or from Slurm, for a Slurm run).

    A "running" status whose processes are all gone (supervisor killed, machine restarted, a
    pid now used by another process) becomes "failed" with a reason, or "stopped" after a Stop.
    A run with a live process reads as running, whatever the file says, with `live_pids`.
    """
    cluster = _cluster(Path(run_dir))
    if cluster:
        return cluster.refresh(Path(run_dir))
    _reap()
    folder = RunFolder(run_dir)
    status = folder.read_status()
    if not status:
        return status
    live = _live(folder, status)
    if live:
        if state_of(status) is not RunState.RUNNING:
            return {
                **status,
                "recorded_state": status.get("state"),
                "state": RunState.RUNNING.value,
                "live_pids": live,
            }
        return {**status, "live_pids": live}
    if state_of(status) is not RunState.RUNNING:
        return status
    with folder.locked():  # checked again under the lock: a launch may be under way
        status = folder.read_status()
        if state_of(status) is not RunState.RUNNING or _live(folder, status):
            return status
        return _record_vanished(folder, status)


def _record_vanished(folder: RunFolder, status: dict) -> dict:
    """The end of a running attempt whose processes are gone, written if the disk allows.

    From the supervisor's end record when it could not replace status.json (a full disk), else
    "stopped" after a Stop, else a reason read from the log. A write that fails (the disk is
    still full) returns the same corrected status unwritten, never an exception: `studio runs`
    and every face keep working while the disk is full."""
    ending = read_ending(folder.ending, status.get("attempt"))
    ending.pop("attempt", None)
    copied = _copied_from(folder, status)
    if ending:
        changes = ending
    elif folder.stop_marker.exists():
        changes = {"state": RunState.STOPPED.value, "ended_at": time.time()}
    else:
        text = reasons.attempt_log(folder.log, status.get("log_offset"))
        changes = {
            "state": RunState.FAILED.value,
            "ended_at": time.time(),
            "error": (
                f"this folder is a copy of {copied}, made while that run was running: no process "
                "of the run belongs to this folder (the run goes on there; resume here to train "
                "this copy from its last checkpoint)"
                if copied
                else reasons.vanished_reason(text, status.get("pid"))
            ),
            "log_tail": reasons.last_lines(text),
        }
    try:
        return folder._update_unlocked(**changes)
    except OSError as exc:
        if not disk_full(exc):
            raise
        unwritten = {**status, **changes}
        unwritten["write_error"] = disk_full_reason(folder.status, exc.errno)
        return unwritten


def _copied_from(folder: RunFolder, status: dict) -> str | None:
    """The folder this one was copied from, when the original still exists beside it."""
    recorded = status.get("run_dir")
    if not recorded or Path(recorded) == folder.path.resolve():
        return None
    original = RunFolder(recorded)
    if original.is_run() and original.read_status().get("run_id") == status.get("run_id"):
        return recorded
    return None


def stop(run_dir: str | Path, grace_s: float = STOP_GRACE_S) -> dict:
    """Stop a run: TERM to every process of it, KILL after the grace period.

    Works on any run with a live process, also one recorded as failed (e.g. a worker that
    outlived its launcher). Returns the final status. No process of the run survives.
    """
    if _cluster(Path(run_dir)):
        return _cluster(Path(run_dir)).stop(Path(run_dir))
    folder = RunFolder(run_dir)
    status = folder.read_status()
    if not _live(folder, status):
        return refresh(run_dir)
    if state_of(status) is RunState.RUNNING:
        with contextlib.suppress(OSError):  # a full disk: stop anyway (the end says failed)
            folder.stop_marker.touch()
    for pgid in _legacy_groups_to_signal(folder, status):
        _signal_group(pgid, signal.SIGTERM)
    procs.signal_all(folder, signal.SIGTERM)
    if procs.wait_gone(folder, grace_s, reap=_reap) or _legacy_group(folder, status):
        for pgid in _legacy_groups_to_signal(folder, status):
            _signal_group(pgid, signal.SIGKILL)
        procs.signal_all(folder, signal.SIGKILL)
        procs.wait_gone(folder, 10.0, reap=_reap)
    return refresh(run_dir)


def _legacy_groups_to_signal(folder: RunFolder, status: dict) -> list[int]:
    return (
        [] if folder.procs.is_dir() or not _legacy_group(folder, status) else [int(status["pgid"])]
    )


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def wait(run_dir: str | Path, timeout_s: float | None = None, poll_s: float = 0.5) -> dict:
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        status = refresh(run_dir)
        if not state_of(status).active:
            return status
        if deadline is not None and time.monotonic() > deadline:
            return status
        time.sleep(poll_s)


# --------------------------------------------------------------------------- list


def summarize(run_dir: str | Path) -> RunSummary:
    run_dir = Path(run_dir)
    status = refresh(run_dir)
    last = last_metrics(RunFolder(run_dir).metrics)
    return RunSummary(
        name=run_dir.name,
        path=run_dir,
        state=status.get("state", "unknown"),
        step=last.get("step") if last else None,
        max_steps=last.get("max_steps") if last else None,
        last_loss=last.get("loss") if last else None,
        started_at=status.get("first_started_at") or status.get("started_at"),
        error=status.get("error"),
        phase=phase_text(status),
        reason=status.get("reason"),
    )


def list_runs(runs_dir: str | Path = DEFAULT_RUNS_DIR) -> list[RunSummary]:
    """Every run under the runs root, newest first, read from disk."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    found = [summarize(p) for p in root.iterdir() if RunFolder(p).is_run()]
    return sorted(found, key=lambda r: r.started_at or 0, reverse=True)


def find_run(name_or_path: str | Path, runs_dir: str | Path = DEFAULT_RUNS_DIR) -> Path:
    path = Path(name_or_path)
    if RunFolder(path).is_run():
        return path
    candidate = Path(runs_dir) / str(name_or_path)
    if RunFolder(candidate).is_run():
        return candidate
    raise FileNotFoundError(f"no run {name_or_path!r} (looked in {Path(runs_dir).resolve()})")
