"""Turning the core's data into what a widget shows: HTML text, tables, figure widgets.

The words come from :mod:`studio.app.views` (the web UI shows the same Markdown); this module only
turns them into HTML for ``ipywidgets.HTML`` and builds tables and figure widgets. Pure
functions (data in, a string or a widget out), so the panels stay layout only and tests read
what a panel shows from its widgets' values.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from studio.app import views
from studio.facts.problems import Problem


def pre(text: str, max_height: str = "24em") -> str:
    """Preformatted text in a scroll box, escaped (a command, a log tail, a config)."""
    return (
        f"<pre style='max-height:{max_height};overflow:auto;margin:0;white-space:pre;"
        f"font-size:12px'>{html.escape(text or '')}</pre>"
    )


def problems_html(problems: list[Problem], empty: str = views.NO_PROBLEMS) -> str:
    """A list of problems, one line each: level, where, message and the fix."""
    return views.to_html(views.problems_text(problems, empty))


def problems_frame(problems: list[Problem]):
    """Problems as a DataFrame (level, where, message, fix) for a notebook cell to show."""
    import pandas as pd

    rows = [
        {"level": p.level, "where": p.where(), "message": p.message, "fix": p.fix} for p in problems
    ]
    return pd.DataFrame(rows, columns=["level", "where", "message", "fix"])


def table_html(frame: Any, max_rows: int = 50) -> str:
    """A DataFrame (or a list of dicts) as an escaped HTML table; an empty one as a dash."""
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        frame = pd.DataFrame(frame)
    if frame.empty:
        return "<div>–</div>"
    return frame.head(max_rows).to_html(
        index=False, escape=True, border=0, float_format=lambda v: f"{v:.4g}"
    )


def status_html(run_dir: Path | None, status: dict | None, note: str = "") -> str:
    """The watched run: name, state, phase, exit code of a failure, error and log tail."""
    return views.to_html(views.status_text(run_dir, status, note))


def progress_text(info: dict[str, Any], status: dict | None = None) -> str:
    """'step 4/12 · elapsed 40s · ETA 80s' from studio.charts.progress; before the first
    step, the run's phase ('building DeepSpeed op fused_adam · 42s since start')."""
    return views.inline_html(views.progress_text(info, status))


def figure_widget(figure):
    """A Plotly figure as a FigureWidget (a live widget; plain figures are not widgets)."""
    import plotly.graph_objects as go

    return go.FigureWidget(figure)
