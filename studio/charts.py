"""Training curves: incremental series from metrics records, and the Plotly figures drawn from them.

A chart is redrawn about once a second while a run logs, and runs may log 50,000 steps, so the
cost of one update must not grow with the run: :class:`Series` appends only new records
(keeping the smoothed loss incrementally), and figures draw at most ``MAX_POINTS`` points per
trace, chosen by min/max bucketing so spikes stay visible. Web UI and notebook both draw from
here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

MAX_POINTS = 1500
SMOOTHING = 0.9  # EMA weight, as TensorBoard's default-ish slider


@dataclass
class Series:
    """Per-step metrics of one run, grown by :meth:`extend` with new records only."""

    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    smooth: list[float] = field(default_factory=list)
    lr: list[float | None] = field(default_factory=list)
    grad_norm: list[float | None] = field(default_factory=list)
    elapsed: list[float] = field(default_factory=list)
    max_steps: int | None = None
    eta_s: float | None = None
    ended: bool = False
    _ema: float | None = None
    _debias: float = 1.0

    def extend(self, records: list[dict[str, Any]]) -> int:
        """Add records (as read from metrics.jsonl); return how many step points were added."""
        added = 0
        for r in records:
            event = r.get("event")
            if event == "train_begin":
                self.max_steps = r.get("max_steps") or self.max_steps
                self.ended = False
                continue
            if event == "train_end":
                self.ended = True
                continue
            if event is not None or r.get("loss") is None:
                continue
            step, loss = int(r.get("step", len(self.steps) + 1)), float(r["loss"])
            if self.steps and step <= self.steps[-1]:
                self._truncate(step)  # a resumed run logs from its checkpoint again
            self.steps.append(step)
            self.loss.append(loss)
            self._ema = (
                loss if self._ema is None else SMOOTHING * self._ema + (1 - SMOOTHING) * loss
            )
            self.smooth.append(self._ema)
            self.lr.append(r.get("learning_rate"))
            self.grad_norm.append(r.get("grad_norm"))
            self.elapsed.append(float(r.get("elapsed_s") or 0.0))
            self.max_steps = r.get("max_steps") or self.max_steps
            self.eta_s = r.get("eta_s")
            added += 1
        return added

    def _truncate(self, step: int) -> None:
        keep = next((i for i, s in enumerate(self.steps) if s >= step), len(self.steps))
        for name in ("steps", "loss", "smooth", "lr", "grad_norm", "elapsed"):
            del getattr(self, name)[keep:]
        self._ema = self.smooth[-1] if self.smooth else None

    @property
    def last_step(self) -> int:
        return self.steps[-1] if self.steps else 0


def downsample(xs: list, ys: list, max_points: int = MAX_POINTS) -> tuple[list, list]:
    """At most ~max_points points: per bucket keep the min and the max (spikes survive)."""
    n = len(xs)
    if n <= max_points:
        return list(xs), list(ys)
    buckets = max_points // 2
    size = n / buckets
    out_x, out_y = [], []
    for b in range(buckets):
        lo, hi = int(b * size), min(n, int((b + 1) * size))
        if lo >= hi:
            continue
        chunk = [(ys[i], i) for i in range(lo, hi) if ys[i] is not None and not _nan(ys[i])]
        if not chunk:
            continue
        i_min, i_max = min(chunk)[1], max(chunk)[1]
        for i in sorted({i_min, i_max}):
            out_x.append(xs[i])
            out_y.append(ys[i])
    if out_x[-1] != xs[-1]:
        out_x.append(xs[-1])
        out_y.append(ys[-1])
    return out_x, out_y


def _nan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


def training_figure(series: Series, title: str = ""):
    """Loss (raw and smoothed), learning rate and grad norm, stacked, sharing the step axis."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06,
        row_heights=[0.5, 0.25, 0.25],
        subplot_titles=("loss", "learning rate", "grad norm"),
    )
    x, y = downsample(series.steps, series.loss)
    fig.add_trace(
        go.Scatter(
            x=x,
            y=y,
            name="loss",
            mode="lines+markers" if len(x) < 60 else "lines",
            line={"color": "rgba(99,110,250,0.45)"},
        ),
        1,
        1,
    )
    x, y = downsample(series.steps, series.smooth)
    fig.add_trace(
        go.Scatter(x=x, y=y, name="loss (smoothed)", line={"color": "#636efa", "width": 2.5}), 1, 1
    )
    x, y = downsample(series.steps, series.lr)
    fig.add_trace(go.Scatter(x=x, y=y, name="learning rate", line={"color": "#00cc96"}), 2, 1)
    x, y = downsample(series.steps, series.grad_norm)
    fig.add_trace(go.Scatter(x=x, y=y, name="grad norm", line={"color": "#ef553b"}), 3, 1)
    if series.max_steps:
        fig.update_xaxes(range=[0, series.max_steps])
    fig.update_xaxes(title_text="step", row=3, col=1)
    fig.update_layout(
        height=560,
        margin={"l": 50, "r": 20, "t": 50, "b": 40},
        title=title or None,
        legend={"orientation": "h", "y": -0.12},
        uirevision="keep",
    )  # keep the user's zoom across live updates
    return fig


def overlay_figure(named: dict[str, Series], smoothed: bool = True):
    """The loss curves of several runs in one chart, for comparing them."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for name, series in named.items():
        ys = series.smooth if smoothed else series.loss
        x, y = downsample(series.steps, ys)
        fig.add_trace(go.Scatter(x=x, y=y, name=name, mode="lines"))
    fig.update_layout(
        height=420,
        xaxis_title="step",
        yaxis_title="loss" + (" (smoothed)" if smoothed else ""),
        margin={"l": 50, "r": 20, "t": 30, "b": 40},
    )
    return fig


def progress(series: Series) -> dict[str, Any]:
    """Step/total, elapsed and ETA for a progress bar."""
    total = series.max_steps or 0
    step = series.last_step
    return {
        "step": step,
        "total": total,
        "fraction": (step / total) if total else 0.0,
        "elapsed_s": series.elapsed[-1] if series.elapsed else 0.0,
        "eta_s": series.eta_s,
    }
