"""After a successful run: make the model load right elsewhere, and evaluate it if asked.

`python -m studio.post_train RUN_DIR`, started by the run's supervisor in the run's process
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

from studio.runfolder import RunFolder


def post_train(run_dir: Path) -> int:
    from studio.evaluation.export_modes import export_model
    from studio.evaluation.run_eval import evaluate_run
    from studio.runs import load_run_config

    config = load_run_config(run_dir)
    output_dir = Path(config.args["output_dir"])
    report = None
    errors = {}
    choosing = bool(config.studio.get("eval_at_save"))  # studio.best_model picks the export
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
    if choosing and report is not None:
        try:  # the best of base, checkpoints and final by held-out nDCG@10 -> RUN/exported
            from studio.best_model import export_choice, outcome_lines

            export_choice(run_dir, report)
            for line in outcome_lines(run_dir, report):
                print(f"[studio] {line}", flush=True)
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc()
            errors["export_error"] = f"{type(exc).__name__}: {exc}"
    if errors:
        RunFolder(run_dir).update_status(**errors)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(post_train(Path(sys.argv[1])))
