"""Will it fit: the peak memory of a fine-tune, per device, before any GPU hour is spent.

One function, :func:`estimate`, returns the parts (weights, gradients, optimizer states,
activations, overhead), the peak, the device's memory, the headroom and, when it does not fit,
the cheapest changes that make it fit, each re-estimated. The CLI (``python -m studio estimate``),
the web Launch/Train tabs and the notebook only render that object.

Sizes come from the model's ``config.json`` (hidden size, layers, heads, FFN width, vocabulary)
and, when present, the ``model.safetensors`` header (the exact parameter count): no weights are
loaded and torch is imported only to ask for the GPU's memory.

The model, and what it was calibrated against (``bench/bench_memory_estimate.py`` runs real
fine-tunes of the bundled MiniLM and compares; see the README for the table):

* **weights, gradients, optimizer** (per device): Adam keeps two fp32 moments; mixed precision
  (fp16/bf16) adds an fp32 master copy under DeepSpeed and half-precision working weights and
  gradients. ZeRO-1 shards the optimizer states over the data-parallel processes, ZeRO-2 also the
  gradients, ZeRO-3 also the weights; ``offload_optimizer``/``offload_param`` move them to CPU
  memory (counted there, not on the GPU).
* **activations**: every sequence in a step is encoded at once: ``batch`` queries of
  ``query_max_len`` tokens and ``batch × train_group_size`` passages of ``passage_max_len``
  tokens. The collator pads to the longest text in the batch, so the estimate is the worst case
  (every text at its max length). Per encoder layer and token, a BERT layer keeps for backward
  about ``ACT_HIDDEN`` hidden-size vectors, ``ACT_FFN`` FFN-width vectors and, per head,
  ``ACT_ATTN`` attention-score rows of the sequence length (the attention probabilities, their
  dropout mask and the softmax's gradient at the start of backward). Gradient checkpointing keeps
  only each layer's input, plus about two layers' activations while one is recomputed. Cross-device negatives add the
  gathered embeddings and the full score matrix.
* **overhead**: a fixed working set that appears with the first step (allocator caches, kernels'
  workspaces, the optimizer's temporaries: ``OVERHEAD_PER_PARAM`` bytes per parameter).
* **on a GPU** (``torch.cuda.max_memory_allocated`` of real runs on an H100): the caching
  allocator frees activations during backward and the Trainer sets gradients to None after each
  step, so the peak is weights + optimizer + the larger of (activations) and (gradients + the
  optimizer step's temporaries); the activations are ``GPU_ACT_SCALE`` of the CPU model's.
* **what nvidia-smi shows** (``nvidia_smi_bytes``, GPU only): more than the peak above, which is
  what tensors hold (``max_memory_allocated``). PyTorch's caching allocator keeps freed blocks
  reserved for reuse, and their size classes and fragmentation leave part of what it reserves
  unused at the peak: ``ALLOCATOR_RESERVE`` of the peak. Each process also holds a CUDA context
  (the driver's state, the kernels of torch/cuBLAS/cuDNN loaded lazily, cuBLAS workspaces, NCCL's
  buffers under torchrun): ``CUDA_CONTEXT_BYTES``, not reclaimable and not in any torch counter.
  Both come from one measured pair on an H200 (torch 2.11, CUDA 13): base-size fp16 ZeRO-1,
  ``max_memory_allocated`` 23.33 GB, nvidia-smi 26.88 GB. ``bench/bench_gpu.py`` then measured two
  more (MiniLM size, bench/results/gpu-h200.md): without DeepSpeed 14.68 -> 16.41 GB (the terms
  give 1.045x), ZeRO-1 11.78 -> 14.74 GB (0.94x: DeepSpeed's NCCL buffers sit outside torch's
  counters, so its fixed part is larger). The figure is ``peak × (1 + ALLOCATOR_RESERVE) +
  CUDA_CONTEXT_BYTES``, so it carries the peak's own error: where the estimate is high (base
  ZeRO-1: 1.18x of what was allocated) the figure is high too, where it is low (MiniLM without
  DeepSpeed, fp16/bf16 autocast: 0.92x) it is low. The reserve likely grows when batch shapes
  vary: the recorded fp16 run on the example data (shorter texts, padded per batch) showed
  17.16 GB against this bench's 16.41 GB at the longest texts (its allocation was not recorded);
  it also moves with ``PYTORCH_CUDA_ALLOC_CONF``. The allocator gives reserved blocks back before
  it fails an allocation, so ``fits`` stays on the peak.
"""

