"""In-process training entry point: a FlagEmbedding fine-tune module, plus the studio's needs.

The run manager launches ``torchrun ... -m studio.training.train_entry [--finetune_module M] <FlagEmbedding's
own flags>`` instead of ``-m FlagEmbedding.finetune.M`` (M defaults to
``embedder.encoder_only.base``; :mod:`studio.facts.modules` maps each M to the dataclasses and runner its
``__main__`` uses). The flags, the runner and the training
loop are FlagEmbedding's, built exactly as its ``__main__`` builds them, so a run behaves (and
costs) the same. This module owns only the additions below, each one a reason the studio
cannot launch the FlagEmbedding module directly:

* **Live metrics.** :class:`MetricsCallback` appends one JSON line per logged step to the file named
  by ``STUDIO_METRICS_FILE`` (unset: no file), which the UI tails. Lines, in order::

      {"event": "train_begin", "max_steps": 6, "global_step": 0, "time": ...}
      {"step": 1, "epoch": 0.2, "loss": 0.0, "learning_rate": 0.0, "grad_norm": null,
       "elapsed_s": 1.1, "eta_s": 5.3, "max_steps": 6, "time": ...}
      {"event": "skipped_step", "step": 4}   (fp16 only: a step the loss scaler skipped)
      {"event": "summary", "step": 6, "train_runtime": 4.9, "train_loss": 0.77, ...}
      {"event": "train_end", "step": 6, "max_steps": 6, "elapsed_s": 4.9, "time": ...}

  Step lines carry no ``event`` key; every log line without a ``loss`` is a ``summary`` event.
  ``grad_norm`` is null under DeepSpeed ZeRO-0 (the engine reports no global norm there).
* **Resume that works.** FlagEmbedding 1.4.2's ``--resume_from_checkpoint`` crashes without
  DeepSpeed: the Trainer loads the checkpoint's ``model.safetensors`` (the inner HF model's
  weights, saved without the wrapper's ``model.`` prefix) into the wrapper non-strictly, finds every
  key missing, and then dies reading ``_keys_to_ignore_on_save``, which the wrapper lacks. Here the
  Trainer's loader is replaced by one that loads those weights strictly into
  ``trainer.model.model``. Optimizer, scheduler, RNG and global step are still restored by the
  Trainer. ``--resume_from_checkpoint True`` means the last ``checkpoint-N`` in ``--output_dir``.
  With ``--deepspeed`` the Trainer never calls that loader: it resumes through
  ``deepspeed_load_checkpoint`` from ``checkpoint-N/global_stepN/``, whose module state dict was
  saved from the wrapper itself (keys with the ``model.`` prefix), so it loads strictly as is;
  verified for ZeRO-0 on CPU (resumed steps reproduce an uninterrupted run's losses). What
  DeepSpeed cannot resume is a checkpoint written without it (no ``global_step*/``): that is
  refused before the first step, with the fix in the message.
* **No surprise trackers.** ``--report_to`` defaults to ``none`` (HF's default is every installed
  integration, e.g. wandb prompting for a login in a headless run).
* **CPU launches that mean what they say** (:func:`prepare_cpu_world`, below).
* **An end check** of what training produced (:func:`run_checked`, :mod:`studio.training.train_outcome`):
  NaN weights, a NaN ``train_loss`` or 0 steps fail the run, logged steps or not.

Environment on a CPU-only machine (torch 2.13 CPU, transformers 4.57, accelerate 1.15, DeepSpeed
0.19.8). One process (``--nproc_per_node 1``), with or without ``--deepspeed``: nothing to set.
DeepSpeed finds no GPU, picks its CPU accelerator (``DS_ACCELERATOR=cpu`` makes that explicit)
and initialises ``gloo`` (``ccl`` if ``oneccl_bindings_for_pytorch`` is installed) from the
``RANK``/``WORLD_SIZE``/``MASTER_ADDR``/``MASTER_PORT`` torchrun exports. Do not set
``ACCELERATE_USE_CPU`` with ``--deepspeed``: transformers then drops DeepSpeed without a word.
Several processes: without DeepSpeed they need ``ACCELERATE_USE_CPU=true`` to form one DDP job over
gloo (this module sets it); DeepSpeed cannot run them (transformers counts a world of one and
DeepSpeed's batch-size check fails), so that launch is refused. Train in fp32 (``--bf16`` fails on
CPU), and give a ``WarmupDecayLR`` DeepSpeed config a non-zero warmup (``--warmup_ratio``):
DeepSpeed rejects zero warmup steps. The first DeepSpeed run builds its ``fused_adam`` and
``deepspeed_shm_comm`` ops into ``~/.cache/torch_extensions`` (about a minute on two cores); later
runs reuse them.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
from transformers import HfArgumentParser, TrainerCallback

from studio.facts import modules
from studio.facts.secrets import protect_run
from studio.training.checkpoints import last_complete_checkpoint
from studio.training.loss_health import SKIP_EVENT, LossHealth, health_from_env, step_outcome
from studio.training.memory_probe import probe_from_env

logger = logging.getLogger(__name__)

METRICS_ENV = "STUDIO_METRICS_FILE"
SAFE_WEIGHTS = "model.safetensors"
TORCH_WEIGHTS = "pytorch_model.bin"


class MetricsCallback(TrainerCallback):
    """Append the run's progress as JSON lines to ``path`` so any UI can tail it.

    A file, not a pipe or a socket, because it survives browser reloads and UI restarts and needs
    no reader to keep training alive. Only the world-process-zero rank writes, so a multi-process
    run produces one line per step. Each line is opened, written and flushed on its own: a reader
    never sees half a buffer, and a crash loses at most the line being written.
    """

    def __init__(self, path: str | os.PathLike[str], health: LossHealth | None = None):
        self.path = Path(path)
        self.health = health  # NaN/inf stops the run, a stuck loss warns (studio.loss_health)
        self._begin_time: float | None = None
        self._begin_step = 0
        self._broken = False

    def on_train_begin(self, args, state, control, **kwargs):
        """Mark time zero; ``global_step`` is already the checkpoint's step when resuming."""
        self._begin_time = time.time()
        self._begin_step = state.global_step
        self._write(
            state,
            {
                "event": "train_begin",
                "max_steps": state.max_steps,
                "global_step": state.global_step,
                "world_size": getattr(args, "world_size", None),
            },
        )

    def on_log(self, args, state, control, logs=None, **kwargs):
        """One line per log event: a step line when it has a loss, else a ``summary`` event."""
        if logs is None:
            return
        if "loss" in logs:  # key test, not truthiness: a 0.0 loss is a real value
            self._write(state, self._step_record(state, logs))
        else:
            self._write(state, {"event": "summary", "step": state.global_step, **logs})
        if self.health is not None:
            known = len(self.health.skipped)
            try:
                self.health.check(args, state.global_step, logs, write=state.is_world_process_zero)
            finally:
                self._write_skips(state, known)

    def on_step_end(self, args, state, control, optimizer=None, **kwargs):
        """Each optimizer step: did the fp16 loss scaler skip it (logged step or not)?"""
        if self.health is None or optimizer is None:
            return
        skipped, scale, scaler = step_outcome(optimizer)
        known = len(self.health.skipped)
        try:
            self.health.step_end(
                args, state.global_step, skipped, scale, scaler, write=state.is_world_process_zero
            )
        finally:
            self._write_skips(state, known)

    def _write_skips(self, state, known: int) -> None:
        """A ``skipped_step`` event per step the scaler skipped since ``known``: the chart's mark."""
        for step in self.health.skipped[known:]:
            self._write(state, {"event": SKIP_EVENT, "step": step})

    def on_train_end(self, args, state, control, **kwargs):
        """Close the stream so a reader can tell a finished run from a stalled one."""
        record = {"event": "train_end", "step": state.global_step, "max_steps": state.max_steps}
        self._write(state, {**record, "elapsed_s": self._elapsed()})

    def _step_record(self, state, logs: dict[str, Any]) -> dict[str, Any]:
        """The fixed keys a chart needs; values the Trainer did not log are null, not dropped."""
        return {
            "step": state.global_step,
            "epoch": logs.get("epoch", state.epoch),
            "loss": logs["loss"],
            "learning_rate": logs.get("learning_rate"),
            "grad_norm": logs.get("grad_norm"),
            "elapsed_s": self._elapsed(),
            "eta_s": self._eta(state),
            "max_steps": state.max_steps,
        }

    def _elapsed(self) -> float | None:
        """Seconds since this process began training (not since the first run, when resumed)."""
        return None if self._begin_time is None else round(time.time() - self._begin_time, 3)

    def _eta(self, state) -> float | None:
        """Remaining steps at this process's pace; steps restored from a checkpoint took no time."""
        done = state.global_step - self._begin_step
        elapsed = self._elapsed()
        if done <= 0 or elapsed is None or not state.max_steps:
            return None
        return round(elapsed / done * max(state.max_steps - state.global_step, 0), 3)

    def _write(self, state, record: dict[str, Any]) -> None:
        """Append one line on rank zero; a broken metrics file warns once and never stops training.

        Hours of training are worth more than the live chart, so an ``OSError`` (disk full, folder
        deleted) disables the callback instead of killing the run.
        """
        if not state.is_world_process_zero or self._broken:
            return
        line = json.dumps({**record, "time": time.time()}, default=_json_default)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")
                handle.flush()
        except OSError as error:
            self._broken = True
            logger.warning("Metrics file %s unwritable, live metrics stop: %s", self.path, error)


