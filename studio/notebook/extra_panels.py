"""Notebook boxes for "will it fit, did it help": memory estimate, teacher scores, pairs from
documents, merging.

Layout only: each button calls one :class:`studio.notebook.Studio` method (``estimate_memory``,
``score_data``, ``convert_beir``, ``merge``), which calls the same core function as the CLI and the web page, and
the result is rendered with the text the web page shows (``views.memory_text``) or the core's
own lines (``MergeReport.lines()``).
"""

from __future__ import annotations

import html

from studio.notebook import render
from studio.notebook.actions import wire


class MemoryBox:
    """The memory estimate of the form's config (shown beside the pre-flight checks)."""

    def __init__(self, studio, lang: str = "en"):
        import ipywidgets as w

        from studio.facts.i18n import t

        self.studio = studio
        self.button = w.Button(description=t("memory_btn", lang))
        self.output = w.HTML()
        self.message = w.HTML()
        self.widget = w.VBox(
            [w.HTML(f"<b>{t('memory', lang)}</b>"), self.button, self.output, self.message]
        )
        wire(self.button, self.update, self.message)

    def update(self):
        from studio.app import views

        est = self.studio.estimate_memory()
        self.output.value = views.to_html(views.memory_text(est))
        return est


class ConvertBox:
    """A BEIR folder (corpus, queries, qrels) turned into training rows."""

    def __init__(self, studio, lang: str = "en"):
        import ipywidgets as w

        from studio.facts.i18n import t

        self.studio = studio
        wide = {"style": {"description_width": "initial"}, "layout": w.Layout(width="98%")}
        self.folder = w.Text(description="BEIR folder", **wide)
        self.out = w.Text(value="beir.jsonl", description=t("data_convert_out", lang), **wide)
        self.min_grade = w.BoundedIntText(
            value=1, min=1, max=100, description=t("data_convert_grade", lang), **wide
        )
        self.button = w.Button(description=t("data_convert", lang), layout=w.Layout(width="auto"))
        self.output = w.HTML()
        self.message = w.HTML()
        self.widget = w.VBox(
            [
                w.HTML(f"<b>{t('data_convert', lang)}</b>"),
                self.folder,
                self.out,
                self.min_grade,
                self.button,
                self.output,
                self.message,
            ]
        )
        wire(self.button, self.convert, self.message)

    def convert(self):
        from studio.app import views

        result = self.studio.convert_beir(self.folder.value, self.out.value, self.min_grade.value)
        text = views.facts_text(result.summary())
        text += "\n\n" + views.problems_text(result.problems, empty="")
        self.output.value = views.to_html(text)
        return result


class ScoreBox:
    """Teacher scores for a training file, then the KD settings to use them."""

    def __init__(self, studio, lang: str = "en"):
        import ipywidgets as w

        from studio.facts.i18n import t

        self.studio = studio
        wide = {"style": {"description_width": "initial"}, "layout": w.Layout(width="98%")}
        self.path = w.Text(description="Training file (empty: the form's)", **wide)
        self.out = w.Text(value="train.scored.jsonl", description=t("data_score_out", lang), **wide)
        self.model = w.Text(description=t("data_score_model", lang), **wide)
        self.button = w.Button(description=t("data_score", lang), layout=w.Layout(width="auto"))
        self.output = w.HTML()
        self.message = w.HTML()
        self.widget = w.VBox(
            [
                w.HTML(f"<b>{t('data_score', lang)}</b>"),
                self.path,
                self.out,
                self.model,
                self.button,
                self.output,
                self.message,
            ]
        )
        wire(self.button, self.score, self.message)

    def score(self):
        from studio.datawork.score import kd_settings_text

        result = self.studio.score_data(
            self.path.value or None, self.out.value, model=self.model.value or None
        )
        lines = [f"{k}: {v}" for k, v in result.summary().items()]
        lines += [str(p) for p in result.problems[:20]]
        lines += ["", "To distil from these scores, set:", kd_settings_text(result.out_path)]
        self.output.value = render.pre("\n".join(lines))
        return result


