"""Health at the end of training: what the run produced, checked whatever ``logging_steps`` was.

The loss check (:mod:`studio.training.loss_health`) sees logged steps only. A run of 6 steps at
``learning_rate`` 1e6 with HF's default ``logging_steps`` (500) logs none: it used to exit 0,
"succeeded", with ``"train_loss": NaN`` in its summary and 22,565,376 of the model's 22,713,216
saved weights NaN. So when the trainer has saved the model, rank 0 checks what was produced:

* **the saved weights** (``model.safetensors``, its shards ``model-0000k-of-0000n``, a LoRA
  ``adapter_model``, the sparse and ColBERT heads (``colbert_linear.pt``, ``sparse_linear.pt``), a ``merged_model/``),
  read one tensor at a time (``safetensors.safe_open``: memory-mapped, so a large model costs
  the seconds its bytes take to read, never its size in memory): any NaN/inf fails the run;
* **``train_loss``**, the Trainer's mean loss over the run: NaN/inf fails it;
* **the steps trained**: 0 (``num_train_epochs`` 0, ``max_steps`` 0, fewer rows than one
  batch) fails it, since the "trained" model is the base model (a LoRA ``only_merge_lora_model``
  run trains nothing on purpose and is left alone).

A failure raises :class:`TrainingOutcomeError` after the model is saved, so the worker exits
non-zero and its one-line message becomes the run's ``error`` in status.json, in every way of
running (a studio run through :mod:`studio.training.worker`, a node script or a plain torchrun through
:mod:`studio.training.train_entry`). A healthy end prints one ``[studio] end check:`` line to the log.
Where no weights file is found, that is said and nothing fails (a format this does not know).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.training.loss_health import likely_causes

WEIGHT_PATTERNS = (
    "model.safetensors",
    "model-*-of-*.safetensors",
    "adapter_model.safetensors",
    "pytorch_model.bin",
    "pytorch_model-*-of-*.bin",
    "adapter_model.bin",
    "colbert_linear.pt",
    "sparse_linear.pt",
)
MERGED_DIR = "merged_model"  # FlagEmbedding's save_merged_lora_model writes here


class TrainingOutcomeError(RuntimeError):
    """Raised after training when what it produced is unusable (NaN weights, 0 steps...)."""


@dataclass
class WeightCensus:
    """Finite and non-finite weights of the saved model's files."""

    files: list[Path] = field(default_factory=list)
    tensors: int = 0
    weights: int = 0
    nan: int = 0
    inf: int = 0
    bad_tensors: int = 0
    seconds: float = 0.0
    unread: list[str] = field(default_factory=list)  # "name (error)" of files not readable

    def add(self, tensor: Any) -> None:
        self.tensors += 1
        self.weights += tensor.numel()
        if not tensor.is_floating_point() or tensor.numel() == 0:
            return
        nan, inf = non_finite(tensor)
        if nan or inf:
            self.nan += nan
            self.inf += inf
            self.bad_tensors += 1

    def where(self, root: Path) -> str:
        names = [str(f.relative_to(root)) if f.is_relative_to(root) else str(f) for f in self.files]
        return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


_EXPONENT_BITS = {"bfloat16": (0x7F80, 0x007F)}  # a view as int16: exponent, mantissa masks


def non_finite(tensor: Any) -> tuple[int, int]:
    """(NaN count, inf count) of a float tensor on the CPU.

    numpy, one thread: torch's elementwise ops spread over every core, and on a busy machine
    its threads wait on each other (MiniLM's 22.7M weights: 2.7 s with 2 torch threads under
    load, 0.03 s in numpy). bfloat16, which numpy lacks, is read through its bits.
    """
    import numpy as np
    import torch

    name = str(tensor.dtype).removeprefix("torch.")
    if name in _EXPONENT_BITS:
        exponent, mantissa = _EXPONENT_BITS[name]
        bits = tensor.contiguous().view(torch.int16).numpy().ravel()
        special = (bits & exponent) == exponent
        if not special.any():
            return 0, 0
        nan = int(np.count_nonzero(special & ((bits & mantissa) != 0)))
        return nan, int(np.count_nonzero(special)) - nan
    try:
        array = tensor.contiguous().numpy().ravel()
    except TypeError:  # a dtype numpy lacks (float8...): torch, slower on a busy machine
        finite = int(torch.isfinite(tensor).sum())
        nan = int(torch.isnan(tensor).sum())
        return nan, tensor.numel() - finite - nan
    if np.isfinite(array).all():
        return 0, 0
    nan = int(np.count_nonzero(np.isnan(array)))
    return nan, int(np.count_nonzero(np.isinf(array)))


