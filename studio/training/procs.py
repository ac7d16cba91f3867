"""Containment: every process of a run is found from its run folder, and ends with the run.

Why not the process group: torchrun starts each worker with `start_new_session=True`, so the
workers leave the launcher's group, and a `kill -9` of the launcher (the out-of-memory killer)
left a worker training with nobody to stop it. So each process of a run:

* records itself as `procs/<role>-<pid>.json` with its pid **and start time** (field 22 of
  `/proc/PID/stat`), so a pid reused by an unrelated process after a reboot or a long time is
  never taken for the run's (it has another start time);
* carries `STUDIO_RUN_DIR=<run folder>` in its environment, inherited by anything it spawns
  (compilers of a DeepSpeed op build included), so even an unrecorded descendant is found by
  scanning `/proc/*/environ`;
* carries the run's id (`STUDIO_RUN_ID`, also in status.json and each record) and the folder's
  identity (`STUDIO_RUN_KEY`, device:inode), and no process is taken for the run's unless its
  environment says so: a copy of a run folder lists the original's pids in its `procs/`, and
  its Stop must never reach them (a move keeps the inode, so a moved folder still stops its run);
* when it is a worker, asks the kernel to TERM it when its parent dies (`PR_SET_PDEATHSIG`),
  and the supervisor asks the same for the launcher, so killing any link ends the links below.

:func:`live` answers "which processes of this run are alive"; :func:`end_all` ends them (TERM,
then KILL after a grace period). Linux only (/proc); elsewhere the lists are empty.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from studio.facts.runfolder import RUN_DIR_ENV, RUN_ID_ENV, RUN_KEY_ENV, RunFolder

_PR_SET_PDEATHSIG = 1
_PROC = Path("/proc")
# How long an empty environment of a recorded process is read again (an exec takes milliseconds).
_SETTLE_S = 2.0


@dataclass(frozen=True)
class ProcRecord:
    pid: int
    start_time: int | None
    role: str
    recorded_at: float = 0.0
    run_id: str | None = None

    def alive(self) -> bool:
        """Alive and the same process that recorded itself (start time rules out pid reuse)."""
        return self.start_time is not None and _stat(self.pid)[:2] == (self.start_time, True)


def _stat(pid: int) -> tuple[int | None, bool, int | None]:
    """(start time in clock ticks since boot, alive and not a zombie, process group)."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None, False, None
    fields = text[text.rfind(")") + 2 :].split()
    # fields[0] is field 3 (state); field 5 is pgrp, field 22 is starttime.
    return int(fields[19]), fields[0] not in ("Z", "X"), int(fields[2])


def start_time(pid: int) -> int | None:
    return _stat(pid)[0]


def is_alive(pid: int) -> bool:
    return _stat(pid)[1]


def record(folder: RunFolder, pid: int, role: str, run_id: str | None = None) -> ProcRecord | None:
    """Write `procs/<role>-<pid>.json`; None when the process is already gone.

    The run id defaults to this process's own (a supervisor recording its launcher)."""
    run_id = run_id or os.environ.get(RUN_ID_ENV)
    rec = ProcRecord(pid, start_time(pid), role, time.time(), run_id)
    if rec.start_time is None:
        return None
    folder.procs.mkdir(exist_ok=True)
    path = folder.procs / f"{role}-{pid}.json"
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(json.dumps(asdict(rec)), encoding="utf-8")
        tmp.replace(path)
    except BaseException:  # a full disk: no half-written record left behind
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return rec


def record_self(folder: RunFolder, role: str) -> ProcRecord | None:
    return record(folder, os.getpid(), role)


def records(folder: RunFolder) -> list[ProcRecord]:
    out = []
    for path in sorted(folder.procs.glob("*.json")) if folder.procs.is_dir() else []:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            out.append(ProcRecord(**data))
        except (OSError, ValueError, TypeError):
            continue
    return out


def role_alive(folder: RunFolder, role: str) -> bool:
    return any(r.alive() for r in records(folder) if r.role == role)


def _environ(pid: int, settle_s: float = 0.0) -> dict[str, str] | None:
    """The studio's entries of a process's environment; None when it cannot be read.

    A process in the middle of `exec` shows an empty environment: the kernel wakes the parent's
    `Popen` (close-on-exec of its error pipe) before it has laid out the new program's
    environment, so a pid read right after `Popen` returns reads as no entries at all (about
    one start in ten on an idle machine, most of them under load). With `settle_s`, an empty
    environment of a live process is read again until it fills in or the time is up."""
    deadline = time.monotonic() + settle_s
    while True:
        try:
            raw = (_PROC / str(pid) / "environ").read_bytes()
        except OSError:
            return None
        if raw or time.monotonic() >= deadline or not is_alive(pid):
            break
        time.sleep(0.005)
    out = {}
    for item in raw.split(b"\0"):
        if item.startswith(b"STUDIO_RUN_"):
            key, _, value = item.decode("utf-8", "replace").partition("=")
            out[key] = value
    return out