def _json_default(value: Any) -> Any:
    """Tensors and numpy scalars can reach the logs; write their number, anything else as text."""
    return value.item() if hasattr(value, "item") else str(value)


def metrics_callback_from_env(environ=os.environ) -> MetricsCallback | None:
    """The run manager names the file through the environment, so argv stays FlagEmbedding's."""
    path = environ.get(METRICS_ENV)
    return MetricsCallback(path, health_from_env(Path(path), environ)) if path else None


def with_default_report_to(argv: list[str]) -> list[str]:
    """Append ``--report_to none`` unless the user chose, so no tracker starts uninvited."""
    return list(argv) if has_flag(argv, "--report_to") else [*argv, "--report_to", "none"]


def has_flag(argv: list[str], name: str) -> bool:
    """Whether ``--name`` was given, as ``--name value`` or ``--name=value``."""
    return any(arg == name or arg.startswith(name + "=") for arg in argv)


def prepare_cpu_world(argv: list[str], environ=os.environ) -> None:
    """Make a multi-process launch on a GPU-less machine train as one job, or refuse it.

    Without ``ACCELERATE_USE_CPU`` (or ``--use_cpu``), accelerate finds no GPU backend and gives
    each torchrun process a world of one: N independent trainings, every one "rank 0", writing the
    same output folder and N copies of each metrics line. With it, the processes form one DDP job
    over gloo, but transformers then drops ``--deepspeed`` silently, and without it DeepSpeed's
    batch check fails (it counts N processes where transformers counted one). So: set
    ``ACCELERATE_USE_CPU`` for DDP, and refuse DeepSpeed with more than one process. Must run
    before parsing, because ``TrainingArguments`` fixes the device layout when it is built.
    """
    if torch.cuda.is_available() or int(environ.get("WORLD_SIZE", "1")) <= 1:
        return
    if has_flag(argv, "--deepspeed"):
        raise ValueError(
            "DeepSpeed on a machine without a GPU runs one process only: launch with "
            "--nproc_per_node 1, or drop --deepspeed to train with DDP over gloo."
        )
    if environ.get("ACCELERATE_USE_CPU") is None:
        environ["ACCELERATE_USE_CPU"] = "true"
        logger.warning(
            "No GPU and %s processes: set ACCELERATE_USE_CPU=true (DDP over gloo)",
            environ["WORLD_SIZE"],
        )


