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
* **Steps the fp16 loss scaler skipped.** Under fp16 (HF AMP's ``GradScaler``, DeepSpeed's fp16
  loss scaler) a NaN/inf gradient with a finite loss is the scaler at work: it skips that
  optimizer step, halves its scale and goes on, as it does in most fp16 runs (on an H200, a
  MiniLM-size run skipped step 6 and then reached bf16's losses). Such a step is counted
  (``level: "skip"`` findings, a ``skipped_step`` event in ``metrics.jsonl`` that the loss chart
  marks, "N steps skipped by the fp16 loss scaler" in every face's run summary), not stopped.
  fp16 runs stop only when the loss itself is NaN/inf, or when :data:`FP16_SKIP_LIMIT` steps in a
  row are skipped: from the default scale of 65,536 that is the scale at its floor of 1 with the
  gradients still NaN/inf, which no scaler recovers from. bf16 and fp32 have no scaler: a
  non-finite gradient norm there stops the run at once. Where the trainer reports each optimizer
  step (:meth:`LossHealth.step_end`, fed by the metrics callback from the optimizer's
  ``step_was_skipped``), skips are counted at every step, logged or not; otherwise (a replay of
  logged metrics) from the logged steps.
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
FP16_INITIAL_SCALE = 2**16  # torch's GradScaler and DeepSpeed's fp16 (initial_scale_power 16)
# 65,536 halves to 1 (DeepSpeed's min_loss_scale) in 16 skips; DeepSpeed's hysteresis of 2 lowers
# it from the second overflow on, so its 17th skip takes the scale to 1 (its next one aborts the
# run), and torch's 17th skip overflowed at scale 1: the gradients themselves are NaN/inf.
FP16_SKIP_LIMIT = 17
SKIP_EVENT = "skipped_step"  # the metrics.jsonl event the loss chart marks
AMP_SCALER = "torch's GradScaler under HF's fp16 AMP"
DEEPSPEED_SCALER = "DeepSpeed's fp16 loss scaler"


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


def uses_fp16(args: Any) -> bool:
    """Whether the run trains in fp16, i.e. behind a loss scaler (HF refuses a DeepSpeed config
    whose fp16 disagrees with ``--fp16``, so the flag is the whole answer)."""
    return getattr(args, "fp16", False) is True


def scaler_name(args: Any) -> str:
    """Which loss scaler an fp16 run has: DeepSpeed's when it trains with DeepSpeed."""
    return DEEPSPEED_SCALER if getattr(args, "deepspeed", None) else AMP_SCALER


def step_outcome(optimizer: Any) -> tuple[bool | None, float | None, str | None]:
    """(skipped, loss scale, scaler) of the optimizer step that just ran, as the optimizer the
    Trainer hands its callbacks reports it: accelerate's ``step_was_skipped`` (the GradScaler's
    overflow; DeepSpeed's ``overflow``). ``skipped`` is None where the optimizer cannot tell."""
    try:
        skipped = optimizer.step_was_skipped
    except Exception:  # noqa: BLE001 - no such property (an optimizer without a scaler)
        return None, None, None
    if not isinstance(skipped, bool):
        return None, None, None
    inner = getattr(optimizer, "optimizer", None)
    deepspeed = type(optimizer).__name__.startswith("DeepSpeed")
    scaler = DEEPSPEED_SCALER if deepspeed else AMP_SCALER
    if not skipped:  # the scale is read only after a skip: get_scale() waits for the GPU
        return False, None, scaler
    scale = None
    try:
        if deepspeed:
            scale = getattr(inner, "cur_scale", None) or getattr(inner, "loss_scale", None)
        elif getattr(optimizer, "scaler", None) is not None:
            scale = optimizer.scaler.get_scale()
    except Exception:  # noqa: BLE001 - the scale is advice only
        scale = None
    return True, float(scale) if isinstance(scale, int | float) else None, scaler


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
        self.skipped: list[int] = []  # steps the fp16 loss scaler skipped, in order
        self._streak: list[int] = []  # the skipped steps in a row, up to the last step seen
        self._per_step = False  # step_end reports every optimizer step: logs do not decide skips
        self._last_step = 0
        self._scaler: str | None = None
        self._warned_streak = False

    def step_end(
        self,
        args: Any,
        step: int,
        skipped: bool | None,
        scale: float | None = None,
        scaler: str | None = None,
        write: bool = True,
    ) -> None:
        """One optimizer step's outcome as the loss scaler reports it (see :func:`step_outcome`);
        ``skipped`` None (the optimizer cannot tell) leaves the logged steps to decide."""
        if skipped is None:
            return
        self._per_step = True
        self._scaler = scaler or self._scaler
        if step <= self._last_step:
            return
        self._last_step = step
        if skipped:
            self._skip(args, step, scale, write)
        else:
            self._streak = []

    def check(self, args: Any, step: int, logs: dict[str, Any], write: bool = True) -> None:
        """Look at one step's logs; ``write`` is False on ranks other than zero."""
        bad = [name for name in ("loss", "grad_norm") if _not_finite(logs.get(name))]
        if bad == ["grad_norm"] and "loss" in logs and uses_fp16(args):
            if step in self.skipped:  # the scaler said so at the step's end: counted there
                bad = []
            elif not self._per_step:  # logs only: a finite loss means the scaler skipped it
                self._last_step = max(self._last_step, step)
                self._skip(args, step, None, write)
                bad = []
        elif not self._per_step and "loss" in logs and not bad:
            self._streak = []
        if bad:
            self._non_finite(args, step, logs, bad, write)
        loss = logs.get("loss")
        if isinstance(loss, int | float) and math.isfinite(loss):
            self._track(step, float(loss), write)

    def _skip(self, args: Any, step: int, scale: float | None, write: bool) -> None:
        """Count a step the fp16 loss scaler skipped; stop when it cannot recover."""
        if step not in self.skipped:
            self.skipped.append(step)
        self._streak.append(step)
        scaler = self._scaler or scaler_name(args)
        if write:
            self._record(
                "skip",
                step,
                f"step {step} skipped by the fp16 loss scaler ({scaler})",
                scale=scale,
                scaler=scaler,
            )
        in_a_row = len(self._streak)
        if in_a_row < FP16_SKIP_LIMIT or (scale is not None and scale > 1):
            return  # a scale still above 1 (it had grown past 65,536) has room to recover
        fell = (
            f"its scale is down to {scale:g}"
            if scale is not None
            else f"from {FP16_INITIAL_SCALE:,} its scale is at its floor (1)"
        )
        message = (
            f"step {step}: the fp16 loss scaler ({scaler}) skipped {in_a_row} steps in a row "
            f"(steps {self._streak[0]}-{step}, gradients NaN/inf each time): {fell}, so it "
            f"cannot recover and no weight is being trained. Likely cause: "
            f"{likely_causes(args)[0]}."
        )
        if self.stop_on_nan:
            if write:
                self._record("error", step, message)
            raise LossNotFiniteError(message + " (studio: {ignore_nan: true} lets it go on)")
        if not self._warned_streak:
            self._warned_streak = True
            logger.warning("Loss health: %s", message)
            if write:
                self._record("warning", step, message)

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

    def _record(self, level: str, step: int, message: str, **extra: Any) -> None:
        if self.findings_path is None:
            return
        record = {"level": level, "step": step, "message": message, **extra, "time": time.time()}
        line = json.dumps(record)
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


def _skips(run_dir: str | os.PathLike[str] | None) -> list[dict[str, Any]]:
    return (
        [] if run_dir is None else [f for f in read_findings(run_dir) if f.get("level") == "skip"]
    )


def skipped_steps(run_dir: str | os.PathLike[str] | None) -> list[int]:
    """The steps the fp16 loss scaler skipped in this run (each once, across attempts)."""
    return sorted({f["step"] for f in _skips(run_dir) if isinstance(f.get("step"), int)})


def skip_line(run_dir: str | os.PathLike[str] | None, shown: int = 10) -> str | None:
    """'3 steps skipped by the fp16 loss scaler (...): steps 6, 40, 41. ...', or None: one line
    for every face's run summary, so a skipped step reads as what it is, not as a failure."""
    skips = _skips(run_dir)
    steps = sorted({f["step"] for f in skips if isinstance(f.get("step"), int)})
    if not steps:
        return None
    names = {f.get("scaler") for f in skips} - {None}
    scaler = f" ({names.pop()})" if len(names) == 1 else ""
    listed = ", ".join(str(s) for s in steps[:shown])
    more = f" and {len(steps) - shown} more" if len(steps) > shown else ""
    plural = "s" if len(steps) != 1 else ""
    return (
        f"{len(steps)} step{plural} skipped by the fp16 loss scaler{scaler}: step{plural} "
        f"{listed}{more}. Normal in fp16: the scaler lowers its scale and training goes on; the "
        f"run stops only if the loss turns NaN/inf or {FP16_SKIP_LIMIT} steps in a row are skipped."
    )
