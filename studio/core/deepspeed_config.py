"""Generate the DeepSpeed JSON a run uses, or read the user's own.

Why no optimizer block (unless the optimizer is offloaded to the CPU): an `optimizer` section
makes DeepSpeed JIT-build its fused Adam op on first use (a minute or two of silence on a fresh
install, on the CPU accelerator too), and buys nothing over HF's own: without the section the
Trainer creates torch's AdamW (fused on CUDA) from `--optim`/`--learning_rate`/... and hands it
to `deepspeed.initialize`, which works for ZeRO 0-3. CPU offload is the exception: it needs
DeepSpeed's CPU Adam, so then the section is written and the op is built.

Why no scheduler block: DeepSpeed rejects `WarmupDecayLR` with zero warmup steps (a common
trap with FlagEmbedding's example configs). Leaving the scheduler out lets HF's Trainer build
the one named by `--lr_scheduler_type` with `--warmup_ratio`/`--warmup_steps`, which also
keeps the form's scheduler fields meaningful. Everything the Trainer knows is "auto", so the
JSON never disagrees with the flags.

Why secrets are masked: a user's JSON is copied into the run folder, `command --out` and the
cluster exports, which are shared and archived; a key in it (a monitor's `api_key`, a pasted
`hf_...` token) would travel with them. :func:`secret_paths` finds them (a key named like a
token, key, secret or password; a value shaped like an HF or API token), pre-flight refuses a
run with the fix (the environment variable the library reads instead), and :func:`dumps` never
writes one.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from studio.core.config import DeepSpeedSettings

DS_FILE_NAME = "ds_config.json"
SECRET_MASK = "***"
_SECRET_WORDS = {"token", "key", "apikey", "secret", "password", "passwd", "credentials"}
_SECRET_SHAPES = re.compile(
    r"^(hf_[A-Za-z0-9]{16,}|sk-[A-Za-z0-9_-]{16,}|gh[pousr]_[A-Za-z0-9]{16,})$"
)


def _secret_name(key: str) -> bool:
    return bool(_SECRET_WORDS & set(re.split(r"[_\-. ]+", key.lower())))


def secret_paths(ds: Any, prefix: str = "") -> list[str]:
    """Dotted paths (``comet.api_key``) of the secret-looking string values in a DeepSpeed JSON."""
    found: list[str] = []
    items = ds.items() if isinstance(ds, dict) else enumerate(ds) if isinstance(ds, list) else ()
    for key, value in items:
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict | list):
            found += secret_paths(value, path)
        elif isinstance(value, str) and value.strip() not in ("", "auto"):
            named = isinstance(key, str) and _secret_name(key)
            if named or _SECRET_SHAPES.match(value.strip()):
                found.append(path)
    return found


def mask_secrets(ds: Any, prefix: str = "") -> Any:
    """A copy of ``ds`` with every value :func:`secret_paths` finds replaced by ``***``."""
    hidden = set(secret_paths(ds, prefix))

    def walk(node: Any, path: str) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, f"{path}.{k}" if path else str(k)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, f"{path}.{i}" if path else str(i)) for i, v in enumerate(node)]
        return SECRET_MASK if path in hidden else node

    return walk(ds, prefix)


_ADAMW = {
    "type": "AdamW",
    "params": {"lr": "auto", "betas": "auto", "eps": "auto", "weight_decay": "auto"},
}


def needs_deepspeed_optimizer(settings: DeepSpeedSettings) -> bool:
    """Only optimizer offload needs DeepSpeed's own optimizer (its CPU Adam op)."""
    return bool(settings.offload_optimizer and settings.stage >= 1)


def generate(settings: DeepSpeedSettings) -> dict[str, Any]:
    """A ZeRO config for the given stage and offload options; precision follows the flags."""
    zero: dict[str, Any] = {"stage": settings.stage}
    if settings.offload_optimizer and settings.stage >= 1:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
    if settings.offload_param and settings.stage == 3:
        zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    if settings.stage >= 2:
        zero.update(overlap_comm=True, contiguous_gradients=True)
    if settings.stage == 3:
        zero.update(stage3_gather_16bit_weights_on_model_save=True)
    fp16 = "auto" if settings.precision == "auto" else settings.precision == "fp16"
    bf16 = "auto" if settings.precision == "auto" else settings.precision == "bf16"
    return {
        "zero_optimization": zero,
        "fp16": {
            "enabled": fp16,
            "loss_scale": 0,
            "loss_scale_window": 1000,
            "initial_scale_power": 12,
            "hysteresis": 2,
            "min_loss_scale": 1,
        },
        "bf16": {"enabled": bf16},
        **({"optimizer": _ADAMW} if needs_deepspeed_optimizer(settings) else {}),
        "gradient_accumulation_steps": "auto",
        "gradient_clipping": "auto",
        "steps_per_print": 100,
        "train_batch_size": "auto",
        "train_micro_batch_size_per_gpu": "auto",
        "wall_clock_breakdown": False,
    }


def load_json(path: str | Path) -> dict[str, Any]:
    """Read a user's DeepSpeed JSON, with an error naming the file and line when it is bad."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); fix that line"
        ) from None


def resolve(settings: DeepSpeedSettings | None) -> dict[str, Any] | None:
    """The DeepSpeed config a run will use: the user's file or a generated one."""
    if settings is None:
        return None
    if settings.config_file:
        return load_json(settings.config_file)
    return generate(settings)


def dumps(ds: dict[str, Any]) -> str:
    """The JSON as written to any file: secrets masked (pre-flight refuses a run with them)."""
    return json.dumps(mask_secrets(ds), indent=2) + "\n"