from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from studio.core.config import StudioConfig, base_of, resolve_model

GIB = 1024**3
MIB = 1024**2

# Calibrated against bench/bench_memory_estimate.py (bundled MiniLM, CPU, fp32, torch AdamW).
ACT_HIDDEN = 17.6  # hidden-size vectors kept per token per layer (fp32 on CPU)
ACT_FFN = 2.2  # FFN-width vectors kept per token per layer
ACT_ATTN = 2.75  # attention-score rows (length L) kept per token per head per layer
ACT_EMBED = 4.4  # hidden-size vectors per token for embeddings and pooling
OVERHEAD_PER_PARAM = 4.0  # bytes per parameter: optimizer temporaries, allocator slack
OVERHEAD_FIXED = 60 * MIB  # kernels' workspaces and caches that come with the first step
CHECKPOINT_LAYER_INPUTS = 1.0  # hidden-size vectors per token per layer with checkpointing
CHECKPOINT_LIVE_LAYERS = 2.0  # layers' worth of activations alive while one is recomputed
# On a GPU (torch.cuda.max_memory_allocated of real runs on an H100, bench_memory_estimate.py):
# the caching allocator frees activations as backward goes, and the gradients are set to None
# after each step, so the two peaks never meet. The activations the CPU model counts come to
# GPU_ACT_SCALE of that (SDPA keeps no score matrix; dropout masks are bytes), and the optimizer
# step needs GPU_STEP_TEMP_PER_PARAM bytes per parameter beside the gradients (foreach Adam).
GPU_ACT_SCALE = 0.78
GPU_STEP_TEMP_PER_PARAM = 5.0
# What nvidia-smi shows beside the peak (see the module's docstring): an H200, torch 2.11/CUDA 13.
CUDA_CONTEXT_BYTES = 600 * MIB  # driver context, loaded kernels, cuBLAS workspace, NCCL buffers
ALLOCATOR_RESERVE = 0.125  # reserved but unused by tensors at the peak, a fraction of the peak
# The estimate's own error, as a fraction of the peak: the largest shortfall measured is the H200
# bench's MiniLM without DeepSpeed (estimate 13.45 GB, max_memory_allocated 14.68 GB: 9% more).
# Headroom under this is no "fits": the run may still run out of memory (see Estimate.tight).
ESTIMATE_MARGIN = 0.10


@dataclass(frozen=True)
class ModelShape:
    """What the estimate needs from a model's config.json (and its weights' header)."""

    params: int
    hidden: int
    layers: int
    heads: int
    intermediate: int
    source: str  # where the parameter count came from


@dataclass(frozen=True)
class Change:
    """One change to the config that makes it fit, with the peak it gives."""

    label: str  # what to change, in words
    settings: dict[str, Any]  # flag or section values to set
    peak_bytes: int
    fits: bool


