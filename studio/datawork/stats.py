"""Statistics of training data: what a run will actually train on, before it starts.

Computed from a :class:`~studio.datawork.check.CheckReport` (the checker already gathered the
per-row numbers in its one streaming pass), so statistics of a 300 MB file cost no second read.
Answers: how many rows per file; how many positives and negatives per row; how many rows have
fewer negatives than `train_group_size - 1` (FlagEmbedding repeats theirs); duplicate queries;
passages that are both positive and negative; training queries that also sit in the evaluation
set (leakage); whether teacher scores and prompts are present; and how many optimizer steps one
epoch is for the current batch size, processes and accumulation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.core.config import StudioConfig
from studio.datawork.check import CheckReport, check_paths, query_key
from studio.facts.problems import INFO, WARNING, Problem

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

MAX_LISTED = 20


@dataclass
class DataStats:
    files: pd.DataFrame  # one row per file
    positives: pd.DataFrame  # columns count, rows: how many rows have that many positives
    negatives: pd.DataFrame  # the same for negatives
    summary: dict[str, Any]
    problems: list[Problem] = field(default_factory=list)
    duplicates: pd.DataFrame | None = None  # first rows whose query repeats another's
    leaks: pd.DataFrame | None = None  # first training rows whose query is in the eval set

    def figure(self) -> go.Figure:
        """Bar charts of positives and negatives per row."""
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        fig = make_subplots(
            rows=1, cols=2, subplot_titles=("Positives per row", "Negatives per row")
        )
        fig.add_trace(
            go.Bar(x=self.positives["count"], y=self.positives["rows"], name="positives"), 1, 1
        )
        fig.add_trace(
            go.Bar(x=self.negatives["count"], y=self.negatives["rows"], name="negatives"), 1, 2
        )
        needed = self.summary.get("negatives_needed")
        if needed:
            fig.add_vline(
                x=needed - 0.5,
                line_dash="dash",
                annotation_text=f"train_group_size - 1 = {needed}",
                row=1,
                col=2,
            )
        fig.update_layout(showlegend=False, title=f"{self.summary['rows']:,} rows")
        fig.update_xaxes(title_text="passages")
        fig.update_yaxes(title_text="rows")
        return fig


def steps_per_epoch(rows_per_file: list[int], config: StudioConfig) -> tuple[int, dict[str, Any]]:
    """Optimizer steps in one epoch, as HF's Trainer counts them for FlagEmbedding's datasets.

    With `same_dataset_within_batch`, every file fills its own batches and drops its remainder;
    the merging of files under `small_threshold` is not modelled (it is off by default).
    """
    cap = config.get("max_example_num_per_dataset") or math.inf
    rows = [min(n, cap) for n in rows_per_file if n]
    per_device = int(config.get("per_device_train_batch_size") or 1)
    accumulate = int(config.get("gradient_accumulation_steps") or 1)
    world = config.torchrun.nproc_per_node * config.torchrun.nnodes
    drop_last = bool(config.get("dataloader_drop_last"))
    if config.get("same_dataset_within_batch"):
        # one batch per `per_device * world` rows of a single file; each file's remainder dropped
        batches = sum(n // (per_device * world) for n in rows)
    else:
        total = sum(rows)
        if drop_last:
            batches = total // (per_device * world)
        else:
            batches = math.ceil(math.ceil(total / per_device) / world) if total else 0
    steps = max(math.ceil(batches / accumulate), 1) if batches else 0
    detail = {
        "per_device_train_batch_size": per_device,
        "processes": world,
        "gradient_accumulation_steps": accumulate,
        "global_batch": per_device * world * accumulate,
        "batches_per_process": batches,
    }
    return steps, detail


def _distribution(values) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    if len(values) == 0:
        return pd.DataFrame({"count": pd.Series([], dtype="int64"), "rows": []})
    counts = np.bincount(values)
    nonzero = np.nonzero(counts)[0]
    return pd.DataFrame({"count": nonzero, "rows": counts[nonzero]})


def _eval_keys(eval_queries) -> list[int]:
    from studio.datawork import beir

    if eval_queries is None:
        return []
    texts = (
        beir.read_queries(eval_queries) if isinstance(eval_queries, str | Path) else eval_queries
    )
    return [query_key(t) for t in texts if isinstance(t, str)]


def stats(
    report_or_paths: CheckReport | list[str | Path],
    config: StudioConfig | None = None,
    eval_queries: str | Path | list[str] | None = None,
) -> DataStats:
    """Statistics for a check report (or paths, which are checked first).

    `eval_queries` is an evaluation set (a BEIR folder, a queries file, or a list of texts);
    when None the config's `studio.eval_data` is used if set.
    """
    import numpy as np
    import pandas as pd

    config = config or StudioConfig()
    if isinstance(report_or_paths, CheckReport):
        report = report_or_paths
    else:
        report = check_paths(
            list(report_or_paths),
            knowledge_distillation=bool(config.get("knowledge_distillation")),
            train_group_size=config.get("train_group_size"),
        )
    if report.key_probe != hash("bge-studio"):
        raise ValueError(
            "this check report was made in another Python process; its query keys do not "
            "compare here. Run check_paths again in this process."
        )
    if eval_queries is None and config.studio.get("eval_data"):
        eval_queries = config.studio["eval_data"]

    n_pos = np.frombuffer(report.n_pos, dtype=np.uint32) if len(report.n_pos) else np.zeros(0)
    n_neg = np.frombuffer(report.n_neg, dtype=np.uint32) if len(report.n_neg) else np.zeros(0)
    n_pos, n_neg = n_pos.astype(np.int64), n_neg.astype(np.int64)
    keys = np.frombuffer(report.query_keys, dtype=np.int64) if len(report.query_keys) else None
    rows = len(n_pos)
    group = int(config.get("train_group_size") or 1)
    needed = max(group - 1, 0)
    problems: list[Problem] = []

    files = pd.DataFrame(
        [
            {
                "file": f.file,
                "rows": f.rows,
                "rows_with_errors": f.rows_with_errors,
                "blank_lines": f.blank_lines,
                "with_prompt": f.prompt_strings,
                "with_teacher_scores": min(f.pos_scores, f.neg_scores),
                "types": ", ".join(sorted(f.types)),
            }
            for f in report.files
        ],
        columns=[
            "file",
            "rows",
            "rows_with_errors",
            "blank_lines",
            "with_prompt",
            "with_teacher_scores",
            "types",
        ],
    )

    short = int(np.count_nonzero((n_neg > 0) & (n_neg < needed))) if rows else 0
    if short:
        problems.append(
            Problem(
                INFO,
                f"{short:,} of {rows:,} rows have fewer than train_group_size - 1 = {needed} "
                "negatives; FlagEmbedding repeats their negatives to fill the group.",
                f"Mine more negatives (`python -m studio data mine ... --n {needed}`) "
                "or lower `train_group_size`.",
                field="train_group_size",
                code="negatives_short",
            )
        )

    file_of = np.repeat(np.arange(len(report.files)), [f.rows for f in report.files])
    lines = np.frombuffer(report.lines, dtype=np.uint32) if rows else np.zeros(0, np.uint32)
    duplicates = None
    dup_rows = distinct = 0
    if keys is not None:
        valid = keys != 0
        _, first_index, counts = np.unique(keys[valid], return_index=True, return_counts=True)
        distinct = len(first_index)
        dup_rows = int(valid.sum()) - distinct
        if dup_rows:
            index = np.nonzero(valid)[0]
            is_first = np.zeros(len(index), bool)
            is_first[first_index] = True
            repeats = index[~is_first][:MAX_LISTED]
            first_of = {}
            for i in index[first_index]:
                first_of[int(keys[i])] = int(i)
            duplicates = pd.DataFrame(
                {
                    "file": [report.files[file_of[i]].file for i in repeats],
                    "line": [int(lines[i]) for i in repeats],
                    "first_file": [
                        report.files[file_of[first_of[int(keys[i])]]].file for i in repeats
                    ],
                    "first_line": [int(lines[first_of[int(keys[i])]]) for i in repeats],
                }
            )
            problems.append(
                Problem(
                    WARNING,
                    f"{dup_rows:,} rows repeat the query of an earlier row (ignoring case and "
                    f"spacing; {int((counts > 1).sum()):,} queries occur more than once). In "
                    "one batch, one row's positive becomes an in-batch negative for the other.",
                    "Merge rows that share a query into one row with several positives.",
                    field="query",
                    code="duplicate_queries",
                )
            )

    leaks = None
    leak_rows = leak_queries = 0
    eval_keys = _eval_keys(eval_queries)
    if eval_keys and keys is not None:
        hit = np.isin(keys, np.array(eval_keys, dtype=np.int64)) & (keys != 0)
        leak_rows = int(hit.sum())
        leak_queries = len(np.unique(keys[hit]))
        if leak_rows:
            where = np.nonzero(hit)[0][:MAX_LISTED]
            leaks = pd.DataFrame(
                {
                    "file": [report.files[file_of[i]].file for i in where],
                    "line": [int(lines[i]) for i in where],
                }
            )
            problems.append(
                Problem(
                    WARNING,
                    f"{leak_rows:,} training rows ({leak_queries:,} distinct queries) have a "
                    f"query that is also in the evaluation set ({len(eval_keys):,} queries); "
                    "the evaluation would reward memorising them.",
                    "Hold the evaluation queries out of training: `python -m studio data split`.",
                    field="query",
                    code="eval_leakage",
                )
            )

    with_scores = int(sum(min(f.pos_scores, f.neg_scores) for f in report.files))
    with_prompt = int(sum(f.prompt_strings for f in report.files))
    kd = bool(config.get("knowledge_distillation"))
    if with_scores and not kd:
        problems.append(
            Problem(
                INFO,
                f"{with_scores:,} rows carry teacher scores, but `knowledge_distillation` is "
                "off, so FlagEmbedding drops them.",
                "Turn `knowledge_distillation` on to train on them.",
                field="knowledge_distillation",
                code="scores_unused",
            )
        )

    steps, batch = steps_per_epoch([f.rows for f in report.files], config)
    epochs = float(config.get("num_train_epochs") or 0)
    max_steps = int(config.get("max_steps") or -1)
    summary = {
        "files": len(report.files),
        "rows": rows,
        "rows_with_errors": int(rows - sum(report.row_ok)),
        "positives_mean": float(n_pos.mean()) if rows else 0.0,
        "negatives_mean": float(n_neg.mean()) if rows else 0.0,
        "negatives_min": int(n_neg.min()) if rows else 0,
        "negatives_max": int(n_neg.max()) if rows else 0,
        "train_group_size": group,
        "negatives_needed": needed,
        "rows_short_of_negatives": short,
        "rows_without_negatives": int(np.count_nonzero(n_neg == 0)) if rows else 0,
        "distinct_queries": distinct,
        "duplicate_query_rows": dup_rows,
        "pos_in_neg_rows": report.pos_in_neg_rows,
        "eval_queries": len(eval_keys),
        "eval_leak_rows": leak_rows,
        "eval_leak_queries": leak_queries,
        "rows_with_teacher_scores": with_scores,
        "rows_with_prompt": with_prompt,
        "knowledge_distillation": kd,
        "steps_per_epoch": steps,
        "total_steps": max_steps if max_steps > 0 else math.ceil(epochs * steps),
        **batch,
    }
    return DataStats(
        files=files,
        positives=_distribution(n_pos),
        negatives=_distribution(n_neg),
        summary=summary,
        problems=problems,
        duplicates=duplicates,
        leaks=leaks,
    )
