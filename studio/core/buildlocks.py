"""DeepSpeed's JIT op build locks: found, told live from stale, cleared when the user agrees.

torch builds a DeepSpeed op (`fused_adam`, `cpu_adam`, the CPU accelerator's
`deepspeed_shm_comm`, ...) under `torch.utils.file_baton.FileBaton`: the builder creates
`<extensions dir>/<op>/lock` with `O_EXCL` and **keeps it open** until it removes it; every
other process polls for the file to go away, forever, printing nothing. A build that is killed
(a Stop during the first minute of a fresh install) leaves the file, and from then on every
DeepSpeed run hangs silently. Because the builder holds the file open, a lock with no process
holding an open descriptor on it (read from `/proc/*/fd`) has no live builder: it is stale.

This module finds those locks for pre-flight (:func:`check_build_locks`), clears them when
the user agrees (:func:`clear_stale_locks`: a button, `--clear-stale-locks`), and, inside a
worker (:func:`watch_builds`), turns torch's silent wait into a reported phase ("waiting for a
build lock ... held by live pid P") or, for a stale lock, an immediate error naming the lock
and the fix. Locks this run's own builds took are listed in the run folder, so the supervisor
removes them when a Stop kills the build (see :func:`remove_own_stale_locks`).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from studio.facts.problems import ERROR, WARNING, Problem

EXTENSIONS_ENV = "TORCH_EXTENSIONS_DIR"
LOCK_NAME = "lock"
# A lock file is created and opened in one system call, but released by close-then-remove:
# a lock seen without a holder is only called stale once it is this old and still unheld.
STALE_AFTER_S = 2.0
FIX = (
    "Clear it: `python -m studio check CONFIG --clear-stale-locks` (or `train ... "
    "--clear-stale-locks`), the Train tab's 'Clear stale build locks' button, or delete the "
    "file. No process holds it, so the build that took it is gone."
)


class StaleBuildLockError(RuntimeError):
    """Raised in a worker instead of waiting forever on a lock nobody holds."""


@dataclass(frozen=True)
class BuildLock:
    path: Path
    holders: tuple[int, ...]
    age_s: float

    @property
    def op(self) -> str:
        return self.path.parent.name

    @property
    def stale(self) -> bool:
        return not self.holders and self.age_s >= STALE_AFTER_S

    def describe(self) -> str:
        if self.holders:
            return f"{self.path} (op {self.op}), held by live pid {self.holders[0]}"
        return f"{self.path} (op {self.op}), stale: no live process holds it"


def extensions_root(environ=os.environ) -> Path:
    """Where torch builds JIT extensions (its own rule, without importing torch)."""
    if environ.get(EXTENSIONS_ENV):
        return Path(environ[EXTENSIONS_ENV])
    cache = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "torch_extensions"


def lock_files(root: Path) -> list[Path]:
    """`<root>/<op>/lock` (TORCH_EXTENSIONS_DIR) and `<root>/<py>_<device>/<op>/lock`."""
    if not root.is_dir():
        return []
    return sorted({*root.glob(f"*/{LOCK_NAME}"), *root.glob(f"*/*/{LOCK_NAME}")})


def holders(paths: list[Path]) -> dict[Path, tuple[int, ...]]:
    """For each lock file, the pids holding an open descriptor on it (from /proc/*/fd)."""
    wanted = {str(p.resolve()): p for p in paths}
    found: dict[Path, list[int]] = {p: [] for p in paths}
    proc = Path("/proc")
    if not wanted or not proc.is_dir():
        return {p: () for p in paths}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = os.listdir(entry / "fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(entry / "fd" / fd)
            except OSError:
                continue
            if target in wanted:
                found[wanted[target]].append(int(entry.name))
    return {p: tuple(sorted(set(v))) for p, v in found.items()}


def inspect(paths: list[Path]) -> list[BuildLock]:
    held = holders(paths)
    now = time.time()
    out = []
    for path in paths:
        try:
            age = now - path.stat().st_mtime
        except OSError:
            continue  # released meanwhile
        out.append(BuildLock(path, held.get(path, ()), age))
    return out


def find_locks(environ=os.environ) -> list[BuildLock]:
    return inspect(lock_files(extensions_root(environ)))


def stale_locks(environ=os.environ) -> list[BuildLock]:
    return [lock for lock in find_locks(environ) if lock.stale]


def clear_stale_locks(environ=os.environ) -> list[Path]:
    """Remove every stale lock (checked again just before); return the files removed."""
    removed = []
    for lock in stale_locks(environ):
        again = inspect([lock.path])
        if again and again[0].stale:
            try:
                lock.path.unlink()
                removed.append(lock.path)
            except FileNotFoundError:
                continue
    return removed


# --------------------------------------------------------------------------- pre-flight


def ops_for(config, hw=None) -> set[str]:
    """The ops a DeepSpeed run of this config builds (and so waits on) on this machine."""
    from studio.core import deepspeed_config
    from studio.facts.hardware import detect

    hw = hw or detect()
    if config.deepspeed is None:
        return set()
    try:
        ds = deepspeed_config.resolve(config.deepspeed) or {}
    except (OSError, ValueError):
        ds = {}
    ops = set()
    if not hw.gpus:
        ops.add("deepspeed_shm_comm")  # the CPU accelerator's communication op
    zero = ds.get("zero_optimization") or {}
    offload = (zero.get("offload_optimizer") or {}).get("device") in ("cpu", "nvme")
    if ds.get("optimizer"):
        ops.add("cpu_adam" if offload else "fused_adam")
    return ops


def check_build_locks(config, hw=None, schema=None) -> list[Problem]:
    """Pre-flight rule: a stale lock on an op this run builds is an error, others a warning."""
    if config.deepspeed is None:
        return []
    locks = find_locks()
    if not locks:
        return []
    needed = ops_for(config, hw)
    out = []
    for lock in locks:
        if lock.stale:
            blocks = lock.op in needed
            out.append(
                Problem(
                    ERROR if blocks else WARNING,
                    f"stale DeepSpeed build lock {lock.path} (op {lock.op}): no live process "
                    "holds it, so "
                    + (
                        "this run would wait on it forever."
                        if blocks
                        else "any run that builds this op would wait on it forever."
                    ),
                    FIX,
                    field="deepspeed",
                    file=str(lock.path),
                    code="stale_build_lock",
                )
            )
        elif lock.op in needed:
            out.append(
                Problem(
                    WARNING,
                    f"DeepSpeed op {lock.op} is being built by live pid {lock.holders[0]} "
                    f"({lock.path}); this run will wait for that build to finish.",
                    "Nothing to do; the run shows 'waiting for a build lock' meanwhile.",
                    field="deepspeed",
                    file=str(lock.path),
                    code="live_build_lock",
                )
            )
    return out


# --------------------------------------------------------------------------- in a worker


def remove_own_stale_locks(folder) -> list[Path]:
    """Locks this run's builds took and left (its builder is dead): removed, as its own mess."""
    try:
        listed = folder.build_locks.read_text(encoding="utf-8").split("\n")
    except OSError:
        return []
    paths = [Path(p) for p in dict.fromkeys(listed) if p and Path(p).exists()]
    removed = []
    for lock in inspect(paths):
        if not lock.holders:
            try:
                lock.path.unlink()
                removed.append(lock.path)
            except OSError:
                continue
    return removed


def watch_builds(folder) -> None:
    """Inside a worker: report op builds and lock waits as phases; fail at once on a stale lock.

    Patches `torch.utils.cpp_extension.load` (DeepSpeed's `jit_load` imports it at call time)
    and torch's `FileBaton`, whose `wait` would otherwise poll a dead lock forever.
    """
    import torch.utils.cpp_extension as cpp_extension
    from torch.utils.file_baton import FileBaton

    from studio.facts.runfolder import Phase

    original_load = cpp_extension.load
    original_acquire = FileBaton.try_acquire

    def load(name, *args, **kwargs):
        folder.set_phase(Phase.BUILDING_OP, name)
        try:
            return original_load(name, *args, **kwargs)
        finally:
            folder.set_phase(Phase.STARTING_DEEPSPEED)

    def try_acquire(self):
        acquired = original_acquire(self)
        if acquired:
            try:
                with open(folder.build_locks, "a", encoding="utf-8") as fh:
                    fh.write(str(Path(self.lock_file_path).resolve()) + "\n")
            except OSError:
                pass
        return acquired

    def wait(self):
        path = Path(self.lock_file_path)
        unheld_since = None
        reported = None
        while path.exists():
            found = inspect([path])
            if not found:
                break
            lock = found[0]
            if lock.holders:
                unheld_since = None
                if reported != lock.holders:
                    reported = lock.holders
                    folder.set_phase(Phase.WAITING_LOCK, lock.describe())
                    print(f"[studio] waiting for build lock {lock.describe()}", file=sys.stderr)
            else:
                unheld_since = unheld_since or time.monotonic()
                if lock.stale and time.monotonic() - unheld_since >= STALE_AFTER_S:
                    folder.set_phase(Phase.WAITING_LOCK, lock.describe())
                    raise StaleBuildLockError(
                        f"stale DeepSpeed build lock {lock.path} (op {lock.op}): no live "
                        f"process holds it, so this run would wait forever. {FIX}"
                    )
            time.sleep(self.wait_seconds if self.wait_seconds else 0.2)

    cpp_extension.load = load
    FileBaton.try_acquire = try_acquire
    FileBaton.wait = wait
