"""The Runs panel: every run on disk, one opened, resumed, stopped or compared with others.

Runs are read from the runs folder each time (the disk is the only state), so runs started
from the web UI, the CLI or another notebook appear here too.
"""

from __future__ import annotations

from studio.notebook import render
from studio.notebook.actions import wire


class RunsPanel:
    def __init__(self, studio, lang: str = "en"):
        import ipywidgets as w

        from studio.facts.i18n import t

        self.studio = studio
        self.refresh_button = w.Button(description=t("refresh", lang))
        self.table = w.HTML()
        self.pick = w.Dropdown(options=[], description=t("run", lang))
        self.open_button = w.Button(description="Open")
        self.watch_button = w.Button(description="Watch in Train")
        self.resume_button = w.Button(description=t("resume", lang))
        self.stop_button = w.Button(description=t("stop", lang))
        self.load_button = w.Button(description=t("load_run_config", lang))
        for button in (self.resume_button, self.load_button):
            button.layout = w.Layout(width="auto")
        self.message = w.HTML()
        self.summary = w.HTML()
        self.plot = w.Box(layout=w.Layout(width="98%"))
        self.config_text = w.HTML()
        self.log = w.HTML()
        details = w.Accordion(children=[self.config_text, self.log], titles=("config.yaml", "log"))
        details.selected_index = None
        self.compare_pick = w.SelectMultiple(options=[], description=t("compare", lang), rows=5)
        self.compare_button = w.Button(description="Compare")
        self.compare_plot = w.Box(layout=w.Layout(width="98%"))
        self.widget = w.VBox(
            [
                self.refresh_button,
                self.table,
                self.pick,
                w.HBox(
                    [
                        self.open_button,
                        self.watch_button,
                        self.resume_button,
                        self.stop_button,
                        self.load_button,
                    ]
                ),
                self.message,
                self.summary,
                self.plot,
                details,
                w.HBox([self.compare_pick, self.compare_button]),
                self.compare_plot,
            ]
        )
        wire(self.refresh_button, self.update, self.message)
        wire(self.open_button, lambda: self.open(self.pick.value), self.message)
        wire(self.watch_button, lambda: studio.watch(self._picked()), self.message)
        wire(self.resume_button, self._resume, self.message)
        wire(self.stop_button, self._stop, self.message)
        wire(self.load_button, lambda: studio.load_run_config(self._picked()), self.message)
        wire(self.compare_button, self.compare, self.message)

    def _picked(self) -> str:
        if not self.pick.value:
            raise ValueError("Pick a run first.")
        return self.pick.value

    def update(self) -> list[str]:
        """Re-read the runs folder: the table and both pickers; return the run names."""
        frame = self.studio.runs_frame()
        self.table.value = render.table_html(frame)
        names = list(frame["name"]) if not frame.empty else []
        current = self.pick.value
        self.pick.options = names
        self.pick.value = current if current in names else (names[0] if names else None)
        chosen = [n for n in self.compare_pick.value if n in names]
        self.compare_pick.options = names
        self.compare_pick.value = tuple(chosen)
        return names

    def open(self, name: str | None) -> None:
        """Show a run: status and evaluation, its loss chart, config.yaml and log tail."""
        if not name:
            raise ValueError("Pick a run first.")
        view = self.studio.open_run(name)
        self.summary.value = view["summary"]
        self.plot.children = (render.figure_widget(view["figure"]),)
        self.config_text.value = render.pre(view["config"])
        self.log.value = render.pre(view["log"])

    def _resume(self) -> None:
        self.studio.resume(self._picked())
        self.update()

    def _stop(self) -> None:
        self.studio.stop(self._picked())
        self.update()

    def compare(self):
        names = list(self.compare_pick.value)
        if not names:
            raise ValueError("Pick runs to compare (ctrl/shift-click for several).")
        figure = self.studio.compare_runs(names)
        self.compare_plot.children = (render.figure_widget(figure),)
        return figure
