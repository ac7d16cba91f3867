"""What the machine can run on: GPU count, names, memory, bf16 support — without torch.

Asked through `nvidia-smi` so that the UI and the pre-flight checks stay fast (importing
torch costs seconds); `CUDA_VISIBLE_DEVICES` is honoured as torch would honour it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from functools import lru_cache


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    memory_mib: int
    compute_capability: float = 0.0

    @property
    def supports_bf16(self) -> bool:
        return self.compute_capability >= 8.0


@dataclass(frozen=True)
class Hardware:
    gpus: tuple[Gpu, ...] = field(default_factory=tuple)
    cpu_count: int = 1

    @property
    def gpu_count(self) -> int:
        return len(self.gpus)

    def describe(self) -> str:
        if not self.gpus:
            return f"CPU only ({self.cpu_count} cores)"
        return "; ".join(
            f"GPU {g.index}: {g.name}, {g.memory_mib / 1024:.0f} GiB" for g in self.gpus
        )


def _visible(indices: list[int]) -> list[int]:
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is None:
        return indices
    chosen = [int(x) for x in env.split(",") if x.strip().isdigit()]
    return [i for i in chosen if i in indices]


@lru_cache(maxsize=1)
def detect() -> Hardware:
    cpus = os.cpu_count() or 1
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return Hardware((), cpus)
    try:
        out = subprocess.run(
            [
                smi,
                "--query-gpu=index,name,memory.total,compute_cap",
                "--format=csv,noheader,nounits",
            ],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return Hardware((), cpus)
    gpus = {}
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 3 or not parts[0].isdigit():
            continue
        try:
            cc = float(parts[3]) if len(parts) > 3 else 0.0
        except ValueError:
            cc = 0.0
        gpus[int(parts[0])] = Gpu(int(parts[0]), parts[1], int(float(parts[2])), cc)
    visible = _visible(sorted(gpus))
    return Hardware(tuple(gpus[i] for i in visible), cpus)