@dataclass
class Estimate:
    """The answer to "will it fit": parts in bytes per device, and what to change if not."""

    parts: dict[str, int]
    peak_bytes: int
    cpu_bytes: int  # host memory for offloaded states (0 without offload)
    device: str
    device_bytes: int | None
    headroom_bytes: int | None
    fits: bool | None
    shape: ModelShape
    inputs: dict[str, Any]
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # On a GPU, what nvidia-smi will show for the process: the peak + the caching allocator's
    # reserve + the CUDA context (None on a CPU).
    nvidia_smi_bytes: int | None = None
    # Fits by less than the estimate's error (ESTIMATE_MARGIN of the peak): "may not fit".
    tight: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        """A plain-text rendering every face can print or show as is."""
        out = [
            f"Peak per device: {fmt_bytes(self.peak_bytes)} on {self.device}"
            + (f" ({fmt_bytes(self.device_bytes)})" if self.device_bytes else ""),
        ]
        if self.nvidia_smi_bytes is not None:
            out.append(nvidia_smi_line(self))
        for name, value in self.parts.items():
            out.append(f"  {name:<12} {fmt_bytes(value):>10}")
        if self.cpu_bytes:
            out.append(f"  offloaded to CPU memory: {fmt_bytes(self.cpu_bytes)}")
        if self.headroom_bytes is not None:
            out.append(f"Headroom: {fmt_bytes(self.headroom_bytes)} ({self.verdict()})")
        if self.changes:
            out.append("Cheapest changes that make it fit with room to spare:")
            out += [f"  - {c.label}: {fmt_bytes(c.peak_bytes)}" for c in self.changes]
        out += [f"Note: {n}" for n in self.notes]
        return out

    def verdict(self) -> str:
        """ "fits", "may not fit" (within the estimate's error) or "does NOT fit"."""
        if self.tight:
            return (
                f"may not fit: less than the estimate's error of {ESTIMATE_MARGIN:.0%} "
                "(real peaks have measured up to 9% above it)"
            )
        return "fits" if self.fits else "does NOT fit"


def nvidia_smi_line(est: Estimate) -> str:
    """The sentence every face shows under the peak on a GPU."""
    extra = (est.nvidia_smi_bytes or 0) - est.peak_bytes
    return (
        f"nvidia-smi will show about {fmt_bytes(est.nvidia_smi_bytes)}: the peak + "
        f"{fmt_bytes(extra)} (the caching allocator's reserve, ~{ALLOCATOR_RESERVE:.0%} of the "
        f"peak, and the CUDA context, ~{fmt_bytes(CUDA_CONTEXT_BYTES)})"
    )


def nvidia_smi_bytes(peak_bytes: float) -> int:
    """What nvidia-smi shows for a process whose tensors peak at ``peak_bytes`` on a GPU."""
    return int(peak_bytes * (1 + ALLOCATOR_RESERVE) + CUDA_CONTEXT_BYTES)


def fmt_bytes(value: int | float | None) -> str:
    if value is None:
        return "?"
    if abs(value) >= GIB:
        return f"{value / GIB:.2f} GiB"
    return f"{value / MIB:.0f} MiB"


# --------------------------------------------------------------------------- the model's size


def _safetensors_params(path: Path) -> int | None:
    """Parameter count from a safetensors header (8-byte length + JSON), no tensor read."""
    try:
        with path.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(length))
    except (OSError, ValueError, struct.error):
        return None
    total = 0
    for name, info in header.items():
        if name != "__metadata__":
            total += math.prod(info.get("shape", [])) if info.get("shape") else 1
    return total


def model_shape(model: str, base_dir: str | Path = ".") -> ModelShape:
    """Read the sizes from ``config.json``; a hub id that is not on disk cannot be read offline."""
    folder = Path(resolve_model(model, Path(base_dir).resolve()))
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(
            f"{config_path}: no config.json, so the model's size is unknown. Point "
            "model_name_or_path at a downloaded model folder to estimate its memory."
        )
    cfg = json.loads(config_path.read_text(encoding="utf-8"))
    hidden = int(cfg.get("hidden_size") or cfg.get("d_model") or cfg["dim"])
    layers = int(cfg.get("num_hidden_layers") or cfg.get("n_layers") or cfg["num_layers"])
    heads = int(cfg.get("num_attention_heads") or cfg.get("n_heads") or 1)
    inter = int(cfg.get("intermediate_size") or cfg.get("hidden_dim") or 4 * hidden)
    counted = _safetensors_params(folder / "model.safetensors")
    if counted:
        return ModelShape(counted, hidden, layers, heads, inter, "model.safetensors header")
    vocab = int(cfg.get("vocab_size", 30522))
    positions = int(cfg.get("max_position_embeddings", 512))
    per_layer = 4 * hidden * hidden + 2 * hidden * inter + 9 * hidden + inter
    params = (vocab + positions + int(cfg.get("type_vocab_size", 0))) * hidden + layers * per_layer
    return ModelShape(params, hidden, layers, heads, inter, "config.json (BERT-style count)")


