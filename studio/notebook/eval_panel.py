"""The Evaluate panel: retrieval quality before and after fine-tuning, as a table and a chart.

Two ways in, as in the web UI: evaluate a run (its base model against its final model, and
its checkpoints when asked), or compare any two models with the form's pooling, instructions
and lengths. Embeddings are cached by the core, so the base model is encoded once.
"""

from __future__ import annotations

import html

from studio.notebook import render
from studio.notebook.actions import wire


class EvalPanel:
    def __init__(self, studio, lang: str = "en"):
        import ipywidgets as w

        from studio.facts.i18n import t

        self.studio = studio
        self.report: dict | None = None
        self.view: dict | None = None
        label = {"style": {"description_width": "initial"}, "layout": w.Layout(width="98%")}
        self.data = w.Text(
            value=studio.default_eval_data(), description=t("eval_data", lang), **label
        )
        self.ks = w.Text(value="1,5,10,100", description="k")
        self.checkpoints = w.Checkbox(value=False, description="with checkpoints", indent=False)
        self.run_pick = w.Dropdown(options=[], description=t("run", lang))
        self.refresh_button = w.Button(description=t("refresh", lang))
        self.run_button = w.Button(description=t("eval_run", lang), button_style="primary")
        self.baseline = w.Text(
            value="bundled:all-MiniLM-L6-v2", description=t("eval_baseline", lang), **label
        )
        self.model = w.Text(description=t("eval_model", lang), **label)
        self.retriever = w.Text(value="", description=t("eval_retriever", lang), **label)
        self.models_button = w.Button(description=t("eval_models", lang))
        for button in (self.run_button, self.models_button):
            button.layout = w.Layout(width="auto")
        self.message = w.HTML()
        self.summary = w.HTML()
        self.table = w.HTML()
        self.chart = w.Box(layout=w.Layout(width="98%"))
        self.steps = w.Box(layout=w.Layout(width="98%"))
        self.per_query = w.HTML()
        self.widget = w.VBox(
            [
                w.HTML(html.escape(t("eval_intro", lang))),
                self.data,
                w.HBox([self.ks, self.checkpoints]),
                self.retriever,
                w.HTML(f"<b>{t('eval_run', lang)}</b>"),
                w.HBox([self.run_pick, self.refresh_button, self.run_button]),
                w.HTML(f"<b>{t('eval_models', lang)}</b>"),
                self.baseline,
                self.model,
                self.models_button,
                self.message,
                self.summary,
                self.table,
                self.chart,
                self.steps,
                self.per_query,
            ]
        )
        wire(self.refresh_button, self.update, self.message)
        wire(self.run_button, self.evaluate_run, self.message)
        wire(self.models_button, self.compare_models, self.message)

    def update(self) -> list[str]:
        """The finished runs (those with a final model) in the run picker, newest first."""
        from studio.app import actions

        names = actions.finished_runs(self.studio.ws)
        current = self.run_pick.value
        self.run_pick.options = names
        self.run_pick.value = current if current in names else (names[0] if names else None)
        return names

    def evaluate_run(self) -> dict:
        if not self.run_pick.value:
            raise ValueError("Pick a finished run (Refresh lists them).")
        report = self.studio.evaluate(
            self.run_pick.value,
            eval_data=self.data.value or None,
            ks=self.ks.value,
            include_checkpoints=self.checkpoints.value,
            retriever=self.retriever.value.strip() or None,
        )
        self.show(report)
        return report

    def compare_models(self) -> dict:
        report = self.studio.compare_models(
            self.baseline.value,
            self.model.value,
            eval_data=self.data.value or None,
            ks=self.ks.value,
            retriever=self.retriever.value.strip() or None,
        )
        self.show(report)
        return report

    def show(self, report: dict) -> None:
        """Put a report (a run's eval.json or a comparison) on the panel."""
        view = self.studio.eval_view(report)
        self.report, self.view = report, view
        self.summary.value = view["summary"]
        self.table.value = render.table_html(view["table"])
        self.chart.children = (render.figure_widget(view["chart"]),)
        steps = view["steps"]
        self.steps.children = (render.figure_widget(steps),) if steps is not None else ()
        per_query = view["per_query"]
        self.per_query.value = (
            "<b>Largest wins and losses per query</b>" + render.table_html(per_query)
            if per_query is not None
            else ""
        )
