"""The Train panel: pre-flight, Start/Stop, a progress bar, a live loss chart and the log tail.

Layout and drawing only. The chart is a Plotly ``FigureWidget`` whose traces are updated in
place from :func:`studio.training.charts.training_figure` (the web UI's figure, the same decimated
points), so the browser receives new points instead of a new figure, and only when a refresh
brought new steps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from studio.facts.runfolder import RunFolder, RunState
from studio.notebook import render
from studio.notebook.actions import wire

if TYPE_CHECKING:
    from studio.notebook.session import RunSession

_BAR_STYLE = {RunState.SUCCEEDED: "success", RunState.FAILED: "danger", RunState.STOPPED: "warning"}


class TrainPanel:
    def __init__(self, studio, lang: str = "en"):
        import ipywidgets as w

        from studio.facts.i18n import t
        from studio.training.charts import Series, training_figure

        self.preflight = studio.preflight
        self.start_button = w.Button(description=t("start", lang), button_style="primary")
        self.stop_button = w.Button(description=t("stop", lang), button_style="danger")
        self.stop_button.disabled = True
        self.message = w.HTML()
        self.status = w.HTML(render.status_html(None, None))
        self.progress = w.IntProgress(min=0, max=1, value=0, layout=w.Layout(width="60%"))
        self.progress_label = w.HTML(render.progress_text(_progress(Series())))
        self.figure = render.figure_widget(training_figure(Series()))
        self.log = w.HTML()
        log_box = w.Accordion(children=[self.log], titles=(t("log", lang),))
        log_box.selected_index = None
        self.widget = w.VBox(
            [
                w.HTML(f"<b>{t('preflight', lang)}</b>"),
                self.preflight,
                w.HBox([self.start_button, self.stop_button]),
                self.message,
                self.status,
                w.HBox([self.progress, self.progress_label]),
                self.figure,
                log_box,
            ]
        )
        self._drawn_key: Any = None
        self._log_text = ""
        wire(self.start_button, studio.start, self.message)
        wire(self.stop_button, studio.stop, self.message)

    def update(self, session: RunSession, added: int) -> None:
        """Redraw from the session after a refresh (called with the session's lock held)."""
        from studio.training.runlog import tail_lines

        run_dir, series, status = session.run_dir, session.series, session.status
        if run_dir is None:
            return
        state = status.get("state")
        self.status.value = render.status_html(run_dir, status, note=session.error or "")
        self.stop_button.disabled = state != RunState.RUNNING
        info = _progress(series)
        self.progress.max = max(int(info["total"] or 0), int(info["step"]), 1)
        self.progress.value = min(int(info["step"]), self.progress.max)
        self.progress.bar_style = _BAR_STYLE.get(state, "")
        self.progress_label.value = render.progress_text(info, status)
        key = (str(run_dir), id(series))
        if added or key != self._drawn_key:
            self.draw(series, run_dir.name)
            self._drawn_key = key
        text = tail_lines(RunFolder(run_dir).log, 30)
        if text != self._log_text:
            self._log_text = text
            self.log.value = render.pre(text, max_height="18em")

    def draw(self, series, title: str = "") -> None:
        """Put the series' points into the figure widget's existing traces, in one message."""
        from studio.training.charts import training_figure

        fresh = training_figure(series, title)
        with self.figure.batch_update():
            for old, new in zip(self.figure.data, fresh.data, strict=True):
                old.x, old.y, old.mode = new.x, new.y, new.mode
            self.figure.layout.title = fresh.layout.title
            for name in ("xaxis", "xaxis2", "xaxis3"):
                self.figure.layout[name].range = fresh.layout[name].range

    def set_startable(self, ok: bool) -> None:
        self.start_button.disabled = not ok


def _progress(series) -> dict[str, Any]:
    from studio.training.charts import progress

    return progress(series)
