"""Did it help, and at what cost: LM-Cocktail merges of a fine-tuned model with its base.

Domain fine-tuning often loses general retrieval. LM-Cocktail's remedy is a weighted average of
the fine-tuned weights with the base's: ``mix = w * fine_tuned + (1 - w) * base``. A sweep over
``w`` evaluates every mix on the user's held-out set (and, optionally, a second, general set),
so the trade-off is a chart, not a guess; the chosen mix is exported like any model.

The mixing is the ``lm-cocktail`` package's own ``mix_models`` (0.0.4, checked against
transformers 4.57 and sentence-transformers 5: it works). Its output path would also write a
sentence-transformers config with CLS pooling and normalization whatever the model was trained
with (a reported bug), so the studio takes the mixed model it returns, saves it itself, and
writes the sentence-transformers files with :func:`studio.evaluation.export
.export_sentence_transformers` from the training config (or copies the fine-tuned model's own
files when there is no config). Where the package cannot be imported, the same average is
computed here (:func:`_weighted_average`), and the report says which one ran.

A weight of 1.0 gives the fine-tuned model's weights exactly and 0.0 the base's (``1*x + 0*y``
is ``x`` in floating point), which the tests check.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from studio.evaluation.metrics import DEFAULT_KS

DEFAULT_METRIC = "ndcg_at_10"
_ST_FILES = (
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling",
    "2_Normalize",
)


@dataclass
class Mix:
    """One merged model and its scores."""

    weight: float  # the fine-tuned model's share; 1 - weight is the base's
    path: str
    metrics: dict[str, float]
    general: dict[str, float] | None = None


@dataclass
class MergeReport:
    base: str
    model: str
    data: str
    general_data: str | None
    method: str  # "lm-cocktail mix_models" or "studio weighted average"
    metric: str
    mixes: list[Mix] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def best(self, metric: str | None = None) -> Mix:
        """The mix with the best held-out score (ties: the better general score, then the
        larger weight)."""
        metric = metric or self.metric
        return max(
            self.mixes,
            key=lambda m: (
                m.metrics.get(metric, float("-inf")),
                (m.general or {}).get(metric, float("-inf")),
                m.weight,
            ),
        )

    def table(self) -> list[dict[str, Any]]:
        """Rows for a face: weight, held-out metric, general metric (when measured)."""
        rows = []
        for m in self.mixes:
            row = {"weight": m.weight, f"held-out {self.metric}": m.metrics.get(self.metric)}
            if m.general is not None:
                row[f"general {self.metric}"] = m.general.get(self.metric)
            row["path"] = m.path
            rows.append(row)
        return rows

    def lines(self) -> list[str]:
        out = [f"Merged with {self.method}; metric {self.metric}"]
        for row in self.table():
            cells = [f"w={row['weight']:.2f}"]
            cells += [f"{k} {v:.4f}" for k, v in row.items() if k not in ("weight", "path")]
            out.append("  " + "  ".join(cells) + f"  {row['path']}")
        best = self.best()
        out.append(f"Best held-out: w={best.weight:.2f} ({best.path})")
        out += [f"warning: {w}" for w in self.warnings]
        return out


def parse_weights(text: str | list[float]) -> list[float]:
    """``"0,0.5,1"`` -> [0.0, 0.5, 1.0]; each in [0, 1], at least one."""
    items = text if isinstance(text, list) else [t for t in str(text).replace(" ", "").split(",")]
    weights = []
    for item in items:
        if item == "":
            continue
        try:
            value = float(item)
        except ValueError:
            raise ValueError(f"--weights: {item!r} is not a number; give e.g. 0,0.5,1") from None
        if not 0.0 <= value <= 1.0:
            raise ValueError(
                f"--weights: {value} is outside 0..1 (the fine-tuned model's share of the mix)"
            )
        weights.append(value)
    if not weights:
        raise ValueError("--weights: give at least one weight, e.g. 0,0.5,1")
    return weights


def _weighted_average(model: Path, base: Path, weight: float):
    """The same average as LM-Cocktail's ``merge_param``, for when the package is missing."""
    from transformers import AutoModel

    mixed = AutoModel.from_pretrained(str(model))
    other = AutoModel.from_pretrained(str(base)).state_dict()
    state = {}
    for key, value in mixed.state_dict().items():
        if value.dtype.is_floating_point:
            state[key] = weight * value + (1.0 - weight) * other[key]
        else:
            state[key] = value  # integer buffers (position ids) are not averaged
    mixed.load_state_dict(state)
    return mixed


