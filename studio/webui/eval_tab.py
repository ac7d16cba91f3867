"""The Evaluate tab: retrieval quality before and after fine-tuning (studio.evaluation).

Two ways in: evaluate a run (base, every checkpoint and the final model, written to the run's
eval.json), or compare any two models on any evaluation folder with the form's pooling,
instructions and lengths. Embeddings are cached, so the base model is encoded once.
"""

from __future__ import annotations

from pathlib import Path

from studio.evaluation.metrics import parse_ks
from studio.i18n import t
from studio.runfolder import RunState


def cutoffs(text: str) -> list[int]:
    """The k values typed in the tab: the core's parser (commas or spaces), as the CLI and the
    notebook read them."""
    return parse_ks(text)


def build(ctx, reg, lang: str):
    import gradio as gr

    from studio import runs

    gr.Markdown(t("eval_intro", lang))
    with gr.Row():
        data_dir = gr.Textbox(
            label=t("eval_data", lang), value="example_data/eval", elem_id="eval-data"
        )
        ks = gr.Textbox(label="k", value="1,5,10,100", elem_id="eval-k")
    retriever = gr.Textbox(label=t("eval_retriever", lang), value="", elem_id="eval-retriever")
    with gr.Tab(t("eval_run", lang)):
        with gr.Row():
            run_pick = gr.Dropdown(choices=[], label=t("run", lang), elem_id="eval-run")
            refresh = gr.Button(t("refresh", lang), scale=0)
        run_btn = gr.Button(t("eval_run", lang), variant="primary", elem_id="eval-run-btn")
    with gr.Tab(t("eval_models", lang)):
        with gr.Row():
            baseline = gr.Textbox(
                label=t("eval_baseline", lang),
                elem_id="eval-baseline",
                value="bundled:all-MiniLM-L6-v2",
            )
            model = gr.Textbox(label=t("eval_model", lang), elem_id="eval-model")
        models_btn = gr.Button(t("eval_models", lang), elem_id="eval-models-btn")
    with gr.Tab(t("merge", lang)):
        with gr.Row():
            merge_base = gr.Textbox(
                label=t("eval_baseline", lang),
                value="bundled:all-MiniLM-L6-v2",
                elem_id="merge-base",
            )
            merge_model = gr.Textbox(label=t("eval_model", lang), elem_id="merge-model")
        with gr.Row():
            merge_weights = gr.Textbox(
                label=t("merge_weights", lang), value="0,0.5,1", elem_id="merge-weights"
            )
            merge_general = gr.Textbox(label=t("merge_general", lang), elem_id="merge-general")
            merge_out = gr.Textbox(label=t("merge_out", lang), value="merges", elem_id="merge-out")
        merge_btn = gr.Button(t("merge", lang), elem_id="merge-btn")
        merge_md = gr.Markdown(elem_id="merge-summary")
        merge_table = gr.Dataframe(interactive=False, elem_id="merge-table")
        merge_chart = gr.Plot(elem_id="merge-chart")
        with gr.Row():
            merge_dest = gr.Textbox(label=t("merge_export", lang), elem_id="merge-export-to")
            merge_export_btn = gr.Button(t("merge_export", lang), scale=0)
        merge_state = gr.State(None)
    summary = gr.Markdown(elem_id="eval-summary")
    table = gr.Dataframe(interactive=False, label=t("eval_table", lang), elem_id="eval-table")
    chart = gr.Plot(elem_id="eval-chart")
    steps_plot = gr.Plot(elem_id="eval-steps")
    per_query = gr.Dataframe(
        interactive=False, wrap=True, label=t("eval_per_query", lang), elem_id="eval-per-query"
    )

    def k_values(text: str) -> list[int]:
        try:
            return cutoffs(text)
        except ValueError as exc:
            raise gr.Error(f"{exc}; e.g. 1,5,10 or 1 5 10") from None

    def data_path(text: str) -> Path:
        path = (ctx.base_dir / (text or "example_data/eval")).resolve()
        if not path.is_dir():
            raise gr.Error(f"No evaluation folder {path}.")
        return path

    def list_runs():
        names = [r.name for r in runs.list_runs(ctx.runs_dir) if r.state == RunState.SUCCEEDED]
        return gr.update(choices=names, value=names[0] if names else None)

    def retriever_path(text: str) -> str | None:
        from studio.config import resolve_model

        return resolve_model(text.strip(), ctx.base_dir) if text and text.strip() else None

    def evaluate_run(name, data_text, k_text, first_stage, progress=gr.Progress()):  # noqa: B008
        from studio.evaluation.run_eval import evaluate_run as run_eval

        if not name:
            raise gr.Error("Pick a finished run.")
        progress(0.1, desc="encoding (cached models are instant)")
        try:
            report = run_eval(
                ctx.runs_dir / name,
                data_path(data_text),
                ks=k_values(k_text),
                retriever=retriever_path(first_stage),
            )
        except (ValueError, FileNotFoundError) as exc:
            raise gr.Error(str(exc)) from None
        return _show(report, str(data_path(data_text)))

    def evaluate_models(
        base,
        tuned,
        data_text,
        k_text,
        first_stage,
        *values,
        progress=gr.Progress(),  # noqa: B008 - Gradio's progress tracker
    ):
        from studio.evaluation.evaluate import compare_models

        *values, explicit = values
        cfg, _ = reg.config_from(values, explicit)
        if not tuned:
            raise gr.Error("Give the fine-tuned model's folder (a run's model/ or a checkpoint).")
        data = data_path(data_text)
        progress(0.1, desc="encoding (cached models are instant)")
        try:
            report = compare_models(
                base, tuned, data, cfg, k_values(k_text), ctx.base_dir, retriever=first_stage
            )
        except (ValueError, FileNotFoundError, OSError) as exc:
            raise gr.Error(str(exc)) from None
        return _show(report, str(data))

    def _show(report, data_text):
        from studio.evaluation.present import results_view

        frame, bars, wins, steps = results_view(report, data_text)
        from studio.evaluation.module_eval import summary_line

        head = f"**{summary_line(report)}**" if report.get("delta") else ""
        notes = "\n".join(f"- {w}" for w in report.get("warnings", []))
        return (
            head + ("\n\n" + notes if notes else ""),
            frame,
            bars,
            steps if steps is not None else None,
            wins,
        )

    def merge_models(base, tuned, weights, general, out, data_text, k_text, *values, **kw):
        progress = kw.get("progress") or (lambda *a, **k: None)
        import pandas as pd

        from studio.evaluation import merge

        *values, explicit = values
        cfg, _ = reg.config_from(values, explicit)
        if not tuned:
            raise gr.Error("Give the fine-tuned model's folder (a run's model/ or a checkpoint).")
        progress(0.1, desc="merging and evaluating each mix")
        try:
            report = merge.sweep(
                base,
                tuned,
                merge.parse_weights(weights),
                data_path(data_text),
                ctx.base_dir / (out or "merges"),
                general_data=data_path(general) if general else None,
                config=cfg,
                ks=k_values(k_text),
            )
        except (ValueError, FileNotFoundError, FileExistsError, OSError) as exc:
            raise gr.Error(str(exc)) from None
        head = "\n".join(f"- {line}" for line in report.lines()[:1] + report.lines()[-1:])
        return head, pd.DataFrame(report.table()), merge.tradeoff_chart(report), report

    def export_merge(report, dest):
        from studio.evaluation import merge

        if report is None or not dest:
            raise gr.Error("Merge first, then give a new folder to export the best mix to.")
        try:
            path = merge.export_mix(report, ctx.base_dir / dest)
        except (FileExistsError, ValueError) as exc:
            raise gr.Error(str(exc)) from None
        return f"Exported the best mix (w={report.best().weight:.2f}) to `{path}`."

    merge_btn.click(
        merge_models,
        [
            merge_base,
            merge_model,
            merge_weights,
            merge_general,
            merge_out,
            data_dir,
            ks,
            *reg.inputs(),
            reg.explicit,
        ],
        [merge_md, merge_table, merge_chart, merge_state],
    )
    merge_export_btn.click(export_merge, [merge_state, merge_dest], merge_md)

    outputs = [summary, table, chart, steps_plot, per_query]
    refresh.click(list_runs, None, run_pick)
    run_btn.click(evaluate_run, [run_pick, data_dir, ks, retriever], outputs)
    models_btn.click(
        evaluate_models,
        [baseline, model, data_dir, ks, retriever, *reg.inputs(), reg.explicit],
        outputs,
    )
    return run_pick, list_runs
