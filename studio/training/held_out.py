"""Held-out evaluation at every save, inside the training process (``studio.eval_at_save``).

Issue 20: runs over little data lost held-out nDCG@10 while the loss fell, and nothing showed it
until the end. With ``studio: {eval_at_save: true, eval_data: DIR}`` the worker scores the base
model before the first step and each ``checkpoint-N`` as the Trainer saves it, on the held-out
folder, with the run config's pooling and lengths (the same :func:`evaluate_model` and embedding
cache the end-of-run evaluation uses, so its numbers are these and the saved checkpoints are not
encoded twice). Each score is one line of the run's ``metrics.jsonl``::

    {"event": "eval", "step": 4, "label": "checkpoint-4", "eval_ndcg@10": 0.41,
     "eval_recall@10": 0.8, "eval_recall@100": 1.0, "eval_s": 0.9, "time": ...}

which the loss chart draws beside the loss (:mod:`studio.training.charts`). The best checkpoint so far is
recorded as the Trainer's ``best_model_checkpoint``, which its ``save_total_limit`` rotation never
deletes, so the choice at the end (:mod:`studio.training.best_model`) still has it.

Only the world-process-zero rank evaluates (the others wait at their next collective). It reads
the checkpoint folder just written, so the live model is never touched. A failing evaluation is
logged and written as ``{"event": "eval", "error": ...}``; it never stops the training.
Only the base embedder module is scored here; pre-flight says so for the others.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from transformers import TrainerCallback

from studio.training.best_model import eval_record, eval_records

logger = logging.getLogger(__name__)


class HeldOutEvalCallback(TrainerCallback):
    """Scores the base (at step 0) and each saved checkpoint on the held-out data."""

    def __init__(self, metrics_path: str | Path, config, eval_data: str | Path):
        self.metrics_path = Path(metrics_path)
        self.config = config
        self.eval_data = eval_data
        self._data = None
        self._settings = None
        self.best: tuple[float, str] | None = None  # (nDCG@10, checkpoint folder)

    def _prepare(self):
        from studio.evaluation.data import load_eval_data
        from studio.evaluation.evaluate import resolve_settings

        if self._data is None:
            self._data = load_eval_data(self.eval_data)
            base = self.config.args["model_name_or_path"]
            settings, _ = resolve_settings([base], config=self.config)
            run_config = self.metrics_path.parent / "config.yaml"
            # the same settings (and cache keys) as the end-of-run evaluate_run
            self._settings = settings.with_changes(source=f"run config {run_config}")
        return self._data, self._settings

    def score(self, model: str | Path, label: str, step: int) -> dict | None:
        from studio.evaluation.evaluate import evaluate_model

        started = time.perf_counter()
        try:
            data, settings = self._prepare()
            result = evaluate_model(model, data, settings, label=label, step=step)
            record = eval_record(step, label, result.metrics, time.perf_counter() - started)
        except Exception as exc:  # noqa: BLE001 - an evaluation never stops the training
            logger.warning("[studio] held-out evaluation of %s failed: %s", label, exc)
            self._write({"event": "eval", "step": step, "label": label, "error": str(exc)})
            return None
        self._write(record)
        logger.warning(
            "[studio] held-out nDCG@10 at step %d (%s): %.4f",
            step,
            label,
            record.get("eval_ndcg@10", float("nan")),
        )
        return record

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        if state.global_step == 0:
            self.score(self.config.args["model_name_or_path"], "base", 0)
            return
        self.best = self._best_so_far(Path(args.output_dir))  # a resumed run keeps protecting it

    def _best_so_far(self, output_dir: Path) -> tuple[float, str] | None:
        """The best checkpoint scored by an earlier attempt that is still on disk."""
        from studio.training.runlog import read_metrics

        found = [
            (r["eval_ndcg@10"], str(output_dir / r["label"]))
            for r in eval_records(read_metrics(self.metrics_path))
            if str(r.get("label", "")).startswith("checkpoint-")
            and (output_dir / r["label"]).is_dir()
        ]
        return max(found) if found else None

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        folder = str(Path(args.output_dir) / f"checkpoint-{state.global_step}")
        record = self.score(folder, f"checkpoint-{state.global_step}", state.global_step)
        value = (record or {}).get("eval_ndcg@10")
        if value is not None and (self.best is None or value > self.best[0]):
            self.best = (value, folder)
        if self.best is not None:
            # the Trainer's rotation (save_total_limit) never deletes best_model_checkpoint
            state.best_model_checkpoint = self.best[1]

    def _write(self, record: dict) -> None:
        try:
            with open(self.metrics_path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({**record, "time": time.time()}) + "\n")
        except OSError as exc:
            logger.warning("metrics file %s unwritable: %s", self.metrics_path, exc)


def held_out_callback_from_env(environ=os.environ) -> HeldOutEvalCallback | None:
    """The callback when the run's config.yaml (beside the metrics file) asks for it."""
    from studio.core import config as config_mod
    from studio.evaluation.modes import BASE, module_of

    path = environ.get("STUDIO_METRICS_FILE")
    if not path:
        return None
    run_config = Path(path).parent / "config.yaml"
    if not run_config.is_file():
        return None
    config = config_mod.load(run_config)
    data = config.studio.get("eval_data")
    if not config.studio.get("eval_at_save") or not data or module_of(config) != BASE:
        return None
    return HeldOutEvalCallback(path, config, data)
