"""Evaluating a finished run: base model, every checkpoint and the final model -> eval.json.

The run manager calls :func:`evaluate_run` after a successful run whose config opts in
(``studio: {evaluate_at_end: true, eval_data: DIR}``); the Runs tab reads
:func:`read_run_eval`. Everything is taken from the run folder, so it works the same later,
on another machine, or from the CLI (``python -m studio eval --run RUN_DIR``):

* settings: the run's config.yaml (pooling, normalization, instructions, max lengths),
* base model: ``model_name_or_path`` of that config (already an absolute path in a run),
* final model: ``output_dir``; checkpoints: ``output_dir/checkpoint-N`` at step N,
* the final model's step: the last logged step in metrics.jsonl.

When the last checkpoint holds the same weights as the final model (saved at the last step),
it is not encoded twice: its entry repeats the final model's metrics.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from studio.evaluation.data import EvalData, load_eval_data
from studio.evaluation.evaluate import (
    EvalResult,
    comparison_report,
    evaluate_model,
    resolve_model_path,
    resolve_settings,
)
from studio.evaluation.metrics import DEFAULT_KS
from studio.evaluation.modes import BASE, module_of
from studio.evaluation.module_eval import evaluate_for_module
from studio.facts.runfolder import RunFolder

EVAL_FILE = RunFolder.EVAL
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
_ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")  # LoRA (decoder modules)


def _has_weights(folder: Path) -> bool:
    return any((folder / name).is_file() for name in _WEIGHTS + _ADAPTER_WEIGHTS) or any(
        folder.glob("model-*.safetensors")
    )


def checkpoints(output_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, folder) of every checkpoint-N with weights, by step."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = [
        (int(m.group(1)), p)
        for p in root.iterdir()
        if p.is_dir() and (m := _CHECKPOINT.match(p.name)) and _has_weights(p)
    ]
    return sorted(found)


def final_step(run_dir: Path) -> int | None:
    from studio.training.runlog import read_metrics, step_records

    steps = [r.get("step") for r in step_records(read_metrics(RunFolder(run_dir).metrics))]
    steps = [s for s in steps if isinstance(s, int)]
    return max(steps) if steps else None


def _weights_digest(folder: Path) -> str | None:
    for name in _WEIGHTS:
        path = folder / name
        if path.is_file():
            h = hashlib.sha256()
            with path.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 22), b""):
                    h.update(block)
            return h.hexdigest()
    return None


def run_models(run_dir: str | Path, include_checkpoints: bool = True) -> list[dict[str, Any]]:
    """The models of a run to evaluate: [{label, path, step}] as base, checkpoints, final."""
    from studio.training.runs import load_run_config

    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    base = config.args.get("model_name_or_path")
    output_dir = config.args.get("output_dir") or str(run_dir / "model")
    if not base:
        raise ValueError(f"{run_dir / 'config.yaml'}: no model_name_or_path.")
    out = Path(output_dir)
    if not _has_weights(out):
        raise FileNotFoundError(
            f"{out}: no final model (model.safetensors). Fix: evaluate a run that finished, "
            "or pass a checkpoint to `studio eval --model`."
        )
    models = [{"label": "base", "path": str(resolve_model_path(base)), "step": 0}]
    last = final_step(run_dir)
    if include_checkpoints:
        for step, folder in checkpoints(out):
            models.append({"label": folder.name, "path": str(folder), "step": step})
    if last is None:
        saved = [m["step"] for m in models[1:]]
        last = max(saved) if saved else None
    models.append({"label": "final", "path": str(out), "step": last})
    return models


def evaluate_run(
    run_dir: str | Path,
    eval_data: str | Path | EvalData | None = None,
    ks: Sequence[int] = DEFAULT_KS,
    include_checkpoints: bool = True,
    use_cache: bool = True,
    cache_root: str | Path | None = None,
    write: bool = True,
    *,
    retriever: str | Path | None = None,
    top_k: int | None = None,
    m3_weights: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Evaluate base, checkpoints and final model of a run; write and return eval.json.

    ``eval_data`` defaults to the config's ``studio.eval_data``. A run of another module than the
    base embedder is scored its own way (:mod:`.module_eval`): every score of the module, a reranker over
    ``retriever``'s top ``top_k`` (defaults: ``studio.retriever``/``studio.rerank_top_k`` of the
    config, else the bundled model and 100), a decoder embedder with its adapters merged. Per-query values and top hits
    are kept for base and final (the wins-and-losses table), metrics only for checkpoints.
    """
    from studio.facts.statusfile import write_json
    from studio.training.runs import load_run_config

    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    module = module_of(config)
    source = eval_data if eval_data is not None else config.studio.get("eval_data")
    if source is None:
        raise ValueError(
            f"run {run_dir.name} names no eval data. Fix: set `studio: {{eval_data: DIR}}` in "
            "the config or pass eval_data."
        )
    data = source if isinstance(source, EvalData) else load_eval_data(source)
    models = run_models(run_dir, include_checkpoints)
    if module != BASE:
        from studio.evaluation.modes import parse_weights

        report = evaluate_for_module(
            models,
            data,
            config,
            ks,
            module=module,
            retriever=retriever or config.studio.get("retriever"),
            top_k=top_k or config.studio.get("rerank_top_k"),
            m3_weights=m3_weights or parse_weights(config.studio.get("m3_weights")),
            details=["base", "final"],
            use_cache=use_cache,
            cache_root=cache_root,
            output_dir=models[-1]["path"],
        )
        report["run"] = str(run_dir.resolve())
        report["compared"] = ["base", "final"]
        if write:
            write_json(run_dir / EVAL_FILE, report)
        return report
    settings, warnings = resolve_settings([models[-1]["path"], models[0]["path"]], config=config)
    settings = settings.with_changes(source=f"run config {run_dir / 'config.yaml'}")

    results: dict[str, EvalResult] = {}
    final = models[-1]
    final_digest = None
    same_as_final: list[str] = []
    for entry in [models[0], final, *models[1:-1]]:
        if entry["label"].startswith("checkpoint-") and entry["step"] == final["step"]:
            final_digest = final_digest or _weights_digest(Path(final["path"]))
            if final_digest and _weights_digest(Path(entry["path"])) == final_digest:
                same = results["final"]
                results[entry["label"]] = EvalResult(
                    **{**same.__dict__, "label": entry["label"], "model": entry["path"]}
                )
                same_as_final.append(entry["label"])
                continue
        results[entry["label"]] = evaluate_model(
            entry["path"],
            data,
            settings,
            ks,
            label=entry["label"],
            step=entry["step"],
            use_cache=use_cache,
            cache_root=cache_root,
        )
    ordered = {m["label"]: results[m["label"]] for m in models}
    report = comparison_report(ordered, data, settings, warnings, details=False)
    for label in ("base", "final"):
        report["models"][label] = ordered[label].to_dict(details=True)
    report["run"] = str(run_dir.resolve())
    report["compared"] = ["base", "final"]
    report["delta"] = {
        name: ordered["final"].metrics[name] - ordered["base"].metrics[name]
        for name in ordered["final"].metrics
    }
    if same_as_final:
        report["same_weights_as_final"] = same_as_final
    if write:
        write_json(run_dir / EVAL_FILE, report)
    return report


def read_run_eval(run_dir: str | Path) -> dict[str, Any] | None:
    """A run's eval.json, or None when it was not evaluated (or the file is unreadable)."""
    from studio.facts.statusfile import read_json

    data = read_json(Path(run_dir) / EVAL_FILE)
    return data or None
