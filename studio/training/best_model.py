"""Which model a run exports: the best of base, checkpoints and final on the held-out split.

Issue 20: over little data the last model was often worse than an earlier checkpoint, or than the
base, and it was the one exported. With ``studio: {eval_at_save: true}`` the post-training step
(:mod:`studio.training.post_train`) scores base, every checkpoint left and the final model (eval.json),
picks the highest held-out nDCG@10 (ties go to the later model; the base only when strictly
better than every trained one), and copies it to ``RUN/exported/`` with sentence-transformers
files and a model card. The choice is eval.json's ``choice``: ``label``, ``score``, ``path``,
``why``, ``exported``, ``rows`` (every candidate on disk: label, step, score, path, chosen) and
``deleted`` (checkpoints scored during training that ``save_total_limit`` removed since, path
None); the run summary (every face) shows it as a table.
``python -m studio export-model RUN --checkpoint N|base|final`` exports another. The run's own
``model/`` folder (the final model) is never changed.

:func:`outcome_lines` are the plain sentences every face shows about the outcome: what was
exported and why, and when the fine-tuned model scores below the base (on the held-out split,
or on the general set `studio.general_data` names), that fact and the
LM-Cocktail merge command (``python -m studio merge``) that mixes it with the base.
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path
from typing import Any

METRIC = "ndcg_at_10"
EXPORT_DIR = "exported"
# Trainer state a model does not need (and a copy of a checkpoint should not carry)
_SKIP = ("optimizer.pt", "scheduler.pt", "trainer_state.json", "training_args.bin")
# What studio.held_out writes into metrics.jsonl at each save (the chart reads eval_ndcg@10)
RECORDED = {"ndcg_at_10": "eval_ndcg@10", "recall_at_10": "eval_recall@10"}
RECORDED_RECALL = "eval_recall@100"


def eval_record(step: int, label: str, metrics: dict[str, float], seconds: float) -> dict:
    """The metrics.jsonl line of one held-out score."""
    record: dict[str, Any] = {"event": "eval", "step": step, "label": label}
    for key, name in RECORDED.items():
        if key in metrics:
            record[name] = metrics[key]
    if "recall_at_100" in metrics:
        record[RECORDED_RECALL] = metrics["recall_at_100"]
    record["eval_s"] = round(seconds, 3)
    return record


def eval_records(records: list[dict]) -> list[dict]:
    """The held-out scores among a run's metrics lines (the last one per step: a resumed run
    may score a step again)."""
    by_step: dict[int, dict] = {}
    for r in records:
        if r.get("event") == "eval" and isinstance(r.get("step"), int) and "eval_ndcg@10" in r:
            by_step[r["step"]] = r
    return [by_step[s] for s in sorted(by_step)]


def _rank(label: str, step: Any) -> tuple[int, int]:
    """Tie order: final, then later checkpoints, the base last."""
    if label == "base":
        return (0, 0)
    if label == "final":
        return (2, 0)
    return (1, step if isinstance(step, int) else 0)


def choose(report: dict, pick: str | None = None, metric: str = METRIC) -> dict[str, Any]:
    """The choice over eval.json's models: the best by `metric`, or `pick` (a label, a step
    number, "base" or "final") when the user chose."""
    models = report.get("models") or {}
    rows = [
        {"label": label, "step": m.get("step"), "score": m.get(metric), "path": m.get("path")}
        for label, m in models.items()
        if isinstance(m.get(metric), int | float)
    ]
    if not rows:
        raise ValueError(f"the evaluation has no {metric} to choose by")
    best = max(rows, key=lambda r: (r["score"], _rank(r["label"], r["step"])))
    if pick is None:
        chosen, why = best, f"highest held-out {_name(metric)}"
    else:
        chosen = _find(rows, str(pick))
        why = "picked by the user"
    base = next((r for r in rows if r["label"] == "base"), None)
    final = next((r for r in rows if r["label"] == "final"), None)
    for r in rows:
        r["chosen"] = r is chosen
    return {
        "metric": metric,
        "label": chosen["label"],
        "step": chosen["step"],
        "score": chosen["score"],
        "path": chosen["path"],
        "why": why,
        "best": best["label"],
        "base_score": base and base["score"],
        "final_score": final and final["score"],
        "rows": sorted(rows, key=lambda r: (r["step"] or 0, _rank(r["label"], r["step"]))),
    }


def _find(rows: list[dict], pick: str) -> dict:
    wanted = {pick, f"checkpoint-{pick}"}
    for r in rows:
        if r["label"] in wanted:
            return r
    have = ", ".join(r["label"] for r in rows)
    raise ValueError(f"no evaluated model `{pick}` in this run; choose one of: {have}")


def _name(metric: str) -> str:
    return metric.replace("ndcg_at_", "nDCG@").replace("recall_at_", "Recall@")


def export_choice(run_dir: str | Path, report: dict, pick: str | None = None) -> dict[str, Any]:
    """Copy the chosen model to RUN/exported/ (replacing an earlier export, a copy), export it
    for sentence-transformers, and record the choice in eval.json."""
    from studio.evaluation.export_modes import export_model
    from studio.facts.runfolder import RunFolder
    from studio.facts.statusfile import write_json
    from studio.training.runs import load_run_config

    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    choice = choose(report, pick)
    choice["deleted"] = _deleted(run_dir, choice["rows"], choice["metric"])
    dest = run_dir / EXPORT_DIR
    staging = run_dir / (EXPORT_DIR + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    source = Path(choice["path"])
    shutil.copytree(
        source,
        staging,
        ignore=lambda folder, names: [
            n
            for n in names
            if n in _SKIP
            or n.startswith(("rng_state", "global_step"))
            or n in ("exported", "merges")
            or (Path(folder) == source and n.startswith("checkpoint-"))
        ],
    )
    _complete_tokenizer(staging, Path(config.args.get("output_dir") or run_dir / "model"))
    export_model(staging, config, report, overwrite_readme=True)
    shutil.rmtree(dest, ignore_errors=True)
    staging.rename(dest)
    choice["exported"] = str(dest)
    report["choice"] = choice
    write_json(run_dir / RunFolder.EVAL, report)
    return choice


def _deleted(run_dir: Path, rows: list[dict], metric: str) -> list[dict]:
    """The checkpoints scored during training that `save_total_limit` deleted since (the best
    one is kept): candidates too, so the table lists them, apart from `rows` (which all exist)."""
    from studio.facts.runfolder import RunFolder
    from studio.training.runlog import read_metrics

    if metric != METRIC:
        return []
    have = {r["label"] for r in rows}
    return [
        {"label": r["label"], "step": r["step"], "score": r["eval_ndcg@10"], "path": None}
        for r in eval_records(read_metrics(RunFolder(run_dir).metrics))
        if r.get("label") not in have and str(r.get("label", "")).startswith("checkpoint-")
    ]


def _complete_tokenizer(folder: Path, final: Path) -> None:
    """A checkpoint may lack the tokenizer files the final folder has."""
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if not (folder / name).exists() and (final / name).is_file():
            shutil.copy2(final / name, folder / name)


def merge_command(run_dir: str | Path, report: dict) -> str:
    """The LM-Cocktail sweep of the best trained model with the base, on the held-out split."""
    from studio.training.runs import load_run_config

    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    trained = [
        (m.get(METRIC, -1.0), _rank(label, m.get("step")), m.get("path"))
        for label, m in (report.get("models") or {}).items()
        if label != "base"
    ]
    model = max(trained)[2] if trained else config.args.get("output_dir")
    words = [
        "python -m studio merge",
        "--base",
        shlex.quote(str(config.args.get("model_name_or_path"))),
        "--model",
        shlex.quote(str(model)),
        "--weights 0,0.25,0.5,0.75,1",
        "--data",
        shlex.quote(str(config.studio.get("eval_data"))),
        "--config",
        shlex.quote(str(run_dir / "config.yaml")),
        "--export",
        shlex.quote(str(run_dir / "merged")),
    ]
    if config.studio.get("general_data"):
        words[-2:-2] = ["--general", shlex.quote(str(config.studio["general_data"]))]
    return " ".join(words)


def evaluate_general(run_dir: str | Path, report: dict) -> dict | None:
    """Base, final and the held-out choice scored on the config's `studio.general_data` (with
    the run's settings) into report["general"]; None when no general set is named."""
    from studio.evaluation.data import load_eval_data
    from studio.evaluation.evaluate import evaluate_model, resolve_settings
    from studio.training.runs import load_run_config

    config = load_run_config(run_dir)
    folder = config.studio.get("general_data")
    models = report.get("models") or {}
    if not folder or "base" not in models or "final" not in models:
        return None
    data = load_eval_data(folder)
    settings, _ = resolve_settings([models["final"]["path"], models["base"]["path"]], config)
    settings = settings.with_changes(source=f"run config {Path(run_dir) / 'config.yaml'}")
    labels = ["base", "final"]
    best = choose(report)["label"]
    labels += [best] if best not in labels else []
    scored = {
        label: evaluate_model(models[label]["path"], data, settings, label=label).metrics
        for label in labels
    }
    report["general"] = {"data": str(folder), "models": scored}
    return report["general"]


