"""Is it learning: loss health checks run on every logged step inside the trainer.

Two symptoms users report most, and what the studio does about them:

* **NaN or inf** in the loss or the gradient norm. Nothing trains after that (every weight the
  optimizer touches becomes NaN), yet HF's Trainer keeps going for hours, and its
  ``logging_nan_inf_filter`` (on by default) even logs such a step's loss as a plausible number,
  often 0.0. With the check on (the default), the entry point turns that filter off (it changes
  only what is logged) and the first non-finite value stops the run with
  :class:`LossNotFiniteError`, whose one-line message names the step, the likely cause and the
  fix for this run's settings (fp16 overflow → bf16 where the device supports it; a learning rate
  far above fine-tuning's; a tiny ``temperature``). The line lands in ``train.log``, from where the
  supervisor copies it into ``status.json``'s ``error``, which the Runs tab, the notebook and the
  CLI show.
* **A loss stuck** at one value, or at 0, for many logged steps: collapsed embeddings, a too easy
  task (negatives that are not negative), or a frozen model. That warns and training goes on.

Every finding is also appended to ``health.jsonl`` beside ``metrics.jsonl``, so a face can list
the warnings of a run (:func:`read_findings`).

Settings, in the config's ``studio:`` section (passed to the worker through the environment):
``ignore_nan`` (default false: a NaN/inf stops the run) and ``stuck_loss_steps`` (default 20 logged steps; 0 turns the
warning off).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

HEALTH_ENV = "STUDIO_LOSS_HEALTH"
HEALTH_FILE = "health.jsonl"
DEFAULT_STUCK_STEPS = 20
USUAL_MAX_LR = 1e-3  # embedder fine-tunes use 1e-5..5e-5; above this, divergence is expected
SMALL_TEMPERATURE = 0.01


class LossNotFiniteError(RuntimeError):
    """Raised inside the trainer to stop a run whose loss or gradient norm is NaN/inf."""


def settings_from_studio(studio: dict[str, Any]) -> dict[str, Any]:
    """The worker's settings from a config's ``studio:`` section (defaults filled in)."""
    return {
        "stop_on_nan": not bool(studio.get("ignore_nan", False)),
        "stuck_loss_steps": int(studio.get("stuck_loss_steps", DEFAULT_STUCK_STEPS)),
    }


def env_for(studio: dict[str, Any]) -> dict[str, str]:
    """Environment for a run's worker: the studio section's health settings as JSON."""
    return {HEALTH_ENV: json.dumps(settings_from_studio(studio))}


def _not_finite(value: Any) -> bool:
    return isinstance(value, int | float) and not math.isfinite(value)


def _bf16_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    except Exception:  # noqa: BLE001 - no usable CUDA: no bf16 advice
        return False


def likely_causes(args: Any, bf16_available: bool | None = None) -> list[str]:
    """Causes and fixes for a non-finite value, most likely first, for these training args."""
    causes = []
    lr = getattr(args, "learning_rate", None)
    temperature = getattr(args, "temperature", None)
    if getattr(args, "fp16", False):
        if bf16_available is None:
            bf16_available = _bf16_available()
        if bf16_available:
            causes.append("fp16 overflow: train with bf16 instead (this GPU supports it)")
        else:
            causes.append(
                "fp16 overflow: no bf16 here; lower learning_rate or train in fp32 (turn fp16 off)"
            )
    if isinstance(lr, int | float) and lr > USUAL_MAX_LR:
        causes.append(
            f"learning_rate {lr:g} is far above fine-tuning's 1e-5..5e-5: lower it (e.g. 2e-5)"
        )
    if isinstance(temperature, int | float) and 0 < temperature < SMALL_TEMPERATURE:
        causes.append(f"temperature {temperature:g} divides every score: raise it to 0.02 or more")
    if not causes:
        causes.append(
            "learning rate too high for this data or warmup too short: lower learning_rate, "
            "raise warmup_ratio, or set max_grad_norm 1.0"
        )
    return causes


class LossHealth:
    """Checks each logged step; raises on NaN/inf, records a warning when the loss is stuck."""

    def __init__(
        self,
        stop_on_nan: bool = True,
        stuck_loss_steps: int = DEFAULT_STUCK_STEPS,
        findings_path: str | os.PathLike[str] | None = None,
    ):
        self.stop_on_nan = stop_on_nan
        self.stuck_steps = stuck_loss_steps
        self.findings_path = Path(findings_path) if findings_path else None
        self._recent: list[float] = []
        self._warned_stuck = False
        self._warned_nan = False

    def check(self, args: Any, step: int, logs: dict[str, Any], write: bool = True) -> None:
        """Look at one step's logs; ``write`` is False on ranks other than zero."""
        bad = [name for name in ("loss", "grad_norm") if _not_finite(logs.get(name))]
        if bad:
            self._non_finite(args, step, logs, bad, write)
        loss = logs.get("loss")
        if isinstance(loss, int | float) and math.isfinite(loss):
            self._track(step, float(loss), write)

    def _non_finite(self, args, step, logs, bad, write) -> None:
        values = ", ".join(f"{name} {logs[name]}" for name in bad)
        causes = likely_causes(args)
        message = (
            f"step {step}: {values} (NaN/inf); training cannot recover from it. "
            f"Likely cause: {causes[0]}."
            + (f" Also check: {'; '.join(causes[1:])}." if len(causes) > 1 else "")
        )
        if self.stop_on_nan:
            if write:
                self._record("error", step, message)
            raise LossNotFiniteError(message + " (studio: {ignore_nan: true} lets it go on)")
        if not self._warned_nan:
            self._warned_nan = True
            logger.warning("Loss health: %s", message)
            if write:
                self._record("warning", step, message)

    def _track(self, step: int, loss: float, write: bool) -> None:
        if self.stuck_steps <= 0 or self._warned_stuck:
            return
        self._recent = [*self._recent[-(self.stuck_steps - 1) :], loss]
        if len(self._recent) < self.stuck_steps:
            return
        low, high = min(self._recent), max(self._recent)
        if high - low > 1e-6 * max(1.0, abs(high)):
            return
        self._warned_stuck = True
        if high == 0.0:
            what = (
                "at 0: the task is trivial for the model (negatives that are not hard, or "
                "duplicates of the positive) or the loss is masked; check the data's neg lists"
            )
        else:
            what = (
                f"at {high:.6g}: the model is not learning (learning_rate 0 or too low, frozen "
                "weights, or embeddings collapsed to one point); check learning_rate and warmup"
            )
        message = f"step {step}: the loss stayed {what} for {self.stuck_steps} logged steps."
        logger.warning("Loss health: %s", message)
        if write:
            self._record("warning", step, message)

    def _record(self, level: str, step: int, message: str) -> None:
        if self.findings_path is None:
            return
        line = json.dumps({"level": level, "step": step, "message": message, "time": time.time()})
        try:
            with open(self.findings_path, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")
        except OSError as error:  # a finding is advice: never kill training over its file
            logger.warning("Cannot write %s: %s", self.findings_path, error)


def health_from_env(metrics_path: Path | None, environ=os.environ) -> LossHealth:
    """The worker's checker; without the variable the defaults hold (the check is on)."""
    try:
        settings = json.loads(environ.get(HEALTH_ENV) or "{}")
    except ValueError:
        settings = {}
    settings = {"stop_on_nan": True, "stuck_loss_steps": DEFAULT_STUCK_STEPS, **settings}
    findings = metrics_path.parent / HEALTH_FILE if metrics_path is not None else None
    return LossHealth(settings["stop_on_nan"], settings["stuck_loss_steps"], findings)


def read_findings(run_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """A run's loss-health findings (``level``, ``step``, ``message``), oldest first."""
    path = Path(run_dir) / HEALTH_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def warning_lines(run_dir: str | os.PathLike[str] | None) -> list[str]:
    """The run's loss-health warnings as one line each, for every face's status view.

    Errors are left out: the one that stopped the run is already the status's ``error``.
    """
    if run_dir is None:
        return []
    return [
        f"Loss health: {f.get('message', '')}"
        for f in read_findings(run_dir)
        if f.get("level") == "warning"
    ]