def log_rank(environ=os.environ) -> None:
    """One line per process naming its global rank and host: on several nodes, the first thing
    to look for in each node's log (a node missing from the job never prints it)."""
    world = environ.get("WORLD_SIZE")
    if world and int(world) > 1:
        import socket

        logger.warning(
            "[studio] global rank %s of %s on %s (local rank %s)",
            environ.get("RANK"),
            world,
            socket.gethostname(),
            environ.get("LOCAL_RANK"),
        )


def split_module(argv: list[str]) -> tuple[str, list[str]]:
    """Take ``--finetune_module M`` (the studio's, not FlagEmbedding's) off the front of argv."""
    argv = list(argv)
    if argv[:1] == [modules.ENTRY_FLAG] and len(argv) > 1:
        return modules.get(argv[1]).name, argv[2:]
    if argv[:1] and argv[0].startswith(modules.ENTRY_FLAG + "="):
        return modules.get(argv[0].split("=", 1)[1]).name, argv[1:]
    return modules.DEFAULT_MODULE, argv


def parse_args(argv: list[str], module: str = modules.DEFAULT_MODULE):
    """Parse with the module's own dataclasses, so the flags are exactly FlagEmbedding's."""
    parser = HfArgumentParser(modules.get(module).classes())
    return parser.parse_args_into_dataclasses(args=with_default_report_to(argv))