class PairsBox:
    """Training pairs from documents (title, crops or LLM questions), then mine negatives."""

    def __init__(self, studio, lang: str = "en"):
        import ipywidgets as w

        from studio.facts.i18n import t

        self.studio = studio
        wide = {"style": {"description_width": "initial"}, "layout": w.Layout(width="98%")}
        self.corpus = w.Text(description=t("data_pairs_corpus", lang), **wide)
        self.method = w.Dropdown(
            options=["title", "crop", "llm"],
            value="title",
            description=t("data_pairs_method", lang),
        )
        self.out = w.Text(value="pairs.jsonl", description=t("data_pairs_out", lang), **wide)
        self.base_url = w.Text(description=t("data_pairs_llm", lang), **wide)
        self.model = w.Text(description="model", **wide)
        self.button = w.Button(description=t("data_pairs", lang), layout=w.Layout(width="auto"))
        self.output = w.HTML()
        self.message = w.HTML()
        self.widget = w.VBox(
            [
                w.HTML(f"<b>{t('data_pairs', lang)}</b>"),
                self.corpus,
                self.method,
                self.out,
                self.base_url,
                self.model,
                self.button,
                self.output,
                self.message,
            ]
        )
        wire(self.button, self.make, self.message)

    def make(self):
        result = self.studio.make_pairs(
            self.corpus.value,
            self.out.value,
            self.method.value,
            base_url=self.base_url.value,
            model=self.model.value,
        )
        lines = [f"{k}: {v}" for k, v in result.summary().items()]
        lines += [str(p) for p in result.problems[:20]]
        self.output.value = render.pre("\n".join(lines))
        return result


class MergeBox:
    """LM-Cocktail mixes of a fine-tuned model and its base, each evaluated, with the chart."""

    def __init__(self, studio, eval_panel, lang: str = "en"):
        import ipywidgets as w

        from studio.facts.i18n import t

        self.studio = studio
        self.eval_panel = eval_panel
        self.report = None
        wide = {"style": {"description_width": "initial"}, "layout": w.Layout(width="98%")}
        self.base = w.Text(
            value="bundled:all-MiniLM-L6-v2", description=t("eval_baseline", lang), **wide
        )
        self.model = w.Text(description=t("eval_model", lang), **wide)
        self.weights = w.Text(value="0,0.5,1", description=t("merge_weights", lang), **wide)
        self.general = w.Text(description=t("merge_general", lang), **wide)
        self.out = w.Text(value="merges", description=t("merge_out", lang), **wide)
        self.button = w.Button(description=t("merge", lang), layout=w.Layout(width="auto"))
        self.export_to = w.Text(description=t("merge_export", lang), **wide)
        self.export_button = w.Button(
            description=t("merge_export", lang), layout=w.Layout(width="auto")
        )
        self.output = w.HTML()
        self.chart = w.Box(layout=w.Layout(width="98%"))
        self.message = w.HTML()
        self.widget = w.VBox(
            [
                w.HTML(f"<b>{html.escape(t('merge', lang))}</b>"),
                self.base,
                self.model,
                self.weights,
                self.general,
                self.out,
                self.button,
                self.output,
                self.chart,
                self.export_to,
                self.export_button,
                self.message,
            ]
        )
        wire(self.button, self.merge, self.message)
        wire(self.export_button, self.export, self.message)

    def merge(self):
        from studio.evaluation.merge import tradeoff_chart

        self.report = self.studio.merge(
            self.model.value,
            base=self.base.value,
            weights=self.weights.value,
            eval_data=self.eval_panel.data.value or None,
            general_data=self.general.value or None,
            out=self.out.value or "merges",
            ks=self.eval_panel.ks.value,
        )
        self.output.value = render.pre("\n".join(self.report.lines()))
        self.chart.children = (render.figure_widget(tradeoff_chart(self.report)),)
        return self.report

    def export(self):
        from studio.evaluation.merge import export_mix

        if self.report is None:
            raise ValueError("Merge first, then export the best mix.")
        path = export_mix(self.report, self.studio.base_dir / self.export_to.value)
        self.message.value = f"Exported to {html.escape(str(path))}."
        return path
