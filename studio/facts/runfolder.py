"""One run folder: the names of its files, its states and phases, and its status record.

Every module that touches a run goes through :class:`RunFolder` for a path (no bare
`"status.json"` elsewhere) and through :meth:`RunFolder.update_status` for a change to
`status.json`. That one method is the single writer: each read-modify-write holds an exclusive
`flock` on `.status.lock` in the folder, so the supervisor, the worker reporting its phase, and
any face (web, notebook, CLI) refreshing or stopping the run never lose each other's fields (a
lost `pid` once made a live run unstoppable). A state change is checked against
:data:`TRANSITIONS`, so e.g. a late refresh can never turn a finished run back into "failed".

The states are a `str` enum, so `status.json` files written before it still read the same.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from studio.facts.statusfile import read_json, write_json

# The environment variable that tags every process of a run with its folder (procs finds a
# run's processes by it; a worker finds its own folder by it).
RUN_DIR_ENV = "STUDIO_RUN_DIR"
RUN_ID_ENV = "STUDIO_RUN_ID"
RUN_KEY_ENV = "STUDIO_RUN_KEY"


class _TextEnum(str, Enum):
    """A str enum that prints as its value (``enum.StrEnum`` needs Python 3.11; we run on 3.10)."""

    def __str__(self) -> str:
        return self.value


class RunState(_TextEnum):
    """Where a run is; `running` while any of its processes lives."""

    RUNNING = "running"
    QUEUED = "queued"  # a Slurm job waiting for its nodes
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"
    UNKNOWN = "unknown"

    @property
    def active(self) -> bool:
        """Running or waiting to run: a face keeps watching it."""
        return self in ACTIVE_STATES

    @property
    def ended(self) -> bool:
        return self in (RunState.SUCCEEDED, RunState.FAILED, RunState.STOPPED)


ACTIVE_STATES = (RunState.RUNNING, RunState.QUEUED)

# Allowed changes of `state`. A new attempt (resume) starts from any ended state.
TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    RunState.UNKNOWN: frozenset({RunState.RUNNING, RunState.QUEUED}),
    # A Slurm job can end between two polls, so queued may go straight to an end.
    RunState.QUEUED: frozenset(
        {RunState.RUNNING, RunState.SUCCEEDED, RunState.FAILED, RunState.STOPPED}
    ),
    # running -> queued: Slurm requeued the job.
    RunState.RUNNING: frozenset(
        {RunState.SUCCEEDED, RunState.FAILED, RunState.STOPPED, RunState.QUEUED}
    ),
    RunState.SUCCEEDED: frozenset({RunState.RUNNING, RunState.QUEUED}),
    RunState.FAILED: frozenset({RunState.RUNNING, RunState.QUEUED}),
    RunState.STOPPED: frozenset({RunState.RUNNING, RunState.QUEUED}),
}


class Phase(_TextEnum):
    """What a running run is doing before (and around) its training steps."""

    STARTING = "starting"
    LOADING_MODEL = "loading the model"
    LOADING_DATA = "loading data"
    PREPARING = "preparing the trainer"
    STARTING_DEEPSPEED = "starting DeepSpeed"
    BUILDING_OP = "building DeepSpeed op"
    WAITING_LOCK = "waiting for a build lock"
    TRAINING = "training"
    POST_TRAINING = "post-training"


class TransitionError(RuntimeError):
    pass


def state_of(status: dict[str, Any]) -> RunState:
    try:
        return RunState(status.get("state") or RunState.UNKNOWN)
    except ValueError:
        return RunState.UNKNOWN


@dataclass(frozen=True)
class RunStatus:
    """A typed view of `status.json` (the file stays a plain JSON object, extra keys kept)."""

    state: RunState
    attempt: int
    phase: str | None
    phase_detail: str | None
    phase_since: float | None
    started_at: float | None
    ended_at: float | None
    exit_code: int | None
    error: str | None
    log_tail: str | None
    raw: dict[str, Any]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunStatus:
        return cls(
            state=state_of(data),
            attempt=int(data.get("attempt") or 0),
            phase=data.get("phase"),
            phase_detail=data.get("phase_detail"),
            phase_since=data.get("phase_since"),
            started_at=data.get("started_at"),
            ended_at=data.get("ended_at"),
            exit_code=data.get("exit_code"),
            error=data.get("error"),
            log_tail=data.get("log_tail"),
            raw=dict(data),
        )

    def phase_text(self, now: float | None = None) -> str:
        """'building DeepSpeed op fused_adam · 42s' (time since this attempt started)."""
        return phase_text(self.raw, now)


def phase_text(status: dict[str, Any], now: float | None = None) -> str:
    """What a running run is doing and for how long, for every face's status line.

    Empty for a run that has ended. Time counts from this attempt's start, so a run waiting on
    something shows a growing number instead of a frozen 'elapsed 0s'.
    """
    if state_of(status) is not RunState.RUNNING:
        return ""
    now = time.time() if now is None else now
    phase = status.get("phase") or Phase.STARTING.value
    detail = status.get("phase_detail")
    text = f"{phase} {detail}" if detail else str(phase)
    started = status.get("started_at")
    if isinstance(started, int | float):
        text += f" · {max(0.0, now - started):.0f}s since start"
    return text


class RunFolder:
    """The files of one run. Paths only, plus the locked status store."""

    STATUS = "status.json"
    METRICS = "metrics.jsonl"
    LOG = "train.log"
    CONFIG = "config.yaml"
    COMMAND = "command.sh"
    DS_CONFIG = "ds_config.json"
    EVAL = "eval.json"
    MODEL = "model"
    STOP_MARKER = "stop_requested"
    PROCS = "procs"
    BUILD_LOCKS = "build_locks.txt"
    STATUS_LOCK = ".status.lock"
    ENDING = ".ending.json"  # the end, written in place when status.json cannot be replaced

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def status(self) -> Path:
        return self.path / self.STATUS

    @property
    def metrics(self) -> Path:
        return self.path / self.METRICS

    @property
    def log(self) -> Path:
        return self.path / self.LOG

    @property
    def config(self) -> Path:
        return self.path / self.CONFIG

    @property
    def command(self) -> Path:
        return self.path / self.COMMAND

    @property
    def ds_config(self) -> Path:
        return self.path / self.DS_CONFIG

    @property
    def eval(self) -> Path:
        return self.path / self.EVAL

    @property
    def default_model(self) -> Path:
        return self.path / self.MODEL

    @property
    def stop_marker(self) -> Path:
        return self.path / self.STOP_MARKER

    @property
    def procs(self) -> Path:
        return self.path / self.PROCS

    @property
    def build_locks(self) -> Path:
        return self.path / self.BUILD_LOCKS

    @property
    def ending(self) -> Path:
        return self.path / self.ENDING

    def is_run(self) -> bool:
        return self.status.is_file()

    def identity(self) -> str | None:
        """'device:inode' of the folder: kept by a move (rename), never by a copy.

        Every process of a run carries it in its environment (:func:`run_folder_env`), so a
        copy of the folder, whose `procs/` names the original's pids, cannot claim them."""
        try:
            st = self.path.stat()
        except OSError:
            return None
        return f"{st.st_dev}:{st.st_ino}"

    # ------------------------------------------------------------------ the status store

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the folder's status lock (exclusive, across processes and threads).

        A folder that cannot hold a lock file (read-only, disk full) is written without one:
        losing the lock is better than losing the status.
        """
        try:
            handle = open(self.path / self.STATUS_LOCK, "a")  # noqa: SIM115 - held until exit
        except OSError:
            yield
            return
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            yield
        finally:
            handle.close()  # closing releases the flock

    def read_status(self) -> dict[str, Any]:
        return read_json(self.status)

    def typed_status(self) -> RunStatus:
        return RunStatus.from_dict(self.read_status())

    def update_status(self, **changes: Any) -> dict[str, Any]:
        """Read-modify-write under the lock; a `state` change must be an allowed transition."""
        with self.locked():
            return self._update_unlocked(**changes)

    def _update_unlocked(self, **changes: Any) -> dict[str, Any]:
        data = self.read_status()
        if "state" in changes:
            new = RunState(changes["state"])
            old = state_of(data)
            if new != old and new not in TRANSITIONS[old]:
                raise TransitionError(f"{self.name}: cannot go from {old} to {new}")
            changes["state"] = new.value
        data.update(changes)
        write_json(self.status, data)
        return data

    def end_running(self, state: RunState, **changes: Any) -> dict[str, Any] | None:
        """Record the end of a running attempt, unless someone already did (then None)."""
        with self.locked():
            if state_of(self.read_status()) is not RunState.RUNNING:
                return None
            return self._update_unlocked(state=state, ended_at=time.time(), **changes)

    def set_phase(self, phase: Phase | str, detail: str | None = None) -> None:
        """Report what the run is doing; never fails the caller (a full disk must not kill a
        run for the sake of a status line)."""
        with contextlib.suppress(OSError, TransitionError):
            self.update_status(phase=str(phase), phase_detail=detail, phase_since=time.time())


def new_run_id() -> str:
    """A run's own name for itself, written in status.json, its pid records and its processes'
    environment (a folder name can be copied, reused or moved; this is checked before a signal)."""
    import uuid

    return uuid.uuid4().hex


def run_folder_env(folder: RunFolder, run_id: str | None = None) -> dict[str, str]:
    """The environment entries that tag every process of a run with its folder and run id."""
    env = {RUN_DIR_ENV: str(folder.path.resolve())}
    identity = folder.identity()
    if identity:
        env[RUN_KEY_ENV] = identity
    if run_id:
        env[RUN_ID_ENV] = run_id
    return env


def current_folder(environ=os.environ) -> RunFolder | None:
    """The run folder of the process this runs in, when it was launched by the studio."""
    path = environ.get(RUN_DIR_ENV)
    return RunFolder(path) if path else None
