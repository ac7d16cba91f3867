"""After a successful run: make the model load right elsewhere, and evaluate it if asked.

`python -m studio.training.post_train RUN_DIR`, started by the run's supervisor in the run's process
group (so Stop reaches it too), with its output appended to train.log. It writes the
sentence-transformers files and a model card into the output folder (FlagEmbedding saves
none, so SentenceTransformer would mean-pool a CLS-trained model), and with
`studio: {evaluate_at_end: true}` evaluates base, checkpoints and final model into eval.json;
`studio: {eval_at_save: true}` also exports the best of them to RUN/exported (studio.best_model).
A failure here is reported in status.json but never turns a finished training into a failure.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

from studio.facts.runfolder import RunFolder


def post_train(run_dir: Path) -> int:
    from studio.evaluation.export_modes import export_model
    from studio.training.run_eval import evaluate_run
    from studio.training.runs import load_run_config

    config = load_run_config(run_dir)
    output_dir = Path(config.args["output_dir"])
    report = None
    errors = {}
    from studio.evaluation.modes import BASE, module_of

    # studio.best_model picks the export (the base embedder; pre-flight says so for the others)
    choosing = bool(config.studio.get("eval_at_save")) and module_of(config) == BASE
    if config.studio.get("evaluate_at_end") or choosing:
        try:
            print(f"[studio] evaluating {run_dir.name} ...", flush=True)
            report = evaluate_run(run_dir)
            delta = report.get("delta", {}).get("ndcg_at_10")
            if delta is not None:
                print(f"[studio] nDCG@10 change vs base: {delta:+.4f}", flush=True)
            for mode, block in (report.get("modes") or {}).items():
                change = block.get("delta", {}).get("ndcg_at_10")
                if change is not None and len(report["modes"]) > 1:
                    print(f"[studio]   {mode}: nDCG@10 change {change:+.4f}", flush=True)
        except Exception as exc:  # noqa: BLE001 - recorded, the training itself succeeded
            traceback.print_exc()
            errors["eval_error"] = f"{type(exc).__name__}: {exc}"
    try:  # per module (export_modes): only the base embedder gets sentence-transformers pooling
        result = export_model(output_dir, config, report)
        print(f"[studio] export and model card written to {output_dir}", flush=True)
        del result
    except Exception as exc:  # noqa: BLE001
        traceback.print_exc()
        errors["export_error"] = f"{type(exc).__name__}: {exc}"
    if report is not None and config.studio.get("general_data"):
        try:  # base, final (and the choice) on the general set the user named
            from studio.facts.statusfile import write_json
            from studio.training.best_model import evaluate_general

            print(f"[studio] evaluating on {config.studio['general_data']} ...", flush=True)
            evaluate_general(run_dir, report)
            write_json(run_dir / RunFolder.EVAL, report)
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc()
            errors["eval_error"] = f"general set: {type(exc).__name__}: {exc}"
    if choosing and report is not None:
        try:  # the best of base, checkpoints and final by held-out nDCG@10 -> RUN/exported
            from studio.training.best_model import export_choice

            export_choice(run_dir, report)
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc()
            errors["export_error"] = f"{type(exc).__name__}: {exc}"
    if report is not None:
        from studio.training.best_model import outcome_lines

        for line in outcome_lines(run_dir, report):
            print(f"[studio] {line}", flush=True)
    if errors:
        RunFolder(run_dir).update_status(**errors)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(post_train(Path(sys.argv[1])))