def mix_model(model: Path, base: Path, weight: float) -> tuple[Any, str]:
    """The mixed HF model and the method that made it."""
    try:
        import contextlib
        import io

        from LM_Cocktail import mix_models
    except ImportError:
        return _weighted_average(model, base, weight), "studio weighted average"
    with contextlib.redirect_stdout(io.StringIO()):  # it prints every weight and path
        mixed = mix_models([str(model), str(base)], "encoder", [weight, 1.0 - weight])
    return mixed, "lm-cocktail mix_models"


def _copy_st_files(source: Path, dest: Path) -> bool:
    found = False
    for name in _ST_FILES:
        src = source / name
        if src.is_dir():
            shutil.copytree(src, dest / name, dirs_exist_ok=True)
            found = True
        elif src.is_file():
            shutil.copy2(src, dest / name)
            found = True
    return found


def save_mix(mixed, model: Path, dest: Path, config=None) -> list[str]:
    """Save weights + tokenizer, then the sentence-transformers files; return warnings."""
    from transformers import AutoTokenizer

    dest.mkdir(parents=True, exist_ok=True)
    mixed.save_pretrained(str(dest))
    AutoTokenizer.from_pretrained(str(model)).save_pretrained(str(dest))
    if config is not None:
        from studio.evaluation.export import export_sentence_transformers

        return export_sentence_transformers(dest, config, overwrite_readme=True).warnings
    if not _copy_st_files(model, dest):
        return [
            f"{dest}: no training config and no sentence-transformers files in {model}; "
            "pass --config so the mix loads in sentence-transformers with the right pooling."
        ]
    return []


def _find_config(model: Path, config):
    from studio.core import config as config_mod
    from studio.evaluation.evaluate import find_run_config

    if config is not None:
        return config_mod.load(config) if isinstance(config, str | Path) else config
    found = find_run_config(model)
    return config_mod.load(found) if found is not None else None


def sweep(
    base: str | Path,
    model: str | Path,
    weights: list[float],
    data: str | Path,
    out_dir: str | Path,
    general_data: str | Path | None = None,
    config=None,
    ks=DEFAULT_KS,
    metric: str = DEFAULT_METRIC,
    overwrite: bool = False,
) -> MergeReport:
    """Merge at each weight into ``out_dir/mix-W``, evaluate each, return the report.

    Never overwrites: an existing ``mix-W`` folder is an error unless ``overwrite``.
    """
    from studio.evaluation.data import load_eval_data
    from studio.evaluation.evaluate import evaluate_model, resolve_model_path, resolve_settings

    base_dir, model_dir = resolve_model_path(base), resolve_model_path(model)
    out_dir = Path(out_dir)
    targets = {w: out_dir / f"mix-{w:.2f}" for w in weights}
    taken = [str(p) for p in targets.values() if p.exists()]
    if taken and not overwrite:
        raise FileExistsError(
            f"{', '.join(taken)} already exist; choose another --out or pass --force to replace"
        )
    cfg = _find_config(model_dir, config)
    held_out = load_eval_data(data)
    general = load_eval_data(general_data) if general_data else None
    settings, warnings = resolve_settings([model_dir, base_dir], config=cfg)
    report = MergeReport(
        base=str(base_dir),
        model=str(model_dir),
        data=str(data),
        general_data=str(general_data) if general_data else None,
        method="",
        metric=metric,
        warnings=list(warnings),
    )
    for weight, dest in targets.items():
        if dest.exists():
            shutil.rmtree(dest)
        mixed, report.method = mix_model(model_dir, base_dir, weight)
        for warning in save_mix(mixed, model_dir, dest, cfg):
            if warning not in report.warnings:
                report.warnings.append(warning)
        del mixed
        scores = evaluate_model(dest, held_out, settings, ks, label=f"w={weight:.2f}")
        general_scores = (
            evaluate_model(dest, general, settings, ks).metrics if general is not None else None
        )
        report.mixes.append(Mix(weight, str(dest.resolve()), scores.metrics, general_scores))
    return report


