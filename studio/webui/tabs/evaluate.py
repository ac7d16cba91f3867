"""Evaluate: retrieval quality before and after fine-tuning (studio.evaluation).

Two ways in: evaluate a run (base, every checkpoint and the final model, written to the run's
eval.json), or compare any two models on any evaluation folder with the form's pooling,
instructions and lengths; then mix the two with LM-Cocktail. Embeddings are cached, so the base
model is encoded once.
"""

from __future__ import annotations

from studio.app import actions, views
from studio.facts.i18n import t
from studio.webui import form_state

ID, TITLE = "evaluate", "tab.evaluate"
RESULTS = ("eval.summary", "eval.table", "eval.chart", "eval.steps", "eval.per_query")
BUNDLED = "bundled:all-MiniLM-L6-v2"


def layout(ctx, reg, lang: str) -> None:
    import gradio as gr

    add = reg.add
    gr.Markdown(t("eval_intro", lang))
    with gr.Row():
        add(
            "eval.data",
            gr.Textbox(label=t("eval_data", lang), value="example_data/eval", elem_id="eval-data"),
        )
        add("eval.k", gr.Textbox(label="k", value="1,5,10,100", elem_id="eval-k"))
    add(
        "eval.retriever",
        gr.Textbox(label=t("eval_retriever", lang), value="", elem_id="eval-retriever"),
    )
    with gr.Tab(t("eval_run", lang)):
        with gr.Row():
            add("eval.run", gr.Dropdown(choices=[], label=t("run", lang), elem_id="eval-run"))
            add("eval.refresh", gr.Button(t("refresh", lang), scale=0))
        add(
            "eval.run_button",
            gr.Button(t("eval_run", lang), variant="primary", elem_id="eval-run-btn"),
        )
    with gr.Tab(t("eval_models", lang)):
        with gr.Row():
            add(
                "eval.baseline",
                gr.Textbox(label=t("eval_baseline", lang), elem_id="eval-baseline", value=BUNDLED),
            )
            add("eval.model", gr.Textbox(label=t("eval_model", lang), elem_id="eval-model"))
        add("eval.models_button", gr.Button(t("eval_models", lang), elem_id="eval-models-btn"))
    with gr.Tab(t("merge", lang)):
        with gr.Row():
            add(
                "merge.base",
                gr.Textbox(label=t("eval_baseline", lang), value=BUNDLED, elem_id="merge-base"),
            )
            add("merge.model", gr.Textbox(label=t("eval_model", lang), elem_id="merge-model"))
        with gr.Row():
            add(
                "merge.weights",
                gr.Textbox(
                    label=t("merge_weights", lang), value="0,0.5,1", elem_id="merge-weights"
                ),
            )
            add(
                "merge.general_data",
                gr.Textbox(label=t("merge_general", lang), elem_id="merge-general"),
            )
            add(
                "merge.out",
                gr.Textbox(label=t("merge_out", lang), value="merges", elem_id="merge-out"),
            )
        add("merge.button", gr.Button(t("merge", lang), elem_id="merge-btn"))
        add("merge.summary", gr.Markdown(elem_id="merge-summary"))
        add("merge.table", gr.Dataframe(interactive=False, elem_id="merge-table"))
        add("merge.chart", gr.Plot(elem_id="merge-chart"))
        with gr.Row():
            add("merge.dest", gr.Textbox(label=t("merge_export", lang), elem_id="merge-export-to"))
            add("merge.export", gr.Button(t("merge_export", lang), scale=0))
        add("merge.report", gr.State(None))
    add("eval.summary", gr.Markdown(elem_id="eval-summary"))
    add(
        "eval.table",
        gr.Dataframe(interactive=False, label=t("eval_table", lang), elem_id="eval-table"),
    )
    add("eval.chart", gr.Plot(elem_id="eval-chart"))
    add("eval.steps", gr.Plot(elem_id="eval-steps"))
    add(
        "eval.per_query",
        gr.Dataframe(
            interactive=False, wrap=True, label=t("eval_per_query", lang), elem_id="eval-per-query"
        ),
    )


def shown(report: dict) -> list:
    """An evaluation report as RESULTS' values (the same EvalView the notebook shows)."""
    view = actions.eval_view(report)
    return [view.summary, view.table, view.chart, view.steps, view.per_query]


def bind(ctx, reg, demo) -> None:
    import gradio as gr

    ws = ctx.ws
    common = ("eval.data", "eval.k", "eval.retriever")

    def value(data, cid):
        return data[reg[cid]]

    def list_runs():
        names = actions.finished_runs(ws)
        return gr.update(choices=names, value=names[0] if names else None)

    def shared(data) -> dict:
        return reg.pick(data, data="eval.data", ks="eval.k", retriever="eval.retriever")

    def evaluate_run(data, progress=gr.Progress()):  # noqa: B008 - how Gradio injects progress
        name = value(data, "eval.run")
        if not name:
            raise gr.Error("Pick a finished run.")
        progress(0.1, desc="encoding (cached models are instant)")
        with form_state.shown_errors():
            report = actions.evaluate_run(ws, name, inside=True, **shared(data))
        return dict(zip(reg.many(*RESULTS), shown(report), strict=True))

    def evaluate_models(data, progress=gr.Progress()):  # noqa: B008 - how Gradio injects progress
        cfg, _ = form_state.read_config(reg, data)
        models = reg.pick(data, baseline="eval.baseline", model="eval.model")
        progress(0.1, desc="encoding (cached models are instant)")
        with form_state.shown_errors():
            report = actions.compare_models(ws, cfg, **models, **shared(data))
        return dict(zip(reg.many(*RESULTS), shown(report), strict=True))

    def merge(data, progress=gr.Progress()):  # noqa: B008 - how Gradio injects progress
        import pandas as pd

        from studio.evaluation.merge import tradeoff_chart

        cfg, _ = form_state.read_config(reg, data)
        options = {**reg.values(data, "merge."), **reg.pick(data, data="eval.data", ks="eval.k")}
        progress(0.1, desc="merging and evaluating each mix")
        with form_state.shown_errors():
            report = actions.merge(ws, cfg, **options)
        lines = report.lines()
        return {
            reg["merge.summary"]: "\n".join(f"- {views.escape(x)}" for x in lines[:1] + lines[-1:]),
            reg["merge.table"]: pd.DataFrame(report.table()),
            reg["merge.chart"]: tradeoff_chart(report),
            reg["merge.report"]: report,
        }

    def export_merge(data):
        report = value(data, "merge.report")
        with form_state.shown_errors():
            path = actions.export_merge(ws, report, value(data, "merge.dest"))
        return f"Exported the best mix (w={report.best().weight:.2f}) to {views.code(path)}."

    results = reg.many(*RESULTS)
    reg["eval.refresh"].click(list_runs, None, reg["eval.run"])
    demo.load(list_runs, None, reg["eval.run"])
    reg["eval.run_button"].click(evaluate_run, set(reg.many("eval.run", *common)), results)
    reg["eval.models_button"].click(
        evaluate_models,
        {*reg.many("eval.baseline", "eval.model", *common), *reg.form_inputs()},
        results,
    )
    merge_inputs = ("merge.base", "merge.model", "merge.weights", "merge.general_data", "merge.out")
    reg["merge.button"].click(
        merge,
        {*reg.many(*merge_inputs, "eval.data", "eval.k"), *reg.form_inputs()},
        reg.many("merge.summary", "merge.table", "merge.chart", "merge.report"),
    )
    reg["merge.export"].click(
        export_merge, set(reg.many("merge.report", "merge.dest")), reg["merge.summary"]
    )