def resolve_resume(value: str | None, output_dir: str) -> str | None:
    """Turn the flag's text into a checkpoint folder, with the Trainer's meaning of True/False.

    The flag parses as a string, so ``True`` would otherwise be taken for a folder named "True".
    """
    if value is None or value.strip().lower() in ("", "false"):
        return None
    if value.strip().lower() != "true":
        return value
    last = last_complete_checkpoint(output_dir)  # not a half-written one
    if last is None:
        raise ValueError(
            f"--resume_from_checkpoint True: no checkpoint-N folder in {output_dir}; "
            "pass the checkpoint folder itself or start without --resume_from_checkpoint."
        )
    return str(last)


def check_resumable(checkpoint: str, uses_deepspeed: bool) -> None:
    """Refuse, before any training step, a checkpoint this run cannot resume.

    DeepSpeed restores everything from ``global_step*/``; a checkpoint saved without DeepSpeed
    has none. The reverse works but starts a fresh optimizer and scheduler (the Trainer skips the
    missing ``optimizer.pt`` silently), which is worth a warning.
    """
    if not os.path.isdir(checkpoint):
        raise ValueError(f"--resume_from_checkpoint {checkpoint}: no such folder.")
    has_ds_state = bool(glob.glob(os.path.join(checkpoint, "global_step*")))
    if uses_deepspeed and not has_ds_state:
        raise ValueError(
            f"{checkpoint} was saved without DeepSpeed (no global_step*/ folder): "
            "resume it without --deepspeed, or start a new DeepSpeed run from it with "
            f"--model_name_or_path {checkpoint}."
        )
    if not uses_deepspeed and not os.path.isfile(os.path.join(checkpoint, "optimizer.pt")):
        logger.warning(
            "%s has no optimizer.pt (saved by DeepSpeed?): weights and step resume, "
            "optimizer and learning-rate schedule start fresh.",
            checkpoint,
        )


def warn_if_deepspeed_dropped(trainer) -> None:
    """Say so when ``--deepspeed`` was given but the Trainer runs without it.

    transformers ignores the DeepSpeed config without a word when ``ACCELERATE_USE_CPU`` or
    ``--use_cpu`` is set; the run then trains with torch's AdamW and writes no DeepSpeed state.
    """
    if trainer.args.deepspeed and not trainer.is_deepspeed_enabled:
        logger.warning(
            "--deepspeed %s is ignored: ACCELERATE_USE_CPU/--use_cpu turns DeepSpeed off in "
            "transformers; unset it to train with DeepSpeed (one process on a CPU machine).",
            trainer.args.deepspeed,
        )


def read_checkpoint_weights(checkpoint: str) -> dict[str, torch.Tensor]:
    """The inner HF model's state dict, as ``save_pretrained`` wrote it into the checkpoint."""
    safe_path = os.path.join(checkpoint, SAFE_WEIGHTS)
    if os.path.isfile(safe_path):
        from safetensors.torch import load_file

        return load_file(safe_path, device="cpu")
    torch_path = os.path.join(checkpoint, TORCH_WEIGHTS)
    if os.path.isfile(torch_path):
        return torch.load(torch_path, map_location="cpu", weights_only=True)
    raise FileNotFoundError(
        f"{checkpoint} holds neither {SAFE_WEIGHTS} nor {TORCH_WEIGHTS}; "
        "resume from a checkpoint-N folder this trainer saved."
    )


