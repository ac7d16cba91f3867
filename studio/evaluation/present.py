"""Tables and charts of evaluation results, for every face (web UI, notebook, CLI).

Each function takes results in any of the shapes the core produces and returns data (a pandas
DataFrame or a Plotly Figure), never renders: a mapping label -> :class:`EvalResult`, a mapping
label -> flat dict (``{"ndcg_at_10": ...}``), or a whole report / run ``eval.json``
(``{"models": {...}}``). The first model is the baseline and the last the compared one, which
is the order :func:`studio.training.run_eval.evaluate_run` writes (base, checkpoints..., final).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from studio.evaluation.evaluate import EvalResult
from studio.evaluation.metrics import METRICS, parse_metric_name

_LABELS = {"ndcg": "nDCG", "recall": "Recall", "mrr": "MRR", "map": "MAP"}


def report_notes(report: Mapping[str, Any]) -> list[str]:
    """What a report warns about, once each: its warnings (settings, untrained heads, ...) and
    every data-consistency count of its data (also for reports written before they were kept
    in ``warnings``). The CLI prints these lines; the web UI and the notebook list them."""
    from studio.evaluation.data import data_notes

    found = [*(report.get("warnings") or []), *data_notes(report.get("data") or {})]
    return list(dict.fromkeys(str(n) for n in found))


def pretty_metric(name: str) -> str:
    parsed = parse_metric_name(name)
    return f"{_LABELS[parsed[0]]}@{parsed[1]}" if parsed else name


def as_results(results: Any) -> dict[str, EvalResult]:
    """Normalize any accepted shape to label -> EvalResult, keeping the order."""
    if (
        isinstance(results, Mapping)
        and "models" in results
        and isinstance(results["models"], Mapping)
    ):
        results = results["models"]
    out: dict[str, EvalResult] = {}
    for label, value in dict(results).items():
        out[label] = value if isinstance(value, EvalResult) else EvalResult.from_dict(label, value)
    return out


def _ordered_metrics(names) -> list[str]:
    parsed = [(parse_metric_name(n), n) for n in names]
    return [
        n
        for p, n in sorted(
            (x for x in parsed if x[0]), key=lambda x: (METRICS.index(x[0][0]), x[0][1])
        )
    ]


def comparison_table(results: Any, baseline: str | None = None, compared: str | None = None):
    """Metric rows; columns baseline, compared model, delta (compared - baseline).

    With one model only, a single column. Defaults: the first and the last model.
    """
    import pandas as pd

    res = as_results(results)
    if not res:
        return pd.DataFrame()
    labels = list(res)
    baseline = baseline or labels[0]
    compared = compared or labels[-1]
    names = _ordered_metrics(res[compared].metrics)
    frame = pd.DataFrame(index=[pretty_metric(n) for n in names])
    frame.index.name = "metric"
    frame[baseline] = [res[baseline].metrics.get(n) for n in names]
    if compared != baseline:
        frame[compared] = [res[compared].metrics.get(n) for n in names]
        frame["delta"] = frame[compared] - frame[baseline]
    return frame


def bar_chart(results: Any, metrics: Sequence[str] | None = None, title: str | None = None):
    """Grouped bars: one group per metric, one bar per model (checkpoints left out)."""
    import plotly.graph_objects as go

    res = as_results(results)
    labels = [lb for lb in res if not lb.startswith("checkpoint-")] or list(res)
    names = list(metrics) if metrics else _ordered_metrics(res[labels[-1]].metrics)
    fig = go.Figure()
    for label in labels:
        values = [res[label].metrics.get(n) for n in names]
        fig.add_bar(
            name=label,
            x=[pretty_metric(n) for n in names],
            y=values,
            text=[f"{v:.3f}" if v is not None else "" for v in values],
            textposition="outside",
        )
    fig.update_layout(
        barmode="group",
        title=title or "Retrieval quality on held-out data",
        yaxis={"title": "score", "range": [0, 1.08]},
        legend={"orientation": "h", "y": -0.15},
        margin={"t": 50, "b": 40},
    )
    return fig


def _short(text: str | None, limit: int) -> str:
    if text is None:
        return ""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _hits_text(hits, qrel: Mapping[str, int], data, n: int, width: int) -> str:
    lines = []
    for rank, (doc, score) in enumerate(hits[:n], 1):
        mark = "✓" if qrel.get(doc, 0) >= 1 else " "
        lines.append(f"{rank}.{mark} [{doc}] {score:.3f} {_short(data.doc_text(doc), width)}")
    return "\n".join(lines)


def per_query_table(
    base: EvalResult | Mapping,
    tuned: EvalResult | Mapping,
    data,
    n: int = 10,
    metric: str = "ndcg_at_10",
    hits: int = 3,
    text_width: int = 100,
    labels: tuple[str, str] | None = None,
):
    """The n largest wins and n largest losses of ``tuned`` over ``base`` on one metric.

    ``base``/``tuned`` are EvalResults or their dicts (a run's ``eval.json["models"]["final"]``);
    ``labels`` names the two in the column headers (default: the results' labels).
    Rows: change (win/loss), query id and text, its relevant document, each model's value and
    the delta, each model's top hits (``✓`` marks a relevant one). Queries that did not change
    are left out; wins come first, largest first.
    """
    import pandas as pd

    base = base if isinstance(base, EvalResult) else EvalResult.from_dict("base", base)
    tuned = tuned if isinstance(tuned, EvalResult) else EvalResult.from_dict("tuned", tuned)
    base_label, tuned_label = labels or (base.label, tuned.label)
    rows = []
    for qid in data.query_ids:
        if qid not in base.per_query or qid not in tuned.per_query:
            continue
        before, after = base.per_query[qid][metric], tuned.per_query[qid][metric]
        rows.append((after - before, qid, before, after))
    wins = sorted((r for r in rows if r[0] > 0), key=lambda r: (-r[0], r[1]))[:n]
    losses = sorted((r for r in rows if r[0] < 0), key=lambda r: (r[0], r[1]))[:n]
    nice = pretty_metric(metric)
    records = []
    for change, group in (("win", wins), ("loss", losses)):
        for delta, qid, before, after in group:
            qrel = data.qrels[qid]
            best = max(qrel, key=lambda d: (qrel[d], d))
            records.append(
                {
                    "change": change,
                    "query_id": qid,
                    "query": data.query_text(qid),
                    "relevant": f"[{best}] {_short(data.doc_text(best), text_width)}",
                    f"{base_label} {nice}": before,
                    f"{tuned_label} {nice}": after,
                    "delta": delta,
                    f"{base_label} top hits": _hits_text(
                        base.top_hits.get(qid, []), qrel, data, hits, text_width
                    ),
                    f"{tuned_label} top hits": _hits_text(
                        tuned.top_hits.get(qid, []), qrel, data, hits, text_width
                    ),
                }
            )
    columns = [
        "change",
        "query_id",
        "query",
        "relevant",
        f"{base_label} {nice}",
        f"{tuned_label} {nice}",
        "delta",
        f"{base_label} top hits",
        f"{tuned_label} top hits",
    ]
    return pd.DataFrame(records, columns=columns)


def steps_table(run_eval: Mapping[str, Any]):
    """One row per evaluated model of a run with a step (base = 0), ordered by step."""
    import pandas as pd

    res = as_results(run_eval)
    rows = []
    for label, r in res.items():
        if r.step is None:
            continue
        rows.append({"label": label, "step": int(r.step), **r.metrics})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    order = {"base": 0, "final": 2}
    frame["_o"] = frame["label"].map(lambda lb: order.get(lb, 1))
    return frame.sort_values(["step", "_o"]).drop(columns="_o").reset_index(drop=True)


def metrics_over_steps(
    run_eval: Mapping[str, Any],
    metrics: Sequence[str] = ("ndcg_at_10", "recall_at_10", "mrr_at_10", "map_at_10"),
    title: str | None = None,
):
    """A line per metric over training steps: base (step 0), each checkpoint, the final model."""
    import plotly.graph_objects as go

    frame = steps_table(run_eval)
    fig = go.Figure()
    if not frame.empty:
        for name in metrics:
            if name not in frame:
                continue
            fig.add_scatter(
                x=frame["step"],
                y=frame[name],
                mode="lines+markers",
                name=pretty_metric(name),
                text=frame["label"],
                hovertemplate="%{text} (step %{x}): %{y:.4f}<extra>"
                + pretty_metric(name)
                + "</extra>",
            )
    fig.update_layout(
        title=title or "Held-out metrics over training steps",
        xaxis={"title": "step"},
        yaxis={"title": "score"},
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def results_view(report: dict, data_path: str | None):
    """(table, bar chart, wins/losses, metrics-over-steps or None) from a report/eval.json."""
    from studio.evaluation.data import load_eval_data

    models = report.get("models") or {}
    labels = list(models)
    base_label = "base" if "base" in models else labels[0]
    tuned_label = "final" if "final" in models else labels[-1]
    table = comparison_table(report, baseline=base_label, compared=tuned_label)
    chart = bar_chart({k: models[k] for k in (base_label, tuned_label)})
    per_query = None
    path = data_path or (report.get("data") or {}).get("path")
    base, tuned = models[base_label], models[tuned_label]
    if path and base.get("per_query") and tuned.get("per_query"):
        per_query = per_query_table(
            base, tuned, load_eval_data(path), n=8, labels=(base_label, tuned_label)
        )
    steps = metrics_over_steps(report) if len(models) > 2 else None
    if report.get("modes") and len(report["modes"]) > 1:
        # Every mode of the module (a reranker's rerank + first stage, or the module's own several), then charted
        # on nDCG@10 per mode, so the faces show them without knowing the module.
        table = modes_table(report)
        chart = modes_chart(report)
        return table, chart, per_query, steps
    return table.reset_index(), chart, per_query, steps


def modes_chart(report: Mapping[str, Any], metric: str = "ndcg_at_10", title: str | None = None):
    """Grouped bars: one group per mode, before and after, on one metric."""
    import plotly.graph_objects as go

    first, last = (report.get("compared") or [None, None])[:2]
    modes = report.get("modes") or {}
    fig = go.Figure()
    for label in dict.fromkeys([first, last]):
        values = [
            ((block.get("models") or {}).get(label) or {}).get(metric) for block in modes.values()
        ]
        fig.add_bar(
            name=label,
            x=list(modes),
            y=values,
            text=[f"{v:.3f}" if v is not None else "" for v in values],
            textposition="outside",
        )
    fig.update_layout(
        barmode="group",
        title=title or f"{pretty_metric(metric)} per mode ({report.get('module', '')})",
        yaxis={"title": "score", "range": [0, 1.08]},
        legend={"orientation": "h", "y": -0.15},
        margin={"t": 50, "b": 40},
    )
    return fig


def modes_table(report: Mapping[str, Any], metrics: Sequence[str] | None = None):
    """For a module with several scores (dense/sparse/colbert/hybrid, a reranker's
    rerank and first_stage): one row per mode and metric, before, after and delta; with one
    model only, its values and no delta column (a column of zeros reads as "no change").

    Empty for a report without ``modes`` (the base embedder's). ``metrics`` defaults to every
    metric at every cutoff of the report.
    """
    import pandas as pd

    modes = report.get("modes") or {}
    first, last = (report.get("compared") or [None, None])[:2]
    rows = []
    for mode, block in modes.items():
        res = as_results(block.get("models") or {})
        if not res:
            continue
        base = res.get(first) or next(iter(res.values()))
        tuned = res.get(last) or list(res.values())[-1]
        names = list(metrics) if metrics else _ordered_metrics(tuned.metrics)
        for name in names:
            before, after = base.metrics.get(name), tuned.metrics.get(name)
            if before is None or after is None:
                continue
            if base is tuned:  # one model: its values, and no delta that reads "no change"
                rows.append({"mode": mode, "metric": pretty_metric(name), tuned.label: after})
                continue
            rows.append(
                {
                    "mode": mode,
                    "metric": pretty_metric(name),
                    base.label: before,
                    tuned.label: after,
                    "delta": after - before,
                }
            )
    return pd.DataFrame(rows)