def below_base(
    report: dict | None, metric: str = METRIC, where: str = "models"
) -> tuple[float, float] | None:
    """(base, final) when the fine-tuned model scores below the base on the held-out split
    (`where="general"`: on the general set)."""
    block = (report or {}).get(where) or {}
    models = block.get("models", {}) if where == "general" else block
    base, final = (models.get(k, {}).get(metric) for k in ("base", "final"))
    if isinstance(base, int | float) and isinstance(final, int | float) and final < base:
        return base, final
    return None


def outcome_lines(run_dir: str | Path, report: dict | None) -> list[str]:
    """What every face says about the outcome (plain text, `code` in backticks)."""
    if not report or not report.get("models"):
        return []
    lines = []
    choice = report.get("choice")
    worse = below_base(report)
    if worse:
        base, final = worse
        lines.append(
            f"The fine-tuned model scores below the base on the held-out split: nDCG@10 "
            f"{base:.4f} (base) -> {final:.4f} (final). Fine-tuning made it worse there."
        )
    general = below_base(report, where="general")
    if general:
        base, final = general
        lines.append(
            "The fine-tuned model scores below the base on the general set "
            f"{report['general']['data']}: nDCG@10 {base:.4f} (base) -> {final:.4f} (final). "
            "It lost general ability while learning the domain."
        )
    worse = worse or general
    if choice and choice.get("label") == "base" and choice.get("why", "").startswith("highest"):
        lines.append(
            "No checkpoint beat the base model on the held-out split: the base model is what "
            "was exported."
        )
    if worse or (choice and choice.get("label") == "base"):
        lines.append(
            "Mix it with the base (LM-Cocktail), each mix evaluated: "
            f"`{merge_command(run_dir, report)}`"
        )
    if choice and choice.get("exported"):
        lines.append(
            f"exported: {choice['exported']} ({choice['label']}, {choice['why']}: "
            f"{choice['score']:.4f}); pick another with "
            f"`python -m studio export-model {shlex.quote(str(run_dir))} --checkpoint N|base|final`"
        )
    return lines


def choice_rows(choice: dict) -> list[dict[str, Any]]:
    """The choice table: every candidate, its score, and which one was exported; checkpoints
    deleted by `save_total_limit` (scored during training) among them by step."""
    name = _name(choice.get("metric", METRIC))
    gone = [{**r, "deleted": True} for r in choice.get("deleted", [])]
    rows = sorted(
        [*choice.get("rows", []), *gone],
        key=lambda r: (r["step"] or 0, _rank(r["label"], r["step"])),
    )
    return [
        {
            "model": r["label"],
            "step": r["step"] if r["step"] is not None else "",
            name: r["score"],
            "exported": "✓ " + choice["why"]
            if r.get("chosen")
            else "deleted by save_total_limit (scored during training)"
            if r.get("deleted")
            else "",
        }
        for r in rows
    ]