def weight_files(output_dir: str | Path) -> list[Path]:
    """The final model's weight files in ``output_dir`` (not its checkpoints), and a merged
    LoRA model's; sorted, each once."""
    found: set[Path] = set()
    for folder in (Path(output_dir), Path(output_dir) / MERGED_DIR):
        if folder.is_dir():
            for pattern in WEIGHT_PATTERNS:
                found.update(p for p in folder.glob(pattern) if p.is_file())
    return sorted(found)


def census(paths: list[Path]) -> WeightCensus:
    """Count NaN/inf weights tensor by tensor (safetensors memory-mapped; .bin/.pt with mmap).
    A file that cannot be read is listed in ``unread``, not counted."""
    out = WeightCensus()
    start = time.perf_counter()
    for path in paths:
        try:
            _read_file(path, out)
        except Exception as error:  # noqa: BLE001 - cannot tell: say so, fail nothing
            out.unread.append(f"{path.name} ({type(error).__name__}: {error})")
            continue
        out.files.append(path)
    out.seconds = time.perf_counter() - start
    return out


def _read_file(path: Path, out: WeightCensus) -> None:
    import torch
    from safetensors import safe_open

    if path.suffix == ".safetensors":
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            for name in handle.keys():  # noqa: SIM118 - safe_open is no dict
                out.add(handle.get_tensor(name))
        return
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # an old (non-zip) file cannot be memory-mapped
        state = torch.load(path, map_location="cpu", weights_only=True)
    for tensor in state.values() if isinstance(state, dict) else ():
        if isinstance(tensor, torch.Tensor):
            out.add(tensor)


def _not_finite(value: Any) -> bool:
    return isinstance(value, int | float) and not math.isfinite(value)


def train_loss_of(log_history: list[dict[str, Any]]) -> float | None:
    """The Trainer's ``train_loss`` (its last summary log), None when it logged none."""
    for entry in reversed(log_history or []):
        if "train_loss" in entry:
            return entry["train_loss"]
    return None


def reason(
    args: Any,
    global_step: int,
    max_steps: int | None,
    train_loss: float | None,
    weights: WeightCensus,
    output_dir: Path,
    trains: bool = True,
) -> str | None:
    """Why this run's result is unusable, in one line with the likely cause and the fix; None
    when it is healthy."""
    if trains and global_step == 0:  # nothing trained: weights and loss say nothing
        return (
            f"0 training steps ran (max_steps {max_steps}, num_train_epochs "
            f"{getattr(args, 'num_train_epochs', '?')}): the saved model is the base model, "
            "untrained. Set num_train_epochs to 1 or more (or max_steps above 0), and give the "
            "run at least one batch of rows."
        )
    found = []
    if weights.nan or weights.inf:
        counts = " and ".join(
            f"{n:,} {kind}" for n, kind in ((weights.nan, "NaN"), (weights.inf, "inf")) if n
        )
        found.append(
            f"the saved model has {counts} weights in {weights.bad_tensors} of "
            f"{weights.tensors} tensors ({weights.where(output_dir)}): training diverged and "
            "the model is unusable"
        )
    if _not_finite(train_loss):
        found.append(f"train_loss is {train_loss} (NaN/inf): a training step's loss was not finite")
    if not found:
        return None
    text = "; ".join(found) + f". Likely cause: {likely_causes(args)[0]}."
    logging_steps = getattr(args, "logging_steps", None)
    if isinstance(logging_steps, int | float) and logging_steps > global_step:
        text += (
            f" The loss check saw no step (logging_steps {logging_steps:g} > the {global_step} "
            "steps trained): a lower logging_steps stops such a run at the step it goes bad."
        )
    return text


def check(trainer: Any, trains: bool = True) -> str:
    """Check what ``trainer`` produced (after ``save_model``); raise
    :class:`TrainingOutcomeError` when it is unusable, else return the end check's line.
    ``trains`` is False for a run that trains nothing on purpose (``only_merge_lora_model``)."""
    args, state = trainer.args, trainer.state
    output_dir = Path(args.output_dir)
    weights = census(weight_files(output_dir))
    train_loss = train_loss_of(state.log_history)
    why = reason(args, state.global_step, state.max_steps, train_loss, weights, output_dir, trains)
    if why:
        raise TrainingOutcomeError(why)
    loss = (
        f"train_loss {train_loss:.4f}" if isinstance(train_loss, int | float) else "no train_loss"
    )
    unread = (
        f"; not readable, so not checked: {', '.join(weights.unread)}" if weights.unread else ""
    )
    if not weights.files:
        return (
            f"end check: {state.global_step} steps trained, {loss}; no weights file found in "
            f"{output_dir} to check{unread}"
        )
    return (
        f"end check: {state.global_step} steps trained, {loss}, all {weights.weights:,} weights "
        f"finite in {weights.tensors} tensors ({weights.where(output_dir)}, read in "
        f"{weights.seconds:.2f} s){unread}"
    )
