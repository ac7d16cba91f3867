"""The Data panel: check, statistics, instruction preview, token lengths and how hard the
negatives are, over the form.

Each button calls the studio method a cell would call (``check_data``, ``data_stats``,
``preview``, ``token_lengths``, ``difficulty``), which reads the form as it is now, and shows what that
returned. The last result of each stays on the panel (``panel.results``) for a cell to use.
"""

from __future__ import annotations

import html
from typing import Any

from studio.app import views
from studio.notebook import render
from studio.notebook.actions import wire


class DataPanel:
    def __init__(self, studio, lang: str = "en"):
        import ipywidgets as w

        from studio.facts.i18n import t

        self.studio = studio
        self.results: dict[str, Any] = {}
        wide = w.Layout(width="98%")
        self.paths = w.Textarea(
            placeholder="(the form's training data)",
            description=t("data_paths", lang),
            style={"description_width": "initial"},
            rows=2,
            layout=wide,
        )
        self.sample = w.IntText(
            value=2000, description=t("data_sample", lang), style={"description_width": "initial"}
        )
        self.check_button = w.Button(description=t("data_check", lang), button_style="primary")
        self.stats_button = w.Button(description=t("data_stats", lang))
        self.preview_button = w.Button(description=t("data_preview", lang))
        self.lengths_button = w.Button(description=t("data_lengths", lang))
        self.difficulty_button = w.Button(description=t("data_difficulty", lang))
        self.message = w.HTML()
        self.report = w.HTML()  # check: summary, problems by kind, first problems
        self.stats = w.HTML()
        self.stats_plot = w.Box(layout=wide)
        self.preview_table = w.HTML()
        self.lengths = w.HTML()
        self.lengths_plot = w.Box(layout=wide)
        self.difficulty = w.HTML()
        self.difficulty_plot = w.Box(layout=wide)
        self.widget = w.VBox(
            [
                w.HTML(html.escape(t("data_intro", lang))),
                self.paths,
                w.HBox(
                    [self.check_button, self.stats_button, self.preview_button, self.sample]
                    + [self.lengths_button, self.difficulty_button]
                ),
                self.message,
                self.report,
                self.stats,
                self.stats_plot,
                self.preview_table,
                self.lengths,
                self.lengths_plot,
                self.difficulty,
                self.difficulty_plot,
            ]
        )
        wire(self.check_button, self.check, self.message)
        wire(self.stats_button, self.show_stats, self.message)
        wire(self.preview_button, self.show_preview, self.message)
        wire(self.lengths_button, self.show_lengths, self.message)
        wire(self.difficulty_button, self.show_difficulty, self.message)

    def _typed_paths(self) -> list[str] | None:
        typed = [line.strip() for line in self.paths.value.splitlines() if line.strip()]
        return typed or None

    def check(self):
        report = self.studio.check_data(self._typed_paths())
        self.results["check"] = report
        head = views.to_html(views.check_headline(report))
        kinds = render.table_html(report.table()) if report.counts else ""
        self.report.value = head + kinds + render.problems_html(report.problems, empty="")
        return report

    def show_stats(self):
        result = self.studio.data_stats(self._typed_paths())
        self.results["stats"] = result
        self.stats.value = (
            "<b>Statistics</b>"
            + views.to_html(views.facts_text(result.summary))
            + render.table_html(result.files)
            + render.problems_html(result.problems, empty="")
        )
        self.stats_plot.children = (render.figure_widget(result.figure()),)
        return result

    def show_preview(self):
        rows = self.studio.preview(n=8, paths=self._typed_paths())
        warnings = self.studio.instruction_warnings(self._typed_paths())
        self.results["preview"] = rows
        self.preview_table.value = (
            "<b>What the model sees</b>"
            + render.table_html([r.to_dict() for r in rows])
            + render.problems_html(warnings, empty="")
        )
        return rows

    def show_lengths(self):
        result = self.studio.token_lengths(
            sample_size=int(self.sample.value or 2000), paths=self._typed_paths()
        )
        self.results["lengths"] = result
        self.lengths.value = (
            f"<b>Token lengths</b> ({html.escape(result.description())})"
            + render.table_html(result.table())
        )
        self.lengths_plot.children = (render.figure_widget(result.figure()),)
        return result

    def show_difficulty(self):
        result = self.studio.difficulty(
            sample_size=min(int(self.sample.value or 1000), 1000), paths=self._typed_paths()
        )
        self.results["difficulty"] = result
        self.difficulty.value = views.to_html(views.difficulty_text(result))
        self.difficulty_plot.children = (render.figure_widget(result.figure()),)
        return result