def check_destinations(
    weights: list[float],
    export: str | Path | None = None,
    pick: float | None = None,
    json_out: str | Path | None = None,
) -> None:
    """Refuse, before any merge or evaluation, what would fail only after the whole sweep: a
    ``pick`` the sweep does not make, an export folder that exists or cannot be made, a report
    file whose folder cannot take it. ValueError/FileExistsError naming the value and the fix."""
    if pick is not None:
        if export is None:
            raise ValueError(
                f"--pick {pick:g} chooses the mix --export copies, and no --export is given. "
                "Fix: add --export FOLDER, or drop --pick."
            )
        if not any(abs(w - pick) < 1e-9 for w in weights):
            have = ", ".join(f"{w:g}" for w in weights)
            raise ValueError(
                f"--pick {pick:g} is not one of the weights swept ({have}). "
                "Fix: pick one of them, or add it to --weights."
            )
    if export is not None:
        dest = Path(export).expanduser()
        if dest.exists():
            raise FileExistsError(
                f"--export {dest} exists. Fix: choose a new folder for the exported mix "
                "(nothing was merged)."
            )
        _check_writable_parent(dest, "--export")
    if json_out is not None:
        target = Path(json_out).expanduser()
        if target.is_dir():
            raise ValueError(
                f"--json {target} is a folder. Fix: give a file name, e.g. merge.json."
            )
        _check_writable_parent(target, "--json")


def _check_writable_parent(path: Path, option: str) -> None:
    """The nearest existing folder above ``path`` is a folder this process may write in."""
    parent = path.resolve().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(
            f"{option} {path}: cannot write in {parent}. Fix: choose a folder you can write to."
        )


def export_mix(report: MergeReport, dest: str | Path, weight: float | None = None) -> Path:
    """Copy the chosen mix (default: the best held-out one) to ``dest``, a new folder."""
    chosen = report.best() if weight is None else _mix_at(report, weight)
    dest = Path(dest)
    if dest.exists():
        raise FileExistsError(f"{dest} exists; choose a new folder for the exported mix")
    shutil.copytree(chosen.path, dest)
    return dest


def _mix_at(report: MergeReport, weight: float) -> Mix:
    for mix in report.mixes:
        if abs(mix.weight - weight) < 1e-9:
            return mix
    have = ", ".join(f"{m.weight:g}" for m in report.mixes)
    raise ValueError(f"no mix at weight {weight:g}; the sweep made {have}")


def tradeoff_chart(report: MergeReport | dict, metric: str | None = None):
    """Held-out (and general) score against the fine-tuned share: the trade-off in one plot."""
    import plotly.graph_objects as go

    data = report.to_dict() if isinstance(report, MergeReport) else report
    metric = metric or data["metric"]
    mixes = sorted(data["mixes"], key=lambda m: m["weight"])
    x = [m["weight"] for m in mixes]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=x, y=[m["metrics"].get(metric) for m in mixes], name="held-out", mode="lines+markers"
        )
    )
    if any(m.get("general") for m in mixes):
        fig.add_trace(
            go.Scatter(
                x=x,
                y=[(m.get("general") or {}).get(metric) for m in mixes],
                name="general",
                mode="lines+markers",
            )
        )
    fig.update_layout(
        title=f"{metric} by mix (0 = base, 1 = fine-tuned)",
        xaxis_title="fine-tuned weight",
        yaxis_title=metric,
        height=360,
        margin={"l": 50, "r": 20, "t": 50, "b": 40},
    )
    return fig