def _same_folder(path: str, folder: RunFolder) -> bool:
    try:
        return os.path.samefile(path, folder.path)
    except OSError:
        return False


def env_belongs(environ: dict[str, str], folder: RunFolder, run_id: str | None) -> bool:
    """Whether a process with these studio entries in its environment is one of this run's.

    The folder's identity (device:inode) must match: a copy has another, a move keeps it. The
    run id, where both sides have one, must match too (an inode is reused after a deletion).
    A process from before run ids (no key) must name this very folder."""
    key = environ.get(RUN_KEY_ENV)
    if key is not None:
        if key != folder.identity():
            return False
        theirs = environ.get(RUN_ID_ENV)
        return not (run_id and theirs and theirs != run_id)
    path = environ.get(RUN_DIR_ENV)
    return bool(path) and _same_folder(path, folder)


def belongs(pid: int, folder: RunFolder, run_id: str | None = None) -> bool:
    """Checked before any signal: the live process `pid` carries this run's tags.

    A recorded process was recorded after its `Popen` returned, so it is past its `exec`'s
    point of no return; its environment may still read empty for an instant (see
    :func:`_environ`), and is read again until it shows its tags. Taking an empty environment
    for "ours" once let a copy of a run folder claim the original's just-started process;
    taking it for "not ours" called a run that had just started "killed"."""
    environ = _environ(pid, settle_s=_SETTLE_S)
    if not environ:
        return False
    return env_belongs(environ, folder, run_id)


def folder_run_id(folder: RunFolder) -> str | None:
    return folder.read_status().get("run_id")


def tagged(folder: RunFolder, run_id: str | None = None) -> list[int]:
    """Live processes whose environment names this run folder (descendants included)."""
    if not _PROC.is_dir():
        return []
    found = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        environ = _environ(int(entry.name))
        if (
            environ
            and env_belongs(environ, folder, run_id)
            and (RUN_DIR_ENV in environ or RUN_KEY_ENV in environ)
            and is_alive(int(entry.name))
        ):
            found.append(int(entry.name))
    return found


def live(folder: RunFolder, include_self: bool = False) -> list[int]:
    """Every live process of the run: recorded (start time and tags checked) or tagged.

    A record alone is never enough: the record may be a copy's (see :func:`belongs`)."""
    run_id = folder_run_id(folder)
    recorded = {r.pid for r in records(folder) if r.alive() and belongs(r.pid, folder, run_id)}
    pids = recorded | set(tagged(folder, run_id))
    if not include_self:
        pids.discard(os.getpid())
    return sorted(pids)


def signal_all(folder: RunFolder, sig: int, exclude: set[int] | None = None) -> list[int]:
    """Send `sig` to every live process of the run; return the pids signalled."""
    sent = []
    run_id = folder_run_id(folder)
    for pid in live(folder):
        if (exclude and pid in exclude) or not belongs(pid, folder, run_id):
            continue  # checked again at the signal: never another run's process
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
            sent.append(pid)
    return sent


def wait_gone(
    folder: RunFolder, timeout_s: float, exclude: set[int] | None = None, reap=None
) -> list[int]:
    """Wait until no process of the run lives (but `exclude`); return the survivors."""
    deadline = time.monotonic() + timeout_s
    while True:
        if reap is not None:
            reap()
        left = [p for p in live(folder) if not exclude or p not in exclude]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def end_all(
    folder: RunFolder, grace_s: float, exclude: set[int] | None = None, reap=None
) -> list[int]:
    """TERM every process of the run, KILL what is left after `grace_s`; return survivors."""
    if not signal_all(folder, signal.SIGTERM, exclude):
        return []
    if not wait_gone(folder, grace_s, exclude, reap):
        return []
    signal_all(folder, signal.SIGKILL, exclude)
    return wait_gone(folder, 10.0, exclude, reap)


def set_parent_death_signal(sig: int = signal.SIGTERM) -> bool:
    """Ask the kernel to send `sig` to this process when its parent dies (Linux only)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def die_with_parent() -> None:
    """preexec_fn for a child that must not outlive the process starting it."""
    set_parent_death_signal(signal.SIGTERM)


def signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"
