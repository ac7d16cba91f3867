"""The run one notebook studio watches: start, stop, resume, and the once-a-second refresh.

Why its own object: a notebook cell blocks the kernel, so the chart must grow from a
background thread while the user reads or clicks Stop; and tests (and nbclient, which has no
frontend) must drive the very same update by calling :meth:`RunSession.refresh`. Everything
here is per instance (no module globals): two studios in one kernel watch two runs.

The run itself is the core's (:mod:`studio.training.runs`): it lives on disk, in its own process
group, and outlives the kernel. The watcher (:class:`studio.training.watch.RunWatcher`) folds only new
metrics lines into a chart series.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from studio.core.config import StudioConfig
from studio.facts.runfolder import RunState
from studio.training import runs
from studio.training.watch import RunWatcher

REFRESH_S = 1.0


class RunSession:
    """One watched run and its refresh loop; `on_update(session, added)` redraws a face."""

    def __init__(
        self,
        runs_dir: Path,
        base_dir: Path,
        on_update: Callable[[RunSession, int], None] | None = None,
        interval_s: float = REFRESH_S,
    ):
        self.runs_dir = Path(runs_dir)
        self.base_dir = Path(base_dir)
        self.on_update = on_update
        self.interval_s = interval_s
        self.watcher: RunWatcher | None = None
        self.status: dict[str, Any] = {}
        self.error: str | None = None  # the last failure of the refresh loop itself
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._halt = threading.Event()

    @property
    def run_dir(self) -> Path | None:
        return self.watcher.run_dir if self.watcher else None

    @property
    def series(self):
        return self.watcher.series if self.watcher else None

    # -- lifecycle
    def start(self, config: StudioConfig, name: str | None = None) -> Path:
        """Pre-flight, create the run folder, launch it; raises runs.PreflightFailed."""
        run_dir = runs.start(config, self.runs_dir, self.base_dir, name=name)
        self.watch(run_dir)
        return run_dir

    def watch(self, run_dir: Path, background: bool = True) -> Path:
        """Follow a run from its first logged step (a new watcher reads its metrics anew)."""
        with self._lock:
            if self.watcher is None or self.watcher.run_dir.resolve() != Path(run_dir).resolve():
                self.watcher = RunWatcher(Path(run_dir))
        self.refresh()
        if background:
            self.follow()
        return self.watcher.run_dir

    def stop(self) -> dict[str, Any]:
        """Stop the watched run: TERM to its process group, KILL after the core's grace."""
        run_dir = self._require()
        status = runs.stop(run_dir)
        self.refresh()
        return status

    def resume(self, run_dir: Path | None = None) -> Path:
        """Continue a stopped or failed run from its last checkpoint, in the same folder.

        The same watcher keeps reading the metrics file where it was, so the chart goes on
        from the checkpoint's step (the series drops the steps logged after it).
        """
        target = Path(run_dir) if run_dir is not None else self._require()
        runs.resume(target)
        return self.watch(target)

    # -- the refresh loop
    def refresh(self) -> int:
        """Fold in new metrics lines and re-read the status; return how many steps came."""
        with self._lock:
            if self.watcher is None:
                return 0
            added = self.watcher.poll()
            self.status = runs.refresh(self.watcher.run_dir)
            if self.on_update is not None:
                self.on_update(self, added)
            return added

    def follow(self) -> None:
        """Refresh once a second in a daemon thread until the run ends (or :meth:`halt`)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._halt.clear()
        self._thread = threading.Thread(target=self._loop, name="bge-studio-refresh", daemon=True)
        self._thread.start()

    def halt(self, timeout_s: float = 5.0) -> None:
        """End the refresh thread (the run goes on; it lives on disk)."""
        self._halt.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)
        self._thread = None

    @property
    def following(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._halt.wait(self.interval_s):
            try:
                self.refresh()
                self.error = None
            except Exception as exc:  # noqa: BLE001 - shown in the panel; the loop goes on
                self.error = f"{type(exc).__name__}: {exc}"
            if self.status.get("state") not in (*runs.ACTIVE_STATES, None):
                return

    # -- waiting (what a cell does instead of watching)
    def wait(self, timeout_s: float | None = None, poll_s: float = 1.0) -> dict[str, Any]:
        """Block until the run ends, refreshing the chart meanwhile; return its status."""
        self._require()
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            self.refresh()
            if self.status.get("state") not in runs.ACTIVE_STATES:
                return self.status
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"run {self.run_dir.name} still running after {timeout_s}s")
            time.sleep(poll_s)

    def wait_until(
        self,
        done: Callable[[], bool],
        what: str,
        timeout_s: float | None = 600,
        poll_s: float = 0.5,
    ) -> None:
        """Block until `done()`; raise if the run ends first (with its error) or on timeout."""
        self._require()
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            self.refresh()
            if done():
                return
            state = self.status.get("state")
            if state != RunState.RUNNING:
                error = self.status.get("error")
                raise RuntimeError(
                    f"run {self.run_dir.name} is {state} before {what}"
                    + (f": {error}" if error else "")
                )
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"no {what} in run {self.run_dir.name} after {timeout_s}s")
            time.sleep(poll_s)

    def _require(self) -> Path:
        if self.watcher is None:
            raise RuntimeError("no run is being watched: start one, or watch one from the runs")
        return self.watcher.run_dir
