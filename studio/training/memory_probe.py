"""Measure what a training step really costs in memory, for the estimate's benchmark.

The memory estimate (:mod:`studio.checks.memory`) is only worth showing if it matches what a run
uses, so ``bench/bench_memory_estimate.py`` runs short real fine-tunes with this callback in the
worker (``STUDIO_MEMORY_PROBE=FILE`` in its environment; the entry point adds the callback).

* On CPU it records the worker's resident set at ``on_train_begin`` (model loaded, optimizer not
  yet stepped) after resetting the kernel's high-water mark (``/proc/self/clear_refs`` ``5``), so
  that the peak read at ``on_train_end`` (``VmHWM``) is the peak of training only, not of model
  loading. Where the reset is refused, ``resource.getrusage`` gives the lifetime peak and the
  record says ``hwm_reset: false``.
* On a GPU it records ``torch.cuda.max_memory_allocated`` (weights included, as the estimate's
  ``peak_bytes`` is) and the allocation at ``on_train_begin``.
"""

from __future__ import annotations

import json
import os
import resource
from pathlib import Path

from transformers import TrainerCallback

PROBE_ENV = "STUDIO_MEMORY_PROBE"


def _status_kib(key: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in KiB; None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak() -> bool:
    """Reset this process's peak RSS to its current RSS (Linux >= 4.0); False where refused."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


class MemoryProbe(TrainerCallback):
    """Write ``{baseline_rss, peak_rss, cuda_*}`` (bytes) to ``path`` when training ends."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.record: dict = {}

    def on_train_begin(self, args, state, control, **kwargs):
        import torch

        self.record["hwm_reset"] = reset_peak()
        self.record["baseline_rss"] = (_status_kib("VmRSS") or 0) * 1024
        if torch.cuda.is_available():
            self.record["cuda_begin_allocated"] = torch.cuda.memory_allocated()

    def on_train_end(self, args, state, control, **kwargs):
        import torch

        hwm = _status_kib("VmHWM")
        if hwm is None:  # not Linux: ru_maxrss is KiB on Linux, bytes on macOS
            hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self.record["peak_rss"] = hwm * 1024
        self.record["steps"] = state.global_step
        if torch.cuda.is_available():
            self.record["cuda_max_allocated"] = torch.cuda.max_memory_allocated()
        if state.is_world_process_zero:
            self.path.write_text(json.dumps(self.record), encoding="utf-8")


def probe_from_env(environ=os.environ) -> MemoryProbe | None:
    """The bench names the output file through the environment; unset, nothing is measured."""
    path = environ.get(PROBE_ENV)
    return MemoryProbe(path) if path else None