def load_inner_weights(model: torch.nn.Module, checkpoint: str) -> int:
    """Load the checkpoint strictly into the wrapper's inner HF model; return the tensor count.

    Strict because a silent partial load would resume training from the base model's weights
    while the step counter claims otherwise.
    """
    wrapper = getattr(model, "module", model)  # unwrap DDP if handed the wrapped model
    inner = wrapper.model
    if _is_peft(inner) and not _has_full_weights(checkpoint):
        return _load_adapter(inner, checkpoint)
    state_dict = read_checkpoint_weights(checkpoint)
    result = inner.load_state_dict(state_dict, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise RuntimeError(
            f"Checkpoint {checkpoint} does not match the model: missing keys "
            f"{result.missing_keys}, unexpected keys {result.unexpected_keys}. "
            "Resume with the same --model_name_or_path the checkpoint was trained from."
        )
    count = len(state_dict) + _load_m3_heads(wrapper, checkpoint)
    logger.info("Resumed %d tensors from %s into the inner model", count, checkpoint)
    return count


def _has_full_weights(checkpoint: str) -> bool:
    return any(os.path.isfile(os.path.join(checkpoint, n)) for n in (SAFE_WEIGHTS, TORCH_WEIGHTS))


def _is_peft(inner: torch.nn.Module) -> bool:
    return hasattr(inner, "peft_config")


def _load_m3_heads(wrapper: torch.nn.Module, checkpoint: str) -> int:
    """A module with ColBERT and sparse heads saves them beside the encoder
    (``colbert_linear.pt``...)."""
    count = 0
    for head in ("colbert_linear", "sparse_linear"):
        path = os.path.join(checkpoint, f"{head}.pt")
        if hasattr(wrapper, head) and os.path.isfile(path):
            state = torch.load(path, map_location="cpu", weights_only=True)
            getattr(wrapper, head).load_state_dict(state)
            count += len(state)
    return count


def _load_adapter(inner: torch.nn.Module, checkpoint: str) -> int:
    """A LoRA run's checkpoint holds the adapter only; load it into the PEFT model, strictly."""
    from peft import set_peft_model_state_dict
    from peft.utils import load_peft_weights

    state = load_peft_weights(checkpoint, device="cpu")
    result = set_peft_model_state_dict(inner, state)
    if getattr(result, "unexpected_keys", None):
        raise RuntimeError(
            f"Checkpoint {checkpoint} adapter does not match: {result.unexpected_keys}"
        )
    logger.info("Resumed %d adapter tensors from %s", len(state), checkpoint)
    return len(state)


def patch_checkpoint_loader(trainer) -> None:
    """Replace the Trainer's loader, which cannot map the inner weights onto the wrapper."""

    def _load_from_checkpoint(resume_from_checkpoint, model=None):
        load_inner_weights(model if model is not None else trainer.model, resume_from_checkpoint)

    trainer._load_from_checkpoint = _load_from_checkpoint


def build_runner(argv: list[str]):
    """Build the module's FlagEmbedding runner from its flags, with the studio's callback and
    resume fix. ``argv`` may start with ``--finetune_module M`` (default: the base embedder).

    Resume is resolved before the runner is built, so its guard (non-empty ``output_dir`` with
    ``--do_train`` and no resume) keeps FlagEmbedding's meaning.
    """
    module, argv = split_module(argv)
    prepare_cpu_world(argv)
    log_rank()
    model_args, data_args, training_args = parse_args(argv, module)
    protect_run(model_args, training_args)  # the runner logs these: no token in train.log
    resume = resolve_resume(training_args.resume_from_checkpoint, training_args.output_dir)
    training_args.resume_from_checkpoint = resume
    runner = modules.get(module).runner_class()(
        model_args=model_args, data_args=data_args, training_args=training_args
    )
    warn_if_deepspeed_dropped(runner.trainer)
    if resume is not None:
        check_resumable(resume, uses_deepspeed=runner.trainer.is_deepspeed_enabled)
    callback = metrics_callback_from_env()
    stops_on_nan = callback is not None and callback.health and callback.health.stop_on_nan
    if stops_on_nan and not has_flag(argv, "--logging_nan_inf_filter"):
        runner.trainer.args.logging_nan_inf_filter = False  # it logs a NaN step as a number
    if callback is not None:
        runner.trainer.add_callback(callback)
    from studio.training.held_out import held_out_callback_from_env

    held_out = held_out_callback_from_env()  # studio.eval_at_save: held-out nDCG@10 per save
    if held_out is not None:
        runner.trainer.add_callback(held_out)
    probe = probe_from_env()  # the memory estimate's bench only
    if probe is not None:
        runner.trainer.add_callback(probe)
    if resume is not None:
        patch_checkpoint_loader(runner.trainer)
    return runner


def run_checked(runner) -> None:
    """``runner.run()`` (train, save), then, on rank zero, the end check of what it produced
    (:mod:`studio.training.train_outcome`): NaN/inf weights or ``train_loss``, or 0 steps, raise
    ``TrainingOutcomeError``, so the run fails with that reason whatever ``logging_steps`` was.
    Every way of running calls this: the studio's worker, node scripts, a plain torchrun."""
    runner.run()
    if not runner.trainer.is_world_process_zero():
        return
    from studio.training import train_outcome

    trains = not getattr(runner.model_args, "only_merge_lora_model", False)
    print(f"[studio] {train_outcome.check(runner.trainer, trains)}", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Train as FlagEmbedding's ``__main__`` does: ``run()`` creates output_dir, trains, saves;
    then the end check (:func:`run_checked`).

    ``run()`` passes ``training_args.resume_from_checkpoint``, which ``build_runner`` has already
    resolved to a folder, to ``trainer.train``.
    """
    runner = build_runner(sys.argv[1:] if argv is None else argv)
    run_checked(runner)


if __name__ == "__main__":
    main()
