"""Training curves: incremental series from metrics records, and the Plotly figures drawn from them.

A chart is redrawn about once a second while a run logs, and runs may log 50,000 steps, so the
cost of one update must not grow with the run: :class:`Series` appends only new records
(keeping the smoothed loss incrementally), and figures draw at most ``MAX_POINTS`` points per
trace, chosen by min/max bucketing so spikes stay visible. Steps the fp16 loss scaler skipped
(``skipped_step`` events, see :mod:`studio.training.loss_health`) are marked on the loss curve, so a
skipped step is seen as one. Web UI and notebook both draw from here.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Any

from studio.training.loss_health import SKIP_EVENT

MAX_POINTS = 1500
SMOOTHING = 0.9  # EMA weight, as TensorBoard's default-ish slider


class MinMaxDecimator:
    """Incremental min/max downsampling: at most ``max_points`` points whatever the length.

    Points fall into buckets of equal size; each bucket keeps its lowest and highest point,
    so spikes survive. When there are too many buckets, neighbours merge and the bucket size
    doubles — amortized constant work per point, so a live update does not grow with the run.
    """

    def __init__(self, max_points: int = MAX_POINTS):
        self.max_buckets = max(2, max_points // 2)
        self.size = 1
        self.buckets: list[list] = []  # [min_x, min_y, max_x, max_y, count]

    def add(self, x: Any, y: Any) -> None:
        if y is None or _nan(y):
            return
        last = self.buckets[-1] if self.buckets else None
        if last is not None and last[4] < self.size:
            if y < last[1]:
                last[0], last[1] = x, y
            if y > last[3]:
                last[2], last[3] = x, y
            last[4] += 1
        else:
            self.buckets.append([x, y, x, y, 1])
        if len(self.buckets) > self.max_buckets:
            self._merge()

    def _merge(self) -> None:
        merged = []
        for i in range(0, len(self.buckets), 2):
            pair = self.buckets[i : i + 2]
            lo = min(pair, key=lambda b: b[1])
            hi = max(pair, key=lambda b: b[3])
            merged.append([lo[0], lo[1], hi[2], hi[3], sum(b[4] for b in pair)])
        self.buckets = merged
        self.size *= 2

    def points(self) -> tuple[list, list]:
        xs, ys = [], []
        for min_x, min_y, max_x, max_y, _ in self.buckets:
            pts = [(min_x, min_y)] if min_x == max_x else sorted([(min_x, min_y), (max_x, max_y)])
            for x, y in pts:
                xs.append(x)
                ys.append(y)
        return xs, ys


TRACES = ("loss", "smooth", "lr", "grad_norm")


@dataclass
class Series:
    """Per-step metrics of one run, grown by :meth:`extend` with new records only."""

    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    smooth: list[float] = field(default_factory=list)
    lr: list[float | None] = field(default_factory=list)
    grad_norm: list[float | None] = field(default_factory=list)
    elapsed: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)  # held-out nDCG@10 (eval_at_save)
    eval_ndcg: list[float] = field(default_factory=list)
    max_steps: int | None = None
    eta_s: float | None = None
    ended: bool = False
    skipped: list[int] = field(default_factory=list)  # steps the fp16 loss scaler skipped
    _ema: float | None = None
    _drawn: dict[str, MinMaxDecimator] = field(default_factory=dict)

    def drawn(self, trace: str) -> tuple[list, list]:
        """The points to draw for a trace (at most MAX_POINTS, maintained incrementally)."""
        if trace not in self._drawn:
            self._rebuild(trace)
        return self._drawn[trace].points()

    def _rebuild(self, trace: str) -> None:
        decimator = MinMaxDecimator()
        for x, y in zip(self.steps, getattr(self, trace), strict=True):
            decimator.add(x, y)
        self._drawn[trace] = decimator

    def extend(self, records: list[dict[str, Any]]) -> int:
        """Add records (as read from metrics.jsonl); return how many step points were added."""
        added = 0
        for r in records:
            event = r.get("event")
            if event == "train_begin":
                self.max_steps = r.get("max_steps") or self.max_steps
                self.ended = False
                resumed_at = r.get("global_step") or 0  # skips after it are done again
                self.skipped = [s for s in self.skipped if s <= resumed_at]
                continue
            if event == SKIP_EVENT:
                if isinstance(r.get("step"), int) and r["step"] not in self.skipped:
                    self.skipped.append(r["step"])
                continue
            if event == "train_end":
                self.ended = True
                continue
            if event == "eval" and r.get("eval_ndcg@10") is not None:
                self._add_eval(int(r.get("step") or 0), float(r["eval_ndcg@10"]))
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
            for trace, decimator in self._drawn.items():
                decimator.add(step, getattr(self, trace)[-1])
            self.max_steps = r.get("max_steps") or self.max_steps
            self.eta_s = r.get("eta_s")
            added += 1
        return added

    def _add_eval(self, step: int, value: float) -> None:
        """One held-out score; a step scored again (a resumed run) replaces its point."""
        if step in self.eval_steps:
            self.eval_ndcg[self.eval_steps.index(step)] = value
            return
        at = sum(1 for s in self.eval_steps if s < step)
        self.eval_steps.insert(at, step)
        self.eval_ndcg.insert(at, value)

    def _truncate(self, step: int) -> None:
        keep = next((i for i, s in enumerate(self.steps) if s >= step), len(self.steps))
        for name in ("steps", "loss", "smooth", "lr", "grad_norm", "elapsed"):
            del getattr(self, name)[keep:]
        self._ema = self.smooth[-1] if self.smooth else None
        self._drawn.clear()  # rebuilt from the kept points when next drawn

    @property
    def last_step(self) -> int:
        return self.steps[-1] if self.steps else 0


def _nan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


def skip_marks(series: Series, max_points: int = MAX_POINTS) -> tuple[list[int], list[float]]:
    """Where to mark the skipped steps on the loss curve: each at the loss of the last logged
    step at or before it (the first logged one before any), at most ``max_points`` marks."""
    if not series.steps or not series.skipped:
        return [], []
    every = max(1, math.ceil(len(series.skipped) / max_points))
    xs = sorted(series.skipped)[::every]
    ys = [series.loss[max(0, bisect.bisect_right(series.steps, x) - 1)] for x in xs]
    return xs, ys


def training_figure(series: Series, title: str = ""):
    """Loss (raw and smoothed), learning rate and grad norm, stacked, sharing the step axis."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    held_out = bool(series.eval_steps)
    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06,
        row_heights=[0.5, 0.25, 0.25],
        subplot_titles=(
            "loss" + (" and held-out nDCG@10" if held_out else ""),
            "learning rate",
            "grad norm",
        ),
        specs=[[{"secondary_y": held_out}], [{}], [{}]],
    )
    x, y = series.drawn("loss")
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
    x, y = series.drawn("smooth")
    fig.add_trace(
        go.Scatter(x=x, y=y, name="loss (smoothed)", line={"color": "#636efa", "width": 2.5}), 1, 1
    )
    x, y = skip_marks(series)
    if x:
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y,
                name=f"skipped by the fp16 loss scaler ({len(series.skipped)})",
                mode="markers",
                marker={"symbol": "x", "size": 10, "color": "#ef553b"},
                hovertemplate="step %{x}: skipped by the fp16 loss scaler<extra></extra>",
            ),
            1,
            1,
        )
    if held_out:  # studio.eval_at_save: the score next to the loss, on its own axis
        fig.add_trace(
            go.Scatter(
                x=series.eval_steps,
                y=series.eval_ndcg,
                name="held-out nDCG@10",
                mode="lines+markers",
                line={"color": "#ab63fa", "width": 2},
            ),
            1,
            1,
            secondary_y=True,
        )
        fig.update_yaxes(title_text="nDCG@10", row=1, col=1, secondary_y=True)
    x, y = series.drawn("lr")
    fig.add_trace(go.Scatter(x=x, y=y, name="learning rate", line={"color": "#00cc96"}), 2, 1)
    x, y = series.drawn("grad_norm")
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
        x, y = series.drawn("smooth" if smoothed else "loss")
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
