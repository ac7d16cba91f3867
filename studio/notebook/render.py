"""Turning the core's data into what a widget shows: HTML text, tables, figure widgets.

Pure functions (data in, a string or a widget out) so that the panels stay layout only and
tests can read what a panel shows from its widgets' values instead of a rendered page.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from studio import loss_health
from studio.problems import Problem
from studio.runfolder import RunState

_ICONS = {"error": "❌", "warning": "⚠️", "info": "ℹ️"}
_STATE_ICONS = {
    RunState.RUNNING: "🟢",
    RunState.SUCCEEDED: "✅",
    RunState.FAILED: "❌",
    RunState.STOPPED: "⏹",
}


def pre(text: str, max_height: str = "24em") -> str:
    """Preformatted text in a scroll box, escaped (a command, a log tail, a config)."""
    return (
        f"<pre style='max-height:{max_height};overflow:auto;margin:0;white-space:pre;"
        f"font-size:12px'>{html.escape(text or '')}</pre>"
    )


def problems_html(problems: list[Problem], empty: str = "✅ No problems found.") -> str:
    """A list of problems, one line each: level, where, message and the fix."""
    if not problems:
        return f"<div>{html.escape(empty)}</div>"
    items = []
    for p in problems:
        where = f" <code>{html.escape(p.where())}</code>" if p.where() else ""
        fix = f" — <i>{html.escape(p.fix)}</i>" if p.fix else ""
        items.append(
            f"<li>{_ICONS.get(p.level, '')} <b>{p.level}</b>{where}: "
            f"{html.escape(p.message)}{fix}</li>"
        )
    return "<ul style='margin:0;padding-left:1.2em'>" + "".join(items) + "</ul>"


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
    """One line about the watched run: its name, state, exit code and error line."""
    if run_dir is None:
        return f"<div>{html.escape(note or 'No run is being watched.')}</div>"
    status = status or {}
    from studio.runfolder import phase_text, state_of

    state = status.get("state", "unknown")
    phase = phase_text(status)
    text = f"{_STATE_ICONS.get(state, '')} <b>{html.escape(run_dir.name)}</b> — {state}"
    if phase:
        text += f" · <span class='studio-phase'>{html.escape(phase)}</span>"
    if state_of(status) is RunState.FAILED and status.get("exit_code") not in (None, 0):
        text += f" (exit code {status['exit_code']})"
    if status.get("error"):
        text += f"<br><b>Error:</b> <code>{html.escape(str(status['error']))}</code>"
    if status.get("log_tail"):
        text += "<br>Last lines of this attempt's log:" + pre(str(status["log_tail"]), "12em")
    for warning in loss_health.warning_lines(run_dir):
        text += f"<br>⚠️ {html.escape(warning)}"
    if note:
        text += f"<br>{html.escape(note)}"
    return f"<div>{text}</div>"


def progress_text(info: dict[str, Any], status: dict | None = None) -> str:
    """'step 4/12 · elapsed 40s · ETA 80s' from studio.charts.progress; before the first
    step, the run's phase ('building DeepSpeed op fused_adam · 42s since start')."""
    from studio.runfolder import phase_text

    phase = phase_text(status or {})
    if phase and not info.get("step"):
        return html.escape(phase)
    eta = info.get("eta_s")
    eta_text = f"{eta:.0f}s" if isinstance(eta, int | float) else "–"
    return (
        f"step <b>{info['step']}</b>/{info['total'] or '?'} · elapsed "
        f"{info['elapsed_s']:.0f}s · ETA {eta_text}"
    )


def figure_widget(figure):
    """A Plotly figure as a FigureWidget (a live widget; plain figures are not widgets)."""
    import plotly.graph_objects as go

    return go.FigureWidget(figure)


def report_html(head: str, lines: list[str]) -> str:
    body = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    return f"<div>{head}</div>" + (f"<ul>{body}</ul>" if body else "")
