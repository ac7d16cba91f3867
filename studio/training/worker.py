"""What torchrun starts for a studio run: `-m studio.training.worker <FlagEmbedding's flags>`.

Its first lines run before torch, transformers or FlagEmbedding are imported (seconds of
imports during which the launcher may already be dead), and make the worker part of its run:

* `PR_SET_PDEATHSIG`: the kernel TERMs this worker when its parent, the torchrun launcher, dies
  (torchrun puts workers in their own session, so nothing else would reach them after a
  `kill -9` of the launcher); then one check of the parent, which may have died already;
* a pid + start-time record in the run folder's `procs/` (see :mod:`studio.training.procs`);
* phases in status.json until the first step: loading the model, loading data, preparing the
  trainer, starting DeepSpeed, building op X / waiting for a build lock (see
  :mod:`studio.core.buildlocks`), training.

Then it trains exactly as :mod:`studio.training.train_entry` does. Outside a studio run (no
`STUDIO_RUN_DIR`), it is `studio.training.train_entry` with the parent-death signal only.
"""

from __future__ import annotations

import os
import signal
import sys

from studio.facts.runfolder import Phase, RunFolder, current_folder
from studio.training import procs


def contain(folder: RunFolder | None) -> None:
    """Die with the launcher; record this process in the run folder."""
    procs.set_parent_death_signal(signal.SIGTERM)
    if _launcher_gone():  # it died before the request: the kernel will not tell us
        os._exit(128 + signal.SIGTERM)
    if folder is not None:
        rank = os.environ.get("RANK", "0")
        try:
            procs.record_self(folder, f"worker{rank}")
        except OSError as exc:
            print(f"[studio] cannot record worker pid in {folder.procs}: {exc}", file=sys.stderr)


def _launcher_gone() -> bool:
    """Under torchrun, whether this worker's parent is no longer the launcher (reparented)."""
    if "TORCHELASTIC_RUN_ID" not in os.environ:
        return False
    try:
        with open(f"/proc/{os.getppid()}/cmdline", "rb") as fh:
            cmdline = fh.read()
    except OSError:
        return False
    return b"torch.distributed.run" not in cmdline and b"torchrun" not in cmdline


def _is_rank_zero() -> bool:
    return os.environ.get("RANK", "0") == "0"


def report_phases(folder: RunFolder, runner_class: type) -> None:
    """Wrap the runner's loading steps so each one names itself in status.json."""
    steps = {
        "load_tokenizer_and_model": Phase.LOADING_MODEL,
        "load_train_dataset": Phase.LOADING_DATA,
        "load_trainer": Phase.PREPARING,
    }
    for name, phase in steps.items():
        original = getattr(runner_class, name)

        def wrapped(self, _original=original, _phase=phase):
            folder.set_phase(_phase)
            return _original(self)

        setattr(runner_class, name, wrapped)


def phase_callback(folder: RunFolder):
    """A TrainerCallback that reports 'training' once the model is wrapped and steps begin."""
    from transformers import TrainerCallback

    class PhaseCallback(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                folder.set_phase(Phase.TRAINING)

    return PhaseCallback()


def main(argv: list[str] | None = None) -> None:
    folder = current_folder()
    contain(folder)
    argv = sys.argv[1:] if argv is None else argv
    if folder is not None and _is_rank_zero():
        folder.set_phase(Phase.LOADING_MODEL)
    from studio.core import buildlocks
    from studio.facts import modules
    from studio.training import train_entry

    if folder is not None and _is_rank_zero():
        module, _ = train_entry.split_module(argv)
        report_phases(folder, modules.get(module).runner_class())
    if folder is not None:
        buildlocks.watch_builds(folder)
    runner = train_entry.build_runner(argv)
    if folder is not None and _is_rank_zero():
        runner.trainer.add_callback(phase_callback(folder))
        if runner.trainer.is_deepspeed_enabled:
            folder.set_phase(Phase.STARTING_DEEPSPEED)
    train_entry.run_checked(runner)  # train, save, then check what was produced


if __name__ == "__main__":
    main()