# --------------------------------------------------------------------------- the device


def device_memory() -> tuple[str, int]:
    """The memory of the device a run trains on: the first GPU torch sees, else the CPU's RAM."""
    try:
        import torch

        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            return f"GPU {props.name}", int(props.total_memory)
    except Exception:  # noqa: BLE001 - a broken CUDA setup means "no GPU" here
        pass
    return "CPU RAM", cpu_ram_bytes()


def cpu_ram_bytes() -> int:
    """Available RAM (what a run can still take), from /proc/meminfo; total RAM elsewhere."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


# --------------------------------------------------------------------------- the estimate


@dataclass(frozen=True)
class Setup:
    """The flags that decide memory, read once from a config."""

    batch: int
    group: int
    query_len: int
    passage_len: int
    checkpointing: bool
    cross_device: bool
    precision: str  # fp32 | fp16 | bf16
    zero_stage: int
    offload_optimizer: bool
    offload_param: bool
    world: int
    deepspeed: bool


def read_setup(config: StudioConfig) -> Setup:
    args = config.args

    def num(name: str, default: int) -> int:
        value = args.get(name)
        return default if value in (None, "") else int(value)

    precision = "bf16" if args.get("bf16") else "fp16" if args.get("fp16") else "fp32"
    ds = config.deepspeed
    stage, off_opt, off_param = 0, False, False
    if ds is not None and ds.config_file:
        try:
            zero = json.loads(Path(ds.config_file).read_text()).get("zero_optimization", {})
            stage = int(zero.get("stage", 0))
            off_opt = zero.get("offload_optimizer", {}).get("device", "none") == "cpu"
            off_param = zero.get("offload_param", {}).get("device", "none") == "cpu"
        except (OSError, ValueError, AttributeError):
            pass
    elif ds is not None:
        stage, off_opt, off_param = ds.stage, ds.offload_optimizer, ds.offload_param
        if ds.precision in ("fp16", "bf16"):
            precision = ds.precision
    return Setup(
        batch=num("per_device_train_batch_size", 8),
        group=num("train_group_size", 8),
        query_len=num("query_max_len", 32),
        passage_len=num("passage_max_len", 128),
        checkpointing=bool(args.get("gradient_checkpointing")),
        cross_device=bool(args.get("negatives_cross_device")),
        precision=precision,
        zero_stage=stage,
        offload_optimizer=off_opt and stage >= 1,
        offload_param=off_param and stage == 3,
        world=max(1, config.torchrun.nproc_per_node * config.torchrun.nnodes),
        deepspeed=ds is not None,
    )


def _states(shape: ModelShape, s: Setup) -> tuple[dict[str, float], float]:
    """Weights, gradients and optimizer bytes on the device, and bytes offloaded to the CPU."""
    p = shape.params
    half = s.precision in ("fp16", "bf16")
    # HF AMP without DeepSpeed keeps fp32 weights and grads; DeepSpeed keeps half weights and
    # grads plus an fp32 master copy in the optimizer's states.
    ds_half = half and s.deepspeed
    weights = p * (2 if ds_half else 4)
    grads = p * (2 if ds_half else 4)
    optim = p * (12 if ds_half else 8)  # fp32 master (DeepSpeed mixed) + two Adam moments
    shard = s.world if s.deepspeed else 1
    cpu = 0.0
    if s.zero_stage >= 1:
        optim /= shard
    if s.zero_stage >= 2:
        grads /= shard
    if s.zero_stage >= 3:
        weights /= shard
    if s.offload_optimizer:
        cpu += optim
        optim = 0.0
    if s.offload_param:
        cpu += weights
        weights = 0.0
    return {"weights": weights, "gradients": grads, "optimizer": optim}, cpu


def _activations(shape: ModelShape, s: Setup, gpu: bool = False) -> float:
    """Bytes kept for backward by one step's forward over all queries and passages.

    On a GPU, transformers' SDPA attention runs a fused kernel that keeps no score matrix, so
    the per-head term is dropped there (not yet calibrated by the bench on a GPU).
    """
    width = 2 if s.precision in ("fp16", "bf16") else 4
    h, f, a, n = shape.hidden, shape.intermediate, shape.heads, shape.layers
    attn = 0.0 if gpu else ACT_ATTN

    def encoder(sequences: int, length: int) -> float:
        tokens = sequences * length
        layer = tokens * (ACT_HIDDEN * h + ACT_FFN * f + attn * a * length) * width
        embed = tokens * ACT_EMBED * h * width
        if s.checkpointing:  # layer inputs, plus a recomputed layer and its gradients
            inputs = n * tokens * CHECKPOINT_LAYER_INPUTS * h * width
            return embed + inputs + CHECKPOINT_LIVE_LAYERS * layer
        return embed + n * layer

    total = encoder(s.batch, s.query_len) + encoder(s.batch * s.group, s.passage_len)
    queries, passages = s.batch, s.batch * s.group
    if s.cross_device and s.world > 1:
        queries, passages = queries * s.world, passages * s.world
        total += (queries + passages) * h * 4  # gathered embeddings
    total += queries * passages * 4 * 3  # scores, softmax and its gradient
    return total


def estimate_for(
    shape: ModelShape, setup: Setup, device: str = "", device_bytes: int | None = None
) -> Estimate:
    """The estimate for an already-read model and setup (no files, no torch)."""
    states, cpu = _states(shape, setup)
    gpu = device.startswith("GPU")
    if gpu:
        # Backward (activations alive, gradients filling in) and the optimizer step
        # (gradients and the step's temporaries) peak at different moments.
        overhead = shape.params * GPU_STEP_TEMP_PER_PARAM
        activations = GPU_ACT_SCALE * _activations(shape, setup, gpu)
    else:
        overhead = shape.params * OVERHEAD_PER_PARAM + OVERHEAD_FIXED
        activations = _activations(shape, setup, gpu)
    parts = {
        **{k: int(v) for k, v in states.items()},
        "activations": int(activations),
        "overhead": int(overhead),
    }
    peak = sum(parts.values())
    if gpu:
        step = parts["gradients"] + parts["overhead"]
        peak = parts["weights"] + parts["optimizer"] + max(step, parts["activations"])
    headroom = None if device_bytes is None else device_bytes - peak
    return Estimate(
        parts=parts,
        peak_bytes=peak,
        cpu_bytes=int(cpu),
        device=device,
        device_bytes=device_bytes,
        headroom_bytes=headroom,
        fits=None if headroom is None else headroom >= 0,
        shape=shape,
        inputs=asdict(setup),
        nvidia_smi_bytes=nvidia_smi_bytes(peak) if gpu else None,
        tight=headroom is not None and 0 <= headroom < ESTIMATE_MARGIN * peak,
    )


# The changes tried, cheapest first (what it costs the user: speed, then precision, then data).
def _candidates(s: Setup, gpu: bool, bf16_ok: bool) -> list[tuple[str, dict, Setup]]:
    out: list[tuple[str, dict, Setup]] = []
    if not s.checkpointing:
        out.append(
            (
                "turn on gradient_checkpointing (about 30% slower)",
                {"gradient_checkpointing": True},
                replace(s, checkpointing=True),
            )
        )
    if gpu and s.precision == "fp32":
        name = "bf16" if bf16_ok else "fp16"
        out.append((f"train in {name}", {name: True}, replace(s, precision=name)))
    if s.deepspeed and s.world > 1 and s.zero_stage < 3:
        stage = s.zero_stage + 1
        out.append(
            (
                f"DeepSpeed ZeRO stage {stage}",
                {"deepspeed.stage": stage},
                replace(s, zero_stage=stage),
            )
        )
    if s.deepspeed and s.zero_stage >= 1 and not s.offload_optimizer:
        out.append(
            (
                "offload the optimizer states to CPU (DeepSpeed)",
                {"deepspeed.offload_optimizer": True},
                replace(s, offload_optimizer=True),
            )
        )
    if s.group > 2:
        group = max(2, s.group // 2)
        out.append(
            (
                f"train_group_size {group}",
                {"train_group_size": group},
                replace(s, group=group),
            )
        )
    if s.passage_len > 64:
        length = s.passage_len // 2
        out.append(
            (
                f"passage_max_len {length}",
                {"passage_max_len": length},
                replace(s, passage_len=length),
            )
        )
    if s.batch > 1:
        batch = max(1, s.batch // 2)
        out.append(
            (
                f"per_device_train_batch_size {batch} (gradient_accumulation_steps x2 keeps "
                "the step's size, not its in-batch negatives)",
                {"per_device_train_batch_size": batch},
                replace(s, batch=batch),
            )
        )
    return out


def _changes_that_fit(
    shape: ModelShape, setup: Setup, total: int, device: str, bf16_ok: bool
) -> list[Change]:
    """Every single change that fits, cheapest first; if none does, the cheapest combination.

    The combination applies the changes in order (each halving again where it can) until the
    estimate fits, so the user gets one config that works rather than a list that does not.
    "Fits" here keeps the estimate's error free (ESTIMATE_MARGIN): a change that leaves the
    run "may not fit" is no fix.
    """
    gpu = device.startswith("GPU")
    limit = total / (1 + ESTIMATE_MARGIN)
    fitting = []
    for label, settings, changed in _candidates(setup, gpu, bf16_ok):
        peak = estimate_for(shape, changed, device).peak_bytes
        if peak <= limit:
            fitting.append(Change(label, settings, peak, True))
    if fitting:
        return fitting
    current, settings = setup, {}
    for _ in range(12):
        options = _candidates(current, gpu, bf16_ok)
        if not options:
            break
        _, change, current = options[0]
        settings.update(change)
        peak = estimate_for(shape, current, device).peak_bytes
        if peak <= limit:
            label = " + ".join(
                f"{k.replace('deepspeed.', 'DeepSpeed ')} {v}" for k, v in settings.items()
            )
            return [Change(label, settings, peak, True)]
    return []


def _bf16_supported() -> bool:
    from studio.facts.hardware import detect

    gpus = detect().gpus
    return bool(gpus) and all(g.supports_bf16 for g in gpus)


def estimate(
    config: StudioConfig,
    base_dir: str | Path = ".",
    device: tuple[str, int] | None = None,
) -> Estimate:
    """Estimate ``config``'s peak memory per device on ``device`` (default: this machine's).

    ``device`` is ``(name, bytes)``; pass one to ask about a machine other than this one.
    A config no run could train (a batch or group under 1, no epochs and no steps) is refused
    with pre-flight's words (:class:`studio.core.config.ConfigError` carrying the problems): a
    "fits" about it would be a verdict on nothing.
    """
    from studio.checks.preflight import training_value_problems
    from studio.core.config import ConfigError

    refused = training_value_problems(config)
    if refused:
        raise ConfigError(refused)
    model = str(config.args.get("model_name_or_path", ""))
    shape = model_shape(model, base_of(config, base_dir))
    setup = read_setup(config)
    name, total = device if device is not None else device_memory()
    result = estimate_for(shape, setup, name, total)
    if not result.fits or result.tight:
        gpu = name.startswith("GPU")
        bf16_ok = gpu and _bf16_supported()
        result.changes = _changes_that_fit(shape, setup, total, name, bf16_ok)
        if not result.changes:
            result.notes.append("Even every listed change together does not fit this device.")
    if name.startswith("GPU"):
        result.notes.append(
            "The activation model was calibrated on CPU runs; on a GPU it assumes fused SDPA "
            "attention. Check it with bench/bench_memory_estimate.py on this GPU."
        )
    if setup.cross_device and setup.world == 1:
        result.notes.append("negatives_cross_device has no effect with one process.")
    result.notes.append("Activations assume every text padded to its max length (the worst batch).")
    if name.startswith("GPU"):
        result.notes.append(
            "On a GPU, backward (activations) and the optimizer step (gradients and its "
            "temporaries, the overhead) peak at different moments: the peak counts the larger."
        )
    return result
